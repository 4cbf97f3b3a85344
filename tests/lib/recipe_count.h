// Family::ParameterCount of a GPT recipe (recipes/gpt/<recipe>.yaml with `sets`), resolved for one
// rank: the published-size checks of the model tests. -1 (and a test failure) when it does not
// resolve. ExpectCountEqualsBuiltModel: that count against the parameters of the model the recipe
// builds (on a world of one, with a vocabulary of 250 and no tokenizer file).
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "braid/build_config.h"
#include "framework/core/config.h"
#include "framework/dist/communicator.h"
#include "framework/parallel/layers.h"
#include "recipes/registry.h"

namespace braid::testing {

inline int64_t GptRecipeParameterCount(const std::string& recipe,
                                       const std::vector<std::string>& sets = {}) {
  auto c = LoadConfig(std::string(BRAID_SOURCE_DIR) + "/recipes/gpt/" + recipe + ".yaml", sets);
  EXPECT_TRUE(c.ok()) << c.status().message();
  if (!c.ok()) return -1;
  auto run = ResolveRun(*c, 1, true);
  EXPECT_TRUE(run.ok()) << run.status().message();
  if (!run.ok()) return -1;
  return run->family->ParameterCount(run->config, run->sizes);
}

inline void ExpectCountEqualsBuiltModel(const std::string& recipe,
                                        const std::vector<std::string>& extra = {}) {
  std::vector<std::string> sets = {"model.vocab_size=250", "data.vocab_file="};
  sets.insert(sets.end(), extra.begin(), extra.end());
  auto c = LoadConfig(std::string(BRAID_SOURCE_DIR) + "/recipes/gpt/" + recipe + ".yaml", sets);
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto run = ResolveRun(*c, 1, true);
  ASSERT_TRUE(run.ok()) << run.status().message();
  auto model = run->family->BuildModel(TpEnv{LocalCommunicator("tp"), 1}, run->config, run->sizes);
  ASSERT_TRUE(model.ok()) << model.status().message();
  int64_t n = 0;
  for (const auto& p : (*model)->parameters()) n += p.numel();
  EXPECT_EQ(n, run->family->ParameterCount(run->config, run->sizes)) << recipe;
}

}  // namespace braid::testing
