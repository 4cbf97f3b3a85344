// T5 model (see t5.h).
#include "framework/models/t5.h"

#include <cmath>

#include "framework/parallel/mappings.h"

namespace braid {

T5Model::T5Model(const TpEnv& env, const T5Config& c) : c_(c), tp_(env.tp) {
  c_.block.bias = false;
  c_.block.scale_scores = false;
  c_.block.pre_ln = true;
  const BlockConfig& b = c_.block;
  shared_ = register_module(
      "shared", std::make_shared<VocabParallelEmbedding>(env, "shared", c.padded_vocab,
                                                         c.vocab_size, b.hidden, b.init_std));
  encoder_ = register_module("encoder", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.encoder_layers; ++i) {
    encoder_->push_back(std::make_shared<TransformerLayer>(env, "encoder." + std::to_string(i),
                                                           LayerBlock(b, i), false));
  }
  decoder_ = register_module("decoder", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.decoder_layers; ++i) {
    decoder_->push_back(std::make_shared<TransformerLayer>(env, "decoder." + std::to_string(i),
                                                           LayerBlock(b, i), true));
  }
  encoder_bias_ = register_module(
      "encoder_position_bias",
      std::make_shared<RelativePositionBias>(env, "encoder_position_bias", b.heads, true,
                                             c.num_buckets, c.max_distance, b.init_std));
  decoder_bias_ = register_module(
      "decoder_position_bias",
      std::make_shared<RelativePositionBias>(env, "decoder_position_bias", b.heads, false,
                                             c.num_buckets, c.max_distance, b.init_std));
  encoder_norm_ = register_module("encoder_norm", std::make_shared<Norm>(b, b.hidden));
  decoder_norm_ = register_module("decoder_norm", std::make_shared<Norm>(b, b.hidden));
  lm_head_ = register_module("lm_head", std::make_shared<VocabParallelOutput>(
                                            env, "lm_head", c.tie_embeddings ? shared_ : nullptr,
                                            c.padded_vocab, c.vocab_size, b.hidden, b.init_std));
}

torch::Tensor T5Model::Encode(const torch::Tensor& inputs, const torch::Tensor& padding,
                              TpRng& rng) {
  const int64_t s = inputs.size(1);
  torch::Tensor x =
      Dropout(shared_->forward(inputs), c_.block.hidden_dropout, is_training(), rng.replicated);
  AttentionMask mask;
  mask.key_padding = padding;
  mask.position_bias = encoder_bias_->forward(s, s);
  x = RunStack(encoder_, x, mask, rng);
  return Dropout(encoder_norm_->forward(x), c_.block.hidden_dropout, is_training(), rng.replicated);
}

torch::Tensor T5Model::DecoderHidden(const torch::Tensor& memory, const torch::Tensor& padding,
                                     const torch::Tensor& decoder_inputs, TpRng& rng,
                                     StackCache* cache) {
  const int64_t s = decoder_inputs.size(1);
  const int64_t past = cache != nullptr && !cache->empty() ? cache->front().self.length() : 0;
  torch::Tensor x = Dropout(shared_->forward(decoder_inputs), c_.block.hidden_dropout,
                            is_training(), rng.replicated);
  AttentionMask self;
  self.causal = true;
  self.position_bias = decoder_bias_->forward(s, past + s, past);  // queries after the cached
  AttentionMask cross;
  cross.key_padding = padding;
  x = RunStack(decoder_, x, self, rng, memory, cross, cache);
  x = Dropout(decoder_norm_->forward(x), c_.block.hidden_dropout, is_training(), rng.replicated);
  // The original T5 rescales before the output layer it shares with the embedding.
  if (c_.tie_embeddings) x = x * (1.0 / std::sqrt(static_cast<double>(c_.block.hidden)));
  return x;
}

const torch::Tensor& T5Model::output_weight() const {
  return lm_head_->tied() ? shared_->weight : lm_head_->weight;
}

torch::Tensor T5Model::FullVocabulary(const torch::Tensor& logits) {
  return AllGatherLastDim(logits, *tp_).narrow(-1, 0, c_.vocab_size);
}

torch::Tensor T5Model::FullLogits(const torch::Tensor& inputs, const torch::Tensor& padding,
                                  const torch::Tensor& decoder_inputs, TpRng& rng) {
  return FullVocabulary(Logits(inputs, padding, decoder_inputs, rng));
}

VocabShard T5Model::shard() const { return VocabShard{shared_->vocab_start(), c_.vocab_size}; }

double T5Model::FlopsPerSample(int64_t enc, int64_t dec) const {
  const double output = 2.0 * dec * c_.block.hidden * c_.vocab_size;
  return 3.0 * (output + StackForwardFlops(encoder_, enc) + StackForwardFlops(decoder_, dec, enc));
}

}  // namespace braid
