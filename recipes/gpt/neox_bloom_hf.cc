// GPT-family models in the Hugging Face layouts of GPT-NeoX (GPTNeoXForCausalLM: Pythia,
// GPT-NeoX-20B) and BLOOM (BloomForCausalLM), chosen by model.hf_layout, and StarCoder's
// GPTBigCodeForCausalLM, for learned positions with one key/value head (docs/formats.md,
// "Hugging Face name maps").
//
// Both fuse the attention's projection per head: query_key_value's rows are [head][q | k | v]
// [head_dim]. That is our per-group QKV layout (framework/nn/blocks.h) with one head a group, so
// these models have model.num_query_groups equal to the heads, and the fused tensor is written as
// it is; a TP split hands each rank whole heads, as it hands Megatron's.
//
//   ours                         GPT-NeoX                                 BLOOM
//   wte.weight                   gpt_neox.embed_in.weight transformer.word_embeddings.weight ln_emb
//   -                                        transformer.word_embeddings_layernorm h.{i}.ln_self
//   gpt_neox.layers.{i}.input_layernorm      transformer.h.{i}.input_layernorm
//   h.{i}.self_attention.qkv     ...attention.query_key_value ...self_attention.query_key_value
//   h.{i}.self_attention.out     ...attention.dense                       ...self_attention.dense
//   h.{i}.ln_mlp                 ...post_attention_layernorm ...post_attention_layernorm
//   h.{i}.mlp.fc1 / fc2          ...mlp.dense_h_to_4h / dense_4h_to_h     ...mlp.dense_h_to_4h /
//   dense_4h_to_h ln_f                         gpt_neox.final_layer_norm transformer.ln_f
//   lm_head.weight               embed_out.weight (untied)                lm_head.weight (untied)
//
// GPT-NeoX: RoPE on rotary_pct of each head (model.rotary_percent, rotate-half as ours), parallel
// residual x + attn(ln1(x)) + mlp(ln2(x)) or sequential, LayerNorm and biases everywhere, GELU.
// BLOOM: ALiBi, a LayerNorm after the word embeddings, sequential pre-LN layers, tanh GELU, an
// MLP 4 x hidden wide, biases; tied output by default.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "recipes/gpt/gpt_family.h"

namespace braid {
namespace {

// What both layouts need: LayerNorm, biases, one head a key/value group (the per-head fused QKV).
absl::Status NeedsPerHeadLayout(const Config& c, const std::string& layout) {
  const ModelConfig& m = c.model;
  BRAID_RETURN_IF_ERROR(HfHeadSizeIsHiddenOverHeads(c, layout));
  if (m.norm != NormType::kLayerNorm || !m.bias) {
    return absl::InvalidArgumentError(absl::StrCat(
        layout, "'s layout has LayerNorm and biases; this model has model.norm: ", Name(m.norm),
        ", model.bias: ", m.bias ? "true" : "false", "."));
  }
  if (m.num_query_groups != m.num_attention_heads) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s fuses q, k and v per head: model.num_query_groups must equal model.num_attention_heads "
        "(%d), not %d. HINT: set model.num_query_groups: %d (the recipes for %s do).",
        layout, m.num_attention_heads, m.num_query_groups, m.num_attention_heads, layout));
  }
  if (m.sliding_window > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(layout,
                     "'s layout has full causal attention; this model has "
                     "model.sliding_window."));
  }
  return absl::OkStatus();
}

// The name map both share; `p` is the prefix of the layers and `attn` their attention's name.
void PerHeadLayers(const Config& c, const std::string& p, const std::string& attn,
                   std::vector<HfTensor>* m) {
  for (int64_t i = 0; i < c.model.num_layers; ++i) {
    const std::string o = absl::StrCat("h.", i, "."), h = absl::StrCat(p, i, ".");
    const std::pair<std::string, std::string> modules[] = {
        {"ln_self", "input_layernorm"},          {"self_attention.qkv", attn + ".query_key_value"},
        {"self_attention.out", attn + ".dense"}, {"ln_mlp", "post_attention_layernorm"},
        {"mlp.fc1", "mlp.dense_h_to_4h"},        {"mlp.fc2", "mlp.dense_4h_to_h"}};
    for (const auto& [ours, theirs] : modules) {
      for (const char* k : {"weight", "bias"}) {
        m->push_back({absl::StrCat(o, ours, ".", k), {absl::StrCat(h, theirs, ".", k)}});
      }
    }
  }
}

