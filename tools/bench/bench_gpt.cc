// GPT (or, with --bert 1, BERT) training benchmark: prints figures, never fails on time. Runs the
// real trainer (Train) on synthetic tokens and reports tokens/s (median step after warm-up), MFU
// against the matmul rate measured in the same process, the share of step time waiting for DP
// communication, and memory per rank.
//   bench_gpt [--layers 4 --hidden 256 --heads 4 --seq 256 --vocab 8192 --micro 8 --global 8
//              --steps 12 --threads 2 --tp 1 --cuda 0 --bf16 0 --dropout 0]
//   DP = ranks / TP; run under mpirun for DP/TP. --cuda 1 trains on the GPU (train.device: cuda),
//   --bf16 1 in bf16 autocast (train.precision: bf16); MFU is then against the measured bf16
//   matmul rate of the device. --dropout 1 uses dropout 0.1 (hidden and attention).
#include <algorithm>
#include <cstdio>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "framework/core/config.h"
#include "framework/core/log.h"
#include "framework/core/system.h"
#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/models/bert.h"
#include "framework/models/gpt.h"
#include "framework/train/device.h"
#include "framework/train/trainer.h"
#include "recipes/bert/bert_task.h"
#include "recipes/gpt/gpt_task.h"

namespace braid {
namespace {

class Synthetic : public SampleSource {
 public:
  Synthetic(int64_t len, int64_t vocab) : len_(len), vocab_(vocab) {}
  int64_t size() const override { return 1 << 30; }
  int64_t sample_length() const override { return len_; }
  void Get(int64_t i, int64_t* out) const override {
    uint64_t h = 0x9E3779B97F4A7C15ULL * (i + 1);
    for (int64_t k = 0; k < len_; ++k) {
      h ^= h >> 29;
      h *= 0xBF58476D1CE4E5B9ULL;
      out[k] = static_cast<int64_t>((h >> 33) % vocab_);
    }
  }

 private:
  int64_t len_, vocab_;
};

// BERT rows: random tokens, two segments, no padding, 15% of positions predicted.
class SyntheticBert : public SampleSource {
 public:
  SyntheticBert(int64_t seq, int64_t vocab) : seq_(seq), vocab_(vocab) {}
  int64_t size() const override { return 1 << 30; }
  int64_t sample_length() const override { return 4 * seq_ + 1; }
  void Get(int64_t i, int64_t* out) const override {
    uint64_t h = 0x9E3779B97F4A7C15ULL * (i + 1);
    auto next = [&] {
      h ^= h >> 29;
      h *= 0xBF58476D1CE4E5B9ULL;
      return h >> 33;
    };
    for (int64_t k = 0; k < seq_; ++k) {
      out[k] = static_cast<int64_t>(next() % vocab_);
      out[seq_ + k] = k >= seq_ / 2;
      out[2 * seq_ + k] = 0;
      out[3 * seq_ + k] = next() % 100 < 15 ? static_cast<int64_t>(next() % vocab_) : -100;
    }
    out[4 * seq_] = static_cast<int64_t>(next() % 2);
  }

