#include "framework/parallel/aux_loss.h"

#include <atomic>

namespace braid {
namespace {

std::atomic<double> g_scale{1.0};

class AttachFunction : public torch::autograd::Function<AttachFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& out,
                               const torch::Tensor& aux, double scale) {
    ctx->saved_data["scale"] = scale;
    ctx->save_for_backward({aux});
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const torch::Tensor aux = ctx->get_saved_variables()[0];
    return {grad[0], torch::full_like(aux, ctx->saved_data["scale"].toDouble()), torch::Tensor()};
  }
};

}  // namespace

void SetAuxLossScale(double scale) { g_scale = scale; }
double AuxLossScale() { return g_scale; }

torch::Tensor AttachAuxLoss(const torch::Tensor& out, const torch::Tensor& aux) {
  return AttachFunction::apply(out, aux, AuxLossScale());
}

}  // namespace braid
