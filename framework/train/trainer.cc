// The training loop (see trainer.h).
#include "framework/train/trainer.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_format.h"
#include "framework/core/log.h"
#include "framework/core/status.h"
#include "framework/core/stop.h"
#include "framework/kernels/cpu_allocator.h"
#include "framework/train/device.h"
#include "framework/train/evaluate.h"
#include "framework/train/model_io.h"
#include "framework/train/run_log.h"
#include "framework/train/safetensors.h"
#include "framework/train/schedule.h"
#include "framework/train/step.h"

namespace braid {
namespace {
namespace fs = std::filesystem;

// BRAID_PROFILE=trace.json: LibTorch's profiler records steps 3..5 (a Chrome trace, rank 0).
class StepProfiler {
 public:
  StepProfiler(int rank, int64_t first_step) : first_(first_step) {
    const char* p = std::getenv("BRAID_PROFILE");
    if (p != nullptr && rank == 0) path_ = p;
  }
  void Before(int64_t step) {
    if (path_.empty()) return;
    if (step == first_ + 2) {
      profile_ = std::make_unique<torch::autograd::profiler::RecordProfile>(path_);
    }
    if (step == first_ + 5) profile_.reset();
  }

 private:
  std::string path_;
  int64_t first_;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile_;
};

// Collective over the world. Rank 0 writes final/model.safetensors and config.yaml; with pipeline
// stages the first rank of every other stage first writes its stage's tensors to
// final/.stage<p>.safetensors, which rank 0 merges in and removes.
absl::Status SaveFinal(const Config& config, const DerivedSizes& sizes,
                       const ParallelLayout& layout, std::map<std::string, torch::Tensor> full) {
  fs::path dir = fs::path(config.logging.run_dir) / "final";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (layout.pp_size > 1) {
    auto stage_file = [&](int p) { return dir / absl::StrFormat(".stage%d.safetensors", p); };
    absl::Status s;
    if (layout.pp_rank > 0 && layout.tp_rank == 0 && layout.dp_rank == 0) {
      s = WriteSafetensors(stage_file(layout.pp_rank).string(), full, {{"format", "pt"}});
    }
    if (AllReduceScalar(*layout.world, s.ok() ? 0.0 : 1.0, ReduceOp::kMax) > 0) {
      return s.ok() ? absl::InternalError(
                          "a pipeline stage could not write its final weights "
                          "(its log says why)")
                    : s;
    }
    if (layout.rank == 0) {
      for (int p = 1; p < layout.pp_size && s.ok(); ++p) {
        absl::StatusOr<SafetensorsFile> part = ReadSafetensors(stage_file(p).string());
        if (!part.ok()) {
          s = part.status();
          break;
        }
        for (auto& [name, t] : part->tensors) full.emplace(name, std::move(t));
        fs::remove(stage_file(p), ec);
      }
    }
    if (AllReduceScalar(*layout.world, s.ok() ? 0.0 : 1.0, ReduceOp::kMax) > 0) {
      return s.ok() ? absl::InternalError(
                          "rank 0 could not merge the stages' final weights "
                          "(its log says why)")
                    : s;
    }
  }
  if (layout.rank != 0) return absl::OkStatus();
  BRAID_RETURN_IF_ERROR(WriteSafetensors((dir / "model.safetensors").string(), full,
                                         {{"format", "pt"}, {"producer", "braid"}}));
  std::ofstream out(dir / "config.yaml");
  out << ConfigToYaml(config, &sizes);
  if (!out.flush()) {
    return absl::DataLossError(absl::StrCat((dir / "config.yaml").string(), ": cannot write"));
  }
  BLOG(INFO, "train") << "final weights: " << (dir / "model.safetensors").string();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrainResult> Train(const Config& config, const DerivedSizes& sizes,
                                  const ParallelLayout& layout, RecipeParts parts,
                                  const TrainOptions& options) {
  const TrainConfig& tc = config.train;
  TrainTask& task = *parts.task;
  torch::nn::Module& model = task.model();
  model.train();
  // The device first: gradient buckets, optimizer state and dropout generators are made where
  // the parameters live.
  BRAID_ASSIGN_OR_RETURN(const torch::Device device, ResolveTrainDevice(config, layout.rank));
  c10::OptionalDeviceGuard device_guard;  // the current GPU (NCCL communicators bind to it)
  if (!device.is_cpu()) {
    device_guard.reset_device(device);
    model.to(device);
  }
  TpRng rng(config.seed, layout.dp_rank, layout.tp_rank, device);
  // Every step allocates the same activation sizes: keep large host blocks mapped between steps
  // instead of faulting fresh pages in every time (cpu_allocator.h).
  InstallCachingCpuAllocator();
  TrainStep stepper(task, config, sizes, layout, device);
  // Pipeline stages: the last stage's copy of a tied embedding is saved by the first stage.
  std::set<std::string> copies;
  if (torch::Tensor tied = task.TiedEmbeddingCopy();
      tied.defined() && layout.pp_size > 1 && !layout.first_stage()) {
    for (const auto& p : model.named_parameters())
      if (p.value().is_same(tied)) copies.insert(p.key());
  }
  CheckpointPolicy policy({&config, &layout, &model, &stepper.optimizer(), &rng, parts.vocab_size,
                           options.run_id, copies},
                          options.checkpoints);
  BRAID_ASSIGN_OR_RETURN(TrainState state, policy.Resume(options.resume_from));
  BRAID_ASSIGN_OR_RETURN(
      DistributedBatchSampler sampler,
      DistributedBatchSampler::Create(sizes.global_batch_size, tc.micro_batch_size, layout.dp_rank,
                                      layout.dp_size, state.consumed_samples));
  Loader loader(parts.train, sampler, static_cast<int>(std::max<int64_t>(1, config.data.prefetch)));
  Evaluator evaluator(parts.valid, config, sizes, layout, device);

  // The MFU ceiling: the best matmul rate of the compute dtype on this device, measured now on
  // the model's own GEMM shapes (fc1 and the fused QKV of one micro-batch) and a square one.
  const bool bf16 = tc.precision == Precision::kBf16;
  const int64_t tokens = tc.micro_batch_size * config.model.seq_length;
  const int64_t h = config.model.hidden_size, tp = layout.tp_size;
  const double peak = AllReduceScalar(
      *layout.world,
      MeasureMatmulGflops(device, bf16 ? at::kBFloat16 : at::kFloat, 0.6,
                          {{tokens, h, sizes.ffn_hidden_size / tp}, {tokens, h, 3 * h / tp}}),
      ReduceOp::kSum);
  const double samples_per_step = static_cast<double>(sizes.global_batch_size);
  BLOG(INFO, "train") << absl::StrFormat(
      "model: %d parameters on this rank%s (%.1f MB fp32 weights, %.1f MB with grads and AdamW "
      "state); %d gradient buckets",
      stepper.local_parameters(),
      stepper.local_expert_parameters() > 0
          ? absl::StrFormat(", %d of them experts' (EP %d)", stepper.local_expert_parameters(),
                            layout.ep_size)
          : "",
      stepper.local_parameters() * 4 / 1e6, stepper.local_parameters() * 16 / 1e6,
      stepper.num_buckets());
  BLOG(INFO, "train") << absl::StrFormat(
      "layout: world %d = TP %d x DP %d x PP %d; micro batch %d x %d accumulation x %d DP = "
      "global batch %d; %d intra-op threads per rank; device %s, %s; %s matmul ceiling %.0f "
      "GFLOP/s (all ranks, measured)",
      layout.world_size, layout.tp_size, layout.dp_size, layout.pp_size, tc.micro_batch_size,
      sizes.accumulation_steps, layout.dp_size, sizes.global_batch_size, at::get_num_threads(),
      device.str(), bf16 ? "bf16 autocast" : "fp32", bf16 ? "bf16" : "fp32", peak);
  for (const std::string& note : parts.notes) BLOG(INFO, "data") << note;
  BLOG(INFO, "train") << "MFU counts matmul FLOPs (3x the forward's; for GPT it equals "
                         "Megatron's formula)";
  BRAID_ASSIGN_OR_RETURN(
      std::unique_ptr<RunLog> log,
      RunLog::Open(config, layout, state.step, samples_per_step * task.TokensPerSample(),
                   samples_per_step * task.FlopsPerSample(), peak));

  TrainResult result;
  result.start_step = result.steps = state.step;
  result.skipped_steps = state.skipped_steps;
  const int64_t decay_steps = tc.lr_decay_steps > 0 ? tc.lr_decay_steps : tc.train_steps;
  StepProfiler profiler(layout.rank, state.step);
  NoteStepBoundary();  // the stop watchdog times steps from here (framework/core/stop.h)
  for (int64_t step = state.step + 1; step <= tc.train_steps; ++step) {
    profiler.Before(step);
    const double lr = LearningRate(step - 1, tc.lr, tc.min_lr, tc.lr_warmup_steps, decay_steps,
                                   tc.lr_decay_style);
    BRAID_ASSIGN_OR_RETURN(StepResult r, stepper.Run(step, loader, lr, rng));
    result.steps = step;
    result.skipped_steps += r.skipped ? 1 : 0;
    result.losses.push_back(r.loss);
    result.grad_norms.push_back(r.grad_norm);
    result.step_seconds.push_back(r.seconds);
    result.comm_wait_seconds.push_back(r.comm_wait);
    BRAID_RETURN_IF_ERROR(log->Step(step, r, lr, loader.TakeWaitSeconds()));
    if (evaluator.Due(step)) {
      result.last_eval_loss = evaluator.Run(task, rng);
      BRAID_RETURN_IF_ERROR(log->Eval(step, result.last_eval_loss, evaluator.metrics()));
    }
    BRAID_ASSIGN_OR_RETURN(StopReason stop,
                           policy.AfterStep({step, loader.consumed(), result.skipped_steps}));
    if (stop != StopReason::kNone) {
      result.preempted = stop == StopReason::kSignal;
      break;
    }
  }

  if (!result.preempted && (options.save_final || options.keep_final_weights)) {
    std::map<std::string, torch::Tensor> full = GatherFullState(model, *layout.tp);
    if (options.save_final) {
      std::map<std::string, torch::Tensor> saved = full;
      for (const std::string& name : copies) saved.erase(name);  // the first stage's is the one
      BRAID_RETURN_IF_ERROR(SaveFinal(config, sizes, layout, std::move(saved)));
    }
    if (options.keep_final_weights) result.final_weights = std::move(full);
  }
  return result;
}

}  // namespace braid
