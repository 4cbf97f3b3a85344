// T5's Hugging Face layout: T5ForConditionalGeneration (docs/formats.md, "Hugging Face name
// maps"). nn.Linear weights, no transposes, no biases. Our fused self-attention qkv is their q,
// k and v stacked; the cross-attention kv their k and v; a gated fc1 their wi_0 (the gate) and
// wi_1. The relative position bias of each stack lives in its block 0. feed_forward_proj:
// "gated-gelu" is our geglu_tanh (transformers runs it with gelu_new), "relu" relu, "gelu" gelu.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "recipes/seq2seq/t5_model.h"

namespace braid {
namespace {

const HfNameTable& FeedForward() {
  static const HfNameTable kTable{
      {{"geglu_tanh", "gated-gelu"}, {"relu", "relu"}, {"gelu", "gelu"}}};
  return kTable;
}

class T5Hf : public HfLayout {
 public:
  std::string model_type() const override { return "t5"; }
  std::string architecture(const Config&) const override { return "T5ForConditionalGeneration"; }

  std::vector<HfTensor> Names(const Config& c) const override {
    std::vector<HfTensor> m = {
        {"shared.weight", {"shared.weight"}},
        {"encoder_position_bias.weight",
         {"encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"}},
        {"decoder_position_bias.weight",
         {"decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"}},
        {"encoder_norm.weight", {"encoder.final_layer_norm.weight"}},
        {"decoder_norm.weight", {"decoder.final_layer_norm.weight"}},
    };
    if (!c.model.tie_embeddings) m.push_back({"lm_head.weight", {"lm_head.weight"}});
    auto stack = [&](const char* which, int64_t layers, bool decoder) {
      for (int64_t i = 0; i < layers; ++i) {
        const std::string o = absl::StrCat(which, ".", i, ".");
        const std::string h = absl::StrCat(which, ".block.", i, ".layer.");
        const std::string self = h + "0.SelfAttention.";
        m.push_back({o + "ln_self.weight", {h + "0.layer_norm.weight"}});
        m.push_back({o + "self_attention.qkv.weight",
                     {self + "q.weight", self + "k.weight", self + "v.weight"}});
        m.push_back({o + "self_attention.out.weight", {self + "o.weight"}});
        std::string ffn = h + "1.";
        if (decoder) {
          const std::string cross = h + "1.EncDecAttention.";
          m.push_back({o + "ln_cross.weight", {h + "1.layer_norm.weight"}});
          m.push_back({o + "cross_attention.q.weight", {cross + "q.weight"}});
          m.push_back({o + "cross_attention.kv.weight", {cross + "k.weight", cross + "v.weight"}});
          m.push_back({o + "cross_attention.out.weight", {cross + "o.weight"}});
          ffn = h + "2.";
        }
        m.push_back({o + "ln_mlp.weight", {ffn + "layer_norm.weight"}});
        if (IsGated(c.model.activation)) {
          m.push_back({o + "mlp.fc1.weight",
                       {ffn + "DenseReluDense.wi_0.weight", ffn + "DenseReluDense.wi_1.weight"}});
        } else {
          m.push_back({o + "mlp.fc1.weight", {ffn + "DenseReluDense.wi.weight"}});
        }
        m.push_back({o + "mlp.fc2.weight", {ffn + "DenseReluDense.wo.weight"}});
      }
    };
    stack("encoder", c.model.num_layers, false);
    stack("decoder", DecoderLayers(c.model), true);
    return m;
  }

