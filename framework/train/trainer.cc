// The training loop (see trainer.h).
#include "framework/train/trainer.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/check.h"
#include "framework/core/log.h"
#include "framework/core/status.h"
#include "framework/core/system.h"
#include "framework/kernels/cpu_allocator.h"
#include "framework/parallel/grad_reducer.h"
#include "framework/parallel/layers.h"
#include "framework/train/checkpoint.h"
#include "framework/train/device.h"
#include "framework/train/model_io.h"
#include "framework/train/optimizer.h"
#include "framework/train/safetensors.h"
#include "framework/train/schedule.h"
#include "framework/train/tensorboard.h"

namespace braid {
namespace {
namespace fs = std::filesystem;

std::atomic<int> g_stop_signal{0};
void OnStopSignal(int sig) { g_stop_signal.store(sig); }

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Scalar(Communicator& c, double v, ReduceOp op) {
  torch::Tensor t = torch::full({1}, v, torch::kDouble);
  BRAID_CHECK_OK(c.AllReduce(t, op));
  return t.item<double>();
}

// Global L2 norm of the gradients: TP-split parameters counted on every TP rank, replicated ones
// once (on TP rank 0), summed over TP. DP ranks hold identical (averaged) gradients already.
// The squared norms are summed on the device and read once (one host sync per step on a GPU).
double GradNorm(const std::vector<torch::Tensor>& params, const std::vector<bool>& split,
                const ParallelLayout& layout) {
  std::vector<torch::Tensor> norms;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].grad().defined()) continue;
    if (!split[i] && layout.tp_rank != 0) continue;
    norms.push_back(params[i].grad().norm().to(torch::kDouble));  // vectorised, no copy
  }
  double sq = norms.empty() ? 0.0 : torch::stack(norms).square().sum().item<double>();
  if (layout.tp_size > 1) sq = Scalar(*layout.tp, sq, ReduceOp::kSum);
  return std::sqrt(sq);
}

}  // namespace

void InstallStopSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

