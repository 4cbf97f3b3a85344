// Tensor and data parallelism against the serial run, under mpirun with 2 and 4 ranks:
//  - vocab-parallel cross entropy = full-softmax cross entropy (values and gradients, with ignore
//    index and label smoothing) for every TP size the world allows;
//  - GPT logits, loss and every parameter gradient (gathered) at TP = 2, 4 equal TP = 1 within
//    1e-5 relative; the same for a bidirectional (padding-masked) and a cross-attention layer;
//  - sequence parallelism (GPT, BERT, those layers) against the same TP size without it, 1e-5;
//  - DP = 2 with micro batch b equals DP = 1 with micro batch 2b (losses and weights after 3
//    steps) within 1e-6; 2 accumulated micro-batches of b equal one of 2b;
//  - TP = 2 x DP = 2 follows the TP = 1 x DP = 1 loss curve of the tiny GPT for 50 steps (1e-4).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "framework/core/config.h"
#include "framework/dist/layout.h"
#include "framework/models/bert.h"
#include "framework/models/gpt.h"
#include "framework/parallel/mappings.h"
#include "framework/train/model_io.h"
#include "framework/train/trainer.h"
#include "recipes/bert/bert_batch.h"
#include "recipes/bert/bert_task.h"
#include "recipes/gpt/gpt_task.h"
#include "tests/lib/gpt_tp_check.h"
#include "tests/lib/synthetic_source.h"
#include "tests/lib/tensor_compare.h"
#include "tests/lib/tiny_bert.h"
#include "tests/lib/tiny_gpt.h"
#include "tests/lib/tp_test.h"
#include "tests/mpi_test_env.h"

#include <set>

