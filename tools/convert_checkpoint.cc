// `convert_checkpoint`: TP resharding, Hugging Face export and import, weights-only release.
//
//   convert_checkpoint inspect  STEP_DIR
//   convert_checkpoint reshard  --input STEP_DIR --output STEP_DIR --tp N [--drop-optimizer]
//   convert_checkpoint release  --input STEP_DIR --output STEP_DIR [--dtype bf16|fp16|fp32]
//   convert_checkpoint export-hf --input STEP_DIR --output HF_DIR [--dtype fp32|bf16|fp16]
//                                [--max-shard-mb N]
//   convert_checkpoint import-hf --input HF_DIR --output STEP_DIR --recipe FILE [--tp N]
//                                [--set section.key=value]...
//
// Everything is read and checked before anything is written, and every output is written to a
// temporary name and renamed, so a failed conversion leaves no half-written output. Hugging Face
// layouts (FORMATS.md): GPT-2 as GPT2LMHeadModel (Conv1D weights transposed, vocabulary padding
// removed, lm_head tied to wte); BERT as BertForPreTraining (fused QKV split into
// query/key/value, the MLM decoder tied to the word embeddings, padding removed).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "framework/core/config.h"
#include "framework/core/json.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "framework/train/checkpoint.h"
#include "framework/train/safetensors.h"

