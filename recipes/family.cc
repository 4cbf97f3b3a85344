// Defaults and helpers shared by the families (see family.h).
#include "recipes/family.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"

namespace braid {

TokenizerOptions TokenizerOptionsOf(const Config& c) {
  TokenizerOptions to{Name(c.data.tokenizer), c.data.vocab_file, c.data.merges_file,
                      c.data.lowercase};
  to.extra_ids = c.data.vocab_extra_ids;
  to.added_tokens = c.data.added_tokens;
  return to;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerOf(const Config& c) {
  return MakeTokenizer(TokenizerOptionsOf(c));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> RequiredTokenizerOf(const Config& c,
                                                               const std::string& need) {
  if (c.data.vocab_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        need, ": set data.vocab_file (",
        c.data.tokenizer == TokenizerType::kWordPiece       ? "vocab.txt"
        : c.data.tokenizer == TokenizerType::kSentencePiece ? "a SentencePiece .model"
        : c.data.tokenizer == TokenizerType::kHuggingFace   ? "the model's tokenizer.json"
        : c.data.tokenizer == TokenizerType::kTiktoken      ? "a tiktoken rank file"
                                                            : "vocab.json, with data.merges_file",
        ")."));
  }
  return TokenizerOf(c);
}

absl::StatusOr<int64_t> Family::VocabSize(const Config& c) const {
  int64_t vocab = c.model.vocab_size;
  if (!c.data.vocab_file.empty()) {
    BRAID_ASSIGN_OR_RETURN(auto tok, TokenizerOf(c));
    if (vocab > 0 && vocab != tok->VocabSize()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%smodel.vocab_size: %d, but the tokenizer %s has %d entries. HINT: drop "
                          "model.vocab_size (it then comes from the tokenizer) or fix it.",
                          c.Where("model.vocab_size"), vocab, c.data.vocab_file, tok->VocabSize()));
    }
    vocab = tok->VocabSize();
  }
  if (vocab <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the %s recipe needs the vocabulary size: set data.vocab_file (the tokenizer) or "
        "model.vocab_size.",
        name()));
  }
  return vocab;
}

DataChecks DataChecksOf(const RunContext& ctx) {
  DataChecks c;
  c.vocab_size = ctx.sizes.vocab_size;
  c.valid_optional = ctx.config.train.eval_interval == 0;
  return c;
}

absl::StatusOr<DataSplits> BuildFamilySplits(const RunContext& ctx, const SplitFactory& make) {
  const Config& c = ctx.config;
  const int64_t samples[3] = {c.train.train_steps * ctx.sizes.global_batch_size,
                              c.train.eval_steps * ctx.sizes.global_batch_size, 0};
  auto world = ctx.layout.world;
  return BuildSplits(
      c.data.paths, c.data.weights, c.data.split, samples, ctx.local_rank == 0,
      [world] { return world->Barrier(); }, make, DataChecksOf(ctx));
}

namespace {

// A config.json value as it is written, for messages: "the string \"false\"", "12.5".
std::string Shown(const JsonValue& v) {
  switch (v.kind) {
    case JsonValue::Kind::kString:
      return absl::StrCat("the string ", JsonQuote(v.text));
    case JsonValue::Kind::kBool:
      return v.boolean ? "true" : "false";
    case JsonValue::Kind::kNumber:
      return v.text;
    case JsonValue::Kind::kArray:
      return "a list";
    case JsonValue::Kind::kObject:
      return "an object";
    default:
      return "null";
  }
}

const JsonValue* Present(const JsonValue& hf, const char* key) {
  const JsonValue* v = hf.Find(key);
  return v == nullptr || v->kind == JsonValue::Kind::kNull ? nullptr : v;
}

absl::Status HfTypeError(const char* key, const JsonValue& v, const std::string& want) {
  return absl::InvalidArgumentError(absl::StrFormat(
      "config.json: '%s' is %s; %s is needed. HINT: fix config.json (transformers writes it so).",
      key, Shown(v), want));
}

}  // namespace

absl::StatusOr<int64_t> HfInt(const JsonValue& hf, const char* key) {
  const JsonValue* v = Present(hf, key);
  if (v == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("config.json: '%s' is missing; a positive integer is needed.", key));
  }
  return HfIntOr(hf, key, 0, 1);
}

