// The family registry (see registry.h). Adding a family: one line in Families().
#include "recipes/registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "recipes/bart/bart_family.h"
#include "recipes/bert/bert_family.h"
#include "recipes/gpt/gpt_family.h"
#include "recipes/t5/t5_family.h"

namespace braid {

const std::vector<const Family*>& Families() {
  static const std::vector<const Family*> kFamilies = {
      &GptFamily(), &BertFamily(), &RobertaFamily(), &T5Family(), &BartFamily(),
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

absl::StatusOr<ResolvedRun> ResolveRun(const Config& config, int64_t world_size) {
  ResolvedRun run;
  BRAID_ASSIGN_OR_RETURN(run.family, FindFamily(config));
  BRAID_RETURN_IF_ERROR(CheckDecoderOptions(*run.family, config));
  BRAID_RETURN_IF_ERROR(run.family->Check(config));
  BRAID_ASSIGN_OR_RETURN(int64_t vocab, run.family->VocabSize(config));
  BRAID_ASSIGN_OR_RETURN(run.sizes, DeriveSizes(config, world_size, vocab));
  run.config = ResolvedConfig(config, run.sizes);
  return run;
}

}  // namespace braid
