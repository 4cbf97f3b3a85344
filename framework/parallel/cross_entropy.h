// Cross entropy over vocabulary-parallel logits that never gathers the full logits: the max, the
// target's logit and the sum of exponentials are each all-reduced over TP. One pass computes the
// loss and keeps the softmax, which backward turns into the gradient in place
// (softmax - (1 - e) onehot - e/V), without a zero-filled temporary. Targets equal to
// `ignore_index` get loss 0 and gradient 0. Logits of padded vocabulary entries (at or past
// `vocab_size`) are excluded, so the loss equals the unpadded model's.
#pragma once
#include <torch/torch.h>

#include "framework/dist/communicator.h"

namespace braid {

struct VocabShard {
  int64_t start = 0;       // first vocabulary id of this rank's logits
  int64_t vocab_size = 0;  // the real (unpadded) vocabulary size
};

// logits [N, V/tp] (any float dtype; computed in fp32, or in fp64 for fp64 input), targets [N]
// int64 -> loss [N].
torch::Tensor VocabParallelCrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                        Communicator& tp, VocabShard shard,
                                        int64_t ignore_index = -100, double label_smoothing = 0.0);

// The output projection and the mean cross entropy in one, over chunks of `chunk_tokens` rows
// (model.output_chunk_tokens): the [N, V/tp] logits are never materialised, only one chunk's
// [chunk, V/tp] at a time. h [N, H] is the final hidden state already in the TP region (after
// CopyToTp), weight [V/tp, H] this rank's vocabulary rows, targets [N]. -> the mean over all N
// rows (ignored ones count, with loss 0), exactly VocabParallelCrossEntropy(h @ weight^T, ...)
// .mean(); with `bias` [V/tp] (this rank's part of an output bias: BERT's, BART's
// final_logits_bias) the logits are h @ weight^T + bias. When gradients are wanted, each chunk's
// gradients of h and weight are computed in the forward pass, while its softmax is at hand (the
// upstream gradient of a mean is known up to one scalar, which backward applies): no logits are
// kept and none recomputed. Gradients are accumulated in fp32 (fp64 for fp64 input) and returned in
// the inputs' dtypes.
torch::Tensor ChunkedVocabParallelLoss(const torch::Tensor& h, const torch::Tensor& weight,
                                       const torch::Tensor& targets, Communicator& tp,
                                       VocabShard shard, int64_t chunk_tokens,
                                       int64_t ignore_index = -100, double label_smoothing = 0.0,
                                       const torch::Tensor& bias = {});

// The arg-max over the real vocabulary of vocabulary-parallel logits [N, V/tp], without gathering
// them: each rank's best (value, id), gathered as [N, 2 x tp]; ties go to the lowest id, as
// torch's argmax over the full row. -> [N] int64 (no gradient). Its tensors have a size fixed by
// N, so the caching CPU allocator keeps one block for them (gathering only the target rows would
// allocate a new size every batch).
torch::Tensor VocabParallelArgmax(const torch::Tensor& logits, Communicator& tp, VocabShard shard);
// VocabParallelArgmax of h @ weight^T (+ bias) over chunks of `chunk_tokens` rows, without
// gradients (the chunked loss's metrics): the [N, V/tp] logits are never held whole.
torch::Tensor ChunkedVocabParallelArgmax(const torch::Tensor& h, const torch::Tensor& weight,
                                         const torch::Tensor& bias, Communicator& tp,
                                         VocabShard shard, int64_t chunk_tokens);

}  // namespace braid