absl::StatusOr<int64_t> HfIntOr(const JsonValue& hf, const char* key, int64_t fallback,
                                int64_t min) {
  const JsonValue* v = Present(hf, key);
  if (v == nullptr) return fallback;
  if (!v->IsInteger() || v->AsInt() < min) {
    return HfTypeError(key, *v,
                       min == 1   ? "a positive integer"
                       : min == 0 ? "a non-negative integer"
                                  : absl::StrCat("an integer of at least ", min));
  }
  return v->AsInt();
}

absl::StatusOr<double> HfNumberOr(const JsonValue& hf, const char* key, double fallback) {
  const JsonValue* v = Present(hf, key);
  if (v == nullptr) return fallback;
  if (v->kind != JsonValue::Kind::kNumber || !std::isfinite(v->number) || v->number <= 0) {
    return HfTypeError(key, *v, "a positive number");
  }
  return v->number;
}

absl::StatusOr<bool> HfBoolOr(const JsonValue& hf, const char* key, bool fallback) {
  const JsonValue* v = Present(hf, key);
  if (v == nullptr) return fallback;
  if (v->kind != JsonValue::Kind::kBool) return HfTypeError(key, *v, "true or false");
  return v->boolean;
}

absl::StatusOr<std::string> HfStringOr(const JsonValue& hf, const char* key,
                                       const std::string& fallback,
                                       const std::vector<std::string>& choices) {
  const JsonValue* v = Present(hf, key);
  if (v == nullptr) return fallback;
  if (v->kind != JsonValue::Kind::kString) return HfTypeError(key, *v, "a string");
  if (!choices.empty() && std::find(choices.begin(), choices.end(), v->text) == choices.end()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "config.json: '%s' is %s, which braid does not have (%s): the model would compute "
        "something else.",
        key, JsonQuote(v->text), absl::StrJoin(choices, ", ")));
  }
  return v->text;
}

int64_t Family::ParameterCount(const Config& c, const DerivedSizes& s) const {
  const ModelConfig& m = c.model;
  const int64_t h = m.hidden_size, f = s.ffn_hidden_size, heads = m.num_attention_heads;
  const int64_t q = heads * s.head_size, kv = s.num_query_groups * s.head_size;
  const int64_t mlp_in = IsGated(m.activation) ? 2 * f : f;
  const int64_t norm = m.norm == NormType::kRmsNorm ? h : 2 * h;
  const int64_t bias = m.bias ? q + 2 * kv + h + mlp_in + h : (m.add_qkv_bias ? q + 2 * kv : 0);
  const int64_t layer = h * (q + 2 * kv) + q * h  // q, k, v, out
                        + h * mlp_in + f * h      // fc1, fc2
                        + bias + (m.parallel_residual && m.shared_input_norm ? 1 : 2) * norm;
  // An MoE layer's MLP instead of the dense one: the router, the experts and the shared experts
  // (no biases), the shared experts' gate.
  const int64_t fe = MoeFfnHiddenSize(m), gate = IsGated(m.activation) ? 2 : 1;
  const int64_t moe_mlp = m.num_experts * h + m.num_experts * (gate + 1) * fe * h +
                          m.moe_shared_experts * (gate + 1) * fe * h +
                          (m.moe_shared_expert_gate ? h : 0);
  const int64_t dense_mlp = h * mlp_in + f * h + (m.bias ? mlp_in + h : 0);
  const int64_t moe_layers = m.num_experts > 0 ? MoeLayerCount(m) : 0;
  const int64_t vocab = s.padded_vocab_size > 0 ? s.padded_vocab_size : s.vocab_size;
  const int64_t positions = m.position == Position::kLearned ? s.max_position_embeddings * h : 0;
  const int64_t embedding_norm = m.embed_layernorm ? norm : 0;  // BLOOM's
  return LayerCount(c) * layer + moe_layers * (moe_mlp - dense_mlp) +
         vocab * h * (m.tie_embeddings ? 1 : 2) + positions + norm + embedding_norm;
}

const std::string* HfNameTable::Theirs(const std::string& ours) const {
  for (const auto& [o, t] : pairs)
    if (o == ours) return &t;
  return nullptr;
}

const std::string* HfNameTable::Ours(const std::string& theirs) const {
  for (const auto& [o, t] : pairs)
    if (t == theirs) return &o;
  return nullptr;
}

