// Transformer building blocks (see blocks.h).
#include "framework/nn/blocks.h"
#include "framework/nn/moe.h"

#include <torch/version.h>

#include <cmath>
#include <limits>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "framework/core/check.h"
#include "framework/kernels/kernels.h"
#include "framework/parallel/autocast.h"
#include "framework/parallel/mappings.h"

namespace braid {

namespace {
// ---- activation recomputation ----
//
// Recomputed(fn, inputs, rng): fn(inputs) run without keeping its activations. The forward runs
// fn under no-grad and keeps only the inputs, the dropout generators' states and whether autocast
// was on; backward restores those states, runs fn again with gradients on detached copies of the
// inputs, and back-propagates through that (a nested backward, which also accumulates the
// parameters' gradients and fires the DP reducer's hooks), then puts the generators back where
// the forward pass left them. fn must be a function of its inputs, the parameters and the
// generators only; tensors that need gradients must come in as inputs.
using InputsFn = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

struct RecomputeState : torch::CustomClassHolder {
  InputsFn fn;
  TpRng* rng = nullptr;
  torch::Tensor replicated, sharded;  // the generators' states before the forward
  bool autocast = false;
};

class RecomputeFunction : public torch::autograd::Function<RecomputeFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, at::TensorList inputs,
                               const c10::intrusive_ptr<RecomputeState>& state) {
    ctx->save_for_backward(inputs.vec());
    ctx->saved_data["state"] = c10::IValue::make_capsule(state);
    return state->fn(inputs.vec());  // Function::apply runs this with gradients off
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto state =
        c10::static_intrusive_pointer_cast<RecomputeState>(ctx->saved_data["state"].toCapsule());
    std::vector<torch::Tensor> inputs;
    for (const torch::Tensor& t : ctx->get_saved_variables()) {
      inputs.push_back(t.defined() ? t.detach().requires_grad_(t.requires_grad()) : t);
    }
    TpRng& rng = *state->rng;
    const torch::Tensor now_replicated = rng.replicated.get_state();
    const torch::Tensor now_sharded = rng.sharded.get_state();
    rng.replicated.set_state(state->replicated);
    rng.sharded.set_state(state->sharded);
    torch::Tensor out;
    {
      torch::AutoGradMode grad_on(true);
      AutocastScope autocast(inputs[0].device().type(), state->autocast);
      out = state->fn(inputs);
    }
    rng.replicated.set_state(now_replicated);
    rng.sharded.set_state(now_sharded);
    torch::autograd::backward({out}, {grad_out[0]});
    torch::autograd::variable_list grads;
    for (const torch::Tensor& t : inputs) {
      grads.push_back(t.defined() && t.requires_grad() ? t.grad() : torch::Tensor());
    }
    grads.emplace_back();  // the state argument
    return grads;
  }
};

// fn(inputs), recomputed in backward when gradients are being recorded; plain fn otherwise.
torch::Tensor Recomputed(const InputsFn& fn, const std::vector<torch::Tensor>& inputs, TpRng& rng) {
  if (!torch::GradMode::is_enabled()) return fn(inputs);
  auto state = c10::make_intrusive<RecomputeState>();
  state->fn = fn;
  state->rng = &rng;
  state->replicated = rng.replicated.get_state();
  state->sharded = rng.sharded.get_state();
  state->autocast = AutocastEnabled(inputs[0].device().type());
  return RecomputeFunction::apply(at::TensorList(inputs), state);
}

// Undefined tensors travel through Recomputed as empty ones (a Function's inputs are defined).
torch::Tensor OrEmpty(const torch::Tensor& t, const torch::Tensor& like) {
  return t.defined() ? t : torch::empty({0}, like.options());
}
torch::Tensor Undefined(const torch::Tensor& t) {
  return t.numel() == 0 && t.dim() == 1 ? torch::Tensor() : t;
}

}  // namespace

BlockConfig LayerBlock(const BlockConfig& c, int64_t index) {
  BlockConfig b = c;
  if (b.recompute == Recompute::kFull && b.recompute_layers > 0 && index >= b.recompute_layers) {
    b.recompute = Recompute::kNone;
  }
  if (!b.moe.layers.empty() &&
      (index >= static_cast<int64_t>(b.moe.layers.size()) || !b.moe.layers[index])) {
    b.moe.experts = 0;
  }
  return b;
}

