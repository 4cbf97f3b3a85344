// The recipe registry: `recipe: gpt` in a config names a builder that turns the config into a
// model, its objective and its data (RecipeParts). The trainer knows nothing of the families.
#pragma once
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/dist/layout.h"
#include "framework/nn/blocks.h"
#include "framework/train/trainer.h"

namespace braid {

struct RunContext {
  const Config& config;
  const DerivedSizes& sizes;
  const ParallelLayout& layout;
  int local_rank = 0;  // builds the data index files when 0
};

using RecipeBuilder = std::function<absl::StatusOr<RecipeParts>(const RunContext&)>;

// The transformer block settings of the model section (hidden size, heads, FFN width, activation,
// norm, eps, dropouts, init), shared by every family's builder and by generate.
BlockConfig BlockConfigFrom(const Config& config, const DerivedSizes& sizes);

// The builder registered under `name`, or an error listing the recipes this build has.
absl::StatusOr<RecipeBuilder> FindRecipe(const std::string& name);

// Builders, one per family (each in its recipes/<family>/ folder).
absl::StatusOr<RecipeParts> BuildGptRecipe(const RunContext& ctx);
absl::StatusOr<RecipeParts> BuildBertRecipe(const RunContext& ctx);

}  // namespace braid
