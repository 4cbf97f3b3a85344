// The GPT tensor-parallel check shared by parallel_test (GPT-2) and llama_test (the decoder
// options): logits, loss and every parameter gradient (gathered) at each TP size equal TP = 1's
// within 1e-5 relative, on 3 random samples of 20 tokens (or `given` [b, 21]). With
// `sequence_parallel` the model at
// each TP size runs with sequence parallelism and is held both to TP = 1 and to the same TP size
// without it.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"

#include "framework/dist/layout.h"
#include "framework/models/gpt.h"
#include "recipes/gpt/gpt_task.h"
#include "tests/lib/tensor_compare.h"
#include "tests/lib/tp_test.h"

namespace braid::testing {

// Checks every size in `tps` that the world, the heads and the key/value groups allow (1 is the
// reference); returns how many were checked.
inline int ExpectGptTpEqualsSerial(const GptConfig& c, const std::vector<int>& tps,
                                   const std::string& what, bool sequence_parallel = false,
                                   const torch::Tensor& given = {}) {
  torch::manual_seed(11);
  torch::Tensor samples = torch::randint(0, 250, {3, 21}, torch::kLong);
  if (given.defined()) samples = given;
  auto run = [&](std::shared_ptr<Communicator> tp, bool sp = false) {
    auto model = std::make_shared<GptModel>(TpEnv{tp, 99, sp}, c);
    TpRng rng(1, 0, tp->rank());
    torch::Tensor logits = model->FullLogits(samples.narrow(1, 0, 20), rng);
    GptBatch b = GptBatch::FromRows(samples);
    torch::Tensor loss = model->Loss(b.tokens, b.labels, rng);
    loss.backward();
    return std::make_tuple(logits.detach(), loss.item<double>(), FullGrads(*model, *tp));
  };
  const RunResult serial = run(Solo());
  int checked = 0;
  for (int tp : tps) {
    if (tp == 1 || g_runtime->world_size() % tp != 0 || c.block.heads % tp != 0 ||
        (c.block.kv_groups > 1 && c.block.kv_groups % tp != 0)) {
      continue;
    }
    auto layout = ParallelLayout::Create(g_runtime->world(), tp);
    EXPECT_TRUE(layout.ok());
    if (!layout.ok()) return checked;
    const RunResult got = run(layout->tp, sequence_parallel);
    const std::string where = absl::StrCat(what, ", tp ", tp, " against ");
    ExpectRunsEqual(got, serial, where + "tp 1");
    if (sequence_parallel)
      ExpectRunsEqual(got, run(layout->tp, false), where + "no sequence parallelism");
    ++checked;
  }
  return checked;
}

}  // namespace braid::testing
