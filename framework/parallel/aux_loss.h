// Auxiliary losses computed inside a model (mixture of experts' load-balancing and router z-losses,
// framework/nn/moe.h) that enter the objective without passing through the model's outputs:
// AttachAuxLoss(out, aux) returns `out` unchanged, and in backward hands the scalar `aux` the
// gradient the micro-batch loss gets (SetAuxLossScale: the training step's 1 / accumulation steps),
// so its gradient reaches the parameters as if aux had been added to the loss. It works at any
// pipeline stage, as the gradient rides on the stage's own backward pass.
#pragma once
#include <torch/torch.h>

namespace braid {

void SetAuxLossScale(double scale);  // 1 by default
double AuxLossScale();
torch::Tensor AttachAuxLoss(const torch::Tensor& out, const torch::Tensor& aux);

}  // namespace braid
