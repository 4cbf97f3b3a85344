// Checkpoint benchmark: prints figures, never fails on time. Saves and loads a gpt2-small
// (124M parameters) checkpoint with its AdamW state (1.5 GB) through the real code, reports MB/s
// and how long the save stalls training (the trainer waits for the save; nothing overlaps).
//   bench_checkpoint DIR   (run under mpirun for several ranks; TP = ranks)
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "framework/core/config.h"
#include "framework/core/flags.h"
#include "framework/core/log.h"
#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/models/gpt.h"
#include "framework/train/checkpoint.h"

int main(int argc, char** argv) {
  using namespace braid;
  CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage =
      "usage: bench_checkpoint DIR   (under mpirun for several ranks; TP = ranks)\n"
      "Saves and loads a gpt2-small checkpoint with its AdamW state and prints the times.\n";
  cl.min_args = cl.max_args = 1;
  const std::string dir = ParseCommandLineOrExit(argc, argv, cl)[0];
  auto rt = Runtime::Init(&argc, &argv);
  if (!rt.ok()) return 2;
  SetLogLevel(LogLevel::kWarning);
  const int tp = (*rt)->world_size();
  auto config = LoadConfigFromString(
      "recipe: gpt\nmodel: {num_layers: 12, hidden_size: 768, num_attention_heads: 12, "
      "seq_length: 1024, vocab_size: 50257}\ncheckpoint: {keep_last: 1}\n",
      "bench.yaml", {"parallel.tensor_parallel_size=" + std::to_string(tp)});
  auto layout = ParallelLayout::Create((*rt)->world(), tp);
  GptConfig g;
  g.layers = 12;
  g.max_positions = 1024;
  g.vocab_size = 50257;
  g.padded_vocab = PaddedVocabSize(50257, 128, tp);
  g.block.hidden = 768;
  g.block.heads = 12;
  g.block.ffn = 3072;
  auto model = std::make_shared<GptModel>(TpEnv{layout->tp, 1}, g);
  std::vector<torch::Tensor> params;
  std::vector<bool> decay;
  for (auto& p : model->parameters()) {
    params.push_back(p);
    decay.push_back(p.dim() >= 2);
  }
  AdamW opt(params, decay, {});
  TpRng rng(1, 0, layout->tp_rank);
  CheckpointTarget target{&*config, &*layout, model.get(), &opt, &rng, 50257};
  auto now = [] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  double bytes = 0;
  for (auto& p : params) bytes += 3.0 * p.numel() * 4;  // weights + two moments
  torch::Tensor total = torch::full({1}, bytes, torch::kDouble);
  (void)(*rt)->world()->AllReduce(total, ReduceOp::kSum);
  double t0 = now();
  absl::Status s = SaveCheckpoint(dir, target, TrainState{1, 0, 0}, 1);
  double save = now() - t0;
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  t0 = now();
  auto loaded = LoadCheckpoint(dir + "/step_00000001", target);
  double load = now() - t0;
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
    return 1;
  }
  if ((*rt)->rank() == 0) {
    double mb = total.item<double>() / 1e6;
    std::printf("gpt2-small + AdamW state at TP %d: %.0f MB\n", tp, mb);
    std::printf(
        "save: %.2f s = %.0f MB/s (training stalls for the whole save: %.2f s; includes "
        "fsync and CRC-32C of every file)\n",
        save, mb / save, save);
    std::printf("load: %.2f s = %.0f MB/s (validates sizes and CRCs, reassembles, reslices)\n",
                load, mb / load);
  }
  return 0;
}
