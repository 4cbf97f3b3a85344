// The family registry: `recipe: gpt` in a config names a Family (family.h). pretrain, generate,
// convert_checkpoint and the benchmarks find families here and nowhere else.
#pragma once
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "recipes/family.h"

namespace braid {

// Every family of this build, in registration order.
const std::vector<const Family*>& Families();

// The family a config's `recipe:` names, or an error naming the key, where it was set, and the
// families this build has.
absl::StatusOr<const Family*> FindFamily(const Config& config);
// The family whose Hugging Face layout has config.json's `model_type`.
absl::StatusOr<const Family*> FindFamilyByHfType(const std::string& model_type);

// A config made ready to run on `world_size` ranks: its family, the family's checks, the
// vocabulary (from the tokenizer) and every derived size, worked out once. `config` has the
// derived values written in (model.vocab_size, model.ffn_hidden_size,
// model.max_position_embeddings, train.global_batch_size; origin "derived"): it is what
// checkpoints and final/config.yaml record.
// pretrain's training, --print-config and --plan, generate and the converter all resolve a config
// here, once. `allow_missing_tokenizer` (--print-config before the data is prepared): a
// tokenizer file that does not exist yet leaves the vocabulary unknown (sizes.vocab_size 0) and
// says why in `unresolved_vocab`; every other error is returned.
struct ResolvedRun {
  const Family* family = nullptr;
  Config config;
  DerivedSizes sizes;
  std::string unresolved_vocab;
};
absl::StatusOr<ResolvedRun> ResolveRun(const Config& config, int64_t world_size,
                                       bool allow_missing_tokenizer = false);

// An error naming every key set away from its default that `family` does not read (where it was
// set, and the families that would read it).
absl::Status CheckFamilyKeys(const Family& family, const Config& config);
// Pipeline parallelism (docs/pipeline.md): the family divides into stages, the layers split over
// PP x virtual stages, the schedule can run the step's micro-batches; errors name the key.
absl::Status CheckPipeline(const Family& family, const Config& config, const DerivedSizes& sizes);
// Pipeline rank `pp_rank`'s share of the family's layers (the whole model at PP = 1).
absl::StatusOr<StagePlan> StagePlanOf(const Family& family, const Config& config, int pp_rank);
// The effective config as YAML with only the keys `family` reads (--print-config).
std::string FamilyConfigYaml(const Family& family, const Config& config,
                             const DerivedSizes* derived);

}  // namespace braid
