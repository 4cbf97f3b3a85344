// GPT-2 model (see gpt.h).
#include "framework/models/gpt.h"

#include <cmath>

#include "framework/core/check.h"
#include "framework/parallel/mappings.h"

namespace braid {
namespace {
constexpr int64_t kIgnoredLabel = -100;  // VocabParallelCrossEntropy's ignore_index
}  // namespace

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
  if (plan.holds_embedding() && c.embed_layernorm) {
    ln_emb_ = register_module("ln_emb", std::make_shared<Norm>(c_.block, c.block.hidden));
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
  const int64_t s = tokens.size(1);
  const bool restart_positions = plan.embedding && wpe_.defined() && c_.reset_position_ids;
  std::shared_ptr<const DocumentSpans> documents;
  if (c_.reset_attention_mask || restart_positions) {
    documents = std::make_shared<const DocumentSpans>(DocumentSpansOf(tokens, c_.eod));
  }
  if (plan.embedding) {
    x = wte_->forward(tokens);
    if (restart_positions) {
      torch::Tensor pos = DocumentPositions(*documents, s, x.device());
      x = x + wpe_.index_select(0, pos.view({-1})).view({tokens.size(0), s, -1});
    } else if (wpe_.defined()) {
      x = x + wpe_.narrow(0, 0, s);
    }
    if (ln_emb_) x = ln_emb_->forward(x);
    x = Dropout(x, c_.block.hidden_dropout, is_training(), rng.replicated);
  }
  AttentionMask mask = Mask(s, x.options());
  if (c_.reset_attention_mask) mask.documents = documents;
  x = RunStack(chunks_[chunk], x, mask, rng);
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
  torch::Tensor loss;
  if (c_.output_chunk_tokens > 0) {
    torch::Tensor h = CopyToTp(hidden.reshape({-1, hidden.size(-1)}), *tp_);
    const torch::Tensor& w = lm_head_->tied() ? wte_->weight : lm_head_->weight;
    loss =
        ChunkedVocabParallelLoss(h, w, labels.reshape({-1}), *tp_, shard(), c_.output_chunk_tokens);
  } else {
    torch::Tensor logits = lm_head_->forward(hidden);
    loss = VocabParallelCrossEntropy(logits.reshape({-1, logits.size(-1)}), labels.reshape({-1}),
                                     *tp_, shard())
               .mean();
  }
  if (!c_.eod_mask_loss) return loss;
  // The mean over the scored labels (ignored ones count 0 in the mean above); Megatron-LM's
  // sum(loss x mask) / sum(mask).
  torch::Tensor kept = labels.ne(kIgnoredLabel).sum().clamp_min(1).to(loss.scalar_type());
  return loss * (static_cast<double>(labels.numel()) / kept);
}

torch::Tensor GptModel::LossLabels(const torch::Tensor& tokens, const torch::Tensor& labels) const {
  if (!c_.eod_mask_loss) return labels;
  return labels.masked_fill(tokens.eq(c_.eod), kIgnoredLabel);
}

torch::Tensor GptModel::Loss(const torch::Tensor& tokens, const torch::Tensor& labels, TpRng& rng) {
  return LossFromHidden(Hidden(tokens, rng), LossLabels(tokens, labels));
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
