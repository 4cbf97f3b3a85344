// The training device and precision (train.device, train.precision), one rank:
//  - here (any machine): bf16 autocast on the CPU computes the GPT forward in bf16 (logits are
//    bf16, weights and gradients stay fp32) and agrees with fp32 to bf16 accuracy; a bf16 training
//    run follows the fp32 loss curve; autocast is off again after the scope; `train.device: cuda`
//    on a machine without CUDA is refused with the key named and a hint.
//  - on a GPU (skipped elsewhere): the GPT loss and every gradient on CUDA equal the CPU's in fp32;
//    a bf16 training run on CUDA follows the CPU fp32 curve and its checkpoint round-trips; the
//    NCCL backend on a communicator of one runs every collective and dtype with the right
//    results, on its own stream, ordered after the producer's stream and before the consumer's.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "framework/core/config.h"
#include "framework/dist/backend.h"
#include "framework/dist/layout.h"
#include "framework/models/gpt.h"
#include "framework/train/device.h"
#include "framework/train/trainer.h"
#include "recipes/gpt/gpt_task.h"
#include "tests/lib/synthetic_source.h"
#include "tests/lib/tensor_compare.h"
#include "tests/lib/tiny_gpt.h"
#include "tests/mpi_test_env.h"

namespace braid {
namespace {
using testing::g_runtime;
using testing::RelDiff;
using testing::SyntheticSource;

bool HaveGpu() { return torch::cuda::is_available(); }

GptConfig Tiny() { return testing::TinyGptConfig(64, 256); }

torch::Tensor Samples(int64_t n, int64_t len) {
  SyntheticSource src(len);
  torch::Tensor t = torch::empty({n, len}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) src.Get(i, t.data_ptr<int64_t>() + i * len);
  return t;
}

std::shared_ptr<Communicator> Solo() {
  auto c = g_runtime->world()->Split(g_runtime->rank(), 0, "solo");
  EXPECT_TRUE(c.ok());
  return *c;
}

Config TinyConfig(const std::string& device, const std::string& precision, int steps,
                  const std::string& run_dir = "") {
  std::vector<std::string> sets = {"train.device=" + device, "train.precision=" + precision,
                                   "train.train_steps=" + std::to_string(steps)};
  if (!run_dir.empty()) sets.push_back("logging.run_dir=" + run_dir);
  auto config = LoadConfigFromString(
      "recipe: gpt\nmodel: {num_layers: 2, hidden_size: 64, num_attention_heads: 4, "
      "seq_length: 16, hidden_dropout: 0.0, attention_dropout: 0.0}\n"
      "train: {lr: 3.0e-3, lr_warmup_steps: 2, eval_steps: 0, micro_batch_size: 8, "
      "clip_grad: 1.0}\n"
      "logging: {interval: 1000, tensorboard: false}\n",
      "tiny.yaml", sets);
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

absl::StatusOr<TrainResult> TrainTiny(const Config& config, const TrainOptions& o) {
  auto world = Solo();
  auto sizes = DeriveSizes(config, 1, 250);
  EXPECT_TRUE(sizes.ok()) << sizes.status();
  auto layout = ParallelLayout::Create(world, 1);
  EXPECT_TRUE(layout.ok());
  GptConfig g = Tiny();
  g.max_positions = 16;
  RecipeParts parts;
  auto model = std::make_shared<GptModel>(TpEnv{layout->tp, 99}, g);
  parts.task = std::make_unique<GptTask>(model, 16);
  parts.train = std::make_shared<SyntheticSource>(17);
  parts.vocab_size = 250;
  return Train(config, *sizes, *layout, std::move(parts), o);
}

TrainOptions NoFiles() {
  TrainOptions o;
  o.save_final = false;
  o.checkpoints = false;
  o.keep_final_weights = true;
  return o;
}

// Forward and backward of the tiny GPT on `device`, optionally under bf16 autocast: the loss,
// the logits, and every gradient (on the CPU).
struct Pass {
  double loss;
  torch::Tensor logits;
  std::map<std::string, torch::Tensor> grads;
};
Pass RunPass(torch::Device device, bool bf16) {
  auto tp = Solo();
  auto model = std::make_shared<GptModel>(TpEnv{tp, 7}, Tiny());
  model->to(device);
  TpRng rng(1, 0, 0, device);
  torch::Tensor samples = Samples(4, 21).to(device);
  Pass p;
  torch::Tensor loss;
  {
    AutocastScope amp(device.type(), bf16);
    p.logits = model->FullLogits(samples.narrow(1, 0, 20), rng).detach().cpu();
    GptBatch b = GptBatch::FromRows(samples);
    loss = model->Loss(b.tokens, b.labels, rng);
  }
  EXPECT_EQ(loss.scalar_type(), torch::kFloat);  // the cross entropy works in fp32
  loss.backward();
  p.loss = loss.item<double>();
  for (const auto& kv : model->named_parameters()) {
    EXPECT_EQ(kv.value().scalar_type(), torch::kFloat) << kv.key();
    EXPECT_EQ(kv.value().grad().scalar_type(), torch::kFloat) << kv.key();
    p.grads[kv.key()] = kv.value().grad().cpu();
  }
  return p;
}

TEST(Device, Bf16AutocastOnCpuIsBf16AndCloseToFp32) {
  Pass fp32 = RunPass(torch::kCPU, false);
  Pass bf16 = RunPass(torch::kCPU, true);
  EXPECT_EQ(fp32.logits.scalar_type(), torch::kFloat);
  EXPECT_EQ(bf16.logits.scalar_type(), torch::kBFloat16);  // the matmuls really ran in bf16
  const double logit_diff = RelDiff(bf16.logits, fp32.logits);
  EXPECT_GT(logit_diff, 0.0);
  EXPECT_LT(logit_diff, 3e-2);  // bf16 has 8 bits of mantissa: ~0.4% per rounding
  EXPECT_NEAR(bf16.loss, fp32.loss, 1e-2 * fp32.loss);
  for (const auto& [name, g] : fp32.grads) {
    EXPECT_LT(RelDiff(bf16.grads[name], g), 0.1) << name;
  }
}

TEST(Device, AutocastScopeRestoresAndNests) {
  torch::Tensor a = torch::randn({8, 8});
  {
    AutocastScope outer(torch::kCPU, true);
    EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kBFloat16);
    { AutocastScope off(torch::kCPU, false); }  // a disabled scope changes nothing
    EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kFloat);
}

TEST(Device, Bf16TrainingFollowsFp32OnCpu) {
  auto fp32 = TrainTiny(TinyConfig("cpu", "fp32", 30), NoFiles());
  auto bf16 = TrainTiny(TinyConfig("cpu", "bf16", 30), NoFiles());
  ASSERT_TRUE(fp32.ok()) << fp32.status();
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  ASSERT_EQ(bf16->losses.size(), 30u);
  EXPECT_LT(bf16->losses.back(), bf16->losses.front() - 0.5);  // it learns (nats)
  for (size_t i = 0; i < 30; ++i) {
    EXPECT_NEAR(bf16->losses[i], fp32->losses[i], 0.03 * fp32->losses[i]) << "step " << i + 1;
  }
  for (const auto& [name, w] : bf16->final_weights) {
    EXPECT_EQ(w.scalar_type(), torch::kFloat) << name;  // fp32 master weights
  }
}

TEST(Device, CudaRefusedClearlyWithoutAGpu) {
  if (HaveGpu()) GTEST_SKIP() << "a GPU is visible";
  Config c = TinyConfig("cuda", "bf16", 1);
  auto d = ResolveTrainDevice(c, 0);
  ASSERT_FALSE(d.ok());
  const std::string msg(d.status().message());
  EXPECT_NE(msg.find("train.device"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  auto r = TrainTiny(c, NoFiles());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("train.device"), std::string::npos);
}

// ---- On a GPU ----

TEST(Device, CudaEqualsCpuInFp32) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  at::globalContext().setFloat32MatmulPrecision("highest");  // no TF32: compare fp32 with fp32
  Pass cpu = RunPass(torch::kCPU, false);
  Pass gpu = RunPass(torch::Device(torch::kCUDA, 0), false);
  EXPECT_NEAR(gpu.loss, cpu.loss, 1e-5 * cpu.loss);
  EXPECT_LT(RelDiff(gpu.logits, cpu.logits), 1e-4);
  for (const auto& [name, g] : cpu.grads) EXPECT_LT(RelDiff(gpu.grads[name], g), 1e-3) << name;
  Pass gpu_bf16 = RunPass(torch::Device(torch::kCUDA, 0), true);
  EXPECT_EQ(gpu_bf16.logits.scalar_type(), torch::kBFloat16);
  EXPECT_LT(RelDiff(gpu_bf16.logits, cpu.logits), 3e-2);
}

TEST(Device, CudaBf16TrainingFollowsCpuAndCheckpoints) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  auto cpu = TrainTiny(TinyConfig("cpu", "fp32", 30), NoFiles());
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  const std::string dir = (std::filesystem::temp_directory_path() / "braid_device_test").string();
  std::filesystem::remove_all(dir);
  TrainOptions o = NoFiles();
  o.checkpoints = true;
  o.save_final = true;
  auto gpu = TrainTiny(TinyConfig("cuda", "bf16", 30, dir), o);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  for (size_t i = 0; i < 30; ++i) {
    EXPECT_NEAR(gpu->losses[i], cpu->losses[i], 0.03 * cpu->losses[i]) << "step " << i + 1;
  }
  // Resume the GPU run from its last checkpoint for 5 more steps: it continues where it stopped.
  Config more = TinyConfig("cuda", "bf16", 35, dir);
  auto resumed = TrainTiny(more, o);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->start_step, 30);
  ASSERT_EQ(resumed->losses.size(), 5u);
  EXPECT_LT(resumed->losses.back(), gpu->losses.front() - 0.5);
  std::filesystem::remove_all(dir);
}

