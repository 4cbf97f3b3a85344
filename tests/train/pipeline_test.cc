// Pipeline parallelism against the whole model (PP = 1), under mpirun with 4 ranks, in fp64:
//  - GPT (learned positions, tied embeddings) and LLaMA (RoPE, GQA, SwiGLU, RMSNorm, untied), at
//    PP 2 x DP 2, PP 4, TP 2 x PP 2, with 1F1B, interleaved 1F1B (V = 2) and
//    all-forward-all-backward: the step's loss and every parameter's gradient (gathered over TP,
//    the tied copies summed over the embedding group, averaged over DP) equal one serial
//    forward/backward of the whole global batch within 1e-6 relative;
//  - 20 training steps through the trainer at PP 2 x DP 2 (interleaved) and TP 2 x PP 2 follow
//    the PP = 1 run's losses and gradient norms within 1e-5, and the tied embedding's two copies
//    (first and last stage) are bitwise equal at the end;
//  - a config the stages cannot run is refused by name before anything is built.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "framework/core/config.h"
#include "framework/core/status.h"
#include "framework/dist/layout.h"
#include "framework/models/gpt.h"
#include "framework/train/checkpoint.h"
#include "framework/train/pipeline.h"
#include "framework/train/safetensors.h"
#include "framework/train/trainer.h"
#include "recipes/gpt/gpt_task.h"
#include "recipes/registry.h"
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

constexpr int64_t kSeq = 16, kMicro = 2;

GptConfig Model(bool llama) {
  GptConfig c;
  c.layers = 8;
  c.max_positions = kSeq;
  c.vocab_size = 250;
  c.padded_vocab = 256;
  c.block.hidden = 32;
  c.block.heads = 4;
  c.block.ffn = 64;
  c.block.hidden_dropout = c.block.attention_dropout = 0;
  if (llama) {
    c.position = Position::kRope;
    c.block.rope_theta = 10000;
    c.block.kv_groups = 2;
    c.block.activation = Activation::kSwiglu;
    c.block.norm = NormType::kRmsNorm;
    c.block.bias = false;
    c.tie_embeddings = false;
  }
  return c;
}

// Rows [n, seq + 1] of the synthetic stream, samples first..first + n - 1.
torch::Tensor Rows(int64_t first, int64_t n) {
  SyntheticSource source(kSeq + 1);
  torch::Tensor rows = torch::empty({n, kSeq + 1}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) source.Get(first + i, rows[i].data_ptr<int64_t>());
  return rows;
}

struct Case {
  int tp, pp, v;
  PipelineSchedule schedule;
};

std::string Name(const Case& c) {
  return absl::StrCat("tp ", c.tp, " x pp ", c.pp, " x v ", c.v, ", ", Name(c.schedule));
}