namespace braid {
namespace {
namespace fs = std::filesystem;

constexpr char kUsage[] =
    "usage: convert_checkpoint inspect STEP_DIR\n"
    "       convert_checkpoint reshard --input STEP_DIR --output STEP_DIR --tp N "
    "[--drop-optimizer]\n"
    "       convert_checkpoint release --input STEP_DIR --output STEP_DIR [--dtype "
    "bf16|fp16|fp32]\n"
    "       convert_checkpoint export-hf --input STEP_DIR --output HF_DIR [--dtype "
    "fp32|bf16|fp16]\n"
    "                                    [--max-shard-mb N]\n"
    "       convert_checkpoint import-hf --input HF_DIR --output STEP_DIR --recipe FILE [--tp N]\n"
    "                                    [--set section.key=value]...\n";

struct Args {
  std::string cmd, input, output, recipe, dtype;  // dtype "": fp32 (export), bf16 (release)
  int tp = 1;
  int64_t max_shard_mb = 0;
  bool drop_optimizer = false;
  std::vector<std::string> overrides;
};

absl::StatusOr<at::ScalarType> Dtype(const std::string& s) {
  if (s == "fp32") return at::kFloat;
  if (s == "bf16") return at::kBFloat16;
  if (s == "fp16") return at::kHalf;
  return absl::InvalidArgumentError(absl::StrCat("--dtype: '", s, "' is not fp32, bf16 or fp16"));
}

// The GPT-2 name map: ours (without "model/") -> Hugging Face, and whether it is a Conv1D weight.
struct HfName {
  std::string hf;
  bool transpose;
};
std::map<std::string, HfName> GptNames(int64_t layers) {
  std::map<std::string, HfName> m = {
      {"wte.weight", {"transformer.wte.weight", false}},
      {"wpe", {"transformer.wpe.weight", false}},
      {"ln_f.weight", {"transformer.ln_f.weight", false}},
      {"ln_f.bias", {"transformer.ln_f.bias", false}},
  };
  for (int64_t i = 0; i < layers; ++i) {
    std::string o = absl::StrCat("h.", i, "."), h = absl::StrCat("transformer.h.", i, ".");
    m[o + "ln_self.weight"] = {h + "ln_1.weight", false};
    m[o + "ln_self.bias"] = {h + "ln_1.bias", false};
    m[o + "self_attention.qkv.weight"] = {h + "attn.c_attn.weight", true};
    m[o + "self_attention.qkv.bias"] = {h + "attn.c_attn.bias", false};
    m[o + "self_attention.out.weight"] = {h + "attn.c_proj.weight", true};
    m[o + "self_attention.out.bias"] = {h + "attn.c_proj.bias", false};
    m[o + "ln_mlp.weight"] = {h + "ln_2.weight", false};
    m[o + "ln_mlp.bias"] = {h + "ln_2.bias", false};
    m[o + "mlp.fc1.weight"] = {h + "mlp.c_fc.weight", true};
    m[o + "mlp.fc1.bias"] = {h + "mlp.c_fc.bias", false};
    m[o + "mlp.fc2.weight"] = {h + "mlp.c_proj.weight", true};
    m[o + "mlp.fc2.bias"] = {h + "mlp.c_proj.bias", false};
  }
  return m;
}

// The BERT name map: ours (without "model/") -> BertForPreTraining names. The fused QKV becomes
// query/key/value (split in three along the output rows); "qkv" entries are listed with the
// three names joined by '|'.
std::map<std::string, HfName> BertNames(int64_t layers) {
  std::map<std::string, HfName> m;
  const std::map<std::string, std::string> plain = {
      {"word_embeddings.weight", "bert.embeddings.word_embeddings.weight"},
      {"position_embeddings", "bert.embeddings.position_embeddings.weight"},
      {"token_type_embeddings", "bert.embeddings.token_type_embeddings.weight"},
      {"embeddings_ln.weight", "bert.embeddings.LayerNorm.weight"},
      {"embeddings_ln.bias", "bert.embeddings.LayerNorm.bias"},
      {"lm_dense.weight", "cls.predictions.transform.dense.weight"},
      {"lm_dense.bias", "cls.predictions.transform.dense.bias"},
      {"lm_ln.weight", "cls.predictions.transform.LayerNorm.weight"},
      {"lm_ln.bias", "cls.predictions.transform.LayerNorm.bias"},
      {"lm_bias", "cls.predictions.bias"},
      {"pooler.weight", "bert.pooler.dense.weight"},
      {"pooler.bias", "bert.pooler.dense.bias"},
      {"binary_head.weight", "cls.seq_relationship.weight"},
      {"binary_head.bias", "cls.seq_relationship.bias"},
  };
  for (const auto& [ours, hf] : plain) m[ours] = {hf, false};
  for (int64_t i = 0; i < layers; ++i) {
    std::string o = absl::StrCat("layers.", i, "."),
                h = absl::StrCat("bert.encoder.layer.", i, ".");
    for (const char* wb : {"weight", "bias"}) {
      m[o + "self_attention.qkv." + wb] = {
          absl::StrCat(h, "attention.self.query.", wb, "|", h, "attention.self.key.", wb, "|", h,
                       "attention.self.value.", wb),
          false};
      m[o + "self_attention.out." + wb] = {h + "attention.output.dense." + wb, false};
      m[o + "ln_self." + wb] = {h + "attention.output.LayerNorm." + wb, false};
      m[o + "mlp.fc1." + wb] = {h + "intermediate.dense." + wb, false};
      m[o + "mlp.fc2." + wb] = {h + "output.dense." + wb, false};
      m[o + "ln_mlp." + wb] = {h + "output.LayerNorm." + wb, false};
    }
  }
  return m;
}

// Writes `files` (name -> bytes) into `dir` atomically: a temporary sibling, then rename.
absl::Status PublishDir(const fs::path& dir,
                        const std::function<absl::Status(const fs::path&)>& fill) {
  fs::path tmp = dir.parent_path() / (".tmp_" + dir.filename().string());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat(tmp.string(), ": cannot create: ", ec.message()));
  absl::Status s = fill(tmp);
  if (!s.ok()) {
    fs::remove_all(tmp, ec);
    return s;
  }
  fs::remove_all(dir, ec);
  fs::rename(tmp, dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename to ", dir.string(), ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<Config> CheckpointConfig(const FullCheckpoint& c, const std::string& where) {
  absl::StatusOr<Config> config = LoadConfigFromString(c.config_yaml, where + "/manifest config");
  if (!config.ok()) {
    return absl::DataLossError(absl::StrCat(where,
                                            ": the config stored in the manifest does not "
                                            "parse: ",
                                            config.status().message()));
  }
  return config;
}

// Pads (or trims) vocabulary-split tensors to the padding a TP size needs.
absl::Status FitVocabulary(FullCheckpoint& c, const Config& config, int tp) {
  if (c.vocab_size <= 0) return absl::OkStatus();
  int64_t rows = PaddedVocabSize(c.vocab_size, config.model.make_vocab_size_divisible_by, tp);
  for (auto& [name, t] : c.tensors) {
    if (!c.layouts[name].vocab) continue;
    if (t.size(0) > rows) {
      t = t.narrow(0, 0, rows).clone();
    } else if (t.size(0) < rows) {
      std::vector<int64_t> pad = t.sizes().vec();
      pad[0] = rows - t.size(0);
      t = torch::cat({t, torch::zeros(pad, t.options())});
    }
  }
  return absl::OkStatus();
}

absl::Status Inspect(const Args& a) {
  BRAID_ASSIGN_OR_RETURN(FullCheckpoint c, ReadCheckpoint(a.input));
  int64_t params = 0;
  for (const auto& [n, t] : c.tensors)
    if (n.rfind("model/", 0) == 0) params += t.numel();
  std::printf(
      "%s: recipe %s, step %ld, %ld samples consumed, saved at TP %d x DP %d, vocabulary "
      "%ld, %zu tensors (%ld model parameters), optimizer state %s\n",
      a.input.c_str(), c.recipe.c_str(), (long)c.state.step, (long)c.state.consumed_samples,
      c.tp_size, c.dp_size, (long)c.vocab_size, c.tensors.size(), (long)params,
      c.tensors.count("optim/exp_avg/wpe") || c.optimizer_step > 0 ? "yes" : "no");
  return absl::OkStatus();
}

absl::Status Reshard(const Args& a, bool release) {
  BRAID_ASSIGN_OR_RETURN(FullCheckpoint c, ReadCheckpoint(a.input));
  BRAID_ASSIGN_OR_RETURN(Config config, CheckpointConfig(c, a.input));
  int tp = release ? 1 : a.tp;
  if (a.drop_optimizer || release) {
    for (auto it = c.tensors.begin(); it != c.tensors.end();)
      it = it->first.rfind("optim/", 0) == 0 ? c.tensors.erase(it) : std::next(it);
    c.optimizer_step = 0;
    c.rng.clear();
  }
  if (release) {
    BRAID_ASSIGN_OR_RETURN(at::ScalarType dt, Dtype(a.dtype.empty() ? "bf16" : a.dtype));
    for (auto& [n, t] : c.tensors) t = t.to(dt);
  }
  // Heads and FFN must split: checked against the stored config.
  if (config.model.num_attention_heads % tp != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--tp %d does not divide the %d attention heads of this model.", tp,
                        config.model.num_attention_heads));
  }
  BRAID_RETURN_IF_ERROR(FitVocabulary(c, config, tp));
  BRAID_RETURN_IF_ERROR(WriteCheckpoint(a.output, c, tp));
  std::printf("wrote %s: TP %d%s\n", a.output.c_str(), tp,
              release ? ", weights only" : (a.drop_optimizer ? ", optimizer dropped" : ""));
  return absl::OkStatus();
}