Norm::Norm(const BlockConfig& c, int64_t dim, std::shared_ptr<Communicator> sequence_group)
    : rms_(c.norm == NormType::kRmsNorm), eps_(c.eps), sequence_group_(std::move(sequence_group)) {
  weight = Param("weight", torch::ones({dim}), TpParam{});
  if (!rms_) bias = Param("bias", torch::zeros({dim}), TpParam{});
}

torch::Tensor Norm::forward(const torch::Tensor& x) {
  torch::Tensor w = weight, b = bias;
  if (sequence_group_) {  // this rank's positions only: the gradients are partial sums
    w = CopyToTp(w, *sequence_group_);
    if (b.defined()) b = CopyToTp(b, *sequence_group_);
  }
  if (!rms_) return torch::layer_norm(x, {x.size(-1)}, w, b, eps_);
  return RmsNorm(x, w, eps_);
}

Attention::Attention(const TpEnv& env, const std::string& name, const BlockConfig& c, bool cross)
    : dropout_(c.attention_dropout),
      scale_(c.scale_scores),
      recompute_core_(c.recompute == Recompute::kSelective) {
  BRAID_CHECK(c.heads % env.size() == 0 && (c.head_dim > 0 || c.hidden % c.heads == 0));
  heads_ = c.heads / env.size();
  head_dim_ = c.HeadDim();
  const int64_t width = c.AttentionWidth();
  if (cross) {
    q_ = register_module("q",
                         std::make_shared<ColumnParallelLinear>(env, name + ".q", c.hidden, width,
                                                                c.bias || c.qkv_bias, c.init_std));
    TpEnv whole = env;  // the encoder output is whole on every rank, not a sequence slice
    whole.sequence_parallel = false;
    kv_ = register_module(
        "kv", std::make_shared<ColumnParallelLinear>(whole, name + ".kv", c.hidden, 2 * width,
                                                     c.bias || c.qkv_bias, c.init_std, false, 2));
  } else if (c.kv_groups > 0) {
    // Per group: its heads' queries, one key, one value; a contiguous split keeps groups whole.
    // One group (multi-query) over several ranks: each holds its share of the queries and the
    // key and value rows whole (their gradients summed over TP).
    BRAID_CHECK(c.heads % c.kv_groups == 0 && (c.kv_groups % env.size() == 0 || c.kv_groups == 1));
    groups_ = std::max<int64_t>(1, c.kv_groups / env.size());
    const int64_t rows = c.kv_groups * (c.heads / c.kv_groups + 2) * head_dim_;
    const int64_t replicated = c.kv_groups == 1 ? 2 * head_dim_ : 0;  // at any TP size
    qkv_ = register_module("qkv", std::make_shared<ColumnParallelLinear>(
                                      env, name + ".qkv", c.hidden, rows, c.bias || c.qkv_bias,
                                      c.init_std, false, 1, replicated));
  } else {
    // Rows q | k | v, each split by heads: every shard holds whole heads of all three.
    qkv_ = register_module(
        "qkv", std::make_shared<ColumnParallelLinear>(env, name + ".qkv", c.hidden, 3 * width,
                                                      c.bias || c.qkv_bias, c.init_std, false, 3));
  }
  if (!cross) rope_theta_ = c.rope_theta;
  rope_dims_ = c.rope_dims > 0 ? c.rope_dims : head_dim_;
  BRAID_CHECK(rope_dims_ % 2 == 0 && rope_dims_ <= head_dim_);
  out_ =
      register_module("out", std::make_shared<RowParallelLinear>(
                                 env, name + ".out", width, c.hidden, c.bias, c.output_init_std));
}

