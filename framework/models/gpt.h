// GPT-2 (docs/formats.md, "Hugging Face layouts"): token embedding (vocabulary-parallel) +
// learned positions, pre-LN transformer layers with causal self-attention and an MLP (GELU-tanh;
// any model.activation), a final norm, and the output logits through the token embedding (tied,
// across the vocabulary-parallel split) or an own output layer (model.tie_embeddings: false).
// Parameter names follow the module tree: wte.weight, wpe, ln_emb (embed_layernorm),
// h.{i}.{ln_self, self_attention.{qkv, out}, ln_mlp, mlp.{fc1, fc2}}, ln_f, and lm_head.weight when
// untied.
//
// The same model is LLaMA / Mistral / Falcon / BLOOM-style with the decoder options
// (framework/nn/blocks.h): positions by RoPE in the attention (no wpe) or ALiBi biases (this rank's
// heads' slopes), a sliding window, grouped-query attention, SwiGLU, RMSNorm, no biases, parallel
// attention + MLP.
#pragma once
#include <torch/torch.h>

#include "framework/nn/blocks.h"
#include "framework/parallel/cross_entropy.h"
#include "framework/parallel/pipeline_schedule.h"

namespace braid {

struct GptConfig {
  BlockConfig block;
  int64_t layers = 0;
  int64_t max_positions = 0;
  int64_t vocab_size = 0;    // real vocabulary
  int64_t padded_vocab = 0;  // multiple of make_vocab_size_divisible_by x TP
  bool tie_embeddings = true;
  Position position = Position::kLearned;  // rope: in the block
  bool embed_layernorm = false;            // a LayerNorm (ln_emb) after the embeddings (BLOOM)
  int64_t sliding_window = 0;
  int64_t output_chunk_tokens = 0;  // > 0: Loss projects and scores this many tokens at a time
  // Documents packed in a sample (data.reset_position_ids, reset_attention_mask, eod_mask_loss;
  // docs/document_masking.md), split after each `eod` token: learned positions restart per
  // document, attention stays within each, the loss skips the targets of `eod` inputs.
  int64_t eod = -1;
  bool reset_position_ids = false;
  bool reset_attention_mask = false;
  bool eod_mask_loss = false;
  // Pipeline parallelism: the layers (and ends) this rank holds; no chunks: the whole model.
  StagePlan stage;
};

class GptModel : public TpModule {
 public:
  GptModel(const TpEnv& env, const GptConfig& c);
  // tokens [b, s] -> this rank's logits [b, s, padded_vocab / tp].
  torch::Tensor Logits(const torch::Tensor& tokens, TpRng& rng);
  // tokens [b, s] -> the final norm's output [b, s, hidden] (replicated over TP).
  torch::Tensor Hidden(const torch::Tensor& tokens, TpRng& rng);
  // Mean cross entropy of predicting labels [b, s] from tokens [b, s]. With output_chunk_tokens,
  // through ChunkedVocabParallelLoss: the logits are never held whole.
  torch::Tensor Loss(const torch::Tensor& tokens, const torch::Tensor& labels, TpRng& rng);
  // Pipeline stage (GptConfig::stage): tokens [b, s] (first virtual stage) or the previous
  // stage's hidden states [b, s, hidden] through chunk `chunk`'s layers; after the last layer of
  // the model, the final norm too. Parameters keep the whole model's names (h.{i} by its global
  // layer index; the last stage's copy of a tied embedding is wte.weight as on the first).
  torch::Tensor ChunkForward(int chunk, const torch::Tensor& tokens, const torch::Tensor& input,
                             TpRng& rng);
  // Mean cross entropy of the final norm's output h [b, s, hidden] against labels [b, s]: over
  // the labels that are not ignored (-100; LossLabels).
  torch::Tensor LossFromHidden(const torch::Tensor& h, const torch::Tensor& labels);
  // The labels the loss scores: with eod_mask_loss those after an end-of-document input token
  // become -100 (ignored), as Megatron-LM's --eod-mask-loss masks them.
  torch::Tensor LossLabels(const torch::Tensor& tokens, const torch::Tensor& labels) const;
  const StagePlan& stage() const { return c_.stage; }
  // This rank's layers of chunk `chunk` (the whole model's without pipeline stages: chunk 0).
  torch::nn::ModuleList& chunk(int chunk) { return chunks_[chunk]; }
  // The embedding weight on a rank that holds the input or the tied output embedding; undefined
  // elsewhere.
  torch::Tensor EmbeddingWeight() const;
  // All logits [b, s, vocab_size] on every TP rank (for generation and checks).
  torch::Tensor FullLogits(const torch::Tensor& tokens, TpRng& rng);
  VocabShard shard() const;
  const GptConfig& config() const { return c_; }
  // Training FLOPs of one sample of `seq` tokens: 3x the forward's matmuls (the layers and the
  // output projection). With a 4x MLP this is Megatron's 72 s L h^2 (1 + s/6h + V/12Lh).
  double FlopsPerSample(int64_t seq) const;

 private:
  GptConfig c_;
  std::shared_ptr<Communicator> tp_;
  std::shared_ptr<VocabParallelEmbedding> wte_;
  torch::Tensor wpe_;  // learned positions only
  AttentionMask Mask(int64_t s, const torch::TensorOptions& options);

  std::vector<double> slopes_;                 // ALiBi: this rank's heads' slopes
  torch::Tensor bias_;                         // the position bias of the last sequence length seen
  std::shared_ptr<torch::nn::Module> h_;       // layers named by their global index
  std::vector<torch::nn::ModuleList> chunks_;  // this rank's layers, per chunk
  std::shared_ptr<Norm> ln_f_;
  std::shared_ptr<Norm> ln_emb_;  // embed_layernorm, on the stage holding the embedding
  std::shared_ptr<VocabParallelOutput> lm_head_;
};

}  // namespace braid