absl::Status ExportHf(const Args& a) {
  BRAID_ASSIGN_OR_RETURN(FullCheckpoint c, ReadCheckpoint(a.input));
  BRAID_ASSIGN_OR_RETURN(Config config, CheckpointConfig(c, a.input));
  if (c.recipe != "gpt" && c.recipe != "bert") {
    return absl::UnimplementedError(
        absl::StrCat("export-hf knows GPT and BERT checkpoints; this "
                     "one is '",
                     c.recipe, "'."));
  }
  BRAID_ASSIGN_OR_RETURN(at::ScalarType dt, Dtype(a.dtype.empty() ? "fp32" : a.dtype));
  const int64_t layers = config.model.num_layers;
  const int64_t e = config.model.hidden_size;
  const int64_t ffn = config.model.ffn_hidden_size > 0 ? config.model.ffn_hidden_size : 4 * e;
  std::map<std::string, torch::Tensor> out;
  std::vector<std::string> unknown;
  size_t expected = 0;
  std::string cfg;
  const char* dtype_name =
      dt == at::kFloat ? "float32" : (dt == at::kBFloat16 ? "bfloat16" : "float16");
  std::map<std::string, HfName> names = c.recipe == "gpt" ? GptNames(layers) : BertNames(layers);
  if (c.recipe == "bert" && !config.model.binary_head) {
    for (const char* k : {"pooler.weight", "pooler.bias", "binary_head.weight", "binary_head.bias"})
      names.erase(k);
  }
  for (const auto& [ours, hf] : names) expected += std::count(hf.hf.begin(), hf.hf.end(), '|') + 1;
  for (const auto& [name, t] : c.tensors) {
    if (name.rfind("model/", 0) != 0) continue;
    std::string ours = name.substr(6);
    auto it = names.find(ours);
    if (it == names.end()) {
      unknown.push_back(ours);
      continue;
    }
    torch::Tensor v = t;
    if (c.layouts[name].vocab && c.vocab_size > 0) v = v.narrow(0, 0, c.vocab_size);
    if (it->second.transpose) v = v.t();  // GPT-2's Conv1D stores [in, out]
    std::vector<std::string> parts = absl::StrSplit(it->second.hf, '|');  // fused QKV -> q, k, v
    std::vector<torch::Tensor> chunks = parts.size() > 1
                                            ? v.chunk(static_cast<int64_t>(parts.size()), 0)
                                            : std::vector<torch::Tensor>{v};
    for (size_t k = 0; k < parts.size(); ++k) out[parts[k]] = chunks[k].contiguous().to(dt);
  }
  if (c.recipe == "gpt") {
    const int64_t positions =
        out.count("transformer.wpe.weight") ? out["transformer.wpe.weight"].size(0) : 0;
    int64_t eod = c.vocab_size - 1;  // GPT-2: <|endoftext|> is the last id
    cfg = absl::StrFormat(
        "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n"
        "  \"vocab_size\": %d,\n  \"n_positions\": %d,\n  \"n_ctx\": %d,\n  \"n_embd\": %d,\n"
        "  \"n_layer\": %d,\n  \"n_head\": %d,\n  \"n_inner\": %s,\n"
        "  \"activation_function\": \"%s\",\n  \"layer_norm_epsilon\": %s,\n"
        "  \"resid_pdrop\": %s,\n  \"embd_pdrop\": %s,\n  \"attn_pdrop\": %s,\n"
        "  \"initializer_range\": %s,\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n"
        "  \"tie_word_embeddings\": true,\n  \"torch_dtype\": \"%s\"\n}\n",
        c.vocab_size, positions, positions, e, layers, config.model.num_attention_heads,
        ffn == 4 * e ? std::string("null") : absl::StrCat(ffn),
        config.model.activation == "gelu_tanh" ? "gelu_new" : config.model.activation,
        ShortestDouble(config.model.layernorm_epsilon), ShortestDouble(config.model.hidden_dropout),
        ShortestDouble(config.model.hidden_dropout), ShortestDouble(config.model.attention_dropout),
        ShortestDouble(config.model.init_std), eod, eod, dtype_name);
  } else {
    const int64_t positions = out.count("bert.embeddings.position_embeddings.weight")
                                  ? out["bert.embeddings.position_embeddings.weight"].size(0)
                                  : 0;
    cfg = absl::StrFormat(
        "{\n  \"architectures\": [\"BertForPreTraining\"],\n  \"model_type\": \"bert\",\n"
        "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"num_hidden_layers\": %d,\n"
        "  \"num_attention_heads\": %d,\n  \"intermediate_size\": %d,\n"
        "  \"hidden_act\": \"%s\",\n  \"hidden_dropout_prob\": %s,\n"
        "  \"attention_probs_dropout_prob\": %s,\n  \"max_position_embeddings\": %d,\n"
        "  \"type_vocab_size\": %d,\n  \"initializer_range\": %s,\n  \"layer_norm_eps\": %s,\n"
        "  \"pad_token_id\": 0,\n  \"position_embedding_type\": \"absolute\",\n"
        "  \"tie_word_embeddings\": true,\n  \"torch_dtype\": \"%s\"\n}\n",
        c.vocab_size, e, layers, config.model.num_attention_heads, ffn,
        config.model.activation == "gelu_tanh" ? "gelu_new" : config.model.activation,
        ShortestDouble(config.model.hidden_dropout), ShortestDouble(config.model.attention_dropout),
        positions, config.model.num_tokentypes, ShortestDouble(config.model.init_std),
        ShortestDouble(config.model.layernorm_epsilon), dtype_name);
  }
  if (!unknown.empty() || out.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        a.input, ": not the ", c.recipe, " layout this tool knows: ",
        unknown.empty() ? "" : absl::StrCat("unexpected ", absl::StrJoin(unknown, ", "), "; "),
        out.size(), " of ", expected, " expected tensors found."));
  }
  return PublishDir(a.output, [&](const fs::path& dir) -> absl::Status {
    std::ofstream(dir / "config.json") << cfg;
    int64_t limit = a.max_shard_mb > 0 ? a.max_shard_mb << 20 : INT64_MAX;
    std::vector<std::map<std::string, torch::Tensor>> shards(1);
    int64_t filled = 0, total = 0;
    for (const auto& [n, t] : out) {
      int64_t b = t.numel() * t.element_size();
      if (filled > 0 && filled + b > limit) {
        shards.emplace_back();
        filled = 0;
      }
      shards.back()[n] = t;
      filled += b;
      total += b;
    }
    if (shards.size() == 1) {
      BRAID_RETURN_IF_ERROR(
          WriteSafetensors((dir / "model.safetensors").string(), shards[0], {{"format", "pt"}}));
    } else {
      std::string index =
          absl::StrFormat("{\n  \"metadata\": {\"total_size\": %d},\n  \"weight_map\": {", total);
      bool first = true;
      for (size_t k = 0; k < shards.size(); ++k) {
        std::string file = absl::StrFormat("model-%05d-of-%05d.safetensors", k + 1, shards.size());
        BRAID_RETURN_IF_ERROR(
            WriteSafetensors((dir / file).string(), shards[k], {{"format", "pt"}}));
        for (const auto& [n, t] : shards[k]) {
          absl::StrAppend(&index, first ? "\n" : ",\n", "    ", JsonQuote(n), ": ",
                          JsonQuote(file));
          first = false;
        }
      }
      index += "\n  }\n}\n";
      std::ofstream(dir / "model.safetensors.index.json") << index;
    }
    std::printf("wrote %s: %s, %zu tensors in %zu file(s), %s\n", a.output.c_str(),
                c.recipe == "gpt" ? "GPT2LMHeadModel" : "BertForPreTraining", out.size(),
                shards.size(), a.dtype.empty() ? "fp32" : a.dtype.c_str());
    return absl::OkStatus();
  });
}

