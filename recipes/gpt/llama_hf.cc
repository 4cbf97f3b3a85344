// LLaMA-style GPT models in Hugging Face's layouts (docs/formats.md, "Hugging Face name maps"):
// LlamaForCausalLM, and MistralForCausalLM when model.sliding_window is set. A model is written in
// these layouts when its positions are not learned (gpt_hf.cc picks by model.position).
//
//   wte.weight                  model.embed_tokens.weight
//   h.{i}.ln_self.weight        model.layers.{i}.input_layernorm.weight
//   h.{i}.self_attention.qkv    model.layers.{i}.self_attn.{q,k,v}_proj (per-group layout with
//                               model.num_query_groups: split by group, blocks.h)
//   h.{i}.self_attention.out    model.layers.{i}.self_attn.o_proj
//   h.{i}.ln_mlp.weight         model.layers.{i}.post_attention_layernorm.weight
//   h.{i}.mlp.fc1               model.layers.{i}.mlp.{gate,up}_proj (fc1 is gate | up)
//   h.{i}.mlp.fc2               model.layers.{i}.mlp.down_proj
//   ln_f.weight                 model.norm.weight
//   lm_head.weight              lm_head.weight (untied)
//
// MixtralForCausalLM (model_type "mixtral") when model.num_experts is set: Mistral's attention, and
// in every layer a mixture of experts (framework/nn/moe.h) in place of the MLP:
//   h.{i}.mlp.router.weight          model.layers.{i}.block_sparse_moe.gate.weight
//   h.{i}.mlp.experts.{e}.fc1.weight model.layers.{i}.block_sparse_moe.experts.{e}.{w1,w3}.weight
//                                    (w1 the gate, w3 the up projection)
//   h.{i}.mlp.experts.{e}.fc2.weight model.layers.{i}.block_sparse_moe.experts.{e}.w2.weight
// with num_local_experts, num_experts_per_tok and router_aux_loss_coef (model.num_experts,
// moe_top_k, moe_aux_loss_coeff: copied as they are, though transformers' load-balancing loss is
// k times ours and pools the layers; docs/moe.md). Mixtral renormalises the top-k weights
// (model.moe_router_pre_softmax: false) and has no shared experts, capacity or biases.
//
// Our RoPE is the rotate-half convention Hugging Face's Llama uses, so q_proj and k_proj are
// written as they are (no permutation). Biases (model.bias: true) are Llama's attention_bias and
// mlp_bias. Options Llama has no key for -- ALiBi, parallel attention + MLP -- are written with the
// same names under model_type "braid_llama" (architecture BraidLlamaForCausalLM) with the keys
// "position_embedding_type": "alibi" and "parallel_residual": true: our importer and
// tests/models/llama_reference.py read them, and transformers refuses the unknown model_type
// rather than running the weights as a RoPE model.
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "recipes/gpt/gpt_family.h"

namespace braid {
namespace {

// Our gated activations and Llama's hidden_act (the gate's function).
const HfNameTable& LlamaActivations() {
  static const HfNameTable kTable{
      {{"swiglu", "silu"}, {"geglu", "gelu"}, {"geglu_tanh", "gelu_pytorch_tanh"}}};
  return kTable;
}

bool Custom(const Config& c) {
  return c.model.position == Position::kAlibi || c.model.parallel_residual;
}

bool Mixtral(const Config& c) { return c.model.num_experts > 0 && !Custom(c); }

// What Mixtral's layout cannot hold of an MoE model, or OK.
absl::Status MixtralFits(const Config& c) {
  const ModelConfig& m = c.model;
  std::string why;
  if (MoeLayerCount(m) != m.num_layers) {
    why = "an MoE MLP in every layer (model.moe_layer_freq 1, no moe_layer_pattern)";
  } else if (m.moe_shared_experts > 0) {
    why = "no shared experts (model.moe_shared_experts: 0; Qwen2-MoE has them)";
  } else if (m.moe_router_pre_softmax) {
    why = "top-k weights renormalised (model.moe_router_pre_softmax: false)";
  } else if (m.bias) {
    why = "no biases (model.bias: false)";
  } else if (m.activation != Activation::kSwiglu) {
    why = "SwiGLU experts (model.activation: swiglu)";
  }
  if (why.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("Mixtral's layout has ", why,
                   "; this model does not, and every reader would compute other "
                   "logits. Refusing to export."));
}

class LlamaHf : public HfLayout {
 public:
  std::string model_type() const override { return "llama"; }
  bool Reads(const std::string& t) const override {
    return t == "llama" || t == "mistral" || t == "mixtral" || t == "braid_llama";
  }
  std::string architecture(const Config& c) const override {
    if (Custom(c)) return "BraidLlamaForCausalLM";
    if (Mixtral(c)) return "MixtralForCausalLM";
    return c.model.sliding_window > 0 ? "MistralForCausalLM" : "LlamaForCausalLM";
  }

