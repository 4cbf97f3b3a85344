// GPT-2 (FORMATS.md "GPT-2"): token embedding (vocabulary-parallel) + learned positions,
// pre-LN transformer layers with causal self-attention and a GELU (tanh) MLP, a final LayerNorm,
// and output logits through the token embedding (tied across the vocabulary-parallel split).
// Parameter names follow the module tree: wte, wpe, h.{i}.{ln_self, self_attention.{qkv, out},
// ln_mlp, mlp.{fc1, fc2}}, ln_f.
#pragma once
#include <torch/torch.h>

#include "framework/nn/blocks.h"
#include "framework/parallel/cross_entropy.h"

namespace braid {

struct GptConfig {
  BlockConfig block;
  int64_t layers = 0;
  int64_t max_positions = 0;
  int64_t vocab_size = 0;    // real vocabulary
  int64_t padded_vocab = 0;  // multiple of 128 x TP
};

class GptModel : public TpModule {
 public:
  GptModel(const TpEnv& env, const GptConfig& c);
  // tokens [b, s] -> this rank's logits [b, s, padded_vocab / tp].
  torch::Tensor Logits(const torch::Tensor& tokens, TpRng& rng);
  // samples [b, s + 1]: mean cross entropy of predicting samples[:, 1:] from samples[:, :-1].
  torch::Tensor Loss(const torch::Tensor& samples, TpRng& rng);
  // All logits [b, s, vocab_size] on every TP rank (for generation and checks).
  torch::Tensor FullLogits(const torch::Tensor& tokens, TpRng& rng);
  VocabShard shard() const;
  const GptConfig& config() const { return c_; }
  // Training FLOPs per token (PaLM: 6N + 12 L d T; N without position embeddings).
  double FlopsPerToken(int64_t seq_len) const;

 private:
  GptConfig c_;
  std::shared_ptr<Communicator> tp_;
  std::shared_ptr<VocabParallelEmbedding> wte_;
  torch::Tensor wpe_;
  torch::nn::ModuleList h_;
  std::shared_ptr<Norm> ln_f_;
};

}  // namespace braid