absl::StatusOr<std::map<std::string, torch::Tensor>> ReadHfWeights(const fs::path& dir) {
  std::map<std::string, torch::Tensor> all;
  std::vector<fs::path> files;
  if (fs::exists(dir / "model.safetensors.index.json")) {
    std::ifstream in(dir / "model.safetensors.index.json");
    std::stringstream ss;
    ss << in.rdbuf();
    BRAID_ASSIGN_OR_RETURN(JsonValue idx, ParseJson(ss.str()));
    const JsonValue* map = idx.Find("weight_map");
    if (map == nullptr)
      return absl::DataLossError(
          absl::StrCat(dir.string(), "/model.safetensors.index.json: no weight_map"));
    std::set<std::string> names;
    for (const auto& [k, v] : map->members) names.insert(v.text);
    for (const auto& n : names) files.push_back(dir / n);
  } else {
    files.push_back(dir / "model.safetensors");
  }
  for (const fs::path& f : files) {
    BRAID_ASSIGN_OR_RETURN(SafetensorsFile sf, ReadSafetensors(f.string()));
    for (auto& [k, v] : sf.tensors) all[k] = v;
  }
  return all;
}

// An integer field of a Hugging Face config.json (0 when absent or null).
int64_t HfNum(const JsonValue& hf, const char* key) {
  const JsonValue* v = hf.Find(key);
  return v != nullptr && v->kind == JsonValue::Kind::kNumber ? static_cast<int64_t>(v->number) : 0;
}

