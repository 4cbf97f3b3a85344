// GPT's Hugging Face layout: GPT2LMHeadModel (docs/formats.md, "Hugging Face name maps") for
// models with learned positions; Llama's (llama_hf.cc) for the others.
// GPT-2's Conv1D stores weights [in, out], so every linear weight is transposed; the fused QKV is
// c_attn as it is (columns q | k | v). Activations: gelu_tanh is "gelu_new", gelu and relu keep
// their names. A gated MLP (geglu) has no GPT-2 equivalent in transformers: it is written as
// "geglu" with c_fc holding [gate | up] along its output columns, which our importer and the
// reference in tests/models/gpt2_reference.py read, and transformers' GPT2LMHeadModel does not.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "recipes/gpt/gpt_family.h"

namespace braid {
namespace {

// Our activation names and GPT-2's activation_function (gelu_pytorch_tanh is gelu_new).
const HfNameTable& Gpt2Activations() {
  static const HfNameTable kTable{{{"gelu_tanh", "gelu_new"},
                                   {"gelu_tanh", "gelu_pytorch_tanh"},
                                   {"gelu", "gelu"},
                                   {"relu", "relu"},
                                   {"geglu", "geglu"}}};
  return kTable;
}

// A GPT model in GPT-2's layout when its positions are learned, else in Llama's (llama_hf.cc),
// unless model.hf_layout names another (neox_bloom_hf.cc, falcon_hf.cc, qwen_moe_hf.cc).
bool Llama(const Config& c) { return c.model.position != Position::kLearned; }

// The layout model.hf_layout names; null for auto (GPT-2's or Llama's).
const HfLayout* Chosen(const Config& c) {
  switch (c.model.hf_layout) {
    case HfLayoutChoice::kGptNeox:
      return &GptNeoxHfLayout();
    case HfLayoutChoice::kBloom:
      return &BloomHfLayout();
    case HfLayoutChoice::kFalcon:
      return &FalconHfLayout();
    case HfLayoutChoice::kQwen2Moe:
      return &Qwen2MoeHfLayout();
    case HfLayoutChoice::kAuto:
      break;
  }
  // Experts with shared experts or q, k, v biases: Qwen2-MoE's (Mixtral's has neither).
  if (c.model.num_experts > 0 && (c.model.moe_shared_experts > 0 || c.model.add_qkv_bias)) {
    return &Qwen2MoeHfLayout();
  }
  // Learned positions with multi-query attention: StarCoder's GPTBigCode.
  if (c.model.position == Position::kLearned && c.model.num_query_groups == 1) {
    return &GptBigCodeHfLayout();
  }
  return nullptr;
}

// The layouts import-hf reads besides GPT-2's and Llama's.
const HfLayout* ReaderOf(const std::string& type) {
  for (const HfLayout* l : {&GptNeoxHfLayout(), &BloomHfLayout(), &GptBigCodeHfLayout(),
                            &FalconHfLayout(), &Qwen2MoeHfLayout()})
    if (l->Reads(type)) return l;
  return nullptr;
}

class GptHf : public HfLayout {
 public:
  std::string model_type() const override { return "gpt2"; }
  bool Reads(const std::string& t) const override {
    return t == "gpt2" || LlamaHfLayout().Reads(t) || ReaderOf(t) != nullptr;
  }
  std::string architecture(const Config& c) const override {
    if (const HfLayout* l = Chosen(c)) return l->architecture(c);
    return Llama(c) ? LlamaHfLayout().architecture(c) : "GPT2LMHeadModel";
  }

  std::vector<HfTensor> Names(const Config& c) const override {
    if (const HfLayout* l = Chosen(c)) return l->Names(c);
    if (Llama(c)) return LlamaHfLayout().Names(c);
    return Gpt2StyleNames(c, /*conv1d=*/true);
  }

  absl::StatusOr<std::string> ConfigJson(const Config& c, int64_t vocab,
                                         const std::string& torch_dtype) const override {
    if (const HfLayout* l = Chosen(c)) return l->ConfigJson(c, vocab, torch_dtype);
    const ModelConfig& m = c.model;
    if (m.embed_layernorm || (Llama(c) && m.rotary_percent < 1.0)) {
      return absl::InvalidArgumentError(
          "model.embed_layernorm and a model.rotary_percent below 1 have no place in GPT-2's or "
          "Llama's layout. HINT: model.hf_layout: bloom (an embedding LayerNorm) or gpt_neox "
          "(partial rotary).");
    }
    if (Llama(c)) return LlamaHfLayout().ConfigJson(c, vocab, torch_dtype);
    BRAID_RETURN_IF_ERROR(HfHeadSizeIsHiddenOverHeads(c, "GPT-2"));
    if (!m.bias || m.num_query_groups > 0 || m.sliding_window > 0 || m.parallel_residual) {
      return absl::InvalidArgumentError(
          "GPT-2's layout has biases, one key/value head per query head, full causal attention "
          "and sequential sub-blocks; this model sets model.bias, num_query_groups, "
          "sliding_window or parallel_residual. HINT: with model.position: rope it is written in "
          "Llama's layout.");
    }
    if (c.model.norm != NormType::kLayerNorm) {
      return absl::InvalidArgumentError(absl::StrCat(
          "GPT-2's layout has LayerNorm only; this model has model.norm: ", Name(c.model.norm),
          "."));
    }
    const std::string* act = Gpt2Activations().Theirs(Name(c.model.activation));
    if (act == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("GPT-2's layout has no activation '", Name(c.model.activation), "'."));
    }
    const int64_t e = c.model.hidden_size, ffn = FfnHiddenSize(c.model);
    const int64_t positions = c.model.max_position_embeddings;
    const int64_t eod = vocab - 1;  // GPT-2: <|endoftext|> is the last id
    return absl::StrFormat(
        "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n"
        "  \"vocab_size\": %d,\n  \"n_positions\": %d,\n  \"n_ctx\": %d,\n  \"n_embd\": %d,\n"
        "  \"n_layer\": %d,\n  \"n_head\": %d,\n  \"n_inner\": %s,\n"
        "  \"activation_function\": \"%s\",\n  \"layer_norm_epsilon\": %s,\n"
        "  \"resid_pdrop\": %s,\n  \"embd_pdrop\": %s,\n  \"attn_pdrop\": %s,\n"
        "  \"initializer_range\": %s,\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n"
        "  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"%s\"\n}\n",
        vocab, positions, positions, e, c.model.num_layers, c.model.num_attention_heads,
        ffn == 4 * e ? std::string("null") : absl::StrCat(ffn), *act,
        ShortestDouble(c.model.layernorm_epsilon), ShortestDouble(c.model.hidden_dropout),
        ShortestDouble(c.model.hidden_dropout), ShortestDouble(c.model.attention_dropout),
        ShortestDouble(c.model.init_std), eod, eod, c.model.tie_embeddings ? "true" : "false",
        torch_dtype);
  }

