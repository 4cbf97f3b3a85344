// Pipeline parallelism for a decoder (LLaMA's options), the encoder (BERT) and encoder-decoder (T5
// v1.1, the original T5 with its tied output, BART, mBART) models against the whole model (PP = 1),
// in fp64, under mpirun with 4 ranks (PP 2 x DP 2, PP 4 with 1F1B, all-forward-all-backward and
// interleaved V = 2, TP 2 x PP 2) and with 8 (TP 2 x PP 2 x DP 2, also interleaved, and PP 4 x DP
// 2): the step's loss and every parameter's gradient (gathered over TP, tied copies summed over the
// embedding group, averaged over DP) equal the whole model's forward/backward of the same
// micro-batches within 1e-6 relative. The encoder-decoder models have 3 + 5 (or 5 + 3) layers, so
// that a stage holds the encoder's end and the decoder's start; every parameter of the whole model
// is held by exactly one stage (the tied copies apart).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

#include "absl/strings/str_cat.h"
#include "framework/dist/layout.h"
#include "framework/models/bart.h"
#include "framework/models/bert.h"
#include "framework/models/gpt.h"
#include "framework/models/t5.h"
#include "framework/train/pipeline.h"
#include "recipes/bert/bert_batch.h"
#include "recipes/bert/bert_task.h"
#include "recipes/gpt/gpt_task.h"
#include "recipes/seq2seq/seq2seq_batch.h"
#include "recipes/seq2seq/seq2seq_task.h"
#include "tests/lib/synthetic_source.h"
#include "tests/lib/tensor_compare.h"
#include "tests/lib/tp_test.h"
#include "tests/mpi_test_env.h"

