// The training loop, for any recipe: micro-batches with gradient accumulation, DP gradient
// reduction overlapped with the last micro-batch's backward, a global gradient-norm clip that is
// correct across TP shards and replicated parameters, AdamW (no weight decay on biases and norm
// weights, i.e. 1-D parameters), the LR schedule, evaluation on the validation split, a NaN/Inf
// guard, one progress line per logging interval on rank 0, and the final weights saved as
// safetensors. Checkpoints (checkpoint.h) every checkpoint.save_interval steps and at the end;
// with checkpoint.resume a run continues from <checkpoint dir>/latest (weights, AdamW moments and
// step, LR schedule position, data position, RNG states). Every step's loss goes to
// <run_dir>/losses.tsv (step, loss, grad norm, lr; full precision). The trainer knows nothing of
// GPT, BERT or T5: a recipe hands it a TrainTask.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/data/loader.h"
#include "framework/dist/layout.h"
#include "framework/parallel/rng.h"

namespace braid {

class TrainTask {
 public:
  virtual ~TrainTask() = default;
  virtual torch::nn::Module& model() = 0;
  // Mean loss over one micro-batch; may add metrics (summed over micro-batches and averaged).
  virtual torch::Tensor Loss(const Batch& batch, TpRng& rng,
                             std::map<std::string, double>* metrics) = 0;
  // Training FLOPs (forward + backward) per sample, for MFU; tokens per sample, for tokens/s.
  virtual double FlopsPerSample() const = 0;
  virtual int64_t TokensPerSample() const = 0;
};

struct RecipeParts {
  std::unique_ptr<TrainTask> task;
  std::shared_ptr<const SampleSource> train, valid;
  std::vector<std::string> notes;  // logged at start (e.g. the data's unigram entropy)
  int64_t vocab_size = 0;          // the real vocabulary size (recorded in checkpoints)
};

struct TrainResult {
  int64_t steps = 0;
  int64_t skipped_steps = 0;
  std::vector<double> losses;        // training loss of every step (averaged over DP)
  std::vector<double> grad_norms;    // global gradient norm of every step, before clipping
  std::vector<double> step_seconds;  // wall time of every step (data, compute, comm, optimizer)
  std::vector<double> comm_wait_seconds;  // of which waiting for the DP reduction
  double last_eval_loss = NAN;
  std::map<std::string, torch::Tensor> final_weights;  // full tensors (rank 0 of each DP group)
  int64_t start_step = 0;                              // > 0 when resumed
  bool preempted = false;  // stopped by a signal after saving a checkpoint
};

// Exit code of a run stopped by a signal after saving (EX_TEMPFAIL): rerun to resume.
inline constexpr int kPreemptedExitCode = 75;

// Installs handlers for SIGUSR1 and SIGTERM that ask the trainer to stop: at the next step
// boundary every rank agrees (a max all-reduce of the flag, so no rank is left behind), a
// checkpoint is saved, and Train returns with `preempted` set. Slurm: `#SBATCH --signal=B:USR1@120`
// (mpirun forwards SIGUSR1 to the ranks).
void InstallStopSignalHandlers();

struct TrainOptions {
  bool save_final = true;           // write <run_dir>/final/model.safetensors + config.yaml
  bool keep_final_weights = false;  // return them in TrainResult (tests)
  std::string resume_from;  // a step directory to resume from ("" -> checkpoint.resume rule)
  bool checkpoints = true;  // save and resume checkpoints (tests that only train turn it off)
};

absl::StatusOr<TrainResult> Train(const Config& config, const DerivedSizes& sizes,
                                  const ParallelLayout& layout, RecipeParts parts,
                                  const TrainOptions& options = {});

}  // namespace braid
