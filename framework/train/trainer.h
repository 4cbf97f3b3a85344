// The training loop, for any family (docs/architecture.md, "How one step flows"). Train() is the
// loop; each of its parts does one job:
//   step.h              forward, backward, DP reduction, NaN guard, clipping, AdamW
//   run_log.h           losses.tsv, the progress line, TensorBoard
//   evaluate.h          the validation loss, through the same Loader
//   checkpoint_policy.h resume, when to save, exit interval, stop signals
// The final weights go to <run_dir>/final (model.safetensors, config.yaml). The trainer knows
// nothing of GPT, BERT or T5: a family hands it a TrainTask and its data (task.h).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/dist/layout.h"
#include "framework/train/checkpoint_policy.h"
#include "framework/train/task.h"

namespace braid {

struct TrainResult {
  int64_t steps = 0;  // the last completed step
  int64_t skipped_steps = 0;
  std::vector<double> losses;             // training loss of every step (averaged over DP)
  std::vector<double> grad_norms;         // global gradient norm of every step, before clipping
  std::vector<double> step_seconds;       // wall time of every step
  std::vector<double> comm_wait_seconds;  // of which waiting for the DP reduction
  double last_eval_loss = NAN;
  std::map<std::string, torch::Tensor> final_weights;  // full tensors (rank 0 of each DP group)
  int64_t start_step = 0;                              // > 0 when resumed
  bool preempted = false;  // stopped by a signal after saving a checkpoint
};

struct TrainOptions {
  bool save_final = true;           // write <run_dir>/final/model.safetensors + config.yaml
  bool keep_final_weights = false;  // return them in TrainResult (tests)
  std::string resume_from;  // a step directory to resume from ("" -> checkpoint.resume rule)
  bool checkpoints = true;  // save and resume checkpoints (tests that only train turn it off)
  // This run's id (<run_dir>/run_id; rank 0's is the one that counts): recorded in every
  // checkpoint, and a checkpoint directory holding another run's is refused (checkpoint_policy.h).
  std::string run_id;
};

// `config` is the resolved run config (ResolveSizes in recipes/registry.h: the sizes derived
// once, vocabulary padding included); it is what checkpoints and final/config.yaml record.
absl::StatusOr<TrainResult> Train(const Config& config, const DerivedSizes& sizes,
                                  const ParallelLayout& layout, RecipeParts parts,
                                  const TrainOptions& options = {});

}  // namespace braid
