// One optimizer step (see step.h).
#include "framework/train/step.h"

#include <chrono>
#include <cmath>

#include "absl/strings/str_format.h"
#include "framework/core/check.h"
#include "framework/core/log.h"
#include "framework/core/system.h"
#include "framework/parallel/aux_loss.h"
#include "framework/parallel/exchange.h"
#include "framework/parallel/layers.h"
#include "framework/train/device.h"
#include "framework/train/pipeline.h"

namespace braid {

double AllReduceScalar(Communicator& comm, double v, ReduceOp op) {
  torch::Tensor t = torch::full({1}, v, torch::kDouble);
  BRAID_CHECK_OK(comm.AllReduce(t, op));
  return t.item<double>();
}

TrainStep::TrainStep(TrainTask& task, const Config& config, const DerivedSizes& sizes,
                     const ParallelLayout& layout, torch::Device device)
    : task_(task),
      tc_(config.train),
      accumulation_(sizes.accumulation_steps),
      layout_(layout),
      device_(device),
      bf16_(config.train.precision == Precision::kBf16),
      schedule_(config.parallel.pipeline_schedule) {
  torch::nn::Module& model = task.model();
  std::map<std::string, TpParam> layouts = CollectTpParams(model);
  std::vector<bool> decay;
  if (layout.pp_size > 1) tied_ = task.TiedEmbeddingCopy();
  int tied_index = -1;
  for (const auto& p : model.named_parameters()) {
    if (tied_.defined() && p.value().is_same(tied_)) tied_index = static_cast<int>(params_.size());
    copy_.push_back(tied_.defined() && p.value().is_same(tied_) && !layout.first_stage());
    params_.push_back(p.value());
    const TpParam& l = layouts[p.key()];
    const int64_t n = p.value().numel();
    if (layout.tp_rank == 0) {
      counted_.push_back(n);
    } else if (l.axis < 0) {
      counted_.push_back(0);
    } else {  // a replicated tail along the split axis: the flat elements from its start
      const int64_t rows = p.value().size(l.axis);
      BRAID_CHECK(l.replicated_tail == 0 || l.axis == 0);
      counted_.push_back(n / rows * (rows - l.replicated_tail));
    }
    expert_.push_back(layout.ep_size > 1 && l.expert);
    decay.push_back(p.value().dim() >= 2);  // no weight decay on biases and norm weights
    local_numel_ += p.value().numel();
    if (l.expert) local_expert_numel_ += p.value().numel();
  }
  if (layout.ep_size > 1) {  // the distributed optimizer shards the dense parameters only
    std::vector<bool> dense(expert_.size());
    for (size_t i = 0; i < expert_.size(); ++i) dense[i] = !expert_[i];
    reducer_ = std::make_unique<GradReducer>(params_, layout.dp, config.parallel.grad_bucket_mb,
                                             config.parallel.distributed_optimizer, dense);
    expert_reducer_ =
        std::make_unique<GradReducer>(params_, layout.expert_dp, config.parallel.grad_bucket_mb,
                                      false, expert_, 1.0 / static_cast<double>(layout.ep_size));
  } else {
    reducer_ = std::make_unique<GradReducer>(params_, layout.dp, config.parallel.grad_bucket_mb,
                                             config.parallel.distributed_optimizer);
  }
  // The tied copies' gradients are summed over the embedding group before the DP reduction.
  if (tied_index >= 0) reducer_->Hold(tied_index);
  const AdamW::Options options{tc_.adam_beta1, tc_.adam_beta2, tc_.adam_eps, tc_.weight_decay};
  if (!reducer_->sharded()) {
    if (config.parallel.distributed_optimizer) {
      BLOG(INFO, "train") << "parallel.distributed_optimizer: DP is 1, nothing to shard";
    }
    optimizer_ = std::make_unique<AdamW>(params_, decay, options);
    return;
  }
  // The distributed optimizer: AdamW over this rank's pieces (views of the parameters), then,
  // with expert parallelism, the experts whole (replicated over expert_dp, 1/EP of them here).
  std::vector<torch::Tensor> views;
  std::vector<bool> piece_decay;
  int64_t mine = 0;
  for (const GradReducer::Piece& piece : reducer_->Pieces()) {
    views.push_back(params_[piece.param].detach().view({-1}).narrow(0, piece.offset, piece.length));
    piece_decay.push_back(decay[piece.param]);
    mine += piece.length;
  }
  std::vector<size_t> whole;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!expert_[i] || !params_[i].requires_grad()) continue;
    whole.push_back(i);
    views.push_back(params_[i].detach());
    piece_decay.push_back(decay[i]);
    mine += params_[i].numel();
  }
  optimizer_ = std::make_unique<AdamW>(views, piece_decay, options);
  optimizer_->sharding.whole = whole;
  optimizer_->sharding.dp_rank = layout.dp_rank;
  for (int d = 0; d < layout.dp_size; ++d) {
    std::vector<AdamW::Range>& ranges = optimizer_->sharding.of_rank.emplace_back();
    for (const GradReducer::Piece& piece : reducer_->PiecesOf(d))
      ranges.push_back({piece.param, piece.offset, piece.length});
  }
  BLOG(INFO, "train") << absl::StrFormat(
      "distributed optimizer: AdamW state for %d of this rank's %d parameters (DP %d): %.1f MB "
      "instead of %.1f MB",
      mine, local_numel_, layout.dp_size, mine * 8 / 1e6, local_numel_ * 8 / 1e6);
}