absl::StatusOr<TrainResult> Train(const Config& config, const DerivedSizes& sizes,
                                  const ParallelLayout& layout, RecipeParts parts,
                                  const TrainOptions& options) {
  const TrainConfig& tc = config.train;
  TrainTask& task = *parts.task;
  torch::nn::Module& model = task.model();
  model.train();
  // The device first: the gradient buckets, the optimizer state and the dropout generators are
  // made where the parameters live.
  BRAID_ASSIGN_OR_RETURN(const torch::Device device, ResolveTrainDevice(config, layout.rank));
  const bool bf16 = tc.precision == "bf16";
  c10::OptionalDeviceGuard device_guard;  // the current GPU (NCCL communicators bind to it)
  if (!device.is_cpu()) {
    device_guard.reset_device(device);
    model.to(device);
  }
  TpRng rng(config.seed, layout.dp_rank, layout.tp_rank, device);
  // Every step allocates the same activation sizes: keep large host blocks mapped between steps
  // instead of faulting fresh pages in every time (cpu_allocator.h).
  InstallCachingCpuAllocator();

  // Parameters, their TP layout, and the optimizer groups.
  std::map<std::string, TpParam> layouts = CollectTpParams(model);
  std::vector<torch::Tensor> params;
  std::vector<bool> split;
  std::vector<bool> decay;
  int64_t local_numel = 0;
  for (const auto& p : model.named_parameters()) {
    params.push_back(p.value());
    split.push_back(layouts[p.key()].axis >= 0);
    decay.push_back(p.value().dim() >= 2);  // no weight decay on biases and norm weights
    local_numel += p.value().numel();
  }
  GradReducer reducer(params, layout.dp, config.parallel.grad_bucket_mb);
  AdamW optimizer(params, decay,
                  AdamW::Options{tc.adam_beta1, tc.adam_beta2, tc.adam_eps, tc.weight_decay});

  // Resume: an explicit step directory, or <checkpoint dir>/latest when checkpoint.resume.
  const std::string ckpt_root = config.checkpoint.dir.empty()
                                    ? (fs::path(config.logging.run_dir) / "checkpoints").string()
                                    : config.checkpoint.dir;
  CheckpointTarget target{&config, &layout, &model, &optimizer, &rng, parts.vocab_size};
  TrainState state;
  std::string resume = options.resume_from;
  if (resume.empty() && config.checkpoint.resume && options.checkpoints) {
    auto latest = LatestCheckpoint(ckpt_root);
    if (latest.ok()) resume = *latest;
  }
  if (!resume.empty()) {
    BRAID_ASSIGN_OR_RETURN(state, LoadCheckpoint(resume, target));
    BLOG(INFO, "ckpt") << absl::StrFormat("resumed from %s: step %d, %d samples consumed", resume,
                                          state.step, state.consumed_samples);
    if (state.step >= tc.train_steps) {
      BLOG(WARNING, "train") << absl::StrFormat(
          "the checkpoint is at step %d and train.train_steps is %d: nothing to train. HINT: raise "
          "train.train_steps, or start fresh with checkpoint.resume=false or another run dir.",
          state.step, tc.train_steps);
    }
  }
  TrainResult result;
  result.start_step = state.step;
  result.skipped_steps = state.skipped_steps;

  BRAID_ASSIGN_OR_RETURN(
      DistributedBatchSampler sampler,
      DistributedBatchSampler::Create(sizes.global_batch_size, tc.micro_batch_size, layout.dp_rank,
                                      layout.dp_size, state.consumed_samples));
  Loader loader(parts.train, sampler, static_cast<int>(std::max<int64_t>(1, config.data.prefetch)));

  // The MFU ceiling: the matmul rate of the compute dtype on this device, measured now.
  const double peak_gflops =
      Scalar(*layout.world, MeasureMatmulGflops(device, bf16 ? at::kBFloat16 : at::kFloat),
             ReduceOp::kSum);
  BLOG(INFO, "train") << absl::StrFormat(
      "model: %d parameters on this rank (%.1f MB fp32 weights, %.1f MB with grads and AdamW "
      "state); %d gradient buckets",
      local_numel, local_numel * 4 / 1e6, local_numel * 16 / 1e6, reducer.num_buckets());
  BLOG(INFO, "train") << absl::StrFormat(
      "layout: world %d = TP %d x DP %d; micro batch %d x %d accumulation x %d DP = global "
      "batch %d; %d intra-op threads per rank; device %s, %s; %s matmul ceiling %.0f GFLOP/s "
      "(all ranks, measured)",
      layout.world_size, layout.tp_size, layout.dp_size, tc.micro_batch_size,
      sizes.accumulation_steps, layout.dp_size, sizes.global_batch_size, at::get_num_threads(),
      device.str(), bf16 ? "bf16 autocast" : "fp32", bf16 ? "bf16" : "fp32", peak_gflops);
  for (const std::string& note : parts.notes) BLOG(INFO, "data") << note;
  BLOG(INFO, "train") << "MFU uses the PaLM estimate: 6N + 12 L d T FLOPs per token";

  std::unique_ptr<EventWriter> events;
  if (layout.rank == 0 && config.logging.tensorboard) {
    BRAID_ASSIGN_OR_RETURN(events, EventWriter::Create(config.logging.run_dir));
    BLOG(INFO, "train") << "TensorBoard events: " << events->path();
  }
  std::ofstream loss_log;
  if (layout.rank == 0) {
    std::error_code ec;
    fs::create_directories(config.logging.run_dir, ec);
    loss_log.open(fs::path(config.logging.run_dir) / "losses.tsv",
                  state.step > 0 ? std::ios::app : std::ios::trunc);
  }
  auto save = [&](int64_t step) -> absl::Status {
    double t0 = Now();
    TrainState s{step, loader.consumed(), result.skipped_steps};
    BRAID_RETURN_IF_ERROR(SaveCheckpoint(ckpt_root, target, s, config.checkpoint.keep_last));
    BLOG(INFO, "ckpt") << absl::StrFormat("saved step %d to %s/step_%08d in %.2f s", step,
                                          ckpt_root, step, Now() - t0);
    return absl::OkStatus();
  };
  int64_t bad_in_a_row = 0;
  const bool live_progress = layout.rank == 0 && OutputIsTerminal();
  const double run_start = Now();
  const int64_t decay_steps = tc.lr_decay_steps > 0 ? tc.lr_decay_steps : tc.train_steps;
  double t_interval = Now(), data_wait = 0, comm_wait = 0;
  int64_t interval_steps = 0;
  double interval_loss = 0;
  std::map<std::string, double> interval_metrics;

  auto evaluate = [&]() -> double {
    if (!parts.valid || tc.eval_steps == 0) return NAN;
    torch::NoGradGuard no_grad;
    model.eval();
    auto vs = DistributedBatchSampler::Create(sizes.global_batch_size, tc.micro_batch_size,
                                              layout.dp_rank, layout.dp_size, 0);
    BRAID_CHECK_OK(vs.status());
    double sum = 0;
    int64_t n = 0;
    for (int64_t s = 0; s < tc.eval_steps; ++s) {
      for (int64_t m = 0; m < vs->micro_batches_per_step(); ++m) {
        Batch b;
        b.indices = vs->Next();
        const int64_t len = parts.valid->sample_length();
        b.tokens = torch::empty({static_cast<int64_t>(b.indices.size()), len}, torch::kLong);
        for (size_t k = 0; k < b.indices.size(); ++k)
          parts.valid->Get(b.indices[k] % parts.valid->size(),
                           b.tokens.data_ptr<int64_t>() + k * len);
        if (!device.is_cpu()) b.tokens = b.tokens.to(device);
        AutocastScope amp(device.type(), bf16);
        sum += task.Loss(b, rng, nullptr).item<double>();
        ++n;
      }
    }
    model.train();
    return Scalar(*layout.dp, sum / std::max<int64_t>(1, n), ReduceOp::kAvg);
  };

  // BRAID_PROFILE=trace.json: LibTorch's profiler records steps 3..5 (a Chrome trace, rank 0).
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  const char* profile_path = std::getenv("BRAID_PROFILE");
  for (int64_t step = state.step; step < tc.train_steps; ++step) {
    if (profile_path != nullptr && layout.rank == 0) {
      if (step == state.step + 2)
        profile = std::make_unique<torch::autograd::profiler::RecordProfile>(profile_path);
      if (step == state.step + 5) profile.reset();
    }
    const double lr =
        LearningRate(step, tc.lr, tc.min_lr, tc.lr_warmup_steps, decay_steps, tc.lr_decay_style);
    const double step_start = Now();
    reducer.ZeroGrad();
    double loss_sum = 0;
    std::map<std::string, double> metrics;
    for (int64_t m = 0; m < sizes.accumulation_steps; ++m) {
      Batch batch = loader.Next();
      if (!device.is_cpu()) batch.tokens = batch.tokens.to(device);
      if (m + 1 == sizes.accumulation_steps) reducer.PrepareForLastBackward();
      torch::Tensor loss;
      {
        AutocastScope amp(device.type(), bf16);  // forward only; backward in the saved dtypes
        loss = task.Loss(batch, rng, &metrics);
      }
      (loss / static_cast<double>(sizes.accumulation_steps)).backward();
      loss_sum += loss.item<double>();
    }
    const double step_comm = reducer.Finish();
    comm_wait += step_comm;
    result.comm_wait_seconds.push_back(step_comm);
    data_wait += loader.TakeWaitSeconds();
    const double loss = Scalar(*layout.dp, loss_sum / sizes.accumulation_steps, ReduceOp::kAvg);
    const double norm = GradNorm(params, split, layout);
    result.grad_norms.push_back(norm);
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      ++result.skipped_steps;
      BLOG(WARNING, "train") << absl::StrFormat(
          "step %d: loss %g, grad norm %g: not finite, step "
          "skipped (%d in a row)",
          step + 1, loss, norm, bad_in_a_row + 1);
      if (++bad_in_a_row >= tc.max_bad_steps) {
        return absl::AbortedError(absl::StrFormat(
            "step %d: %d steps in a row had a NaN/Inf loss or gradient norm; stopping. HINT: "
            "lower train.lr, raise lr_warmup_steps, or check the data.",
            step + 1, bad_in_a_row));
      }
      result.losses.push_back(loss);
      result.step_seconds.push_back(Now() - step_start);
      if (loss_log.is_open())
        loss_log << absl::StrFormat("%d\t%.17g\t%.17g\t%.17g\n", step + 1, loss, norm, lr)
                 << std::flush;
      continue;
    }
    bad_in_a_row = 0;
    if (tc.clip_grad > 0 && norm > tc.clip_grad) {
      torch::NoGradGuard no_grad;
      double scale = tc.clip_grad / (norm + 1e-6);
      std::vector<torch::Tensor> grads;
      for (auto& p : params)
        if (p.grad().defined()) grads.push_back(p.grad());
      at::_foreach_mul_(grads, scale);  // one multi-tensor launch on a GPU, not one per parameter
    }
    optimizer.Step(lr);
    result.step_seconds.push_back(Now() - step_start);
    if (loss_log.is_open()) {
      loss_log << absl::StrFormat("%d\t%.17g\t%.17g\t%.17g\n", step + 1, loss, norm, lr)
               << std::flush;
    }
    result.losses.push_back(loss);
    result.steps = step + 1;
    interval_loss += loss;
    for (const auto& [k, v] : metrics) interval_metrics[k] += v / sizes.accumulation_steps;
    ++interval_steps;

    const bool last = step + 1 == tc.train_steps;
    if (live_progress) {  // a terminal: one line rewritten every step (the log lines clear it)
      const double elapsed = Now() - run_start;
      const double per_step = elapsed / static_cast<double>(step + 1 - state.step);
      const int64_t eta =
          static_cast<int64_t>(per_step * static_cast<double>(tc.train_steps - step - 1));
      std::printf("\r\033[K[train] step %ld/%ld | ETA %ld:%02ld | loss %.4f | %.0f tok/s",
                  static_cast<long>(step + 1), static_cast<long>(tc.train_steps),
                  static_cast<long>(eta / 60), static_cast<long>(eta % 60), loss,
                  sizes.global_batch_size * task.TokensPerSample() / per_step);
      std::fflush(stdout);
    }
    if ((step + 1) % config.logging.interval == 0 || last) {
      double secs = Now() - t_interval;
      double samples = static_cast<double>(interval_steps * sizes.global_batch_size);
      double tokens_per_s = samples * task.TokensPerSample() / secs;
      double mfu = samples * task.FlopsPerSample() / secs / 1e9 / peak_gflops;
      std::string extra;
      for (const auto& [k, v] : interval_metrics) {
        const double avg = Scalar(*layout.dp, v / interval_steps, ReduceOp::kAvg);
        absl::StrAppendFormat(&extra, " | %s %.4f", k, avg);
        if (events) events->Scalar("train/" + k, step + 1, avg);
      }
      if (events) {
        const int64_t st = step + 1;
        events->Scalar("train/loss", st, interval_loss / interval_steps);
        events->Scalar("train/lr", st, lr);
        events->Scalar("train/grad_norm", st, norm);
        events->Scalar("train/tokens_per_s", st, tokens_per_s);
        events->Scalar("train/mfu", st, mfu);
        events->Scalar("train/data_wait", st, data_wait / secs);
        events->Flush();
      }
      BLOG(INFO, "train") << absl::StrFormat(
          "step %d/%d | loss %.4f | lr %.3e | grad %.3f | %.0f tok/s | MFU %.1f%% | data %.1f%% "
          "| comm %.1f%% | mem %.0f MB%s",
          step + 1, tc.train_steps, interval_loss / interval_steps, lr, norm, tokens_per_s,
          100 * mfu, 100 * data_wait / secs, 100 * comm_wait / secs, PeakRssMb(), extra);
      t_interval = Now();
      data_wait = comm_wait = interval_loss = 0;
      interval_steps = 0;
      interval_metrics.clear();
    }
    if ((tc.eval_interval > 0 && (step + 1) % tc.eval_interval == 0) || last) {
      double t0 = Now();
      result.last_eval_loss = evaluate();
      if (std::isfinite(result.last_eval_loss) && events) {
        events->Scalar("eval/loss", step + 1, result.last_eval_loss);
        events->Flush();
      }
      if (std::isfinite(result.last_eval_loss)) {
        BLOG(INFO, "eval") << absl::StrFormat("step %d | valid loss %.4f | ppl %.2f", step + 1,
                                              result.last_eval_loss,
                                              std::exp(result.last_eval_loss));
      }
      t_interval += Now() - t0;  // evaluation time is not training time
    }
    const bool periodic =
        config.checkpoint.save_interval > 0 && (step + 1) % config.checkpoint.save_interval == 0;
    // A stop signal on any rank stops every rank at this same step boundary.
    const bool signalled =
        !last && Scalar(*layout.world, g_stop_signal.load() != 0 ? 1.0 : 0.0, ReduceOp::kMax) > 0;
    if (signalled) {
      BLOG(WARNING, "train") << absl::StrFormat(
          "stop signal received: saving at step %d and "
          "stopping (exit code %d; rerun to resume)",
          step + 1, kPreemptedExitCode);
      result.preempted = true;
    }
    const bool exit_now =
        signalled || (tc.exit_interval > 0 && (step + 1) % tc.exit_interval == 0 && !last);
    if (options.checkpoints && (periodic || last || exit_now)) {
      double t0 = Now();
      BRAID_RETURN_IF_ERROR(save(step + 1));
      t_interval += Now() - t0;
    }
    if (exit_now) {
      if (!signalled)
        BLOG(INFO, "train") << "train.exit_interval: stopping after step " << step + 1;
      break;
    }
  }

  if (!result.preempted && (options.save_final || options.keep_final_weights)) {
    std::map<std::string, torch::Tensor> full = GatherFullState(model, *layout.tp);
    if (options.save_final && layout.rank == 0) {
      fs::path dir = fs::path(config.logging.run_dir) / "final";
      std::error_code ec;
      fs::create_directories(dir, ec);
      BRAID_RETURN_IF_ERROR(WriteSafetensors((dir / "model.safetensors").string(), full,
                                             {{"format", "pt"}, {"producer", "braid"}}));
      std::ofstream(dir / "config.yaml") << ConfigToYaml(config, &sizes);
      BLOG(INFO, "train") << "final weights: " << (dir / "model.safetensors").string();
    }
    if (options.keep_final_weights) result.final_weights = std::move(full);
  }
  return result;
}

}  // namespace braid