// The overrides both importers share: sizes, LayerNorm with biases, one head a group.
absl::Status SharedSizes(const JsonValue& hf, const char* layers, const char* heads_key,
                         std::vector<std::string>* sets) {
  BRAID_ASSIGN_OR_RETURN(int64_t n, HfInt(hf, layers));
  BRAID_ASSIGN_OR_RETURN(int64_t hidden, HfInt(hf, "hidden_size"));
  BRAID_ASSIGN_OR_RETURN(int64_t heads, HfInt(hf, heads_key));
  BRAID_ASSIGN_OR_RETURN(int64_t vocab, HfInt(hf, "vocab_size"));
  if (hidden % heads != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "config.json: hidden_size %d is not divisible by %s %d.", hidden, heads_key, heads));
  }
  for (const std::string& s :
       {absl::StrCat("model.num_layers=", n), absl::StrCat("model.hidden_size=", hidden),
        absl::StrCat("model.num_attention_heads=", heads),
        absl::StrCat("model.num_query_groups=", heads), absl::StrCat("model.vocab_size=", vocab),
        std::string("model.norm=layernorm"), std::string("model.bias=true"),
        std::string("model.sliding_window=0"), std::string("model.kv_channels=0")}) {
    sets->push_back(s);
  }
  return absl::OkStatus();
}

class NeoxHf : public HfLayout {
 public:
  std::string model_type() const override { return "gpt_neox"; }
  std::string architecture(const Config&) const override { return "GPTNeoXForCausalLM"; }

  std::vector<HfTensor> Names(const Config& c) const override {
    std::vector<HfTensor> m = {{"wte.weight", {"gpt_neox.embed_in.weight"}},
                               {"ln_f.weight", {"gpt_neox.final_layer_norm.weight"}},
                               {"ln_f.bias", {"gpt_neox.final_layer_norm.bias"}}};
    if (!c.model.tie_embeddings) m.push_back({"lm_head.weight", {"embed_out.weight"}});
    PerHeadLayers(c, "gpt_neox.layers.", "attention", &m);
    return m;
  }

