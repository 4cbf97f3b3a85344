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
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& p : params_) grads.push_back(p.grad());
  Step(lr, grads);
}

void AdamW::Step(double lr, const std::vector<torch::Tensor>& grads) {
  RECORD_FUNCTION("braid::AdamW::Step",
                  std::vector<c10::IValue>());  // named in BRAID_PROFILE traces
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(step_));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(o_.beta2, static_cast<double>(step_)));
  const double step_size = lr / bc1;
  // CPU parameters: one fused pass each (kernels.h). The rest (GPU tensors, other layouts):
  // multi-tensor (_foreach) ops, a handful of kernel launches for all of them together instead
  // of six per parameter: on a GPU the per-parameter form costs more in launches than in work.
  std::vector<torch::Tensor> ps, gs, ms, vs, decayed;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& p = params_[i];
    const torch::Tensor& g = grads[i];
    if (!g.defined()) continue;
    const double decay = decay_[i] && o_.weight_decay != 0 ? 1.0 - lr * o_.weight_decay : 1.0;
    if (o_.fused_cpu && FusedAdamWStep(p, g, m_[i], v_[i], decay, o_.beta1, o_.beta2, bc2_sqrt,
                                       o_.eps, step_size)) {
      continue;
    }
    ps.push_back(p);
    gs.push_back(g);
    ms.push_back(m_[i]);
    vs.push_back(v_[i]);
    if (decay != 1.0) decayed.push_back(p);
  }
  if (ps.empty()) return;
  if (!decayed.empty()) at::_foreach_mul_(decayed, 1.0 - lr * o_.weight_decay);
  at::_foreach_mul_(ms, o_.beta1);
  at::_foreach_add_(ms, gs, 1.0 - o_.beta1);
  at::_foreach_mul_(vs, o_.beta2);
  at::_foreach_addcmul_(vs, gs, gs, 1.0 - o_.beta2);
  std::vector<torch::Tensor> denom = at::_foreach_sqrt(vs);
  at::_foreach_div_(denom, bc2_sqrt);
  at::_foreach_add_(denom, o_.eps);
  at::_foreach_addcdiv_(ps, ms, denom, -step_size);
}

}  // namespace braid
