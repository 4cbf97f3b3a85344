// The decoder options of the GPT family (LLaMA, Mistral, Falcon, BLOOM), under mpirun with 2 and 4
// ranks, each against something independent of the code under test:
//  - ALiBi slopes equal the paper's closed form 2^(-8k/n) for 8 heads, and for 12 heads the
//    slopes of 8 followed by every other slope of 16 (BLOOM's rule for non-powers of two);
//  - the sliding-window bias is -inf exactly where key j lies `window` or more positions before
//    query i, 0 elsewhere; through a one-layer RoPE model (positions relative), the logits at
//    position i of a long sequence equal the last logits of the window-long sequence ending at i;
//  - the fused RoPE kernel equals the rotate-half formula written with tensor ops, forward and
//    backward, fp32 and fp64, plain and grouped heads; q.k after RoPE depends only on i - j;
//  - grouped-query attention equals multi-head attention whose key/value heads are copied to
//    every query head of their group;
//  - logits, loss and every parameter gradient at TP = 2 and 4 equal TP = 1 (1e-5) for LLaMA
//    (RoPE, 2 or 4 query groups, SwiGLU, RMSNorm, no biases, untied output) and for ALiBi with a
//    sliding window, biases and parallel attention + MLP (12 heads: 3 per rank at TP 4).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "framework/dist/layout.h"
#include "framework/kernels/kernels.h"
#include "framework/models/gpt.h"
#include "recipes/gpt/gpt_task.h"
#include "tests/lib/gpt_tp_check.h"
#include "tests/lib/tensor_compare.h"
#include "tests/lib/tiny_gpt.h"
#include "tests/lib/tp_test.h"
#include "tests/mpi_test_env.h"