absl::Status ImportGpt(const Args& a, const JsonValue& hf) {
  fs::path in(a.input);
  auto num = [&](const char* k) { return HfNum(hf, k); };
  std::vector<std::string> sets = a.overrides;
  sets.push_back(absl::StrCat("model.num_layers=", num("n_layer")));
  sets.push_back(absl::StrCat("model.hidden_size=", num("n_embd")));
  sets.push_back(absl::StrCat("model.num_attention_heads=", num("n_head")));
  sets.push_back(absl::StrCat("model.vocab_size=", num("vocab_size")));
  if (num("n_inner") > 0) sets.push_back(absl::StrCat("model.ffn_hidden_size=", num("n_inner")));
  sets.push_back(absl::StrCat("model.max_position_embeddings=", num("n_positions")));
  if (const JsonValue* eps = hf.Find("layer_norm_epsilon"))
    sets.push_back("model.layernorm_epsilon=" + eps->text);
  sets.push_back(absl::StrCat("parallel.tensor_parallel_size=", a.tp));
  BRAID_ASSIGN_OR_RETURN(Config config, LoadConfig(a.recipe, sets));
  if (config.model.seq_length > num("n_positions")) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "model.seq_length %d exceeds the %d positions of the imported model. HINT: --set "
        "model.seq_length=%d",
        config.model.seq_length, num("n_positions"), num("n_positions")));
  }
  BRAID_ASSIGN_OR_RETURN(auto weights, ReadHfWeights(in));
  std::map<std::string, HfName> names = GptNames(config.model.num_layers);
  FullCheckpoint c;
  c.recipe = "gpt";
  c.config_yaml = ConfigToYaml(config);
  c.vocab_size = config.model.vocab_size;
  std::set<std::string> used;
  std::vector<std::string> missing, bad_shape;
  const int64_t e = config.model.hidden_size;
  const int64_t ffn = config.model.ffn_hidden_size > 0 ? config.model.ffn_hidden_size : 4 * e;
  const int64_t padded =
      PaddedVocabSize(c.vocab_size, config.model.make_vocab_size_divisible_by, a.tp);
  for (const auto& [ours, h] : names) {
    auto it = weights.find(h.hf);
    if (it == weights.end()) it = weights.find(h.hf.substr(std::string("transformer.").size()));
    if (it == weights.end()) {
      missing.push_back(h.hf);
      continue;
    }
    used.insert(it->first);
    torch::Tensor t = it->second.to(at::kFloat);
    if (h.transpose) t = t.t().contiguous();
    TpParam layout;
    if (absl::EndsWith(ours, "qkv.weight") || absl::EndsWith(ours, "qkv.bias"))
      layout = {0, 3};
    else if (absl::EndsWith(ours, "fc1.weight") || absl::EndsWith(ours, "fc1.bias"))
      layout = {0, 1};
    else if (absl::EndsWith(ours, "out.weight") || absl::EndsWith(ours, "fc2.weight"))
      layout = {1, 1};
    else if (ours == "wte.weight") {
      layout = {0, 1, true};
      if (t.dim() != 2 || t.size(0) != c.vocab_size || t.size(1) != e) {
        bad_shape.push_back(absl::StrCat(h.hf, " ", c10::str(t.sizes())));
        continue;
      }
      t = torch::cat({t, torch::zeros({padded - c.vocab_size, e})});
    }
    std::vector<int64_t> want;
    if (ours == "wpe")
      want = {config.model.max_position_embeddings, e};
    else if (absl::EndsWith(ours, "qkv.weight"))
      want = {3 * e, e};
    else if (absl::EndsWith(ours, "qkv.bias"))
      want = {3 * e};
    else if (absl::EndsWith(ours, "out.weight"))
      want = {e, e};
    else if (absl::EndsWith(ours, "fc1.weight"))
      want = {ffn, e};
    else if (absl::EndsWith(ours, "fc1.bias"))
      want = {ffn};
    else if (absl::EndsWith(ours, "fc2.weight"))
      want = {e, ffn};
    else if (ours != "wte.weight")
      want = {e};
    if (!want.empty() && t.sizes().vec() != want) {
      bad_shape.push_back(absl::StrFormat("%s %s (expected %s)", h.hf, c10::str(t.sizes()),
                                          c10::str(c10::IntArrayRef(want))));
      continue;
    }
    c.tensors["model/" + ours] = t;
    c.layouts["model/" + ours] = layout;
  }
  std::vector<std::string> unknown;
  for (const auto& [k, v] : weights) {
    if (used.count(k)) continue;
    // Buffers some GPT-2 files carry (causal masks) and the tied output.
    if (absl::EndsWith(k, ".attn.bias") || absl::EndsWith(k, ".attn.masked_bias")) continue;
    if (k == "lm_head.weight") continue;
    unknown.push_back(k);
  }
  if (!missing.empty() || !bad_shape.empty() || !unknown.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        a.input, ": cannot import as GPT-2.",
        missing.empty() ? "" : absl::StrCat(" Missing: ", absl::StrJoin(missing, ", "), "."),
        bad_shape.empty() ? ""
                          : absl::StrCat(" Wrong shape: ", absl::StrJoin(bad_shape, "; "), "."),
        unknown.empty() ? "" : absl::StrCat(" Unknown: ", absl::StrJoin(unknown, ", "), ".")));
  }
  BRAID_RETURN_IF_ERROR(WriteCheckpoint(a.output, c, a.tp));
  std::printf(
      "wrote %s: GPT at TP %d, %zu tensors, step 0 (weights only; training starts fresh "
      "from them with --resume)\n",
      a.output.c_str(), a.tp, c.tensors.size());
  return absl::OkStatus();
}

