// GPT-family models in Falcon's Hugging Face layout (FalconForCausalLM; model.hf_layout: falcon;
// docs/formats.md, "Hugging Face name maps").
//
// Falcon fuses the attention's projection per key/value group, as braid does (framework/nn/
// blocks.h): query_key_value's rows are [group][the group's query heads | k | v][head_dim] in all
// three of Falcon's variants, so the tensor is written as it is:
//   new_decoder_architecture (Falcon-40B/180B)  num_kv_heads groups          model.num_query_groups
//   multi_query (Falcon-7B)                      one group: q (all) | k | v   = 1
//   neither (Falcon-RW)                          one head a group: [q k v]    = the heads
// Layers: parallel attention + MLP with one LayerNorm read by both (input_layernorm; Falcon-7B,
// model.shared_input_norm) or two (ln_attn, ln_mlp; the new decoder architecture), or sequential
// pre-LN layers (parallel_attn false: input_layernorm, post_attention_layernorm). RoPE
// (rotate-half) on every head dimension, LayerNorm, biases on every linear or on none (`bias`), an
// ungated MLP
// (`activation`, GELU by default), a final ln_f and, tied by default, lm_head.
//
//   ours                        Falcon
//   wte.weight                  transformer.word_embeddings.weight
//   h.{i}.ln_self               transformer.h.{i}.input_layernorm (or ln_attn)
//   h.{i}.self_attention.qkv    transformer.h.{i}.self_attention.query_key_value
//   h.{i}.self_attention.out    transformer.h.{i}.self_attention.dense
//   h.{i}.ln_mlp                transformer.h.{i}.ln_mlp (or post_attention_layernorm; none shared)
//   h.{i}.mlp.fc1 / fc2         transformer.h.{i}.mlp.dense_h_to_4h / dense_4h_to_h
//   ln_f                        transformer.ln_f
//   lm_head.weight              lm_head.weight (untied only)
//
// Falcon's `alibi` option is refused: transformers adds its ALiBi bias before dividing the scores
// by sqrt(head_dim), so its slopes are ours / sqrt(head_dim); braid's ALiBi is the paper's and
// BLOOM's.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "recipes/gpt/gpt_family.h"

namespace braid {
namespace {

// How Falcon's config.json spells a layer structure.
struct FalconShape {
  bool new_arch = false;  // new_decoder_architecture: num_kv_heads groups, parallel layers
  bool multi_query = false;
  bool parallel = true;  // parallel_attn
  int64_t norms = 2;     // num_ln_in_parallel_attn (new architecture)
};

absl::StatusOr<FalconShape> ShapeOf(const Config& c) {
  const ModelConfig& m = c.model;
  const int64_t heads = m.num_attention_heads, groups = m.num_query_groups;
  if (groups <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Falcon fuses q, k and v per key/value group: model.num_query_groups must be set (1: "
        "multi-query as Falcon-7B; %d: one head a group). HINT: set model.num_query_groups: %d for "
        "this model's attention, as recipes/gpt/falcon-*.yaml do.",
        heads, heads));
  }
  FalconShape s;
  s.parallel = m.parallel_residual;
  s.multi_query = groups == 1;
  if (m.parallel_residual && !m.shared_input_norm) {
    s.new_arch = true;  // ln_attn and ln_mlp exist only there
  } else if (m.parallel_residual) {
    s.norms = 1;
    s.new_arch = groups != 1 && groups != heads;
  } else if (groups != 1 && groups != heads) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Falcon's sequential layers (parallel_attn false) have one key/value head or one per "
        "query head; this model has %d groups of %d heads. HINT: model.parallel_residual: true "
        "(the new decoder architecture).",
        groups, heads));
  }
  return s;
}

class FalconHf : public HfLayout {
 public:
  std::string model_type() const override { return "falcon"; }
  // Falcon's first files called it RefinedWeb (the new decoder architecture, Falcon-40B) and
  // RefinedWebModel (Falcon-7B).
  bool Reads(const std::string& t) const override {
    return t == "falcon" || t == "RefinedWeb" || t == "RefinedWebModel";
  }
  std::string architecture(const Config&) const override { return "FalconForCausalLM"; }

