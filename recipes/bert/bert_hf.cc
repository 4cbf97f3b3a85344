// BERT's Hugging Face layout: BertForPreTraining (docs/formats.md, "Hugging Face name maps"). Our
// fused QKV is query, key and value stacked along the output rows; the MLM decoder is tied to the
// word embeddings (cls.predictions.decoder.weight is written only when untied); the pooler and
// sentence-order head exist only with model.binary_head.
//
// RoBERTa's (recipe: roberta): RobertaForMaskedLM, the same encoder under "roberta." and the MLM
// head as lm_head.{dense, layer_norm, decoder, bias}. Its position ids start after the padding id
// (padding id + 1 + k for token k), so its table has pad_token_id + 1 rows before ours: written as
// zeros, and on import dropped (max_position_embeddings there counts them). The padding id is the
// tokenizer's (data.vocab_file; RoBERTa's 1 when it cannot be read).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "framework/data/token_names.h"
#include "recipes/bert/bert_family.h"

namespace braid {
namespace {

// Our activation names and BERT's hidden_act.
const HfNameTable& BertActivations() {
  static const HfNameTable kTable{{{"gelu", "gelu"}, {"gelu_tanh", "gelu_new"}, {"relu", "relu"}}};
  return kTable;
}

// RoBERTa's special ids: (bos, eos, pad) of the config's tokenizer, or RoBERTa's own (0, 2, 1).
struct RobertaIds {
  int64_t bos = 0, eos = 2, pad = 1;
};
RobertaIds RobertaIdsOf(const Config& c) {
  RobertaIds ids;
  if (c.data.vocab_file.empty()) return ids;
  auto tok = TokenizerOf(c);
  if (!tok.ok()) return ids;
  const SpecialIds& s = (*tok)->special();
  auto named = [&](const char* name) { return TokenIdByName(**tok, name); };
  const int64_t pad = FirstId({s.pad, named("<pad>")});
  if (pad < 0) return ids;
  return RobertaIds{FirstId({s.cls, named("<s>"), ids.bos}),
                    FirstId({s.sep, named("</s>"), ids.eos}), pad};
}

class BertHf : public HfLayout {
 public:
  explicit BertHf(bool roberta) : roberta_(roberta) {}
  std::string model_type() const override { return roberta_ ? "roberta" : "bert"; }
  std::string architecture(const Config&) const override {
    return roberta_ ? "RobertaForMaskedLM" : "BertForPreTraining";
  }

  std::vector<HfTensor> Names(const Config& c) const override {
    const std::string e = roberta_ ? "roberta.embeddings." : "bert.embeddings.";
    const std::string head = roberta_ ? "lm_head." : "cls.predictions.";
    const std::string transform = roberta_ ? "lm_head." : "cls.predictions.transform.";
    std::vector<HfTensor> m = {
        {"word_embeddings.weight", {e + "word_embeddings.weight"}},
        {"position_embeddings", {e + "position_embeddings.weight"}},
        {"token_type_embeddings", {e + "token_type_embeddings.weight"}},
        {"embeddings_ln.weight", {e + "LayerNorm.weight"}},
        {"embeddings_ln.bias", {e + "LayerNorm.bias"}},
        {"lm_dense.weight", {transform + "dense.weight"}},
        {"lm_dense.bias", {transform + "dense.bias"}},
        {"lm_ln.weight", {transform + (roberta_ ? "layer_norm.weight" : "LayerNorm.weight")}},
        {"lm_ln.bias", {transform + (roberta_ ? "layer_norm.bias" : "LayerNorm.bias")}},
        {"lm_bias", {head + "bias"}},
    };
    if (roberta_) m[1].leading_rows = RobertaIdsOf(c).pad + 1;
    if (!c.model.tie_embeddings) {
      m.push_back({"lm_head.weight", {head + "decoder.weight"}});
    }
    if (c.model.binary_head) {
      m.push_back({"pooler.weight", {"bert.pooler.dense.weight"}});
      m.push_back({"pooler.bias", {"bert.pooler.dense.bias"}});
      m.push_back({"binary_head.weight", {"cls.seq_relationship.weight"}});
      m.push_back({"binary_head.bias", {"cls.seq_relationship.bias"}});
    }
    for (int64_t i = 0; i < c.model.num_layers; ++i) {
      const std::string o = absl::StrCat("layers.", i, ".");
      const std::string h = absl::StrCat(roberta_ ? "roberta" : "bert", ".encoder.layer.", i, ".");
      for (const char* wb : {"weight", "bias"}) {
        m.push_back({o + "self_attention.qkv." + wb,
                     {h + "attention.self.query." + wb, h + "attention.self.key." + wb,
                      h + "attention.self.value." + wb}});
        m.push_back({o + "self_attention.out." + wb, {h + "attention.output.dense." + wb}});
        m.push_back({o + "ln_self." + wb, {h + "attention.output.LayerNorm." + wb}});
        m.push_back({o + "mlp.fc1." + wb, {h + "intermediate.dense." + wb}});
        m.push_back({o + "mlp.fc2." + wb, {h + "output.dense." + wb}});
        m.push_back({o + "ln_mlp." + wb, {h + "output.LayerNorm." + wb}});
      }
    }
    return m;
  }

