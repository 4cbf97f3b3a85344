// Helpers of the multi-rank model tests (tests/models/*parallel_test.cc): the serial reference's
// communicator and a model's gradients gathered to full tensors.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "framework/dist/layout.h"
#include "framework/nn/blocks.h"
#include "framework/parallel/layers.h"
#include "framework/parallel/mappings.h"
#include "framework/train/model_io.h"
#include "tests/lib/tensor_compare.h"
#include "tests/mpi_test_env.h"

namespace braid::testing {

// A communicator with only this rank: the serial reference inside a multi-rank test.
inline std::shared_ptr<Communicator> Solo() {
  auto c = g_runtime->world()->Split(g_runtime->rank(), 0, "solo");
  EXPECT_TRUE(c.ok());
  return *c;
}

// Every parameter's gradient, gathered over TP to the full tensor, by name.
inline std::map<std::string, torch::Tensor> FullGrads(torch::nn::Module& m, Communicator& tp) {
  std::map<std::string, TpParam> layouts = CollectTpParams(m);
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters()) {
    const TpParam& l = layouts[p.key()];
    const torch::Tensor& g = p.value().grad();
    if (const int64_t tail = l.replicated_tail; tail > 0 && tp.size() > 1) {
      // Every rank's copy of the replicated rows has the same (summed) gradient.
      torch::Tensor mine = g.narrow(l.axis, g.size(l.axis) - tail, tail).contiguous();
      std::vector<int64_t> shape = {tp.size()};
      for (int64_t d : mine.sizes()) shape.push_back(d);
      torch::Tensor all = torch::empty(shape, mine.options());
      EXPECT_TRUE(tp.AllGather(mine, all).ok());
      for (int r = 1; r < tp.size(); ++r)
        EXPECT_TRUE(all[r].equal(all[0])) << p.key() << ": rank " << r << "'s replicated rows";
    }
    out[p.key()] = GatherFull(g, l, tp);
  }
  return out;
}

// One run's logits, loss and gradients by name (the multi-rank model tests' result).
using RunResult = std::tuple<torch::Tensor, double, std::map<std::string, torch::Tensor>>;

// `got` equals `ref` within 1e-5 relative: logits, loss and every gradient.
inline void ExpectRunsEqual(const RunResult& got, const RunResult& ref, const std::string& what) {
  EXPECT_LT(RelDiff(std::get<0>(got), std::get<0>(ref)), 1e-5) << what;
  EXPECT_NEAR(std::get<1>(got), std::get<1>(ref), 1e-5 * std::abs(std::get<1>(ref))) << what;
  ASSERT_EQ(std::get<2>(got).size(), std::get<2>(ref).size()) << what;
  for (const auto& [name, g] : std::get<2>(ref)) {
    EXPECT_LT(RelDiff(std::get<2>(got).at(name), g), 1e-5) << what << ", grad of " << name;
  }
}

// One task run: the loss, the metrics and every gradient by name.
using TaskResult =
    std::tuple<double, std::map<std::string, double>, std::map<std::string, torch::Tensor>>;

// A task's chunked output layer and loss (model.output_chunk_tokens) against the logits whole, in
// fp64: `run(chunk)` -> TaskResult, chunk 0 the whole logits. For each of `chunks`: the loss and
// every gradient within 1e-6 relative, every metric within 1e-9 (accuracies: the arg-max of the
// same logits).
template <typename Run>
void ExpectChunkedEqualsWhole(const Run& run, const std::vector<int64_t>& chunks,
                              const std::string& what) {
  const TaskResult ref = run(0);
  for (int64_t chunk : chunks) {
    const TaskResult got = run(chunk);
    const std::string at = what + ", chunk " + std::to_string(chunk);
    EXPECT_NEAR(std::get<0>(got), std::get<0>(ref), 1e-6 * std::abs(std::get<0>(ref))) << at;
    ASSERT_EQ(std::get<1>(got).size(), std::get<1>(ref).size()) << at;
    for (const auto& [name, v] : std::get<1>(ref)) {
      EXPECT_NEAR(std::get<1>(got).at(name), v, 1e-9) << at << ", metric " << name;
    }
    ASSERT_EQ(std::get<2>(got).size(), std::get<2>(ref).size()) << at;
    for (const auto& [name, g] : std::get<2>(ref)) {
      EXPECT_LT(RelDiff(std::get<2>(got).at(name), g), 1e-6) << at << ", grad of " << name;
    }
  }
}

