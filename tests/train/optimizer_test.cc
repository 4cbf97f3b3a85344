// braid's AdamW (a fused single pass on CPUs, AVX2 when the CPU has it; and the multi-tensor
// path GPU parameters take, forced here with fused_cpu = false) against LibTorch's own
// torch::optim::AdamW (independent code, same published formula): parameters and both moments
// after 6 steps with a changing learning rate, weight decay on matrices only, sizes that are and
// are not multiples of the vector width, fp32 and fp64.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "framework/train/optimizer.h"
#include "tests/lib/tensor_compare.h"

namespace braid {
namespace {

using testing::RelDiff;

void Compare(torch::Dtype dtype, int threads, bool fused) {
  torch::set_num_threads(threads);
  torch::manual_seed(2);
  auto o = torch::TensorOptions().dtype(dtype);
  std::vector<std::vector<int64_t>> shapes = {{300, 77}, {77}, {1}, {8}, {13, 5}, {70000}};
  std::vector<torch::Tensor> ours, ref;
  std::vector<bool> decay;
  for (const auto& s : shapes) {
    torch::Tensor p = torch::randn(s, o);
    ours.push_back(p.clone().requires_grad_(true));
    ref.push_back(p.clone().requires_grad_(true));
    decay.push_back(s.size() >= 2);
  }
  const double wd = 0.1, b1 = 0.9, b2 = 0.95, eps = 1e-8;
  AdamW mine(ours, decay, AdamW::Options{b1, b2, eps, wd, fused});
  std::vector<torch::Tensor> with_decay, without;
  for (size_t i = 0; i < ref.size(); ++i) (decay[i] ? with_decay : without).push_back(ref[i]);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      with_decay, std::make_unique<torch::optim::AdamWOptions>(
                      torch::optim::AdamWOptions(1.0).betas({b1, b2}).eps(eps).weight_decay(wd)));
  groups.emplace_back(
      without, std::make_unique<torch::optim::AdamWOptions>(
                   torch::optim::AdamWOptions(1.0).betas({b1, b2}).eps(eps).weight_decay(0)));
  torch::optim::AdamW theirs(groups, torch::optim::AdamWOptions(1.0));
  for (int step = 0; step < 6; ++step) {
    const double lr = 1e-2 * (step + 1);
    for (auto& g : theirs.param_groups())
      static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    for (size_t i = 0; i < ours.size(); ++i) {
      torch::Tensor g = torch::randn(ours[i].sizes(), o) * static_cast<double>(i + 1);
      ours[i].mutable_grad() = g.clone();
      ref[i].mutable_grad() = g.clone();
    }
    mine.Step(lr);
    theirs.step();
  }
  const double tol = dtype == torch::kDouble ? 1e-12 : 2e-6;
  for (size_t i = 0; i < ours.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "parameter " << i << " " << c10::toString(dtype)
                                      << (fused ? " fused" : " multi-tensor"));
    EXPECT_LT(RelDiff(ours[i], ref[i]), tol);
    auto& state = static_cast<torch::optim::AdamWParamState&>(
        *theirs.state().at(c10::guts::to_string(ref[i].unsafeGetTensorImpl())));
    EXPECT_LT(RelDiff(mine.exp_avg()[i], state.exp_avg()), tol);
    EXPECT_LT(RelDiff(mine.exp_avg_sq()[i], state.exp_avg_sq()), tol);
  }
  EXPECT_EQ(mine.step(), 6);
}

TEST(AdamW, EqualsLibTorchAdamW) {
  for (int threads : {1, 2}) {
    for (bool fused : {true, false}) {  // the CPU kernel, and the multi-tensor path GPUs take
      Compare(torch::kFloat, threads, fused);
      Compare(torch::kDouble, threads, fused);
    }
  }
}

}  // namespace
}  // namespace braid
