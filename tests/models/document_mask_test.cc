// Document-masked packing for the decoders (data.reset_position_ids, data.reset_attention_mask,
// data.eod_mask_loss; docs/document_masking.md), under mpirun with 2 and 4 ranks, each against a
// reference independent of the masked path:
//  - DocumentSpansOf and DocumentPositions on a hand-made batch (closed form);
//  - the logits of a packed sample equal those of each of its documents run alone (fp64, 1e-9),
//    for learned positions (GPT-2; through the fused attention kernel), RoPE with grouped queries
//    (LLaMA) and ALiBi with a sliding window and the parallel residual; without the options the
//    later documents' logits differ (so the check can fail);
//  - selective and full recomputation give the loss and gradients of none;
//  - eod_mask_loss: exactly the positions whose input is the end-of-document token are ignored,
//    and the loss is the mean of -log softmax over the others, computed from the full logits
//    (also through the chunked loss);
//  - TP 2 and 4, with and without sequence parallelism, equal TP 1 (loss, logits, gradients);
//  - RoBERTa's full-sentence packs (bidirectional, key padding at the end, documents ending with
//    </s>): with the position table zeroed (the positions would differ alone) each document's
//    logits equal it run alone, and differ without the mask; TP 2 equals TP 1.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "framework/models/gpt.h"
#include "recipes/gpt/gpt_task.h"
#include "tests/lib/gpt_tp_check.h"
#include "tests/lib/tensor_compare.h"
#include "tests/lib/tiny_bert.h"
#include "tests/lib/tiny_gpt.h"
#include "tests/lib/tp_test.h"
#include "tests/mpi_test_env.h"