torch::Tensor Attention::forward(const torch::Tensor& x, const AttentionMask& mask, TpRng& rng,
                                 const torch::Tensor& memory, KvCache* cache) {
  // The projection first: with sequence parallelism x holds s/TP positions and the projection
  // the whole sequence.
  const torch::Tensor proj = qkv_ ? qkv_->forward(x) : q_->forward(x);
  const int64_t b = proj.size(0), sq = proj.size(1);
  const bool grouped = groups_ > 0 && groups_ < heads_;  // keys shared by several query heads
  bool fused = false;                                    // the fused kernel below
#if TORCH_VERSION_MAJOR >= 2
  // LibTorch 2.x: the fused kernel (flash / memory-efficient on GPUs, a blocked kernel on CPUs)
  // never materialises the scores. Used where it computes exactly what the path below does: the
  // 1/sqrt(d) scaling, no additive position bias, and no attention dropout in training (SDPA
  // would draw it from the device's default generator instead of this rank's TP stream).
  fused = scale_ && !mask.position_bias.defined() && (dropout_ == 0 || !is_training()) && !grouped;
#endif
  // The path below scales q (s x d) rather than the scores (s x s).
  const double q_scale = scale_ && !fused ? 1.0 / std::sqrt(static_cast<double>(head_dim_)) : 1.0;
  // [b, s, n, d] (a view of the projection's output) -> [b, n, s, d] contiguous: the batched GEMMs
  // run about twice as fast on packed operands as on strided views (OpenBLAS here). With RoPE
  // the rotation (and q's scale) is done in that same copy.
  const bool rope = rope_theta_ > 0;
  if (rope && (!rope_cos_.defined() || rope_cos_.size(0) != sq ||
               rope_cos_.scalar_type() != x.scalar_type() || rope_cos_.device() != x.device())) {
    std::tie(rope_cos_, rope_sin_) = RopeTables(sq, rope_dims_, rope_theta_, x.options());
  }
  auto split = [&](const torch::Tensor& t, double scale, bool rotate) {
    auto heads_first = [&](const torch::Tensor& part) {
      torch::Tensor h = part.dim() == 5 ? part.flatten(2, 3) : part;
      h = h.transpose(1, 2).contiguous();
      return scale == 1.0 ? h : h * scale;
    };
    if (!rotate) return heads_first(t);
    if (rope_dims_ == head_dim_) return RopeHeads(t, rope_cos_, rope_sin_, scale);
    // Partial rotary (GPT-NeoX): the first rope_dims_ dimensions turned, the rest as they are.
    return torch::cat({RopeHeads(t.narrow(-1, 0, rope_dims_), rope_cos_, rope_sin_, scale),
                       heads_first(t.narrow(-1, rope_dims_, head_dim_ - rope_dims_))},
                      -1);
  };
  torch::Tensor q, k, v;
  if (groups_ > 0) {
    const int64_t per = heads_ / groups_;
    torch::Tensor g = proj.view({b, sq, groups_, per + 2, head_dim_});
    q = split(g.narrow(3, 0, per), q_scale, rope);  // [b, heads, s, d]
    k = split(g.select(3, per), 1.0, rope);         // [b, groups, s, d]
    v = split(g.select(3, per + 1), 1.0, false);
  } else if (qkv_) {
    auto parts = proj.chunk(3, -1);
    auto view = [&](const torch::Tensor& t) { return t.view({b, sq, heads_, head_dim_}); };
    q = split(view(parts[0]), q_scale, rope);
    k = split(view(parts[1]), 1.0, rope);
    v = split(view(parts[2]), 1.0, false);
  } else {
    q = split(proj.view({b, sq, heads_, head_dim_}), q_scale, false);
    if (cache != nullptr && cache->k.defined()) {  // the memory's keys and values, made once
      k = cache->k;
      v = cache->v;
    } else {
      auto parts = kv_->forward(memory).chunk(2, -1);
      const int64_t sk = memory.size(1);
      k = split(parts[0].view({b, sk, heads_, head_dim_}), 1.0, false);
      v = split(parts[1].view({b, sk, heads_, head_dim_}), 1.0, false);
      if (cache != nullptr) *cache = KvCache{k, v};
    }
  }
  AttentionMask m = mask;
  if (cache != nullptr && qkv_) {  // self-attention: the new positions' keys after the cached
    BRAID_CHECK(!rope && !is_training());
    if (cache->k.defined()) {
      k = torch::cat({cache->k, k}, 2);
      v = torch::cat({cache->v, v}, 2);
    }
    *cache = KvCache{k, v};
    // One new query sees every key so far: no causal mask is needed for it.
    BRAID_CHECK(!m.causal || sq == k.size(2) || sq == 1);
    if (sq == 1) m.causal = false;
  }
  const int64_t sk = k.size(2);
  // Documents packed in the samples: attention within each (AttentionMask::documents).
  const bool documents = m.documents != nullptr && !m.documents->OneEach();
  if (documents) {
    BRAID_CHECK(cache == nullptr && sq == sk &&
                static_cast<int64_t>(m.documents->samples.size()) == b)
        << "document masking is for self-attention over whole samples";
  }
#if TORCH_VERSION_MAJOR >= 2
  if (fused && !documents && (!m.causal || sq == sk)) {
    torch::Tensor ctx;
    if (m.key_padding.defined()) {
      torch::Tensor keep = m.key_padding.logical_not().view({b, 1, 1, sk});  // true = attend
      if (m.causal) {
        keep = keep.logical_and(torch::ones({sq, sk}, q.options().dtype(torch::kBool)).tril());
      }
      ctx = at::scaled_dot_product_attention(q, k, v, keep, 0.0, false);
    } else {
      ctx = at::scaled_dot_product_attention(q, k, v, {}, 0.0, m.causal);
    }
    return out_->forward(ctx.transpose(1, 2).reshape({b, sq, heads_ * head_dim_}));
  }
  if (fused && !documents) {
    q = q * (1.0 / std::sqrt(static_cast<double>(head_dim_)));  // not taken after all
    fused = false;
  }
#endif
  // Grouped: a group's queries stacked along the sequence meet its keys in one GEMM.
  const int64_t kv_heads = grouped ? groups_ : heads_;
  const bool train = is_training();
  // The core: scores, masks, softmax, dropout, context. Its [b, heads, s, s] intermediates are
  // what selective recomputation does not keep.
  // Captures by value: a recomputation runs after this call has returned.
  auto core_of = [this, &rng, kv_heads, train, causal = m.causal](torch::Tensor key_padding) {
    return [this, &rng, kv_heads, train, causal,
            key_padding = std::move(key_padding)](const std::vector<torch::Tensor>& in) {
      const torch::Tensor &q = in[0], &k = in[1], &v = in[2], bias = Undefined(in[3]);
      const int64_t b = q.size(0), sq = q.size(2), sk = k.size(2), rows = heads_ / kv_heads * sq;
      torch::Tensor scores =
          BatchedMatmul(q.view({b, kv_heads, rows, head_dim_}), k.transpose(-2, -1))
              .view({b, heads_, sq, sk});
      if (bias.defined()) scores = scores + bias;
      // The masks and the softmax in one pass on CPUs; the fill and torch::softmax elsewhere.
      torch::Tensor probs;
      if (key_padding.defined()) {
        probs = MaskedSoftmax(scores, key_padding, causal);
      } else if (causal) {
        probs = CausalSoftmax(scores);
      } else {
        probs = torch::softmax(scores, -1);
      }
      probs = Dropout(probs, dropout_, train, rng.sharded);
      return BatchedMatmul(probs.reshape({b, kv_heads, rows, sk}), v)
          .view({b, heads_, sq, head_dim_})
          .transpose(1, 2)
          .reshape({b, sq, heads_ * head_dim_});
    };
  };
  auto core = core_of(m.key_padding);
  std::vector<torch::Tensor> in = {q, k, v, OrEmpty(m.position_bias, q)};
  if (documents) {
    // One attention per document (causal or not), on its slices of q, k, v, of the position bias
    // and of the key padding; the contexts are put back in order along the sequence, then the
    // batch.
    auto per_document = [core_of, fused, spans = m.documents, causal = m.causal,
                         key_padding = m.key_padding](const std::vector<torch::Tensor>& in) {
      const torch::Tensor &q = in[0], &k = in[1], &v = in[2], bias = Undefined(in[3]);
      std::vector<torch::Tensor> samples;
      for (size_t i = 0; i < spans->samples.size(); ++i) {
        const auto n = static_cast<int64_t>(i);
        std::vector<torch::Tensor> parts;
        for (const auto& [begin, end] : spans->samples[i]) {
          const int64_t len = end - begin;
          auto cut = [&](const torch::Tensor& t) {
            return t.narrow(0, n, 1).narrow(2, begin, len).contiguous();
          };
          torch::Tensor part_bias;
          if (bias.defined()) {
            part_bias = bias.narrow(0, bias.size(0) == 1 ? 0 : n, 1)
                            .narrow(2, begin, len)
                            .narrow(3, begin, len);
          }
          torch::Tensor padding;
          if (key_padding.defined()) padding = key_padding.narrow(0, n, 1).narrow(1, begin, len);
#if TORCH_VERSION_MAJOR >= 2
          if (fused) {
            torch::Tensor c;
            if (padding.defined()) {
              torch::Tensor keep = padding.logical_not().view({1, 1, 1, len});
              if (causal) {
                keep = keep.logical_and(
                    torch::ones({len, len}, q.options().dtype(torch::kBool)).tril());
              }
              c = at::scaled_dot_product_attention(cut(q), cut(k), cut(v), keep, 0.0, false);
            } else {
              c = at::scaled_dot_product_attention(cut(q), cut(k), cut(v), {}, 0.0, causal);
            }
            parts.push_back(c.transpose(1, 2).reshape({1, len, -1}));
            continue;
          }
#endif
          parts.push_back(core_of(padding)({cut(q), cut(k), cut(v), OrEmpty(part_bias, q)}));
        }
        samples.push_back(parts.size() == 1 ? parts[0] : torch::cat(parts, 1));
      }
      return torch::cat(samples, 0);
    };
    torch::Tensor ctx = recompute_core_ ? Recomputed(per_document, in, rng) : per_document(in);
    return out_->forward(ctx);
  }
  torch::Tensor ctx = recompute_core_ ? Recomputed(core, in, rng) : core(in);
  return out_->forward(ctx);
}

