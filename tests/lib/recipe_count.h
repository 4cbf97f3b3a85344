// Family::ParameterCount of a GPT recipe (recipes/gpt/<recipe>.yaml with `sets`), resolved for one
// rank: the published-size checks of the model tests. -1 (and a test failure) when it does not
// resolve.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "braid/build_config.h"
#include "framework/core/config.h"
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

}  // namespace braid::testing