namespace braid {
namespace {
using testing::RelDiff;
using testing::Solo;

constexpr int64_t kEod = 249;  // the last id, as GPT-2's <|endoftext|>

GptConfig WithDocuments(GptConfig c, bool on = true) {
  c.eod = kEod;
  c.reset_position_ids = c.reset_attention_mask = c.eod_mask_loss = on;
  return c;
}

GptConfig Gpt2() { return WithDocuments(testing::TinyGptConfig(32, 64, 32)); }

GptConfig Llama() { return WithDocuments(testing::TinyLlamaConfig(8, 4)); }

GptConfig AlibiWindow() {
  GptConfig c = testing::TinyGptConfig(48, 96, 32);
  c.block.heads = 4;
  c.position = Position::kAlibi;
  c.sliding_window = 7;
  c.block.parallel_residual = true;
  return WithDocuments(c);
}

// Three rows of 21 tokens (GptBatch rows: tokens are the first 20). Documents of the token part:
// row 0: 6, 9, 5 tokens (each ending in EOD); row 1: one of 20 (no EOD); row 2: a lone EOD, then
// 12, then 7 cut by the sample's end.
torch::Tensor PackedRows() {
  torch::manual_seed(21);
  torch::Tensor rows = torch::randint(0, kEod, {3, 21}, torch::kLong);
  for (auto [r, p] : std::vector<std::pair<int, int>>{{0, 5}, {0, 14}, {0, 19}, {2, 0}, {2, 12}})
    rows[r][p] = kEod;
  return rows;
}

TEST(DocumentMask, SpansAndPositions) {
  torch::Tensor t =
      torch::tensor(std::vector<int64_t>{1, kEod, 2, 3, kEod, 4, 5, kEod}).view({1, 8});
  torch::Tensor two = torch::cat({t, torch::full({1, 8}, 7, torch::kLong)}, 0);
  DocumentSpans d = DocumentSpansOf(two, kEod);
  ASSERT_EQ(d.samples.size(), 2u);
  using Spans = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(d.samples[0], (Spans{{0, 2}, {2, 5}, {5, 8}}));  // a final EOD opens nothing
  EXPECT_EQ(d.samples[1], (Spans{{0, 8}}));
  EXPECT_FALSE(d.OneEach());
  torch::Tensor pos = DocumentPositions(d, 8, torch::kCPU);
  EXPECT_TRUE(torch::equal(pos[0], torch::tensor({0, 1, 0, 1, 2, 0, 1, 2}, torch::kLong)));
  EXPECT_TRUE(torch::equal(pos[1], torch::arange(8, torch::kLong)));
}

void ExpectPackedEqualsAlone(const GptConfig& c, const char* what) {
  SCOPED_TRACE(what);
  GptModel model(TpEnv{Solo(), 5}, c);
  GptModel plain(TpEnv{Solo(), 5}, WithDocuments(c, false));  // same weights (same seed)
  model.to(torch::kDouble), plain.to(torch::kDouble);
  model.eval(), plain.eval();
  TpRng rng(1, 0, 0);
  torch::Tensor tokens = PackedRows().narrow(1, 0, 20);
  torch::Tensor packed = model.FullLogits(tokens, rng);
  torch::Tensor crossing = plain.FullLogits(tokens, rng);
  const DocumentSpans d = DocumentSpansOf(tokens, kEod);
  int documents = 0;
  for (size_t r = 0; r < d.samples.size(); ++r) {
    for (const auto& [begin, end] : d.samples[r]) {
      torch::Tensor alone = model.FullLogits(tokens[r].slice(0, begin, end).unsqueeze(0), rng)[0];
      torch::Tensor got = packed[r].slice(0, begin, end);
      EXPECT_LT(RelDiff(got, alone), 1e-9) << "row " << r << " document at " << begin;
      if (begin > 0) {  // a later document: attending across the boundary changes it
        EXPECT_GT(RelDiff(crossing[r].slice(0, begin, end), alone), 1e-3)
            << "row " << r << " document at " << begin << ": the mask made no difference";
      }
      ++documents;
    }
  }
  EXPECT_EQ(documents, 7);
}

TEST(DocumentMask, PackedLogitsEqualEachDocumentAlone) {
  ExpectPackedEqualsAlone(Gpt2(), "learned positions, fused attention");
  ExpectPackedEqualsAlone(Llama(), "rope, grouped queries");
  ExpectPackedEqualsAlone(AlibiWindow(), "alibi, sliding window, parallel residual");
}

std::pair<double, std::map<std::string, torch::Tensor>> LossAndGrads(const GptConfig& c) {
  GptModel model(TpEnv{Solo(), 9}, c);
  model.to(torch::kDouble);
  TpRng rng(1, 0, 0);
  GptBatch b = GptBatch::FromRows(PackedRows());
  torch::Tensor loss = model.Loss(b.tokens, b.labels, rng);
  loss.backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& p : model.named_parameters()) grads[p.key()] = p.value().grad().clone();
  return {loss.item<double>(), grads};
}

TEST(DocumentMask, RecomputationEqualsNone) {
  for (const GptConfig& base : {Gpt2(), Llama(), AlibiWindow()}) {
    auto [loss, grads] = LossAndGrads(base);
    for (Recompute r : {Recompute::kSelective, Recompute::kFull}) {
      GptConfig c = base;
      c.block.recompute = r;
      auto [l, g] = LossAndGrads(c);
      EXPECT_NEAR(l, loss, 1e-12);
      for (const auto& [name, grad] : grads) EXPECT_LT(RelDiff(g[name], grad), 1e-10) << name;
    }
  }
}

TEST(DocumentMask, LossSkipsExactlyTheEodInputs) {
  for (int64_t chunk : {0, 7}) {
    GptConfig c = Gpt2();
    c.output_chunk_tokens = chunk;
    GptModel model(TpEnv{Solo(), 3}, c);
    model.to(torch::kDouble);
    TpRng rng(1, 0, 0);
    GptBatch b = GptBatch::FromRows(PackedRows());
    torch::Tensor labels = model.LossLabels(b.tokens, b.labels);
    const torch::Tensor eod_inputs = b.tokens.eq(kEod);
    EXPECT_TRUE(torch::equal(labels.eq(-100), eod_inputs));
    EXPECT_TRUE(torch::equal(labels.masked_select(eod_inputs.logical_not()),
                             b.labels.masked_select(eod_inputs.logical_not())));
    torch::Tensor logp = torch::log_softmax(model.FullLogits(b.tokens, rng), -1);
    torch::Tensor nll = -logp.gather(-1, b.labels.unsqueeze(-1)).squeeze(-1);
    torch::Tensor keep = eod_inputs.logical_not().to(torch::kDouble);
    const double want = ((nll * keep).sum() / keep.sum()).item<double>();
    EXPECT_NEAR(model.Loss(b.tokens, b.labels, rng).item<double>(), want, 1e-10)
        << "chunk " << chunk;
    // The plain mean (all positions) differs: the check above can fail.
    EXPECT_GT(std::abs(nll.mean().item<double>() - want), 1e-6);
  }
}

TEST(DocumentMask, TpEqualsSerial) {
  const torch::Tensor rows = PackedRows();
  for (bool sp : {false, true}) {
    EXPECT_GT(testing::ExpectGptTpEqualsSerial(Gpt2(), {2, 4}, "gpt2 documents", sp, rows), 0);
    EXPECT_GT(testing::ExpectGptTpEqualsSerial(Llama(), {2, 4}, "llama documents", sp, rows), 0);
    EXPECT_GT(testing::ExpectGptTpEqualsSerial(AlibiWindow(), {2, 4}, "alibi documents", sp, rows),
              0);
  }
}

constexpr int64_t kSep = 2;  // RoBERTa's </s>

BertConfig Roberta(bool documents) {
  BertConfig c = testing::TinyBertConfig();
  c.binary_head = false;
  c.document_sep = documents ? kSep : -1;
  return c;
}

// Three full-sentence packs of 16: documents of 5, 6 and 3 tokens (each ending in </s>) then 2
// pads; one of 12 then 4 pads; 5 and 11 with no padding.
struct Packs {
  torch::Tensor ids, types, padding;
};
Packs RobertaPacks() {
  torch::manual_seed(5);
  Packs p;
  p.ids = torch::randint(3, 250, {3, 16}, torch::kLong);
  for (auto [r, at] :
       std::vector<std::pair<int, int>>{{0, 4}, {0, 10}, {0, 13}, {1, 11}, {2, 4}, {2, 15}})
    p.ids[r][at] = kSep;
  p.types = torch::zeros({3, 16}, torch::kLong);
  p.padding = torch::zeros({3, 16}, torch::kBool);
  p.padding[0].slice(0, 14, 16).fill_(true);
  p.padding[1].slice(0, 12, 16).fill_(true);
  p.ids.masked_fill_(p.padding, 1);  // <pad>
  return p;
}

std::shared_ptr<BertModel> RobertaModel(std::shared_ptr<Communicator> tp, bool documents) {
  auto m = std::make_shared<BertModel>(TpEnv{tp, 13}, Roberta(documents));
  m->to(torch::kDouble);
  m->eval();
  torch::NoGradGuard no_grad;
  for (auto& p : m->named_parameters())
    if (p.key() == "position_embeddings") p.value().zero_();
  return m;
}

TEST(DocumentMask, RobertaPackedEqualsEachDocumentAlone) {
  auto model = RobertaModel(Solo(), true), plain = RobertaModel(Solo(), false);
  TpRng rng(1, 0, 0);
  const Packs p = RobertaPacks();
  torch::Tensor packed = model->Forward(p.ids, p.types, p.padding, rng).mlm_logits;
  torch::Tensor crossing = plain->Forward(p.ids, p.types, p.padding, rng).mlm_logits;
  const DocumentSpans d = DocumentSpansOf(p.ids, kSep, p.padding);
  using Spans = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(d.samples[0], (Spans{{0, 5}, {5, 11}, {11, 16}}));  // the pads join the last
  EXPECT_EQ(d.samples[1], (Spans{{0, 16}}));
  EXPECT_EQ(d.samples[2], (Spans{{0, 5}, {5, 16}}));
  int documents = 0;
  for (size_t r = 0; r < d.samples.size(); ++r) {
    for (const auto& [begin, span_end] : d.samples[r]) {
      const int64_t end =
          begin + p.padding[r].slice(0, begin, span_end).logical_not().sum().item<int64_t>();
      torch::Tensor ids = p.ids[r].slice(0, begin, end).unsqueeze(0);
      torch::Tensor alone =
          model->Forward(ids, torch::zeros_like(ids), torch::zeros(ids.sizes(), torch::kBool), rng)
              .mlm_logits[0];
      EXPECT_LT(RelDiff(packed[r].slice(0, begin, end), alone), 1e-9)
          << "row " << r << " document at " << begin;
      if (d.samples[r].size() > 1) {  // attending across the boundary (both ways) changes it
        EXPECT_GT(RelDiff(crossing[r].slice(0, begin, end), alone), 1e-3)
            << "row " << r << " document at " << begin << ": the mask made no difference";
      }
      ++documents;
    }
  }
  EXPECT_EQ(documents, 6);
}

TEST(DocumentMask, RobertaTpEqualsSerial) {
  const Packs p = RobertaPacks();
  TpRng rng(1, 0, 0);
  torch::Tensor serial =
      RobertaModel(Solo(), true)->ChunkForward(0, p.ids, p.types, p.padding, {}, rng);
  auto layout = ParallelLayout::Create(testing::g_runtime->world(), 2);
  ASSERT_TRUE(layout.ok());
  torch::Tensor tp2 =
      RobertaModel(layout->tp, true)->ChunkForward(0, p.ids, p.types, p.padding, {}, rng);
  EXPECT_LT(RelDiff(tp2, serial), 1e-9);
}

}  // namespace
}  // namespace braid