namespace braid {
namespace {
using testing::FullGrads;
using testing::g_runtime;
using testing::RelDiff;
using testing::Solo;
using testing::SyntheticSource;

std::vector<int> TpSizes() {
  std::vector<int> out;
  for (int tp = 1; tp <= g_runtime->world_size(); ++tp)
    if (g_runtime->world_size() % tp == 0 && tp <= 4) out.push_back(tp);
  return out;
}

TEST(Parallel, VocabParallelCrossEntropyEqualsFullSoftmax) {
  torch::manual_seed(3);  // same on every rank
  const int64_t n = 37, vocab = 250, padded = 256;
  torch::Tensor full = torch::randn({n, padded}, torch::kDouble).to(torch::kFloat) * 3;
  torch::Tensor targets = torch::randint(0, vocab, {n}, torch::kLong);
  targets[5] = -100;
  targets[11] = -100;
  for (double smoothing : {0.0, 0.1}) {
    torch::Tensor ref_in = full.narrow(1, 0, vocab).clone().requires_grad_(true);
    torch::Tensor ref =
        torch::nn::functional::cross_entropy(ref_in, targets,
                                             torch::nn::functional::CrossEntropyFuncOptions()
                                                 .ignore_index(-100)
                                                 .reduction(torch::kNone)
                                                 .label_smoothing(smoothing));
    ref.sum().backward();
    for (int tp : TpSizes()) {
      auto layout = ParallelLayout::Create(g_runtime->world(), tp);
      ASSERT_TRUE(layout.ok());
      int64_t per = padded / tp;
      torch::Tensor mine = full.narrow(1, layout->tp_rank * per, per).clone().requires_grad_(true);
      torch::Tensor loss = VocabParallelCrossEntropy(
          mine, targets, *layout->tp, {layout->tp_rank * per, vocab}, -100, smoothing);
      loss.sum().backward();
      EXPECT_LT(RelDiff(loss, ref), 1e-6) << "tp " << tp << " smoothing " << smoothing;
      torch::Tensor grad = AllGatherLastDim(mine.grad(), *layout->tp);
      EXPECT_LT(RelDiff(grad.narrow(1, 0, vocab), ref_in.grad()), 1e-6) << "tp " << tp;
      EXPECT_EQ(grad.narrow(1, vocab, padded - vocab).abs().max().item<float>(), 0.0f);
      EXPECT_EQ(loss[5].item<float>(), 0.0f);
    }
  }
}

// model.output_chunk_tokens: the projection and loss over chunks equal the whole logits' loss
// (fp64), with token counts that no chunk size divides, ignored targets, label smoothing, a padded
// vocabulary and with and without an output bias; in training (gradients of h, the weight and the
// bias) and in evaluation (no grad); and the chunked arg-max equals the whole logits'.
TEST(Parallel, ChunkedOutputLossEqualsWholeLogits) {
  torch::manual_seed(4);
  const int64_t n = 37, hidden = 16, vocab = 250, padded = 256;
  torch::Tensor h0 = torch::randn({n, hidden}, torch::kDouble);
  torch::Tensor w0 = torch::randn({padded, hidden}, torch::kDouble) * 0.5;
  torch::Tensor b0 = torch::randn({padded}, torch::kDouble);
  torch::Tensor targets = torch::randint(0, vocab, {n}, torch::kLong);
  targets[3] = -100;
  targets[30] = -100;
  for (int tp_size : TpSizes()) {
    auto layout = ParallelLayout::Create(g_runtime->world(), tp_size);
    ASSERT_TRUE(layout.ok());
    Communicator& tp = *layout->tp;
    const int64_t per = padded / tp_size;
    const VocabShard shard{layout->tp_rank * per, vocab};
    auto mine = [&](const torch::Tensor& t) { return t.narrow(0, shard.start, per).clone(); };
    for (bool with_bias : {false, true}) {
      for (double smoothing : {0.0, 0.1}) {
        torch::Tensor h_ref = h0.clone().requires_grad_(true);
        torch::Tensor w_ref = mine(w0).requires_grad_(true);
        torch::Tensor b_ref = mine(b0).requires_grad_(true);
        torch::Tensor logits = torch::matmul(CopyToTp(h_ref, tp), w_ref.t());
        if (with_bias) logits = logits + b_ref;
        const torch::Tensor ref_ids = VocabParallelArgmax(logits, tp, shard);  // before: the
        // cross entropy works on the logits in place
        torch::Tensor ref =
            VocabParallelCrossEntropy(logits, targets, tp, shard, -100, smoothing).mean();
        ref.backward();
        for (int64_t chunk : {1, 8, 36, 37, 100}) {
          torch::Tensor h = h0.clone().requires_grad_(true);
          torch::Tensor w = mine(w0).requires_grad_(true);
          torch::Tensor bias = with_bias ? mine(b0).requires_grad_(true) : torch::Tensor();
          torch::Tensor loss = ChunkedVocabParallelLoss(CopyToTp(h, tp), w, targets, tp, shard,
                                                        chunk, -100, smoothing, bias);
          (loss * 3.0).backward();  // an upstream gradient other than 1
          const std::string what = "tp " + std::to_string(tp_size) + ", chunk " +
                                   std::to_string(chunk) + ", smoothing " +
                                   std::to_string(smoothing) + (with_bias ? ", bias" : "");
          EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 1e-12) << what;
          EXPECT_LT(RelDiff(h.grad(), h_ref.grad() * 3.0), 1e-10) << what;
          EXPECT_LT(RelDiff(w.grad(), w_ref.grad() * 3.0), 1e-10) << what;
          if (with_bias) EXPECT_LT(RelDiff(bias.grad(), b_ref.grad() * 3.0), 1e-10) << what;
          const int64_t real = std::max<int64_t>(0, std::min(per, vocab - shard.start));
          if (real < per) {  // padded vocabulary rows take no part
            EXPECT_EQ(w.grad().narrow(0, real, per - real).abs().max().item<double>(), 0.0) << what;
            if (with_bias) {
              EXPECT_EQ(bias.grad().narrow(0, real, per - real).abs().max().item<double>(), 0.0)
                  << what;
            }
          }
          torch::NoGradGuard no_grad;
          const torch::Tensor b_eval = with_bias ? mine(b0) : torch::Tensor();
          torch::Tensor eval = ChunkedVocabParallelLoss(CopyToTp(h0, tp), mine(w0), targets, tp,
                                                        shard, chunk, -100, smoothing, b_eval);
          EXPECT_NEAR(eval.item<double>(), ref.item<double>(), 1e-12) << what << ", no grad";
          EXPECT_TRUE(torch::equal(
              ChunkedVocabParallelArgmax(h0, mine(w0), b_eval, tp, shard, chunk), ref_ids))
              << what << ", arg-max";
        }
      }
    }
  }
}

GptConfig TinyGpt() { return testing::TinyGptConfig(); }

// The GPT model with model.output_chunk_tokens against without: loss and every gradient, fp64,
// tied and untied output, at every TP size (5 chunks of 13 tokens for 3 x 20 = 60 tokens).
TEST(Parallel, GptChunkedOutputEqualsWhole) {
  torch::manual_seed(12);
  torch::Tensor samples = torch::randint(0, 250, {3, 21}, torch::kLong);
  GptBatch b = GptBatch::FromRows(samples);
  for (bool tied : {true, false}) {
    for (int tp_size : TpSizes()) {
      auto layout = ParallelLayout::Create(g_runtime->world(), tp_size);
      ASSERT_TRUE(layout.ok());
      auto run = [&](int64_t chunk) {
        GptConfig c = TinyGpt();
        c.tie_embeddings = tied;
        c.output_chunk_tokens = chunk;
        auto model = std::make_shared<GptModel>(TpEnv{layout->tp, 99}, c);
        model->to(torch::kDouble);
        TpRng rng(1, 0, layout->tp_rank);
        torch::Tensor loss = model->Loss(b.tokens, b.labels, rng);
        loss.backward();
        return std::make_pair(loss.item<double>(), FullGrads(*model, *layout->tp));
      };
      auto [ref_loss, ref_grads] = run(0);
      auto [loss, grads] = run(13);
      const std::string what =
          std::string(tied ? "tied" : "untied") + ", tp " + std::to_string(tp_size);
      EXPECT_NEAR(loss, ref_loss, 1e-12) << what;
      ASSERT_EQ(grads.size(), ref_grads.size());
      for (const auto& [name, g] : ref_grads) {
        EXPECT_LT(RelDiff(grads[name], g), 1e-6) << what << ", grad of " << name;
      }
    }
  }
}

// train.recompute against none with dropout on (hidden and attention): selective, full, and full
// for the first layer only. The loss, every gradient and the dropout generators' states after
// the backward pass are bit-identical, at every TP size, with and without sequence parallelism,
// over two steps (the second draws from the generators where the first left them).
TEST(Parallel, GptRecomputeEqualsNone) {
  torch::manual_seed(13);
  torch::Tensor samples = torch::randint(0, 250, {3, 21}, torch::kLong);
  GptBatch b = GptBatch::FromRows(samples);
  for (int tp_size : TpSizes()) {
    auto layout = ParallelLayout::Create(g_runtime->world(), tp_size);
    ASSERT_TRUE(layout.ok());
    auto run = [&](Recompute r, int64_t n, bool sp) {
      GptConfig c = TinyGpt();
      c.block.hidden_dropout = 0.1;
      c.block.attention_dropout = 0.2;
      c.block.recompute = r;
      c.block.recompute_layers = n;
      auto model = std::make_shared<GptModel>(TpEnv{layout->tp, 99, sp}, c);
      TpRng rng(1, 0, layout->tp_rank);
      std::vector<float> losses;
      std::map<std::string, torch::Tensor> grads;
      for (int step = 0; step < 2; ++step) {
        model->zero_grad();
        torch::Tensor loss = model->Loss(b.tokens, b.labels, rng);
        loss.backward();
        losses.push_back(loss.item<float>());
        for (auto& [name, g] : FullGrads(*model, *layout->tp))
          grads[name + std::to_string(step)] = g;
      }
      return std::make_tuple(losses, grads, rng.replicated.get_state(), rng.sharded.get_state());
    };
    for (bool sp : {false, true}) {
      if (sp && tp_size == 1) continue;
      auto [ref_losses, ref_grads, ref_rep, ref_sh] = run(Recompute::kNone, 0, sp);
      for (auto [r, n] : {std::pair{Recompute::kSelective, 0}, std::pair{Recompute::kFull, 0},
                          std::pair{Recompute::kFull, 1}}) {
        const std::string what =
            absl::StrCat(r == Recompute::kFull ? "full" : "selective", " (layers ", n, "), tp ",
                         tp_size, sp ? ", sequence parallel" : "");
        auto [losses, grads, rep, sh] = run(r, n, sp);
        EXPECT_EQ(losses, ref_losses) << what;
        ASSERT_EQ(grads.size(), ref_grads.size());
        for (const auto& [name, g] : ref_grads) {
          EXPECT_TRUE(torch::equal(grads[name], g)) << what << ", grad of " << name;
        }
        EXPECT_TRUE(torch::equal(rep, ref_rep) && torch::equal(sh, ref_sh)) << what;
      }
    }
  }
}

// The same for a decoder layer with cross-attention, a key padding mask and a position bias that
// needs its gradient (T5's, shared by the layers of a stack): output, the gradients of the input,
// the encoder output, the bias and every parameter bit-identical with recomputation.
TEST(Parallel, CrossAttentionLayerRecomputeEqualsNone) {
  torch::manual_seed(6);
  torch::Tensor x0 = torch::randn({2, 7, 32}), mem0 = torch::randn({2, 5, 32});
  torch::Tensor bias0 = torch::randn({1, 4, 7, 7});
  torch::Tensor mem_padding = torch::zeros({2, 5}, torch::kBool);
  mem_padding[0][4] = true;
  for (int tp_size : TpSizes()) {
    auto layout = ParallelLayout::Create(g_runtime->world(), tp_size);
    ASSERT_TRUE(layout.ok());
    auto run = [&](Recompute r) {
      BlockConfig c;
      c.hidden = 32;
      c.heads = 4;
      c.ffn = 48;
      c.hidden_dropout = 0.1;
      c.attention_dropout = 0.2;
      c.recompute = r;
      auto layer = std::make_shared<TransformerLayer>(TpEnv{layout->tp, 7}, "layer", c, true);
      TpRng rng(1, 0, layout->tp_rank);
      torch::Tensor x = x0.clone().requires_grad_(true), mem = mem0.clone().requires_grad_(true);
      torch::Tensor bias = bias0.clone().requires_grad_(true);
      AttentionMask self_mask, cross_mask;
      self_mask.causal = true;
      const int64_t per = 4 / tp_size;
      self_mask.position_bias = bias.narrow(1, layout->tp_rank * per, per);
      cross_mask.key_padding = mem_padding;
      torch::Tensor y = layer->forward(x, self_mask, rng, mem, cross_mask);
      (y * y.detach().cos()).sum().backward();
      auto grads = FullGrads(*layer, *layout->tp);
      grads["input"] = x.grad();
      grads["memory"] = mem.grad();
      grads["bias"] = bias.grad();
      grads["output"] = y.detach();
      return grads;
    };
    auto ref = run(Recompute::kNone);
    for (Recompute r : {Recompute::kSelective, Recompute::kFull}) {
      auto got = run(r);
      for (const auto& [name, g] : ref) {
        EXPECT_TRUE(torch::equal(got[name], g))
            << (r == Recompute::kFull ? "full" : "selective") << ", tp " << tp_size << ": " << name;
      }
    }
  }
}

TEST(Parallel, GptTpEqualsSerial) {
  std::vector<int> tps = TpSizes();
  EXPECT_GT(testing::ExpectGptTpEqualsSerial(TinyGpt(), tps, "gpt"), 0);
}

TEST(Parallel, GptSequenceParallelEqualsOff) {
  EXPECT_GT(testing::ExpectGptTpEqualsSerial(TinyGpt(), TpSizes(), "gpt, sequence parallel", true),
            0);
}

// Sequence parallelism through a stack (RunStack) of a post-LN bidirectional layer with a padding
// mask and a post-LN decoder layer with cross-attention (biases, gated GELU, dropout off): the
// output and the gradients of the input, the encoder output and every parameter equal those at
// the same TP size without it (and at TP 1) within 1e-5.
TEST(Parallel, LayersSequenceParallelEqualsOff) {
  BlockConfig c;
  c.hidden = 32;
  c.heads = 4;
  c.ffn = 48;
  c.activation = Activation::kGeglu;
  c.pre_ln = false;
  torch::manual_seed(9);
  torch::Tensor x0 = torch::randn({2, 8, 32}), mem0 = torch::randn({2, 5, 32});
  torch::Tensor padding = torch::zeros({2, 8}, torch::kBool);
  padding[1].narrow(0, 5, 3).fill_(true);
  torch::Tensor mem_padding = torch::zeros({2, 5}, torch::kBool);
  mem_padding[0][4] = true;
  auto run = [&](std::shared_ptr<Communicator> tp, bool sp) {
    torch::nn::ModuleList stack;
    stack->push_back(std::make_shared<TransformerLayer>(TpEnv{tp, 7, sp}, "a", c, false));
    stack->push_back(std::make_shared<TransformerLayer>(TpEnv{tp, 7, sp}, "b", c, true));
    TpRng rng(1, 0, tp->rank());
    torch::Tensor x = x0.clone().requires_grad_(true), mem = mem0.clone().requires_grad_(true);
    AttentionMask self_mask, cross_mask;
    self_mask.key_padding = padding;
    cross_mask.key_padding = mem_padding;
    torch::Tensor y = RunStack(stack, x, self_mask, rng, mem, cross_mask);
    (y * y.detach().cos()).sum().backward();
    auto grads = FullGrads(*stack, *tp);
    grads["input"] = x.grad();
    grads["memory"] = mem.grad();
    grads["output"] = y.detach();
    return grads;
  };
  const auto serial = run(Solo(), false);
  for (int tp : TpSizes()) {
    if (tp == 1) continue;
    auto layout = ParallelLayout::Create(g_runtime->world(), tp);
    ASSERT_TRUE(layout.ok());
    const auto off = run(layout->tp, false), on = run(layout->tp, true);
    ASSERT_EQ(on.size(), off.size());
    for (const auto& [name, g] : off) {
      EXPECT_LT(RelDiff(on.at(name), g), 1e-5) << "tp " << tp << ": " << name;
      EXPECT_LT(RelDiff(on.at(name), serial.at(name)), 1e-5) << "tp " << tp << ": " << name;
    }
  }
}

TEST(Parallel, BidirectionalAndCrossAttentionLayersTpEqualSerial) {
  BlockConfig c;
  c.hidden = 32;
  c.heads = 4;
  c.ffn = 48;
  c.activation = Activation::kGeglu;
  c.pre_ln = false;  // post-LN, as BERT and BART
  torch::manual_seed(5);
  torch::Tensor x0 = torch::randn({2, 7, 32});
  torch::Tensor mem0 = torch::randn({2, 5, 32});
  torch::Tensor padding = torch::zeros({2, 7}, torch::kBool);
  padding[1].narrow(0, 4, 3).fill_(true);
  torch::Tensor mem_padding = torch::zeros({2, 5}, torch::kBool);
  mem_padding[0][4] = true;
  auto run = [&](std::shared_ptr<Communicator> tp) {
    auto layer = std::make_shared<TransformerLayer>(TpEnv{tp, 7}, "layer", c, true);
    TpRng rng(1, 0, tp->rank());
    torch::Tensor x = x0.clone().requires_grad_(true), mem = mem0.clone().requires_grad_(true);
    AttentionMask self_mask, cross_mask;
    self_mask.key_padding = padding;
    cross_mask.key_padding = mem_padding;
    torch::Tensor y = layer->forward(x, self_mask, rng, mem, cross_mask);
    (y * y.detach().cos()).sum().backward();
    auto grads = FullGrads(*layer, *tp);
    grads["input"] = x.grad();
    grads["memory"] = mem.grad();
    return std::make_pair(y.detach(), grads);
  };
  auto [ref_y, ref_grads] = run(Solo());
  for (int tp : TpSizes()) {
    if (tp == 1) continue;
    auto layout = ParallelLayout::Create(g_runtime->world(), tp);
    auto [y, grads] = run(layout->tp);
    EXPECT_LT(RelDiff(y, ref_y), 1e-5) << "tp " << tp;
    for (const auto& [name, g] : ref_grads) EXPECT_LT(RelDiff(grads[name], g), 1e-5) << name;
  }
}

struct BertInputs {
  torch::Tensor ids, types, padding, labels, sop;
};
BertInputs MakeBertInputs() {
  torch::manual_seed(21);
  BertInputs in;
  in.ids = torch::randint(0, 250, {3, 12}, torch::kLong);
  in.types = (torch::arange(12).unsqueeze(0) >= 6).to(torch::kLong).repeat({3, 1});
  in.padding = torch::zeros({3, 12}, torch::kBool);
  in.padding[2].narrow(0, 8, 4).fill_(true);
  in.labels = torch::full({3, 12}, -100, torch::kLong);
  for (int b = 0; b < 3; ++b)
    for (int k : {1, 4, 7}) in.labels[b][k] = (b * 31 + k * 7) % 250;
  in.sop = torch::tensor({0, 1, 1}, torch::kLong);
  return in;
}

// MLM loss over the labelled positions + sentence-order loss, as the BERT recipe computes it.
torch::Tensor BertLoss(BertModel& m, const BertInputs& in, Communicator& tp, TpRng& rng,
                       torch::Tensor* logits_out = nullptr) {
  BertOutput out = m.Forward(in.ids, in.types, in.padding, rng);
  torch::Tensor logits = out.mlm_logits.reshape({-1, out.mlm_logits.size(-1)});
  if (logits_out) *logits_out = AllGatherLastDim(logits.detach(), tp).narrow(1, 0, 250).clone();
  torch::Tensor labels = in.labels.reshape({-1});
  torch::Tensor mlm = VocabParallelCrossEntropy(logits, labels, tp, m.shard()).sum() /
                      labels.ne(-100).sum().to(torch::kFloat);
  return mlm + torch::nn::functional::cross_entropy(out.binary_logits, in.sop);
}

// (and with sequence parallelism against the same TP size without it)
TEST(Parallel, BertTpEqualsSerial) {
  BertInputs in = MakeBertInputs();
  auto run = [&](std::shared_ptr<Communicator> tp, bool sp = false) {
    auto model = std::make_shared<BertModel>(TpEnv{tp, 5, sp}, testing::TinyBertConfig());
    TpRng rng(1, 0, tp->rank());
    torch::Tensor logits;
    torch::Tensor loss = BertLoss(*model, in, *tp, rng, &logits);
    loss.backward();
    return std::make_tuple(logits, loss.item<double>(), FullGrads(*model, *tp));
  };
  auto [ref_logits, ref_loss, ref_grads] = run(Solo());
  for (int tp : TpSizes()) {
    if (tp == 1) continue;
    auto layout = ParallelLayout::Create(g_runtime->world(), tp);
    auto [logits, loss, grads] = run(layout->tp);
    EXPECT_LT(RelDiff(logits, ref_logits), 1e-5) << "tp " << tp;
    EXPECT_NEAR(loss, ref_loss, 1e-5 * std::abs(ref_loss)) << "tp " << tp;
    for (const auto& [name, g] : ref_grads) EXPECT_LT(RelDiff(grads[name], g), 1e-5) << name;
    testing::ExpectRunsEqual(run(layout->tp, true), std::make_tuple(logits, loss, grads),
                             "sequence parallel, tp " + std::to_string(tp));
  }
}

// Changing the ids under the padding changes no output at a real position and no gradient.
TEST(Parallel, BertPaddingIsInert) {
  BertInputs a = MakeBertInputs(), b = MakeBertInputs();
  b.ids[2].narrow(0, 8, 4).copy_(torch::tensor({1, 2, 3, 4}));
  b.types[2].narrow(0, 8, 4).fill_(0);
  auto tp = Solo();
  auto run = [&](const BertInputs& in) {
    auto model = std::make_shared<BertModel>(TpEnv{tp, 5}, testing::TinyBertConfig());
    TpRng rng(1, 0, 0);
    torch::Tensor logits;
    BertLoss(*model, in, *tp, rng, &logits).backward();
    return std::make_pair(logits, FullGrads(*model, *tp));
  };
  auto [la, ga] = run(a);
  auto [lb, gb] = run(b);
  torch::Tensor real = a.padding.logical_not().reshape({-1});
  EXPECT_EQ(RelDiff(lb.index({real}), la.index({real})), 0.0);
  for (const auto& [name, g] : ga) EXPECT_EQ(RelDiff(gb[name], g), 0.0) << name;
}

// Deterministic pseudo-random token samples.
// Wraps a task: the loss of the steps listed in `nan_steps` (counted in Loss calls) becomes NaN.
class NanAt : public TrainTask {
 public:
  NanAt(std::unique_ptr<TrainTask> inner, std::set<int> nan_calls)
      : inner_(std::move(inner)), nan_calls_(std::move(nan_calls)) {}
  torch::nn::Module& model() override { return inner_->model(); }
  torch::Tensor Loss(const Batch& b, TpRng& rng, std::map<std::string, double>* m) override {
    torch::Tensor l = inner_->Loss(b, rng, m);
    return nan_calls_.count(calls_++) ? l * std::numeric_limits<double>::quiet_NaN() : l;
  }
  double FlopsPerSample() const override { return inner_->FlopsPerSample(); }
  int64_t TokensPerSample() const override { return inner_->TokensPerSample(); }

