// Recipe registry (see registry.h).
#include "recipes/registry.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace braid {

BlockConfig BlockConfigFrom(const Config& c, const DerivedSizes& sizes) {
  BlockConfig b;
  b.hidden = c.model.hidden_size;
  b.heads = c.model.num_attention_heads;
  b.ffn = sizes.ffn_hidden_size;
  b.activation = c.model.activation;
  b.norm = c.model.norm;
  b.eps = c.model.layernorm_epsilon;
  b.hidden_dropout = c.model.hidden_dropout;
  b.attention_dropout = c.model.attention_dropout;
  b.init_std = c.model.init_std;
  b.output_init_std = c.model.init_std;
  return b;
}

absl::StatusOr<RecipeBuilder> FindRecipe(const std::string& name) {
  static const std::map<std::string, RecipeBuilder> kRecipes = {
      {"gpt", BuildGptRecipe},
      {"bert", BuildBertRecipe},
  };
  auto it = kRecipes.find(name);
  if (it != kRecipes.end()) return it->second;
  std::vector<std::string> names;
  for (const auto& [k, v] : kRecipes) names.push_back(k);
  return absl::UnimplementedError(absl::StrCat(
      "recipe '", name, "' is not in this build (it has: ", absl::StrJoin(names, ", "), ")."));
}

}  // namespace braid