Mlp::Mlp(const TpEnv& env, const std::string& name, const BlockConfig& c)
    : activation_(c.activation) {
  const bool gated = IsGated(c.activation);
  fc1_ = register_module("fc1", std::make_shared<ColumnParallelLinear>(
                                    env, name + ".fc1", c.hidden, (gated ? 2 : 1) * c.ffn, c.bias,
                                    c.init_std, false, gated ? 2 : 1));
  fc2_ =
      register_module("fc2", std::make_shared<RowParallelLinear>(
                                 env, name + ".fc2", c.ffn, c.hidden, c.bias, c.output_init_std));
}

torch::Tensor Activate(const torch::Tensor& h, Activation activation) {
  switch (activation) {
    case Activation::kGeglu:
    case Activation::kGegluTanh:
    case Activation::kSwiglu: {
      auto parts = h.chunk(2, -1);  // gate | up, each this rank's slice
      torch::Tensor gate = activation == Activation::kGeglu    ? torch::gelu(parts[0])
                           : activation == Activation::kSwiglu ? torch::silu(parts[0])
                                                               : GeluTanh(parts[0]);
      return gate * parts[1];
    }
    case Activation::kGelu:
      return torch::gelu(h);
    case Activation::kGeluTanh:
      return GeluTanh(h);
    case Activation::kRelu:
      return torch::relu(h);
  }
  return h;
}

