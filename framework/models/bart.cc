// BART model (see bart.h).
#include "framework/models/bart.h"

#include "framework/core/check.h"

#include <cmath>

#include "framework/parallel/mappings.h"

namespace braid {

BartModel::BartModel(const TpEnv& env, const BartConfig& c) : c_(c), tp_(env.tp) {
  c_.block.bias = true;
  c_.block.scale_scores = true;
  const int64_t E = c.encoder_layers;
  if (c_.stage.chunks.empty()) c_.stage = StagePlan::Whole(E + c.decoder_layers);
  const StagePlan& plan = c_.stage;
  const BlockConfig& b = c_.block;
  const double std = b.init_std;
  // The shared embedding on the first stage (which embeds both stacks' ids); on the last a copy
  // when the output layer is tied to it (GptModel's scheme).
  if (plan.holds_embedding() || (plan.holds_output() && c.tie_embeddings)) {
    shared_ =
        register_module("shared", std::make_shared<VocabParallelEmbedding>(
                                      env, "shared", c.padded_vocab, c.vocab_size, b.hidden, std));
  }
  if (plan.holds_embedding()) {
    const std::vector<int64_t> table = {c.max_positions + kPositionOffset, b.hidden};
    encoder_positions_ = Param(
        "encoder_positions", InitShard(env, "encoder_positions", table, std, TpParam{}), TpParam{});
    decoder_positions_ = Param(
        "decoder_positions", InitShard(env, "decoder_positions", table, std, TpParam{}), TpParam{});
    encoder_ln_embedding_ =
        register_module("encoder_ln_embedding", std::make_shared<Norm>(b, b.hidden));
    decoder_ln_embedding_ =
        register_module("decoder_ln_embedding", std::make_shared<Norm>(b, b.hidden));
  }
  stacks_ = BuildEncoderDecoderStacks(env, *this, plan, E, b);
  if (b.pre_ln && stacks_.ends_encoder) {
    encoder_norm_ = register_module("encoder_norm", std::make_shared<Norm>(b, b.hidden));
  }
  if (!plan.holds_output()) return;
  if (b.pre_ln) {
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
  BRAID_CHECK(!stacks_.whole_encoder.is_empty())
      << "BartModel::Encode runs the whole model; a pipeline "
         "stage runs ChunkForward";
  torch::Tensor x = Embed(inputs, encoder_positions_, encoder_ln_embedding_, rng);
  AttentionMask mask;
  mask.key_padding = padding;
  x = RunStack(stacks_.whole_encoder, x, mask, rng);
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
  x = RunStack(stacks_.whole_decoder, x, self, rng, memory, cross, cache);
  if (decoder_norm_) x = decoder_norm_->forward(x);
  return x;
}

torch::Tensor BartModel::OutputLogits(const torch::Tensor& hidden) {
  return lm_head_->forward(hidden) + final_logits_bias_;
}

std::vector<torch::Tensor> BartModel::ChunkForward(int chunk, const torch::Tensor& inputs,
                                                   const torch::Tensor& padding,
                                                   const torch::Tensor& decoder_inputs,
                                                   const std::vector<torch::Tensor>& input,
                                                   TpRng& rng) {
  const StagePlan::Chunk& plan = c_.stage.chunks.at(chunk);
  const EncoderDecoderChunk k = SplitEncoderDecoder(plan, c_.encoder_layers);
  std::vector<torch::Tensor> st = input;
  if (plan.embedding) {
    st = {Embed(inputs, encoder_positions_, encoder_ln_embedding_, rng),
          Embed(decoder_inputs, decoder_positions_, decoder_ln_embedding_, rng)};
  }
  if (k.encoder_count > 0) {
    AttentionMask mask;
    mask.key_padding = padding;
    st[0] = RunStack(stacks_.encoder[chunk], st[0], mask, rng);
  }
  if (k.ends_encoder && encoder_norm_) st[0] = encoder_norm_->forward(st[0]);
  if (k.decoder_count > 0) {
    AttentionMask self;
    self.causal = true;
    AttentionMask cross;
    cross.key_padding = padding;
    st[1] = RunStack(stacks_.decoder[chunk], st[1], self, rng, st[0], cross);
  }
  if (!plan.output) return st;
  return {decoder_norm_ ? decoder_norm_->forward(st[1]) : st[1]};
}

std::vector<torch::Tensor> BartModel::BoundaryLike(int64_t b, int64_t enc, int64_t dec,
                                                   int64_t) const {
  const torch::TensorOptions o = parameters().front().options().requires_grad(false);
  return {torch::empty({b, enc, c_.block.hidden}, o), torch::empty({b, dec, c_.block.hidden}, o)};
}

const torch::Tensor& BartModel::output_weight() const {
  return lm_head_->tied() ? shared_->weight : lm_head_->weight;
}

torch::Tensor BartModel::FullVocabulary(const torch::Tensor& logits) {
  return AllGatherLastDim(logits, *tp_).narrow(-1, 0, c_.vocab_size);
}

VocabShard BartModel::shard() const {
  return VocabShard{c_.padded_vocab / tp_->size() * tp_->rank(), c_.vocab_size};
}

double BartModel::FlopsPerSample(int64_t enc, int64_t dec) const {
  const double output = 2.0 * dec * c_.block.hidden * c_.vocab_size;
  // Every layer's, also on a pipeline stage (MFU divides by every rank's peak).
  return 3.0 * (output + WholeStackForwardFlops(c_.block, c_.encoder_layers, false, enc) +
                WholeStackForwardFlops(c_.block, c_.decoder_layers, true, dec, enc));
}

}  // namespace braid
