// One optimizer step of the training loop: the step's micro-batches (forward under autocast,
// backward), the DP gradient reduction overlapped with the last backward (GradReducer), the
// global gradient norm (TP-split parameters counted on every TP rank, replicated ones once), the
// NaN/Inf guard (a non-finite loss or norm skips the update on every rank; train.max_bad_steps in
// a row stop the run), clipping to train.clip_grad, and AdamW.
//
// parallel.distributed_optimizer (ZeRO-1, DP > 1): the reducer reduce-scatters the buckets, AdamW
// holds moments for this rank's pieces of them only (1/DP of the state) and updates those
// pieces of the parameters; the norm sums the shards' squares over DP; after the update every
// rank's pieces are all-gathered into every rank's parameters. Checkpoints store the moments as
// those pieces, each rank writing its own (AdamW::sharding lists every rank's for the manifest);
// reading reassembles them whole, so a checkpoint loads at any DP size, with or without the
// distributed optimizer, and the converter reads it unchanged.
//
// Expert parallelism (EP > 1): the experts' gradients (TpParam::expert) go to a second reducer over
// the expert-data-parallel group, averaged there and scaled by 1/EP (each holds the sum over its EP
// group's tokens: the average over DP in all); the gradient norm sums their squares over EP. The
// distributed optimizer shards the dense parameters only: AdamW takes the experts whole after the
// pieces (AdamW::Sharding::whole).
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/data/loader.h"
#include "framework/dist/layout.h"
#include "framework/parallel/grad_reducer.h"
#include "framework/train/optimizer.h"
#include "framework/train/task.h"

namespace braid {

struct StepResult {
  double loss = 0;                        // mean over micro-batches and DP
  double grad_norm = 0;                   // before clipping
  bool skipped = false;                   // not finite: no update
  double seconds = 0;                     // wall time: data, compute, communication, optimizer
  double comm_wait = 0;                   // of which waiting for the DP reduction
  double pipeline_wait = 0;               // and waiting for other pipeline stages (PP > 1)
  std::map<std::string, double> metrics;  // the task's, averaged over micro-batches (this rank)
};

class TrainStep {
 public:
  TrainStep(TrainTask& task, const Config& config, const DerivedSizes& sizes,
            const ParallelLayout& layout, torch::Device device);
  // Runs one step at learning rate `lr`; an error once train.max_bad_steps steps in a row were
  // not finite (`step` is the 1-based number of this step, for the message).
  absl::StatusOr<StepResult> Run(int64_t step, Loader& loader, double lr, TpRng& rng);

  AdamW& optimizer() { return *optimizer_; }
  int64_t local_parameters() const { return local_numel_; }
  int64_t local_expert_parameters() const { return local_expert_numel_; }  // of them, experts'
  int num_buckets() const {
    return reducer_->num_buckets() + (expert_reducer_ ? expert_reducer_->num_buckets() : 0);
  }

 private:
  double GradNorm() const;
  // Arms the reducers (the dense one and, with EP, the experts') for the last micro-batch.
  void PrepareForLastBackward();
  // The step's micro-batches through this rank's pipeline stage (PP > 1); the loss summed over
  // the micro-batches (the last stage's, on every stage).
  absl::StatusOr<double> RunPipelined(Loader& loader, TpRng& rng, StepResult& r);

  TrainTask& task_;
  const TrainConfig& tc_;
  const int64_t accumulation_;
  const ParallelLayout& layout_;
  const torch::Device device_;
  const bool bf16_;
  std::vector<torch::Tensor> params_;
  // Per parameter, how many of its leading (flat) elements this TP rank counts in the gradient
  // norm: all of a TP-split one's on every rank but its replicated tail (TP rank 0's); a
  // replicated one's on TP rank 0 only.
  std::vector<int64_t> counted_;
  std::vector<bool> copy_;  // the last stage's copy of a tied embedding (not in the norm)
  PipelineSchedule schedule_ = PipelineSchedule::k1F1B;
  torch::Tensor tied_;  // PP > 1: this end stage's tied embedding weight
  int64_t local_numel_ = 0, local_expert_numel_ = 0;
  std::unique_ptr<GradReducer> reducer_;
  std::unique_ptr<GradReducer> expert_reducer_;  // EP > 1: the experts' (over expert_dp)
  std::vector<bool> expert_;                     // EP > 1: per parameter, an expert's
  std::unique_ptr<AdamW> optimizer_;
  int64_t bad_in_a_row_ = 0;
};

// A one-value all-reduce of `v` over `comm`.
double AllReduceScalar(Communicator& comm, double v, ReduceOp op);

}  // namespace braid