  absl::StatusOr<std::vector<std::string>> ImportOverrides(
      const JsonValue& hf, const std::set<std::string>& names) const override {
    if (const JsonValue* type = hf.Find("model_type");
        type != nullptr && LlamaHfLayout().Reads(type->text)) {
      return LlamaHfLayout().ImportOverrides(hf, names);
    }
    if (const JsonValue* type = hf.Find("model_type"); type != nullptr && ReaderOf(type->text)) {
      return ReaderOf(type->text)->ImportOverrides(hf, names);
    }
    std::vector<std::string> sets;
    BRAID_RETURN_IF_ERROR(Gpt2StyleSizes(hf, &sets));
    BRAID_ASSIGN_OR_RETURN(const int64_t inner, HfIntOr(hf, "n_inner", 0));  // null: 4 x n_embd
    if (inner > 0) sets.push_back(absl::StrCat("model.ffn_hidden_size=", inner));
    BRAID_ASSIGN_OR_RETURN(
        std::string act,  // gelu_new: transformers' default for GPT-2
        HfActivationOverride(hf, "activation_function", "gelu_new", Gpt2Activations()));
    sets.push_back(act);
    sets.push_back("model.norm=layernorm");
    // An untied model must carry its output layer; a tied one may carry a copy (ignored).
    BRAID_ASSIGN_OR_RETURN(std::string tie, HfTieOverride(hf, names, "lm_head.weight"));
    sets.push_back(tie);
    return sets;
  }

  bool Ignorable(const std::string& n) const override {
    // The causal-mask buffers old GPT-2 files carry, and the tied output's copy.
    return absl::EndsWith(n, ".attn.bias") || absl::EndsWith(n, ".attn.masked_bias") ||
           n == "lm_head.weight" || LlamaHfLayout().Ignorable(n) ||
           GptNeoxHfLayout().Ignorable(n) || BloomHfLayout().Ignorable(n) ||
           GptBigCodeHfLayout().Ignorable(n) || FalconHfLayout().Ignorable(n) ||
           Qwen2MoeHfLayout().Ignorable(n);
  }
};

}  // namespace

std::vector<HfTensor> Gpt2StyleNames(const Config& c, bool conv1d) {
  std::vector<HfTensor> m = {
      {"wte.weight", {"transformer.wte.weight"}},
      {"wpe", {"transformer.wpe.weight"}},
      {"ln_f.weight", {"transformer.ln_f.weight"}},
      {"ln_f.bias", {"transformer.ln_f.bias"}},
  };
  if (!c.model.tie_embeddings) m.push_back({"lm_head.weight", {"lm_head.weight"}});
  for (int64_t i = 0; i < c.model.num_layers; ++i) {
    const std::string o = absl::StrCat("h.", i, "."), h = absl::StrCat("transformer.h.", i, ".");
    const std::pair<const char*, const char*> modules[] = {{"ln_self", "ln_1"},
                                                           {"self_attention.qkv", "attn.c_attn"},
                                                           {"self_attention.out", "attn.c_proj"},
                                                           {"ln_mlp", "ln_2"},
                                                           {"mlp.fc1", "mlp.c_fc"},
                                                           {"mlp.fc2", "mlp.c_proj"}};
    for (const auto& [ours, theirs] : modules) {
      const bool linear = std::string(theirs).find("ln_") == std::string::npos;
      m.push_back({o + ours + ".weight", {h + theirs + ".weight"}, conv1d && linear});
      m.push_back({o + ours + ".bias", {h + theirs + ".bias"}});
    }
  }
  return m;
}

absl::Status Gpt2StyleSizes(const JsonValue& hf, std::vector<std::string>* sets) {
  for (const auto& [key, ours] : {std::pair<const char*, const char*>{"n_layer", "num_layers"},
                                  {"n_embd", "hidden_size"},
                                  {"n_head", "num_attention_heads"},
                                  {"vocab_size", "vocab_size"},
                                  {"n_positions", "max_position_embeddings"}}) {
    BRAID_ASSIGN_OR_RETURN(int64_t v, HfInt(hf, key));
    sets->push_back(absl::StrCat("model.", ours, "=", v));
  }
  BRAID_ASSIGN_OR_RETURN(const double eps, HfNumberOr(hf, "layer_norm_epsilon", 1e-5));
  sets->push_back("model.layernorm_epsilon=" + ShortestDouble(eps));
  return absl::OkStatus();
}

const HfLayout& GptHfLayout() {
  static const GptHf kLayout;
  return kLayout;
}

}  // namespace braid
