// T5 (v1.1, and the original T5 through options; docs/formats.md, "Hugging Face name maps"): one
// vocabulary-parallel embedding shared by an encoder and a decoder stack. Pre-norm RMSNorm
// layers without biases; attention scores not scaled by 1/sqrt(d) (T5 folds it into the
// initialisation); heads of model.kv_channels. Each stack has its own relative position bias
// (buckets: bidirectional in the encoder, causal in the decoder), computed once per forward and
// added in every self-attention of that stack; cross-attention has none. Each stack ends with
// its own norm. The output layer is its own (v1.1) or the embedding (original T5), which then
// sees the decoder output scaled by hidden^-0.5.
// Parameter names: shared.weight, encoder.{i}.{ln_self, self_attention.{qkv, out}, ln_mlp,
// mlp.{fc1, fc2}}, encoder_position_bias.weight, encoder_norm.weight, decoder.{i}.{..., ln_cross,
// cross_attention.{q, kv}, ...}, decoder_position_bias.weight, decoder_norm.weight,
// lm_head.weight when untied.
#pragma once
#include <torch/torch.h>

#include "framework/nn/blocks.h"
#include "framework/parallel/cross_entropy.h"
#include "framework/parallel/pipeline_schedule.h"

namespace braid {

struct T5Config {
  BlockConfig block;  // bias, score scaling and pre-LN are set by the model
  int64_t encoder_layers = 0;
  int64_t decoder_layers = 0;
  int64_t vocab_size = 0;    // real vocabulary (with the sentinels)
  int64_t padded_vocab = 0;  // multiple of make_vocab_size_divisible_by x TP
  int64_t num_buckets = 32;
  int64_t max_distance = 128;
  bool tie_embeddings = false;
  // Pipeline parallelism: the layers this rank holds, counting the encoder's first and then the
  // decoder's (SplitEncoderDecoder); no chunks: the whole model.
  StagePlan stage;
};

class T5Model : public TpModule {
 public:
  T5Model(const TpEnv& env, const T5Config& c);
  // The encoder's output [b, enc, hidden] for ids [b, enc] with padding [b, enc] (true = pad).
  torch::Tensor Encode(const torch::Tensor& inputs, const torch::Tensor& padding, TpRng& rng);
  // The decoder's output [b, dec, hidden] for decoder ids [b, dec] over `memory`, as the output
  // layer takes it (scaled by hidden^-0.5 when tied). With `cache` (generation) the ids are the
  // positions after those the cache holds, whose keys and values are reused (blocks.h).
  torch::Tensor DecoderHidden(const torch::Tensor& memory, const torch::Tensor& padding,
                              const torch::Tensor& decoder_inputs, TpRng& rng,
                              StackCache* cache = nullptr);
  // This rank's logits [b, dec, padded_vocab / tp] of decoder ids [b, dec] over `memory`.
  torch::Tensor Decode(const torch::Tensor& memory, const torch::Tensor& padding,
                       const torch::Tensor& decoder_inputs, TpRng& rng,
                       StackCache* cache = nullptr) {
    return OutputLogits(DecoderHidden(memory, padding, decoder_inputs, rng, cache));
  }
  // The output layer's weight, this rank's vocabulary rows [padded_vocab / tp, hidden] (the
  // shared embedding's when tied): the chunked loss projects with it.
  const torch::Tensor& output_weight() const;
  torch::Tensor output_bias() const { return {}; }  // none (BART's has one)
  torch::Tensor Logits(const torch::Tensor& inputs, const torch::Tensor& padding,
                       const torch::Tensor& decoder_inputs, TpRng& rng) {
    return Decode(Encode(inputs, padding, rng), padding, decoder_inputs, rng);
  }
  // This rank's logits [..., padded_vocab / tp] gathered to all of them [..., vocab_size].
  torch::Tensor FullVocabulary(const torch::Tensor& logits);
  // All logits [b, dec, vocab_size] on every TP rank (generation and checks).
  torch::Tensor FullLogits(const torch::Tensor& inputs, const torch::Tensor& padding,
                           const torch::Tensor& decoder_inputs, TpRng& rng);
  VocabShard shard() const;
  const T5Config& config() const { return c_; }
  // Pipeline stage (T5Config::stage; docs/pipeline.md, "Encoder-decoder stages"). The first
  // virtual stage embeds both the encoder's and the decoder's ids and computes both stacks'
  // position biases; what crosses a boundary inside the encoder is {encoder stream [b, enc, h],
  // encoder bias [1, heads/tp, enc, enc], decoder embeddings [b, dec, h], decoder bias [1,
  // heads/tp, dec, dec]}, and from the encoder's end on {encoder output (normed) [b, enc, h],
  // decoder stream [b, dec, h], decoder bias}. The last virtual stage returns the decoder's output
  // as DecoderHidden does, alone.
  std::vector<torch::Tensor> ChunkForward(int chunk, const torch::Tensor& inputs,
                                          const torch::Tensor& padding,
                                          const torch::Tensor& decoder_inputs,
                                          const std::vector<torch::Tensor>& input, TpRng& rng);
  // Uninitialised tensors as they cross the boundary after `layers_done` layers, for `b` rows of
  // `enc` and `dec` positions.
  std::vector<torch::Tensor> BoundaryLike(int64_t b, int64_t enc, int64_t dec,
                                          int64_t layers_done) const;
  const StagePlan& stage() const { return c_.stage; }
  // The output layer's logits (this rank's vocabulary slice) of the decoder's output.
  torch::Tensor OutputLogits(const torch::Tensor& hidden) { return lm_head_->forward(hidden); }
  // The shared embedding on a rank that holds it (or the tied output's copy); undefined elsewhere.
  torch::Tensor EmbeddingWeight() const { return shared_ ? shared_->weight : torch::Tensor(); }
  // Training FLOPs of one sample: 3x the forward's matmuls, the encoder over `enc` positions,
  // the decoder over `dec` (self-attention over dec, cross-attention over enc) and the output
  // projection over dec.
  double FlopsPerSample(int64_t enc, int64_t dec) const;

 private:
  T5Config c_;
  std::shared_ptr<Communicator> tp_;
  std::shared_ptr<VocabParallelEmbedding> shared_;
  EncoderDecoderStacks stacks_;
  std::shared_ptr<RelativePositionBias> encoder_bias_, decoder_bias_;
  std::shared_ptr<Norm> encoder_norm_, decoder_norm_;
  std::shared_ptr<VocabParallelOutput> lm_head_;
};

}  // namespace braid