TEST(Nccl, CommunicatorOfOneOnTheGpu) {
  if (!HaveGpu() || !HaveNccl()) GTEST_SKIP() << "no GPU or no NCCL";
  auto cpu = dist_internal::MakeLocalCommunicator("one");
  auto nccl = dist_internal::MakeNcclCommunicator(*cpu);
  ASSERT_TRUE(nccl.ok()) << nccl.status();
  Communicator& c = **nccl;
  EXPECT_EQ(c.backend(), "nccl");
  const torch::Device gpu(torch::kCUDA, 0);
  for (auto dtype :
       {torch::kFloat, torch::kDouble, torch::kBFloat16, torch::kHalf, torch::kInt, torch::kLong}) {
    auto o = torch::TensorOptions().device(gpu).dtype(dtype);
    torch::Tensor x = torch::arange(1000, o);
    torch::Tensor want = x.clone();
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax}) {
      ASSERT_TRUE(c.AllReduce(x, op).ok());
      EXPECT_TRUE(torch::equal(x, want)) << c10::toString(dtype) << " " << ReduceOpName(op);
    }
    if (dtype != torch::kInt && dtype != torch::kLong) {
      ASSERT_TRUE(c.AllReduce(x, ReduceOp::kAvg).ok());
      EXPECT_TRUE(torch::equal(x, want)) << c10::toString(dtype) << " avg";
    }
    torch::Tensor gathered = torch::zeros({1000}, o);
    ASSERT_TRUE(c.AllGather(x, gathered).ok());
    EXPECT_TRUE(torch::equal(gathered, want)) << c10::toString(dtype) << " all_gather";
    torch::Tensor scattered = torch::zeros({1000}, o);
    ASSERT_TRUE(c.ReduceScatter(x, scattered, ReduceOp::kSum).ok());
    EXPECT_TRUE(torch::equal(scattered, want)) << c10::toString(dtype) << " reduce_scatter";
    ASSERT_TRUE(c.Broadcast(x, 0).ok());
    EXPECT_TRUE(torch::equal(x, want)) << c10::toString(dtype) << " broadcast";
  }
  // Stream handoff: the input is produced by a long chain of kernels on the compute stream and
  // the collective is issued at once; the output is read on the compute stream right after
  // Wait(). Without the event in each direction the copy would read a half-made input or the
  // sum would read the output before NCCL wrote it.
  auto o = torch::TensorOptions().device(gpu).dtype(torch::kFloat);
  torch::Tensor m = torch::randn({4096, 4096}, o) / 64.0;
  for (int round = 0; round < 3; ++round) {
    torch::Tensor in = torch::zeros({4096, 4096}, o);
    torch::Tensor acc = torch::eye(4096, o);
    for (int i = 0; i < 20; ++i) acc = torch::matmul(acc, m);  // ~2.7 TFLOP queued
    in.copy_(acc);
    torch::Tensor out = torch::zeros({4096 * 4096}, o);
    auto work = c.AllGatherAsync(in, out);
    ASSERT_TRUE(work.ok()) << work.status();
    ASSERT_TRUE((*work)->Wait().ok());
    // A gather over one rank is a copy: bit-equal when ordered right, stale zeros when not.
    EXPECT_TRUE(torch::equal(out.view({4096, 4096}), acc)) << "round " << round;
  }
  ASSERT_TRUE(c.Barrier().ok());
}

}  // namespace
}  // namespace braid
