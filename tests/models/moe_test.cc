// Mixture of experts (framework/nn/moe.h), under mpirun with 2 and 4 ranks:
//  - the router: with random logits each expert gets k/E of 100k tokens (within 2%); Mixtral's
//    weights are the softmax over the top-k logits, pre-softmax's the top-k probabilities; the
//    load-balancing and z-losses equal their closed forms for a hand-made assignment; capacity
//    keeps exactly the first tokens of each expert in token order;
//  - MoeMlp in fp64 against a token-by-token reference written here (no sorting): the output and
//    every gradient, the auxiliary losses' included, within 1e-12, dropless and with capacity,
//    with shared experts and their gate;
//  - a GPT with MoE layers at TP 2 and 4, with and without sequence parallelism: logits, loss and
//    every gradient equal TP 1's;
//  - expert parallelism: a GPT with MoE layers at EP 2 and 4, two EP blocks at DP 4, TP 2 x EP 2
//    (with and without sequence parallelism), capacity 1, in fp64: on every rank the loss, the
//    logits and the routing metrics equal those of the whole model (EP 1) on the same rank's batch,
//    the dense parameters' gradients equal its gradients, and each expert's gradient equals the
//    sum over the EP group of the whole models' gradients of that expert;
//  - the parameter count (Family::ParameterCount) equals the built model's, and Mixtral-8x7B's is
//    the published 46,702,792,704; the FLOPs count the active experts only.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "braid/build_config.h"
#include "framework/core/config.h"
#include "framework/models/gpt.h"
#include "framework/nn/moe.h"
#include "recipes/registry.h"
#include "tests/lib/gpt_tp_check.h"
#include "tests/lib/recipe_count.h"
#include "tests/lib/tensor_compare.h"
#include "tests/lib/tiny_gpt.h"
#include "tests/lib/tp_test.h"
#include "tests/mpi_test_env.h"

