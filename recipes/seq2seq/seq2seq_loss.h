// The objective T5, BART and UL2 share (seq2seq_task.h): the decoder's
// cross entropy, vocabulary-parallel, averaged over the real (non-padding) targets. With
// `chunk_tokens` > 0 (model.output_chunk_tokens) the output layer (with the model's output bias,
// if any) and the loss run over chunks of that many decoder tokens (ChunkedVocabParallelLoss),
// and the metrics' arg-max likewise: the [tokens, vocab/TP] logits are never held whole.
#pragma once
#include <torch/torch.h>

#include "framework/parallel/cross_entropy.h"
#include "framework/parallel/mappings.h"
#include "framework/parallel/rng.h"

namespace braid {

struct DecoderLossResult {
  torch::Tensor loss;  // scalar
  torch::Tensor ids;   // [rows]: each row's arg-max, when asked for (metrics)
};

// The loss of the decoder's output `hidden` [b, dec, h] (as DecoderHidden returns it) against
// `labels` [rows] flattened (-100: ignored), `real` their count (at least 1). Model: T5Model or
// BartModel (OutputLogits, output_weight, output_bias, shard).
template <typename Model>
DecoderLossResult DecoderLossOfHidden(Model& model, const torch::Tensor& hidden,
                                      const torch::Tensor& labels, double real, Communicator& tp,
                                      int64_t chunk_tokens, bool want_ids) {
  DecoderLossResult r;
  if (chunk_tokens > 0) {
    torch::Tensor h = CopyToTp(hidden.reshape({-1, hidden.size(-1)}), tp);
    const torch::Tensor w = model.output_weight(), bias = model.output_bias();
    if (want_ids) r.ids = ChunkedVocabParallelArgmax(h, w, bias, tp, model.shard(), chunk_tokens);
    // The chunked loss is the mean over every row (ignored ones count 0); ours is over real ones.
    r.loss =
        ChunkedVocabParallelLoss(h, w, labels, tp, model.shard(), chunk_tokens, -100, 0.0, bias) *
        (static_cast<double>(labels.numel()) / real);
    return r;
  }
  torch::Tensor logits = model.OutputLogits(hidden);
  logits = logits.reshape({-1, logits.size(-1)});
  if (want_ids) r.ids = VocabParallelArgmax(logits, tp, model.shard());
  r.loss = VocabParallelCrossEntropy(logits, labels, tp, model.shard()).sum() / real;
  return r;
}

}  // namespace braid
