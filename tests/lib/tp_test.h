// Helpers of the multi-rank model tests (tests/models/*parallel_test.cc): the serial reference's
// communicator and a model's gradients gathered to full tensors.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "framework/parallel/layers.h"
#include "framework/parallel/mappings.h"
#include "framework/train/model_io.h"
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

}  // namespace braid::testing