torch::Tensor Mlp::forward(const torch::Tensor& x) {
  return fc2_->forward(Activate(fc1_->forward(x), activation_));
}

TransformerLayer::TransformerLayer(const TpEnv& env, const std::string& name, const BlockConfig& c,
                                   bool with_cross)
    : c_(c) {
  if (env.sequence_parallel && env.size() > 1) sequence_group_ = env.tp;
  ln_self_ = register_module("ln_self", std::make_shared<Norm>(c, c.hidden, sequence_group_));
  self_ =
      register_module("self_attention", std::make_shared<Attention>(env, name + ".self", c, false));
  if (with_cross) {
    ln_cross_ = register_module("ln_cross", std::make_shared<Norm>(c, c.hidden, sequence_group_));
    cross_ = register_module("cross_attention",
                             std::make_shared<Attention>(env, name + ".cross", c, true));
  }
  if (!(c.parallel_residual && c.shared_norm)) {
    ln_mlp_ = register_module("ln_mlp", std::make_shared<Norm>(c, c.hidden, sequence_group_));
  }
  if (c.moe.experts > 0) {
    moe_ = register_module("mlp", std::make_shared<MoeMlp>(env, name + ".mlp", c));
  } else {
    mlp_ = register_module("mlp", std::make_shared<Mlp>(env, name + ".mlp", c));
  }
}

torch::Tensor TransformerLayer::forward(const torch::Tensor& x, const AttentionMask& self_mask,
                                        TpRng& rng, const torch::Tensor& memory,
                                        const AttentionMask& cross_mask, LayerCache* cache) {
  if (c_.recompute != Recompute::kFull || cache != nullptr) {
    return Layer(x, self_mask, rng, memory, cross_mask, cache);
  }
  // Full recomputation: the inputs that may need gradients (x, the encoder's output, the position
  // biases) go through Recomputed; the masks' other fields are copied into the function.
  auto layer = [this, &rng, self_mask, cross_mask](const std::vector<torch::Tensor>& in) {
    AttentionMask self = self_mask, cross = cross_mask;
    self.position_bias = Undefined(in[2]);
    cross.position_bias = Undefined(in[3]);
    return Layer(in[0], self, rng, Undefined(in[1]), cross, nullptr);
  };
  return Recomputed(layer,
                    {x, OrEmpty(memory, x), OrEmpty(self_mask.position_bias, x),
                     OrEmpty(cross_mask.position_bias, x)},
                    rng);
}