  std::vector<HfTensor> Names(const Config& c) const override {
    const ModelConfig& m = c.model;
    std::vector<HfTensor> out = {{"wte.weight", {"transformer.word_embeddings.weight"}},
                                 {"ln_f.weight", {"transformer.ln_f.weight"}},
                                 {"ln_f.bias", {"transformer.ln_f.bias"}}};
    if (!m.tie_embeddings) out.push_back({"lm_head.weight", {"lm_head.weight"}});
    const bool two = m.parallel_residual && !m.shared_input_norm;
    for (int64_t i = 0; i < m.num_layers; ++i) {
      const std::string o = absl::StrCat("h.", i, "."), h = absl::StrCat("transformer.h.", i, ".");
      std::vector<std::pair<std::string, std::string>> norms = {
          {"ln_self", two ? "ln_attn" : "input_layernorm"}};
      if (two) norms.push_back({"ln_mlp", "ln_mlp"});
      if (!m.parallel_residual) norms.push_back({"ln_mlp", "post_attention_layernorm"});
      for (const auto& [ours, theirs] : norms) {
        for (const char* k : {"weight", "bias"}) {
          out.push_back({absl::StrCat(o, ours, ".", k), {absl::StrCat(h, theirs, ".", k)}});
        }
      }
      for (const auto& [ours, theirs] :
           {std::pair<const char*, const char*>{"self_attention.qkv",
                                                "self_attention.query_key_value"},
            {"self_attention.out", "self_attention.dense"},
            {"mlp.fc1", "mlp.dense_h_to_4h"},
            {"mlp.fc2", "mlp.dense_4h_to_h"}}) {
        out.push_back({absl::StrCat(o, ours, ".weight"), {absl::StrCat(h, theirs, ".weight")}});
        if (m.bias) {
          out.push_back({absl::StrCat(o, ours, ".bias"), {absl::StrCat(h, theirs, ".bias")}});
        }
      }
    }
    return out;
  }

