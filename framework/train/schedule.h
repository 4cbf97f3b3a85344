// Learning-rate schedule (Megatron's): linear warmup from 0 to lr over warmup steps, then decay
// to min_lr by cosine, linearly, or not at all (constant) over decay_steps; min_lr after that.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "framework/core/choices.h"

namespace braid {

inline double LearningRate(int64_t step, double lr, double min_lr, int64_t warmup,
                           int64_t decay_steps, LrDecayStyle style) {
  if (warmup > 0 && step < warmup) return lr * static_cast<double>(step + 1) / warmup;
  if (style == LrDecayStyle::kConstant) return lr;
  if (step >= decay_steps) return min_lr;
  double progress = static_cast<double>(step - warmup) / std::max<int64_t>(1, decay_steps - warmup);
  double coeff =
      style == LrDecayStyle::kLinear ? 1.0 - progress : 0.5 * (std::cos(M_PI * progress) + 1.0);
  return min_lr + coeff * (lr - min_lr);
}

}  // namespace braid