absl::Status ImportBert(const Args& a, const JsonValue& hf) {
  fs::path in(a.input);
  auto num = [&](const char* k) { return HfNum(hf, k); };
  std::vector<std::string> sets = a.overrides;
  sets.push_back(absl::StrCat("model.num_layers=", num("num_hidden_layers")));
  sets.push_back(absl::StrCat("model.hidden_size=", num("hidden_size")));
  sets.push_back(absl::StrCat("model.num_attention_heads=", num("num_attention_heads")));
  sets.push_back(absl::StrCat("model.ffn_hidden_size=", num("intermediate_size")));
  sets.push_back(absl::StrCat("model.vocab_size=", num("vocab_size")));
  sets.push_back(absl::StrCat("model.max_position_embeddings=", num("max_position_embeddings")));
  if (num("type_vocab_size") > 0)
    sets.push_back(absl::StrCat("model.num_tokentypes=", num("type_vocab_size")));
  if (const JsonValue* eps = hf.Find("layer_norm_eps"))
    sets.push_back("model.layernorm_epsilon=" + eps->text);
  sets.push_back(absl::StrCat("parallel.tensor_parallel_size=", a.tp));
  BRAID_ASSIGN_OR_RETURN(auto weights, ReadHfWeights(in));
  sets.push_back(absl::StrCat("model.binary_head=",
                              weights.count("cls.seq_relationship.weight") ? "true" : "false"));
  BRAID_ASSIGN_OR_RETURN(Config config, LoadConfig(a.recipe, sets));
  std::map<std::string, HfName> names = BertNames(config.model.num_layers);
  if (!config.model.binary_head) {
    for (const char* k : {"pooler.weight", "pooler.bias", "binary_head.weight", "binary_head.bias"})
      names.erase(k);
  }
  FullCheckpoint c;
  c.recipe = "bert";
  c.config_yaml = ConfigToYaml(config);
  c.vocab_size = config.model.vocab_size;
  const int64_t padded =
      PaddedVocabSize(c.vocab_size, config.model.make_vocab_size_divisible_by, a.tp);
  std::set<std::string> used;
  std::vector<std::string> missing;
  for (const auto& [ours, hf_names] : names) {
    std::vector<torch::Tensor> parts;
    for (absl::string_view n : absl::StrSplit(hf_names.hf, '|')) {
      auto it = weights.find(std::string(n));
      if (it == weights.end()) {
        missing.push_back(std::string(n));
        continue;
      }
      used.insert(it->first);
      parts.push_back(it->second.to(at::kFloat));
    }
    if (parts.empty() || missing.size() > 0) continue;
    torch::Tensor t = parts.size() > 1 ? torch::cat(parts, 0) : parts[0];
    TpParam layout;
    if (absl::StrContains(ours, "qkv"))
      layout = {0, 3};
    else if (absl::StrContains(ours, "mlp.fc1"))
      layout = {0, 1};
    else if (absl::EndsWith(ours, "out.weight") || absl::EndsWith(ours, "fc2.weight"))
      layout = {1, 1};
    else if (ours == "word_embeddings.weight" || ours == "lm_bias")
      layout = {0, 1, true};
    if (layout.vocab) {
      std::vector<int64_t> pad = t.sizes().vec();
      pad[0] = padded - t.size(0);
      t = torch::cat({t, torch::zeros(pad)});
    }
    c.tensors["model/" + ours] = t.contiguous();
    c.layouts["model/" + ours] = layout;
  }
  std::vector<std::string> unknown;
  for (const auto& [k, v] : weights) {
    if (used.count(k)) continue;
    if (k == "bert.embeddings.position_ids" || k == "cls.predictions.decoder.weight" ||
        k == "cls.predictions.decoder.bias") {
      continue;  // a buffer, and the tied decoder
    }
    unknown.push_back(k);
  }
  if (!missing.empty() || !unknown.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        a.input, ": cannot import as BERT.",
        missing.empty() ? "" : absl::StrCat(" Missing: ", absl::StrJoin(missing, ", "), "."),
        unknown.empty() ? "" : absl::StrCat(" Unknown: ", absl::StrJoin(unknown, ", "), ".")));
  }
  BRAID_RETURN_IF_ERROR(WriteCheckpoint(a.output, c, a.tp));
  std::printf("wrote %s: BERT at TP %d, %zu tensors, step 0\n", a.output.c_str(), a.tp,
              c.tensors.size());
  return absl::OkStatus();
}