  absl::StatusOr<std::string> ConfigJson(const Config& c, int64_t vocab,
                                         const std::string& torch_dtype) const override {
    const ModelConfig& m = c.model;
    BRAID_RETURN_IF_ERROR(HfHeadSizeIsHiddenOverHeads(c, "Falcon"));
    if (m.position != Position::kRope || m.rotary_percent < 1.0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Falcon's layout has RoPE on every head dimension; this model has model.position: ",
          Name(m.position), ", rotary_percent: ", ShortestDouble(m.rotary_percent),
          ". (Falcon's own ALiBi divides the slopes by sqrt(head_dim), unlike braid's and "
          "BLOOM's; HINT: model.hf_layout: bloom for an ALiBi model.)"));
    }
    if (m.norm != NormType::kLayerNorm || m.embed_layernorm || m.sliding_window > 0) {
      return absl::InvalidArgumentError(
          "Falcon's layout has LayerNorm, no embedding LayerNorm and full causal attention; this "
          "model sets model.norm, embed_layernorm or sliding_window otherwise.");
    }
    const std::string* act = UngatedHfActivations().Theirs(Name(m.activation));
    if (act == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("Falcon's layout has an ungated MLP (", UngatedHfActivations().TheirNames(),
                       "); this model has model.activation: ", Name(m.activation), "."));
    }
    BRAID_ASSIGN_OR_RETURN(const FalconShape s, ShapeOf(c));
    const char* t = "true";
    const char* f = "false";
    return absl::StrFormat(
        "{\n  \"architectures\": [\"FalconForCausalLM\"],\n  \"model_type\": \"falcon\",\n"
        "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n"
        "  \"num_attention_heads\": %d,\n  \"num_kv_heads\": %d,\n"
        "  \"new_decoder_architecture\": %s,\n  \"multi_query\": %s,\n  \"parallel_attn\": %s,\n"
        "  \"num_ln_in_parallel_attn\": %s,\n  \"bias\": %s,\n  \"alibi\": false,\n"
        "  \"ffn_hidden_size\": %d,\n  \"activation\": \"%s\",\n  \"layer_norm_epsilon\": %s,\n"
        "  \"rope_theta\": %s,\n  \"rope_scaling\": null,\n  \"max_position_embeddings\": %d,\n"
        "  \"hidden_dropout\": %s,\n  \"attention_dropout\": %s,\n  \"initializer_range\": %s,\n"
        "  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"%s\"\n}\n",
        vocab, m.hidden_size, m.num_layers, m.num_attention_heads, m.num_query_groups,
        s.new_arch ? t : f, s.multi_query ? t : f, s.parallel ? t : f,
        s.new_arch ? absl::StrCat(s.norms) : std::string("null"), m.bias ? t : f, FfnHiddenSize(m),
        *act, ShortestDouble(m.layernorm_epsilon), ShortestDouble(m.rope_theta),
        m.max_position_embeddings, ShortestDouble(m.hidden_dropout),
        ShortestDouble(m.attention_dropout), ShortestDouble(m.init_std), m.tie_embeddings ? t : f,
        torch_dtype);
  }

  absl::StatusOr<std::vector<std::string>> ImportOverrides(
      const JsonValue& hf, const std::set<std::string>& names) const override {
    // A setting braid does not model: refused rather than imported as a different model.
    BRAID_RETURN_IF_ERROR(HfRefuseRopeScaling(hf));
    BRAID_ASSIGN_OR_RETURN(const bool alibi, HfBoolOr(hf, "alibi", false));
    if (alibi) {
      return absl::InvalidArgumentError(
          "config.json: alibi is true (Falcon-RW); transformers' Falcon divides the ALiBi slopes "
          "by sqrt(head_dim), which braid's ALiBi does not, so the model would compute other "
          "logits.");
    }
    const JsonValue* type = hf.Find("model_type");
    const bool refined_web =
        type != nullptr && type->kind == JsonValue::Kind::kString && type->text == "RefinedWeb";
    // The first files' names: n_layer, n_head, n_head_kv.
    const char* layers = hf.Find("n_layer") ? "n_layer" : "num_hidden_layers";
    const char* heads_key = hf.Find("n_head") ? "n_head" : "num_attention_heads";
    const char* kv_key = hf.Find("n_head_kv") ? "n_head_kv" : "num_kv_heads";
    BRAID_ASSIGN_OR_RETURN(const int64_t n, HfInt(hf, layers));
    BRAID_ASSIGN_OR_RETURN(const int64_t hidden, HfInt(hf, "hidden_size"));
    BRAID_ASSIGN_OR_RETURN(const int64_t heads, HfInt(hf, heads_key));
    BRAID_ASSIGN_OR_RETURN(const int64_t vocab, HfInt(hf, "vocab_size"));
    if (hidden % heads != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "config.json: hidden_size %d is not divisible by %s %d.", hidden, heads_key, heads));
    }
    BRAID_ASSIGN_OR_RETURN(const bool new_arch,
                           HfBoolOr(hf, "new_decoder_architecture", refined_web));
    BRAID_ASSIGN_OR_RETURN(const bool multi_query, HfBoolOr(hf, "multi_query", true));
    BRAID_ASSIGN_OR_RETURN(const bool parallel_attn, HfBoolOr(hf, "parallel_attn", true));
    int64_t groups = multi_query ? 1 : heads;
    bool parallel = parallel_attn, shared = parallel_attn;
    if (new_arch) {
      BRAID_ASSIGN_OR_RETURN(groups, HfIntOr(hf, kv_key, heads));
      if (heads % groups != 0) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "config.json: %s %d does not divide %s %d.", kv_key, groups, heads_key, heads));
      }
      BRAID_ASSIGN_OR_RETURN(const int64_t norms, HfIntOr(hf, "num_ln_in_parallel_attn", 2));
      if (norms != 1 && norms != 2) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "config.json: num_ln_in_parallel_attn is %d; Falcon has 1 or 2.", norms));
      }
      parallel = true;  // the new decoder architecture always adds both branches to x
      shared = norms == 1;
    }
    std::vector<std::string> sets = {
        "model.hf_layout=falcon",
        "model.position=rope",
        "model.rotary_percent=1",
        "model.norm=layernorm",
        "model.embed_layernorm=false",
        "model.sliding_window=0",
        "model.kv_channels=0",
        absl::StrCat("model.num_layers=", n),
        absl::StrCat("model.hidden_size=", hidden),
        absl::StrCat("model.num_attention_heads=", heads),
        absl::StrCat("model.num_query_groups=", groups),
        absl::StrCat("model.vocab_size=", vocab),
        absl::StrCat("model.parallel_residual=", parallel ? "true" : "false"),
        absl::StrCat("model.shared_input_norm=", parallel && shared ? "true" : "false")};
    BRAID_ASSIGN_OR_RETURN(const bool bias, HfBoolOr(hf, "bias", false));
    sets.push_back(absl::StrCat("model.bias=", bias ? "true" : "false"));
    BRAID_ASSIGN_OR_RETURN(const int64_t ffn, HfIntOr(hf, "ffn_hidden_size", 0, 0));  // 4 x hidden
    sets.push_back(absl::StrCat("model.ffn_hidden_size=", ffn));
    BRAID_ASSIGN_OR_RETURN(const int64_t positions, HfIntOr(hf, "max_position_embeddings", 2048));
    sets.push_back(absl::StrCat("model.max_position_embeddings=", positions));
    BRAID_ASSIGN_OR_RETURN(const double base, HfNumberOr(hf, "rope_theta", 10000));
    sets.push_back("model.rope_theta=" + ShortestDouble(base));
    BRAID_ASSIGN_OR_RETURN(const double eps, HfNumberOr(hf, "layer_norm_epsilon", 1e-5));
    sets.push_back("model.layernorm_epsilon=" + ShortestDouble(eps));
    BRAID_ASSIGN_OR_RETURN(std::string act,
                           HfActivationOverride(hf, "activation", "gelu", UngatedHfActivations()));
    sets.push_back(act);
    BRAID_ASSIGN_OR_RETURN(std::string tie, HfTieOverride(hf, names, "lm_head.weight"));
    sets.push_back(tie);
    return sets;
  }

  bool Ignorable(const std::string& n) const override {
    return n == "lm_head.weight" || absl::EndsWith(n, "rotary_emb.inv_freq");
  }
};

}  // namespace

const HfLayout& FalconHfLayout() {
  static const FalconHf kLayout;
  return kLayout;
}

}  // namespace braid