namespace braid {
namespace {
using testing::FullGrads;
using testing::g_runtime;
using testing::RelDiff;
using testing::Solo;
using testing::SyntheticSource;

constexpr int64_t kSeq = 16, kDec = 8, kMicro = 2, kVocab = 250, kPadded = 256;

BlockConfig Block() {
  BlockConfig b;
  b.hidden = 32;
  b.heads = 4;
  b.ffn = 64;
  b.hidden_dropout = b.attention_dropout = 0;
  return b;
}

// BERT rows: ids from the synthetic stream, two segments, sample i padded at its last i % 4
// positions, every third real position predicted, sentence order i % 2.
torch::Tensor BertRows(int64_t first, int64_t n) {
  const BertRow r(kSeq);
  SyntheticSource source(kSeq);
  torch::Tensor rows = torch::full({n, r.length()}, -100, torch::kLong);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = first + i;
    int64_t* row = rows[i].data_ptr<int64_t>();
    source.Get(s, row + r.ids());
    for (int64_t k = 0; k < kSeq; ++k) {
      const bool pad = k >= kSeq - s % 4;
      row[r.types() + k] = k >= kSeq / 2;
      row[r.padding() + k] = pad;
      if (!pad && (k + s) % 3 == 0) row[r.labels() + k] = (row[r.ids() + k] * 5 + 1) % 200;
    }
    row[r.sop()] = s % 2;
  }
  return rows;
}

// Encoder-decoder rows: inputs and targets from the synthetic stream, sample i's input padded at
// its last i % 4 positions and its labels at the last i % 3; BART's noised field every other
// target.
torch::Tensor Seq2SeqRows(int64_t first, int64_t n, bool noised) {
  const Seq2SeqRow r(kSeq, kDec, noised);
  SyntheticSource source(kSeq + kDec + 1);
  std::vector<int64_t> stream(kSeq + kDec + 1);
  torch::Tensor rows = torch::zeros({n, r.length()}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = first + i;
    source.Get(s, stream.data());
    std::vector<int64_t> inputs(stream.begin(), stream.begin() + kSeq - s % 4);
    std::vector<int64_t> targets(stream.begin() + kSeq, stream.begin() + kSeq + kDec - s % 3);
    int64_t* row = rows[i].data_ptr<int64_t>();
    WriteSeq2SeqRow(r, inputs, targets, 0, row);
    if (noised)
      for (int64_t k = 0; k < kDec; k += 2) row[r.noised() + k] = 1;
  }
  return rows;
}

// A model under test: its layer count (as the pipeline splits them), a task over the model built
// for a stage plan (empty: the whole model), and its micro-batches' rows.
struct Family {
  std::string name;
  int64_t layers;
  std::function<std::unique_ptr<TrainTask>(const TpEnv&, const StagePlan&)> task;
  std::function<torch::Tensor(int64_t first, int64_t n)> rows;
};

template <class Model, class Config>
std::unique_ptr<TrainTask> Seq2Seq(const TpEnv& env, Config c, const StagePlan& plan,
                                   int64_t chunk_tokens, bool noised) {
  c.stage = plan;
  auto model = std::make_shared<Model>(env, c);
  model->to(torch::kDouble);
  return std::make_unique<Seq2SeqTask<Model>>(model, kSeq, kDec, env.tp, chunk_tokens, noised);
}

std::vector<Family> Families() {
  std::vector<Family> out;
  // LLaMA's options (RoPE, GQA, SwiGLU, RMSNorm, untied); pipeline_test covers the GPT family
  // further.
  out.push_back({"llama", 8,
                 [](const TpEnv& env, const StagePlan& plan) -> std::unique_ptr<TrainTask> {
                   GptConfig c;
                   c.block = Block();
                   c.block.kv_groups = 2;
                   c.block.activation = Activation::kSwiglu;
                   c.block.norm = NormType::kRmsNorm;
                   c.block.bias = false;
                   c.block.rope_theta = 10000;
                   c.position = Position::kRope;
                   c.tie_embeddings = false;
                   c.layers = 8;
                   c.max_positions = kSeq;
                   c.vocab_size = kVocab;
                   c.padded_vocab = kPadded;
                   c.stage = plan;
                   auto model = std::make_shared<GptModel>(env, c);
                   model->to(torch::kDouble);
                   return std::make_unique<GptTask>(model, kSeq);
                 },
                 [](int64_t first, int64_t n) {
                   SyntheticSource source(kSeq + 1);
                   torch::Tensor rows = torch::empty({n, kSeq + 1}, torch::kLong);
                   for (int64_t i = 0; i < n; ++i)
                     source.Get(first + i, rows[i].data_ptr<int64_t>());
                   return rows;
                 }});
  out.push_back({"bert", 8,
                 [](const TpEnv& env, const StagePlan& plan) -> std::unique_ptr<TrainTask> {
                   BertConfig c;
                   c.block = Block();
                   c.block.activation = Activation::kGelu;
                   c.layers = 8;
                   c.max_positions = kSeq;
                   c.vocab_size = kVocab;
                   c.padded_vocab = kPadded;
                   c.stage = plan;
                   auto model = std::make_shared<BertModel>(env, c);
                   model->to(torch::kDouble);
                   return std::make_unique<BertTask>(model, kSeq, env.tp);
                 },
                 BertRows});
  for (bool tied : {false, true}) {
    // T5 v1.1 (gated GELU, untied output) and the original T5 (tied output, through the chunked
    // loss).
    out.push_back({tied ? "t5 (tied, chunked loss)" : "t5 v1.1", 8,
                   [tied](const TpEnv& env, const StagePlan& plan) {
                     T5Config c;
                     c.block = Block();
                     c.block.norm = NormType::kRmsNorm;
                     c.block.activation = tied ? Activation::kRelu : Activation::kGegluTanh;
                     c.encoder_layers = 3;
                     c.decoder_layers = 5;
                     c.vocab_size = kVocab;
                     c.padded_vocab = kPadded;
                     c.num_buckets = 8;
                     c.max_distance = 16;
                     c.tie_embeddings = tied;
                     return Seq2Seq<T5Model>(env, c, plan, tied ? 5 : 0, false);
                   },
                   [](int64_t first, int64_t n) { return Seq2SeqRows(first, n, false); }});
  }
  for (bool mbart : {false, true}) {
    // BART (post-LN, 5 + 3 layers) and mBART (pre-LN with final norms, scaled embeddings, 3 + 5).
    out.push_back({mbart ? "mbart" : "bart", 8,
                   [mbart](const TpEnv& env, const StagePlan& plan) {
                     BartConfig c;
                     c.block = Block();
                     c.block.activation = Activation::kGelu;
                     c.block.pre_ln = mbart;
                     c.encoder_layers = mbart ? 3 : 5;
                     c.decoder_layers = mbart ? 5 : 3;
                     c.max_positions = kSeq;
                     c.vocab_size = kVocab;
                     c.padded_vocab = kPadded;
                     c.scale_embedding = mbart;
                     return Seq2Seq<BartModel>(env, c, plan, 0, true);
                   },
                   [](int64_t first, int64_t n) { return Seq2SeqRows(first, n, true); }});
  }
  return out;
}

struct Case {
  int tp, pp, v;
  PipelineSchedule schedule;
};

TEST(PipelineFamilies, GradientsEqualTheWholeModel) {
  const int world = g_runtime->world_size();
  if (world != 4 && world != 8) GTEST_SKIP() << "needs 4 or 8 ranks";
  // DP is what TP x PP leaves of the world.
  const std::vector<Case> cases =
      world == 4 ? std::vector<Case>{{1, 2, 1, PipelineSchedule::k1F1B},
                                     {1, 4, 1, PipelineSchedule::k1F1B},
                                     {1, 4, 2, PipelineSchedule::k1F1B},
                                     {1, 4, 1, PipelineSchedule::kAllForwardAllBackward},
                                     {2, 2, 1, PipelineSchedule::k1F1B}}
                 : std::vector<Case>{{2, 2, 1, PipelineSchedule::k1F1B},
                                     {2, 2, 2, PipelineSchedule::k1F1B},
                                     {1, 4, 2, PipelineSchedule::k1F1B}};
  const int64_t m = 4;  // micro-batches per DP rank and step
  for (const Family& family : Families()) {
    for (const Case& c : cases) {
      const std::string what = absl::StrCat(family.name, ", tp ", c.tp, " x pp ", c.pp, " x v ",
                                            c.v, ", ", Name(c.schedule));
      auto layout = ParallelLayout::Create(g_runtime->world(), c.tp, c.pp);
      ASSERT_TRUE(layout.ok()) << layout.status();
      const int64_t dp = layout->dp_size;
      // The reference: the whole model on this rank, every micro-batch of every DP rank, the
      // mean of their losses (what DP-averaged pipeline steps compute).
      std::unique_ptr<TrainTask> ref = family.task(TpEnv{Solo(), 11}, StagePlan{});
      TpRng ref_rng(1, 0, 0);
      torch::Tensor ref_loss = torch::zeros({}, torch::kDouble);
      for (int64_t k = 0; k < m * dp; ++k) {
        Batch b{family.rows(k * kMicro, kMicro), {}};
        ref_loss = ref_loss + ref->Loss(b, ref_rng, nullptr) / static_cast<double>(m * dp);
      }
      ref_loss.backward();
      std::map<std::string, torch::Tensor> ref_grads;
      for (const auto& p : ref->model().named_parameters()) ref_grads[p.key()] = p.value().grad();

      auto split = SplitLayers(family.layers, {c.pp, c.v, {}, false, false});
      ASSERT_TRUE(split.ok()) << split.status();
      std::unique_ptr<TrainTask> task =
          family.task(TpEnv{layout->tp, 11}, PlanOfRank(*split, layout->pp_rank, c.pp));
      TpRng rng(1, layout->dp_rank, layout->tp_rank);
      std::map<std::string, double> metrics;
      PipelineStepOptions options;
      options.loss_scale = 1.0 / m;
      // DP rank d takes micro-batches d m .. d m + m - 1.
      auto batch_of = [&](int micro) {
        return Batch{family.rows((layout->dp_rank * m + micro) * kMicro, kMicro), {}};
      };
      auto step = RunPipelineStep(*task, ScheduleOf(c.schedule, c.pp, c.v, layout->pp_rank, m),
                                  batch_of, *layout->pp, rng, &metrics, options);
      ASSERT_TRUE(step.ok()) << what << ": " << step.status();
      EXPECT_EQ(step->losses, layout->last_stage() ? m : 0) << what;
      torch::Tensor tied = task->TiedEmbeddingCopy();
      if (tied.defined()) {
        ASSERT_TRUE(layout->embedding->AllReduce(tied.grad(), ReduceOp::kSum).ok());
      }
      torch::Tensor loss = torch::full({1}, step->loss_sum / m, torch::kDouble);
      ASSERT_TRUE(layout->pp->AllReduce(loss, ReduceOp::kSum).ok());
      ASSERT_TRUE(layout->dp->AllReduce(loss, ReduceOp::kAvg).ok());
      EXPECT_NEAR(loss.item<double>(), ref_loss.item<double>(), 1e-6 * ref_loss.item<double>())
          << what;
      std::string copy;  // the last stage's copy of a tied embedding (the first's counts)
      for (const auto& p : task->model().named_parameters()) {
        ASSERT_TRUE(p.value().grad().defined()) << what << ": no gradient for " << p.key();
        ASSERT_TRUE(layout->dp->AllReduce(p.value().grad(), ReduceOp::kAvg).ok());
        if (tied.defined() && !layout->first_stage() && p.value().is_same(tied)) copy = p.key();
      }
      // Each parameter's gradient; every one of the whole model's held once over the stages.
      int64_t held = 0;
      for (const auto& [name, g] : FullGrads(task->model(), *layout->tp)) {
        ASSERT_TRUE(ref_grads.count(name)) << what << ": " << name << " is not in the model";
        EXPECT_LT(RelDiff(g, ref_grads.at(name)), 1e-6) << what << ", grad of " << name;
        held += name != copy;
      }
      torch::Tensor count = torch::full({1}, static_cast<double>(held), torch::kDouble);
      ASSERT_TRUE(layout->pp->AllReduce(count, ReduceOp::kSum).ok());
      EXPECT_EQ(count.item<double>(), static_cast<double>(ref_grads.size())) << what;
    }
  }
}

}  // namespace
}  // namespace braid
