// AdamW (see optimizer.h).
#include "framework/train/optimizer.h"

#include <ATen/record_function.h>

#include <cmath>

#include "framework/kernels/kernels.h"

namespace braid {

AdamW::AdamW(std::vector<torch::Tensor> params, std::vector<bool> decay, Options options)
    : params_(std::move(params)), decay_(std::move(decay)), o_(options) {
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p));
    v_.push_back(torch::zeros_like(p));
  }
}


void AdamW::Step(double lr) {
  RECORD_FUNCTION("braid::AdamW::Step", std::vector<c10::IValue>());  // named in BRAID_PROFILE traces
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(step_));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(o_.beta2, static_cast<double>(step_)));
  const double step_size = lr / bc1;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& p = params_[i];
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    const double decay = decay_[i] && o_.weight_decay != 0 ? 1.0 - lr * o_.weight_decay : 1.0;
    if (FusedAdamWStep(p, g, m_[i], v_[i], decay, o_.beta1, o_.beta2, bc2_sqrt, o_.eps,
                       step_size)) {
      continue;
    }
    if (decay != 1.0) p.mul_(decay);  // GPU tensors and other layouts: tensor ops
    m_[i].mul_(o_.beta1).add_(g, 1.0 - o_.beta1);
    v_[i].mul_(o_.beta2).addcmul_(g, g, 1.0 - o_.beta2);
    torch::Tensor denom = (v_[i].sqrt() / bc2_sqrt).add_(o_.eps);
    p.addcdiv_(m_[i], denom, -step_size);
  }
}

}  // namespace braid