torch::Tensor TransformerLayer::Layer(const torch::Tensor& x, const AttentionMask& self_mask,
                                      TpRng& rng, const torch::Tensor& memory,
                                      const AttentionMask& cross_mask, LayerCache* cache) {
  KvCache* self_cache = cache != nullptr ? &cache->self : nullptr;
  KvCache* cross_cache = cache != nullptr ? &cache->cross : nullptr;
  const bool train = is_training();
  // Whole positions on every TP rank: the same mask everywhere; a sequence slice: its own.
  at::Generator& gen = sequence_group_ ? rng.sharded : rng.replicated;
  auto sub = [&](const torch::Tensor& h, Norm& norm,
                 const std::function<torch::Tensor(const torch::Tensor&)>& f) {
    if (c_.pre_ln) return h + Dropout(f(norm.forward(h)), c_.hidden_dropout, train, gen);
    return norm.forward(h + Dropout(f(h), c_.hidden_dropout, train, gen));
  };
  if (c_.parallel_residual) {  // both branches read x (no cross-attention: decoder-only models)
    const torch::Tensor n = ln_self_->forward(x);
    torch::Tensor a = self_->forward(n, self_mask, rng, {}, self_cache);
    torch::Tensor m = RunMlp(ln_mlp_ ? ln_mlp_->forward(x) : n);
    return x + Dropout(a, c_.hidden_dropout, train, gen) +
           Dropout(m, c_.hidden_dropout, train, gen);
  }
  torch::Tensor h = sub(x, *ln_self_, [&](const torch::Tensor& t) {
    return self_->forward(t, self_mask, rng, {}, self_cache);
  });
  if (cross_) {
    h = sub(h, *ln_cross_, [&](const torch::Tensor& t) {
      return cross_->forward(t, cross_mask, rng, memory, cross_cache);
    });
  }
  return sub(h, *ln_mlp_, [&](const torch::Tensor& t) { return RunMlp(t); });
}

torch::Tensor TransformerLayer::RunMlp(const torch::Tensor& x) {
  return moe_ ? moe_->forward(x) : mlp_->forward(x);
}

double TransformerLayer::ForwardFlops(int64_t q_len, int64_t mem_len) const {
  return LayerForwardFlops(c_, cross_ != nullptr, q_len, mem_len);
}

double LayerForwardFlops(const BlockConfig& c, bool cross, int64_t q_len, int64_t mem_len) {
  const double s = static_cast<double>(q_len), m = static_cast<double>(mem_len);
  const double e = static_cast<double>(c.hidden), f = static_cast<double>(c.ffn);
  const double attn = static_cast<double>(c.AttentionWidth());       // heads x head size
  const double kv = static_cast<double>(c.KvHeads() * c.HeadDim());  // k (and v) width
  auto linear = [](double tokens, double in, double out) { return 2.0 * tokens * in * out; };
  // Self-attention: q, k, v and the output projection, scores and context over s keys (every
  // query head's, whether or not heads share keys).
  double flops = linear(s, e, attn + 2 * kv) + linear(s, attn, e) + 2 * linear(s, attn, s);
  if (cross) {  // queries from x, keys and values from the memory
    flops +=
        linear(s, e, attn) + linear(m, e, 2 * attn) + linear(s, attn, e) + 2 * linear(s, attn, m);
  }
  // MLP: fc1 (twice as wide when gated), fc2. An MoE layer counts what a token runs (MFU counts
  // active parameters only): the router, its top-k experts and the shared experts.
  const double gate = IsGated(c.activation) ? 2 : 1;
  auto mlp = [&](double width) { return linear(s, e, gate * width) + linear(s, width, e); };
  if (c.moe.experts > 0) {
    const double fe = static_cast<double>(c.moe.ffn);
    flops += linear(s, e, static_cast<double>(c.moe.experts)) +
             static_cast<double>(c.moe.top_k) * mlp(fe);
    if (c.moe.shared > 0) flops += mlp(static_cast<double>(c.moe.shared) * fe);
    if (c.moe.shared_gate) flops += linear(s, e, 1);
  } else {
    flops += mlp(f);
  }
  return flops;
}

