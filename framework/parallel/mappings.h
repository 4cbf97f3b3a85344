// The four tensor-parallel mappings (Megatron's mappings.py), as autograd functions over the TP
// communicator. With a TP group of one they are the identity.
//   CopyToTp:     forward identity,             backward all-reduce (sum)
//   ReduceFromTp: forward all-reduce (sum),     backward identity
//   ScatterToTp:  forward keep this rank's chunk of the last dim, backward all-gather
//   GatherFromTp: forward all-gather the last dim,                backward keep own chunk
#pragma once
#include <torch/torch.h>

#include "framework/dist/communicator.h"

namespace braid {

torch::Tensor CopyToTp(const torch::Tensor& x, Communicator& tp);
torch::Tensor ReduceFromTp(const torch::Tensor& x, Communicator& tp);
torch::Tensor ScatterToTp(const torch::Tensor& x, Communicator& tp);
torch::Tensor GatherFromTp(const torch::Tensor& x, Communicator& tp);

// Non-autograd helpers the mappings are made of (also used by the layers and tests).
torch::Tensor AllReduceSum(const torch::Tensor& x, Communicator& c);
torch::Tensor AllGatherLastDim(const torch::Tensor& x, Communicator& c);
torch::Tensor ChunkLastDim(const torch::Tensor& x, Communicator& c);

}  // namespace braid