std::string HfNameTable::TheirNames() const {
  std::string out;
  for (const auto& [o, t] : pairs) absl::StrAppend(&out, out.empty() ? "" : ", ", t);
  return out;
}

absl::StatusOr<std::string> HfActivationOverride(const JsonValue& hf, const char* key,
                                                 const std::string& fallback,
                                                 const HfNameTable& table) {
  BRAID_ASSIGN_OR_RETURN(const std::string theirs, HfStringOr(hf, key, fallback));
  const std::string* ours = table.Ours(theirs);
  if (ours == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.json: ", key, " '", theirs, "' is not one braid has (", table.TheirNames(), ")."));
  }
  return absl::StrCat("model.activation=", *ours);
}

absl::StatusOr<std::string> HfTieOverride(const JsonValue& hf, const std::set<std::string>& names,
                                          const std::string& output_name) {
  BRAID_ASSIGN_OR_RETURN(const bool tied, HfBoolOr(hf, "tie_word_embeddings", true));
  if (!tied && names.count(output_name) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.json says tie_word_embeddings: false, but the files have no ", output_name, "."));
  }
  return absl::StrCat("model.tie_embeddings=", tied ? "true" : "false");
}

absl::StatusOr<std::string> HfUntiedByDefault(const JsonValue& hf,
                                              const std::set<std::string>& names,
                                              const std::string& layout) {
  if (hf.Find("tie_word_embeddings") != nullptr) return HfTieOverride(hf, names, "lm_head.weight");
  if (names.count("lm_head.weight") == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json has no tie_word_embeddings (", layout,
                     "'s default: false), and the files have no lm_head.weight."));
  }
  return std::string("model.tie_embeddings=false");
}

absl::Status HfIntSets(const JsonValue& hf,
                       std::initializer_list<std::pair<const char*, const char*>> keys,
                       std::vector<std::string>* sets) {
  for (const auto& [key, ours] : keys) {
    BRAID_ASSIGN_OR_RETURN(int64_t v, HfInt(hf, key));
    sets->push_back(absl::StrCat("model.", ours, "=", v));
  }
  return absl::OkStatus();
}

absl::Status HfRefuseRopeScaling(const JsonValue& hf) {
  if (const JsonValue* v = hf.Find("rope_scaling");
      v != nullptr && v->kind != JsonValue::Kind::kNull) {
    return absl::InvalidArgumentError(
        "config.json: rope_scaling is set (Llama 3.1's or a long-context scaling); braid's RoPE "
        "has no scaling, and the model would compute other logits.");
  }
  return absl::OkStatus();
}

absl::Status HfHeadSizeIsHiddenOverHeads(const Config& c, const std::string& layout) {
  const ModelConfig& m = c.model;
  if (m.kv_channels == 0 || m.kv_channels * m.num_attention_heads == m.hidden_size) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s's layout has heads of hidden_size / num_attention_heads = %d / %d; this model's are "
      "model.kv_channels = %d wide. Its config.json could not say so, and every reader would "
      "split the attention otherwise than it was trained. Refusing to export.",
      layout, m.hidden_size, m.num_attention_heads, m.kv_channels));
}

absl::StatusOr<BlockConfig> BlockConfigFrom(const Config& c, const DerivedSizes& sizes) {
  BlockConfig b;
  b.hidden = c.model.hidden_size;
  b.heads = c.model.num_attention_heads;
  b.head_dim = sizes.head_size;
  b.ffn = sizes.ffn_hidden_size;
  b.activation = c.model.activation;
  b.norm = c.model.norm;
  b.eps = c.model.layernorm_epsilon;
  b.hidden_dropout = c.model.hidden_dropout;
  b.attention_dropout = c.model.attention_dropout;
  b.init_std = c.model.init_std;
  b.output_init_std = c.model.init_std;
  b.bias = c.model.bias;
  b.qkv_bias = c.model.add_qkv_bias;
  b.parallel_residual = c.model.parallel_residual;
  b.shared_norm = c.model.shared_input_norm;
  b.kv_groups = c.model.num_query_groups;
  if (c.model.position == Position::kRope) {
    b.rope_theta = c.model.rope_theta;
    if (c.model.rotary_percent < 1.0) {
      b.rope_dims = static_cast<int64_t>(static_cast<double>(b.head_dim) * c.model.rotary_percent);
    }
  }
  b.recompute = c.train.recompute;
  b.recompute_layers = c.train.recompute_num_layers;
  const ModelConfig& m = c.model;
  if (m.num_experts > 0) {
    b.moe.experts = m.num_experts;
    b.moe.top_k = m.moe_top_k;
    b.moe.ffn = MoeFfnHiddenSize(m);
    b.moe.shared = m.moe_shared_experts;
    b.moe.shared_gate = m.moe_shared_expert_gate;
    b.moe.pre_softmax = m.moe_router_pre_softmax;
    b.moe.aux_coeff = m.moe_aux_loss_coeff;
    b.moe.z_coeff = m.moe_z_loss_coeff;
    b.moe.capacity_factor = m.moe_capacity_factor;
    for (int64_t i = 0; i < m.num_layers; ++i) b.moe.layers.push_back(IsMoeLayer(m, i));
    b.moe.total_layers = MoeLayerCount(m);
  }
  return b;
}

