// DP gradient reducer (see grad_reducer.h).
#include "framework/parallel/grad_reducer.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>
#include <optional>

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
                         double bucket_mb, bool shard, std::vector<bool> only, double scale)
    : params_(std::move(params)),
      dp_(std::move(dp)),
      shard_(shard && dp_->size() > 1),
      scale_(scale) {
  BRAID_CHECK(only.empty() || only.size() == params_.size());
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * (1 << 20) / 4));
  bucket_of_.assign(params_.size(), -1);
  ready_.assign(params_.size(), false);
  // Reverse order: the last layers' gradients come first in backward.
  std::vector<std::vector<size_t>> members;
  int64_t filled = cap;
  for (size_t k = params_.size(); k-- > 0;) {
    if (!params_[k].requires_grad() || (!only.empty() && !only[k])) continue;
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
    const int64_t d = dp_->size();
    const int64_t padded = shard_ ? (total + d - 1) / d * d : total;
    b.flat = torch::zeros({padded}, params_[m[0]].options());
    int64_t offset = 0;
    for (size_t k : m) {
      torch::Tensor& p = params_[k];
      p.mutable_grad() = b.flat.narrow(0, offset, p.numel()).view_as(p);
      b.members.push_back(k);
      b.offsets.push_back(offset);
      offset += p.numel();
      bucket_of_[k] = static_cast<int>(buckets_.size());
    }
    if (shard_)
      b.shard = b.flat.narrow(0, b.flat.numel() / dp_->size() * dp_->rank(),
                              b.flat.numel() / dp_->size());  // reduced in place
    b.pending = static_cast<int>(m.size());
    buckets_.push_back(std::move(b));
  }
  if (shard_) {
    pieces_ = PiecesOf(dp_->rank());
    for (Piece& p : pieces_) p.grad = buckets_[p.bucket].shard.narrow(0, p.at, p.length);
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

std::vector<GradReducer::Piece> GradReducer::PiecesOf(int dp_rank) const {
  std::vector<Piece> out;
  if (!shard_) return out;
  for (size_t bi = 0; bi < buckets_.size(); ++bi) {
    const Bucket& b = buckets_[bi];
    // Rank r's shard [lo, lo + n) of the bucket, cut at the parameters' boundaries.
    const int64_t n = b.flat.numel() / dp_->size(), lo = n * dp_rank;
    for (size_t j = 0; j < b.members.size(); ++j) {
      const int64_t start = std::max(lo, b.offsets[j]);
      const int64_t end = std::min(lo + n, b.offsets[j] + params_[b.members[j]].numel());
      if (start >= end) continue;
      out.push_back(
          {b.members[j], start - b.offsets[j], end - start, torch::Tensor(), bi, start - lo});
    }
  }
  return out;
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

void GradReducer::Hold(size_t k) {
  if (held_.size() < params_.size()) held_.assign(params_.size(), false);
  held_[k] = true;
}

void GradReducer::MarkReady(size_t k) {
  if (!armed_ || ready_[k] || (!held_.empty() && held_[k])) return;
  ready_[k] = true;
  --buckets_[bucket_of_[k]].pending;
  LaunchReadyInOrder();
}

void GradReducer::LaunchReadyInOrder() {
  while (next_to_launch_ < buckets_.size() && buckets_[next_to_launch_].pending == 0) {
    Bucket& b = buckets_[next_to_launch_++];
    auto work = shard_ ? dp_->ReduceScatterAsync(b.flat, b.shard, ReduceOp::kAvg)
                       : dp_->AllReduceAsync(b.flat, ReduceOp::kAvg);
    BRAID_CHECK_OK(work.status());
    b.work = *work;
    b.launched = true;
  }
}

double GradReducer::Finish() {
  auto rescale = [this] {
    if (scale_ == 1.0) return;
    torch::NoGradGuard no_grad;
    for (Bucket& b : buckets_) (shard_ ? b.shard : b.flat).mul_(scale_);
  };
  if (!armed_) {
    rescale();
    return 0.0;
  }
  // Parameters that got no gradient this step (unused) are ready as they are.
  for (size_t b = 0; b < buckets_.size(); ++b) buckets_[b].pending = 0;
  LaunchReadyInOrder();
  auto start = std::chrono::steady_clock::now();
  for (Bucket& b : buckets_) BRAID_CHECK_OK(b.work->Wait());
  armed_ = false;
  rescale();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void GradReducer::GatherPieces(const std::vector<torch::Tensor>& values,
                               std::vector<torch::Tensor>& whole) {
  BRAID_CHECK(shard_ && values.size() == pieces_.size() && whole.size() == params_.size());
  torch::NoGradGuard no_grad;
  const int64_t d = dp_->size();
  // Bucket by bucket, two in flight: the next gather runs while the last one is unpacked. At most
  // two buckets' worth of buffers exist at once (not the whole model's).
  struct InFlight {
    size_t bucket = 0;
    torch::Tensor gathered;
    WorkHandle work;
  };
  auto launch = [&](size_t bi, size_t& j) {
    const Bucket& b = buckets_[bi];
    const int64_t n = b.shard.numel();
    torch::Tensor send = torch::zeros({n}, values.empty() ? b.flat.options() : values[0].options());
    for (; j < pieces_.size() && pieces_[j].bucket == bi; ++j) {
      send.narrow(0, pieces_[j].at, pieces_[j].length).copy_(values[j].reshape({-1}));
    }
    InFlight f{bi, torch::empty({n * d}, send.options()), nullptr};
    auto work = dp_->AllGatherAsync(send, f.gathered);
    BRAID_CHECK_OK(work.status());
    f.work = *work;
    return f;
  };
  auto unpack = [&](InFlight& f) {
    BRAID_CHECK_OK(f.work->Wait());
    const Bucket& b = buckets_[f.bucket];
    for (size_t m = 0; m < b.members.size(); ++m) {
      torch::Tensor& dst = whole[b.members[m]];
      dst.view({-1}).copy_(f.gathered.narrow(0, b.offsets[m], dst.numel()));
    }
  };
  size_t j = 0;
  std::optional<InFlight> previous;
  for (size_t bi = 0; bi < buckets_.size(); ++bi) {
    InFlight next = launch(bi, j);
    if (previous) unpack(*previous);
    previous = std::move(next);
  }
  if (previous) unpack(*previous);
}

void GradReducer::ZeroGrad() {
  for (Bucket& b : buckets_) b.flat.zero_();
}

}  // namespace braid
