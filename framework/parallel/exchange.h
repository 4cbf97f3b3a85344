// The token exchange of expert parallelism (framework/nn/moe.h): rows of a tensor through
// Communicator::AllToAll with autograd (the backward sends the gradients back by the reverse
// all-to-all), and the time spent in it, for the run log's share of the step.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "framework/dist/communicator.h"

namespace braid {

// x's rows: send[r] consecutive rows to rank r of `c`; returns the recv[r] rows from each rank r,
// in rank order. Collective over `c`, in forward and in backward.
torch::Tensor AllToAllRows(const torch::Tensor& x, Communicator& c,
                           const std::vector<int64_t>& send, const std::vector<int64_t>& recv);

// Wall seconds this process spent in AllToAllRows (forward and backward) since the last call. On
// NCCL that is the time to enqueue, not the transfer.
double TakeAllToAllSeconds();

}  // namespace braid
