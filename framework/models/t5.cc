// T5 model (see t5.h).
#include "framework/models/t5.h"

#include <cmath>

#include "framework/core/check.h"
#include "framework/parallel/mappings.h"

namespace braid {

T5Model::T5Model(const TpEnv& env, const T5Config& c) : c_(c), tp_(env.tp) {
  c_.block.bias = false;
  c_.block.scale_scores = false;
  c_.block.pre_ln = true;
  const int64_t E = c.encoder_layers;
  if (c_.stage.chunks.empty()) c_.stage = StagePlan::Whole(E + c.decoder_layers);
  const StagePlan& plan = c_.stage;
  const BlockConfig& b = c_.block;
  // The shared embedding on the first stage (which embeds both stacks' ids); on the last a copy
  // when the output layer is tied to it (GptModel's scheme).
  if (plan.holds_embedding() || (plan.holds_output() && c.tie_embeddings)) {
    shared_ = register_module(
        "shared", std::make_shared<VocabParallelEmbedding>(env, "shared", c.padded_vocab,
                                                           c.vocab_size, b.hidden, b.init_std));
  }
  stacks_ = BuildEncoderDecoderStacks(env, *this, plan, E, b);
  if (plan.holds_embedding()) {
    encoder_bias_ = register_module(
        "encoder_position_bias",
        std::make_shared<RelativePositionBias>(env, "encoder_position_bias", b.heads, true,
                                               c.num_buckets, c.max_distance, b.init_std));
    decoder_bias_ = register_module(
        "decoder_position_bias",
        std::make_shared<RelativePositionBias>(env, "decoder_position_bias", b.heads, false,
                                               c.num_buckets, c.max_distance, b.init_std));
  }
  if (stacks_.ends_encoder) {
    encoder_norm_ = register_module("encoder_norm", std::make_shared<Norm>(b, b.hidden));
  }
  if (plan.holds_output()) {
    decoder_norm_ = register_module("decoder_norm", std::make_shared<Norm>(b, b.hidden));
    lm_head_ = register_module("lm_head", std::make_shared<VocabParallelOutput>(
                                              env, "lm_head", c.tie_embeddings ? shared_ : nullptr,
                                              c.padded_vocab, c.vocab_size, b.hidden, b.init_std));
  }
}

torch::Tensor T5Model::Encode(const torch::Tensor& inputs, const torch::Tensor& padding,
                              TpRng& rng) {
  BRAID_CHECK(!stacks_.whole_encoder.is_empty())
      << "T5Model::Encode runs the whole model; a pipeline stage "
         "runs ChunkForward";
  const int64_t s = inputs.size(1);
  torch::Tensor x =
      Dropout(shared_->forward(inputs), c_.block.hidden_dropout, is_training(), rng.replicated);
  AttentionMask mask;
  mask.key_padding = padding;
  mask.position_bias = encoder_bias_->forward(s, s);
  x = RunStack(stacks_.whole_encoder, x, mask, rng);
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
  x = RunStack(stacks_.whole_decoder, x, self, rng, memory, cross, cache);
  x = Dropout(decoder_norm_->forward(x), c_.block.hidden_dropout, is_training(), rng.replicated);
  // The original T5 rescales before the output layer it shares with the embedding.
  if (c_.tie_embeddings) x = x * (1.0 / std::sqrt(static_cast<double>(c_.block.hidden)));
  return x;
}

std::vector<torch::Tensor> T5Model::ChunkForward(int chunk, const torch::Tensor& inputs,
                                                 const torch::Tensor& padding,
                                                 const torch::Tensor& decoder_inputs,
                                                 const std::vector<torch::Tensor>& input,
                                                 TpRng& rng) {
  const StagePlan::Chunk& plan = c_.stage.chunks.at(chunk);
  const EncoderDecoderChunk k = SplitEncoderDecoder(plan, c_.encoder_layers);
  const double p = c_.block.hidden_dropout;
  std::vector<torch::Tensor> st = input;
  if (plan.embedding) {
    const int64_t enc = inputs.size(1), dec = decoder_inputs.size(1);
    st = {Dropout(shared_->forward(inputs), p, is_training(), rng.replicated),
          encoder_bias_->forward(enc, enc),
          Dropout(shared_->forward(decoder_inputs), p, is_training(), rng.replicated),
          decoder_bias_->forward(dec, dec)};
  }
  if (k.encoder_count > 0) {
    AttentionMask mask;
    mask.key_padding = padding;
    mask.position_bias = st[1];
    st[0] = RunStack(stacks_.encoder[chunk], st[0], mask, rng);
  }
  if (k.ends_encoder) {
    st = {Dropout(encoder_norm_->forward(st[0]), p, is_training(), rng.replicated), st[2], st[3]};
  }
  if (k.decoder_count > 0) {
    AttentionMask self;
    self.causal = true;
    self.position_bias = st[2];
    AttentionMask cross;
    cross.key_padding = padding;
    st[1] = RunStack(stacks_.decoder[chunk], st[1], self, rng, st[0], cross);
  }
  if (!plan.output) return st;
  torch::Tensor x = Dropout(decoder_norm_->forward(st[1]), p, is_training(), rng.replicated);
  if (c_.tie_embeddings) x = x * (1.0 / std::sqrt(static_cast<double>(c_.block.hidden)));
  return {x};
}

std::vector<torch::Tensor> T5Model::BoundaryLike(int64_t b, int64_t enc, int64_t dec,
                                                 int64_t layers_done) const {
  const torch::TensorOptions o = parameters().front().options().requires_grad(false);
  const int64_t h = c_.block.hidden, heads = c_.block.heads / tp_->size();
  torch::Tensor dec_bias = torch::empty({1, heads, dec, dec}, o);
  if (layers_done < c_.encoder_layers) {
    return {torch::empty({b, enc, h}, o), torch::empty({1, heads, enc, enc}, o),
            torch::empty({b, dec, h}, o), dec_bias};
  }
  return {torch::empty({b, enc, h}, o), torch::empty({b, dec, h}, o), dec_bias};
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

VocabShard T5Model::shard() const {
  return VocabShard{c_.padded_vocab / tp_->size() * tp_->rank(), c_.vocab_size};
}

double T5Model::FlopsPerSample(int64_t enc, int64_t dec) const {
  const double output = 2.0 * dec * c_.block.hidden * c_.vocab_size;
  // Every layer's, also on a pipeline stage (MFU divides by every rank's peak).
  return 3.0 * (output + WholeStackForwardFlops(c_.block, c_.encoder_layers, false, enc) +
                WholeStackForwardFlops(c_.block, c_.decoder_layers, true, dec, enc));
}

}  // namespace braid
