// Test helper: loads the final weights of a BART run (<run_dir>/final) at TP = world size and
// prints, for two fixed samples (the second with encoder and decoder padding), the inputs, the
// full decoder logits and the objective's loss (Seq2SeqTask with the noised field,
// vocabulary-parallel) as JSON, for tests/models/bart_reference.py to check.
#include <cstdio>

#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/models/bart.h"
#include "recipes/bart/bart_batch.h"
#include "recipes/seq2seq/seq2seq_task.h"
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
  auto model = std::dynamic_pointer_cast<BartModel>(loaded->model);
  if (model == nullptr) {
    std::fprintf(stderr, "not a BART run: %s\n", argv[1]);
    return 1;
  }
  torch::NoGradGuard no_grad;
  TpRng rng(1, 0, layout->tp_rank);
  // Two samples: encoder 10 positions (the second padded after 6), decoder 6 (the second's
  // labels padded after 4); ids across the vocabulary, its last id included.
  const int64_t enc = 10, dec = 6, top = vocab - 1;
  torch::Tensor inputs = torch::tensor(std::vector<int64_t>{3, 17, top, 250, 31, 900, 6, 77, 19, 1,
                                                            3, 40, 12,  333, 7,  1,   0, 0,  0,  0})
                             .view({2, enc});
  torch::Tensor labels =
      torch::tensor(std::vector<int64_t>{3, 88, 4, top, 9, 1, 3, 64, 2, 1, -100, -100})
          .view({2, dec});
  torch::Tensor padding = torch::zeros({2, enc}, torch::kLong);
  padding[1].narrow(0, 6, 4).fill_(1);
  torch::Tensor dec_in = torch::ones({2, dec}, torch::kLong);  // </s> (id 1 here) starts
  dec_in.narrow(1, 1, dec - 1).copy_(labels.narrow(1, 0, dec - 1).clamp_min(0));
  torch::Tensor full =
      model->FullVocabulary(model->Logits(inputs, padding.to(torch::kBool), dec_in, rng));
  // The loss as training computes it, from rows.
  torch::Tensor rows = torch::cat({inputs, padding, dec_in, labels, torch::zeros_like(labels)}, 1);
  Seq2SeqTask<BartModel> task(model, enc, dec, layout->tp, 0, true);
  const double loss = task.Loss(Batch{rows, {0, 1}}, rng, nullptr).item<double>();
  if ((*rt)->rank() != 0) return 0;
  auto list = [](const torch::Tensor& t) { return testing::JsonNumbers(t); };
  std::printf(
      "{\"inputs\": %s, \"padding\": %s, \"decoder_inputs\": %s, \"labels\": %s, \"enc\": %ld, "
      "\"dec\": %ld, \"vocab\": %ld, \"logits\": %s, \"loss\": %.12g}\n",
      list(inputs).c_str(), list(padding).c_str(), list(dec_in).c_str(), list(labels).c_str(),
      (long)enc, (long)dec, (long)vocab, list(full).c_str(), loss);
  return 0;
}
