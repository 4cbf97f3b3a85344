// BART's Hugging Face layout: BartForConditionalGeneration (post-LN) and
// MBartForConditionalGeneration (pre-LN, model.pre_ln, with a final layer_norm per stack); see
// docs/formats.md, "Hugging Face name maps". nn.Linear weights, no transposes. Our fused
// self-attention qkv is their q_proj, k_proj and v_proj stacked (weights and biases); the
// cross-attention kv their encoder_attn k_proj and v_proj. The position tables keep BART's two
// offset rows. final_logits_bias is [1, V] there, [V] here. LayerNorm eps is fixed at 1e-5 in
// their code, so a model with another is refused.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "recipes/bart/bart_family.h"

namespace braid {
namespace {

class BartHf : public HfLayout {
 public:
  std::string model_type() const override { return "bart"; }
  bool Reads(const std::string& type) const override { return type == "bart" || type == "mbart"; }
  std::string architecture(const Config& c) const override {
    return c.model.pre_ln ? "MBartForConditionalGeneration" : "BartForConditionalGeneration";
  }

  std::vector<HfTensor> Names(const Config& c) const override {
    std::vector<HfTensor> m = {{"shared.weight", {"model.shared.weight"}},
                               {"final_logits_bias", {"final_logits_bias"}, false, true}};
    if (!c.model.tie_embeddings) m.push_back({"lm_head.weight", {"lm_head.weight"}});
    auto both = [&](const std::string& ours, const std::string& theirs) {
      for (const char* p : {".weight", ".bias"}) m.push_back({ours + p, {theirs + p}});
    };
    auto stack = [&](const char* which, int64_t layers, bool decoder) {
      const std::string top = absl::StrCat("model.", which, ".");
      m.push_back({absl::StrCat(which, "_positions"), {top + "embed_positions.weight"}});
      both(absl::StrCat(which, "_ln_embedding"), top + "layernorm_embedding");
      if (c.model.pre_ln) both(absl::StrCat(which, "_norm"), top + "layer_norm");
      for (int64_t i = 0; i < layers; ++i) {
        const std::string o = absl::StrCat(which, ".", i, ".");
        const std::string h = absl::StrCat(top, "layers.", i, ".");
        for (const char* p : {".weight", ".bias"}) {
          m.push_back({o + "self_attention.qkv" + p,
                       {h + "self_attn.q_proj" + p, h + "self_attn.k_proj" + p,
                        h + "self_attn.v_proj" + p}});
        }
        both(o + "self_attention.out", h + "self_attn.out_proj");
        both(o + "ln_self", h + "self_attn_layer_norm");
        if (decoder) {
          both(o + "cross_attention.q", h + "encoder_attn.q_proj");
          for (const char* p : {".weight", ".bias"}) {
            m.push_back({o + "cross_attention.kv" + p,
                         {h + "encoder_attn.k_proj" + p, h + "encoder_attn.v_proj" + p}});
          }
          both(o + "cross_attention.out", h + "encoder_attn.out_proj");
          both(o + "ln_cross", h + "encoder_attn_layer_norm");
        }
        both(o + "mlp.fc1", h + "fc1");
        both(o + "mlp.fc2", h + "fc2");
        both(o + "ln_mlp", h + "final_layer_norm");
      }
    };
    stack("encoder", c.model.num_layers, false);
    stack("decoder", DecoderLayers(c.model), true);
    return m;
  }

