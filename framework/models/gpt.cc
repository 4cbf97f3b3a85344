// GPT-2 model (see gpt.h).
#include "framework/models/gpt.h"

#include <cmath>

#include "framework/core/check.h"
#include "framework/parallel/mappings.h"

namespace braid {

GptModel::GptModel(const TpEnv& env, const GptConfig& c) : c_(c), tp_(env.tp) {
  if (c_.stage.chunks.empty()) c_.stage = StagePlan::Whole(c.layers);
  const StagePlan& plan = c_.stage;
  c_.block.pre_ln = true;
  c_.block.output_init_std = c.block.init_std / std::sqrt(2.0 * c.layers);
  // The input embedding on the first stage; on the last a copy of it when the output is tied
  // (Megatron's scheme: the two copies start equal, drawn from the same seed and name, and their
  // gradients are summed, so they stay equal).
  if (plan.holds_embedding() || (plan.holds_output() && c.tie_embeddings)) {
    wte_ = register_module(
        "wte", std::make_shared<VocabParallelEmbedding>(env, "wte", c.padded_vocab, c.vocab_size,
                                                        c.block.hidden, c.block.init_std));
  }
  if (plan.holds_embedding() && c.position == Position::kLearned) {
    wpe_ = Param("wpe", InitShard(env, "wpe", {c.max_positions, c.block.hidden}, 0.01, TpParam{}),
                 TpParam{});
  }
  if (c.position == Position::kAlibi) {
    const std::vector<double> all = AlibiSlopes(c.block.heads);
    const int64_t per = c.block.heads / env.size();
    slopes_.assign(all.begin() + env.rank() * per, all.begin() + (env.rank() + 1) * per);
  }
  h_ = register_module("h", std::make_shared<torch::nn::Module>());
  for (const StagePlan::Chunk& chunk : plan.chunks) {
    chunks_.push_back(
        StackLayers(env, *h_, "h", c_.block, chunk.first_layer, chunk.num_layers, false));
  }
  if (plan.holds_output()) {
    ln_f_ = register_module("ln_f", std::make_shared<Norm>(c_.block, c.block.hidden));
    lm_head_ = register_module(
        "lm_head", std::make_shared<VocabParallelOutput>(
                       env, "lm_head", c.tie_embeddings ? wte_ : nullptr, c.padded_vocab,
                       c.vocab_size, c.block.hidden, c.block.init_std));
  }
}

AttentionMask GptModel::Mask(int64_t s, const torch::TensorOptions& options) {
  AttentionMask mask;
  mask.causal = true;
  if (!slopes_.empty() || c_.sliding_window > 0) {
    if (!bias_.defined() || bias_.size(-1) != s || bias_.device() != options.device() ||
        bias_.scalar_type() != options.dtype().toScalarType()) {
      bias_ = DecoderPositionBias(s, slopes_, c_.sliding_window, options);
    }
    mask.position_bias = bias_;
  }
  return mask;
}

torch::Tensor GptModel::ChunkForward(int chunk, const torch::Tensor& tokens,
                                     const torch::Tensor& input, TpRng& rng) {
  const StagePlan::Chunk& plan = c_.stage.chunks.at(chunk);
  torch::Tensor x = input;
  if (plan.embedding) {
    x = wte_->forward(tokens);
    if (wpe_.defined()) x = x + wpe_.narrow(0, 0, tokens.size(1));
    x = Dropout(x, c_.block.hidden_dropout, is_training(), rng.replicated);
  }
  x = RunStack(chunks_[chunk], x, Mask(x.size(1), x.options()), rng);
  return plan.output ? ln_f_->forward(x) : x;
}

torch::Tensor GptModel::Hidden(const torch::Tensor& tokens, TpRng& rng) {
  BRAID_CHECK(c_.stage.chunks.size() == 1 && c_.stage.holds_embedding() && c_.stage.holds_output())
      << "GptModel::Hidden runs the whole model; a pipeline stage runs ChunkForward";
  return ChunkForward(0, tokens, {}, rng);
}

torch::Tensor GptModel::Logits(const torch::Tensor& tokens, TpRng& rng) {
  return lm_head_->forward(Hidden(tokens, rng));
}

torch::Tensor GptModel::LossFromHidden(const torch::Tensor& hidden, const torch::Tensor& labels) {
  if (c_.output_chunk_tokens > 0) {
    torch::Tensor h = CopyToTp(hidden.reshape({-1, hidden.size(-1)}), *tp_);
    const torch::Tensor& w = lm_head_->tied() ? wte_->weight : lm_head_->weight;
    return ChunkedVocabParallelLoss(h, w, labels.reshape({-1}), *tp_, shard(),
                                    c_.output_chunk_tokens);
  }
  torch::Tensor logits = lm_head_->forward(hidden);
  return VocabParallelCrossEntropy(logits.reshape({-1, logits.size(-1)}), labels.reshape({-1}),
                                   *tp_, shard())
      .mean();
}

torch::Tensor GptModel::Loss(const torch::Tensor& tokens, const torch::Tensor& labels, TpRng& rng) {
  return LossFromHidden(Hidden(tokens, rng), labels);
}

torch::Tensor GptModel::FullLogits(const torch::Tensor& tokens, TpRng& rng) {
  torch::Tensor all = AllGatherLastDim(Logits(tokens, rng), *tp_);
  return all.narrow(-1, 0, c_.vocab_size);
}

torch::Tensor GptModel::EmbeddingWeight() const { return wte_ ? wte_->weight : torch::Tensor(); }

VocabShard GptModel::shard() const {
  const int64_t per = c_.padded_vocab / tp_->size();
  return VocabShard{wte_ ? wte_->vocab_start() : per * tp_->rank(), c_.vocab_size};
}

double GptModel::FlopsPerSample(int64_t seq) const {
  // The whole model's, also on a pipeline stage (MFU divides by every rank's peak).
  const double forward = 2.0 * seq * c_.block.hidden * c_.vocab_size +
                         WholeStackForwardFlops(c_.block, c_.layers, false, seq);
  return 3.0 * forward;
}

}  // namespace braid
