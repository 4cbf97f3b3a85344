// When a run saves, resumes and stops (checkpoints themselves: checkpoint.h).
//   - Resume: from an explicit step directory (pretrain --resume), else from
//     <checkpoint dir>/latest when checkpoint.resume is on. Checkpoints a fresh start would
//     overwrite (latest missing, empty or unusable, or checkpoint.resume false) are a refusal that
//     names the newest complete one, unless checkpoint.overwrite says to delete them.
//   - Save after a step when it is a multiple of checkpoint.save_interval, the last step, a
//     multiple of train.exit_interval (then stop), or when a stop signal reached any rank.
//   - Signals: SIGUSR1 or SIGTERM on any rank stop every rank at the same step boundary (a max
//     all-reduce of the flag each step), after a checkpoint of that step.
//   - checkpoint.async_save: a periodic save copies the state to host memory at the step boundary
//     (BeginSave, into buffers allocated and mapped when the policy is made: the only stall) and a
//     background thread writes and fsyncs this rank's file (WriteSave) while training goes on. At
//     each later step boundary the ranks vote whether every write has finished; when they have, the
//     save is finished there (FinishSave: manifest, rename, `latest`). At most one save is in
//     flight: a save falling due while one is writing, the last step's save, and a stop (signal or
//     exit_interval) first wait for it, and those saves themselves are synchronous (the run is
//     about to end). A failed background write stops the run at the boundary where it is found,
//     with the error; `latest` then still names the previous checkpoint.
#pragma once
#include <future>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/train/checkpoint.h"

namespace braid {

// Exit code of a run stopped by a signal after saving (EX_TEMPFAIL): rerun to resume.
inline constexpr int kPreemptedExitCode = 75;

// Installs handlers for SIGUSR1, SIGTERM and SIGINT that ask the trainer to stop at the next step
// boundary (mpirun forwards SIGUSR1 to the ranks and answers SIGTERM and SIGINT by sending them
// SIGTERM; Slurm: --signal=B:USR1@120, and SIGTERM at a time limit). pretrain installs them before
// anything else, so a signal during start-up stops the run at its first step boundary.
void InstallStopSignalHandlers();

enum class StopReason { kNone, kSignal, kExitInterval };

class CheckpointPolicy {
 public:
  // `enabled` false: never saves or resumes (benchmarks and tests that only train).
  CheckpointPolicy(const CheckpointTarget& target, bool enabled);
  ~CheckpointPolicy();  // waits for a background write (it is not published)
  CheckpointPolicy(const CheckpointPolicy&) = delete;
  CheckpointPolicy& operator=(const CheckpointPolicy&) = delete;
  // Where <checkpoint dir> is: checkpoint.dir, or <run_dir>/checkpoints.
  const std::string& root() const { return root_; }
  // Loads `explicit_dir` when given, else latest (checkpoint.resume); a fresh state otherwise.
  absl::StatusOr<TrainState> Resume(const std::string& explicit_dir);
  // After a completed step (state.step is its 1-based number): saves when due; says whether to
  // stop. Collective over the world (the signal vote and the save).
  absl::StatusOr<StopReason> AfterStep(const TrainState& state);

 private:
  absl::StatusOr<std::string> ChooseStart();
  // Finishes the background save when every rank's write is done (always, after waiting for
  // this rank's, when `wait`).
  absl::Status FinishPending(bool wait);
  CheckpointTarget target_;
  HostCopy host_;  // async_save: the host copy of this rank's share of the state, kept
  std::shared_ptr<PendingSave> pending_;
  std::future<void> writing_;
  double pending_since_ = 0;
  bool enabled_;
  std::string root_;
};

}  // namespace braid
