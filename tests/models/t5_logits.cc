// Test helper: loads the final weights of a T5 run (<run_dir>/final) at TP = world size and
// prints, for two fixed samples (the second with encoder and decoder padding), the inputs, the
// full decoder logits and the objective's loss (T5Task, vocabulary-parallel) as JSON, for
// tests/models/t5_reference.py to check.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/config.h"
#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/models/t5.h"
#include "framework/parallel/mappings.h"
#include "framework/train/model_io.h"
#include "framework/train/safetensors.h"
#include "recipes/registry.h"
#include "recipes/seq2seq/seq2seq_batch.h"
#include "recipes/seq2seq/t5_model.h"
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
  const int64_t vocab = loaded->run.sizes.vocab_size;
  auto model = std::dynamic_pointer_cast<T5Model>(loaded->model);
  if (model == nullptr) {
    std::fprintf(stderr, "not a T5 run: %s\n", argv[1]);
    return 1;
  }
  torch::NoGradGuard no_grad;
  TpRng rng(1, 0, layout->tp_rank);
  // Two samples: encoder 10 positions (the second padded after 6), decoder 6 (the second's
  // labels padded after 4). Ids span the vocabulary, sentinels included.
  const int64_t enc = 10, dec = 6;
  const int64_t s0 = vocab - 1, s1 = vocab - 2;  // <extra_id_0>, <extra_id_1>
  torch::Tensor inputs =
      torch::tensor(std::vector<int64_t>{5,  17, s0, 250, 31, 900, s1, 77, 19, 1,
                                         40, s0, 12, 333, 7,  1,   0,  0,  0,  0})
          .view({2, enc});
  torch::Tensor labels =
      torch::tensor(std::vector<int64_t>{s0, 88, 4, s1, 9, 1, s0, 64, 2, 1, -100, -100})
          .view({2, dec});
  torch::Tensor padding = torch::zeros({2, enc}, torch::kLong);
  padding[1].narrow(0, 6, 4).fill_(1);
  torch::Tensor dec_in = torch::zeros({2, dec}, torch::kLong);
  dec_in.narrow(1, 1, dec - 1).copy_(labels.narrow(1, 0, dec - 1).clamp_min(0));
  torch::Tensor full = model->FullLogits(inputs, padding.to(torch::kBool), dec_in, rng);
  // The loss as training computes it, from rows.
  const Seq2SeqRow r(enc, dec);
  torch::Tensor rows = torch::cat({inputs, padding, dec_in, labels}, 1);
  T5Task task(model, enc, dec, layout->tp);
  Batch batch{rows, {0, 1}};
  const double loss = task.Loss(batch, rng, nullptr).item<double>();
  if ((*rt)->rank() != 0) return 0;
  auto list = [](const torch::Tensor& t) { return testing::JsonNumbers(t); };
  std::printf(
      "{\"inputs\": %s, \"padding\": %s, \"decoder_inputs\": %s, \"labels\": %s, \"enc\": %ld, "
      "\"dec\": %ld, \"vocab\": %ld, \"logits\": %s, \"loss\": %.12g}\n",
      list(inputs).c_str(), list(padding).c_str(), list(dec_in).c_str(), list(labels).c_str(),
      (long)enc, (long)dec, (long)vocab, list(full).c_str(), loss);
  return 0;
}
