// The family registry (see registry.h). Adding a family: one line in Families().
#include "recipes/registry.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "recipes/bart/bart_family.h"
#include "recipes/bert/bert_family.h"
#include "recipes/gpt/gpt_family.h"
#include "recipes/t5/t5_family.h"
#include "recipes/ul2/ul2_family.h"

namespace braid {

const std::vector<const Family*>& Families() {
  static const std::vector<const Family*> kFamilies = {
      &GptFamily(), &BertFamily(), &RobertaFamily(), &T5Family(), &BartFamily(), &Ul2Family(),
  };
  return kFamilies;
}

absl::StatusOr<const Family*> FindFamily(const Config& config) {
  std::vector<std::string> names;
  for (const Family* f : Families()) {
    if (f->name() == config.recipe) return f;
    names.push_back(f->name());
  }
  const std::string guess = ClosestMatch(config.recipe, names);
  return absl::InvalidArgumentError(
      absl::StrCat(config.Where("recipe"), "recipe: '", config.recipe,
                   "' is not a model family of this build (", absl::StrJoin(names, ", "), ").",
                   guess.empty() ? "" : absl::StrCat(" HINT: did you mean '", guess, "'?")));
}

absl::StatusOr<const Family*> FindFamilyByHfType(const std::string& model_type) {
  std::vector<std::string> types;
  for (const Family* f : Families()) {
    if (f->hf() == nullptr) continue;
    if (f->hf()->Reads(model_type)) return f;
    types.push_back(f->hf()->model_type());
  }
  return absl::UnimplementedError(absl::StrCat("model_type '", model_type,
                                               "': no family of this build imports it (it knows ",
                                               absl::StrJoin(types, ", "), ")."));
}

absl::Status CheckFamilyKeys(const Family& family, const Config& config) {
  std::vector<std::string> errors;
  for (const std::string& key : KeysAwayFromDefault(config)) {
    if (FamilyReads(family, key)) continue;
    std::vector<std::string> readers;
    for (const Family* f : Families())
      if (FamilyReads(*f, key)) readers.push_back(f->name());
    errors.push_back(absl::StrCat(config.Where(key), key, ": read by ",
                                  absl::StrJoin(readers, ", "), "; this recipe is ", family.name(),
                                  ", which would ignore it. HINT: remove it, or use recipe: ",
                                  readers.empty() ? std::string("(none)") : readers.front(), "."));
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

std::string FamilyConfigYaml(const Family& family, const Config& config,
                             const DerivedSizes* derived) {
  return ConfigToYaml(config, derived,
                      [&family](const std::string& key) { return FamilyReads(family, key); });
}

absl::StatusOr<ResolvedRun> ResolveRun(const Config& config, int64_t world_size,
                                       bool allow_missing_tokenizer) {
  ResolvedRun run;
  BRAID_ASSIGN_OR_RETURN(run.family, FindFamily(config));
  BRAID_RETURN_IF_ERROR(CheckFamilyKeys(*run.family, config));
  BRAID_RETURN_IF_ERROR(run.family->Check(config));
  absl::StatusOr<int64_t> vocab_or = run.family->VocabSize(config);
  std::error_code ec;
  if (!vocab_or.ok() && allow_missing_tokenizer && !config.data.vocab_file.empty() &&
      !std::filesystem::exists(config.data.vocab_file, ec)) {
    run.unresolved_vocab = std::string(vocab_or.status().message());
    vocab_or = int64_t{0};
  }
  BRAID_ASSIGN_OR_RETURN(int64_t vocab, vocab_or);
  BRAID_ASSIGN_OR_RETURN(run.sizes, DeriveSizes(config, world_size, vocab));
  run.sizes.decoder_seq_length = run.family->DecoderLength(config);
  BRAID_RETURN_IF_ERROR(CheckPipeline(*run.family, config, run.sizes));
  run.config = ResolvedConfig(config, run.sizes);
  return run;
}

absl::Status CheckPipeline(const Family& family, const Config& c, const DerivedSizes& sizes) {
  const ParallelConfig& p = c.parallel;
  if (p.pipeline_parallel_size == 1) {
    if (p.virtual_pipeline_size > 1 || !p.pipeline_layers.empty()) {
      const char* key = p.virtual_pipeline_size > 1 ? "parallel.virtual_pipeline_size"
                                                    : "parallel.pipeline_layers";
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s%s: set, but parallel.pipeline_parallel_size is 1 (no pipeline). HINT: set "
          "parallel.pipeline_parallel_size, or drop %s.",
          c.Where(key), key, key));
    }
    return absl::OkStatus();
  }
  const std::string where = c.Where("parallel.pipeline_parallel_size");
  PipelineSplitOptions split{static_cast<int>(p.pipeline_parallel_size),
                             static_cast<int>(p.virtual_pipeline_size), p.pipeline_layers,
                             p.account_for_embedding_in_pipeline_split,
                             p.account_for_loss_in_pipeline_split};
  absl::StatusOr<std::vector<int64_t>> layers = SplitLayers(family.LayerCount(c), split);
  if (!layers.ok())
    return absl::InvalidArgumentError(where + std::string(layers.status().message()));
  absl::Status s =
      CheckSchedule(p.pipeline_schedule, split.pp, split.virtual_size, sizes.accumulation_steps);
  if (!s.ok()) return absl::InvalidArgumentError(where + std::string(s.message()));
  return absl::OkStatus();
}

absl::StatusOr<StagePlan> StagePlanOf(const Family& family, const Config& c, int pp_rank) {
  const ParallelConfig& p = c.parallel;
  PipelineSplitOptions split{static_cast<int>(p.pipeline_parallel_size),
                             static_cast<int>(p.virtual_pipeline_size), p.pipeline_layers,
                             p.account_for_embedding_in_pipeline_split,
                             p.account_for_loss_in_pipeline_split};
  BRAID_ASSIGN_OR_RETURN(std::vector<int64_t> layers, SplitLayers(family.LayerCount(c), split));
  return PlanOfRank(layers, pp_rank, split.pp);
}

}  // namespace braid