namespace braid {
namespace {
using testing::RelDiff;
using testing::Solo;

GptConfig Llama(int64_t heads, int64_t groups) { return testing::TinyLlamaConfig(heads, groups); }

GptConfig AlibiFalcon() {
  GptConfig c = testing::TinyGptConfig(48, 96, 32);
  c.block.heads = 12;
  c.position = Position::kAlibi;
  c.sliding_window = 7;
  c.block.parallel_residual = true;
  return c;
}

TEST(Llama, AlibiSlopesAreThePapers) {
  const std::vector<double> eight = AlibiSlopes(8);
  ASSERT_EQ(eight.size(), 8u);
  for (int k = 1; k <= 8; ++k) EXPECT_DOUBLE_EQ(eight[k - 1], std::pow(0.5, k));  // 2^(-8k/8)
  const std::vector<double> twelve = AlibiSlopes(12);
  ASSERT_EQ(twelve.size(), 12u);
  for (int k = 1; k <= 8; ++k) EXPECT_DOUBLE_EQ(twelve[k - 1], std::pow(2.0, -8.0 * k / 8));
  for (int k = 0; k < 4; ++k) {  // slopes 1, 3, 5, 7 of 16 heads: 2^(-8 (2k+1) / 16)
    EXPECT_DOUBLE_EQ(twelve[8 + k], std::pow(2.0, -0.5 * (2 * k + 1)));
  }
}

TEST(Llama, SlidingWindowIsCausalIntersectWindow) {
  const int64_t s = 9, w = 3;
  torch::Tensor bias = DecoderPositionBias(s, {}, w, torch::kDouble)[0][0];
  torch::Tensor alibi = DecoderPositionBias(s, {0.5}, 0, torch::kDouble)[0][0];
  for (int64_t i = 0; i < s; ++i) {
    for (int64_t j = 0; j < s; ++j) {
      const double b = bias[i][j].item<double>();
      if (i - j >= w) {
        EXPECT_TRUE(std::isinf(b) && b < 0) << i << "," << j;
      } else {
        EXPECT_EQ(b, 0.0) << i << "," << j;
      }
      EXPECT_DOUBLE_EQ(alibi[i][j].item<double>(), -0.5 * (i - j));
    }
  }
  // One layer, RoPE: position i sees exactly tokens i-w+1 .. i, at relative distances only.
  GptConfig c = Llama(4, 2);
  c.layers = 1;
  c.sliding_window = 5;
  GptModel model(TpEnv{Solo(), 5}, c);
  model.eval();
  TpRng rng(1, 0, 0);
  torch::manual_seed(2);
  torch::Tensor tokens = torch::randint(0, 250, {1, 20}, torch::kLong);
  torch::Tensor full = model.FullLogits(tokens, rng)[0];
  for (int64_t i : {4, 9, 19}) {
    torch::Tensor part = model.FullLogits(tokens.narrow(1, i - 4, 5), rng)[0][-1];
    EXPECT_LT(RelDiff(full[i], part), 1e-5) << "position " << i;
  }
  // Without the window, the long context changes the logits (the check above can fail).
  c.sliding_window = 0;
  GptModel open(TpEnv{Solo(), 5}, c);
  open.eval();
  EXPECT_GT(RelDiff(open.FullLogits(tokens, rng)[0][19],
                    open.FullLogits(tokens.narrow(1, 15, 5), rng)[0][-1]),
            1e-3);
}

torch::Tensor RopeByFormula(const torch::Tensor& x5, double theta, double scale) {
  // x [b, s, g, m, d] -> [b, g*m, s, d]: pairs (j, j + d/2) rotated by p * theta^(-2j/d).
  const int64_t s = x5.size(1), d = x5.size(4);
  torch::Tensor t = x5.flatten(2, 3).transpose(1, 2).to(torch::kDouble);
  torch::Tensor inv = torch::pow(theta, -torch::arange(0, d, 2, torch::kDouble) / d);
  torch::Tensor ang = torch::arange(s, torch::kDouble).unsqueeze(1) * inv;
  torch::Tensor c = torch::cat({ang.cos(), ang.cos()}, -1),
                sn = torch::cat({ang.sin(), ang.sin()}, -1);
  torch::Tensor x1 = t.narrow(-1, 0, d / 2), x2 = t.narrow(-1, d / 2, d / 2);
  return (t * c + torch::cat({-x2, x1}, -1) * sn) * scale;
}

TEST(Llama, RopeKernelEqualsFormula) {
  torch::manual_seed(4);
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    for (bool grouped : {false, true}) {
      // A slice of a fused projection, as the attention hands it over.
      torch::Tensor fused = torch::randn({2, 7, grouped ? 3 : 4, grouped ? 4 : 1, 8}, dtype);
      torch::Tensor x = (grouped ? fused.narrow(3, 0, 2) : fused.squeeze(3)).detach();
      x.requires_grad_(true);
      auto [cos, sin] = RopeTables(7, 8, 500.0, torch::TensorOptions().dtype(dtype));
      torch::Tensor y = RopeHeads(x, cos, sin, 0.25);
      torch::Tensor x5 = grouped ? x : x.unsqueeze(3);
      torch::Tensor ref = RopeByFormula(x5.detach(), 500.0, 0.25);
      EXPECT_TRUE(y.is_contiguous());
      EXPECT_LT(RelDiff(y.to(torch::kDouble), ref), dtype == torch::kFloat ? 1e-6 : 1e-12);
      // Backward: the gradient of sum(y * r) is the formula's.
      torch::Tensor r = torch::randn(y.sizes(), dtype);
      (y * r).sum().backward();
      torch::Tensor xd = x.detach().to(torch::kDouble).requires_grad_(true);
      torch::Tensor xd5 = grouped ? xd : xd.unsqueeze(3);
      (RopeByFormula(xd5, 500.0, 0.25) * r.to(torch::kDouble)).sum().backward();
      EXPECT_LT(RelDiff(x.grad().to(torch::kDouble), xd.grad()),
                dtype == torch::kFloat ? 1e-6 : 1e-12)
          << "grouped " << grouped;
    }
  }
  // Relative: q_i . k_j after rotation depends on i - j only.
  torch::Tensor q = torch::randn({1, 1, 1, 16}, torch::kDouble).expand({1, 6, 1, 16}).contiguous();
  torch::Tensor k = torch::randn({1, 1, 1, 16}, torch::kDouble).expand({1, 6, 1, 16}).contiguous();
  auto [cos, sin] = RopeTables(6, 16, 10000.0, torch::TensorOptions().dtype(torch::kDouble));
  torch::Tensor rq = RopeHeads(q, cos, sin, 1.0)[0][0], rk = RopeHeads(k, cos, sin, 1.0)[0][0];
  torch::Tensor dots = rq.matmul(rk.t());
  EXPECT_NEAR(dots[3][1].item<double>(), dots[5][3].item<double>(), 1e-12);
  EXPECT_NEAR(dots[2][2].item<double>(), dots[0][0].item<double>(), 1e-12);
}

TEST(Llama, GroupedQueryEqualsMultiHeadWithCopiedKeys) {
  const int64_t heads = 4, groups = 2, d = 12, per = heads / groups;
  GptConfig gqa = Llama(heads, groups), mha = Llama(heads, heads);  // per-group, one head a group
  GptModel a(TpEnv{Solo(), 7}, gqa), b(TpEnv{Solo(), 7}, mha);
  a.eval(), b.eval();
  {
    torch::NoGradGuard no_grad;
    auto pa = a.named_parameters(), pb = b.named_parameters();
    for (const auto& p : pa) {
      torch::Tensor dst = pb[p.key()];
      if (p.key().find("qkv") == std::string::npos) {
        dst.copy_(p.value());
        continue;
      }
      // [groups][per queries | k | v][d] -> [heads][q | k | v][d], k and v copied per head.
      torch::Tensor g = p.value().view({groups, per + 2, d, -1});
      torch::Tensor q = g.narrow(1, 0, per).reshape({heads, 1, d, -1});
      torch::Tensor k = g.narrow(1, per, 1).repeat_interleave(per, 0);
      torch::Tensor v = g.narrow(1, per + 1, 1).repeat_interleave(per, 0);
      dst.copy_(torch::cat({q, k, v}, 1).reshape(dst.sizes()));
    }
  }
  torch::manual_seed(8);
  torch::Tensor tokens = torch::randint(0, 250, {2, 11}, torch::kLong);
  TpRng rng(1, 0, 0);
  EXPECT_LT(RelDiff(a.FullLogits(tokens, rng), b.FullLogits(tokens, rng)), 1e-5);
}

void ExpectTpEqualsSerial(const GptConfig& c, const char* what, bool sequence_parallel = false) {
  EXPECT_GT(testing::ExpectGptTpEqualsSerial(c, {2, 4}, what, sequence_parallel), 0)
      << what << ": no TP size checked";
}

TEST(Llama, TpEqualsSerial) {
  ExpectTpEqualsSerial(Llama(4, 2), "llama, 2 query groups");  // TP 2 (2 groups: not TP 4)
  ExpectTpEqualsSerial(Llama(8, 4), "llama, 4 query groups");  // TP 2 and 4
  GptConfig window = Llama(8, 4);
  window.sliding_window = 6;
  ExpectTpEqualsSerial(window, "mistral-style window");
  GptConfig alibi = AlibiFalcon();
  alibi.block.kv_groups = 0;
  ExpectTpEqualsSerial(alibi, "alibi, 12 heads, window, parallel residual");
}

// parallel.sequence_parallel with RoPE, grouped queries, SwiGLU and RMSNorm; and with ALiBi, a
// window and the parallel residual: against the same TP size without it and against TP = 1.
TEST(Llama, SequenceParallelEqualsOff) {
  ExpectTpEqualsSerial(Llama(8, 4), "llama, sequence parallel", true);
  GptConfig alibi = AlibiFalcon();
  alibi.block.kv_groups = 0;
  ExpectTpEqualsSerial(alibi, "alibi, parallel residual, sequence parallel", true);
}

}  // namespace
}  // namespace braid