  absl::StatusOr<std::string> ConfigJson(const Config& c, int64_t vocab,
                                         const std::string& torch_dtype) const override {
    const ModelConfig& m = c.model;
    BRAID_RETURN_IF_ERROR(NeedsPerHeadLayout(c, "GPT-NeoX"));
    if (m.position != Position::kRope || m.embed_layernorm) {
      return absl::InvalidArgumentError(
          "GPT-NeoX's layout has RoPE positions and no embedding LayerNorm; this model sets "
          "model.position or model.embed_layernorm otherwise.");
    }
    const std::string* act = UngatedHfActivations().Theirs(Name(m.activation));
    if (act == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "GPT-NeoX's layout has an ungated MLP (", UngatedHfActivations().TheirNames(),
          "); this model has model.activation: ", Name(m.activation), "."));
    }
    return absl::StrFormat(
        "{\n  \"architectures\": [\"GPTNeoXForCausalLM\"],\n  \"model_type\": \"gpt_neox\",\n"
        "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n"
        "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n  \"hidden_act\": \"%s\",\n"
        "  \"rotary_pct\": %s,\n  \"rotary_emb_base\": %s,\n  \"max_position_embeddings\": %d,\n"
        "  \"layer_norm_eps\": %s,\n  \"use_parallel_residual\": %s,\n  \"attention_bias\": true,\n"
        "  \"hidden_dropout\": %s,\n  \"attention_dropout\": %s,\n  \"initializer_range\": %s,\n"
        "  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"%s\"\n}\n",
        vocab, m.hidden_size, FfnHiddenSize(m), m.num_layers, m.num_attention_heads, *act,
        ShortestDouble(m.rotary_percent), ShortestDouble(m.rope_theta), m.max_position_embeddings,
        ShortestDouble(m.layernorm_epsilon), m.parallel_residual ? "true" : "false",
        ShortestDouble(m.hidden_dropout), ShortestDouble(m.attention_dropout),
        ShortestDouble(m.init_std), m.tie_embeddings ? "true" : "false", torch_dtype);
  }

  absl::StatusOr<std::vector<std::string>> ImportOverrides(
      const JsonValue& hf, const std::set<std::string>& names) const override {
    // A setting braid does not model: refused rather than imported as a different model.
    BRAID_RETURN_IF_ERROR(HfRefuseRopeScaling(hf));
    BRAID_ASSIGN_OR_RETURN(const bool attention_bias, HfBoolOr(hf, "attention_bias", true));
    if (!attention_bias) {
      return absl::InvalidArgumentError(
          "config.json: attention_bias is false; braid's GPT-NeoX layout has biases everywhere.");
    }
    std::vector<std::string> sets = {"model.hf_layout=gpt_neox", "model.position=rope",
                                     "model.embed_layernorm=false"};
    BRAID_RETURN_IF_ERROR(SharedSizes(hf, "num_hidden_layers", "num_attention_heads", &sets));
    BRAID_ASSIGN_OR_RETURN(int64_t ffn, HfInt(hf, "intermediate_size"));
    BRAID_ASSIGN_OR_RETURN(int64_t positions, HfInt(hf, "max_position_embeddings"));
    sets.push_back(absl::StrCat("model.ffn_hidden_size=", ffn));
    sets.push_back(absl::StrCat("model.max_position_embeddings=", positions));
    BRAID_ASSIGN_OR_RETURN(const double pct, HfNumberOr(hf, "rotary_pct", 1.0));
    if (pct > 1.0) return absl::InvalidArgumentError("config.json: rotary_pct above 1.");
    sets.push_back("model.rotary_percent=" + ShortestDouble(pct));
    BRAID_ASSIGN_OR_RETURN(const double base, HfNumberOr(hf, "rotary_emb_base", 10000));
    sets.push_back("model.rope_theta=" + ShortestDouble(base));
    BRAID_ASSIGN_OR_RETURN(const double eps, HfNumberOr(hf, "layer_norm_eps", 1e-5));
    sets.push_back("model.layernorm_epsilon=" + ShortestDouble(eps));
    BRAID_ASSIGN_OR_RETURN(const bool parallel, HfBoolOr(hf, "use_parallel_residual", true));
    sets.push_back(absl::StrCat("model.parallel_residual=", parallel ? "true" : "false"));
    BRAID_ASSIGN_OR_RETURN(std::string act,
                           HfActivationOverride(hf, "hidden_act", "gelu", UngatedHfActivations()));
    sets.push_back(act);
    // GPT-NeoX's tie_word_embeddings defaults to false.
    BRAID_ASSIGN_OR_RETURN(const bool tied, HfBoolOr(hf, "tie_word_embeddings", false));
    if (!tied && names.count("embed_out.weight") == 0) {
      return absl::InvalidArgumentError(
          "config.json: an untied GPT-NeoX (tie_word_embeddings false, its default) without "
          "embed_out.weight in the files.");
    }
    sets.push_back(absl::StrCat("model.tie_embeddings=", tied ? "true" : "false"));
    return sets;
  }

  bool Ignorable(const std::string& n) const override {
    // The causal-mask and RoPE buffers older GPT-NeoX files carry, and a tied output's copy.
    return absl::EndsWith(n, ".attention.bias") || absl::EndsWith(n, ".attention.masked_bias") ||
           absl::EndsWith(n, "rotary_emb.inv_freq") || n == "embed_out.weight";
  }
};

class BloomHf : public HfLayout {
 public:
  std::string model_type() const override { return "bloom"; }
  std::string architecture(const Config&) const override { return "BloomForCausalLM"; }

  std::vector<HfTensor> Names(const Config& c) const override {
    std::vector<HfTensor> m = {{"wte.weight", {"transformer.word_embeddings.weight"}},
                               {"ln_emb.weight", {"transformer.word_embeddings_layernorm.weight"}},
                               {"ln_emb.bias", {"transformer.word_embeddings_layernorm.bias"}},
                               {"ln_f.weight", {"transformer.ln_f.weight"}},
                               {"ln_f.bias", {"transformer.ln_f.bias"}}};
    if (!c.model.tie_embeddings) m.push_back({"lm_head.weight", {"lm_head.weight"}});
    PerHeadLayers(c, "transformer.h.", "self_attention", &m);
    return m;
  }

