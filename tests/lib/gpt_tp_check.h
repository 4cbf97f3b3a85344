// The GPT tensor-parallel check shared by parallel_test (GPT-2) and llama_test (the decoder
// options): logits, loss and every parameter gradient (gathered) at each TP size equal TP = 1's
// within 1e-5 relative, on 3 random samples of 20 tokens.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <tuple>
#include <vector>

#include "framework/dist/layout.h"
#include "framework/models/gpt.h"
#include "recipes/gpt/gpt_task.h"
#include "tests/lib/tensor_compare.h"
#include "tests/lib/tp_test.h"

namespace braid::testing {

// Checks every size in `tps` that the world, the heads and the key/value groups allow (1 is the
// reference); returns how many were checked.
inline int ExpectGptTpEqualsSerial(const GptConfig& c, const std::vector<int>& tps,
                                   const std::string& what) {
  torch::manual_seed(11);
  torch::Tensor samples = torch::randint(0, 250, {3, 21}, torch::kLong);
  auto run = [&](std::shared_ptr<Communicator> tp) {
    auto model = std::make_shared<GptModel>(TpEnv{tp, 99}, c);
    TpRng rng(1, 0, tp->rank());
    torch::Tensor logits = model->FullLogits(samples.narrow(1, 0, 20), rng);
    GptBatch b = GptBatch::FromRows(samples);
    torch::Tensor loss = model->Loss(b.tokens, b.labels, rng);
    loss.backward();
    return std::make_tuple(logits.detach(), loss.item<double>(), FullGrads(*model, *tp));
  };
  auto [ref_logits, ref_loss, ref_grads] = run(Solo());
  int checked = 0;
  for (int tp : tps) {
    if (tp == 1 || g_runtime->world_size() % tp != 0 || c.block.heads % tp != 0 ||
        c.block.kv_groups % tp != 0) {
      continue;
    }
    auto layout = ParallelLayout::Create(g_runtime->world(), tp);
    EXPECT_TRUE(layout.ok());
    if (!layout.ok()) return checked;
    auto [logits, loss, grads] = run(layout->tp);
    EXPECT_LT(RelDiff(logits, ref_logits), 1e-5) << what << ", tp " << tp;
    EXPECT_NEAR(loss, ref_loss, 1e-5 * std::abs(ref_loss)) << what << ", tp " << tp;
    EXPECT_EQ(grads.size(), ref_grads.size());
    for (const auto& [name, g] : ref_grads) {
      EXPECT_LT(RelDiff(grads[name], g), 1e-5) << what << ", tp " << tp << ", grad of " << name;
    }
    ++checked;
  }
  return checked;
}

}  // namespace braid::testing