absl::Status ImportHf(const Args& a) {
  fs::path in(a.input);
  std::ifstream cf(in / "config.json");
  if (!cf) return absl::NotFoundError(absl::StrCat(a.input, ": no config.json"));
  std::stringstream ss;
  ss << cf.rdbuf();
  BRAID_ASSIGN_OR_RETURN(JsonValue hf, ParseJson(ss.str()));
  const JsonValue* type = hf.Find("model_type");
  if (type != nullptr && type->text == "gpt2") return ImportGpt(a, hf);
  if (type != nullptr && type->text == "bert") return ImportBert(a, hf);
  return absl::UnimplementedError(absl::StrCat(a.input, ": model_type '", type ? type->text : "?",
                                               "': import-hf knows gpt2 and bert."));
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  Args a;
  a.cmd = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string f = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    bool ok = true;
    if (f == "--input" && v)
      a.input = argv[++i];
    else if (f == "--output" && v)
      a.output = argv[++i];
    else if (f == "--recipe" && v)
      a.recipe = argv[++i];
    else if (f == "--dtype" && v)
      a.dtype = argv[++i];
    else if (f == "--set" && v)
      a.overrides.push_back(argv[++i]);
    else if (f == "--tp" && v)
      ok = absl::SimpleAtoi(argv[++i], &a.tp) && a.tp > 0;
    else if (f == "--max-shard-mb" && v)
      ok = absl::SimpleAtoi(argv[++i], &a.max_shard_mb);
    else if (f == "--drop-optimizer")
      a.drop_optimizer = true;
    else if (a.cmd == "inspect" && a.input.empty() && f.rfind("--", 0) != 0)
      a.input = f;
    else
      ok = false;
    if (!ok) {
      std::fprintf(stderr, "convert_checkpoint: bad argument '%s'\n%s", f.c_str(), kUsage);
      return 2;
    }
  }
  absl::Status s;
  bool needs_output = a.cmd != "inspect";
  if (a.input.empty() || (needs_output && a.output.empty())) {
    s = absl::InvalidArgumentError("--input and --output are required");
  } else if (a.cmd == "inspect") {
    s = Inspect(a);
  } else if (a.cmd == "reshard") {
    s = Reshard(a, false);
  } else if (a.cmd == "release") {
    s = Reshard(a, true);
  } else if (a.cmd == "export-hf") {
    s = ExportHf(a);
  } else if (a.cmd == "import-hf") {
    s = a.recipe.empty() ? absl::InvalidArgumentError("import-hf needs --recipe (the base config)")
                         : ImportHf(a);
  } else {
    s = absl::InvalidArgumentError(absl::StrCat("unknown command '", a.cmd, "'"));
  }
  if (!s.ok()) {
    std::fprintf(stderr, "convert_checkpoint: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace braid

int main(int argc, char** argv) { return braid::Main(argc, argv); }
