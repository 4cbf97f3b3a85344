// Test helpers (bert_logits, t5_logits): the final weights of a run (<run_dir>/final: config.yaml
// and model.safetensors) loaded into its family's model at TP = the world size, the way
// `generate` loads them (the vocabulary re-padded for that TP size).
#pragma once
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/config.h"
#include "framework/core/status.h"
#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/train/model_io.h"
#include "framework/train/safetensors.h"
#include "recipes/registry.h"

namespace braid::testing {

struct LoadedRun {
  ResolvedRun run;
  ParallelLayout layout;
  std::shared_ptr<TpModule> model;  // in eval mode
};

inline absl::StatusOr<LoadedRun> LoadRunAtWorldTp(const Runtime& rt, const std::string& run_dir) {
  const std::string dir = run_dir + "/final";
  BRAID_ASSIGN_OR_RETURN(Config config, LoadConfig(dir + "/config.yaml"));
  BRAID_ASSIGN_OR_RETURN(SafetensorsFile weights, ReadSafetensors(dir + "/model.safetensors"));
  const int tp = rt.world_size();
  config.parallel.tensor_parallel_size = tp;
  LoadedRun out;
  BRAID_ASSIGN_OR_RETURN(out.run, ResolveRun(config, tp));
  BRAID_ASSIGN_OR_RETURN(out.layout, ParallelLayout::Create(rt.world(), tp));
  BRAID_ASSIGN_OR_RETURN(out.model, out.run.family->BuildModel(TpEnv{out.layout.tp, 1},
                                                               out.run.config, out.run.sizes));
  BRAID_RETURN_IF_ERROR(LoadFullState(*out.model, weights.tensors, out.layout.tp_rank, tp));
  out.model->eval();
  return out;
}

// A tensor's values as a JSON list of numbers (9 significant digits).
inline std::string JsonNumbers(const torch::Tensor& t) {
  std::string s = "[";
  torch::Tensor c = t.contiguous().to(torch::kDouble);
  const double* p = c.data_ptr<double>();
  for (int64_t i = 0; i < c.numel(); ++i) absl::StrAppendFormat(&s, i ? ", %.9g" : "%.9g", p[i]);
  return s + "]";
}

}  // namespace braid::testing