  std::vector<HfTensor> Names(const Config& c) const override {
    std::vector<HfTensor> m = {{"wte.weight", {"model.embed_tokens.weight"}},
                               {"ln_f.weight", {"model.norm.weight"}}};
    if (!c.model.tie_embeddings) m.push_back({"lm_head.weight", {"lm_head.weight"}});
    const std::vector<std::string> kinds = c.model.bias ? std::vector<std::string>{"weight", "bias"}
                                                        : std::vector<std::string>{"weight"};
    for (int64_t i = 0; i < c.model.num_layers; ++i) {
      const std::string o = absl::StrCat("h.", i, "."), h = absl::StrCat("model.layers.", i, ".");
      m.push_back({o + "ln_self.weight", {h + "input_layernorm.weight"}});
      m.push_back({o + "ln_mlp.weight", {h + "post_attention_layernorm.weight"}});
      for (const std::string& k : kinds) {
        HfTensor qkv{o + "self_attention.qkv." + k,
                     {h + "self_attn.q_proj." + k, h + "self_attn.k_proj." + k,
                      h + "self_attn.v_proj." + k}};
        qkv.kv_groups = c.model.num_query_groups;
        m.push_back(qkv);
        m.push_back({o + "self_attention.out." + k, {h + "self_attn.o_proj." + k}});
        if (IsMoeLayer(c.model, i)) continue;
        m.push_back({o + "mlp.fc1." + k, {h + "mlp.gate_proj." + k, h + "mlp.up_proj." + k}});
        m.push_back({o + "mlp.fc2." + k, {h + "mlp.down_proj." + k}});
      }
      if (!IsMoeLayer(c.model, i)) continue;
      const std::string moe = h + "block_sparse_moe.";
      m.push_back({o + "mlp.router.weight", {moe + "gate.weight"}});
      for (int64_t e = 0; e < c.model.num_experts; ++e) {
        const std::string ours = absl::StrCat(o, "mlp.experts.", e, ".");
        const std::string theirs = absl::StrCat(moe, "experts.", e, ".");
        m.push_back({ours + "fc1.weight", {theirs + "w1.weight", theirs + "w3.weight"}});
        m.push_back({ours + "fc2.weight", {theirs + "w2.weight"}});
      }
    }
    return m;
  }

