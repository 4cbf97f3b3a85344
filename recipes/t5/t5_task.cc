// The T5 objective (see t5_task.h).
#include "recipes/t5/t5_task.h"

#include "recipes/seq2seq_loss.h"
#include "recipes/t5/t5_batch.h"

namespace braid {

torch::Tensor T5Task::Loss(const Batch& batch, TpRng& rng, std::map<std::string, double>* metrics) {
  const T5Batch b = T5Batch::FromRows(batch.rows, enc_, dec_);
  const torch::Tensor labels = b.labels.reshape({-1});
  const torch::Tensor real = labels.ne(-100);
  const double n = std::max<double>(1.0, real.sum().item<double>());
  const DecoderLossResult r = DecoderLoss(*model_, b.inputs, b.input_padding, b.decoder_inputs,
                                          labels, n, *tp_, chunk_, rng, metrics != nullptr);
  if (metrics != nullptr) {
    (*metrics)["target_acc"] += r.ids.eq(labels).logical_and(real).sum().item<double>() / n;
  }
  return r.loss;
}

}  // namespace braid