// Global L2 norm of the gradients. DP ranks hold identical (averaged) gradients already; with the
// distributed optimizer each holds its shards, whose squared norms are summed over DP. The
// squared norms are summed on the device and read once (one host sync per step on a GPU).
double TrainStep::GradNorm() const {
  std::vector<torch::Tensor> norms, experts;
  if (reducer_->sharded()) {
    for (const GradReducer::Piece& piece : reducer_->Pieces()) {
      const int64_t counted = std::min(piece.length, counted_[piece.param] - piece.offset);
      if (counted <= 0 || copy_[piece.param]) continue;
      norms.push_back(piece.grad.view({-1}).narrow(0, 0, counted).norm().to(torch::kDouble));
    }
  }
  {  // the parameters not in pieces: all of them without the distributed optimizer, else experts
    for (size_t i = 0; i < params_.size(); ++i) {
      if (reducer_->sharded() && !expert_[i]) continue;
      if (!params_[i].grad().defined()) continue;
      if (counted_[i] == 0 || copy_[i]) continue;
      const torch::Tensor& g = params_[i].grad();
      (expert_[i] ? experts : norms)
          .push_back((counted_[i] == g.numel() ? g : g.reshape({-1}).narrow(0, 0, counted_[i]))
                         .norm()
                         .to(torch::kDouble));  // vectorised, no copy
    }
  }
  double sq = norms.empty() ? 0.0 : torch::stack(norms).square().sum().item<double>();
  if (reducer_->sharded()) sq = AllReduceScalar(*layout_.dp, sq, ReduceOp::kSum);
  if (expert_reducer_) {  // each EP rank's own experts
    const double e = experts.empty() ? 0.0 : torch::stack(experts).square().sum().item<double>();
    sq += AllReduceScalar(*layout_.ep, e, ReduceOp::kSum);
  }
  if (layout_.tp_size > 1) sq = AllReduceScalar(*layout_.tp, sq, ReduceOp::kSum);
  if (layout_.pp_size > 1) sq = AllReduceScalar(*layout_.pp, sq, ReduceOp::kSum);
  return std::sqrt(sq);
}

void TrainStep::PrepareForLastBackward() {
  reducer_->PrepareForLastBackward();
  if (expert_reducer_) expert_reducer_->PrepareForLastBackward();
}

absl::StatusOr<double> TrainStep::RunPipelined(Loader& loader, TpRng& rng, StepResult& r) {
  const StagePlan& plan = *task_.stage();
  const std::vector<PipeAction> schedule = ScheduleOf(
      schedule_, plan.pp_size, plan.virtual_size, plan.pp_rank, static_cast<int>(accumulation_));
  PipelineStepOptions options;
  options.loss_scale = 1.0 / static_cast<double>(accumulation_);
  SetAuxLossScale(options.loss_scale);
  options.bf16 = bf16_;
  options.before_last_backward = [this] { PrepareForLastBackward(); };
  BRAID_ASSIGN_OR_RETURN(PipelineStepResult p,
                         RunPipelineStep(
                             task_, schedule, [&](int) { return ToBatch(loader.Next(), device_); },
                             *layout_.pp, rng, &r.metrics, options));
  r.pipeline_wait = p.wait_seconds;
  BRAID_RETURN_IF_ERROR(ShareStageMetrics(*layout_.pp, &r.metrics));
  if (tied_.defined() && tied_.grad().defined()) {
    BRAID_RETURN_IF_ERROR(layout_.embedding->AllReduce(tied_.grad(), ReduceOp::kSum));
  }
  return AllReduceScalar(*layout_.pp, p.loss_sum, ReduceOp::kSum);
}

