// T5 under tensor and data parallelism against the serial model, under mpirun with 2 and 4 ranks:
//  - logits, loss and every parameter gradient (gathered) at TP = 2, 4 equal TP = 1 within 1e-5
//    relative (and with sequence parallelism equal the same TP size without it), for T5 v1.1 (gated
//    GELU, untied, d_kv x heads != hidden) and the original T5 (ReLU, tied and scaled), on a batch
//    with encoder and target padding;
//  - model.output_chunk_tokens equals the logits whole (loss, gradients, metric; fp64);
//  - DP = world with micro batch 2 equals DP = 1 with micro batch 2 x world through the real
//    trainer and T5Task, in fp64: losses, gradient norms and final weights within 1e-6.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>

#include "framework/core/config.h"
#include "framework/dist/layout.h"
#include "framework/models/t5.h"
#include "framework/parallel/mappings.h"
#include "framework/train/model_io.h"
#include "framework/train/trainer.h"
#include "recipes/seq2seq/seq2seq_batch.h"
#include "recipes/seq2seq/t5_model.h"
#include "tests/lib/tensor_compare.h"
#include "tests/lib/tp_test.h"
#include "tests/mpi_test_env.h"

namespace braid {
namespace {
using testing::FullGrads;
using testing::g_runtime;
using testing::RelDiff;
using testing::Solo;

constexpr int64_t kVocab = 250, kEnc = 12, kDec = 7;

T5Config TinyT5(bool original) {
  T5Config c;
  c.encoder_layers = 2;
  c.decoder_layers = 2;
  c.vocab_size = kVocab;
  c.padded_vocab = 256;
  c.num_buckets = 8;
  c.max_distance = 16;
  c.block.hidden = 32;
  c.block.heads = 4;
  c.block.head_dim = 6;  // 24 != 32: T5's d_kv
  c.block.ffn = 48;
  c.block.norm = NormType::kRmsNorm;
  c.block.eps = 1e-6;
  c.block.activation = original ? Activation::kRelu : Activation::kGegluTanh;
  c.tie_embeddings = original;
  return c;
}

// Rows of Seq2SeqRow(kEnc, kDec): the last sample has 4 encoder padding positions and 2 padded
// targets; sample i is a function of i.
torch::Tensor Rows(int64_t first, int64_t n, int64_t dec = kDec) {
  const Seq2SeqRow r(kEnc, dec);
  torch::Tensor rows = torch::zeros({n, r.length()}, torch::kLong);
  for (int64_t b = 0; b < n; ++b) {
    const int64_t i = first + b;
    const bool padded = i % 3 == 2;
    for (int64_t k = 0; k < kEnc; ++k) {
      const bool pad = padded && k >= kEnc - 4;
      rows[b][r.inputs() + k] = pad ? 0 : (i * 37 + k * 11) % kVocab;
      rows[b][r.input_padding() + k] = pad ? 1 : 0;
    }
    int64_t prev = 0;
    for (int64_t k = 0; k < dec; ++k) {
      rows[b][r.decoder_inputs() + k] = prev;
      const int64_t label = (i * 13 + k * 29 + 5) % kVocab;
      rows[b][r.labels() + k] = label;
      prev = label;
    }
  }
  return rows;
}

TEST(T5Parallel, TpEqualsSerial) {
  for (bool original : {false, true}) {
    // A decoder of 8 positions: sequence parallelism splits it over TP 2 and 4.
    const int64_t dec = 8;
    torch::Tensor rows = Rows(0, 3, dec);
    rows[2].narrow(0, Seq2SeqRow(kEnc, dec).labels() + dec - 2, 2).fill_(-100);
    auto run = [&](std::shared_ptr<Communicator> tp, bool sp = false) {
      auto model = std::make_shared<T5Model>(TpEnv{tp, 5, sp}, TinyT5(original));
      TpRng rng(1, 0, tp->rank());
      T5Task task(model, kEnc, dec, tp);
      const Seq2SeqBatch b = Seq2SeqBatch::FromRows(rows, kEnc, dec);
      torch::Tensor logits;
      {
        torch::NoGradGuard no_grad;
        logits = model->FullLogits(b.inputs, b.input_padding, b.decoder_inputs, rng);
      }
      torch::Tensor loss = task.Loss(Batch{rows, {0, 1, 2}}, rng, nullptr);
      loss.backward();
      return std::make_tuple(logits, loss.item<double>(), FullGrads(*model, *tp));
    };
    auto [ref_logits, ref_loss, ref_grads] = run(Solo());
    for (int tp = 2; tp <= std::min(4, g_runtime->world_size()); tp *= 2) {
      auto layout = ParallelLayout::Create(g_runtime->world(), tp);
      ASSERT_TRUE(layout.ok());
      auto [logits, loss, grads] = run(layout->tp);
      const std::string what =
          (original ? "original T5, tp " : "T5 v1.1, tp ") + std::to_string(tp);
      EXPECT_LT(RelDiff(logits, ref_logits), 1e-5) << what;
      EXPECT_NEAR(loss, ref_loss, 1e-5 * std::abs(ref_loss)) << what;
      ASSERT_EQ(grads.size(), ref_grads.size());
      for (const auto& [name, g] : ref_grads) {
        EXPECT_LT(RelDiff(grads[name], g), 1e-5) << what << " " << name;
      }
      // Sequence parallelism against the same TP size without it.
      testing::ExpectRunsEqual(run(layout->tp, true), std::make_tuple(logits, loss, grads),
                               what + ", sequence parallel");
    }
  }
}

// model.output_chunk_tokens for T5 against the logits whole, fp64, T5 v1.1 (untied) and the
// original T5 (tied and scaled), at TP 1, 2, 4: the loss (over real targets, two of them ignored)
// and every gradient within 1e-6, and the metric (target accuracy) equal; chunks of 5 and 7
// tokens for 3 x 8 = 24 decoder tokens (neither divides 24, nor the vocabulary of 250).
TEST(T5Parallel, ChunkedLossEqualsWhole) {
  const int64_t dec = 8;
  torch::Tensor rows = Rows(0, 3, dec);
  rows[2].narrow(0, Seq2SeqRow(kEnc, dec).labels() + dec - 2, 2).fill_(-100);
  for (bool original : {false, true}) {
    for (int tp = 1; tp <= std::min(4, g_runtime->world_size()); tp *= 2) {
      auto layout = ParallelLayout::Create(g_runtime->world(), tp);
      ASSERT_TRUE(layout.ok());
      auto run = [&](int64_t chunk) {
        auto model = std::make_shared<T5Model>(TpEnv{layout->tp, 5}, TinyT5(original));
        model->to(torch::kDouble);
        TpRng rng(1, 0, layout->tp_rank);
        T5Task task(model, kEnc, dec, layout->tp, chunk);
        std::map<std::string, double> metrics;
        torch::Tensor loss = task.Loss(Batch{rows, {0, 1, 2}}, rng, &metrics);
        loss.backward();
        return testing::TaskResult{loss.item<double>(), metrics, FullGrads(*model, *layout->tp)};
      };
      testing::ExpectChunkedEqualsWhole(
          run, {5, 7}, (original ? "original T5, tp " : "T5 v1.1, tp ") + std::to_string(tp));
    }
  }
}

class SyntheticT5 : public SampleSource {
 public:
  int64_t size() const override { return 1 << 20; }
  int64_t sample_length() const override { return Seq2SeqRow(kEnc, kDec).length(); }
  void Get(int64_t i, int64_t* out) const override {
    torch::Tensor row = Rows(i, 1)[0].contiguous();
    std::memcpy(out, row.data_ptr<int64_t>(), sizeof(int64_t) * row.numel());
  }
};

TEST(T5Parallel, DpEqualsSerial) {
  const int world = g_runtime->world_size();
  auto run = [&](std::shared_ptr<Communicator> comm, int64_t micro) {
    auto config = LoadConfigFromString(
        "recipe: t5\nmodel: {num_layers: 2, hidden_size: 32, num_attention_heads: 4, "
        "seq_length: 12, hidden_dropout: 0.0, attention_dropout: 0.0}\n"
        "train: {lr: 1.0e-3, eval_steps: 0, adam_eps: 1.0e-4}\nlogging: {interval: 1000}\n",
        "t5.yaml",
        {"train.micro_batch_size=" + std::to_string(micro),
         "train.global_batch_size=" + std::to_string(2 * world), "train.train_steps=3"});
    EXPECT_TRUE(config.ok()) << config.status();
    auto sizes = DeriveSizes(*config, comm->size(), kVocab);
    auto layout = ParallelLayout::Create(comm, 1);
    auto model = std::make_shared<T5Model>(TpEnv{layout->tp, 5}, TinyT5(false));
    model->to(torch::kDouble);
    RecipeParts parts;
    parts.task = std::make_unique<T5Task>(model, kEnc, kDec, layout->tp);
    parts.train = std::make_shared<SyntheticT5>();
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
  ASSERT_EQ(dp.losses.size(), serial.losses.size());
  for (size_t s = 0; s < dp.losses.size(); ++s) {
    EXPECT_NEAR(dp.losses[s], serial.losses[s], 1e-6 * std::abs(serial.losses[s])) << s;
    EXPECT_NEAR(dp.grad_norms[s], serial.grad_norms[s], 1e-6 * serial.grad_norms[s]) << s;
  }
  for (const auto& [name, w] : serial.final_weights) {
    EXPECT_LT(RelDiff(dp.final_weights.at(name), w), 1e-6) << name;
  }
}

// Generation's incremental decoder (keys and values kept between tokens, the relative position
// bias of the new positions only) equals the whole decoder, for T5 v1.1 and the original T5, at
// TP 1 and the world's TP, in fp64: the start, then one id at a time.
TEST(T5Parallel, IncrementalDecodingEqualsWholeDecoder) {
  testing::ExpectIncrementalDecodingEqualsWhole<T5Model>(TinyT5, {"T5 v1.1", "original T5"});
}

}  // namespace
}  // namespace braid
