// bf16 autocast switched per device type (see autocast.h).
#include "framework/parallel/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

// LibTorch 2.4 replaced the per-backend autocast setters by ones that take the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define BRAID_AUTOCAST_BY_DEVICE 1
#else
#define BRAID_AUTOCAST_BY_DEVICE 0
#endif

namespace braid {
namespace {

void SetAutocastEnabled(torch::DeviceType t, bool on) {
#if BRAID_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_enabled(t, on);
#else
  if (t == torch::kCUDA) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
#endif
}
at::ScalarType AutocastDtype(torch::DeviceType t) {
#if BRAID_AUTOCAST_BY_DEVICE
  return at::autocast::get_autocast_dtype(t);
#else
  return t == torch::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                           : at::autocast::get_autocast_cpu_dtype();
#endif
}
void SetAutocastDtype(torch::DeviceType t, at::ScalarType d) {
#if BRAID_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_dtype(t, d);
#else
  if (t == torch::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(d);
  } else {
    at::autocast::set_autocast_cpu_dtype(d);
  }
#endif
}

}  // namespace

bool AutocastEnabled(torch::DeviceType t) {
#if BRAID_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(t);
#else
  return t == torch::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

AutocastScope::AutocastScope(torch::DeviceType type, bool enabled)
    : type_(type), enabled_(enabled) {
  if (!enabled_) return;
  previous_ = AutocastEnabled(type_);
  previous_dtype_ = AutocastDtype(type_);
  SetAutocastDtype(type_, at::kBFloat16);
  SetAutocastEnabled(type_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetAutocastEnabled(type_, previous_);
  SetAutocastDtype(type_, previous_dtype_);
}

}  // namespace braid