  absl::StatusOr<std::string> ConfigJson(const Config& c, int64_t vocab,
                                         const std::string& torch_dtype) const override {
    const ModelConfig& m = c.model;
    if (m.norm != NormType::kRmsNorm) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Llama's layout has RMSNorm only; this model has model.norm: ", Name(m.norm), "."));
    }
    const std::string* act = LlamaActivations().Theirs(Name(m.activation));
    if (act == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("Llama's layout has a gated MLP (",
                                                     LlamaActivations().TheirNames(),
                                                     "); this model "
                                                     "has model.activation: ",
                                                     Name(m.activation), "."));
    }
    if (Mixtral(c)) BRAID_RETURN_IF_ERROR(MixtralFits(c));
    if (m.add_qkv_bias) {
      return absl::InvalidArgumentError(
          "Llama's layout has biases on all four attention projections or none (attention_bias); "
          "model.add_qkv_bias puts them on q, k and v only. HINT: with experts, model.hf_layout: "
          "qwen2_moe writes Qwen2-MoE's layout, which has them.");
    }
    if (m.sliding_window > 0 && m.bias && !Custom(c)) {
      return absl::InvalidArgumentError(
          "Mistral's layout has no biases; this model has model.bias: true.");
    }
    const int64_t heads = m.num_attention_heads;
    const int64_t head_dim = HeadSize(m);
    const std::string type = Custom(c)              ? "braid_llama"
                             : Mixtral(c)           ? "mixtral"
                             : m.sliding_window > 0 ? "mistral"
                                                    : "llama";
    std::string extra;
    if (m.sliding_window > 0) {
      absl::StrAppend(&extra, "  \"sliding_window\": ", m.sliding_window, ",\n");
    } else if (Mixtral(c)) {
      absl::StrAppend(&extra, "  \"sliding_window\": null,\n");
    }
    if (m.num_experts > 0) {
      absl::StrAppend(&extra, "  \"num_local_experts\": ", m.num_experts,
                      ",\n  \"num_experts_per_tok\": ", m.moe_top_k,
                      ",\n  \"router_aux_loss_coef\": ", ShortestDouble(m.moe_aux_loss_coeff),
                      ",\n  \"output_router_logits\": false,\n  \"router_jitter_noise\": 0.0,\n");
    }
    if (m.position == Position::kAlibi)
      absl::StrAppend(&extra, "  \"position_embedding_type\": \"alibi\",\n");
    if (m.parallel_residual) absl::StrAppend(&extra, "  \"parallel_residual\": true,\n");
    if ((m.sliding_window == 0 && !Mixtral(c)) || Custom(c)) {
      absl::StrAppend(&extra, "  \"attention_bias\": ", m.bias ? "true" : "false",
                      ",\n  \"mlp_bias\": ", m.bias ? "true" : "false", ",\n");
    }
    return absl::StrFormat(
        "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n"
        "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n"
        "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
        "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"hidden_act\": \"%s\",\n"
        "  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": %s,\n  \"rope_theta\": %s,\n"
        "%s  \"attention_dropout\": %s,\n  \"initializer_range\": %s,\n"
        "  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"%s\"\n}\n",
        architecture(c), type, vocab, m.hidden_size,
        m.num_experts > 0 ? MoeFfnHiddenSize(m) : FfnHiddenSize(m), m.num_layers, heads,
        QueryGroups(m), head_dim, *act, m.max_position_embeddings,
        ShortestDouble(m.layernorm_epsilon),
        m.rope_theta == std::floor(m.rope_theta) && m.rope_theta < 1e15
            ? absl::StrFormat("%.1f", m.rope_theta)  // 10000.0, as Llama's files write it
            : ShortestDouble(m.rope_theta),
        extra, ShortestDouble(m.attention_dropout), ShortestDouble(m.init_std),
        m.tie_embeddings ? "true" : "false", torch_dtype);
  }

