// Pipeline schedule benchmark: prints figures, never fails on time.
//   mpirun -np PP bench_pipeline
// Each rank is one stage (PP = the ranks) of a model whose chunks take a fixed time: a forward
// sleeps F / V ms and a backward 2 F / V ms (F = 20 ms per micro-batch and stage), so the stages
// are exactly balanced and ranks sharing cores do not slow each other. The real executor
// (framework/train/pipeline.h) runs each schedule over the pp communicator (real messages of
// 64 KiB); the measured bubble 1 - busy / step time, busy = m (F + 2F) of sleeping per rank, is
// printed against (PP - 1) / V / (m + (PP - 1) / V) for V = 1, 2 and m = 4, 8, 16.
// tools/bench/run_pipeline_bench.sh runs it at PP 2 and 4.
#include <torch/torch.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_format.h"
#include "framework/core/check.h"
#include "framework/core/flags.h"
#include "framework/core/system.h"
#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/train/pipeline.h"

namespace braid {
namespace {

constexpr double kForwardMs = 20;

void SleepMs(double ms) {
  std::this_thread::sleep_for(std::chrono::microseconds(int64_t(ms * 1e3)));
}

// y = x * 1, sleeping in forward and backward.
class SleepOp : public torch::autograd::Function<SleepOp> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x,
                               double forward_ms) {
    ctx->saved_data["ms"] = forward_ms;
    SleepMs(forward_ms);
    return x.clone();
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    SleepMs(2 * ctx->saved_data["ms"].toDouble());
    return {grads[0], torch::Tensor()};
  }
};

class SleepTask : public TrainTask {
 public:
  SleepTask(StagePlan plan) : plan_(std::move(plan)) {
    weight_ = module_.register_parameter("w", torch::ones({1}));
  }
  torch::nn::Module& model() override { return module_; }
  torch::Tensor Loss(const Batch&, TpRng&, std::map<std::string, double>*) override { return {}; }
  double FlopsPerSample() const override { return 0; }
  int64_t TokensPerSample() const override { return 0; }
  const StagePlan* stage() const override { return &plan_; }
  StageTensors StageForward(int chunk, const Batch&, const StageTensors& input, TpRng&,
                            std::map<std::string, double>*) override {
    torch::Tensor x = input.empty() ? torch::ones({1 << 14}) : input[0];
    torch::Tensor y = SleepOp::apply(x * weight_, kForwardMs / plan_.virtual_size);
    return {plan_.chunks[chunk].output ? y.sum() : y};
  }
  StageTensors ActivationLike(const Batch&, int64_t) const override {
    return {torch::empty({1 << 14})};
  }

 private:
  StagePlan plan_;
  torch::nn::Module module_;
  torch::Tensor weight_;
};

void Run(const ParallelLayout& layout) {
  const int pp = layout.pp_size;
  if (layout.rank == 0) {
    std::printf("PP %d, forward %.0f ms + backward %.0f ms per micro-batch and stage\n", pp,
                kForwardMs, 2 * kForwardMs);
    std::printf("%-4s %-4s %-10s %-14s %-10s\n", "V", "m", "step (s)", "bubble meas.", "theory");
  }
  for (int v : {1, 2}) {
    for (int m : {4, 8, 16}) {
      if (!CheckSchedule(PipelineSchedule::k1F1B, pp, v, m).ok()) continue;
      std::vector<int64_t> split(pp * v, 1);
      SleepTask task(PlanOfRank(split, layout.pp_rank, pp));
      TpRng rng(1, 0, 0);
      std::map<std::string, double> metrics;
      PipelineStepOptions options;
      const auto schedule = ScheduleOf(PipelineSchedule::k1F1B, pp, v, layout.pp_rank, m);
      double best = 1e9;
      for (int rep = 0; rep < 3; ++rep) {
        BRAID_CHECK_OK(layout.world->Barrier());
        const double start = SteadySeconds();
        auto r = RunPipelineStep(
            task, schedule,
            [](int) {
              return Batch{torch::zeros({1, 1}, torch::kLong), {}};
            },
            *layout.pp, rng, &metrics, options);
        BRAID_CHECK_OK(r.status());
        BRAID_CHECK_OK(layout.world->Barrier());
        best = std::min(best, SteadySeconds() - start);
      }
      const double busy = m * 3 * kForwardMs / 1e3;
      if (layout.rank == 0) {
        std::printf("%-4d %-4d %-10.3f %-14s %-10s\n", v, m, best,
                    absl::StrFormat("%.1f%%", 100 * (1 - busy / best)).c_str(),
                    absl::StrFormat("%.1f%%", 100 * TheoreticalBubble(pp, v, m)).c_str());
      }
    }
  }
}

}  // namespace
}  // namespace braid

int main(int argc, char** argv) {
  braid::CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage = "usage: mpirun -np PP bench_pipeline   (each rank one pipeline stage)\n";
  braid::ParseCommandLineOrExit(argc, argv, cl);
  auto rt = braid::Runtime::Init(&argc, &argv);
  if (!rt.ok()) {
    std::fprintf(stderr, "%s\n", std::string(rt.status().message()).c_str());
    return 2;
  }
  torch::set_num_threads(1);
  auto layout = braid::ParallelLayout::Create((*rt)->world(), 1, (*rt)->world_size());
  if (!layout.ok()) {
    std::fprintf(stderr, "%s\n", std::string(layout.status().message()).c_str());
    return 2;
  }
  braid::Run(*layout);
  return 0;
}
