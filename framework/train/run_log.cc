// Run reports (see run_log.h).
#include "framework/train/run_log.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/log.h"
#include "framework/core/status.h"
#include "framework/core/system.h"

namespace braid {
namespace {
namespace fs = std::filesystem;

absl::Status WriteFailed(const std::string& path) {
  return absl::DataLossError(absl::StrCat(
      path, ": cannot write (", std::strerror(errno),
      "). HINT: the run directory must be writable and have free space (logging.run_dir)."));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RunLog>> RunLog::Open(const Config& config,
                                                     const ParallelLayout& layout,
                                                     int64_t start_step, double tokens_per_step,
                                                     double flops_per_step, double peak_gflops) {
  std::unique_ptr<RunLog> log(new RunLog(config, layout));
  log->start_step_ = start_step;
  log->tokens_per_step_ = tokens_per_step;
  log->flops_per_step_ = flops_per_step;
  log->peak_gflops_ = peak_gflops;
  log->run_start_ = SteadySeconds();
  if (layout.rank != 0) return log;
  const fs::path dir(config.logging.run_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  log->tsv_path_ = (dir / "losses.tsv").string();
  log->tsv_.open(log->tsv_path_, start_step > 0 ? std::ios::app : std::ios::trunc);
  if (!log->tsv_) return WriteFailed(log->tsv_path_);
  if (config.logging.tensorboard) {
    BRAID_ASSIGN_OR_RETURN(log->events_, EventWriter::Create(config.logging.run_dir));
    BLOG(INFO, "train") << "TensorBoard events: " << log->events_->path();
  }
  log->live_ = OutputIsTerminal();
  return log;
}

absl::Status RunLog::Step(int64_t step, const StepResult& r, double lr, double data_wait) {
  BRAID_RETURN_IF_ERROR(LogFileStatus());
  if (tsv_.is_open()) {
    tsv_ << absl::StrFormat("%d\t%.17g\t%.17g\t%.17g\n", step, r.loss, r.grad_norm, lr)
         << std::flush;
    if (!tsv_) return WriteFailed(tsv_path_);
  }
  if (!r.skipped) {
    ++steps_;
    loss_ += r.loss;
    seconds_ += r.seconds;
    data_wait_ += data_wait;
    comm_wait_ += r.comm_wait;
    pipe_wait_ += r.pipeline_wait;
    for (const auto& [k, v] : r.metrics) metrics_[k] += v;
  }
  const int64_t total = config_.train.train_steps;
  if (live_) {  // a terminal: one line rewritten every step (the log lines clear it)
    const double per_step =
        (SteadySeconds() - run_start_) / static_cast<double>(step - start_step_);
    const auto eta = static_cast<int64_t>(per_step * static_cast<double>(total - step));
    std::printf("\r\033[K[train] step %ld/%ld | ETA %ld:%02ld | loss %.4f | %.0f tok/s",
                static_cast<long>(step), static_cast<long>(total), static_cast<long>(eta / 60),
                static_cast<long>(eta % 60), r.loss, tokens_per_step_ / per_step);
    std::fflush(stdout);
  }
  if (step % config_.logging.interval == 0 || step == total) return Interval(step, r, lr);
  return absl::OkStatus();
}

absl::Status RunLog::Interval(int64_t step, const StepResult& last, double lr) {
  const double n = static_cast<double>(std::max<int64_t>(1, steps_));
  const double secs = std::max(seconds_, 1e-9);
  const double tokens_per_s = tokens_per_step_ * static_cast<double>(steps_) / secs;
  const double achieved = flops_per_step_ * static_cast<double>(steps_) / secs / 1e9;
  if (peak_gflops_ > 0 && achieved > peak_gflops_) {
    // The ceiling was measured in a slow moment of a shared machine: the model itself ran faster
    // than it. Raise it, so that MFU never reads above 100%.
    BLOG(INFO, "train") << absl::StrFormat(
        "the model ran at %.0f GFLOP/s, above the matmul ceiling measured at start (%.0f): the "
        "ceiling is raised to it",
        achieved, peak_gflops_);
    peak_gflops_ = achieved;
  }
  const double mfu = peak_gflops_ > 0 ? achieved / peak_gflops_ : 0.0;
  std::string extra;
  std::map<std::string, double> averaged;
  for (const auto& [k, v] : metrics_) {
    averaged[k] = AllReduceScalar(*layout_.dp, v / n, ReduceOp::kAvg);
    // Per-layer keys (a '/' in the name, e.g. moe_aux/h.3) go to TensorBoard only.
    if (k.find('/') == std::string::npos)
      absl::StrAppendFormat(&extra, " | %s %.4f", k, averaged[k]);
  }
  if (events_) {
    for (const auto& [k, v] : averaged) events_->Scalar("train/" + k, step, v);
    events_->Scalar("train/loss", step, loss_ / n);
    events_->Scalar("train/lr", step, lr);
    events_->Scalar("train/grad_norm", step, last.grad_norm);
    events_->Scalar("train/tokens_per_s", step, tokens_per_s);
    events_->Scalar("train/mfu", step, mfu);
    events_->Scalar("train/data_wait", step, data_wait_ / secs);
    BRAID_RETURN_IF_ERROR(events_->Flush());
  }
  // Under pipeline parallelism: the stages' mean share of the step spent waiting for each other
  // (the measured bubble, plus transfers and any imbalance between the stages).
  const double pipe_share =
      layout_.pp_size > 1 ? AllReduceScalar(*layout_.pp, pipe_wait_ / secs, ReduceOp::kAvg) : 0;
  const std::string pipe =
      layout_.pp_size > 1 ? absl::StrFormat(" | pipe wait %.1f%%", 100 * pipe_share) : "";
  BLOG(INFO, "train") << absl::StrFormat(
      "step %d/%d | loss %.4f | lr %.3e | grad %.3f | %.0f tok/s | MFU %.1f%% | data %.1f%% "
      "| comm %.1f%%%s | mem %.0f MB%s",
      step, config_.train.train_steps, loss_ / n, lr, last.grad_norm, tokens_per_s, 100 * mfu,
      100 * data_wait_ / secs, 100 * comm_wait_ / secs, pipe, PeakRssMb(), extra);
  steps_ = 0;
  loss_ = seconds_ = data_wait_ = comm_wait_ = pipe_wait_ = 0;
  metrics_.clear();
  return absl::OkStatus();
}

absl::Status RunLog::Eval(int64_t step, double loss, const std::map<std::string, double>& metrics) {
  if (!std::isfinite(loss)) return absl::OkStatus();
  std::string extra;
  for (const auto& [k, v] : metrics) absl::StrAppendFormat(&extra, " | %s %.4f", k, v);
  if (events_) {
    events_->Scalar("eval/loss", step, loss);
    for (const auto& [k, v] : metrics) events_->Scalar("eval/" + k, step, v);
    BRAID_RETURN_IF_ERROR(events_->Flush());
  }
  BLOG(INFO, "eval") << absl::StrFormat("step %d | valid loss %.4f | ppl %.2f%s", step, loss,
                                        std::exp(loss), extra);
  return absl::OkStatus();
}

}  // namespace braid