 private:
  int64_t seq_, vocab_;
};

int Main(int argc, char** argv) {
  std::map<std::string, int64_t> o = {
      {"layers", 4}, {"hidden", 256}, {"heads", 4},  {"seq", 256},   {"vocab", 8192},
      {"micro", 8},  {"global", 8},   {"steps", 12}, {"threads", 2}, {"tp", 1},
      {"bert", 0},   {"cuda", 0},     {"bf16", 0},   {"dropout", 0}};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = std::string(argv[i]).substr(2);
    if (!o.count(k) || !absl::SimpleAtoi(argv[i + 1], &o[k])) {
      std::fprintf(stderr, "bench_gpt: bad argument %s\n", argv[i]);
      return 2;
    }
  }
  auto rt = Runtime::Init(&argc, &argv);
  if (!rt.ok()) return 2;
  torch::set_num_threads(static_cast<int>(o["threads"]));
  SetLogLevel(LogLevel::kWarning);
  auto config = LoadConfigFromString(
      absl::StrCat("recipe: gpt\nmodel: {num_layers: ", o["layers"], ", hidden_size: ", o["hidden"],
                   ", num_attention_heads: ", o["heads"], ", seq_length: ", o["seq"],
                   ", hidden_dropout: ", o["dropout"] ? "0.1" : "0.0",
                   ", attention_dropout: ", o["dropout"] ? "0.1" : "0.0",
                   "}\n"
                   "parallel: {tensor_parallel_size: ",
                   o["tp"],
                   "}\n"
                   "train: {micro_batch_size: ",
                   o["micro"], ", global_batch_size: ", o["global"], ", train_steps: ", o["steps"],
                   ", eval_steps: 0, lr: 1.0e-4, device: ", o["cuda"] ? "cuda" : "cpu",
                   ", precision: ", o["bf16"] ? "bf16" : "fp32",
                   "}\n"
                   "logging: {interval: 100000}\n"),
      "bench.yaml");
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  auto sizes = DeriveSizes(*config, (*rt)->world_size(), o["vocab"]);
  if (!sizes.ok()) {
    std::fprintf(stderr, "%s\n", std::string(sizes.status().message()).c_str());
    return 2;
  }
  auto layout = ParallelLayout::Create((*rt)->world(), static_cast<int>(o["tp"]));
  GptConfig g;
  g.layers = o["layers"];
  g.max_positions = o["seq"];
  g.vocab_size = o["vocab"];
  g.padded_vocab = sizes->padded_vocab_size;
  g.block.hidden = o["hidden"];
  g.block.heads = o["heads"];
  g.block.ffn = 4 * o["hidden"];
  RecipeParts parts;
  std::shared_ptr<torch::nn::Module> module;
  double flops_per_token;
  if (o["bert"]) {
    BertConfig b;
    b.layers = g.layers;
    b.max_positions = o["seq"];
    b.vocab_size = g.vocab_size;
    b.padded_vocab = g.padded_vocab;
    b.block = g.block;
    b.block.activation = "gelu";
    b.block.eps = 1e-12;
    auto bert = std::make_shared<BertModel>(TpEnv{layout->tp, 1}, b);
    flops_per_token = bert->FlopsPerToken(o["seq"]);
    module = bert;
    parts.task = std::make_unique<BertTask>(bert, o["seq"], layout->tp);
    parts.train = std::make_shared<SyntheticBert>(o["seq"], o["vocab"]);
  } else {
    auto model = std::make_shared<GptModel>(TpEnv{layout->tp, 1}, g);
    flops_per_token = model->FlopsPerToken(o["seq"]);
    module = model;
    parts.task = std::make_unique<GptTask>(model, o["seq"]);
    parts.train = std::make_shared<Synthetic>(o["seq"] + 1, o["vocab"]);
  }
  int64_t local = 0;
  for (const auto& p : module->parameters()) local += p.numel();
  auto device = ResolveTrainDevice(*config, (*rt)->rank());
  if (!device.ok()) {
    std::fprintf(stderr, "%s\n", std::string(device.status().message()).c_str());
    return 2;
  }
  double peak = MeasureMatmulGflops(*device, o["bf16"] ? at::kBFloat16 : at::kFloat, 1.0);
  TrainOptions to;
  to.save_final = false;
  to.checkpoints = false;
  auto r = Train(*config, *sizes, *layout, std::move(parts), to);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  // Median over steps after the first two (warm-up).
  std::vector<double> steps(
      r->step_seconds.begin() + std::min<size_t>(2, r->step_seconds.size() - 1),
      r->step_seconds.end());
  std::sort(steps.begin(), steps.end());
  double median = steps[steps.size() / 2];
  double comm = 0, total = 0;
  for (size_t i = 2; i < r->step_seconds.size(); ++i) {
    comm += r->comm_wait_seconds[i];
    total += r->step_seconds[i];
  }
  double tokens = static_cast<double>(o["global"] * o["seq"]);
  double flops = flops_per_token * tokens;
  torch::Tensor peak_all = torch::full({1}, peak, torch::kDouble);
  (void)(*rt)->world()->AllReduce(peak_all, ReduceOp::kSum);
  torch::Tensor rss = torch::full({1}, PeakRssMb(), torch::kDouble);
  (void)(*rt)->world()->AllReduce(rss, ReduceOp::kMax);
  if ((*rt)->rank() == 0) {
    std::printf(
        "braid  %s layers %ld width %ld heads %ld seq %ld vocab %ld | world %d = TP %ld x DP %d, "
        "%ld thread(s)/rank | micro %ld global %ld | %s %s\n",
        o["bert"] ? "BERT" : "GPT", (long)o["layers"], (long)o["hidden"], (long)o["heads"],
        (long)o["seq"], (long)o["vocab"], (*rt)->world_size(), (long)o["tp"], layout->dp_size,
        (long)o["threads"], (long)o["micro"], (long)o["global"], device->str().c_str(),
        o["bf16"] ? "bf16 autocast" : "fp32");
    std::printf(
        "braid  step %.3f s (median of %zu) | %.0f tokens/s | %.1f GFLOP/s | matmul "
        "ceiling %.1f GFLOP/s | MFU %.1f%% | DP comm wait %.1f%% of step time\n",
        median, steps.size(), tokens / median, flops / median / 1e9, peak_all.item<double>(),
        100 * flops / median / 1e9 / peak_all.item<double>(), 100 * comm / std::max(total, 1e-9));
    std::printf(
        "braid  per rank: %ld parameters = %.1f MB weights + %.1f MB grads + %.1f MB "
        "AdamW state (fp32); peak RSS %.0f MB\n",
        (long)local, local * 4 / 1e6, local * 4 / 1e6, local * 8 / 1e6, rss.item<double>());
  }
  return 0;
}

}  // namespace
}  // namespace braid

int main(int argc, char** argv) { return braid::Main(argc, argv); }
