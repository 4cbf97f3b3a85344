// Where a rank trains and in what precision: `train.device` (cpu | cuda) and `train.precision`
// (fp32 | bf16).
//
// - cpu: parameters, batches, dropout generators and optimizer state on the host; collectives
//   through MPI.
// - cuda: the same on this rank's GPU (local rank mod visible GPUs); the communicators route CUDA
//   tensors to NCCL (communicator.h), so the TP mappings and the DP gradient reducer are unchanged.
// - bf16: autocast for the forward pass (matmuls and linear layers in bf16, everything autocast
//   keeps in fp32 stays fp32), fp32 master weights, fp32 gradients, fp32 gradient reduction and
//   fp32 AdamW. The backward runs outside autocast, in the dtypes the forward saved. The cross
//   entropy upcasts its logits to fp32. Works on CPU too (slowly, unless the CPU has bf16
//   instructions): that is how the bf16 path is tested on machines without a GPU.
#pragma once
#include <torch/torch.h>

#include <array>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/parallel/autocast.h"  // AutocastScope

namespace braid {

// The device of `rank` for config.train.device; an error naming train.device, with a hint, when
// CUDA is asked for and this LibTorch has none or no GPU is visible. The GPU index is the local
// rank (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID or LOCAL_RANK; else the rank) modulo the number
// of visible GPUs.
absl::StatusOr<torch::Device> ResolveTrainDevice(const Config& config, int rank);

// The matmul ceiling for MFU: the best rate (GFLOP/s) of `dtype` on `device`, with the current
// intra-op threads, over `trials` timings of each of the model's own GEMM `shapes` ({m, k, n}:
// [m, k] x [k, n]) and of a square product (512^3 on a CPU, 8192^3 on a GPU, synchronised),
// about `seconds` in all. The best of several shapes and trials, not one timing: a shared
// machine's rate swings, and a ceiling measured in a slow moment made MFU exceed 100%.
double MeasureMatmulGflops(torch::Device device, at::ScalarType dtype, double seconds = 0.6,
                           const std::vector<std::array<int64_t, 3>>& shapes = {}, int trials = 3);

// Blocks until the device has finished the work queued so far (no-op on the CPU).
void SynchronizeDevice(torch::Device device);

}  // namespace braid
