// Test helper: loads the final weights of a BERT run (<run_dir>/final) at TP = world size and
// prints, for two fixed samples (the second padded), the MLM logits, the binary-head logits and
// the inputs as JSON, for tests/models/bert_reference.py to check.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/config.h"
#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/models/bert.h"
#include "framework/train/model_io.h"
#include "framework/train/safetensors.h"
#include "recipes/registry.h"
#include "tests/lib/run_model.h"

int main(int argc, char** argv) {
  using namespace braid;
  auto rt = Runtime::Init(&argc, &argv);
  if (!rt.ok() || argc != 2) return 2;
  auto loaded = testing::LoadRunAtWorldTp(**rt, argv[1]);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
    return 1;
  }
  const ParallelLayout* layout = &loaded->layout;
  const int tp = layout->tp_size;
  const int64_t vocab = loaded->run.sizes.vocab_size;
  auto model = std::dynamic_pointer_cast<BertModel>(loaded->model);
  if (model == nullptr) {
    std::fprintf(stderr, "not a BERT run: %s\n", argv[1]);
    return 1;
  }
  torch::NoGradGuard no_grad;
  TpRng rng(1, 0, layout->tp_rank);
  const int64_t seq = 12;
  torch::Tensor ids = torch::tensor({3, 17, 250, 5,   4, 900, 31, 4, 77, 19, 88, 4,
                                     3, 40, 5,   999, 4, 12,  4,  0, 0,  0,  0,  0})
                          .view({2, seq});
  torch::Tensor types =
      torch::tensor({0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0})
          .view({2, seq});
  if (model->config().num_token_types == 1) types.zero_();  // RoBERTa: one token type
  torch::Tensor padding = torch::zeros({2, seq}, torch::kBool);
  padding[1].narrow(0, 7, 5).fill_(true);
  BertOutput out = model->Forward(ids, types, padding, rng);
  torch::Tensor logits = torch::cat(out.mlm_logits.unbind(0), 0);  // [2 * seq, V/tp]
  std::vector<int64_t> shape = {tp, logits.size(0), logits.size(1)};
  torch::Tensor all = torch::empty(shape);
  (void)layout->tp->AllGather(logits.contiguous(), all);
  torch::Tensor full = torch::cat(all.unbind(0), 1).narrow(1, 0, vocab);
  if ((*rt)->rank() != 0) return 0;
  auto list = [](const torch::Tensor& t) { return testing::JsonNumbers(t); };
  std::printf(
      "{\"ids\": %s, \"types\": %s, \"padding\": %s, \"seq\": %ld, \"mlm_logits\": %s, "
      "\"binary_logits\": %s}\n",
      list(ids).c_str(), list(types).c_str(), list(padding).c_str(), (long)seq, list(full).c_str(),
      out.binary_logits.defined() ? list(out.binary_logits).c_str() : "[]");
  return 0;
}
