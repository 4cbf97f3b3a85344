// Training benchmark of any family (through the registry; GPT by default): prints figures, never
// fails on time. Runs the real trainer (Train) on the family's random samples and reports
// tokens/s (median step after warm-up), MFU against the matmul rate measured in the same process,
// the share of step time waiting for DP communication, and memory per rank.
//   bench_gpt [--recipe gpt|bert --layers 4 --hidden 256 --heads 4 --seq 256 --vocab 8192
//              --micro 8 --global 8 --steps 12 --threads 2 --tp 1 --pp 1 --ep 1 --cuda --bf16
//              --dropout]
//   DP = ranks / (TP x PP); run under mpirun for DP/TP/PP. --cuda trains on the GPU (train.device:
//   cuda),
//   --bf16 in bf16 autocast (train.precision: bf16); MFU is then against the measured bf16
//   matmul rate of the device. --dropout uses dropout 0.1 (hidden and attention).
#include <algorithm>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "framework/core/config.h"
#include "framework/core/flags.h"
#include "framework/core/log.h"
#include "framework/core/system.h"
#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/kernels/cpu_allocator.h"
#include "framework/train/device.h"
#include "framework/train/trainer.h"
#include "recipes/plan.h"
#include "recipes/registry.h"

ABSL_FLAG(std::string, recipe, "gpt", "the model family (gpt, bert, t5, bart)");
ABSL_FLAG(std::string, base, "", "the recipe the model starts from (recipes/<recipe>/base.yaml)");
ABSL_FLAG(int64_t, layers, 4, "layers");
ABSL_FLAG(int64_t, hidden, 256, "hidden size");
ABSL_FLAG(int64_t, heads, 4, "attention heads");
ABSL_FLAG(int64_t, ffn, 0, "FFN width (0: 4 x hidden)");
ABSL_FLAG(std::string, activation, "", "model.activation (default: the family's)");
ABSL_FLAG(int64_t, seq, 256, "sequence length");
ABSL_FLAG(int64_t, vocab, 8192, "vocabulary size");
ABSL_FLAG(int64_t, micro, 8, "micro batch per rank");
ABSL_FLAG(int64_t, global, 8, "global batch");
ABSL_FLAG(int64_t, steps, 12, "steps (the first two are warm-up)");
ABSL_FLAG(int64_t, threads, 2, "intra-op threads per rank");
ABSL_FLAG(int64_t, tp, 1, "tensor-parallel size");
ABSL_FLAG(int64_t, pp, 1,
          "pipeline-parallel size (1F1B; the micro-batches are global / (micro x DP))");
ABSL_FLAG(int64_t, ep, 1,
          "expert-parallel size (parallel.expert_parallel_size; a --base with model.num_experts)");
ABSL_FLAG(bool, cuda, false, "train on the GPU");
ABSL_FLAG(bool, bf16, false, "bf16 autocast");
ABSL_FLAG(bool, dropout, false, "dropout 0.1 (hidden and attention)");
ABSL_FLAG(bool, untied, false, "untied output layer (model.tie_embeddings: false)");
ABSL_FLAG(std::string, recompute, "none", "train.recompute: none | selective | full");
ABSL_FLAG(bool, distributed_optimizer, false,
          "parallel.distributed_optimizer (AdamW state sharded over DP)");
ABSL_FLAG(bool, sequence_parallel, false,
          "parallel.sequence_parallel (the residual stream split along the sequence within TP)");
ABSL_FLAG(int64_t, chunk, 0,
          "model.output_chunk_tokens (the output layer and loss in chunks; BERT: the masked rows)");