TEST(Pipeline, GradientsEqualTheWholeModel) {
  if (g_runtime->world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  const std::vector<Case> cases = {
      {1, 2, 1, PipelineSchedule::k1F1B},
      {1, 2, 2, PipelineSchedule::k1F1B},
      {1, 4, 1, PipelineSchedule::k1F1B},
      {1, 4, 2, PipelineSchedule::k1F1B},
      {1, 4, 1, PipelineSchedule::kAllForwardAllBackward},
      {2, 2, 1, PipelineSchedule::k1F1B},
      {2, 2, 2, PipelineSchedule::k1F1B},
  };
  const int64_t m = 4;  // micro-batches per DP rank and step
  for (bool llama : {false, true}) {
    for (const Case& c : cases) {
      const std::string what = absl::StrCat(llama ? "llama" : "gpt", ", ", Name(c));
      auto layout = ParallelLayout::Create(g_runtime->world(), c.tp, c.pp);
      ASSERT_TRUE(layout.ok()) << layout.status();
      const int64_t global = m * kMicro * layout->dp_size;
      // The reference: the whole model on this rank, the whole global batch at once.
      GptConfig whole = Model(llama);
      auto ref = std::make_shared<GptModel>(TpEnv{Solo(), 11}, whole);
      ref->to(torch::kDouble);
      TpRng ref_rng(1, 0, 0);
      GptBatch all = GptBatch::FromRows(Rows(0, global));
      torch::Tensor ref_loss = ref->Loss(all.tokens, all.labels, ref_rng);
      ref_loss.backward();
      std::map<std::string, torch::Tensor> ref_grads;
      for (const auto& p : ref->named_parameters()) ref_grads[p.key()] = p.value().grad();

      auto split = SplitLayers(whole.layers, {c.pp, c.v, {}, false, false});
      ASSERT_TRUE(split.ok()) << split.status();
      GptConfig staged = whole;
      staged.stage = PlanOfRank(*split, layout->pp_rank, c.pp);
      auto model = std::make_shared<GptModel>(TpEnv{layout->tp, 11}, staged);
      model->to(torch::kDouble);
      GptTask task(model, kSeq);
      TpRng rng(1, layout->dp_rank, layout->tp_rank);
      std::map<std::string, double> metrics;
      PipelineStepOptions options;
      options.loss_scale = 1.0 / m;
      // DP rank d takes micro-batches d m .. d m + m - 1 of the global batch.
      auto batch_of = [&](int micro) {
        return Batch{Rows((layout->dp_rank * m + micro) * kMicro, kMicro), {}};
      };
      auto step = RunPipelineStep(task, ScheduleOf(c.schedule, c.pp, c.v, layout->pp_rank, m),
                                  batch_of, *layout->pp, rng, &metrics, options);
      ASSERT_TRUE(step.ok()) << what << ": " << step.status();
      EXPECT_EQ(step->losses, layout->last_stage() ? m : 0) << what;
      if (torch::Tensor tied = task.TiedEmbeddingCopy(); tied.defined()) {
        ASSERT_TRUE(layout->embedding->AllReduce(tied.grad(), ReduceOp::kSum).ok());
      }
      double loss = step->loss_sum / m;
      torch::Tensor t = torch::full({1}, loss, torch::kDouble);
      ASSERT_TRUE(layout->pp->AllReduce(t, ReduceOp::kSum).ok());
      ASSERT_TRUE(layout->dp->AllReduce(t, ReduceOp::kAvg).ok());
      EXPECT_NEAR(t.item<double>(), ref_loss.item<double>(), 1e-6 * ref_loss.item<double>())
          << what;
      for (const auto& p : model->named_parameters()) {
        ASSERT_TRUE(p.value().grad().defined()) << what << ": no gradient for " << p.key();
        ASSERT_TRUE(layout->dp->AllReduce(p.value().grad(), ReduceOp::kAvg).ok());
      }
      std::map<std::string, torch::Tensor> grads = FullGrads(*model, *layout->tp);
      size_t layers = 0;
      for (const auto& [name, g] : grads) {
        ASSERT_TRUE(ref_grads.count(name)) << what << ": " << name << " is not in the model";
        EXPECT_LT(RelDiff(g, ref_grads.at(name)), 1e-6) << what << ", grad of " << name;
        layers += name.rfind("h.", 0) == 0 && name.find(".ln_self.weight") != std::string::npos;
      }
      int64_t own = 0;
      for (const auto& ch : staged.stage.chunks) own += ch.num_layers;
      EXPECT_EQ(static_cast<int64_t>(layers), own) << what;
    }
  }
}

// The 8-layer tiny GPT trained `steps` steps at TP x PP x V (DP: the rest of the 4 ranks), fp64.
// `extra`: more key=value overrides; `o`: the trainer's options (default: no checkpoints, no
// final weights file). The final weights (this rank's stage, whole over TP) come back; the tied
// embedding's copies on the first and the last stage are checked bitwise equal.
absl::StatusOr<TrainResult> TrainTiny(int tp, int pp, int v, int steps,
                                      const std::vector<std::string>& extra = {},
                                      TrainOptions o = {false, true, "", false}) {
  std::vector<std::string> overrides = {"parallel.tensor_parallel_size=" + std::to_string(tp),
                                        "parallel.pipeline_parallel_size=" + std::to_string(pp),
                                        "parallel.virtual_pipeline_size=" + std::to_string(v),
                                        "train.train_steps=" + std::to_string(steps)};
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  auto config = LoadConfigFromString(
      "recipe: gpt\nmodel: {num_layers: 8, hidden_size: 32, num_attention_heads: 4, "
      "seq_length: 16, hidden_dropout: 0.0, attention_dropout: 0.0}\n"
      "train: {lr: 3.0e-3, lr_warmup_steps: 2, eval_steps: 0, clip_grad: 1.0, adam_eps: 1.0e-4, "
      "micro_batch_size: 2, global_batch_size: 16}\n"
      "parallel: {grad_bucket_mb: 0.05}\nlogging: {interval: 1000}\n",
      "tiny.yaml", overrides);
  BRAID_RETURN_IF_ERROR(config.status());
  BRAID_ASSIGN_OR_RETURN(DerivedSizes sizes, DeriveSizes(*config, 4, 250));
  BRAID_ASSIGN_OR_RETURN(ParallelLayout layout, ParallelLayout::Create(g_runtime->world(), tp, pp));
  GptConfig g = Model(false);
  BRAID_ASSIGN_OR_RETURN(auto split, SplitLayers(8, {pp, v, {}, false, false}));
  g.stage = PlanOfRank(split, layout.pp_rank, pp);
  auto model = std::make_shared<GptModel>(TpEnv{layout.tp, 99}, g);
  model->to(torch::kDouble);
  RecipeParts parts;
  parts.task = std::make_unique<GptTask>(model, kSeq);
  parts.train = std::make_shared<SyntheticSource>(kSeq + 1);
  parts.vocab_size = 250;
  o.keep_final_weights = true;
  BRAID_ASSIGN_OR_RETURN(TrainResult result, Train(*config, sizes, layout, std::move(parts), o));
  // The tied embedding's copies on the first and the last stage: bitwise equal.
  if (layout.first_stage() || layout.last_stage()) {
    torch::Tensor mine = result.final_weights.at("wte.weight").clone();
    torch::Tensor first = mine.clone();
    BRAID_RETURN_IF_ERROR(layout.embedding->Broadcast(first, 0));
    EXPECT_TRUE(torch::equal(mine, first)) << "tp " << tp << " pp " << pp << ": the copies differ";
  }
  return result;
}

TEST(Pipeline, TrainingFollowsTheWholeModel) {
  if (g_runtime->world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  const int steps = 20;
  auto serial = TrainTiny(1, 1, 1, steps);  // DP 4
  ASSERT_TRUE(serial.ok()) << serial.status();
  for (auto [tp, pp, v] : std::vector<std::tuple<int, int, int>>{{1, 2, 2}, {2, 2, 1}}) {
    auto got = TrainTiny(tp, pp, v, steps);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->losses.size(), serial->losses.size());
    for (int s = 0; s < steps; ++s) {
      EXPECT_NEAR(got->losses[s], serial->losses[s], 1e-5 * serial->losses[s])
          << "tp " << tp << " pp " << pp << " v " << v << ", step " << s + 1;
      EXPECT_NEAR(got->grad_norms[s], serial->grad_norms[s], 1e-5 * serial->grad_norms[s])
          << "tp " << tp << " pp " << pp << " v " << v << ", step " << s + 1;
    }
    EXPECT_LT(got->losses.back(), got->losses.front() - 0.2);  // it learns
  }
}

// Save at PP 2 x DP 2 (each stage writes its own layers), then resume at PP 1 (DP 4), PP 4 and
// TP 2 x PP 2: the continuation follows the uninterrupted PP = 1 run within 1e-5. The checkpoint's
// tensors are the saving run's weights bitwise, and final/model.safetensors holds every tensor of
// the whole model once.
TEST(Pipeline, CheckpointsLoadAtAnyLayout) {
  if (g_runtime->world_size() != 4) GTEST_SKIP() << "needs 4 ranks";
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / "braid_pipeline_checkpoint_test";
  if (g_runtime->rank() == 0) {
    fs::remove_all(root);
    fs::create_directories(root);
  }
  ASSERT_TRUE(g_runtime->world()->Barrier().ok());
  // The LR schedule spans 20 steps in every run (the first stops at 10).
  auto dirs = [&](const std::string& name) {
    return std::vector<std::string>{"checkpoint.dir=" + (root / name / "ckpt").string(),
                                    "logging.run_dir=" + (root / name).string(),
                                    "train.lr_decay_steps=20"};
  };
  auto reference = TrainTiny(1, 1, 1, 20, {"train.lr_decay_steps=20"});
  ASSERT_TRUE(reference.ok()) << reference.status();
  TrainOptions save{true, true, "", true};
  auto first = TrainTiny(1, 2, 1, 10, dirs("pp2"), save);
  ASSERT_TRUE(first.ok()) << first.status();
  const fs::path step10 = root / "pp2" / "ckpt" / "step_00000010";
  auto saved = ReadCheckpoint(step10.string());
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_TRUE(fs::exists(step10 / "pp1.tp0.safetensors"));
  for (const auto& [name, t] : first->final_weights) {
    ASSERT_TRUE(saved->tensors.count(ModelKey(name))) << name;
    EXPECT_TRUE(torch::equal(saved->tensors.at(ModelKey(name)), t)) << name;
  }
  if (g_runtime->rank() == 0) {  // EXPECT only: an early return here would leave the others
    auto final_file = ReadSafetensors((root / "pp2" / "final" / "model.safetensors").string());
    EXPECT_TRUE(final_file.ok()) << final_file.status();
    GptModel whole(TpEnv{LocalCommunicator("tp"), 1}, Model(false));  // Solo() is collective
    if (final_file.ok()) {
      EXPECT_EQ(final_file->tensors.size(), whole.named_parameters().size());
      for (const auto& p : whole.named_parameters()) {
        const bool present =
            final_file->tensors.count(p.key()) && saved->tensors.count(ModelKey(p.key()));
        EXPECT_TRUE(present) << p.key();
        if (present) {
          EXPECT_TRUE(
              torch::equal(final_file->tensors.at(p.key()), saved->tensors.at(ModelKey(p.key()))))
              << p.key();
        }
      }
    }
  }
  for (auto [tp, pp] : std::vector<std::pair<int, int>>{{1, 1}, {1, 4}, {2, 2}}) {
    const std::string name = absl::StrCat("resume_tp", tp, "_pp", pp);
    TrainOptions resume{false, true, step10.string(), true};
    auto got = TrainTiny(tp, pp, 1, 20, dirs(name), resume);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->losses.size(), 10u) << name;
    for (int s = 0; s < 10; ++s) {
      EXPECT_NEAR(got->losses[s], reference->losses[10 + s], 1e-5 * reference->losses[10 + s])
          << name << ", step " << 11 + s;
    }
  }
}

