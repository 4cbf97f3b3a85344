// BART model (see bart.h).
#include "framework/models/bart.h"

#include "framework/core/check.h"

#include <cmath>

#include "framework/parallel/mappings.h"

namespace braid {

BartModel::BartModel(const TpEnv& env, const BartConfig& c) : c_(c), tp_(env.tp) {
  c_.block.bias = true;
  c_.block.scale_scores = true;
  const BlockConfig& b = c_.block;
  const double std = b.init_std;
  shared_ =
      register_module("shared", std::make_shared<VocabParallelEmbedding>(
                                    env, "shared", c.padded_vocab, c.vocab_size, b.hidden, std));
  const std::vector<int64_t> table = {c.max_positions + kPositionOffset, b.hidden};
  encoder_positions_ = Param("encoder_positions",
                             InitShard(env, "encoder_positions", table, std, TpParam{}), TpParam{});
  decoder_positions_ = Param("decoder_positions",
                             InitShard(env, "decoder_positions", table, std, TpParam{}), TpParam{});
  encoder_ln_embedding_ =
      register_module("encoder_ln_embedding", std::make_shared<Norm>(b, b.hidden));
  decoder_ln_embedding_ =
      register_module("decoder_ln_embedding", std::make_shared<Norm>(b, b.hidden));
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
  if (b.pre_ln) {
    encoder_norm_ = register_module("encoder_norm", std::make_shared<Norm>(b, b.hidden));
    decoder_norm_ = register_module("decoder_norm", std::make_shared<Norm>(b, b.hidden));
  }
  lm_head_ = register_module("lm_head", std::make_shared<VocabParallelOutput>(
                                            env, "lm_head", c.tie_embeddings ? shared_ : nullptr,
                                            c.padded_vocab, c.vocab_size, b.hidden, std));
  final_logits_bias_ =
      Param("final_logits_bias",
            InitShard(env, "final_logits_bias", {c.padded_vocab}, 0.0, TpParam{0, 1, true}),
            TpParam{0, 1, true});
}

torch::Tensor BartModel::Embed(const torch::Tensor& ids, const torch::Tensor& positions,
                               const std::shared_ptr<Norm>& ln, TpRng& rng, int64_t first) {
  // Callers keep sequences within the table (the family's checks, generate's limits).
  BRAID_CHECK(kPositionOffset + first + ids.size(1) <= positions.size(0));
  torch::Tensor x = shared_->forward(ids);
  if (c_.scale_embedding) x = x * std::sqrt(static_cast<double>(c_.block.hidden));
  x = x + positions.narrow(0, kPositionOffset + first, ids.size(1));
  return Dropout(ln->forward(x), c_.block.hidden_dropout, is_training(), rng.replicated);
}

torch::Tensor BartModel::Encode(const torch::Tensor& inputs, const torch::Tensor& padding,
                                TpRng& rng) {
  torch::Tensor x = Embed(inputs, encoder_positions_, encoder_ln_embedding_, rng);
  AttentionMask mask;
  mask.key_padding = padding;
  x = RunStack(encoder_, x, mask, rng);
  return encoder_norm_ ? encoder_norm_->forward(x) : x;
}

torch::Tensor BartModel::DecoderHidden(const torch::Tensor& memory, const torch::Tensor& padding,
                                       const torch::Tensor& decoder_inputs, TpRng& rng,
                                       StackCache* cache) {
  const int64_t past = cache != nullptr && !cache->empty() ? cache->front().self.length() : 0;
  torch::Tensor x = Embed(decoder_inputs, decoder_positions_, decoder_ln_embedding_, rng, past);
  AttentionMask self;
  self.causal = true;
  AttentionMask cross;
  cross.key_padding = padding;
  x = RunStack(decoder_, x, self, rng, memory, cross, cache);
  if (decoder_norm_) x = decoder_norm_->forward(x);
  return x;
}

torch::Tensor BartModel::Decode(const torch::Tensor& memory, const torch::Tensor& padding,
                                const torch::Tensor& decoder_inputs, TpRng& rng,
                                StackCache* cache) {
  return lm_head_->forward(DecoderHidden(memory, padding, decoder_inputs, rng, cache)) +
         final_logits_bias_;
}

const torch::Tensor& BartModel::output_weight() const {
  return lm_head_->tied() ? shared_->weight : lm_head_->weight;
}

torch::Tensor BartModel::FullVocabulary(const torch::Tensor& logits) {
  return AllGatherLastDim(logits, *tp_).narrow(-1, 0, c_.vocab_size);
}

VocabShard BartModel::shard() const { return VocabShard{shared_->vocab_start(), c_.vocab_size}; }

double BartModel::FlopsPerSample(int64_t enc, int64_t dec) const {
  const double output = 2.0 * dec * c_.block.hidden * c_.vocab_size;
  return 3.0 * (output + StackForwardFlops(encoder_, enc) + StackForwardFlops(decoder_, dec, enc));
}

}  // namespace braid
