// When a run saves, resumes and stops (checkpoints themselves: checkpoint.h).
//   - Ownership: a checkpoint directory belongs to one run. When its newest complete checkpoint
//     was written by another run (another run id: <run_dir>/run_id, recorded in each manifest),
//     this run neither resumes from it nor saves among its checkpoints (keep_last would delete
//     them): a refusal naming both runs, unless checkpoint.overwrite says to delete them. An
//     explicit --resume may start from any checkpoint; it is then said so in the log.
//   - Resume: from an explicit step directory (pretrain --resume), else from
//     <checkpoint dir>/latest when checkpoint.resume is on; when a complete checkpoint newer than
//     `latest` exists (a stop between a save's rename and its `latest` update) from that one, and
//     `latest` is moved to it. A resumed checkpoint of another seed is refused (its data order is
//     another run's); other settings that changed are listed in the log, key by key. Checkpoints
//     a fresh start would overwrite (latest missing, empty or unusable, or checkpoint.resume
//     false) are a refusal that names the newest complete one, unless checkpoint.overwrite says
//     to delete them.
//   - Save after a step when it is a multiple of checkpoint.save_interval, the last step, a
//     multiple of train.exit_interval (then stop), or when a stop signal reached any rank.
//   - Signals: SIGUSR1, SIGTERM or SIGINT on any rank stop every rank at the same step boundary
//     (a max all-reduce of the flag each step), after a checkpoint of that step; the stop
//     watchdog (framework/core/stop.h) ends a run that does not reach one in time.
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
#include "framework/core/stop.h"
#include "framework/train/checkpoint.h"

namespace braid {

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
  absl::StatusOr<std::string> ChooseStart(const std::string& explicit_dir);
  // Rank 0: an error when the checkpoint root holds another run's checkpoints.
  std::string ForeignCheckpoints(const CheckpointListing& found) const;
  // Rank 0: an error when `dir` (to be resumed) has another seed; the changed settings logged.
  std::string CompareResumed(const std::string& dir, bool explicit_dir) const;
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
