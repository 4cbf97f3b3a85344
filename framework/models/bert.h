// BERT (docs/formats.md, "Hugging Face layouts"): word (vocabulary-parallel) + learned position +
// token-type embeddings, LayerNorm; post-LN encoder layers with bidirectional, padding-masked
// attention and GELU (erf); the masked-LM head (dense, GELU, LayerNorm, decoder tied to the word
// embeddings across the vocabulary-parallel split or, with model.tie_embeddings false, an own
// decoder `lm_head.weight`; output bias split likewise); optionally the pooler (dense + tanh on
// [CLS]) and a binary head (sentence-order prediction). Sharded by TP exactly like GPT, from the
// same blocks. LayerNorm eps 1e-12 as Google's BERT.
#pragma once
#include <torch/torch.h>

#include "framework/nn/blocks.h"
#include "framework/parallel/cross_entropy.h"
#include "framework/parallel/pipeline_schedule.h"

namespace braid {

struct BertConfig {
  BlockConfig block;  // pre_ln is forced off (post-LN), activation "gelu" (erf)
  int64_t layers = 0;
  int64_t max_positions = 512;
  int64_t vocab_size = 0;
  int64_t padded_vocab = 0;
  int64_t num_token_types = 2;
  bool binary_head = true;
  bool tie_embeddings = true;
  // data.reset_attention_mask (RoBERTa's full-sentence packs): attention only within each
  // document of a sample, a document ending after each of these ids ([SEP] / </s>; -1: off).
  int64_t document_sep = -1;
  // Pipeline parallelism: the layers (and ends) this rank holds; no chunks: the whole model. The
  // first stage holds the embeddings, the last the heads (and a copy of the word embeddings when
  // the MLM output is tied to them).
  StagePlan stage;
};

struct BertOutput {
  torch::Tensor mlm_logits;     // [b, s, padded_vocab / tp] (this rank's slice), or undefined
  torch::Tensor mlm_hidden;     // [b, s, hidden]: the MLM head's transform, the output's input
  torch::Tensor binary_logits;  // [b, 2] or undefined
};

class BertModel : public TpModule {
 public:
  BertModel(const TpEnv& env, const BertConfig& c);
  // ids, token types [b, s] int64; padding [b, s] bool (true = padding). Without `logits` the
  // MLM output layer is left to the caller (the chunked loss): mlm_logits stays undefined.
  BertOutput Forward(const torch::Tensor& ids, const torch::Tensor& types,
                     const torch::Tensor& padding, TpRng& rng, bool logits = true);
  // Pipeline stage (BertConfig::stage): the embeddings of ids and types (first virtual stage) or
  // the previous stage's output [b, s, hidden] through chunk `chunk`'s layers.
  torch::Tensor ChunkForward(int chunk, const torch::Tensor& ids, const torch::Tensor& types,
                             const torch::Tensor& padding, const torch::Tensor& input, TpRng& rng);
  // The heads over the last layer's output x [b, s, hidden] (the last stage).
  BertOutput Heads(const torch::Tensor& x, bool logits);
  const StagePlan& stage() const { return c_.stage; }
  // The word embeddings on a rank that holds them (or the tied output's copy); undefined elsewhere.
  torch::Tensor EmbeddingWeight() const { return word_ ? word_->weight : torch::Tensor(); }
  // The MLM output layer: this rank's vocabulary rows of its weight (the word embedding's when
  // tied) and of its bias [padded_vocab / tp].
  const torch::Tensor& output_weight() const;
  const torch::Tensor& output_bias() const { return lm_bias_; }
  VocabShard shard() const;
  const BertConfig& config() const { return c_; }
  // Training FLOPs of one sample of `seq` tokens: 3x the forward's matmuls (layers, MLM head,
  // output projection, pooler and binary head).
  double FlopsPerSample(int64_t seq) const;

 private:
  BertConfig c_;
  std::shared_ptr<Communicator> tp_;
  std::shared_ptr<VocabParallelEmbedding> word_;
  torch::Tensor position_, token_type_;
  std::shared_ptr<Norm> emb_ln_;
  std::vector<torch::nn::ModuleList> chunks_;  // per chunk of the stage plan
  torch::nn::Linear lm_dense_{nullptr};
  std::shared_ptr<Norm> lm_ln_;
  std::shared_ptr<VocabParallelOutput> lm_head_;
  torch::Tensor lm_bias_;  // [padded_vocab / tp]
  torch::nn::Linear pooler_{nullptr}, binary_{nullptr};
};

}  // namespace braid
