// BERT model (see bert.h).
#include "framework/models/bert.h"

#include "framework/core/check.h"

namespace braid {
namespace {
// A replicated linear layer drawn from (seed, name), like the parallel layers.
torch::nn::Linear ReplicatedLinear(const TpEnv& env, const std::string& name, int64_t in,
                                   int64_t out, double std) {
  torch::nn::Linear l(torch::nn::LinearOptions(in, out));
  torch::NoGradGuard no_grad;
  l->weight.copy_(InitShard(env, name + ".weight", {out, in}, std, TpParam{}));
  l->bias.zero_();
  return l;
}
}  // namespace

BertModel::BertModel(const TpEnv& env, const BertConfig& c) : c_(c), tp_(env.tp) {
  c_.block.pre_ln = false;
  if (c_.stage.chunks.empty()) c_.stage = StagePlan::Whole(c.layers);
  const StagePlan& plan = c_.stage;
  const int64_t e = c.block.hidden;
  const double std = c.block.init_std;
  // The word embeddings on the first stage; on the last a copy when the MLM output is tied to
  // them (drawn alike, their gradients summed: GptModel's scheme).
  if (plan.holds_embedding() || (plan.holds_output() && c.tie_embeddings)) {
    word_ = register_module("word_embeddings",
                            std::make_shared<VocabParallelEmbedding>(
                                env, "word_embeddings", c.padded_vocab, c.vocab_size, e, std));
  }
  if (plan.holds_embedding()) {
    position_ = Param("position_embeddings",
                      InitShard(env, "position_embeddings", {c.max_positions, e}, std, TpParam{}),
                      TpParam{});
    token_type_ = Param(
        "token_type_embeddings",
        InitShard(env, "token_type_embeddings", {c.num_token_types, e}, std, TpParam{}), TpParam{});
    emb_ln_ = register_module("embeddings_ln", std::make_shared<Norm>(c_.block, e));
  }
  auto holder = register_module("layers", std::make_shared<torch::nn::Module>());
  for (const StagePlan::Chunk& chunk : plan.chunks) {
    chunks_.push_back(
        StackLayers(env, *holder, "layers", c_.block, chunk.first_layer, chunk.num_layers, false));
  }
  if (!plan.holds_output()) return;
  lm_dense_ = register_module("lm_dense", ReplicatedLinear(env, "lm_dense", e, e, std));
  lm_ln_ = register_module("lm_ln", std::make_shared<Norm>(c_.block, e));
  lm_head_ = register_module("lm_head", std::make_shared<VocabParallelOutput>(
                                            env, "lm_head", c.tie_embeddings ? word_ : nullptr,
                                            c.padded_vocab, c.vocab_size, e, std));
  lm_bias_ = Param("lm_bias", InitShard(env, "lm_bias", {c.padded_vocab}, 0.0, {0, 1, true}),
                   TpParam{0, 1, true});
  if (c.binary_head) {
    pooler_ = register_module("pooler", ReplicatedLinear(env, "pooler", e, e, std));
    binary_ = register_module("binary_head", ReplicatedLinear(env, "binary_head", e, 2, std));
  }
}

torch::Tensor BertModel::ChunkForward(int chunk, const torch::Tensor& ids,
                                      const torch::Tensor& types, const torch::Tensor& padding,
                                      const torch::Tensor& input, TpRng& rng) {
  torch::Tensor x = input;
  if (c_.stage.chunks.at(chunk).embedding) {
    const int64_t s = ids.size(1);
    x = word_->forward(ids) + position_.narrow(0, 0, s) + torch::embedding(token_type_, types);
    x = Dropout(emb_ln_->forward(x), c_.block.hidden_dropout, is_training(), rng.replicated);
  }
  AttentionMask mask;
  mask.key_padding = padding;
  if (c_.document_sep >= 0) {  // every stage finds the documents itself from the ids
    auto spans = std::make_shared<DocumentSpans>(DocumentSpansOf(ids, c_.document_sep, padding));
    if (!spans->OneEach()) mask.documents = std::move(spans);
  }
  return RunStack(chunks_[chunk], x, mask, rng);
}

BertOutput BertModel::Heads(const torch::Tensor& x, bool logits) {
  BertOutput out;
  out.mlm_hidden = lm_ln_->forward(torch::gelu(lm_dense_->forward(x)));
  if (logits) out.mlm_logits = lm_head_->forward(out.mlm_hidden) + lm_bias_;
  if (binary_) {
    torch::Tensor pooled = torch::tanh(pooler_->forward(x.select(1, 0)));
    out.binary_logits = binary_->forward(pooled);
  }
  return out;
}

BertOutput BertModel::Forward(const torch::Tensor& ids, const torch::Tensor& types,
                              const torch::Tensor& padding, TpRng& rng, bool logits) {
  BRAID_CHECK(c_.stage.chunks.size() == 1 && c_.stage.holds_embedding() && c_.stage.holds_output())
      << "BertModel::Forward runs the whole model; a pipeline stage runs ChunkForward";
  return Heads(ChunkForward(0, ids, types, padding, {}, rng), logits);
}

const torch::Tensor& BertModel::output_weight() const {
  return lm_head_->tied() ? word_->weight : lm_head_->weight;
}

VocabShard BertModel::shard() const {
  return VocabShard{c_.padded_vocab / tp_->size() * tp_->rank(), c_.vocab_size};
}

double BertModel::FlopsPerSample(int64_t seq) const {
  const double e = static_cast<double>(c_.block.hidden), s = static_cast<double>(seq);
  double forward = 2.0 * s * e * e + 2.0 * s * e * c_.vocab_size;  // MLM dense, output projection
  if (c_.binary_head) forward += 2.0 * e * e + 2.0 * e * 2;  // pooler and binary head on [CLS]
  // Every layer's, also on a pipeline stage (MFU divides by every rank's peak).
  forward += WholeStackForwardFlops(c_.block, c_.layers, false, seq);
  return 3.0 * forward;
}

}  // namespace braid
