// Data benchmark: prints figures, never fails on time.
//   bench_data CORPUS.jsonl GPT2_DIR WORDPIECE_VOCAB SPM_MODEL DATASET_PREFIX
// Tokenizer throughput (tokens/s and MB/s, one thread, a fresh tokenizer so the BPE word cache
// starts cold), and loader throughput (samples/s through the prefetching loader) for the GPT
// benchmark shape (sequence 256, micro batch 8).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "framework/core/flags.h"
#include "framework/core/json.h"
#include "framework/data/gpt_dataset.h"
#include "framework/data/loader.h"
#include "framework/data/tokenizer.h"

namespace {
double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

int main(int argc, char** argv) {
  braid::CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage =
      "usage: bench_data CORPUS.jsonl GPT2_DIR WORDPIECE_VOCAB SPM_MODEL DATASET_PREFIX\n"
      "Prints tokenizer and loader throughput (tools/bench/run_data_bench.sh runs it).\n";
  cl.min_args = cl.max_args = 5;
  const std::vector<std::string> args = braid::ParseCommandLineOrExit(argc, argv, cl);
  std::vector<std::string> texts;
  size_t bytes = 0;
  {
    std::ifstream in(args[0]);
    std::string line;
    while (std::getline(in, line)) {
      auto j = braid::ParseJson(line);
      if (j.ok() && j->Find("text")) {
        texts.push_back(j->Find("text")->text);
        bytes += texts.back().size();
      }
    }
  }
  std::string gpt2 = args[1];
  std::vector<braid::TokenizerOptions> kinds = {
      {"gpt2", gpt2 + "/vocab.json", gpt2 + "/merges.txt"},
      {"wordpiece", args[2]},
      {"sentencepiece", args[3]},
  };
  std::printf("tokenizers: %zu documents, %.2f MB of text, one thread\n", texts.size(),
              bytes / 1e6);
  std::printf("%-14s %-12s %-12s %-10s\n", "tokenizer", "tokens", "tokens/s", "MB/s");
  for (const auto& o : kinds) {
    auto tok = braid::MakeTokenizer(o);
    if (!tok.ok()) {
      std::printf("%-14s %s\n", o.type.c_str(), std::string(tok.status().message()).c_str());
      continue;
    }
    double start = Now();
    int64_t n = 0;
    for (const std::string& t : texts) n += static_cast<int64_t>((*tok)->Encode(t).size());
    double secs = Now() - start;
    std::printf("%-14s %-12ld %-12.0f %-10.2f\n", o.type.c_str(), static_cast<long>(n), n / secs,
                bytes / secs / 1e6);
  }

  auto data = braid::IndexedDataset::Open(args[4]);
  if (!data.ok()) {
    std::printf("loader: %s\n", std::string(data.status().message()).c_str());
    return 0;
  }
  const int64_t seq = 256, micro = 8, samples = 20000;
  braid::GptIndexSpec spec{{0, (*data)->num_documents()}, seq, samples, 1, "bench", ""};
  double t0 = Now();
  auto ds = braid::GptDataset::Open(*data, spec, true);
  double index_secs = Now() - t0;
  if (!ds.ok()) {
    std::printf("loader: %s\n", std::string(ds.status().message()).c_str());
    return 0;
  }
  std::shared_ptr<const braid::SampleSource> src = std::move(*ds);
  braid::Loader loader(src, *braid::DistributedBatchSampler::Create(micro, micro, 0, 1, 0), 4);
  double start = Now();
  int64_t batches = samples / micro;
  for (int64_t b = 0; b < batches; ++b) loader.Next();
  double secs = Now() - start;
  std::printf(
      "\nloader: GPT samples of %ld+1 tokens, micro batch %ld, %ld samples, %d epochs "
      "(index built or mapped in %.3f s)\n",
      static_cast<long>(seq), static_cast<long>(micro), static_cast<long>(samples),
      static_cast<int>(static_cast<const braid::GptDataset&>(*src).epochs()), index_secs);
  std::printf("loader: %.0f samples/s = %.2fM tokens/s (a consumer that never waits)\n",
              samples / secs, samples * (seq + 1) / secs / 1e6);
  return 0;
}