 private:
  std::unique_ptr<TrainTask> inner_;
  std::set<int> nan_calls_;
  int calls_ = 0;
};

absl::StatusOr<TrainResult> TrainTinyOr(std::shared_ptr<Communicator> world, int tp, int64_t micro,
                                        int64_t global, int steps, torch::Dtype dtype,
                                        std::set<int> nan_calls = {},
                                        std::vector<std::string> extra = {}) {
  std::vector<std::string> overrides = {"parallel.tensor_parallel_size=" + std::to_string(tp),
                                        "train.micro_batch_size=" + std::to_string(micro),
                                        "train.global_batch_size=" + std::to_string(global),
                                        "train.train_steps=" + std::to_string(steps)};
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  auto config = LoadConfigFromString(
      "recipe: gpt\nmodel: {num_layers: 2, hidden_size: 32, num_attention_heads: 4, "
      "seq_length: 16, hidden_dropout: 0.0, attention_dropout: 0.0}\n"
      // adam_eps 1e-4: with 1e-8, parameters whose true gradient is ~0 (the key bias) get
      // +-lr updates from rounding noise, and equal runs drift apart by lr, not by rounding.
      "train: {lr: 3.0e-3, lr_warmup_steps: 2, eval_steps: 0, clip_grad: 1.0, adam_eps: 1.0e-4}\n"
      "parallel: {grad_bucket_mb: 0.05}\n"  // many buckets: exercises their ordering
      "logging: {interval: 1000}\n",
      "tiny.yaml", overrides);
  EXPECT_TRUE(config.ok()) << config.status();
  auto sizes = DeriveSizes(*config, world->size(), 250);
  EXPECT_TRUE(sizes.ok()) << sizes.status();
  auto layout = ParallelLayout::Create(world, tp);
  EXPECT_TRUE(layout.ok());
  GptConfig g = TinyGpt();
  g.max_positions = 16;
  RecipeParts parts;
  auto model = std::make_shared<GptModel>(TpEnv{layout->tp, 99}, g);
  model->to(dtype);
  parts.task = std::make_unique<GptTask>(model, 16);
  if (!nan_calls.empty()) parts.task = std::make_unique<NanAt>(std::move(parts.task), nan_calls);
  parts.train = std::make_shared<SyntheticSource>(17);
  TrainOptions o;
  o.save_final = false;
  o.checkpoints = false;
  o.keep_final_weights = true;
  return Train(*config, *sizes, *layout, std::move(parts), o);
}

TrainResult TrainTiny(std::shared_ptr<Communicator> world, int tp, int64_t micro, int64_t global,
                      int steps, torch::Dtype dtype = torch::kFloat,
                      std::vector<std::string> extra = {}) {
  auto r = TrainTinyOr(std::move(world), tp, micro, global, steps, dtype, {}, std::move(extra));
  EXPECT_TRUE(r.ok()) << r.status();
  return std::move(*r);
}

void ExpectSameRun(const TrainResult& a, const TrainResult& b, double tol,
                   const std::string& what) {
  ASSERT_EQ(a.losses.size(), b.losses.size()) << what;
  for (size_t s = 0; s < a.losses.size(); ++s) {
    EXPECT_NEAR(a.losses[s], b.losses[s], tol * std::abs(b.losses[s])) << what << " step " << s;
    EXPECT_NEAR(a.grad_norms[s], b.grad_norms[s], tol * b.grad_norms[s]) << what << " step " << s;
  }
  for (const auto& [name, w] : b.final_weights) {
    EXPECT_LT(RelDiff(a.final_weights.at(name), w), tol) << what << " weight " << name;
  }
}

// In fp64 the runs agree to 1e-6 (3 AdamW steps); in fp32 summation order alone moves them by
// a few 1e-7, so fp32 is held to 1e-5.
TEST(Parallel, DpAndAccumulationEqualLargerMicroBatch) {
  const int world = g_runtime->world_size();
  const int64_t b = 2;
  for (auto [dtype, tol] :
       {std::make_pair(torch::kDouble, 1e-6), std::make_pair(torch::kFloat, 1e-5)}) {
    std::string name = dtype == torch::kDouble ? "fp64 " : "fp32 ";
    // DP = world with micro b  vs  DP = 1 with micro world*b (same global batch).
    TrainResult dp = TrainTiny(g_runtime->world(), 1, b, world * b, 3, dtype);
    TrainResult serial = TrainTiny(Solo(), 1, world * b, world * b, 3, dtype);
    ExpectSameRun(dp, serial, tol, name + "DP vs serial");
    // Accumulation: `world` micro-batches of b on one rank  vs  one micro-batch of world*b.
    TrainResult accum = TrainTiny(Solo(), 1, b, world * b, 3, dtype);
    ExpectSameRun(accum, serial, tol, name + "accumulation vs one batch");
  }
}

// parallel.distributed_optimizer against the replicated optimizer: fp64, 20 steps with clipping
// and 2 micro-batches per step, buckets of 0.05 MB (shards that cut parameters apart): losses,
// gradient norms and final weights within 1e-6, at DP = the world (2 and 4 ranks) and at
// TP 2 x DP 2 on 4.
TEST(Parallel, DistributedOptimizerEqualsReplicated) {
  const int world = g_runtime->world_size();
  for (int tp : {1, 2}) {
    const int dp = world / tp;
    if (dp < 2 || world % tp != 0) continue;
    TrainResult replicated = TrainTiny(g_runtime->world(), tp, 2, 4 * dp, 20, torch::kDouble);
    TrainResult sharded = TrainTiny(g_runtime->world(), tp, 2, 4 * dp, 20, torch::kDouble,
                                    {"parallel.distributed_optimizer=true"});
    ExpectSameRun(
        sharded, replicated, 1e-6,
        "distributed optimizer, TP " + std::to_string(tp) + " x DP " + std::to_string(dp));
  }
}

// A NaN loss skips the step on every rank (weights unchanged by it); several in a row stop the
// run with an error naming the step.
TEST(Parallel, NonFiniteStepsAreSkippedThenStop) {
  const int world = g_runtime->world_size();
  // Each step is one Loss call per rank (micro = global / DP): NaN in call 1 on rank 0 only.
  std::set<int> once = g_runtime->rank() == 0 ? std::set<int>{1} : std::set<int>{};
  auto r = TrainTinyOr(g_runtime->world(), 1, 2, 2 * world, 4, torch::kFloat, once);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->skipped_steps, 1);
  EXPECT_TRUE(std::isnan(r->losses[1]));
  EXPECT_TRUE(std::isfinite(r->losses[3]));
  std::set<int> always = {1, 2, 3, 4, 5, 6};
  auto stop = TrainTinyOr(g_runtime->world(), 1, 2, 2 * world, 8, torch::kFloat, always);
  ASSERT_FALSE(stop.ok());
  EXPECT_NE(stop.status().message().find("step 4: 3 steps in a row"), std::string::npos)
      << stop.status();
}

