// Recipe registry (see registry.h).
#include "recipes/registry.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace braid {

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