namespace braid {
namespace {
using testing::Solo;

MoeBlock Block(int64_t experts, int64_t k) {
  MoeBlock m;
  m.experts = experts;
  m.top_k = k;
  return m;
}

TEST(Moe, RandomRouterSharesTokensEvenly) {
  torch::manual_seed(5);
  const int64_t tokens = 100000, e = 8, k = 2;
  const RouterOutput r = Route(torch::randn({tokens, e}), Block(e, k));
  const torch::Tensor share =
      torch::bincount(r.top_experts.reshape({-1}), {}, e).to(torch::kDouble) / tokens;
  for (int64_t i = 0; i < e; ++i) {
    EXPECT_NEAR(share[i].item<double>(), 0.25, 0.02 * 0.25) << "expert " << i;  // k/E
  }
  // Each token's k experts are distinct.
  EXPECT_TRUE(r.top_experts.select(1, 0).ne(r.top_experts.select(1, 1)).all().item<bool>());
}

TEST(Moe, RouterWeights) {
  torch::manual_seed(6);
  const torch::Tensor logits = torch::randn({50, 6}, torch::kDouble);
  const RouterOutput mixtral = Route(logits, Block(6, 2));
  const torch::Tensor probs = torch::softmax(logits, -1);
  const torch::Tensor top = std::get<0>(probs.topk(2, -1));
  // The softmax over the top-k logits is the top-k probabilities renormalised.
  EXPECT_LT((mixtral.weights - top / top.sum(-1, true)).abs().max().item<double>(), 1e-15);
  EXPECT_LT((mixtral.weights.sum(-1) - 1).abs().max().item<double>(), 1e-15);
  MoeBlock pre = Block(6, 2);
  pre.pre_softmax = true;
  const RouterOutput raw = Route(logits, pre);
  EXPECT_TRUE(raw.weights.equal(top));
  EXPECT_TRUE(raw.top_experts.equal(mixtral.top_experts));
}

TEST(Moe, LossesEqualTheirClosedForms) {
  // Four tokens' probabilities over four experts, logits log p + 2: top-1 experts 0, 1, 0, 3.
  const torch::Tensor p = torch::tensor(
      {{0.7, 0.1, 0.1, 0.1}, {0.1, 0.7, 0.1, 0.1}, {0.7, 0.1, 0.1, 0.1}, {0.1, 0.1, 0.1, 0.7}},
      torch::kDouble);
  const RouterOutput r = Route(p.log() + 2.0, Block(4, 1));
  // Counts 2, 1, 0, 1 of 4 tokens; mean probabilities 0.4, 0.25, 0.1, 0.25:
  // E/k x sum_e P_e c_e / T = 4 x (0.4 x 0.5 + 0.25 x 0.25 + 0 + 0.25 x 0.25) = 1.3.
  EXPECT_NEAR(r.aux.item<double>(), 1.3, 1e-14);
  EXPECT_NEAR(r.z.item<double>(), 4.0, 1e-13);  // logsumexp = 2 for every token
  // A balanced assignment with uniform probabilities gives 1 whatever k is.
  const RouterOutput even = Route(torch::zeros({8, 4}, torch::kDouble), Block(4, 2));
  EXPECT_NEAR(even.aux.item<double>(), 1.0, 1e-14) << even.top_experts;
}

TEST(Moe, CapacityKeepsTheFirstTokensOfEachExpert) {
  // Top-1 experts 0 0 1 0 0 1 over 2 experts, factor 1: capacity ceil(6 / 2) = 3, so expert 0
  // keeps tokens 0, 1, 3 and drops token 4.
  torch::Tensor logits = torch::zeros({6, 2}, torch::kDouble);
  const std::vector<int64_t> pick = {0, 0, 1, 0, 0, 1};
  for (int64_t t = 0; t < 6; ++t) logits[t][pick[t]] = 1.0;
  MoeBlock m = Block(2, 1);
  m.capacity_factor = 1.0;
  EXPECT_EQ(MoeCapacity(m, 6), 3);
  const RouterOutput r = Route(logits, m);
  const std::vector<bool> kept = {true, true, true, true, false, true};
  for (int64_t t = 0; t < 6; ++t) EXPECT_EQ(r.kept[t][0].item<bool>(), kept[t]) << "token " << t;
  // Top-2 of 3 experts with factor 0.5: capacity ceil(5 x 2 / 3 x 0.5) = 2 per expert, counted
  // in token order over each token's choices.
  m = Block(3, 2);
  m.capacity_factor = 0.5;
  EXPECT_EQ(MoeCapacity(m, 5), 2);
  torch::manual_seed(7);
  const RouterOutput r2 = Route(torch::randn({5, 3}, torch::kDouble), m);
  std::vector<int64_t> seen(3, 0);
  for (int64_t t = 0; t < 5; ++t) {
    for (int64_t j = 0; j < 2; ++j) {
      const int64_t e = r2.top_experts[t][j].item<int64_t>();
      EXPECT_EQ(r2.kept[t][j].item<bool>(), seen[e] < 2) << "token " << t << " choice " << j;
      ++seen[e];
    }
  }
}

// Token by token: each token's top-k experts run on it alone, weighted; plus the shared experts.
// The parameters are read from the module by name. Returns the output and the weighted auxiliary
// losses as Route computes them from the logits (checked against their closed forms above).
std::pair<torch::Tensor, torch::Tensor> PerTokenReference(MoeMlp& moe, const BlockConfig& c,
                                                          const torch::Tensor& x) {
  std::map<std::string, torch::Tensor> p;
  for (const auto& kv : moe.named_parameters()) p[kv.key()] = kv.value();
  const torch::Tensor t = x.reshape({-1, c.hidden});
  const torch::Tensor logits = torch::matmul(t, p["router.weight"].t());
  const RouterOutput r = Route(logits, c.moe);
  std::vector<torch::Tensor> rows;
  for (int64_t n = 0; n < t.size(0); ++n) {
    torch::Tensor y = torch::zeros({c.hidden}, t.options());
    for (int64_t j = 0; j < c.moe.top_k; ++j) {
      if (!r.kept[n][j].item<bool>()) continue;
      const std::string e = "experts." + std::to_string(r.top_experts[n][j].item<int64_t>());
      const torch::Tensor h = torch::matmul(p[e + ".fc1.weight"], t[n]);
      const auto gu = h.chunk(2, 0);
      y = y + r.weights[n][j] * torch::matmul(p[e + ".fc2.weight"], torch::silu(gu[0]) * gu[1]);
    }
    if (c.moe.shared > 0) {
      const torch::Tensor h = torch::matmul(p["shared.fc1.weight"], t[n]);
      const auto gu = h.chunk(2, 0);
      torch::Tensor s = torch::matmul(p["shared.fc2.weight"], torch::silu(gu[0]) * gu[1]);
      if (c.moe.shared_gate) s = torch::sigmoid(torch::dot(p["shared_gate.weight"][0], t[n])) * s;
      y = y + s;
    }
    rows.push_back(y);
  }
  return {torch::stack(rows).reshape(x.sizes()), c.moe.aux_coeff * r.aux + c.moe.z_coeff * r.z};
}

struct MoeCase {
  const char* name;
  double capacity;
  int64_t shared;
  bool gate;
  bool pre_softmax;
};

TEST(Moe, MlpEqualsPerTokenReference) {
  for (const MoeCase& k :
       {MoeCase{"dropless", 0, 0, false, false}, MoeCase{"capacity 0.75", 0.75, 0, false, false},
        MoeCase{"shared expert with gate", 0, 2, true, false},
        MoeCase{"pre-softmax, shared without gate", 0, 1, false, true}}) {
    SCOPED_TRACE(k.name);
    BlockConfig c;
    c.hidden = 16;
    c.activation = Activation::kSwiglu;
    c.bias = false;
    c.moe = Block(4, 2);
    c.moe.ffn = 12;
    c.moe.capacity_factor = k.capacity;
    c.moe.shared = k.shared;
    c.moe.shared_gate = k.gate;
    c.moe.pre_softmax = k.pre_softmax;
    c.moe.aux_coeff = 0.3;
    c.moe.z_coeff = 0.05;
    torch::manual_seed(9);
    const torch::Tensor x = torch::randn({2, 7, 16}, torch::kDouble);
    const torch::Tensor probe = torch::randn({2, 7, 16}, torch::kDouble);
    auto run = [&](bool reference) {
      auto moe = std::make_shared<MoeMlp>(TpEnv{Solo(), 3}, "h.0.mlp", c);
      moe->to(torch::kDouble);
      torch::Tensor xi = x.clone().requires_grad_(true);
      torch::Tensor loss;
      if (reference) {  // the objective the attached losses stand for
        const auto [out, aux] = PerTokenReference(*moe, c, xi);
        loss = (out * probe).sum() + aux;
      } else {
        loss = (moe->forward(xi) * probe).sum();  // the losses ride on the output's backward
      }
      loss.backward();
      std::map<std::string, torch::Tensor> grads = {{"input", xi.grad()}};
      for (const auto& kv : moe->named_parameters()) grads[kv.key()] = kv.value().grad();
      return std::make_pair(loss.item<double>(), grads);
    };
    const auto got = run(false), want = run(true);
    ASSERT_EQ(got.second.size(), want.second.size());
    for (const auto& [name, g] : want.second) {
      ASSERT_TRUE(got.second.at(name).defined()) << name;
      EXPECT_LT((got.second.at(name) - g).abs().max().item<double>(),
                1e-12 * std::max(1.0, g.abs().max().item<double>()))
          << name;
    }
  }
}

GptConfig TinyMixtral() {
  GptConfig c = testing::TinyLlamaConfig(4, 2);
  c.block.moe = Block(4, 2);
  c.block.moe.ffn = 40;
  c.block.moe.aux_coeff = 0.01;
  c.block.moe.z_coeff = 0.001;
  c.block.moe.total_layers = 2;
  return c;
}

TEST(Moe, TpEqualsSerial) {
  GptConfig c = TinyMixtral();
  EXPECT_GT(testing::ExpectGptTpEqualsSerial(c, {2, 4}, "mixtral"), 0);
  EXPECT_GT(testing::ExpectGptTpEqualsSerial(c, {2, 4}, "mixtral, SP", true), 0);
  c.block.moe.shared = 1;
  c.block.moe.shared_gate = true;
  c.block.moe.layers = {true, false};  // the second layer dense
  c.block.moe.total_layers = 1;
  EXPECT_GT(testing::ExpectGptTpEqualsSerial(c, {2, 4}, "shared expert, one MoE layer", true), 0);
  c = TinyMixtral();
  c.block.moe.capacity_factor = 1.0;
  c.block.moe.pre_softmax = true;
  EXPECT_GT(testing::ExpectGptTpEqualsSerial(c, {2, 4}, "capacity 1, pre-softmax", true), 0);
}

// One rank's EP run against the whole model (EP 1, this rank alone) on the same batch.
void ExpectEpEqualsSerial(const GptConfig& c, int tp, int ep, bool sp, const std::string& what) {
  const int world = testing::g_runtime->world_size();
  if (world % (tp * ep) != 0) return;
  SCOPED_TRACE(what);
  auto layout = ParallelLayout::Create(testing::g_runtime->world(), tp, 1, ep);
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  torch::manual_seed(40 + layout->dp_rank);  // each DP replica its own batch
  const torch::Tensor samples = torch::randint(0, 250, {3, 21}, torch::kLong);
  auto run = [&](std::shared_ptr<Communicator> tpc, std::shared_ptr<Communicator> epc, bool seq) {
    auto model = std::make_shared<GptModel>(TpEnv{tpc, 99, seq, -1, epc}, c);
    model->to(torch::kDouble);
    TpRng rng(1, 0, tpc->rank());
    const torch::Tensor logits = model->FullLogits(samples.narrow(1, 0, 20), rng);
    GptBatch b = GptBatch::FromRows(samples);
    torch::Tensor loss = model->Loss(b.tokens, b.labels, rng);
    std::map<std::string, double> metrics;
    AddMoeMetrics(*model, &metrics);
    loss.backward();
    return std::make_tuple(logits.detach(), loss.item<double>(), metrics,
                           testing::FullGrads(*model, *tpc));
  };
  const auto [logits, loss, metrics, grads] = run(layout->tp, layout->ep, sp);
  const auto [ref_logits, ref_loss, ref_metrics, ref_grads] = run(Solo(), nullptr, false);
  EXPECT_NEAR(loss, ref_loss, 1e-12 * std::abs(ref_loss));
  EXPECT_LT(testing::RelDiff(logits, ref_logits), 1e-10);
  ASSERT_EQ(metrics.size(), ref_metrics.size());
  for (const auto& [k, v] : ref_metrics) EXPECT_NEAR(metrics.at(k), v, 1e-10) << k;
  int experts = 0, dense = 0;
  for (const auto& [name, g] : ref_grads) {
    if (absl::StrContains(name, ".experts.")) {  // summed over the EP group's tokens
      torch::Tensor sum = g.clone();
      ASSERT_TRUE(layout->ep->AllReduce(sum, ReduceOp::kSum).ok());
      auto it = grads.find(name);
      if (it == grads.end()) continue;  // another EP rank's expert
      EXPECT_LT((it->second - sum).abs().max().item<double>(),
                1e-6 * std::max(1e-3, sum.abs().max().item<double>()))
          << name;
      ++experts;
    } else {
      ASSERT_TRUE(grads.count(name)) << name;
      EXPECT_LT((grads.at(name) - g).abs().max().item<double>(),
                1e-6 * std::max(1e-3, g.abs().max().item<double>()))
          << name;
      ++dense;
    }
  }
  // Each rank holds 1/EP of the experts (2 layers, fc1 and fc2 each), and every dense parameter.
  EXPECT_EQ(experts, 2 * 2 * c.block.moe.experts / ep);
  EXPECT_EQ(dense + experts, static_cast<int>(grads.size()));
}

TEST(Moe, ExpertParallelEqualsSerial) {
  GptConfig c = TinyMixtral();
  ExpectEpEqualsSerial(c, 1, 2, false, "EP 2");
  ExpectEpEqualsSerial(c, 1, 4, false, "EP 4");
  ExpectEpEqualsSerial(c, 2, 2, false, "TP 2 x EP 2");
  ExpectEpEqualsSerial(c, 2, 2, true, "TP 2 x EP 2, SP");
  c.block.moe.capacity_factor = 1.0;
  c.block.moe.shared = 1;
  c.block.moe.shared_gate = true;
  ExpectEpEqualsSerial(c, 1, 2, false, "EP 2, capacity 1, shared expert");
}

TEST(Moe, ExpertParallelLayout) {
  const int world = testing::g_runtime->world_size();
  for (int ep : {2, 4}) {
    if (world % ep != 0) continue;
    auto layout = ParallelLayout::Create(testing::g_runtime->world(), 1, 1, ep);
    ASSERT_TRUE(layout.ok());
    // Megatron's order: EP ranks are consecutive DP ranks; expert_dp joins the same EP rank of
    // each block.
    EXPECT_EQ(layout->ep->size(), ep);
    EXPECT_EQ(layout->ep_rank, layout->dp_rank % ep);
    EXPECT_EQ(layout->ep->rank(), layout->ep_rank);
    EXPECT_EQ(layout->expert_dp->size(), world / ep);
    EXPECT_EQ(layout->expert_dp->rank(), layout->dp_rank / ep);
  }
  auto bad = ParallelLayout::Create(testing::g_runtime->world(), 1, 1, world + 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "does not divide the data-parallel size"))
      << bad.status().message();
}

int64_t CountOf(const std::string& recipe) { return testing::GptRecipeParameterCount(recipe); }

TEST(Moe, ParameterCounts) {
  EXPECT_EQ(CountOf("mixtral-8x7b"), 46702792704);
  for (const std::vector<std::string>& extra : std::vector<std::vector<std::string>>{
           {"mixtral-tiny"},
           {"mixtral-tiny", "model.moe_shared_experts=2", "model.moe_shared_expert_gate=true"},
           {"mixtral-tiny", "model.moe_layer_pattern=[0,1]", "model.moe_ffn_hidden_size=64"},
           {"mixtral-tiny", "model.bias=true", "model.moe_layer_freq=2"},
           {"qwen-moe-tiny"}}) {
    SCOPED_TRACE(absl::StrJoin(extra, " "));
    testing::ExpectCountEqualsBuiltModel(extra[0], {extra.begin() + 1, extra.end()});
  }
}

TEST(Moe, FlopsCountActiveExpertsOnly) {
  // SwiGLU MLP FLOPs are linear in the width: k experts of width f cost a dense MLP of width k x f,
  // plus the router's 2 s h E.
  BlockConfig moe = TinyMixtral().block, dense = moe;
  dense.moe = MoeBlock{};
  dense.ffn = moe.moe.top_k * moe.moe.ffn;
  const int64_t s = 32;
  EXPECT_DOUBLE_EQ(LayerForwardFlops(moe, false, s),
                   LayerForwardFlops(dense, false, s) + 2.0 * s * moe.hidden * moe.moe.experts);
}

}  // namespace
}  // namespace braid
