// What a run reports, from rank 0 (the interval averages are collective over DP, so every rank
// calls it):
//   - every step's loss, gradient norm and lr to <run_dir>/losses.tsv, at full precision;
//   - every logging.interval steps one greppable progress line ([train] step ... | loss ... |
//     tok/s | MFU | data and communication shares | memory | the task's metrics) and the same
//     values as TensorBoard scalars (framework/train/tensorboard.h);
//   - on a terminal, a live line rewritten every step;
//   - evaluations ([eval] valid loss, perplexity; eval/loss).
// A metrics file that cannot be written is an error at once, not at the next checkpoint.
#pragma once
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/dist/layout.h"
#include "framework/train/step.h"
#include "framework/train/tensorboard.h"

namespace braid {

class RunLog {
 public:
  // `start_step`: completed steps before this run (losses.tsv is appended to when > 0).
  // `samples_per_step`, `tokens_per_sample`, `flops_per_sample`: for tokens/s and MFU against
  // `peak_gflops` (the matmul rate of all ranks together).
  static absl::StatusOr<std::unique_ptr<RunLog>> Open(const Config& config,
                                                      const ParallelLayout& layout,
                                                      int64_t start_step, double tokens_per_step,
                                                      double flops_per_step, double peak_gflops);
  // After step `step` (1-based): the TSV row, and the interval line when due. `data_wait`: the
  // seconds this step waited for data.
  absl::Status Step(int64_t step, const StepResult& r, double lr, double data_wait);
  absl::Status Eval(int64_t step, double loss, const std::map<std::string, double>& metrics = {});

 private:
  RunLog(const Config& config, const ParallelLayout& layout) : config_(config), layout_(layout) {}
  absl::Status Interval(int64_t step, const StepResult& last, double lr);

  const Config& config_;
  const ParallelLayout& layout_;
  std::string tsv_path_;
  std::ofstream tsv_;
  std::unique_ptr<EventWriter> events_;
  bool live_ = false;
  int64_t start_step_ = 0;
  double tokens_per_step_ = 0, flops_per_step_ = 0, peak_gflops_ = 0;
  double run_start_ = 0;
  // The current interval: finite steps only.
  int64_t steps_ = 0;
  double loss_ = 0, seconds_ = 0, data_wait_ = 0, comm_wait_ = 0, pipe_wait_ = 0;
  std::map<std::string, double> metrics_;
};

}  // namespace braid
