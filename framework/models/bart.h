// BART, and mBART through options (docs/formats.md, "Hugging Face name maps"): one
// vocabulary-parallel embedding shared by an encoder stack, a decoder stack and the output layer.
// Each stack adds its own learned positions (a table of max_positions + 2 rows, position p
// reading row p + 2: BART's offset, the first two rows unused) to the token embeddings (scaled by
// sqrt(hidden) with model.scale_embedding, as mBART), then LayerNorms them (layernorm_embedding).
// Layers are post-LN (BART) or pre-LN with a final LayerNorm per stack (mBART, model.pre_ln);
// biases everywhere, scores scaled by 1/sqrt(head_dim), GELU (erf). The logits add a
// vocabulary-parallel final_logits_bias (zeros at the start; trained like BERT's output bias).
// Parameter names: shared.weight, {encoder,decoder}_positions, {encoder,decoder}_ln_embedding.
// {weight,bias}, encoder.{i}.{ln_self, self_attention.{qkv, out}, ln_mlp, mlp.{fc1, fc2}},
// decoder.{i}.{..., ln_cross, cross_attention.{q, kv, out}, ...}, {encoder,decoder}_norm (pre-LN
// only), final_logits_bias, lm_head.weight when untied.
#pragma once
#include <torch/torch.h>

#include "framework/nn/blocks.h"
#include "framework/parallel/cross_entropy.h"
#include "framework/parallel/pipeline_schedule.h"

namespace braid {

struct BartConfig {
  BlockConfig block;  // pre_ln as configured; bias and score scaling set by the model
  int64_t encoder_layers = 0;
  int64_t decoder_layers = 0;
  int64_t max_positions = 1024;  // the tables hold two more rows
  int64_t vocab_size = 0;
  int64_t padded_vocab = 0;  // multiple of make_vocab_size_divisible_by x TP
  bool scale_embedding = false;
  bool tie_embeddings = true;
  // Pipeline parallelism: the layers this rank holds, counting the encoder's first and then the
  // decoder's (SplitEncoderDecoder); no chunks: the whole model.
  StagePlan stage;
};

class BartModel : public TpModule {
 public:
  static constexpr int64_t kPositionOffset = 2;
  BartModel(const TpEnv& env, const BartConfig& c);
  // The encoder's output [b, enc, hidden] for ids [b, enc] with padding [b, enc] (true = pad).
  torch::Tensor Encode(const torch::Tensor& inputs, const torch::Tensor& padding, TpRng& rng);
  // The decoder's output [b, dec, hidden] for decoder ids [b, dec] over `memory`, as the output
  // layer takes it. With `cache` (generation) the ids are the positions after those the cache
  // holds, whose keys and values are reused (blocks.h).
  torch::Tensor DecoderHidden(const torch::Tensor& memory, const torch::Tensor& padding,
                              const torch::Tensor& decoder_inputs, TpRng& rng,
                              StackCache* cache = nullptr);
  // The output layer's weight (this rank's vocabulary rows of the shared embedding, or its own)
  // and final_logits_bias [padded_vocab / tp]: the chunked loss projects with them.
  const torch::Tensor& output_weight() const;
  const torch::Tensor& output_bias() const { return final_logits_bias_; }
  // This rank's logits [b, dec, padded_vocab / tp] of decoder ids [b, dec] over `memory`.
  torch::Tensor Decode(const torch::Tensor& memory, const torch::Tensor& padding,
                       const torch::Tensor& decoder_inputs, TpRng& rng,
                       StackCache* cache = nullptr) {
    return OutputLogits(DecoderHidden(memory, padding, decoder_inputs, rng, cache));
  }
  // The logits (this rank's vocabulary slice) of the decoder's output, final_logits_bias added.
  torch::Tensor OutputLogits(const torch::Tensor& hidden);
  torch::Tensor Logits(const torch::Tensor& inputs, const torch::Tensor& padding,
                       const torch::Tensor& decoder_inputs, TpRng& rng) {
    return Decode(Encode(inputs, padding, rng), padding, decoder_inputs, rng);
  }
  // This rank's logits [..., padded_vocab / tp] gathered to all of them [..., vocab_size].
  torch::Tensor FullVocabulary(const torch::Tensor& logits);
  VocabShard shard() const;
  const BartConfig& config() const { return c_; }
  // Pipeline stage (BartConfig::stage; docs/pipeline.md, "Encoder-decoder stages"): the first
  // virtual stage embeds both the encoder's and the decoder's ids; what crosses a boundary is
  // {encoder stream [b, enc, h], decoder embeddings [b, dec, h]} inside the encoder and {encoder
  // output [b, enc, h], decoder stream [b, dec, h]} from its end on. The last virtual stage
  // returns the decoder's output as DecoderHidden does, alone.
  std::vector<torch::Tensor> ChunkForward(int chunk, const torch::Tensor& inputs,
                                          const torch::Tensor& padding,
                                          const torch::Tensor& decoder_inputs,
                                          const std::vector<torch::Tensor>& input, TpRng& rng);
  // Uninitialised tensors as they cross the boundary after `layers_done` layers, for `b` rows of
  // `enc` and `dec` positions.
  std::vector<torch::Tensor> BoundaryLike(int64_t b, int64_t enc, int64_t dec,
                                          int64_t layers_done) const;
  const StagePlan& stage() const { return c_.stage; }
  // The shared embedding on a rank that holds it (or the tied output's copy); undefined elsewhere.
  torch::Tensor EmbeddingWeight() const { return shared_ ? shared_->weight : torch::Tensor(); }
  // Training FLOPs of one sample (3x the forward's matmuls): the encoder over `enc` positions,
  // the decoder over `dec` (self-attention over dec, cross-attention over enc), the output
  // projection over dec.
  double FlopsPerSample(int64_t enc, int64_t dec) const;

 private:
  // Token embeddings (scaled) + positions from `first` on, LayerNorm, dropout.
  torch::Tensor Embed(const torch::Tensor& ids, const torch::Tensor& positions,
                      const std::shared_ptr<Norm>& ln, TpRng& rng, int64_t first = 0);

  BartConfig c_;
  std::shared_ptr<Communicator> tp_;
  std::shared_ptr<VocabParallelEmbedding> shared_;
  torch::Tensor encoder_positions_, decoder_positions_;
  std::shared_ptr<Norm> encoder_ln_embedding_, decoder_ln_embedding_;
  EncoderDecoderStacks stacks_;
  std::shared_ptr<Norm> encoder_norm_, decoder_norm_;  // pre-LN only
  std::shared_ptr<VocabParallelOutput> lm_head_;
  torch::Tensor final_logits_bias_;  // [padded_vocab / tp]
};

}  // namespace braid