// BERT rows (tokens | types | padding | labels | sop) from a hash: DP=2 vs DP=1 at the same
// global batch through the real trainer and BertTask. The MLM loss is averaged over each
// micro-batch's masked tokens (Megatron's convention), so DP=2 and DP=1 optimise the same
// objective exactly when every sample has the same number of predictions: 3 here.
class SyntheticBert : public SampleSource {
 public:
  int64_t size() const override { return 1 << 20; }
  int64_t sample_length() const override { return row_.length(); }
  void Get(int64_t i, int64_t* out) const override {
    uint64_t h = 0xD1B54A32D192ED03ULL * (i + 3);
    auto next = [&] {
      h ^= h >> 31;
      h *= 0x9E3779B97F4A7C15ULL;
      return h >> 33;
    };
    const int64_t s = row_.seq, real = 8 + static_cast<int64_t>(next() % 5);
    for (int64_t k = 0; k < s; ++k) {
      out[row_.ids() + k] = k < real ? static_cast<int64_t>(next() % 250) : 0;
      out[row_.types() + k] = k < real && k >= real / 2 ? 1 : 0;
      out[row_.padding() + k] = k < real ? 0 : 1;
      out[row_.labels() + k] = -100;
    }
    for (int64_t k : {1, 4, 6}) out[row_.labels() + k] = static_cast<int64_t>(next() % 250);
    out[row_.sop()] = static_cast<int64_t>(next() % 2);
  }