  absl::StatusOr<std::string> ConfigJson(const Config& c, int64_t vocab,
                                         const std::string& torch_dtype) const override {
    const ModelConfig& m = c.model;
    BRAID_RETURN_IF_ERROR(NeedsPerHeadLayout(c, "BLOOM"));
    if (m.position != Position::kAlibi || !m.embed_layernorm || m.parallel_residual ||
        m.activation != Activation::kGeluTanh || FfnHiddenSize(m) != 4 * m.hidden_size) {
      return absl::InvalidArgumentError(
          "BLOOM's layout has ALiBi, a LayerNorm after the embeddings (model.embed_layernorm), "
          "sequential sub-blocks and a tanh-GELU MLP 4 x hidden_size wide; this model differs in "
          "model.position, embed_layernorm, parallel_residual, activation or ffn_hidden_size.");
    }
    return absl::StrFormat(
        "{\n  \"architectures\": [\"BloomForCausalLM\"],\n  \"model_type\": \"bloom\",\n"
        "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"n_layer\": %d,\n  \"n_head\": %d,\n"
        "  \"layer_norm_epsilon\": %s,\n  \"apply_residual_connection_post_layernorm\": false,\n"
        "  \"hidden_dropout\": %s,\n  \"attention_dropout\": %s,\n  \"initializer_range\": %s,\n"
        "  \"pretraining_tp\": 1,\n  \"slow_but_exact\": false,\n  \"tie_word_embeddings\": %s,\n"
        "  \"torch_dtype\": \"%s\"\n}\n",
        vocab, m.hidden_size, m.num_layers, m.num_attention_heads,
        ShortestDouble(m.layernorm_epsilon), ShortestDouble(m.hidden_dropout),
        ShortestDouble(m.attention_dropout), ShortestDouble(m.init_std),
        m.tie_embeddings ? "true" : "false", torch_dtype);
  }

  absl::StatusOr<std::vector<std::string>> ImportOverrides(
      const JsonValue& hf, const std::set<std::string>& names) const override {
    BRAID_ASSIGN_OR_RETURN(const bool post,
                           HfBoolOr(hf, "apply_residual_connection_post_layernorm", false));
    if (post) {
      return absl::InvalidArgumentError(
          "config.json: apply_residual_connection_post_layernorm is true; braid's BLOOM adds the "
          "residual before the norm, as the published BLOOM models do.");
    }
    // BLOOM's older files name the layers and heads n_layer / n_head; newer ones also
    // num_hidden_layers / num_attention_heads.
    const char* layers = hf.Find("n_layer") ? "n_layer" : "num_hidden_layers";
    const char* heads = hf.Find("n_head") ? "n_head" : "num_attention_heads";
    std::vector<std::string> sets = {"model.hf_layout=bloom",      "model.position=alibi",
                                     "model.embed_layernorm=true", "model.parallel_residual=false",
                                     "model.activation=gelu_tanh", "model.ffn_hidden_size=0",
                                     "model.rotary_percent=1"};
    BRAID_RETURN_IF_ERROR(SharedSizes(hf, layers, heads, &sets));
    BRAID_ASSIGN_OR_RETURN(const double eps, HfNumberOr(hf, "layer_norm_epsilon", 1e-5));
    sets.push_back("model.layernorm_epsilon=" + ShortestDouble(eps));
    BRAID_ASSIGN_OR_RETURN(std::string tie, HfTieOverride(hf, names, "lm_head.weight"));
    sets.push_back(tie);
    return sets;
  }

  bool Ignorable(const std::string& n) const override { return n == "lm_head.weight"; }
};

// StarCoder's GPTBigCodeForCausalLM with multi-query attention: GPT-2's names and learned
// positions, PyTorch's [out, in] linear weights (no Conv1D), and c_attn's rows q (all heads) | k |
// v (one head each): our per-group layout with one group.
class BigCodeHf : public HfLayout {
 public:
  std::string model_type() const override { return "gpt_bigcode"; }
  std::string architecture(const Config&) const override { return "GPTBigCodeForCausalLM"; }

  std::vector<HfTensor> Names(const Config& c) const override {
    return Gpt2StyleNames(c, /*conv1d=*/false);
  }

