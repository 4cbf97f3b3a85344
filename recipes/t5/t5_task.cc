// The T5 objective (see t5_task.h).
#include "recipes/t5/t5_task.h"

#include "framework/parallel/mappings.h"
#include "recipes/t5/t5_batch.h"

namespace braid {

torch::Tensor T5Task::Loss(const Batch& batch, TpRng& rng, std::map<std::string, double>* metrics) {
  const T5Batch b = T5Batch::FromRows(batch.rows, enc_, dec_);
  const torch::Tensor labels = b.labels.reshape({-1});
  const torch::Tensor real = labels.ne(-100);
  const double n = std::max<double>(1.0, real.sum().item<double>());
  torch::Tensor loss, ids;  // ids: each row's arg-max (metrics only)
  if (chunk_ > 0) {
    const torch::Tensor memory = model_->Encode(b.inputs, b.input_padding, rng);
    torch::Tensor h = model_->DecoderHidden(memory, b.input_padding, b.decoder_inputs, rng);
    h = CopyToTp(h.reshape({-1, h.size(-1)}), *tp_);
    const torch::Tensor& w = model_->output_weight();
    if (metrics != nullptr) {
      ids = ChunkedVocabParallelArgmax(h, w, {}, *tp_, model_->shard(), chunk_);
    }
    // The chunked loss is the mean over every row (ignored ones count 0); ours is over real ones.
    loss = ChunkedVocabParallelLoss(h, w, labels, *tp_, model_->shard(), chunk_) *
           (static_cast<double>(labels.numel()) / n);
  } else {
    torch::Tensor logits = model_->Logits(b.inputs, b.input_padding, b.decoder_inputs, rng);
    logits = logits.reshape({-1, logits.size(-1)});
    if (metrics != nullptr) ids = VocabParallelArgmax(logits, *tp_, model_->shard());
    loss = VocabParallelCrossEntropy(logits, labels, *tp_, model_->shard()).sum() / n;
  }
  if (metrics != nullptr) {
    (*metrics)["target_acc"] += ids.eq(labels).logical_and(real).sum().item<double>() / n;
  }
  return loss;
}

}  // namespace braid