  absl::StatusOr<std::string> ConfigJson(const Config& c, int64_t vocab,
                                         const std::string& torch_dtype) const override {
    if (c.model.norm != NormType::kRmsNorm) {
      return absl::InvalidArgumentError(absl::StrCat(
          "T5's layout has RMSNorm only; this model has model.norm: ", Name(c.model.norm), "."));
    }
    const std::string* ff = FeedForward().Theirs(Name(c.model.activation));
    if (ff == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("T5's layout has no FFN '", Name(c.model.activation), "' (",
                       FeedForward().TheirNames(), "; ours: geglu_tanh, relu, gelu)."));
    }
    const int64_t heads = c.model.num_attention_heads;
    const int64_t d_kv = HeadSize(c.model);
    return absl::StrFormat(
        "{\n  \"architectures\": [\"T5ForConditionalGeneration\"],\n  \"model_type\": \"t5\",\n"
        "  \"vocab_size\": %d,\n  \"d_model\": %d,\n  \"d_kv\": %d,\n  \"d_ff\": %d,\n"
        "  \"num_layers\": %d,\n  \"num_decoder_layers\": %d,\n  \"num_heads\": %d,\n"
        "  \"relative_attention_num_buckets\": %d,\n  \"relative_attention_max_distance\": %d,\n"
        "  \"dropout_rate\": %s,\n  \"layer_norm_epsilon\": %s,\n  \"initializer_factor\": 1.0,\n"
        "  \"feed_forward_proj\": \"%s\",\n  \"is_encoder_decoder\": true,\n"
        "  \"tie_word_embeddings\": %s,\n  \"pad_token_id\": 0,\n  \"eos_token_id\": 1,\n"
        "  \"decoder_start_token_id\": 0,\n  \"torch_dtype\": \"%s\"\n}\n",
        vocab, c.model.hidden_size, d_kv, FfnHiddenSize(c.model), c.model.num_layers,
        DecoderLayers(c.model), heads, c.model.relative_attention_num_buckets,
        c.model.relative_attention_max_distance, ShortestDouble(c.model.hidden_dropout),
        ShortestDouble(c.model.layernorm_epsilon), *ff, c.model.tie_embeddings ? "true" : "false",
        torch_dtype);
  }

  absl::StatusOr<std::vector<std::string>> ImportOverrides(
      const JsonValue& hf, const std::set<std::string>& names) const override {
    std::vector<std::string> sets;
    for (const auto& [key, ours] : {std::pair<const char*, const char*>{"num_layers", "num_layers"},
                                    {"d_model", "hidden_size"},
                                    {"num_heads", "num_attention_heads"},
                                    {"d_kv", "kv_channels"},
                                    {"d_ff", "ffn_hidden_size"},
                                    {"vocab_size", "vocab_size"}}) {
      BRAID_ASSIGN_OR_RETURN(int64_t v, HfInt(hf, key));
      sets.push_back(absl::StrCat("model.", ours, "=", v));
    }
    for (const auto& [key, ours] :
         {std::pair<const char*, const char*>{"num_decoder_layers", "decoder_num_layers"},
          {"relative_attention_num_buckets", "relative_attention_num_buckets"},
          {"relative_attention_max_distance", "relative_attention_max_distance"}}) {
      // Absent or null: transformers' defaults (num_layers, 32, 128) are the base recipe's.
      BRAID_ASSIGN_OR_RETURN(const int64_t v, HfIntOr(hf, key, 0));
      if (v > 0) sets.push_back(absl::StrCat("model.", ours, "=", v));
    }
    BRAID_ASSIGN_OR_RETURN(const double eps, HfNumberOr(hf, "layer_norm_epsilon", 1e-6));
    sets.push_back("model.layernorm_epsilon=" + ShortestDouble(eps));
    BRAID_ASSIGN_OR_RETURN(std::string act,
                           HfActivationOverride(hf, "feed_forward_proj", "relu", FeedForward()));
    sets.push_back(act);
    sets.push_back("model.norm=rmsnorm");
    BRAID_ASSIGN_OR_RETURN(std::string tie, HfTieOverride(hf, names, "lm_head.weight"));
    sets.push_back(tie);
    return sets;
  }

  bool Ignorable(const std::string& n) const override {
    // The embedding's copies in each stack, and the tied output's.
    return n == "encoder.embed_tokens.weight" || n == "decoder.embed_tokens.weight" ||
           n == "lm_head.weight";
  }
};

}  // namespace

const HfLayout& T5HfLayout() {
  static const T5Hf kLayout;
  return kLayout;
}

}  // namespace braid
