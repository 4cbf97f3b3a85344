// When a run saves, resumes and stops (see checkpoint_policy.h).
#include "framework/train/checkpoint_policy.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "framework/core/log.h"
#include "framework/core/status.h"
#include "framework/train/step.h"

namespace braid {
namespace {
namespace fs = std::filesystem;

std::atomic<int> g_stop_signal{0};
void OnStopSignal(int sig) { g_stop_signal.store(sig); }

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void InstallStopSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

CheckpointPolicy::CheckpointPolicy(const CheckpointTarget& target, bool enabled)
    : target_(target), enabled_(enabled) {
  const Config& c = *target.config;
  root_ = c.checkpoint.dir.empty() ? (fs::path(c.logging.run_dir) / "checkpoints").string()
                                   : c.checkpoint.dir;
  if (enabled_ && c.checkpoint.async_save) {
    host_ = AllocateHostCopy(target_);
    double bytes = 0;
    for (const auto& [name, t] : host_) bytes += static_cast<double>(t.nbytes());
    BLOG(INFO, "ckpt") << absl::StrFormat(
        "checkpoint.async_save: %.1f MB of host memory hold the copy of this rank's share of the "
        "state",
        bytes / 1e6);
  }
}

CheckpointPolicy::~CheckpointPolicy() {
  if (writing_.valid()) writing_.wait();
}

absl::StatusOr<TrainState> CheckpointPolicy::Resume(const std::string& explicit_dir) {
  const Config& c = *target_.config;
  std::string dir = explicit_dir;
  if (dir.empty() && enabled_) {
    BRAID_ASSIGN_OR_RETURN(dir, ChooseStart());
  }
  if (dir.empty()) return TrainState{};
  BRAID_ASSIGN_OR_RETURN(TrainState state, LoadCheckpoint(dir, target_));
  BLOG(INFO, "ckpt") << absl::StrFormat("resumed from %s: step %d, %d samples consumed", dir,
                                        state.step, state.consumed_samples);
  if (state.step >= c.train.train_steps) {
    BLOG(WARNING, "train") << absl::StrFormat(
        "the checkpoint is at step %d and train.train_steps is %d: nothing to train. HINT: raise "
        "train.train_steps, or start fresh with another run dir.",
        state.step, c.train.train_steps);
  }
  return state;
}

// Where a run without --resume starts, decided by rank 0 and agreed by all: `latest` when it
// names a checkpoint (checkpoint.resume); nothing when the directory has no checkpoint; a refusal
// when there are checkpoints a fresh start would overwrite (`latest` missing, empty or unusable,
// or checkpoint.resume false), unless checkpoint.overwrite (then they are deleted first).
absl::StatusOr<std::string> CheckpointPolicy::ChooseStart() {
  const Config& c = *target_.config;
  const ParallelLayout& layout = *target_.layout;
  std::string error, dir;
  if (layout.rank == 0) {
    const CheckpointListing found = ListCheckpoints(root_);
    if (c.checkpoint.resume && found.latest_ok) {
      dir = found.latest;
    } else if (!found.complete.empty() && c.checkpoint.overwrite) {
      BLOG(WARNING, "ckpt") << absl::StrFormat(
          "checkpoint.overwrite: deleting %d checkpoint(s) in %s and starting fresh",
          found.complete.size(), root_);
      std::error_code ec;
      for (const std::string& d : found.all) fs::remove_all(fs::path(root_) / d, ec);
      fs::remove(fs::path(root_) / "latest", ec);
    } else if (!found.complete.empty()) {
      const std::string newest = (fs::path(root_) / found.complete.back()).string();
      error = absl::StrFormat(
          "%s holds checkpoints (the newest complete one: %s) but %s, so this run would start at "
          "step 1 and overwrite them. Refusing. HINT: continue with `pretrain ... --resume %s`, "
          "start elsewhere (logging.run_dir / --run-dir), or set checkpoint.overwrite=true to "
          "delete them and start over.",
          root_, newest,
          c.checkpoint.resume ? absl::StrCat("its 'latest' ", found.latest_problem)
                              : "checkpoint.resume is false",
          newest);
    }
  }
  // Every rank learns the decision (a failure on rank 0 stops them all).
  const double failed = AllReduceScalar(*layout.world, error.empty() ? 0.0 : 1.0, ReduceOp::kMax);
  if (failed > 0) {
    return absl::FailedPreconditionError(
        error.empty() ? "rank 0 refused to start over existing checkpoints (its log says why)"
                      : error);
  }
  const double resume = AllReduceScalar(*layout.world, dir.empty() ? 0.0 : 1.0, ReduceOp::kMax);
  if (resume > 0 && dir.empty()) {
    BRAID_ASSIGN_OR_RETURN(dir, LatestCheckpoint(root_));  // the others read the same name
  }
  return dir;
}

absl::StatusOr<StopReason> CheckpointPolicy::AfterStep(const TrainState& state) {
  const Config& c = *target_.config;
  const ParallelLayout& layout = *target_.layout;
  const int64_t step = state.step;
  const bool last = step == c.train.train_steps;
  // A stop signal on any rank stops every rank at this same step boundary.
  StopReason stop = StopReason::kNone;
  if (!last &&
      AllReduceScalar(*layout.world, g_stop_signal.load() != 0 ? 1.0 : 0.0, ReduceOp::kMax) > 0) {
    BLOG(WARNING, "train") << absl::StrFormat(
        "stop signal received: saving at step %d and stopping (exit code %d; rerun to resume)",
        step, kPreemptedExitCode);
    stop = StopReason::kSignal;
  } else if (c.train.exit_interval > 0 && step % c.train.exit_interval == 0 && !last) {
    BLOG(INFO, "train") << "train.exit_interval: stopping after step " << step;
    stop = StopReason::kExitInterval;
  }
  const bool periodic = c.checkpoint.save_interval > 0 && step % c.checkpoint.save_interval == 0;
  const bool due = enabled_ && (periodic || last || stop != StopReason::kNone);
  if (pending_ != nullptr) BRAID_RETURN_IF_ERROR(FinishPending(/*wait=*/due));
  if (!due) return stop;
  const double t0 = Now();
  if (c.checkpoint.async_save && !last && stop == StopReason::kNone) {
    BRAID_ASSIGN_OR_RETURN(pending_,
                           BeginSave(root_, target_, state, c.checkpoint.keep_last, &host_));
    pending_since_ = t0;
    writing_ = std::async(std::launch::async, [save = pending_] { WriteSave(*save); });
    BLOG(INFO, "ckpt") << absl::StrFormat(
        "step %d: state copied to host memory in %.2f s; writing %s/step_%08d in the background",
        step, Now() - t0, root_, step);
    return stop;
  }
  BRAID_RETURN_IF_ERROR(SaveCheckpoint(root_, target_, state, c.checkpoint.keep_last));
  BLOG(INFO, "ckpt") << absl::StrFormat("saved step %d to %s/step_%08d in %.2f s", step, root_,
                                        step, Now() - t0);
  return stop;
}

absl::Status CheckpointPolicy::FinishPending(bool wait) {
  const ParallelLayout& layout = *target_.layout;
  const int64_t step = SaveStep(*pending_);
  const double t0 = Now();
  if (wait) {
    writing_.wait();
  } else {
    const bool done = writing_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    if (AllReduceScalar(*layout.world, done ? 0.0 : 1.0, ReduceOp::kMax) > 0) return {};
  }
  const double waited = Now() - t0;
  writing_.get();
  absl::Status s = FinishSave(*pending_);
  pending_.reset();
  if (!s.ok()) {
    return absl::Status(
        s.code(),
        absl::StrFormat("the background checkpoint save of step %d failed: %s. The run stops "
                        "here; %s/latest still names the previous checkpoint. HINT: check the "
                        "free space and permissions of %s, then rerun to resume.",
                        step, s.message(), root_, root_));
  }
  BLOG(INFO, "ckpt") << absl::StrFormat(
      "saved step %d to %s/step_%08d in the background (complete %.2f s after its step "
      "boundary%s)",
      step, root_, step, Now() - pending_since_,
      wait ? absl::StrFormat("; waited %.2f s for it", waited) : "");
  return absl::OkStatus();
}

}  // namespace braid