absl::StatusOr<StepResult> TrainStep::Run(int64_t step, Loader& loader, double lr, TpRng& rng) {
  StepResult r;
  const double start = SteadySeconds();
  reducer_->ZeroGrad();
  if (expert_reducer_) expert_reducer_->ZeroGrad();
  // The exchanges of this step only (not an evaluation's in between).
  if (layout_.ep_size > 1) TakeAllToAllSeconds();
  double loss_sum = 0;
  if (layout_.pp_size > 1) {
    BRAID_ASSIGN_OR_RETURN(loss_sum, RunPipelined(loader, rng, r));
  }
  SetAuxLossScale(1.0 / static_cast<double>(accumulation_));  // as (loss / accumulation)
  for (int64_t m = 0; m < accumulation_ && layout_.pp_size == 1; ++m) {
    Batch batch = ToBatch(loader.Next(), device_);
    if (m + 1 == accumulation_) PrepareForLastBackward();
    torch::Tensor loss;
    {
      AutocastScope amp(device_.type(), bf16_);  // forward only; backward in the saved dtypes
      loss = task_.Loss(batch, rng, &r.metrics);
    }
    (loss / static_cast<double>(accumulation_)).backward();
    loss_sum += loss.item<double>();
  }
  for (auto& [k, v] : r.metrics) v /= static_cast<double>(accumulation_);
  r.comm_wait = reducer_->Finish();
  if (expert_reducer_) r.comm_wait += expert_reducer_->Finish();
  r.loss = AllReduceScalar(*layout_.dp, loss_sum / accumulation_, ReduceOp::kAvg);
  r.grad_norm = GradNorm();
  if (!std::isfinite(r.loss) || !std::isfinite(r.grad_norm)) {
    r.skipped = true;
    ++bad_in_a_row_;
    BLOG(WARNING, "train") << absl::StrFormat(
        "step %d: loss %g, grad norm %g: not finite, step skipped (%d in a row)", step, r.loss,
        r.grad_norm, bad_in_a_row_);
    if (bad_in_a_row_ >= tc_.max_bad_steps) {
      return absl::AbortedError(absl::StrFormat(
          "step %d: %d steps in a row had a NaN/Inf loss or gradient norm; stopping. HINT: "
          "lower train.lr, raise lr_warmup_steps, or check the data.",
          step, bad_in_a_row_));
    }
    r.seconds = SteadySeconds() - start;
    return r;
  }
  bad_in_a_row_ = 0;
  std::vector<torch::Tensor> grads;  // what the optimizer updates from
  if (reducer_->sharded()) {
    for (const GradReducer::Piece& piece : reducer_->Pieces()) grads.push_back(piece.grad);
    for (size_t i : optimizer_->sharding.whole) grads.push_back(params_[i].grad());
  } else {
    for (auto& p : params_) grads.push_back(p.grad());
  }
  if (tc_.clip_grad > 0 && r.grad_norm > tc_.clip_grad) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> defined;
    for (const torch::Tensor& g : grads)
      if (g.defined()) defined.push_back(g);
    // One multi-tensor launch on a GPU, not one per parameter.
    at::_foreach_mul_(defined, tc_.clip_grad / (r.grad_norm + 1e-6));
  }
  optimizer_->Step(lr, grads);
  if (layout_.ep_size > 1) {  // the expert-parallel exchanges' share of this step (run log)
    r.metrics["moe_a2a_share"] = TakeAllToAllSeconds() / std::max(1e-9, SteadySeconds() - start);
  }
  if (reducer_->sharded()) {  // every rank's updated shards into every rank's parameters
    std::vector<torch::Tensor> whole;
    for (const torch::Tensor& p : params_) whole.push_back(p.detach());
    const std::vector<torch::Tensor>& updated = optimizer_->params();
    reducer_->GatherPieces({updated.begin(), updated.begin() + reducer_->Pieces().size()}, whole);
  }
  r.seconds = SteadySeconds() - start;
  return r;
}

}  // namespace braid