  absl::StatusOr<std::string> ConfigJson(const Config& c, int64_t vocab,
                                         const std::string& torch_dtype) const override {
    BRAID_RETURN_IF_ERROR(HfHeadSizeIsHiddenOverHeads(c, roberta_ ? "RoBERTa" : "BERT"));
    const std::string* act = BertActivations().Theirs(Name(c.model.activation));
    if (act == nullptr || c.model.norm != NormType::kLayerNorm) {
      return absl::InvalidArgumentError(absl::StrCat(
          "BERT's layout has LayerNorm and an ungated MLP; this model has model.norm: ",
          Name(c.model.norm), ", model.activation: ", Name(c.model.activation), "."));
    }
    // RoBERTa: its special ids, and a position table that counts the rows up to the padding id.
    std::string ids = "  \"pad_token_id\": 0,\n";
    int64_t positions = c.model.max_position_embeddings;
    if (roberta_) {
      const RobertaIds r = RobertaIdsOf(c);
      ids = absl::StrFormat(
          "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"pad_token_id\": %d,\n", r.bos,
          r.eos, r.pad);
      positions += r.pad + 1;
    }
    return absl::StrFormat(
        "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n"
        "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n"
        "  \"num_attention_heads\": %d,\n  \"intermediate_size\": %d,\n"
        "  \"hidden_act\": \"%s\",\n  \"hidden_dropout_prob\": %s,\n"
        "  \"attention_probs_dropout_prob\": %s,\n  \"max_position_embeddings\": %d,\n"
        "  \"type_vocab_size\": %d,\n  \"initializer_range\": %s,\n  \"layer_norm_eps\": %s,\n"
        "%s  \"position_embedding_type\": \"absolute\",\n"
        "  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"%s\"\n}\n",
        architecture(c), model_type(), vocab, c.model.hidden_size, c.model.num_layers,
        c.model.num_attention_heads, FfnHiddenSize(c.model), *act,
        ShortestDouble(c.model.hidden_dropout), ShortestDouble(c.model.attention_dropout),
        positions, c.model.num_tokentypes, ShortestDouble(c.model.init_std),
        ShortestDouble(c.model.layernorm_epsilon), ids, c.model.tie_embeddings ? "true" : "false",
        torch_dtype);
  }

  absl::StatusOr<std::vector<std::string>> ImportOverrides(
      const JsonValue& hf, const std::set<std::string>& names) const override {
    std::vector<std::string> sets;
    for (const auto& [key, ours] :
         {std::pair<const char*, const char*>{"num_hidden_layers", "num_layers"},
          {"hidden_size", "hidden_size"},
          {"num_attention_heads", "num_attention_heads"},
          {"intermediate_size", "ffn_hidden_size"},
          {"vocab_size", "vocab_size"},
          {"max_position_embeddings", "max_position_embeddings"}}) {
      BRAID_ASSIGN_OR_RETURN(int64_t v, HfInt(hf, key));
      if (roberta_ && std::string(key) == "max_position_embeddings") {
        // RoBERTa's table counts the rows up to the padding id (RoBERTa's 1 when unsaid).
        BRAID_ASSIGN_OR_RETURN(const int64_t pad, HfIntOr(hf, "pad_token_id", 1, 0));
        if (v <= pad + 1) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "config.json: max_position_embeddings %d leaves no position after the padding id "
              "%d.",
              v, pad));
        }
        v -= pad + 1;
      }
      sets.push_back(absl::StrCat("model.", ours, "=", v));
    }
    BRAID_ASSIGN_OR_RETURN(const int64_t types, HfIntOr(hf, "type_vocab_size", 2));
    sets.push_back(absl::StrCat("model.num_tokentypes=", types));
    BRAID_ASSIGN_OR_RETURN(const double eps, HfNumberOr(hf, "layer_norm_eps", 1e-12));
    sets.push_back("model.layernorm_epsilon=" + ShortestDouble(eps));
    // braid's BERT has absolute positions only.
    BRAID_ASSIGN_OR_RETURN(const std::string position,
                           HfStringOr(hf, "position_embedding_type", "absolute", {"absolute"}));
    (void)position;
    BRAID_ASSIGN_OR_RETURN(std::string act,
                           HfActivationOverride(hf, "hidden_act", "gelu", BertActivations()));
    sets.push_back(act);
    sets.push_back("model.norm=layernorm");
    sets.push_back(absl::StrCat("model.binary_head=",
                                names.count("cls.seq_relationship.weight") ? "true" : "false"));
    BRAID_ASSIGN_OR_RETURN(
        std::string tie,
        HfTieOverride(hf, names,
                      roberta_ ? "lm_head.decoder.weight" : "cls.predictions.decoder.weight"));
    sets.push_back(tie);
    return sets;
  }

  bool Ignorable(const std::string& n) const override {
    // Buffers, and the decoder tied to the word embeddings (its bias is the head's bias).
    if (roberta_) {
      return n == "roberta.embeddings.position_ids" || n == "roberta.embeddings.token_type_ids" ||
             n == "lm_head.decoder.weight" || n == "lm_head.decoder.bias" ||
             n.rfind("roberta.pooler.", 0) == 0;
    }
    return n == "bert.embeddings.position_ids" || n == "cls.predictions.decoder.weight" ||
           n == "cls.predictions.decoder.bias";
  }

 private:
  bool roberta_;
};

}  // namespace

const HfLayout& BertHfLayout() {
  static const BertHf kLayout(false);
  return kLayout;
}

const HfLayout& RobertaHfLayout() {
  static const BertHf kLayout(true);
  return kLayout;
}

}  // namespace braid
