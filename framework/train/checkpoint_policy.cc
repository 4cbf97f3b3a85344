// When a run saves, resumes and stops (see checkpoint_policy.h).
#include "framework/train/checkpoint_policy.h"

#include <chrono>
#include <filesystem>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "framework/core/files.h"
#include "framework/core/log.h"
#include "framework/core/status.h"
#include "framework/core/system.h"
#include "framework/train/step.h"

namespace braid {
namespace {
namespace fs = std::filesystem;

// A config printed by ConfigToYaml as key path -> value (the origin comments dropped).
std::map<std::string, std::string> FlatConfig(const Config& c) {
  std::map<std::string, std::string> out;
  std::vector<std::string> path;
  for (absl::string_view line : absl::StrSplit(ConfigToYaml(c), '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t indent = line.find_first_not_of(' ');
    const size_t colon = line.find(':');
    if (indent == absl::string_view::npos || colon == absl::string_view::npos) continue;
    path.resize(indent / 2);
    const std::string key(line.substr(indent, colon - indent));
    std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (const size_t hash = value.rfind(" # "); hash != std::string::npos) value.resize(hash);
    value = std::string(absl::StripAsciiWhitespace(value));
    if (value.empty()) {  // a section
      path.push_back(key);
      continue;
    }
    out[absl::StrJoin(path, ".") + (path.empty() ? "" : ".") + key] = value;
  }
  return out;
}

}  // namespace

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
  if (enabled_) {
    BRAID_ASSIGN_OR_RETURN(dir, ChooseStart(explicit_dir));
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

std::string CheckpointPolicy::ForeignCheckpoints(const CheckpointListing& found) const {
  if (found.complete.empty() || target_.run_id.empty()) return "";
  const std::string newest = (fs::path(root_) / found.complete.back()).string();
  absl::StatusOr<CheckpointOrigin> origin = ReadCheckpointOrigin(newest);
  if (!origin.ok() || origin->run_id.empty() || origin->run_id == target_.run_id) return "";
  return absl::StrFormat(
      "%s holds checkpoints of another run: the newest, %s, was written by run %s, and this run "
      "(%s, run dir %s) is another. A run neither resumes from another run's checkpoints "
      "silently nor saves among them (checkpoint.keep_last would delete them). Refusing. HINT: "
      "give this run a checkpoint.dir of its own (empty: <run_dir>/checkpoints); to start from "
      "that checkpoint, pass --resume %s with a checkpoint.dir of this run's own; "
      "checkpoint.overwrite=true deletes them.",
      root_, newest, origin->run_id, target_.run_id, target_.config->logging.run_dir, newest);
}

std::string CheckpointPolicy::CompareResumed(const std::string& dir, bool explicit_dir) const {
  const Config& c = *target_.config;
  absl::StatusOr<CheckpointOrigin> origin = ReadCheckpointOrigin(dir);
  if (!origin.ok()) return "";  // the load itself says what is wrong with it
  absl::StatusOr<Config> saved =
      LoadConfigFromString(origin->config_yaml, dir + "/manifest config");
  if (!saved.ok()) return "";
  if (!origin->run_id.empty() && origin->run_id != target_.run_id) {
    BLOG(INFO, "ckpt") << absl::StrFormat("%s was written by run %s; this run is %s (--resume)",
                                          dir, origin->run_id, target_.run_id);
  }
  if (saved->seed != c.seed) {
    if (!explicit_dir) {
      return absl::StrFormat(
          "%s was saved by a run with seed %d; this config has seed %d: resuming it would mix "
          "two runs (data order, dropout). Refusing. HINT: set seed: %d to continue that run, "
          "give this one another logging.run_dir, or pass --resume %s to continue it with the "
          "new seed on purpose.",
          dir, saved->seed, c.seed, saved->seed, dir);
    }
    BLOG(WARNING, "ckpt") << absl::StrFormat(
        "--resume %s: saved with seed %d, continuing with seed %d", dir, saved->seed, c.seed);
  }
  const std::map<std::string, std::string> was = FlatConfig(*saved), now = FlatConfig(c);
  std::vector<std::string> changed;
  for (const auto& [key, value] : now) {
    auto it = was.find(key);
    const std::string before = it == was.end() ? "(absent)" : it->second;
    if (before != value) changed.push_back(absl::StrCat(key, " ", before, " -> ", value));
  }
  if (!changed.empty()) {
    BLOG(WARNING, "ckpt") << "resuming " << dir << " with " << changed.size()
                          << " setting(s) changed since it was saved: "
                          << absl::StrJoin(changed, "; ");
  }
  return "";
}

// Where a run starts, decided by rank 0 and agreed by all: an explicit step directory; else
// `latest` when it names a checkpoint (checkpoint.resume), or a complete checkpoint newer than
// it; nothing when the directory has no checkpoint; a refusal when there are checkpoints a fresh
// start would overwrite (`latest` missing, empty or unusable, or checkpoint.resume false), unless
// checkpoint.overwrite (then they are deleted first), or when they are another run's.
absl::StatusOr<std::string> CheckpointPolicy::ChooseStart(const std::string& explicit_dir) {
  const Config& c = *target_.config;
  const ParallelLayout& layout = *target_.layout;
  std::string error, dir = explicit_dir;
  if (layout.rank == 0) {
    const CheckpointListing found = ListCheckpoints(root_);
    const bool deleting = c.checkpoint.overwrite && explicit_dir.empty();
    if (!deleting) error = ForeignCheckpoints(found);
    if (!error.empty()) {
    } else if (!explicit_dir.empty()) {
      error = CompareResumed(explicit_dir, true);
    } else if (c.checkpoint.resume && found.latest_ok) {
      dir = found.latest;
      const std::string newest = found.complete.back();
      if (newest > fs::path(dir).filename().string()) {
        BLOG(WARNING, "ckpt") << absl::StrFormat(
            "%s/latest names %s, but %s is complete and newer (a stop between its rename and the "
            "update of latest): resuming from %s and moving latest to it",
            root_, fs::path(dir).filename().string(), newest, newest);
        dir = (fs::path(root_) / newest).string();
        absl::Status s = WriteFileAtomically((fs::path(root_) / "latest").string(), newest + "\n");
        if (!s.ok()) error = std::string(s.message());
      }
      if (error.empty()) error = CompareResumed(dir, false);
    } else if (!found.complete.empty() && deleting) {
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
        error.empty() ? "rank 0 refused to start from this checkpoint directory (its log says why)"
                      : error);
  }
  if (!explicit_dir.empty()) return dir;
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
  NoteStepBoundary();
  // A stop signal on any rank stops every rank at this same step boundary.
  StopReason stop = StopReason::kNone;
  if (!last &&
      AllReduceScalar(*layout.world, StopSignalReceived() != 0 ? 1.0 : 0.0, ReduceOp::kMax) > 0) {
    AcknowledgeStop();  // saving now: the stop watchdog stands down
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
  const double t0 = SteadySeconds();
  if (c.checkpoint.async_save && !last && stop == StopReason::kNone) {
    BRAID_ASSIGN_OR_RETURN(pending_,
                           BeginSave(root_, target_, state, c.checkpoint.keep_last, &host_));
    pending_since_ = t0;
    writing_ = std::async(std::launch::async, [save = pending_] { WriteSave(*save); });
    BLOG(INFO, "ckpt") << absl::StrFormat(
        "step %d: state copied to host memory in %.2f s; writing %s/step_%08d in the background",
        step, SteadySeconds() - t0, root_, step);
    return stop;
  }
  BRAID_RETURN_IF_ERROR(SaveCheckpoint(root_, target_, state, c.checkpoint.keep_last));
  BLOG(INFO, "ckpt") << absl::StrFormat("saved step %d to %s/step_%08d in %.2f s", step, root_,
                                        step, SteadySeconds() - t0);
  return stop;
}

absl::Status CheckpointPolicy::FinishPending(bool wait) {
  const ParallelLayout& layout = *target_.layout;
  const int64_t step = SaveStep(*pending_);
  const double t0 = SteadySeconds();
  if (wait) {
    writing_.wait();
  } else {
    const bool done = writing_.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    if (AllReduceScalar(*layout.world, done ? 0.0 : 1.0, ReduceOp::kMax) > 0) return {};
  }
  const double waited = SteadySeconds() - t0;
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
      step, root_, step, SteadySeconds() - pending_since_,
      wait ? absl::StrFormat("; waited %.2f s for it", waited) : "");
  return absl::OkStatus();
}

}  // namespace braid