  absl::StatusOr<std::vector<std::string>> ImportOverrides(
      const JsonValue& hf, const std::set<std::string>& names) const override {
    // A setting braid does not model: refused rather than imported as a different model.
    BRAID_RETURN_IF_ERROR(HfRefuseRopeScaling(hf));
    std::vector<std::string> sets;
    BRAID_RETURN_IF_ERROR((HfIntSets(hf,
                                     {{"num_hidden_layers", "num_layers"},
                                      {"hidden_size", "hidden_size"},
                                      {"num_attention_heads", "num_attention_heads"},
                                      {"intermediate_size", "ffn_hidden_size"},
                                      {"vocab_size", "vocab_size"},
                                      {"max_position_embeddings", "max_position_embeddings"}},
                                     &sets)));
    BRAID_ASSIGN_OR_RETURN(int64_t heads, HfInt(hf, "num_attention_heads"));
    BRAID_ASSIGN_OR_RETURN(int64_t hidden, HfInt(hf, "hidden_size"));
    BRAID_ASSIGN_OR_RETURN(const int64_t kv, HfIntOr(hf, "num_key_value_heads", heads));
    // Grouped only when keys are shared: an equal count keeps the q | k | v layout.
    sets.push_back(absl::StrCat("model.num_query_groups=", kv == heads ? 0 : kv));
    BRAID_ASSIGN_OR_RETURN(const int64_t head_dim, HfIntOr(hf, "head_dim", hidden / heads));
    if (head_dim != hidden / heads) sets.push_back(absl::StrCat("model.kv_channels=", head_dim));
    // Absent: the base recipe's values stay (0 cannot be a value: they must be positive).
    BRAID_ASSIGN_OR_RETURN(const double eps, HfNumberOr(hf, "rms_norm_eps", 0));
    if (eps > 0) sets.push_back("model.layernorm_epsilon=" + ShortestDouble(eps));
    BRAID_ASSIGN_OR_RETURN(const double theta, HfNumberOr(hf, "rope_theta", 0));
    if (theta > 0) sets.push_back("model.rope_theta=" + ShortestDouble(theta));
    BRAID_ASSIGN_OR_RETURN(const std::string position,
                           HfStringOr(hf, "position_embedding_type", "rope", {"rope", "alibi"}));
    sets.push_back(absl::StrCat("model.position=", position));
    BRAID_ASSIGN_OR_RETURN(const int64_t window, HfIntOr(hf, "sliding_window", 0, 0));
    sets.push_back(absl::StrCat("model.sliding_window=", window));
    BRAID_ASSIGN_OR_RETURN(const bool parallel, HfBoolOr(hf, "parallel_residual", false));
    sets.push_back(absl::StrCat("model.parallel_residual=", parallel ? "true" : "false"));
    BRAID_ASSIGN_OR_RETURN(const bool attention_bias, HfBoolOr(hf, "attention_bias", false));
    BRAID_ASSIGN_OR_RETURN(const bool mlp_bias, HfBoolOr(hf, "mlp_bias", false));
    if (attention_bias != mlp_bias) {
      return absl::InvalidArgumentError(
          "config.json: attention_bias and mlp_bias differ; braid's model.bias sets both.");
    }
    sets.push_back(absl::StrCat("model.bias=", attention_bias ? "true" : "false"));
    BRAID_ASSIGN_OR_RETURN(std::string act,
                           HfActivationOverride(hf, "hidden_act", "silu", LlamaActivations()));
    sets.push_back(act);
    sets.push_back("model.norm=rmsnorm");
    // Mixtral: every layer a mixture of experts of intermediate_size each.
    if (const JsonValue* experts = hf.Find("num_local_experts"); experts != nullptr) {
      BRAID_ASSIGN_OR_RETURN(const int64_t n, HfInt(hf, "num_local_experts"));
      BRAID_ASSIGN_OR_RETURN(const int64_t k, HfIntOr(hf, "num_experts_per_tok", 2));
      BRAID_ASSIGN_OR_RETURN(const double coef, HfNumberOr(hf, "router_aux_loss_coef", 0.001));
      sets.push_back(absl::StrCat("model.num_experts=", n));
      sets.push_back(absl::StrCat("model.moe_top_k=", k));
      sets.push_back("model.moe_aux_loss_coeff=" + ShortestDouble(coef));
    }
    BRAID_ASSIGN_OR_RETURN(std::string tie, HfUntiedByDefault(hf, names, "Llama"));
    sets.push_back(tie);
    return sets;
  }

  bool Ignorable(const std::string& n) const override {
    // RoPE's inverse frequencies older Llama files carry, and a tied output's copy.
    return absl::EndsWith(n, "rotary_emb.inv_freq") || n == "lm_head.weight";
  }
};

}  // namespace

const HfLayout& LlamaHfLayout() {
  static const LlamaHf kLayout;
  return kLayout;
}

}  // namespace braid
