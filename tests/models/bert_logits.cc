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

int main(int argc, char** argv) {
  using namespace braid;
  auto rt = Runtime::Init(&argc, &argv);
  if (!rt.ok() || argc != 2) return 2;
  std::string dir = std::string(argv[1]) + "/final";
  auto config = LoadConfig(dir + "/config.yaml");
  auto weights = ReadSafetensors(dir + "/model.safetensors");
  if (!config.ok() || !weights.ok()) {
    std::fprintf(stderr, "cannot load %s\n", dir.c_str());
    return 1;
  }
  const int tp = (*rt)->world_size();
  auto layout = ParallelLayout::Create((*rt)->world(), tp);
  torch::Tensor word = weights->tensors.at("word_embeddings.weight");
  const int64_t vocab = 8000;  // the default corpus's SentencePiece model
  const int64_t padded = PaddedVocabSize(vocab, config->model.make_vocab_size_divisible_by, tp);
  auto fit = [&](torch::Tensor t) {
    t = t.narrow(0, 0, vocab);
    std::vector<int64_t> pad = t.sizes().vec();
    pad[0] = padded - vocab;
    return torch::cat({t, torch::zeros(pad)});
  };
  weights->tensors["word_embeddings.weight"] = fit(word);
  weights->tensors["lm_bias"] = fit(weights->tensors.at("lm_bias"));
  BertConfig b;
  b.layers = config->model.num_layers;
  b.max_positions = config->model.seq_length;
  b.vocab_size = vocab;
  b.padded_vocab = padded;
  b.block.hidden = config->model.hidden_size;
  b.block.heads = config->model.num_attention_heads;
  b.block.ffn = 4 * b.block.hidden;
  b.block.activation = config->model.activation;
  b.block.eps = config->model.layernorm_epsilon;
  auto model = std::make_shared<BertModel>(TpEnv{layout->tp, 1}, b);
  absl::Status s = LoadFullState(*model, weights->tensors, layout->tp_rank, tp);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  model->eval();
  torch::NoGradGuard no_grad;
  TpRng rng(1, 0, layout->tp_rank);
  const int64_t seq = 12;
  torch::Tensor ids = torch::tensor({3, 17, 250, 5,   4, 900, 31, 4, 77, 19, 88, 4,
                                     3, 40, 5,   999, 4, 12,  4,  0, 0,  0,  0,  0})
                          .view({2, seq});
  torch::Tensor types =
      torch::tensor({0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0})
          .view({2, seq});
  torch::Tensor padding = torch::zeros({2, seq}, torch::kBool);
  padding[1].narrow(0, 7, 5).fill_(true);
  BertOutput out = model->Forward(ids, types, padding, rng);
  torch::Tensor logits = torch::cat(out.mlm_logits.unbind(0), 0);  // [2 * seq, V/tp]
  std::vector<int64_t> shape = {tp, logits.size(0), logits.size(1)};
  torch::Tensor all = torch::empty(shape);
  (void)layout->tp->AllGather(logits.contiguous(), all);
  torch::Tensor full = torch::cat(all.unbind(0), 1).narrow(1, 0, vocab);
  if ((*rt)->rank() != 0) return 0;
  auto list = [](const torch::Tensor& t) {
    std::string s = "[";
    torch::Tensor c = t.contiguous().to(torch::kDouble);
    const double* p = c.data_ptr<double>();
    for (int64_t i = 0; i < c.numel(); ++i) absl::StrAppendFormat(&s, i ? ", %.9g" : "%.9g", p[i]);
    return s + "]";
  };
  std::printf(
      "{\"ids\": %s, \"types\": %s, \"padding\": %s, \"seq\": %ld, \"mlm_logits\": %s, "
      "\"binary_logits\": %s}\n",
      list(ids).c_str(), list(types).c_str(), list(padding).c_str(), (long)seq, list(full).c_str(),
      list(out.binary_logits).c_str());
  return 0;
}
