// Qwen2-MoE (Qwen1.5-MoE, Qwen2-57B-A14B) in Hugging Face's layout, Qwen2MoeForCausalLM
// (model.hf_layout: qwen2_moe; docs/moe.md). Llama's attention with biases on q, k and v only
// (model.add_qkv_bias), and in the MoE layers a router, experts and one shared expert scaled by a
// sigmoid gate:
//   h.{i}.self_attention.qkv         model.layers.{i}.self_attn.{q,k,v}_proj (weight and bias)
//   h.{i}.self_attention.out         model.layers.{i}.self_attn.o_proj.weight
//   h.{i}.mlp.router.weight          model.layers.{i}.mlp.gate.weight
//   h.{i}.mlp.experts.{e}.fc1/fc2    model.layers.{i}.mlp.experts.{e}.{gate,up}_proj / down_proj
//   h.{i}.mlp.shared.fc1/fc2         model.layers.{i}.mlp.shared_expert.{gate,up}_proj / down_proj
//   h.{i}.mlp.shared_gate.weight     model.layers.{i}.mlp.shared_expert_gate.weight
//   h.{i}.mlp.fc1/fc2 (dense layers) model.layers.{i}.mlp.{gate,up}_proj / down_proj
// with the norms and embeddings named as Llama's. config.json: moe_intermediate_size (our
// moe_ffn_hidden_size), shared_expert_intermediate_size (moe_shared_experts x that),
// intermediate_size (the dense layers' width), num_experts, num_experts_per_tok, norm_topk_prob
// (our moe_router_pre_softmax false), router_aux_loss_coef; the dense layers as mlp_only_layers
// (decoder_sparse_step 1: transformers makes layer i sparse when (i + 1) % step == 0, Megatron's
// frequency when i % N == 0, so the list is what both can read).
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "recipes/gpt/gpt_family.h"

namespace braid {
namespace {

class Qwen2MoeHf : public HfLayout {
 public:
  std::string model_type() const override { return "qwen2_moe"; }
  std::string architecture(const Config&) const override { return "Qwen2MoeForCausalLM"; }

  std::vector<HfTensor> Names(const Config& c) const override {
    const ModelConfig& m = c.model;
    std::vector<HfTensor> t = {{"wte.weight", {"model.embed_tokens.weight"}},
                               {"ln_f.weight", {"model.norm.weight"}}};
    if (!m.tie_embeddings) t.push_back({"lm_head.weight", {"lm_head.weight"}});
    auto mlp = [&](const std::string& ours, const std::string& theirs) {
      t.push_back({ours + "fc1.weight", {theirs + "gate_proj.weight", theirs + "up_proj.weight"}});
      t.push_back({ours + "fc2.weight", {theirs + "down_proj.weight"}});
    };
    for (int64_t i = 0; i < m.num_layers; ++i) {
      const std::string o = absl::StrCat("h.", i, "."), h = absl::StrCat("model.layers.", i, ".");
      t.push_back({o + "ln_self.weight", {h + "input_layernorm.weight"}});
      t.push_back({o + "ln_mlp.weight", {h + "post_attention_layernorm.weight"}});
      for (const std::string k : {"weight", "bias"}) {
        HfTensor qkv{o + "self_attention.qkv." + k,
                     {h + "self_attn.q_proj." + k, h + "self_attn.k_proj." + k,
                      h + "self_attn.v_proj." + k}};
        qkv.kv_groups = m.num_query_groups;
        t.push_back(qkv);
      }
      t.push_back({o + "self_attention.out.weight", {h + "self_attn.o_proj.weight"}});
      if (!IsMoeLayer(m, i)) {
        mlp(o + "mlp.", h + "mlp.");
        continue;
      }
      t.push_back({o + "mlp.router.weight", {h + "mlp.gate.weight"}});
      for (int64_t e = 0; e < m.num_experts; ++e) {
        mlp(absl::StrCat(o, "mlp.experts.", e, "."), absl::StrCat(h, "mlp.experts.", e, "."));
      }
      mlp(o + "mlp.shared.", h + "mlp.shared_expert.");
      t.push_back({o + "mlp.shared_gate.weight", {h + "mlp.shared_expert_gate.weight"}});
    }
    return t;
  }

