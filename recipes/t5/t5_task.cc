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
    const torch::Tensor right =
        VocabParallelArgmax(logits, *tp_, model_->shard()).eq(labels).logical_and(real);
    (*metrics)["target_acc"] += right.sum().item<double>() / n;
  }
  return VocabParallelCrossEntropy(logits, labels, *tp_, model_->shard()).sum() / n;
}

}  // namespace braid
