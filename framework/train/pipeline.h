// Runs one step's micro-batches through this rank's pipeline stage (docs/pipeline.md): the
// schedule's actions in order (framework/parallel/pipeline_schedule.h), each forward receiving
// its input from the previous virtual stage and sending its output to the next, each backward
// receiving the output's gradient from the next and sending the input's gradient back.
//
// Messages go over the pp communicator with a tag per (micro-batch, boundary, direction), so
// their order on the wire does not matter; sends are not waited for until the end of the step,
// and the receive the next action needs is posted before the current one computes (its transfer
// overlaps the compute). Shapes come from the task (TrainTask::ActivationLike), never from the
// wire. Activations cross stages in the dtype of the model's parameters.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/dist/communicator.h"
#include "framework/parallel/pipeline_schedule.h"
#include "framework/train/task.h"

namespace braid {

struct PipelineStepOptions {
  bool backward = true;     // false: forward only (evaluation)
  double loss_scale = 1.0;  // each micro-batch's loss is scaled by this before backward
  bool bf16 = false;        // forward under bf16 autocast
  // Called once, before this rank's last backward action (the DP reducer arms its hooks).
  std::function<void()> before_last_backward;
};

struct PipelineStepResult {
  double loss_sum = 0;      // the last stage's micro-batch losses, summed (0 on other stages)
  int losses = 0;           // how many
  double wait_seconds = 0;  // waiting for activations and gradients of other stages
};

// `batch_of(micro)` gives micro-batch `micro` (0-based; asked in the order the schedule first
// needs them, every micro-batch once).
absl::StatusOr<PipelineStepResult> RunPipelineStep(TrainTask& task,
                                                   const std::vector<PipeAction>& schedule,
                                                   const std::function<Batch(int)>& batch_of,
                                                   Communicator& pp, TpRng& rng,
                                                   std::map<std::string, double>* metrics,
                                                   const PipelineStepOptions& options);

// The task's metrics (accuracies) are computed on the last stage, a stage's MoE layers' metrics on
// that stage: every stage's keys on every rank of `pp`, each summed over the stages that have it.
absl::Status ShareStageMetrics(Communicator& pp, std::map<std::string, double>* metrics);

}  // namespace braid