std::vector<torch::Tensor> SplitGroupedQkv(const torch::Tensor& qkv, int64_t groups,
                                           int64_t heads) {
  const int64_t per = heads / groups, d = qkv.size(0) / (groups * (per + 2));
  std::vector<int64_t> shape = {groups, per + 2, d};
  for (int64_t k = 1; k < qkv.dim(); ++k) shape.push_back(qkv.size(k));
  torch::Tensor g = qkv.reshape(shape);
  auto rows = [&](const torch::Tensor& t) {
    std::vector<int64_t> out = {-1};
    for (int64_t k = 1; k < qkv.dim(); ++k) out.push_back(qkv.size(k));
    return t.reshape(out).contiguous();
  };
  return {rows(g.narrow(1, 0, per)), rows(g.narrow(1, per, 1)), rows(g.narrow(1, per + 1, 1))};
}

torch::Tensor FuseGroupedQkv(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             int64_t groups) {
  auto grouped = [&](const torch::Tensor& t) {
    std::vector<int64_t> shape = {groups, -1, k.size(0) / groups};
    for (int64_t a = 1; a < t.dim(); ++a) shape.push_back(t.size(a));
    return t.reshape(shape);
  };
  return torch::cat({grouped(q), grouped(k), grouped(v)}, 1).reshape_as(torch::cat({q, k, v}, 0));
}

const std::vector<std::string>& SharedKeys() {
  static const std::vector<std::string> kModelAndData = {"model.num_layers",
                                                         "model.hidden_size",
                                                         "model.num_attention_heads",
                                                         "model.ffn_hidden_size",
                                                         "model.seq_length",
                                                         "model.max_position_embeddings",
                                                         "model.vocab_size",
                                                         "model.make_vocab_size_divisible_by",
                                                         "model.hidden_dropout",
                                                         "model.attention_dropout",
                                                         "model.layernorm_epsilon",
                                                         "model.init_std",
                                                         "model.activation",
                                                         "model.norm",
                                                         "model.tie_embeddings",
                                                         "model.kv_channels",
                                                         "model.output_chunk_tokens",
                                                         "data.paths",
                                                         "data.weights",
                                                         "data.split",
                                                         "data.tokenizer",
                                                         "data.vocab_file",
                                                         "data.tokenizer_file",
                                                         "data.merges_file",
                                                         "data.lowercase",
                                                         "data.prefetch",
                                                         "data.cache_dir",
                                                         "data.added_tokens"};
  return kModelAndData;
}

bool FamilyReads(const Family& family, const std::string& key) {
  const size_t dot = key.find('.');
  const std::string section = dot == std::string::npos ? "" : key.substr(0, dot);
  if (section != "model" && section != "data") return true;  // top level and shared sections
  auto has = [&](const std::vector<std::string>& keys) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  return has(SharedKeys()) || has(family.keys());
}

std::vector<int64_t> Generator::Prompt(const Tokenizer& tok, const std::string& text) const {
  const std::vector<int32_t> ids = tok.Encode(text);
  std::vector<int64_t> out(ids.begin(), ids.end());
  if (encoder_decoder() && !out.empty() && tok.special().eod >= 0) out.push_back(tok.special().eod);
  return out;
}

}  // namespace braid