  absl::StatusOr<std::string> ConfigJson(const Config& c, int64_t vocab,
                                         const std::string& torch_dtype) const override {
    const ModelConfig& m = c.model;
    std::string why;
    if (m.num_experts == 0) {
      why = "experts (model.num_experts)";
    } else if (m.moe_shared_experts == 0 || !m.moe_shared_expert_gate) {
      why = "a shared expert with its gate (model.moe_shared_experts, moe_shared_expert_gate)";
    } else if (!m.add_qkv_bias || m.bias) {
      why = "biases on q, k and v only (model.add_qkv_bias: true, model.bias: false)";
    } else if (m.norm != NormType::kRmsNorm || m.activation != Activation::kSwiglu) {
      why = "RMSNorm and SwiGLU (model.norm: rmsnorm, model.activation: swiglu)";
    } else if (m.position != Position::kRope || m.rotary_percent < 1.0 || m.parallel_residual ||
               m.sliding_window > 0) {
      why = "RoPE on whole heads, sequential layers and no sliding window";
    }
    if (!why.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Qwen2-MoE's layout has ", why,
                       "; this model does not, and every reader would compute other logits. "
                       "Refusing to export."));
    }
    BRAID_RETURN_IF_ERROR(HfHeadSizeIsHiddenOverHeads(c, "Qwen2-MoE"));
    std::vector<int64_t> dense;
    for (int64_t i = 0; i < m.num_layers; ++i)
      if (!IsMoeLayer(m, i)) dense.push_back(i);
    const int64_t fe = MoeFfnHiddenSize(m);
    return absl::StrFormat(
        "{\n  \"architectures\": [\"Qwen2MoeForCausalLM\"],\n  \"model_type\": \"qwen2_moe\",\n"
        "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n"
        "  \"moe_intermediate_size\": %d,\n  \"shared_expert_intermediate_size\": %d,\n"
        "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
        "  \"num_key_value_heads\": %d,\n  \"hidden_act\": \"silu\",\n"
        "  \"max_position_embeddings\": %d,\n  \"rms_norm_eps\": %s,\n  \"rope_theta\": %s,\n"
        "  \"num_experts\": %d,\n  \"num_experts_per_tok\": %d,\n  \"norm_topk_prob\": %s,\n"
        "  \"decoder_sparse_step\": 1,\n  \"mlp_only_layers\": [%s],\n"
        "  \"router_aux_loss_coef\": %s,\n  \"output_router_logits\": false,\n"
        "  \"use_sliding_window\": false,\n  \"attention_dropout\": %s,\n"
        "  \"initializer_range\": %s,\n  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": "
        "\"%s\"\n}\n",
        vocab, m.hidden_size, FfnHiddenSize(m), fe, m.moe_shared_experts * fe, m.num_layers,
        m.num_attention_heads, QueryGroups(m), m.max_position_embeddings,
        ShortestDouble(m.layernorm_epsilon), ShortestDouble(m.rope_theta), m.num_experts,
        m.moe_top_k, m.moe_router_pre_softmax ? "false" : "true", absl::StrJoin(dense, ", "),
        ShortestDouble(m.moe_aux_loss_coeff), ShortestDouble(m.attention_dropout),
        ShortestDouble(m.init_std), m.tie_embeddings ? "true" : "false", torch_dtype);
  }

