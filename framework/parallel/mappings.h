// The four tensor-parallel mappings (Megatron's mappings.py), as autograd functions over the TP
// communicator. With a TP group of one they are the identity.
//   CopyToTp:     forward identity,             backward all-reduce (sum)
//   ReduceFromTp: forward all-reduce (sum),     backward identity
//   ScatterToTp:  forward keep this rank's chunk of the last dim, backward all-gather
//   GatherFromTp: forward all-gather the last dim,                backward keep own chunk
//
// Sequence parallelism (parallel.sequence_parallel, Megatron's scheme) splits the residual stream
// [b, s, h] along the sequence (dim 1) within the TP group between the layers' column- and
// row-parallel GEMMs, where norms, dropout and residual adds run on s/TP positions per rank.
// Three more mappings move tensors in and out of that region:
//   ScatterToSequence:       forward keep own chunk of dim 1, backward all-gather dim 1
//                            (entering the region from a tensor every TP rank holds whole);
//   GatherFromSequence:      forward all-gather dim 1,        backward keep own chunk
//                            (leaving it for code that runs whole on every TP rank);
//   ReduceScatterToSequence: forward reduce-scatter dim 1,    backward all-gather dim 1
//                            (after a row-parallel GEMM: replaces ReduceFromTp).
// Before a column-parallel GEMM the slice is all-gathered (backward: reduce-scatter) inside the
// GEMM's own autograd function, which keeps only the slice for backward (parallel/layers.cc).
// A sequence that the TP size does not divide stops the job with a message naming the key
// (config validation refuses such a config first).
#pragma once
#include <torch/torch.h>

#include "framework/dist/communicator.h"

namespace braid {

torch::Tensor CopyToTp(const torch::Tensor& x, Communicator& tp);
torch::Tensor ReduceFromTp(const torch::Tensor& x, Communicator& tp);
torch::Tensor ScatterToTp(const torch::Tensor& x, Communicator& tp);
torch::Tensor GatherFromTp(const torch::Tensor& x, Communicator& tp);
torch::Tensor ScatterToSequence(const torch::Tensor& x, Communicator& tp);
torch::Tensor GatherFromSequence(const torch::Tensor& x, Communicator& tp);
torch::Tensor ReduceScatterToSequence(const torch::Tensor& x, Communicator& tp);

// Non-autograd helpers the mappings are made of (also used by the layers and tests).
torch::Tensor AllReduceSum(const torch::Tensor& x, Communicator& c);
// The ranks' tensors concatenated along `dim` in rank order; this rank's chunk of `dim`; the sum
// over the ranks, of which this rank keeps its chunk of `dim`.
torch::Tensor AllGatherDim(const torch::Tensor& x, Communicator& c, int64_t dim);
torch::Tensor ChunkDim(const torch::Tensor& x, Communicator& c, int64_t dim);
torch::Tensor ReduceScatterDim(const torch::Tensor& x, Communicator& c, int64_t dim);
inline torch::Tensor AllGatherLastDim(const torch::Tensor& x, Communicator& c) {
  return AllGatherDim(x, c, -1);
}
inline torch::Tensor ChunkLastDim(const torch::Tensor& x, Communicator& c) {
  return ChunkDim(x, c, -1);
}

}  // namespace braid