torch::Tensor RelativePositionBuckets(int64_t q_len, int64_t k_len, bool bidirectional,
                                      int64_t num_buckets, int64_t max_distance, int64_t q_offset) {
  torch::Tensor ctx = torch::arange(q_offset, q_offset + q_len, torch::kLong).unsqueeze(1);
  torch::Tensor mem = torch::arange(k_len, torch::kLong).unsqueeze(0);
  torch::Tensor rel = mem - ctx;  // key - query
  torch::Tensor buckets = torch::zeros_like(rel);
  int64_t n = num_buckets;
  if (bidirectional) {
    n /= 2;
    buckets = buckets + (rel > 0).to(torch::kLong) * n;
    rel = rel.abs();
  } else {
    rel = -torch::clamp_max(rel, 0);  // distances to the past
  }
  int64_t max_exact = n / 2;
  torch::Tensor is_small = rel < max_exact;
  torch::Tensor large =
      max_exact + (torch::log(rel.to(torch::kFloat) / max_exact) /
                   std::log(static_cast<double>(max_distance) / max_exact) * (n - max_exact))
                      .to(torch::kLong);
  large = torch::clamp_max(large, n - 1);
  return buckets + torch::where(is_small, rel, large);
}

RelativePositionBias::RelativePositionBias(const TpEnv& env, const std::string& name, int64_t heads,
                                           bool bidirectional, int64_t buckets,
                                           int64_t max_distance, double init_std)
    : bidirectional_(bidirectional), buckets_(buckets), max_distance_(max_distance) {
  weight =
      Param("weight", InitShard(env, name + ".weight", {buckets, heads}, init_std, {1, 1}), {1, 1});
}

torch::Tensor RelativePositionBias::forward(int64_t q_len, int64_t k_len, int64_t q_offset) {
  torch::Tensor b =
      RelativePositionBuckets(q_len, k_len, bidirectional_, buckets_, max_distance_, q_offset)
          .to(weight.device());
  return torch::embedding(weight, b).permute({2, 0, 1}).unsqueeze(0);  // [1, h, q, k]
}

std::vector<double> AlibiSlopes(int64_t heads) {
  auto powers = [](int64_t n) {
    std::vector<double> out;
    for (int64_t k = 1; k <= n; ++k) out.push_back(std::pow(2.0, -8.0 * k / n));
    return out;
  };
  int64_t p = 1;
  while (2 * p <= heads) p *= 2;
  std::vector<double> slopes = powers(p);
  if (p < heads) {
    const std::vector<double> twice = powers(2 * p);
    for (int64_t k = 0; static_cast<int64_t>(slopes.size()) < heads; k += 2)
      slopes.push_back(twice[k]);
  }
  return slopes;
}

bool DocumentSpans::OneEach() const {
  for (const auto& spans : samples)
    if (spans.size() > 1) return false;
  return true;
}

DocumentSpans DocumentSpansOf(const torch::Tensor& tokens, int64_t eod,
                              const torch::Tensor& padding) {
  BRAID_CHECK(tokens.dim() == 2);
  const torch::Tensor t = tokens.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t b = t.size(0), s = t.size(1);
  const int64_t* p = t.data_ptr<int64_t>();
  torch::Tensor pad_t;
  if (padding.defined()) pad_t = padding.to(torch::kCPU, torch::kBool).contiguous();
  const bool* pad = padding.defined() ? pad_t.data_ptr<bool>() : nullptr;
  DocumentSpans d;
  d.samples.resize(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) {
    int64_t begin = 0;
    for (int64_t j = 0; j < s; ++j) {
      // The padding after the last document joins it (its keys are masked anyway).
      if (pad != nullptr && pad[i * s + j]) break;
      if (p[i * s + j] == eod && j + 1 < s && (pad == nullptr || !pad[i * s + j + 1])) {
        d.samples[i].emplace_back(begin, j + 1);
        begin = j + 1;
      }
    }
    d.samples[i].emplace_back(begin, s);
  }
  return d;
}

torch::Tensor DocumentPositions(const DocumentSpans& d, int64_t s, const torch::Device& device) {
  torch::Tensor pos = torch::empty({static_cast<int64_t>(d.samples.size()), s}, torch::kLong);
  int64_t* p = pos.data_ptr<int64_t>();
  for (size_t i = 0; i < d.samples.size(); ++i) {
    for (const auto& [begin, end] : d.samples[i]) {
      for (int64_t j = begin; j < end; ++j) p[static_cast<int64_t>(i) * s + j] = j - begin;
    }
  }
  return pos.to(device);
}