  absl::StatusOr<std::string> ConfigJson(const Config& c, int64_t vocab,
                                         const std::string& torch_dtype) const override {
    BRAID_RETURN_IF_ERROR(HfHeadSizeIsHiddenOverHeads(c, "BART"));
    if (c.model.layernorm_epsilon != 1e-5) {
      return absl::InvalidArgumentError(absl::StrCat(
          "BART's layout has LayerNorm eps 1e-5 only; this model has model.layernorm_epsilon: ",
          ShortestDouble(c.model.layernorm_epsilon), "."));
    }
    if (c.model.activation != Activation::kGelu && c.model.activation != Activation::kRelu &&
        c.model.activation != Activation::kGeluTanh) {
      return absl::InvalidArgumentError(absl::StrCat("BART's layout has no activation '",
                                                     Name(c.model.activation),
                                                     "' (gelu, gelu_new, relu)."));
    }
    const BartSpecials sp = BartSpecialsOrFairseq(c);
    const int64_t positions =
        c.model.max_position_embeddings > 0 ? c.model.max_position_embeddings : c.model.seq_length;
    const bool m = c.model.pre_ln;
    return absl::StrFormat(
        "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n  \"vocab_size\": %d,\n"
        "  \"d_model\": %d,\n  \"encoder_layers\": %d,\n  \"decoder_layers\": %d,\n"
        "  \"encoder_attention_heads\": %d,\n  \"decoder_attention_heads\": %d,\n"
        "  \"encoder_ffn_dim\": %d,\n  \"decoder_ffn_dim\": %d,\n"
        "  \"max_position_embeddings\": %d,\n  \"activation_function\": \"%s\",\n"
        "  \"dropout\": %s,\n  \"attention_dropout\": %s,\n  \"activation_dropout\": 0.0,\n"
        "  \"init_std\": %s,\n  \"scale_embedding\": %s,\n  \"is_encoder_decoder\": true,\n"
        "  \"tie_word_embeddings\": %s,\n  \"bos_token_id\": %d,\n  \"pad_token_id\": %d,\n"
        "  \"eos_token_id\": %d,\n  \"decoder_start_token_id\": %d,\n  \"forced_bos_token_id\": "
        "%d,\n  \"torch_dtype\": \"%s\"\n}\n",
        m ? "MBartForConditionalGeneration" : "BartForConditionalGeneration", m ? "mbart" : "bart",
        vocab, c.model.hidden_size, c.model.num_layers, DecoderLayers(c.model),
        c.model.num_attention_heads, c.model.num_attention_heads, FfnHiddenSize(c.model),
        FfnHiddenSize(c.model), positions,
        c.model.activation == Activation::kGeluTanh ? "gelu_new" : Name(c.model.activation),
        ShortestDouble(c.model.hidden_dropout), ShortestDouble(c.model.attention_dropout),
        ShortestDouble(c.model.init_std), c.model.scale_embedding ? "true" : "false",
        c.model.tie_embeddings ? "true" : "false", sp.bos, sp.pad, sp.eos, sp.eos, sp.bos,
        torch_dtype);
  }

  absl::StatusOr<std::vector<std::string>> ImportOverrides(
      const JsonValue& hf, const std::set<std::string>& names) const override {
    std::vector<std::string> sets;
    for (const auto& [key, ours] :
         {std::pair<const char*, const char*>{"encoder_layers", "num_layers"},
          {"decoder_layers", "decoder_num_layers"},
          {"d_model", "hidden_size"},
          {"encoder_attention_heads", "num_attention_heads"},
          {"encoder_ffn_dim", "ffn_hidden_size"},
          {"max_position_embeddings", "max_position_embeddings"},
          {"vocab_size", "vocab_size"}}) {
      BRAID_ASSIGN_OR_RETURN(int64_t v, HfInt(hf, key));
      sets.push_back(absl::StrCat("model.", ours, "=", v));
    }
    for (const auto& [theirs, ours] :
         {std::pair<const char*, const char*>{"decoder_attention_heads", "encoder_attention_heads"},
          {"decoder_ffn_dim", "encoder_ffn_dim"}}) {
      BRAID_ASSIGN_OR_RETURN(const int64_t encoder, HfInt(hf, ours));
      BRAID_ASSIGN_OR_RETURN(const int64_t decoder, HfIntOr(hf, theirs, encoder));
      if (decoder != encoder) {
        return absl::UnimplementedError(absl::StrCat("config.json: ", theirs, " differs from ",
                                                     ours, "; our BART has one of each."));
      }
    }
    static const HfNameTable kActivations{
        {{"gelu", "gelu"}, {"gelu_tanh", "gelu_new"}, {"relu", "relu"}}};
    BRAID_ASSIGN_OR_RETURN(std::string act,
                           HfActivationOverride(hf, "activation_function", "gelu", kActivations));
    sets.push_back(act);
    const JsonValue* type = hf.Find("model_type");
    sets.push_back(
        absl::StrCat("model.pre_ln=", type != nullptr && type->text == "mbart" ? "true" : "false"));
    BRAID_ASSIGN_OR_RETURN(const bool scale, HfBoolOr(hf, "scale_embedding", false));
    sets.push_back(absl::StrCat("model.scale_embedding=", scale ? "true" : "false"));
    sets.push_back("model.norm=layernorm");
    sets.push_back("model.layernorm_epsilon=1e-5");
    BRAID_ASSIGN_OR_RETURN(std::string tie, HfTieOverride(hf, names, "lm_head.weight"));
    sets.push_back(tie);
    return sets;
  }

  bool Ignorable(const std::string& n) const override {
    // The embedding's copies in each stack, and the tied output's.
    return n == "model.encoder.embed_tokens.weight" || n == "model.decoder.embed_tokens.weight" ||
           n == "lm_head.weight";
  }
};

}  // namespace

const HfLayout& BartHfLayout() {
  static const BartHf kLayout;
  return kLayout;
}

}  // namespace braid
