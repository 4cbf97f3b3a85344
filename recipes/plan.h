// What a run will need, worked out from the resolved config before anything is built: the
// parameter count (the family's, Family::ParameterCount), and per rank the bytes of fp32 weights,
// gradients and AdamW state, and of the activations of one micro-batch (Megatron's estimate for
// a transformer layer, s·b·h·(34 + 5·a·s/h) bytes at 16 bits, doubled for fp32, plus the logits
// and their gradient). pretrain refuses a run whose estimate exceeds the machine's memory per
// rank, and --print-config prints it. An estimate: the real peak differs by tens of percent.
#pragma once
#include <string>

#include "absl/status/status.h"
#include "framework/core/config.h"
#include "recipes/family.h"

namespace braid {

struct MemoryEstimate {
  double parameters = 0;        // the whole model
  double state_bytes = 0;       // per rank: weights, gradients, AdamW moments (fp32)
  double activation_bytes = 0;  // per rank, one micro-batch
  double total() const { return state_bytes + activation_bytes; }
  std::string ToString() const;
};

MemoryEstimate EstimateMemory(const Family& family, const Config& config,
                              const DerivedSizes& sizes);

// An error when `estimate` per rank exceeds the machine's memory divided among the `local_ranks`
// ranks on this node (train.device: cpu; GPUs are not checked here).
absl::Status CheckMemory(const MemoryEstimate& estimate, const Config& config, int local_ranks);

}  // namespace braid