torch::Tensor DecoderPositionBias(int64_t s, const std::vector<double>& slopes, int64_t window,
                                  const torch::TensorOptions& options) {
  torch::Tensor pos = torch::arange(s, torch::kDouble);
  torch::Tensor back = pos.unsqueeze(1) - pos.unsqueeze(0);  // i - j
  torch::Tensor bias = torch::zeros({1, 1, s, s}, torch::kDouble);
  if (!slopes.empty()) {
    torch::Tensor m = torch::tensor(slopes, torch::kDouble).view({1, -1, 1, 1});
    bias = -m * back.view({1, 1, s, s});
  }
  if (window > 0) {
    bias = bias.masked_fill((back >= window).view({1, 1, s, s}),
                            -std::numeric_limits<double>::infinity());
  }
  return bias.to(options);
}

torch::Tensor RunStack(const torch::nn::ModuleList& layers, torch::Tensor x,
                       const AttentionMask& self_mask, TpRng& rng, const torch::Tensor& memory,
                       const AttentionMask& cross_mask, StackCache* cache) {
  if (layers->size() == 0) return x;
  const std::shared_ptr<Communicator> group =
      layers->ptr(0)->as<TransformerLayer>()->sequence_group();
  BRAID_CHECK(cache == nullptr || !group);  // generation runs without sequence parallelism
  if (cache != nullptr) cache->resize(layers->size());
  if (group) x = ScatterToSequence(x, *group);
  for (size_t i = 0; i < layers->size(); ++i) {
    x = layers->ptr(i)->as<TransformerLayer>()->forward(x, self_mask, rng, memory, cross_mask,
                                                        cache != nullptr ? &(*cache)[i] : nullptr);
  }
  return group ? GatherFromSequence(x, *group) : x;
}

double StackForwardFlops(const torch::nn::ModuleList& layers, int64_t q_len, int64_t mem_len) {
  double flops = 0;
  for (const auto& layer : *layers)
    flops += layer->as<TransformerLayer>()->ForwardFlops(q_len, mem_len);
  return flops;
}

double WholeStackForwardFlops(const BlockConfig& c, int64_t layers, bool cross, int64_t q_len,
                              int64_t mem_len) {
  double flops = 0;
  for (int64_t i = 0; i < layers; ++i)
    flops += LayerForwardFlops(LayerBlock(c, i), cross, q_len, mem_len);
  return flops;
}

torch::nn::ModuleList StackLayers(const TpEnv& env, torch::nn::Module& holder,
                                  const std::string& name, const BlockConfig& c, int64_t first,
                                  int64_t count, bool with_cross) {
  torch::nn::ModuleList list;
  for (int64_t i = first; i < first + count; ++i) {
    auto layer = std::make_shared<TransformerLayer>(env, name + "." + std::to_string(i),
                                                    LayerBlock(c, i), with_cross);
    holder.register_module(std::to_string(i), layer);
    list->push_back(layer);
  }
  return list;
}

EncoderDecoderStacks BuildEncoderDecoderStacks(const TpEnv& env, torch::nn::Module& model,
                                               const StagePlan& plan, int64_t encoder_layers,
                                               const BlockConfig& c) {
  EncoderDecoderStacks s;
  auto encoder = model.register_module("encoder", std::make_shared<torch::nn::Module>());
  auto decoder = model.register_module("decoder", std::make_shared<torch::nn::Module>());
  for (const StagePlan::Chunk& chunk : plan.chunks) {
    const EncoderDecoderChunk k = SplitEncoderDecoder(chunk, encoder_layers);
    s.encoder.push_back(
        StackLayers(env, *encoder, "encoder", c, k.encoder_first, k.encoder_count, false));
    s.decoder.push_back(
        StackLayers(env, *decoder, "decoder", c, k.decoder_first, k.decoder_count, true));
    s.ends_encoder = s.ends_encoder || k.ends_encoder;
  }
  if (plan.chunks.size() == 1 && plan.holds_embedding() && plan.holds_output()) {
    s.whole_encoder = s.encoder[0];
    s.whole_decoder = s.decoder[0];
  }
  return s;
}

}  // namespace braid
