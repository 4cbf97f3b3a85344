// Who reads a key (recipes/family.h, Family::keys): a key only other families read, set away from
// its default, is refused by ResolveRun naming it, the families that read it and this recipe; a
// key the family reads is accepted; --print-config (FamilyConfigYaml) lists only the family's keys.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "absl/strings/str_split.h"
#include "recipes/registry.h"

namespace braid {
namespace {

// A minimal config of each family (no tokenizer: the vocabulary from model.vocab_size).
std::string BaseYaml(const std::string& family) {
  std::string y = "recipe: " + family +
                  "\nmodel:\n  num_layers: 2\n  hidden_size: 64\n  num_attention_heads: 4\n"
                  "  seq_length: 64\n  vocab_size: 1000\n";
  if (family == "roberta") y += "  binary_head: false\n";
  if (family == "t5" || family == "ul2") y += "data:\n  vocab_extra_ids: 100\n";
  if (family == "ul2") y += "  added_tokens: ['[NLU]', '[NLG]', '[S2S]']\n";
  return y;
}

// A value away from the default for every key some family reads and another does not.
const std::map<std::string, std::string>& NonDefault() {
  static const std::map<std::string, std::string> kValues = {
      {"model.binary_head", "false"},
      {"model.num_tokentypes", "3"},
      {"data.packing", "full_sentences"},
      {"data.dynamic_masking", "false"},
      {"data.mask_prob", "0.2"},
      {"data.max_predictions", "5"},
      {"data.short_seq_prob", "0.2"},
      {"data.whole_word_masking", "true"},
      {"model.decoder_num_layers", "1"},
      {"model.decoder_seq_length", "64"},
      {"model.relative_attention_num_buckets", "16"},
      {"model.relative_attention_max_distance", "64"},
      {"data.vocab_extra_ids", "120"},
      {"data.noise_density", "0.2"},
      {"data.mean_noise_span_length", "4"},
      {"model.pre_ln", "true"},
      {"model.scale_embedding", "true"},
      {"data.mask_ratio", "0.2"},
      {"data.poisson_lambda", "2"},
      {"data.mask_random", "0.2"},
      {"data.replace_length", "0"},
      {"data.permute_sentences", "0.5"},
      {"data.insert_ratio", "0.1"},
      {"data.rotate_ratio", "0.1"},
      {"data.languages", "[en_XX]"},
      {"model.position", "rope"},
      {"model.rope_theta", "500000"},
      {"model.num_query_groups", "2"},
      {"model.bias", "false"},
      {"model.sliding_window", "16"},
      {"model.parallel_residual", "true"},
      {"model.shared_input_norm", "true"},
      {"model.rotary_percent", "0.5"},
      {"model.embed_layernorm", "true"},
      {"model.hf_layout", "bloom"},
      {"data.reset_position_ids", "true"},
      {"data.reset_attention_mask", "true"},
      {"data.eod_mask_loss", "true"},
      {"data.fim_rate", "0.5"},
      {"data.fim_spm_rate", "0.25"},
      {"data.fim_tokens", "[a, b, c, d]"},
      {"data.fim_split_sample", "<file_sep>"},
      {"data.fim_fragment_rate", "0.25"},
      {"model.add_qkv_bias", "true"},
      {"model.num_experts", "4"},
      {"model.moe_top_k", "1"},
      {"model.moe_ffn_hidden_size", "64"},
      {"model.moe_layer_freq", "2"},
      {"model.moe_layer_pattern", "[1, 0]"},
      {"model.moe_shared_experts", "1"},
      {"model.moe_shared_expert_gate", "true"},
      {"model.moe_router_pre_softmax", "true"},
      {"model.moe_aux_loss_coeff", "0.01"},
      {"model.moe_z_loss_coeff", "0.001"},
      {"model.moe_capacity_factor", "1.25"},
      {"data.denoisers", "['R 3 0.15', 'S']"},
      {"data.denoiser_weights", "[1, 1]"},
  };
  return kValues;
}

absl::StatusOr<ResolvedRun> Resolve(const std::string& family,
                                    const std::vector<std::string>& sets) {
  absl::StatusOr<Config> c = LoadConfigFromString(BaseYaml(family), family + ".yaml", sets);
  if (!c.ok()) return c.status();
  return ResolveRun(*c, 1, true);
}

TEST(FamilyKeys, EveryFamilyKeyHasATestValue) {
  for (const std::string& key : ConfigKeyPaths()) {
    bool some = false, all = true;
    for (const Family* f : Families()) {
      const bool reads = FamilyReads(*f, key);
      some = some || reads;
      all = all && reads;
    }
    EXPECT_TRUE(some) << key << " is read by no family";
    if (!all) EXPECT_TRUE(NonDefault().count(key)) << key << ": add a non-default value above";
  }
}

TEST(FamilyKeys, AnotherFamilysKeyIsRefusedByName) {
  int refused = 0;
  for (const Family* f : Families()) {
    int of_this = 0;
    for (const auto& [key, value] : NonDefault()) {
      if (FamilyReads(*f, key)) continue;
      absl::StatusOr<ResolvedRun> run = Resolve(f->name(), {key + "=" + value});
      ASSERT_FALSE(run.ok()) << f->name() << " accepted " << key << "=" << value;
      const std::string msg(run.status().message());
      EXPECT_NE(msg.find("--set '" + key + "=" + value + "': " + key + ": read by "),
                std::string::npos)
          << msg;
      EXPECT_NE(msg.find("; this recipe is " + f->name()), std::string::npos) << msg;
      // The readers named are the families that read it, and only those.
      for (const Family* g : Families()) {
        const std::string named = msg.substr(msg.find("read by "));
        const std::string list = named.substr(8, named.find(';') - 8);
        const std::vector<std::string> readers = absl::StrSplit(list, ", ");
        const bool listed = std::find(readers.begin(), readers.end(), g->name()) != readers.end();
        EXPECT_EQ(listed, FamilyReads(*g, key)) << key << " / " << g->name() << ": " << msg;
      }
      ++of_this;
    }
    EXPECT_GT(of_this, 0) << f->name() << " reads every key";
    refused += of_this;
  }
  EXPECT_GT(refused, 40);
}

TEST(FamilyKeys, TheFamilysOwnKeysAreAccepted) {
  // One key each that the family reads, accepted outright.
  const std::map<std::string, std::string> own = {
      {"gpt", "model.position=rope"},
      {"bert", "data.mask_prob=0.2"},
      {"roberta", "data.packing=full_sentences"},
      {"t5", "data.noise_density=0.2"},
      {"bart", "data.mask_ratio=0.2"},
      {"ul2", "data.denoiser_weights=[1,1,1,1,1,1,2]"},
  };
  for (const Family* f : Families()) {
    ASSERT_TRUE(own.count(f->name())) << f->name();
    absl::StatusOr<ResolvedRun> run = Resolve(f->name(), {own.at(f->name())});
    EXPECT_TRUE(run.ok()) << f->name() << ": " << run.status();
    // Every key it reads is never refused as another family's.
    for (const auto& [key, value] : NonDefault()) {
      if (!FamilyReads(*f, key)) continue;
      absl::StatusOr<ResolvedRun> r = Resolve(f->name(), {key + "=" + value});
      if (!r.ok()) EXPECT_EQ(r.status().message().find("read by"), std::string::npos) << r.status();
    }
  }
}

// The key paths a YAML listing of the config holds (sections at column 0, keys indented by 2).
std::set<std::string> ListedKeys(const std::string& yaml) {
  std::set<std::string> out;
  std::string section;
  for (absl::string_view line : absl::StrSplit(yaml, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    if (line.substr(0, 2) == "  ") {
      out.insert(section + "." + std::string(line.substr(2, colon - 2)));
    } else {
      section = std::string(line.substr(0, colon));
      if (colon + 1 < line.size()) out.insert(section), section.clear();  // a top-level value
    }
  }
  return out;
}

TEST(FamilyKeys, PrintConfigListsOnlyTheFamilysKeys) {
  const std::map<std::string, std::vector<std::string>> must = {
      {"gpt", {"model.position", "model.num_query_groups"}},
      {"bert", {"model.binary_head", "data.mask_prob"}},
      {"roberta", {"data.packing"}},
      {"t5", {"model.relative_attention_num_buckets", "data.noise_density"}},
      {"bart", {"data.poisson_lambda", "model.pre_ln"}},
      {"ul2", {"data.denoisers", "model.relative_attention_num_buckets"}},
  };
  for (const Family* f : Families()) {
    absl::StatusOr<ResolvedRun> run = Resolve(f->name(), {});
    ASSERT_TRUE(run.ok()) << run.status();
    const std::set<std::string> listed = ListedKeys(FamilyConfigYaml(*f, run->config, &run->sizes));
    EXPECT_TRUE(listed.count("model.hidden_size") && listed.count("train.lr") &&
                listed.count("data.paths") && listed.count("seed"))
        << f->name();
    for (const std::string& key : must.at(f->name())) EXPECT_TRUE(listed.count(key)) << key;
    for (const auto& [key, value] : NonDefault())
      EXPECT_EQ(listed.count(key) == 1, FamilyReads(*f, key)) << f->name() << " " << key;
    // Every key listed is a real key.
    const std::vector<std::string> all = ConfigKeyPaths();
    for (const std::string& key : listed)
      EXPECT_NE(std::find(all.begin(), all.end(), key), all.end()) << key;
  }
}

}  // namespace
}  // namespace braid
