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

// The arg-max over the real vocabulary of vocabulary-parallel logits [N, V/tp], without gathering
// them: each rank's best (value, id), gathered as [N, 2 x tp]; ties go to the lowest id, as
// torch's argmax over the full row. -> [N] int64 (no gradient). Its tensors have a size fixed by
// N, so the caching CPU allocator keeps one block for them (gathering only the target rows would
// allocate a new size every batch).
torch::Tensor VocabParallelArgmax(const torch::Tensor& logits, Communicator& tp, VocabShard shard);

}  // namespace braid
