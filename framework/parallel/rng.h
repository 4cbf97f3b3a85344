// Dropout randomness under TP (Megatron's model-parallel RNG tracker, without the tracker):
// `replicated` draws the same numbers on every TP rank of a replica (dropout on activations that
// every TP rank holds whole, e.g. after a row-parallel layer); `sharded` differs per TP rank
// (dropout inside the TP region, e.g. on attention probabilities of this rank's heads). Both
// differ between DP replicas.
//
// The generators live on the training device: CPU generators for `train.device: cpu`, CUDA
// generators (Philox, cloned from the device's default generator and reseeded, so no CUDA header
// is needed here) for `cuda`. The seeds are the same on both, the streams are not: a CPU run and
// a CUDA run draw different dropout masks. Checkpoints store the state of whichever kind is in use.
#pragma once
#include <torch/torch.h>

namespace braid {

struct TpRng {
  at::Generator replicated;
  at::Generator sharded;
  TpRng(uint64_t seed, int dp_rank, int tp_rank, torch::Device device = torch::kCPU);
};

// Inverted dropout with an explicit generator; identity when p == 0 or not training.
inline torch::Tensor Dropout(const torch::Tensor& x, double p, bool training, at::Generator& gen) {
  if (p <= 0 || !training) return x;
  torch::Tensor keep = at::empty_like(x).bernoulli_(1.0 - p, gen);
  return x * keep / (1.0 - p);
}

}  // namespace braid
