// The BART objective (see bart_task.h).
#include "recipes/bart/bart_task.h"

#include "recipes/bart/bart_batch.h"
#include "recipes/seq2seq_loss.h"

namespace braid {

torch::Tensor BartTask::Loss(const Batch& batch, TpRng& rng,
                             std::map<std::string, double>* metrics) {
  const BartBatch b = BartBatch::FromRows(batch.rows, enc_, dec_);
  const torch::Tensor labels = b.labels.reshape({-1});
  const torch::Tensor real = labels.ne(-100);
  const double n = std::max<double>(1.0, real.sum().item<double>());
  const DecoderLossResult r = DecoderLoss(*model_, b.inputs, b.input_padding, b.decoder_inputs,
                                          labels, n, *tp_, chunk_, rng, metrics != nullptr);
  if (metrics != nullptr) {
    const torch::Tensor right = r.ids.eq(labels).logical_and(real).to(torch::kDouble);
    const torch::Tensor noised = b.noised.reshape({-1}).logical_and(real).to(torch::kDouble);
    (*metrics)["target_acc"] += right.sum().item<double>() / n;
    // Averaged per micro-batch like the loss; a batch without noised positions adds nothing.
    (*metrics)["masked_acc"] +=
        (right * noised).sum().item<double>() / std::max(1.0, noised.sum().item<double>());
  }
  return r.loss;
}

}  // namespace braid