  absl::StatusOr<std::vector<std::string>> ImportOverrides(
      const JsonValue& hf, const std::set<std::string>& names) const override {
    BRAID_RETURN_IF_ERROR(HfRefuseRopeScaling(hf));
    BRAID_ASSIGN_OR_RETURN(const bool window, HfBoolOr(hf, "use_sliding_window", false));
    if (window) {
      return absl::InvalidArgumentError(
          "config.json: use_sliding_window is true (Qwen2's window on the upper layers only, "
          "max_window_layers); braid's model.sliding_window covers every layer.");
    }
    std::vector<std::string> sets;
    BRAID_RETURN_IF_ERROR((HfIntSets(hf,
                                     {{"num_hidden_layers", "num_layers"},
                                      {"hidden_size", "hidden_size"},
                                      {"num_attention_heads", "num_attention_heads"},
                                      {"intermediate_size", "ffn_hidden_size"},
                                      {"vocab_size", "vocab_size"},
                                      {"max_position_embeddings", "max_position_embeddings"},
                                      {"num_experts", "num_experts"},
                                      {"num_experts_per_tok", "moe_top_k"},
                                      {"moe_intermediate_size", "moe_ffn_hidden_size"}},
                                     &sets)));
    BRAID_ASSIGN_OR_RETURN(const int64_t layers, HfInt(hf, "num_hidden_layers"));
    BRAID_ASSIGN_OR_RETURN(const int64_t heads, HfInt(hf, "num_attention_heads"));
    BRAID_ASSIGN_OR_RETURN(const int64_t kv, HfIntOr(hf, "num_key_value_heads", heads));
    sets.push_back(absl::StrCat("model.num_query_groups=", kv == heads ? 0 : kv));
    BRAID_ASSIGN_OR_RETURN(const int64_t fe, HfInt(hf, "moe_intermediate_size"));
    BRAID_ASSIGN_OR_RETURN(const int64_t shared, HfInt(hf, "shared_expert_intermediate_size"));
    if (fe <= 0 || shared <= 0 || shared % fe != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "config.json: shared_expert_intermediate_size %d is not a positive multiple of "
          "moe_intermediate_size %d; braid's shared experts are model.moe_shared_experts x the "
          "experts' width.",
          shared, fe));
    }
    sets.push_back(absl::StrCat("model.moe_shared_experts=", shared / fe));
    sets.push_back("model.moe_shared_expert_gate=true");
    BRAID_ASSIGN_OR_RETURN(const bool norm, HfBoolOr(hf, "norm_topk_prob", false));
    sets.push_back(absl::StrCat("model.moe_router_pre_softmax=", norm ? "false" : "true"));
    BRAID_ASSIGN_OR_RETURN(const double coef, HfNumberOr(hf, "router_aux_loss_coef", 0.001));
    sets.push_back("model.moe_aux_loss_coeff=" + ShortestDouble(coef));
    // Layer i is sparse unless listed in mlp_only_layers, and when (i + 1) % decoder_sparse_step
    // == 0 (transformers' rule).
    BRAID_ASSIGN_OR_RETURN(const int64_t step, HfIntOr(hf, "decoder_sparse_step", 1));
    std::vector<int64_t> pattern(static_cast<size_t>(layers), 1);
    for (int64_t i = 0; i < layers; ++i) pattern[i] = step > 0 && (i + 1) % step == 0 ? 1 : 0;
    if (const JsonValue* only = hf.Find("mlp_only_layers");
        only != nullptr && only->kind == JsonValue::Kind::kArray) {
      for (const JsonValue& v : only->items) {
        if (!v.IsInteger() || v.AsInt() < 0 || v.AsInt() >= layers) {
          return absl::InvalidArgumentError(absl::StrCat("config.json: mlp_only_layers holds ",
                                                         v.text, ", not a layer index below ",
                                                         layers, "."));
        }
        pattern[v.AsInt()] = 0;
      }
    }
    if (std::find(pattern.begin(), pattern.end(), 0) != pattern.end()) {
      sets.push_back(absl::StrCat("model.moe_layer_pattern=[", absl::StrJoin(pattern, ","), "]"));
    }
    BRAID_ASSIGN_OR_RETURN(const double eps, HfNumberOr(hf, "rms_norm_eps", 0));
    if (eps > 0) sets.push_back("model.layernorm_epsilon=" + ShortestDouble(eps));
    BRAID_ASSIGN_OR_RETURN(const double theta, HfNumberOr(hf, "rope_theta", 0));
    if (theta > 0) sets.push_back("model.rope_theta=" + ShortestDouble(theta));
    for (const char* s :
         {"model.position=rope", "model.norm=rmsnorm", "model.activation=swiglu",
          "model.bias=false", "model.add_qkv_bias=true", "model.parallel_residual=false",
          "model.sliding_window=0", "model.hf_layout=qwen2_moe"}) {
      sets.push_back(s);
    }
    BRAID_ASSIGN_OR_RETURN(std::string tie, HfUntiedByDefault(hf, names, "Qwen2-MoE"));
    sets.push_back(tie);
    return sets;
  }

  bool Ignorable(const std::string& n) const override {
    return absl::EndsWith(n, "rotary_emb.inv_freq") || n == "lm_head.weight";
  }
};

}  // namespace

const HfLayout& Qwen2MoeHfLayout() {
  static const Qwen2MoeHf kLayout;
  return kLayout;
}

}  // namespace braid
