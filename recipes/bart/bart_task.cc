// The BART objective (see bart_task.h).
#include "recipes/bart/bart_task.h"

#include "framework/parallel/mappings.h"
#include "recipes/bart/bart_batch.h"

namespace braid {

torch::Tensor BartTask::Loss(const Batch& batch, TpRng& rng,
                             std::map<std::string, double>* metrics) {
  const BartBatch b = BartBatch::FromRows(batch.rows, enc_, dec_);
  torch::Tensor logits = model_->Logits(b.inputs, b.input_padding, b.decoder_inputs, rng);
  logits = logits.reshape({-1, logits.size(-1)});
  const torch::Tensor labels = b.labels.reshape({-1});
  const torch::Tensor real = labels.ne(-100);
  const double n = std::max<double>(1.0, real.sum().item<double>());
  if (metrics != nullptr) {
    torch::NoGradGuard no_grad;  // accuracies from the full logits of the target rows only
    torch::Tensor rows = real.nonzero().squeeze(1);
    torch::Tensor full = AllGatherLastDim(logits.detach().index_select(0, rows), *tp_)
                             .narrow(1, 0, model_->config().vocab_size);
    torch::Tensor right = full.argmax(1).eq(labels.index_select(0, rows)).to(torch::kDouble);
    torch::Tensor noised = b.noised.reshape({-1}).index_select(0, rows).to(torch::kDouble);
    (*metrics)["target_acc"] += right.sum().item<double>() / n;
    // Averaged per micro-batch like the loss; a batch without noised positions adds nothing.
    (*metrics)["masked_acc"] +=
        (right * noised).sum().item<double>() / std::max(1.0, noised.sum().item<double>());
  }
  return VocabParallelCrossEntropy(logits, labels, *tp_, model_->shard()).sum() / n;
}

}  // namespace braid