 private:
  BertRow row_{12};
};

// model.output_chunk_tokens for BERT (only the masked rows through the output layer, its bias
// and the loss) against the logits whole, fp64, tied and untied, a non-zero MLM bias, at every
// TP size: the loss, every gradient within 1e-6 and the metrics (mlm_loss, mlm_acc, sop_loss,
// sop_acc) equal; chunks of 2 and 4 for 3 x 3 = 9 masked rows.
TEST(Parallel, BertChunkedLossEqualsWhole) {
  const SyntheticBert source;
  torch::Tensor rows = torch::empty({3, source.sample_length()}, torch::kLong);
  for (int64_t i = 0; i < 3; ++i) source.Get(i, rows[i].data_ptr<int64_t>());
  for (bool tied : {true, false}) {
    for (int tp_size : TpSizes()) {
      auto layout = ParallelLayout::Create(g_runtime->world(), tp_size);
      ASSERT_TRUE(layout.ok());
      auto run = [&](int64_t chunk) {
        BertConfig c = testing::TinyBertConfig();
        c.tie_embeddings = tied;
        auto model = std::make_shared<BertModel>(TpEnv{layout->tp, 5}, c);
        testing::FillVocabBias(*model, "lm_bias", *layout->tp);
        model->to(torch::kDouble);
        TpRng rng(1, 0, layout->tp_rank);
        BertTask task(model, 12, layout->tp, chunk);
        std::map<std::string, double> metrics;
        torch::Tensor loss = task.Loss(Batch{rows, {0, 1, 2}}, rng, &metrics);
        loss.backward();
        return testing::TaskResult{loss.item<double>(), metrics, FullGrads(*model, *layout->tp)};
      };
      testing::ExpectChunkedEqualsWhole(
          run, {2, 4}, std::string(tied ? "tied" : "untied") + ", tp " + std::to_string(tp_size));
    }
  }
}

