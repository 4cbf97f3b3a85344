// Evaluation on the validation split: the mean loss (and the task's metrics, each averaged the
// same way) over train.eval_steps global batches, read
// from the start of the split every time through the same Loader and sampler as training (so it
// is the same at every DP size), in eval mode, without gradients, averaged over DP. Runs every
// train.eval_interval steps and after the last one.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "framework/core/config.h"
#include "framework/dist/layout.h"
#include "framework/train/task.h"

namespace braid {

class Evaluator {
 public:
  Evaluator(std::shared_ptr<const SampleSource> valid, const Config& config,
            const DerivedSizes& sizes, const ParallelLayout& layout, torch::Device device);
  // Whether an evaluation follows step `step` (1-based).
  bool Due(int64_t step) const;
  // The mean validation loss; NaN without a validation split or with train.eval_steps = 0.
  double Run(TrainTask& task, TpRng& rng);
  // The task's metrics (mlm_loss, sop_acc, ...) over the last Run's batches, averaged like the
  // loss.
  const std::map<std::string, double>& metrics() const { return metrics_; }

 private:
  std::shared_ptr<const SampleSource> valid_;
  const Config& config_;
  const DerivedSizes& sizes_;
  const ParallelLayout& layout_;
  torch::Device device_;
  std::map<std::string, double> metrics_;
};

}  // namespace braid
