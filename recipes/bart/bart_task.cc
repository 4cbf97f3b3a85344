// The BART objective (see bart_task.h).
#include "recipes/bart/bart_task.h"

#include "framework/parallel/mappings.h"
#include "recipes/bart/bart_batch.h"

namespace braid {

torch::Tensor BartTask::Loss(const Batch& batch, TpRng& rng,
                             std::map<std::string, double>* metrics) {
  const BartBatch b = BartBatch::FromRows(batch.rows, enc_, dec_);
  const torch::Tensor labels = b.labels.reshape({-1});
  const torch::Tensor real = labels.ne(-100);
  const double n = std::max<double>(1.0, real.sum().item<double>());
  torch::Tensor loss, ids;  // ids: each row's arg-max (metrics only)
  if (chunk_ > 0) {
    const torch::Tensor memory = model_->Encode(b.inputs, b.input_padding, rng);
    torch::Tensor h = model_->DecoderHidden(memory, b.input_padding, b.decoder_inputs, rng);
    h = CopyToTp(h.reshape({-1, h.size(-1)}), *tp_);
    const torch::Tensor &w = model_->output_weight(), &bias = model_->output_bias();
    if (metrics != nullptr) {
      ids = ChunkedVocabParallelArgmax(h, w, bias, *tp_, model_->shard(), chunk_);
    }
    // The chunked loss is the mean over every row (ignored ones count 0); ours is over real ones.
    loss = ChunkedVocabParallelLoss(h, w, labels, *tp_, model_->shard(), chunk_, -100, 0.0, bias) *
           (static_cast<double>(labels.numel()) / n);
  } else {
    torch::Tensor logits = model_->Logits(b.inputs, b.input_padding, b.decoder_inputs, rng);
    logits = logits.reshape({-1, logits.size(-1)});
    if (metrics != nullptr) ids = VocabParallelArgmax(logits, *tp_, model_->shard());
    loss = VocabParallelCrossEntropy(logits, labels, *tp_, model_->shard()).sum() / n;
  }
  if (metrics != nullptr) {
    const torch::Tensor right = ids.eq(labels).logical_and(real).to(torch::kDouble);
    const torch::Tensor noised = b.noised.reshape({-1}).logical_and(real).to(torch::kDouble);
    (*metrics)["target_acc"] += right.sum().item<double>() / n;
    // Averaged per micro-batch like the loss; a batch without noised positions adds nothing.
    (*metrics)["masked_acc"] +=
        (right * noised).sum().item<double>() / std::max(1.0, noised.sum().item<double>());
  }
  return loss;
}

}  // namespace braid
