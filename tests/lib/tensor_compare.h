// Comparing tensors in tests: the largest absolute difference relative to the largest magnitude
// of the reference (any device, any floating dtype; computed in fp64 on the host).
#pragma once
#include <torch/torch.h>

#include <algorithm>

namespace braid::testing {

inline double RelDiff(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor x = a.detach().cpu().to(torch::kDouble);
  const torch::Tensor y = b.detach().cpu().to(torch::kDouble);
  const double scale = std::max(y.abs().max().item<double>(), 1e-30);
  return (x - y).abs().max().item<double>() / scale;
}

}  // namespace braid::testing
