// GPT-2 model (see gpt.h).
#include "framework/models/gpt.h"

#include <cmath>

#include "framework/parallel/mappings.h"

namespace braid {

GptModel::GptModel(const TpEnv& env, const GptConfig& c) : c_(c), tp_(env.tp) {
  c_.block.pre_ln = true;
  c_.block.output_init_std = c.block.init_std / std::sqrt(2.0 * c.layers);
  wte_ = register_module(
      "wte", std::make_shared<VocabParallelEmbedding>(env, "wte", c.padded_vocab, c.vocab_size,
                                                      c.block.hidden, c.block.init_std));
  if (c.position == Position::kLearned) {
    wpe_ = Param("wpe", InitShard(env, "wpe", {c.max_positions, c.block.hidden}, 0.01, TpParam{}),
                 TpParam{});
  } else if (c.position == Position::kAlibi) {
    const std::vector<double> all = AlibiSlopes(c.block.heads);
    const int64_t per = c.block.heads / env.size();
    slopes_.assign(all.begin() + env.rank() * per, all.begin() + (env.rank() + 1) * per);
  }
  h_ = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.layers; ++i) {
    h_->push_back(std::make_shared<TransformerLayer>(env, "h." + std::to_string(i),
                                                     LayerBlock(c_.block, i), false));
  }
  ln_f_ = register_module("ln_f", std::make_shared<Norm>(c_.block, c.block.hidden));
  lm_head_ = register_module("lm_head",
                             std::make_shared<VocabParallelOutput>(
                                 env, "lm_head", c.tie_embeddings ? wte_ : nullptr, c.padded_vocab,
                                 c.vocab_size, c.block.hidden, c.block.init_std));
}

torch::Tensor GptModel::Hidden(const torch::Tensor& tokens, TpRng& rng) {
  const int64_t s = tokens.size(1);
  torch::Tensor x = wte_->forward(tokens);
  if (wpe_.defined()) x = x + wpe_.narrow(0, 0, s);
  x = Dropout(x, c_.block.hidden_dropout, is_training(), rng.replicated);
  AttentionMask mask;
  mask.causal = true;
  if (!slopes_.empty() || c_.sliding_window > 0) {
    if (!bias_.defined() || bias_.size(-1) != s || bias_.device() != x.device() ||
        bias_.scalar_type() != x.scalar_type()) {
      bias_ = DecoderPositionBias(s, slopes_, c_.sliding_window, x.options());
    }
    mask.position_bias = bias_;
  }
  return ln_f_->forward(RunStack(h_, x, mask, rng));
}

torch::Tensor GptModel::Logits(const torch::Tensor& tokens, TpRng& rng) {
  return lm_head_->forward(Hidden(tokens, rng));
}

torch::Tensor GptModel::Loss(const torch::Tensor& tokens, const torch::Tensor& labels, TpRng& rng) {
  if (c_.output_chunk_tokens > 0) {
    torch::Tensor h = Hidden(tokens, rng);
    h = CopyToTp(h.reshape({-1, h.size(-1)}), *tp_);
    const torch::Tensor& w = lm_head_->tied() ? wte_->weight : lm_head_->weight;
    return ChunkedVocabParallelLoss(h, w, labels.reshape({-1}), *tp_, shard(),
                                    c_.output_chunk_tokens);
  }
  torch::Tensor logits = Logits(tokens, rng);
  return VocabParallelCrossEntropy(logits.reshape({-1, logits.size(-1)}), labels.reshape({-1}),
                                   *tp_, shard())
      .mean();
}

torch::Tensor GptModel::FullLogits(const torch::Tensor& tokens, TpRng& rng) {
  torch::Tensor all = AllGatherLastDim(Logits(tokens, rng), *tp_);
  return all.narrow(-1, 0, c_.vocab_size);
}

VocabShard GptModel::shard() const { return VocabShard{wte_->vocab_start(), c_.vocab_size}; }

double GptModel::FlopsPerSample(int64_t seq) const {
  double forward = 2.0 * seq * c_.block.hidden * c_.vocab_size;  // the output projection
  for (const auto& layer : *h_) forward += layer->as<TransformerLayer>()->ForwardFlops(seq);
  return 3.0 * forward;
}

}  // namespace braid
