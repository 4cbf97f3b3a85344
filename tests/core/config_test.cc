// Config: YAML -> typed, validated structs. Each malformed case asserts that the message names
// the file, the line (and column) and the key path.
#include "framework/core/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace braid {
namespace {
namespace fs = std::filesystem;

constexpr char kValid[] =
    "recipe: gpt\n"               // line 1
    "model:\n"                    // line 2
    "  num_layers: 2\n"           // line 3
    "  hidden_size: 64\n"         // line 4
    "  num_attention_heads: 4\n"  // line 5
    "  seq_length: 32\n"          // line 6
    "train:\n"                    // line 7
    "  micro_batch_size: 2\n"     // line 8
    "  lr: 1.0e-3\n";             // line 9

// The printed YAML without comments (which name where each value came from).
std::string ValuesOnly(const std::string& yaml) {
  std::string out, line;
  std::istringstream in(yaml);
  while (std::getline(in, line)) {
    if (line.rfind("#", 0) == 0) continue;
    size_t hash = line.find(" # ");
    if (hash != std::string::npos) line = line.substr(0, hash);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("braid_config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

  // Loads `text` as file `name` and returns the error message (fails the test if it loads).
  std::string ErrorOf(const std::string& text, const std::vector<std::string>& overrides = {},
                      const std::string& name = "recipe.yaml") {
    absl::StatusOr<Config> c = LoadConfig(Write(name, text), overrides);
    EXPECT_FALSE(c.ok()) << "expected an error for:\n" << text;
    return c.ok() ? "" : std::string(c.status().message());
  }

  // The message starts with "<dir>/<file>:<line>:<col>: <key>:".
  void ExpectNames(const std::string& msg, const std::string& file, int line,
                   const std::string& key) {
    std::string where = (dir_ / file).string() + ":" + std::to_string(line) + ":";
    EXPECT_NE(msg.find(where), std::string::npos) << "no '" << where << "' in: " << msg;
    EXPECT_NE(msg.find(key + ":"), std::string::npos) << "no key '" << key << "' in: " << msg;
  }

  fs::path dir_;
};

TEST_F(ConfigTest, ValidFileBindsTypedValuesAndDefaults) {
  absl::StatusOr<Config> c = LoadConfig(Write("ok.yaml", kValid));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->recipe, "gpt");
  EXPECT_EQ(c->model.num_layers, 2);
  EXPECT_EQ(c->model.hidden_size, 64);
  EXPECT_DOUBLE_EQ(c->train.lr, 1e-3);
  EXPECT_EQ(c->train.micro_batch_size, 2);
  EXPECT_EQ(c->parallel.tensor_parallel_size, 1);             // default
  EXPECT_EQ(c->train.lr_decay_style, LrDecayStyle::kCosine);  // default
  EXPECT_EQ(c->Where("model.num_layers"), (dir_ / "ok.yaml").string() + ":3:3: ");
  EXPECT_EQ(c->Where("seed"), "");  // default: no origin
}

TEST_F(ConfigTest, IncludeMergesBaseAndOverridesWin) {
  Write("base.yaml", kValid);
  std::string child = Write("child.yaml",
                            "include: base.yaml\n"
                            "model:\n"
                            "  num_layers: 6\n"
                            "data:\n"
                            "  paths: [a, b]\n"
                            "  weights: [0.3, 0.7]\n");
  absl::StatusOr<Config> c = LoadConfig(child, {"train.lr=5e-4", "model.hidden_size=128"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model.num_layers, 6);     // child over base
  EXPECT_EQ(c->model.seq_length, 32);    // kept from base
  EXPECT_EQ(c->model.hidden_size, 128);  // --set over both
  EXPECT_DOUBLE_EQ(c->train.lr, 5e-4);
  ASSERT_EQ(c->data.paths.size(), 2u);
  EXPECT_EQ(c->data.paths[1], "b");
  EXPECT_DOUBLE_EQ(c->data.weights[0], 0.3);
  EXPECT_NE(c->Where("model.seq_length").find("base.yaml:6:3"), std::string::npos);
  EXPECT_NE(c->Where("model.num_layers").find("child.yaml:3:3"), std::string::npos);
  EXPECT_NE(c->Where("train.lr").find("--set 'train.lr=5e-4'"), std::string::npos);
}

TEST_F(ConfigTest, PrintedConfigReloadsToTheSameValues) {
  absl::StatusOr<Config> c = LoadConfig(Write("ok.yaml", kValid), {"data.paths=[x, \"y z\"]"});
  ASSERT_TRUE(c.ok()) << c.status();
  std::string yaml = ConfigToYaml(*c);
  absl::StatusOr<Config> again = LoadConfig(Write("printed.yaml", yaml));
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << yaml;
  EXPECT_EQ(ValuesOnly(ConfigToYaml(*again)), ValuesOnly(yaml));
  EXPECT_EQ(again->data.paths, c->data.paths);
  EXPECT_DOUBLE_EQ(again->train.lr, c->train.lr);
  EXPECT_DOUBLE_EQ(again->model.layernorm_epsilon, c->model.layernorm_epsilon);
  EXPECT_EQ(again->model.num_layers, c->model.num_layers);
}

// ---- malformed configs: each names file, line and key ----

TEST_F(ConfigTest, Malformed01_YamlSyntaxError) {
  std::string msg = ErrorOf("recipe: gpt\nmodel:\n  num_layers: [1, 2\n  hidden_size: 4\n");
  EXPECT_NE(msg.find("YAML syntax error"), std::string::npos) << msg;
  EXPECT_NE(msg.find((dir_ / "recipe.yaml").string() + ":"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed02_UnknownKeySuggestsClosest) {
  std::string text = kValid;
  text.replace(text.find("num_layers"), 10, "num_layerz");
  std::string msg = ErrorOf(text);
  ExpectNames(msg, "recipe.yaml", 3, "model.num_layerz");
  EXPECT_NE(msg.find("unknown key"), std::string::npos);
  EXPECT_NE(msg.find("did you mean 'num_layers'"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed03_UnknownSection) {
  std::string msg = ErrorOf(std::string(kValid) + "trian:\n  lr: 1\n");
  ExpectNames(msg, "recipe.yaml", 10, "trian");
  EXPECT_NE(msg.find("did you mean 'train'"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed04_WrongTypeText) {
  std::string text = kValid;
  text.replace(text.find("num_layers: 2"), 13, "num_layers: two");
  std::string msg = ErrorOf(text);
  ExpectNames(msg, "recipe.yaml", 3, "model.num_layers");
  EXPECT_NE(msg.find("expected an integer, got 'two'"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed05_FloatForInteger) {
  std::string text = kValid;
  text.replace(text.find("num_layers: 2"), 13, "num_layers: 2.5");
  std::string msg = ErrorOf(text);
  ExpectNames(msg, "recipe.yaml", 3, "model.num_layers");
  EXPECT_NE(msg.find("whole number"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed06_MappingWhereScalarExpected) {
  std::string msg = ErrorOf(std::string(kValid) + "seed:\n  value: 3\n");
  ExpectNames(msg, "recipe.yaml", 11, "seed");
  EXPECT_NE(msg.find("got a mapping"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed07_SectionIsAScalar) {
  std::string msg = ErrorOf(std::string(kValid) + "parallel: 2\n");
  ExpectNames(msg, "recipe.yaml", 10, "parallel");
  EXPECT_NE(msg.find("expected a mapping"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed08_OutOfRange) {
  std::string text = kValid;
  text.replace(text.find("num_layers: 2"), 13, "num_layers: 0");
  std::string msg = ErrorOf(text);
  ExpectNames(msg, "recipe.yaml", 3, "model.num_layers");
  EXPECT_NE(msg.find("out of range [1, 1024]"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed09_NegativeFloatOutOfRange) {
  std::string msg = ErrorOf(std::string(kValid) + "  weight_decay: -0.1\n");
  ExpectNames(msg, "recipe.yaml", 10, "train.weight_decay");
  EXPECT_NE(msg.find("out of range"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed10_MissingRequiredKey) {
  std::string text = kValid;
  text.erase(text.find("  seq_length: 32\n"), 17);
  std::string msg = ErrorOf(text);
  ExpectNames(msg, "recipe.yaml", 3, "model.seq_length");  // the `model:` mapping starts at 3:3
  EXPECT_NE(msg.find("missing required key"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed11_BadEnumSuggests) {
  std::string msg = ErrorOf(std::string(kValid) + "  lr_decay_style: cosin\n");
  ExpectNames(msg, "recipe.yaml", 10, "train.lr_decay_style");
  EXPECT_NE(msg.find("did you mean 'cosine'"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed12_DuplicateKey) {
  std::string msg = ErrorOf(std::string(kValid) + "  lr: 2.0e-3\n");
  ExpectNames(msg, "recipe.yaml", 10, "lr");
  EXPECT_NE(msg.find("duplicate key (first set at " + (dir_ / "recipe.yaml").string() + ":9:3)"),
            std::string::npos)
      << msg;
}

TEST_F(ConfigTest, Malformed13_MissingIncludeFile) {
  std::string msg = ErrorOf(std::string("include: nowhere.yaml\n") + kValid);
  EXPECT_NE(msg.find((dir_ / "recipe.yaml").string() + ":1:10: include:"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("nowhere.yaml"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed14_IncludeCycle) {
  Write("a.yaml", "include: b.yaml\n");
  Write("b.yaml", "include: a.yaml\n");
  absl::StatusOr<Config> c = LoadConfig((dir_ / "a.yaml").string());
  ASSERT_FALSE(c.ok());
  std::string msg(c.status().message());
  EXPECT_NE(msg.find("include cycle"), std::string::npos) << msg;
  EXPECT_NE(msg.find((dir_ / "b.yaml").string() + ":1:10: include:"), std::string::npos) << msg;
}

TEST_F(ConfigTest, Malformed15_ErrorInIncludedFileNamesThatFile) {
  std::string text = kValid;
  text.replace(text.find("hidden_size: 64"), 15, "hidden_size: big");
  Write("base.yaml", text);
  std::string msg = ErrorOf("include: base.yaml\nseed: 7\n", {}, "child.yaml");
  ExpectNames(msg, "base.yaml", 4, "model.hidden_size");
}

TEST_F(ConfigTest, Malformed16_HeadsNotDivisibleByTp) {
  std::string msg = ErrorOf(std::string(kValid) + "parallel:\n  tensor_parallel_size: 3\n");
  ExpectNames(msg, "recipe.yaml", 5, "model.num_attention_heads");
  EXPECT_NE(msg.find("cannot be split across parallel.tensor_parallel_size = 3"), std::string::npos)
      << msg;
}

TEST_F(ConfigTest, Malformed16b_SequenceNotDivisibleForSequenceParallel) {
  std::string msg = ErrorOf(kValid, {"parallel.tensor_parallel_size=4",
                                     "parallel.sequence_parallel=true", "model.seq_length=30"});
  EXPECT_NE(msg.find("parallel.sequence_parallel: model.seq_length = 30 does not split over "
                     "parallel.tensor_parallel_size = 4 ranks"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  // Without sequence parallelism the same length is fine.
  EXPECT_TRUE(LoadConfig(Write("ok.yaml", kValid),
                         {"parallel.tensor_parallel_size=4", "model.seq_length=30"})
                  .ok());
}

TEST_F(ConfigTest, Malformed17_WrongTypeInList) {
  std::string msg = ErrorOf(std::string(kValid) + "data:\n  weights: [0.5, heavy]\n");
  ExpectNames(msg, "recipe.yaml", 11, "data.weights");
}

TEST_F(ConfigTest, Malformed18_BadOverrides) {
  std::string msg = ErrorOf(kValid, {"model.num_layerz=3"});
  EXPECT_NE(msg.find("--set 'model.num_layerz=3': model.num_layerz: unknown key"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("did you mean 'num_layers'"), std::string::npos) << msg;
  msg = ErrorOf(kValid, {"train.lr"});
  EXPECT_NE(msg.find("--set 'train.lr': expected section.key=value"), std::string::npos) << msg;
  msg = ErrorOf(kValid, {"train.lr=fast"});
  EXPECT_NE(msg.find("--set 'train.lr=fast': train.lr: expected a number"), std::string::npos)
      << msg;
}

TEST_F(ConfigTest, AllErrorsReportedAtOnce) {
  std::string text = kValid;
  text.replace(text.find("num_layers: 2"), 13, "num_layers: x");
  text += "  lrr: 1\n";
  std::string msg = ErrorOf(text);
  EXPECT_NE(msg.find("model.num_layers"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.lrr"), std::string::npos) << msg;
}

// ---- cross-field checks with the world size ----

TEST_F(ConfigTest, DerivedSizesAndVocabPadding) {
  absl::StatusOr<Config> c = LoadConfig(
      Write("ok.yaml", kValid),
      {"parallel.tensor_parallel_size=2", "train.global_batch_size=16", "model.vocab_size=50257"});
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<DerivedSizes> d = DeriveSizes(*c, 4);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->dp, 2);
  EXPECT_EQ(d->accumulation_steps, 4);  // 16 = 2 micro x 4 accumulation x 2 DP
  EXPECT_EQ(d->ffn_hidden_size, 256);
  EXPECT_EQ(d->padded_vocab_size, 50432);  // multiple of 128 x 2 = 256 (Megatron: 50257 -> 50432)
  EXPECT_EQ(PaddedVocabSize(50257, 128, 1), 50304);
  EXPECT_EQ(PaddedVocabSize(8192, 128, 4), 8192);
  EXPECT_EQ(PaddedVocabSize(30522, 128, 8), 30720);  // 30 x 1024
}

TEST_F(ConfigTest, WorldNotDivisibleByTp) {
  absl::StatusOr<Config> c =
      LoadConfig(Write("ok.yaml", std::string(kValid) + "parallel:\n  tensor_parallel_size: 2\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<DerivedSizes> d = DeriveSizes(*c, 3);
  ASSERT_FALSE(d.ok());
  std::string msg(d.status().message());
  ExpectNames(msg, "ok.yaml", 11, "parallel.tensor_parallel_size");
  EXPECT_NE(msg.find("does not divide the world size 3"), std::string::npos) << msg;
}

TEST_F(ConfigTest, GlobalBatchNotMicroTimesAccumulationTimesDp) {
  absl::StatusOr<Config> c =
      LoadConfig(Write("ok.yaml", std::string(kValid) + "  global_batch_size: 10\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<DerivedSizes> d = DeriveSizes(*c, 4);  // micro 2 x DP 4 = 8 does not divide 10
  ASSERT_FALSE(d.ok());
  std::string msg(d.status().message());
  ExpectNames(msg, "ok.yaml", 10, "train.global_batch_size");
  EXPECT_NE(msg.find("try 8 or 16"), std::string::npos) << msg;
}

}  // namespace
}  // namespace braid