TEST(Parallel, BertDpEqualsSerial) {
  const int world = g_runtime->world_size();
  auto run = [&](std::shared_ptr<Communicator> comm, int64_t micro) {
    auto config = LoadConfigFromString(
        "recipe: bert\nmodel: {num_layers: 2, hidden_size: 32, num_attention_heads: 4, "
        "seq_length: 12, hidden_dropout: 0.0, attention_dropout: 0.0}\n"
        "train: {lr: 1.0e-3, eval_steps: 0, adam_eps: 1.0e-4}\nlogging: {interval: 1000}\n",
        "bert.yaml",
        {"train.micro_batch_size=" + std::to_string(micro),
         "train.global_batch_size=" + std::to_string(2 * world), "train.train_steps=3"});
    auto sizes = DeriveSizes(*config, comm->size(), 250);
    auto layout = ParallelLayout::Create(comm, 1);
    BertConfig b = testing::TinyBertConfig();
    b.max_positions = 12;
    auto model = std::make_shared<BertModel>(TpEnv{layout->tp, 5}, b);
    model->to(torch::kDouble);
    RecipeParts parts;
    parts.task = std::make_unique<BertTask>(model, 12, layout->tp);
    parts.train = std::make_shared<SyntheticBert>();
    TrainOptions o;
    o.save_final = false;
    o.checkpoints = false;
    o.keep_final_weights = true;
    auto r = Train(*config, *sizes, *layout, std::move(parts), o);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  };
  TrainResult dp = run(g_runtime->world(), 2);
  TrainResult serial = run(Solo(), 2 * world);
  ExpectSameRun(dp, serial, 1e-6, "BERT fp64 DP vs serial");
}

TEST(Parallel, TpTimesDpFollowsSerialLossCurve) {
  if (g_runtime->world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  TrainResult par = TrainTiny(g_runtime->world(), 2, 2, 4, 50);  // TP 2 x DP 2
  TrainResult serial = TrainTiny(Solo(), 1, 4, 4, 50);           // TP 1 x DP 1
  ASSERT_EQ(par.losses.size(), 50u);
  for (size_t s = 0; s < 50; ++s) {
    EXPECT_NEAR(par.losses[s], serial.losses[s], 1e-4 * std::abs(serial.losses[s])) << "step " << s;
  }
  EXPECT_LT(serial.losses.back(), serial.losses.front() - 0.5) << "the tiny GPT did not learn";
}

}  // namespace
}  // namespace braid