// Fills this TP rank's part of a vocabulary-split bias parameter `name` (initialised to zeros)
// with values that depend on the global index, so the same at every TP size.
inline void FillVocabBias(torch::nn::Module& m, const std::string& name, Communicator& tp) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.named_parameters()) {
    if (p.key() != name) continue;
    const int64_t n = p.value().size(0);
    p.value().copy_(torch::arange(tp.rank() * n, (tp.rank() + 1) * n).remainder(7) * 0.1);
  }
}

// An encoder-decoder model's decoder run as generation runs it (framework/nn/blocks.h, KvCache):
// the first `first` decoder ids at once, then one id at a time with the keys and values kept,
// against the whole decoder over all of them at once (eval mode, no gradients). Returns the
// largest relative difference of the decoder's outputs over every position.
template <class Model>
double IncrementalDecoderDifference(Model& model, const torch::Tensor& inputs,
                                    const torch::Tensor& decoder_ids, int64_t first, TpRng& rng) {
  torch::NoGradGuard no_grad;
  model.eval();
  const torch::Tensor padding = torch::zeros_like(inputs, torch::kBool);
  const torch::Tensor memory = model.Encode(inputs, padding, rng);
  const torch::Tensor whole = model.DecoderHidden(memory, padding, decoder_ids, rng);
  StackCache cache;
  std::vector<torch::Tensor> parts;
  parts.push_back(
      model.DecoderHidden(memory, padding, decoder_ids.narrow(1, 0, first), rng, &cache));
  for (int64_t k = first; k < decoder_ids.size(1); ++k) {
    parts.push_back(model.DecoderHidden(memory, padding, decoder_ids.narrow(1, k, 1), rng, &cache));
  }
  EXPECT_EQ(cache.front().self.length(), decoder_ids.size(1));
  return RelDiff(torch::cat(parts, 1), whole);
}

// IncrementalDecoderDifference for both variants of an encoder-decoder family (`config(false)`,
// `config(true)`, named by `names`), at TP 1 and at the world's TP (up to 4), in fp64: the start
// of 1 and of 3 ids, then one id at a time; the largest relative difference must stay under 1e-10.
template <class Model, class MakeConfig>
void ExpectIncrementalDecodingEqualsWhole(const MakeConfig& config,
                                          const std::pair<const char*, const char*>& names) {
  const torch::Tensor inputs =
      torch::tensor(std::vector<int64_t>{5, 17, 42, 7, 99, 3, 12, 200, 1}).unsqueeze(0);
  const torch::Tensor dec =
      torch::tensor(std::vector<int64_t>{0, 31, 8, 77, 150, 2, 9, 64, 11, 23}).unsqueeze(0);
  for (bool variant : {false, true}) {
    for (int tp : {1, std::min(4, g_runtime->world_size())}) {
      auto layout = ParallelLayout::Create(g_runtime->world(), tp);
      ASSERT_TRUE(layout.ok());
      auto model = std::make_shared<Model>(TpEnv{layout->tp, 5}, config(variant));
      model->to(torch::kDouble);
      TpRng rng(1, 0, layout->tp_rank);
      for (int64_t first : {1, 3}) {
        EXPECT_LT(IncrementalDecoderDifference(*model, inputs, dec, first, rng), 1e-10)
            << (variant ? names.second : names.first) << ", tp " << tp << ", first " << first;
      }
    }
  }
}

}  // namespace braid::testing