  absl::StatusOr<std::string> ConfigJson(const Config& c, int64_t vocab,
                                         const std::string& torch_dtype) const override {
    const ModelConfig& m = c.model;
    BRAID_RETURN_IF_ERROR(HfHeadSizeIsHiddenOverHeads(c, "GPTBigCode"));
    if (m.norm != NormType::kLayerNorm || !m.bias || m.sliding_window > 0 || m.parallel_residual ||
        m.embed_layernorm) {
      return absl::InvalidArgumentError(
          "GPTBigCode's layout has LayerNorm, biases, full causal attention, sequential "
          "sub-blocks and no embedding LayerNorm; this model sets model.norm, bias, "
          "sliding_window, parallel_residual or embed_layernorm otherwise.");
    }
    const std::string* act = UngatedHfActivations().Theirs(Name(m.activation));
    if (act == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("GPTBigCode's layout has an ungated MLP; this model has model.activation: ",
                       Name(m.activation), "."));
    }
    const int64_t e = m.hidden_size, ffn = FfnHiddenSize(m);
    return absl::StrFormat(
        "{\n  \"architectures\": [\"GPTBigCodeForCausalLM\"],\n  \"model_type\": \"gpt_bigcode\",\n"
        "  \"vocab_size\": %d,\n  \"n_positions\": %d,\n  \"n_embd\": %d,\n  \"n_layer\": %d,\n"
        "  \"n_head\": %d,\n  \"n_inner\": %d,\n  \"multi_query\": true,\n"
        "  \"activation_function\": \"%s\",\n  \"layer_norm_epsilon\": %s,\n"
        "  \"scale_attn_weights\": true,\n  \"resid_pdrop\": %s,\n  \"embd_pdrop\": %s,\n"
        "  \"attn_pdrop\": %s,\n  \"initializer_range\": %s,\n  \"tie_word_embeddings\": %s,\n"
        "  \"torch_dtype\": \"%s\"\n}\n",
        vocab, m.max_position_embeddings, e, m.num_layers, m.num_attention_heads, ffn,
        *act == "gelu_new" ? "gelu_pytorch_tanh" : *act, ShortestDouble(m.layernorm_epsilon),
        ShortestDouble(m.hidden_dropout), ShortestDouble(m.hidden_dropout),
        ShortestDouble(m.attention_dropout), ShortestDouble(m.init_std),
        m.tie_embeddings ? "true" : "false", torch_dtype);
  }

  absl::StatusOr<std::vector<std::string>> ImportOverrides(
      const JsonValue& hf, const std::set<std::string>& names) const override {
    BRAID_ASSIGN_OR_RETURN(const bool mqa, HfBoolOr(hf, "multi_query", true));
    if (!mqa) {
      return absl::InvalidArgumentError(
          "config.json: multi_query is false; braid reads GPTBigCode's multi-query layout "
          "(StarCoder's) only.");
    }
    std::vector<std::string> sets = {"model.hf_layout=auto",        "model.position=learned",
                                     "model.norm=layernorm",        "model.bias=true",
                                     "model.num_query_groups=1",    "model.parallel_residual=false",
                                     "model.embed_layernorm=false", "model.sliding_window=0",
                                     "model.kv_channels=0"};
    BRAID_RETURN_IF_ERROR(Gpt2StyleSizes(hf, &sets));
    BRAID_ASSIGN_OR_RETURN(const int64_t inner, HfIntOr(hf, "n_inner", 0));  // null: 4 x n_embd
    sets.push_back(absl::StrCat("model.ffn_hidden_size=", inner));
    BRAID_ASSIGN_OR_RETURN(std::string act,
                           HfActivationOverride(hf, "activation_function", "gelu_pytorch_tanh",
                                                UngatedHfActivations()));
    sets.push_back(act);
    BRAID_ASSIGN_OR_RETURN(std::string tie, HfTieOverride(hf, names, "lm_head.weight"));
    sets.push_back(tie);
    return sets;
  }

  bool Ignorable(const std::string& n) const override {
    return absl::EndsWith(n, ".attn.bias") || absl::EndsWith(n, ".attn.masked_bias") ||
           n == "lm_head.weight";
  }
};

}  // namespace

const HfNameTable& UngatedHfActivations() {
  static const HfNameTable kTable{{{"gelu", "gelu"},
                                   {"gelu_tanh", "gelu_new"},
                                   {"gelu_tanh", "gelu_fast"},
                                   {"gelu_tanh", "gelu_pytorch_tanh"},
                                   {"relu", "relu"}}};
  return kTable;
}

const HfLayout& GptBigCodeHfLayout() {
  static const BigCodeHf kLayout;
  return kLayout;
}

const HfLayout& GptNeoxHfLayout() {
  static const NeoxHf kLayout;
  return kLayout;
}

const HfLayout& BloomHfLayout() {
  static const BloomHf kLayout;
  return kLayout;
}

}  // namespace braid
