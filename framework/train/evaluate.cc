// Evaluation (see evaluate.h).
#include "framework/train/evaluate.h"

#include <cmath>

#include "framework/core/check.h"
#include "framework/data/loader.h"
#include "framework/train/device.h"
#include "framework/train/pipeline.h"
#include "framework/train/step.h"

namespace braid {

Evaluator::Evaluator(std::shared_ptr<const SampleSource> valid, const Config& config,
                     const DerivedSizes& sizes, const ParallelLayout& layout, torch::Device device)
    : valid_(std::move(valid)), config_(config), sizes_(sizes), layout_(layout), device_(device) {}

bool Evaluator::Due(int64_t step) const {
  const int64_t every = config_.train.eval_interval;
  return (every > 0 && step % every == 0) || step == config_.train.train_steps;
}

double Evaluator::Run(TrainTask& task, TpRng& rng) {
  const TrainConfig& tc = config_.train;
  if (!valid_ || valid_->size() == 0 || tc.eval_steps == 0) return NAN;
  auto sampler = DistributedBatchSampler::Create(sizes_.global_batch_size, tc.micro_batch_size,
                                                 layout_.dp_rank, layout_.dp_size, 0);
  BRAID_CHECK_OK(sampler.status());  // the same arguments the training sampler accepted
  Loader loader(valid_, *sampler, static_cast<int>(std::max<int64_t>(1, config_.data.prefetch)));
  torch::NoGradGuard no_grad;
  torch::nn::Module& model = task.model();
  model.eval();
  double sum = 0;
  std::map<std::string, double> metrics;  // the same keys on every rank
  const int64_t batches = tc.eval_steps * sampler->micro_batches_per_step();
  if (layout_.pp_size > 1) {  // forward through the stages; the last one has the losses
    const StagePlan& plan = *task.stage();
    PipelineStepOptions options;
    options.backward = false;
    options.bf16 = tc.precision == Precision::kBf16;
    auto step = RunPipelineStep(
        task, ForwardOnlySchedule(plan.virtual_size, static_cast<int>(batches)),
        [&](int) { return ToBatch(loader.Next(), device_); }, *layout_.pp, rng, &metrics, options);
    BRAID_CHECK_OK(step.status());
    BRAID_CHECK_OK(ShareStageMetrics(*layout_.pp, &metrics));
    sum = AllReduceScalar(*layout_.pp, step->loss_sum, ReduceOp::kSum);
  }
  for (int64_t b = 0; b < batches && layout_.pp_size == 1; ++b) {
    Batch batch = ToBatch(loader.Next(), device_);
    AutocastScope amp(device_.type(), tc.precision == Precision::kBf16);
    sum += task.Loss(batch, rng, &metrics).item<double>();
  }
  model.train();
  const double n = static_cast<double>(std::max<int64_t>(1, batches));
  metrics_.clear();
  for (const auto& [k, v] : metrics)
    metrics_[k] = AllReduceScalar(*layout_.dp, v / n, ReduceOp::kAvg);
  return AllReduceScalar(*layout_.dp, sum / n, ReduceOp::kAvg);
}

}  // namespace braid
