// Helpers of the multi-rank model tests (tests/models/*parallel_test.cc): the serial reference's
// communicator and a model's gradients gathered to full tensors.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "framework/parallel/layers.h"
#include "framework/parallel/mappings.h"
#include "framework/train/model_io.h"
#include "tests/lib/tensor_compare.h"
#include "tests/mpi_test_env.h"

namespace braid::testing {

// A communicator with only this rank: the serial reference inside a multi-rank test.
inline std::shared_ptr<Communicator> Solo() {
  auto c = g_runtime->world()->Split(g_runtime->rank(), 0, "solo");
  EXPECT_TRUE(c.ok());
  return *c;
}

// Every parameter's gradient, gathered over TP to the full tensor, by name.
inline std::map<std::string, torch::Tensor> FullGrads(torch::nn::Module& m, Communicator& tp) {
  std::map<std::string, TpParam> layouts = CollectTpParams(m);
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters()) {
    out[p.key()] = GatherFull(p.value().grad(), layouts[p.key()], tp);
  }
  return out;
}

// One run's logits, loss and gradients by name (the multi-rank model tests' result).
using RunResult = std::tuple<torch::Tensor, double, std::map<std::string, torch::Tensor>>;

// `got` equals `ref` within 1e-5 relative: logits, loss and every gradient.
inline void ExpectRunsEqual(const RunResult& got, const RunResult& ref, const std::string& what) {
  EXPECT_LT(RelDiff(std::get<0>(got), std::get<0>(ref)), 1e-5) << what;
  EXPECT_NEAR(std::get<1>(got), std::get<1>(ref), 1e-5 * std::abs(std::get<1>(ref))) << what;
  ASSERT_EQ(std::get<2>(got).size(), std::get<2>(ref).size()) << what;
  for (const auto& [name, g] : std::get<2>(ref)) {
    EXPECT_LT(RelDiff(std::get<2>(got).at(name), g), 1e-5) << what << ", grad of " << name;
  }
}

}  // namespace braid::testing
