// DP gradient reducer (see grad_reducer.h).
#include "framework/parallel/grad_reducer.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>

#include "framework/core/check.h"

namespace braid {
namespace {
// Runs `fn` after a gradient accumulator has accumulated (the gradient is then final for this
// backward).
struct AfterAccumulate : public torch::autograd::FunctionPostHook {
  explicit AfterAccumulate(std::function<void()> fn) : fn_(std::move(fn)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    fn_();
    return outputs;
  }
  std::function<void()> fn_;
};
}  // namespace

GradReducer::GradReducer(std::vector<torch::Tensor> params, std::shared_ptr<Communicator> dp,
                         double bucket_mb)
    : params_(std::move(params)), dp_(std::move(dp)) {
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * (1 << 20) / 4));
  bucket_of_.assign(params_.size(), -1);
  ready_.assign(params_.size(), false);
  // Reverse order: the last layers' gradients come first in backward.
  std::vector<std::vector<size_t>> members;
  int64_t filled = cap;
  for (size_t k = params_.size(); k-- > 0;) {
    if (!params_[k].requires_grad()) continue;
    if (filled + params_[k].numel() > cap && filled > 0) {
      members.emplace_back();
      filled = 0;
    }
    members.back().push_back(k);
    filled += params_[k].numel();
  }
  for (const auto& m : members) {
    int64_t total = 0;
    for (size_t k : m) total += params_[k].numel();
    Bucket b;
    b.flat = torch::zeros({total}, params_[m[0]].options());
    int64_t offset = 0;
    for (size_t k : m) {
      torch::Tensor& p = params_[k];
      p.mutable_grad() = b.flat.narrow(0, offset, p.numel()).view_as(p);
      offset += p.numel();
      bucket_of_[k] = static_cast<int>(buckets_.size());
    }
    b.pending = static_cast<int>(m.size());
    buckets_.push_back(std::move(b));
  }
  if (dp_->size() == 1) return;  // nothing to reduce: no hooks
  for (size_t k = 0; k < params_.size(); ++k) {
    if (bucket_of_[k] < 0) continue;
    std::shared_ptr<torch::autograd::Node> acc =
        torch::autograd::impl::grad_accumulator(params_[k]);
    uintptr_t key =
        acc->add_post_hook(std::make_unique<AfterAccumulate>([this, k] { MarkReady(k); }));
    hooks_.emplace_back(acc, key);
  }
}

GradReducer::~GradReducer() {
  for (auto& [node, key] : hooks_) node->del_post_hook(key);
}

void GradReducer::PrepareForLastBackward() {
  armed_ = dp_->size() > 1;
  next_to_launch_ = 0;
  std::fill(ready_.begin(), ready_.end(), false);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    buckets_[b].launched = false;
    buckets_[b].work = nullptr;
    buckets_[b].pending = 0;
  }
  for (size_t k = 0; k < params_.size(); ++k)
    if (bucket_of_[k] >= 0) ++buckets_[bucket_of_[k]].pending;
}

void GradReducer::MarkReady(size_t k) {
  if (!armed_ || ready_[k]) return;
  ready_[k] = true;
  --buckets_[bucket_of_[k]].pending;
  LaunchReadyInOrder();
}

void GradReducer::LaunchReadyInOrder() {
  while (next_to_launch_ < buckets_.size() && buckets_[next_to_launch_].pending == 0) {
    Bucket& b = buckets_[next_to_launch_++];
    auto work = dp_->AllReduceAsync(b.flat, ReduceOp::kAvg);
    BRAID_CHECK_OK(work.status());
    b.work = *work;
    b.launched = true;
  }
}

double GradReducer::Finish() {
  if (!armed_) return 0.0;
  // Parameters that got no gradient this step (unused) are ready as they are.
  for (size_t b = 0; b < buckets_.size(); ++b) buckets_[b].pending = 0;
  LaunchReadyInOrder();
  auto start = std::chrono::steady_clock::now();
  for (Bucket& b : buckets_) BRAID_CHECK_OK(b.work->Wait());
  armed_ = false;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void GradReducer::ZeroGrad() {
  for (Bucket& b : buckets_) b.flat.zero_();
}

}  // namespace braid
