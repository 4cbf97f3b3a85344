// The run log: MFU never reads above 100% (a ceiling measured in a slow moment is raised to the
// rate the model reached), and a losses.tsv that cannot be written is an error at the step.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "framework/core/config.h"
#include "framework/dist/communicator.h"
#include "framework/dist/layout.h"
#include "framework/train/run_log.h"

namespace braid {
namespace {

Config TestConfig(const std::string& run_dir) {
  auto c = LoadConfigFromString(
      "recipe: gpt\nmodel: {num_layers: 1, hidden_size: 8, num_attention_heads: 1, seq_length: 4}\n"
      "train: {train_steps: 4}\nlogging: {interval: 2, tensorboard: false}\n",
      "test.yaml", {"logging.run_dir=" + run_dir});
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

TEST(RunLog, MfuNeverAbove100Percent) {
  const std::string dir = ::testing::TempDir() + "/braid_run_log_mfu";
  std::filesystem::remove_all(dir);
  const Config config = TestConfig(dir);
  auto layout = ParallelLayout::Create(LocalCommunicator("world"), 1);
  ASSERT_TRUE(layout.ok());
  // 5 GFLOP a step in 1 s against a "measured" ceiling of 1 GFLOP/s: 500% before the fix.
  auto log = RunLog::Open(config, *layout, 0, 1000, 5e9, 1.0);
  ASSERT_TRUE(log.ok()) << log.status();
  StepResult r;
  r.loss = 2.0;
  r.grad_norm = 1.0;
  r.seconds = 1.0;
  ::testing::internal::CaptureStdout();
  ASSERT_TRUE((*log)->Step(1, r, 1e-3, 0).ok());
  ASSERT_TRUE((*log)->Step(2, r, 1e-3, 0).ok());
  const std::string out = ::testing::internal::GetCapturedStdout();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("MFU ([0-9.]+)%"))) << out;
  EXPECT_LE(std::stod(m[1]), 100.0) << out;
  EXPECT_NE(out.find("the ceiling is raised"), std::string::npos) << out;
}

TEST(RunLog, UnwritableLossesTsvIsAnErrorAtOnce) {
  const std::string dir = ::testing::TempDir() + "/braid_run_log_full";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::create_symlink("/dev/full", dir + "/losses.tsv");
  const Config config = TestConfig(dir);
  auto layout = ParallelLayout::Create(LocalCommunicator("world"), 1);
  ASSERT_TRUE(layout.ok());
  auto log = RunLog::Open(config, *layout, 0, 1000, 5e9, 100.0);
  ASSERT_TRUE(log.ok()) << log.status();
  StepResult r;
  absl::Status s = (*log)->Step(1, r, 1e-3, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("losses.tsv: cannot write"), std::string::npos) << s;
}

}  // namespace
}  // namespace braid
