// The T5 objective (see t5_task.h).
#include "recipes/t5/t5_task.h"

#include "framework/parallel/mappings.h"
#include "recipes/t5/t5_batch.h"

namespace braid {

torch::Tensor T5Task::Loss(const Batch& batch, TpRng& rng, std::map<std::string, double>* metrics) {
  const T5Batch b = T5Batch::FromRows(batch.rows, enc_, dec_);
  torch::Tensor logits = model_->Logits(b.inputs, b.input_padding, b.decoder_inputs, rng);
  logits = logits.reshape({-1, logits.size(-1)});
  const torch::Tensor labels = b.labels.reshape({-1});
  const torch::Tensor real = labels.ne(-100);
  const double n = std::max<double>(1.0, real.sum().item<double>());
  if (metrics != nullptr) {
    torch::NoGradGuard no_grad;  // accuracy from the full logits of the target rows only
    torch::Tensor rows = real.nonzero().squeeze(1);
    torch::Tensor full = AllGatherLastDim(logits.detach().index_select(0, rows), *tp_)
                             .narrow(1, 0, model_->config().vocab_size);
    (*metrics)["target_acc"] +=
        full.argmax(1).eq(labels.index_select(0, rows)).to(torch::kDouble).sum().item<double>() / n;
  }
  return VocabParallelCrossEntropy(logits, labels, *tp_, model_->shard()).sum() / n;
}

}  // namespace braid
