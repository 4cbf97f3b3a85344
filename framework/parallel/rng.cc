// TP-aware dropout generators (see rng.h).
#include "framework/parallel/rng.h"

#include <ATen/CPUGeneratorImpl.h>

namespace braid {
namespace {
at::Generator MakeGenerator(uint64_t seed, torch::Device device) {
  if (device.is_cpu()) return at::detail::createCPUGenerator(seed);
  // Any other device: a private copy of that device's default generator, reseeded.
  at::Generator g = at::globalContext().defaultGenerator(device).clone();
  g.set_current_seed(seed);
  return g;
}
}  // namespace

TpRng::TpRng(uint64_t seed, int dp_rank, int tp_rank, torch::Device device)
    : replicated(MakeGenerator(seed * 1000003ULL + 17 + dp_rank * 7919ULL, device)),
      sharded(MakeGenerator(seed * 1000003ULL + 2718 + dp_rank * 7919ULL + tp_rank * 104729ULL,
                            device)) {}

}  // namespace braid