namespace braid {
namespace {

int Main(int argc, char** argv) {
  CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage =
      "usage: bench_gpt [--recipe gpt|bert|t5|bart] [--layers N --hidden N --heads N --seq N "
      "--vocab "
      "N]\n"
      "                 [--micro N --global N --steps N --threads N --tp N --pp N --ep N] [--cuda] "
      "[--bf16]\n"
      "                 [--chunk N] [--recompute none|selective|full] [--distributed-optimizer]\n"
      "Trains a model of the family on random samples and prints tokens/s, MFU and memory.\n";
  ParseCommandLineOrExit(argc, argv, cl);
  for (auto* f :
       {&FLAGS_layers, &FLAGS_hidden, &FLAGS_heads, &FLAGS_seq, &FLAGS_vocab, &FLAGS_micro,
        &FLAGS_global, &FLAGS_steps, &FLAGS_threads, &FLAGS_tp, &FLAGS_pp, &FLAGS_ep}) {
    if (absl::GetFlag(*f) <= 0) {
      UsageError(
          absl::StrCat("--", absl::GetFlagReflectionHandle(*f).Name(), " must be positive."));
    }
  }
  if (absl::GetFlag(FLAGS_steps) < 3) UsageError("--steps must be 3 or more (2 are warm-up).");
  if (absl::GetFlag(FLAGS_chunk) < 0) UsageError("--chunk must be 0 (off) or positive.");
  auto rt = Runtime::Init(&argc, &argv);
  if (!rt.ok()) {
    std::fprintf(stderr, "%s\n", std::string(rt.status().message()).c_str());
    return 1;
  }
  const int64_t threads = absl::GetFlag(FLAGS_threads), seq = absl::GetFlag(FLAGS_seq);
  const int64_t global = absl::GetFlag(FLAGS_global), tp = absl::GetFlag(FLAGS_tp);
  const int64_t pp = absl::GetFlag(FLAGS_pp), ep = absl::GetFlag(FLAGS_ep);
  const bool bf16 = absl::GetFlag(FLAGS_bf16);
  torch::set_num_threads(static_cast<int>(threads));
  SetLogLevel(LogLevel::kWarning);
  const char* dropout = absl::GetFlag(FLAGS_dropout) ? "0.1" : "0.0";
  const std::string activation = absl::GetFlag(FLAGS_activation);
  // The family's own settings (BERT's GELU and LayerNorm eps, say) from its base recipe.
  const std::string base = absl::GetFlag(FLAGS_base).empty()
                               ? absl::StrCat("recipes/", absl::GetFlag(FLAGS_recipe), "/base.yaml")
                               : absl::GetFlag(FLAGS_base);
  std::string yaml = absl::StrCat(
      "include: ", base, "\nrecipe: ", absl::GetFlag(FLAGS_recipe),
      "\nmodel: {num_layers: ", absl::GetFlag(FLAGS_layers),
      ", hidden_size: ", absl::GetFlag(FLAGS_hidden),
      ", num_attention_heads: ", absl::GetFlag(FLAGS_heads),
      ", ffn_hidden_size: ", absl::GetFlag(FLAGS_ffn), ", seq_length: ", seq,
      ", vocab_size: ", absl::GetFlag(FLAGS_vocab), ", hidden_dropout: ", dropout,
      ", attention_dropout: ", dropout,
      ", tie_embeddings: ", absl::GetFlag(FLAGS_untied) ? "false" : "true",
      activation.empty() ? "" : absl::StrCat(", activation: ", activation),
      absl::GetFlag(FLAGS_chunk) > 0
          ? absl::StrCat(", output_chunk_tokens: ", absl::GetFlag(FLAGS_chunk))
          : "",
      "}\n", "parallel: {tensor_parallel_size: ", tp, ", pipeline_parallel_size: ", pp,
      ", expert_parallel_size: ", ep,
      ", distributed_optimizer: ", absl::GetFlag(FLAGS_distributed_optimizer) ? "true" : "false",
      ", sequence_parallel: ", absl::GetFlag(FLAGS_sequence_parallel) ? "true" : "false", "}\n",
      "train: {micro_batch_size: ", absl::GetFlag(FLAGS_micro), ", global_batch_size: ", global,
      ", train_steps: ", absl::GetFlag(FLAGS_steps),
      ", eval_steps: 0, lr: 1.0e-4, device: ", absl::GetFlag(FLAGS_cuda) ? "cuda" : "cpu",
      ", precision: ", bf16 ? "bf16" : "fp32", ", recompute: ", absl::GetFlag(FLAGS_recompute),
      "}\n",
      "data: {paths: [], vocab_file: \"\"}\n"
      "logging: {interval: 100000}\n");
  auto loaded = LoadConfigFromString(yaml, "bench.yaml");
  absl::StatusOr<ResolvedRun> run =
      loaded.ok() ? ResolveRun(*loaded, (*rt)->world_size()) : loaded.status();
  if (!run.ok()) {
    std::fprintf(stderr, "%s\n", std::string(run.status().message()).c_str());
    return 2;
  }
  auto layout = ParallelLayout::Create((*rt)->world(), static_cast<int>(tp), static_cast<int>(pp),
                                       static_cast<int>(ep));
  auto device = ResolveTrainDevice(run->config, (*rt)->rank());
  if (!layout.ok() || !device.ok()) {
    std::fprintf(stderr, "%s\n",
                 std::string((layout.ok() ? device.status() : layout.status()).message()).c_str());
    return 2;
  }
  // The planner's estimate (recipes/plan.h) of what the peak below counts: gradients, AdamW
  // state and activations (the weights were allocated before the count starts).
  const MemoryEstimate plan = EstimateMemory(*run->family, run->config, run->sizes);
  const RunContext ctx{run->config, run->sizes, *layout, (*rt)->local_rank()};
  auto model =
      run->family->BuildModel(TpEnv{layout->tp, 1, run->config.parallel.sequence_parallel,
                                    layout->pp_rank, layout->ep_size > 1 ? layout->ep : nullptr},
                              run->config, run->sizes);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
    return 2;
  }
  int64_t local = 0, experts = 0;
  const std::map<std::string, TpParam> layouts = CollectTpParams(**model);
  for (const auto& p : (*model)->named_parameters()) {
    local += p.value().numel();
    if (layouts.at(p.key()).expert) experts += p.value().numel();
  }
  RecipeParts parts;
  parts.task = run->family->MakeTask(*model, ctx);
  parts.train = run->family->SyntheticData(ctx);
  const double flops_per_sample = parts.task->FlopsPerSample();
  // Positions a sample trains (T5: the encoder's and the decoder's).
  const int64_t tokens_per_sample = parts.task->TokensPerSample();
  const int64_t rows = absl::GetFlag(FLAGS_micro) * seq, h = absl::GetFlag(FLAGS_hidden);
  const double peak =
      MeasureMatmulGflops(*device, bf16 ? at::kBFloat16 : at::kFloat, 1.5,
                          {{rows, h, run->sizes.ffn_hidden_size / tp}, {rows, h, 3 * h / tp}});
  TrainOptions to;
  to.save_final = false;
  to.checkpoints = false;
  auto r = Train(run->config, run->sizes, *layout, std::move(parts), to);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  // Median over steps after the first two (warm-up).
  std::vector<double> steps(r->step_seconds.begin() + 2, r->step_seconds.end());
  std::sort(steps.begin(), steps.end());
  const double median = steps[steps.size() / 2];
  double comm = 0, total = 0;
  for (size_t i = 2; i < r->step_seconds.size(); ++i) {
    comm += r->comm_wait_seconds[i];
    total += r->step_seconds[i];
  }
  const double tokens = static_cast<double>(global * tokens_per_sample);
  const double flops = flops_per_sample * static_cast<double>(global);
  torch::Tensor peak_all = torch::full({1}, peak, torch::kDouble);
  (void)(*rt)->world()->AllReduce(peak_all, ReduceOp::kSum);
  torch::Tensor rss = torch::full({1}, PeakRssMb(), torch::kDouble);
  (void)(*rt)->world()->AllReduce(rss, ReduceOp::kMax);
  // The most tensor memory held at once during training (the caching CPU allocator's count of
  // its blocks >= 1 MiB, allocated after the model was built: gradients, AdamW state,
  // activations, logits), the largest over ranks.
  torch::Tensor live = torch::full(
      {1}, static_cast<double>(CachingCpuAllocatorStats().peak_live_bytes) / 1e6, torch::kDouble);
  (void)(*rt)->world()->AllReduce(live, ReduceOp::kMax);
  if ((*rt)->rank() == 0) {
    // The ceiling is the best matmul rate seen, the model's own included: MFU stays <= 100%.
    const double ceiling = std::max(peak_all.item<double>(), flops / median / 1e9);
    std::printf(
        "braid  %s layers %ld width %ld heads %ld seq %ld vocab %ld | world %d = TP %ld x DP %d x "
        "PP %ld, "
        "%ld thread(s)/rank | micro %ld global %ld | %s %s\n",
        run->family->name().c_str(), static_cast<long>(absl::GetFlag(FLAGS_layers)),
        static_cast<long>(absl::GetFlag(FLAGS_hidden)),
        static_cast<long>(absl::GetFlag(FLAGS_heads)), static_cast<long>(seq),
        static_cast<long>(absl::GetFlag(FLAGS_vocab)), (*rt)->world_size(), static_cast<long>(tp),
        layout->dp_size, static_cast<long>(pp), static_cast<long>(threads),
        static_cast<long>(absl::GetFlag(FLAGS_micro)), static_cast<long>(global),
        device->str().c_str(), bf16 ? "bf16 autocast" : "fp32");
    std::printf(
        "braid  step %.3f s (median of %zu) | %.0f tokens/s | %.1f GFLOP/s | matmul "
        "ceiling %.1f GFLOP/s | MFU %.1f%% | DP comm wait %.1f%% of step time\n",
        median, steps.size(), tokens / median, flops / median / 1e9, ceiling,
        100 * flops / median / 1e9 / ceiling, 100 * comm / std::max(total, 1e-9));
    std::printf(
        "braid  per rank: %ld parameters%s = %.1f MB weights + %.1f MB grads + %.1f MB "
        "AdamW state (fp32); peak RSS %.0f MB; peak live tensors in training %.0f MB (planner: "
        "%.0f MB = %.0f activations + %.0f grads and AdamW)\n",
        static_cast<long>(local),
        experts > 0 ? absl::StrCat(" (", experts, " of them experts', EP ", ep, ")").c_str() : "",
        local * 4 / 1e6, local * 4 / 1e6, local * 8 / 1e6, rss.item<double>(), live.item<double>(),
        (plan.activation_bytes + plan.state_bytes * 12.0 / 16.0) / 1e6, plan.activation_bytes / 1e6,
        plan.state_bytes * 12.0 / 16.0 / 1e6);
  }
  return 0;
}

}  // namespace
}  // namespace braid

int main(int argc, char** argv) { return braid::Main(argc, argv); }
