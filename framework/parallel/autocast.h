// bf16 autocast on one device type for the lifetime of a scope: the training step's forward pass
// (train/device.h) and the forward a recomputed layer runs again in backward (nn/blocks.h).
#pragma once
#include <torch/torch.h>

namespace braid {

// Whether autocast is on for `type` in this thread now.
bool AutocastEnabled(torch::DeviceType type);

// bf16 autocast on `type` for the lifetime of the scope (a no-op when !enabled). On exit the
// previous state returns and the cast cache is cleared: it holds bf16 copies of the weights,
// which the optimizer step is about to change. Works with LibTorch 1.13 and 2.x.
class AutocastScope {
 public:
  AutocastScope(torch::DeviceType type, bool enabled);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  torch::DeviceType type_;
  bool enabled_;
  bool previous_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace braid