TEST(Pipeline, ConfigsTheStagesCannotRunAreRefused) {
  auto refused = [](const std::vector<std::string>& overrides, const std::string& recipe,
                    int64_t world) {
    auto config = LoadConfigFromString(
        "recipe: " + recipe +
            "\nmodel: {num_layers: 6, hidden_size: 32, num_attention_heads: 4, seq_length: 16, "
            "vocab_size: 250}\ntrain: {micro_batch_size: 2, global_batch_size: 12}\n",
        "p.yaml", overrides);
    EXPECT_TRUE(config.ok()) << config.status();
    auto run = ResolveRun(*config, world);
    return run.ok() ? std::string() : std::string(run.status().message());
  };
  EXPECT_NE(refused({"parallel.pipeline_parallel_size=4"}, "gpt", 4)
                .find("4 x 1 = 4 stages do not divide the 6 layers"),
            std::string::npos);
  EXPECT_NE(refused({"parallel.pipeline_parallel_size=3"}, "gpt", 4)
                .find("TP 1 x PP 3 = 3 does not divide the world size 4"),
            std::string::npos);
  EXPECT_NE(
      refused({"parallel.pipeline_parallel_size=2", "parallel.virtual_pipeline_size=2"}, "gpt", 2)
          .find("virtual_pipeline_size = 2 x 2 = 4 stages do not divide the 6 layers"),
      std::string::npos);
  // 12 / 2 = 6 micro-batches at DP 1 is not a multiple of PP 4 for interleaving: 8 layers make
  // the split itself work.
  EXPECT_NE(refused({"parallel.pipeline_parallel_size=4", "parallel.virtual_pipeline_size=2",
                     "model.num_layers=8"},
                    "gpt", 4)
                .find("a step has 6 micro-batches"),
            std::string::npos);
  // An encoder-decoder model's layers are counted encoder + decoder: 6 + 6 over 5 stages.
  EXPECT_NE(refused({"parallel.pipeline_parallel_size=5", "data.vocab_extra_ids=100"}, "t5", 5)
                .find("5 x 1 = 5 stages do not divide the 12 layers"),
            std::string::npos);
  EXPECT_EQ(refused({"parallel.pipeline_parallel_size=4"}, "bart", 4), "");
  EXPECT_NE(refused({"parallel.virtual_pipeline_size=2"}, "gpt", 2)
                .find("parallel.pipeline_parallel_size is 1"),
            std::string::npos);
  EXPECT_EQ(
      refused({"parallel.pipeline_parallel_size=2", "parallel.pipeline_layers=[2, 4]"}, "gpt", 2),
      "");
}

}  // namespace
}  // namespace braid
