// `convert_checkpoint`: TP resharding, Hugging Face export and import, weights-only release.
//
//   convert_checkpoint inspect  STEP_DIR
//   convert_checkpoint reshard  --input STEP_DIR --output STEP_DIR --tp N [--pp N] [--ep N]
//                               [--drop-optimizer]
//   convert_checkpoint release  --input STEP_DIR --output STEP_DIR [--dtype bf16|fp16|fp32]
//   convert_checkpoint export-hf --input STEP_DIR --output HF_DIR [--dtype fp32|bf16|fp16]
//                                [--max-shard-mb N]
//   convert_checkpoint import-hf --input HF_DIR --output STEP_DIR --recipe FILE [--tp N]
//                                [--set section.key=value]...
//
// The family comes from the checkpoint (its `recipe:`) or, for import, from config.json's
// model_type; the name map and config.json from the family's Hugging Face layout
// (recipes/<family>/*_hf.cc); every tensor's TP layout and shape from the model itself, built on a
// communicator of one (never guessed from names). Everything is read and checked before anything
// is written; the output is written to a temporary sibling and renamed into place; an output that
// is the input (or overlaps it) is refused, and so is a non-empty output directory unless --force.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/config.h"
#include "framework/core/files.h"
#include "framework/core/flags.h"
#include "framework/core/json.h"
#include "framework/core/status.h"
#include "framework/core/system.h"
#include "framework/dist/communicator.h"
#include "framework/train/checkpoint.h"
#include "framework/train/dtype.h"
#include "framework/train/model_io.h"
#include "framework/train/safetensors.h"
#include "recipes/registry.h"

ABSL_FLAG(std::string, input, "",
          "the checkpoint step directory (or Hugging Face directory) to read");
ABSL_FLAG(std::string, output, "", "the directory to write (must not exist or be empty)");
ABSL_FLAG(std::string, load_dir, "", "Megatron's name for --input");
ABSL_FLAG(std::string, save_dir, "", "Megatron's name for --output");
ABSL_FLAG(int32_t, tp, 0, "tensor-parallel size of the output (reshard: required; import-hf: 1)");
ABSL_FLAG(int32_t, target_tensor_parallel_size, 0, "Megatron's name for --tp");
ABSL_FLAG(int32_t, pp, 0,
          "reshard: pipeline-parallel size of the output (default 1: one stage; each stage's "
          "tensors in its own files, as a run at that size saves them)");
ABSL_FLAG(int32_t, target_pipeline_parallel_size, 0, "Megatron's name for --pp");
ABSL_FLAG(int32_t, ep, 0,
          "reshard: the expert-parallel size the output is for (checked against the experts; the "
          "files do not depend on it)");
ABSL_FLAG(int32_t, target_expert_parallel_size, 0, "Megatron's name for --ep");
ABSL_FLAG(std::string, dtype, "", "fp32 | bf16 | fp16 (export-hf: fp32; release: bf16)");
ABSL_FLAG(int64_t, max_shard_mb, 0, "export-hf: split the weights into files of at most N MB");
ABSL_FLAG(bool, drop_optimizer, false, "reshard: leave the AdamW state out");
ABSL_FLAG(std::string, recipe, "",
          "import-hf: the base recipe YAML the imported model trains with");
ABSL_FLAG(std::vector<std::string>, set, {}, "import-hf: section.key=value override (repeatable)");
ABSL_FLAG(bool, force, false, "replace a non-empty --output directory");

namespace braid {
namespace {
namespace fs = std::filesystem;

constexpr char kUsage[] =
    "usage: convert_checkpoint inspect STEP_DIR\n"
    "       convert_checkpoint reshard --input STEP_DIR --output DIR --tp N [--pp N] [--ep N]\n"
    "                                  [--drop-optimizer]\n"
    "       convert_checkpoint release --input STEP_DIR --output DIR [--dtype bf16|fp16|fp32]\n"
    "       convert_checkpoint export-hf --input STEP_DIR --output HF_DIR [--dtype "
    "fp32|bf16|fp16]\n"
    "                                    [--max-shard-mb N]\n"
    "       convert_checkpoint import-hf --input HF_DIR --output DIR --recipe FILE [--tp N]\n"
    "                                    [--set section.key=value]...\n"
    "Outputs are written atomically; --output must be new or empty (or --force to replace it),\n"
    "and never the input.\n";

struct Args {
  std::string cmd, input, output, recipe, dtype;
  int tp = 0, pp = 0, ep = 0;
  int64_t max_shard_mb = 0;
  bool drop_optimizer = false, force = false;
  std::vector<std::string> overrides;
};

// The model a config describes, built alone (a communicator of one) with the vocabulary padded
// for `tp`: every parameter's TP layout and full shape, from the model itself.
struct ModelShape {
  std::map<std::string, TpParam> layouts;
  std::map<std::string, std::vector<int64_t>> shapes;
  DerivedSizes sizes;
  Config config;  // resolved
};

absl::StatusOr<ModelShape> DescribeModel(const Family& family, Config config, int64_t vocab,
                                         int tp) {
  // The vocabulary is known (the checkpoint's, or config.json's): no tokenizer file is needed.
  const DataConfig data = config.data;
  config.data.vocab_file.clear();
  config.model.vocab_size = vocab;
  config.parallel.tensor_parallel_size = tp;
  DropPipeline(&config);
  BRAID_ASSIGN_OR_RETURN(ResolvedRun run, ResolveRun(config, tp));
  run.config.data = data;
  // The model is built whole in this process: refuse one that cannot fit before allocating it.
  const double params = static_cast<double>(family.ParameterCount(run.config, run.sizes));
  const double machine = MachineMemoryBytes();
  if (machine > 0 && params * 4.0 > 0.8 * machine) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the model this config describes has %.3g parameters (%.1f GB in fp32; hidden size %d, "
        "%d layers), more than this machine's %.1f GB hold. HINT: check the sizes in the config "
        "(or config.json); converting a model this large needs a machine with more memory.",
        params, params * 4.0 / 1e9, run.config.model.hidden_size, run.config.model.num_layers,
        machine / 1e9));
  }
  BRAID_ASSIGN_OR_RETURN(
      std::shared_ptr<TpModule> model,
      family.BuildModel(TpEnv{LocalCommunicator("tp"), 1}, run.config, run.sizes));
  ModelShape m;
  m.layouts = CollectTpParams(*model);
  for (const auto& p : model->named_parameters()) m.shapes[p.key()] = p.value().sizes().vec();
  m.sizes = run.sizes;
  m.config = run.config;
  return m;
}

struct Opened {
  FullCheckpoint ckpt;
  Config config;
  const Family* family = nullptr;
};

absl::StatusOr<Opened> OpenCheckpoint(const std::string& dir) {
  Opened o;
  BRAID_ASSIGN_OR_RETURN(o.ckpt, ReadCheckpoint(dir));
  absl::StatusOr<Config> config =
      LoadConfigFromString(o.ckpt.config_yaml, dir + "/manifest config");
  if (!config.ok()) {
    return absl::DataLossError(absl::StrCat(
        dir, ": the config stored in the manifest does not parse: ", config.status().message()));
  }
  o.config = *std::move(config);
  BRAID_ASSIGN_OR_RETURN(o.family, FindFamily(o.config));
  return o;
}

// Puts every tensor of `c` into the layout of `shape`: the TP layout from the model, the
// vocabulary re-padded; an error listing what does not belong to the model or has another shape.
absl::Status FitToModel(FullCheckpoint& c, const ModelShape& shape, const std::string& where) {
  std::vector<std::string> problems;
  std::set<std::string> seen;
  for (auto& [name, t] : c.tensors) {
    const std::string param = ParamOfKey(name);
    auto it = shape.layouts.find(param);
    if (it == shape.layouts.end()) {
      problems.push_back(absl::StrCat(name, " is not a parameter of this model"));
      continue;
    }
    if (IsModelKey(name)) seen.insert(param);
    const std::vector<int64_t>& want = shape.shapes.at(param);
    if (it->second.vocab && t.dim() == static_cast<int64_t>(want.size())) {
      t = RepadVocab(t, want[0]);
    }
    if (t.sizes().vec() != want) {
      problems.push_back(absl::StrFormat("%s is %s, the model's is %s", name, c10::str(t.sizes()),
                                         c10::str(c10::IntArrayRef(want))));
      continue;
    }
    c.layouts[name] = it->second;
  }
  for (const auto& [param, l] : shape.layouts)
    if (!seen.count(param)) problems.push_back(absl::StrCat(ModelKey(param), " is missing"));
  if (problems.empty()) return absl::OkStatus();
  if (problems.size() > 8) {
    const size_t n = problems.size();
    problems.resize(8);
    problems.push_back(absl::StrCat("and ", n - 8, " more"));
  }
  return absl::InvalidArgumentError(absl::StrCat(where,
                                                 ": does not fit the model its config "
                                                 "describes: ",
                                                 absl::StrJoin(problems, "; "), "."));
}

absl::Status Inspect(const Args& a) {
  BRAID_ASSIGN_OR_RETURN(FullCheckpoint c, ReadCheckpoint(a.input));
  int64_t params = 0;
  for (const auto& [n, t] : c.tensors)
    if (IsModelKey(n)) params += t.numel();
  std::printf(
      "%s: recipe %s, step %ld, %ld samples consumed, saved at TP %d x DP %d x PP %d, vocabulary "
      "%ld, %zu tensors (%ld model parameters), optimizer state %s\n",
      a.input.c_str(), c.recipe.c_str(), static_cast<long>(c.state.step),
      static_cast<long>(c.state.consumed_samples), c.tp_size, c.dp_size, c.pp_size,
      static_cast<long>(c.vocab_size), c.tensors.size(), static_cast<long>(params),
      c.has_optimizer() ? "yes" : "no");
  return absl::OkStatus();
}

// Every parameter's pipeline stage at `pp` stages (one chunk each): each stage's model built alone
// names what it holds; a tied embedding's copy on the last stage belongs to the first, which saves
// it (as a run does).
absl::StatusOr<std::map<std::string, int>> StagesOf(const Family& family, Config config,
                                                    const DerivedSizes& sizes, int pp) {
  config.parallel.pipeline_parallel_size = pp;
  config.parallel.virtual_pipeline_size = 1;
  config.parallel.pipeline_layers.clear();
  std::map<std::string, int> stages;
  for (int p = 0; p < pp; ++p) {
    absl::StatusOr<std::shared_ptr<TpModule>> model =
        family.BuildModel(TpEnv{LocalCommunicator("tp"), 1, false, p}, config, sizes);
    if (!model.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--pp ", pp, ": ", model.status().message()));
    }
    for (const auto& param : (*model)->named_parameters()) stages.emplace(param.key(), p);
  }
  return stages;
}

absl::Status Reshard(const Args& a, bool release) {
  BRAID_RETURN_IF_ERROR(CheckOutputPath(a.output, {a.input}, true, a.force));
  BRAID_ASSIGN_OR_RETURN(Opened o, OpenCheckpoint(a.input));
  FullCheckpoint& c = o.ckpt;
  const int tp = release ? 1 : a.tp;
  const int pp = release ? 1 : std::max(1, a.pp);
  // Expert parallelism: a checkpoint holds every expert whole whatever EP saved it, and each rank
  // takes its experts by name at load (docs/moe.md), so --ep changes no file; it checks that the
  // experts divide over N ranks, before anything is written.
  const int64_t experts = o.config.model.num_experts;
  if (a.ep > 1 && (experts == 0 || experts % a.ep != 0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--ep %d: %s. HINT: pick an EP size that divides the experts.", a.ep,
        experts == 0 ? "this model has no experts (model.num_experts is 0)"
                     : absl::StrFormat("%d experts do not divide over %d ranks", experts, a.ep)));
  }
  if (o.config.model.num_attention_heads % tp != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--tp %d does not divide the %d attention heads of this model.", tp,
                        o.config.model.num_attention_heads));
  }
  // Dropout-generator states belong to the ranks of the saving layout; at another TP size they
  // would not be restored anyway (the loader keeps the seeds then).
  if (tp != c.tp_size || pp != c.pp_size) c.rng.clear();
  if (a.drop_optimizer || release) {
    for (auto it = c.tensors.begin(); it != c.tensors.end();)
      it = IsOptimizerKey(it->first) ? c.tensors.erase(it) : std::next(it);
    c.optimizer_step = 0;
    c.rng.clear();
  }
  if (release) {
    BRAID_ASSIGN_OR_RETURN(at::ScalarType dt, DtypeFromFlag(a.dtype.empty() ? "bf16" : a.dtype));
    for (auto& [n, t] : c.tensors) t = t.to(dt);
  }
  BRAID_ASSIGN_OR_RETURN(ModelShape shape, DescribeModel(*o.family, o.config, c.vocab_size, tp));
  BRAID_RETURN_IF_ERROR(FitToModel(c, shape, a.input));
  std::map<std::string, int> stages;
  if (pp > 1) {
    BRAID_ASSIGN_OR_RETURN(stages, StagesOf(*o.family, shape.config, shape.sizes, pp));
  }
  BRAID_RETURN_IF_ERROR(WriteCheckpoint(a.output, c, tp, stages));
  std::printf(
      "wrote %s: TP %d%s%s%s\n", a.output.c_str(), tp,
      pp > 1 ? absl::StrFormat(" x PP %d", pp).c_str() : "",
      release ? ", weights only" : (a.drop_optimizer ? ", optimizer dropped" : ""),
      experts > 0
          ? absl::StrFormat(
                "; every expert whole: loads at any EP dividing %d%s", experts,
                a.ep > 1 ? absl::StrFormat(" (EP %d: %d a rank)", a.ep, experts / a.ep) : "")
                .c_str()
          : "");
  return absl::OkStatus();
}

// Writes the Hugging Face files into `dir`: config.json and the weights, in one
// model.safetensors or in shards of at most `max_shard_mb` with model.safetensors.index.json.
absl::Status WriteHfFiles(const fs::path& dir, const std::string& config_json,
                          const std::map<std::string, torch::Tensor>& out, int64_t max_shard_mb,
                          size_t* files_written) {
  {
    std::ofstream cfg(dir / "config.json");
    cfg << config_json;
    if (!cfg.flush())
      return absl::DataLossError(absl::StrCat(dir.string(), "/config.json: write failed"));
  }
  const int64_t limit = max_shard_mb > 0 ? max_shard_mb << 20 : INT64_MAX;
  std::vector<std::map<std::string, torch::Tensor>> shards(1);
  int64_t filled = 0, total = 0;
  for (const auto& [n, t] : out) {
    const int64_t b = t.numel() * t.element_size();
    if (filled > 0 && filled + b > limit) {
      shards.emplace_back();
      filled = 0;
    }
    shards.back()[n] = t;
    filled += b;
    total += b;
  }
  *files_written = shards.size();
  if (shards.size() == 1) {
    return WriteSafetensors((dir / "model.safetensors").string(), shards[0], {{"format", "pt"}});
  }
  std::string index =
      absl::StrFormat("{\n  \"metadata\": {\"total_size\": %d},\n  \"weight_map\": {", total);
  bool first = true;
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string file =
        absl::StrFormat("model-%05d-of-%05d.safetensors", k + 1, shards.size());
    BRAID_RETURN_IF_ERROR(WriteSafetensors((dir / file).string(), shards[k], {{"format", "pt"}}));
    for (const auto& [n, t] : shards[k]) {
      absl::StrAppend(&index, first ? "\n" : ",\n", "    ", JsonQuote(n), ": ", JsonQuote(file));
      first = false;
    }
  }
  index += "\n  }\n}\n";
  std::ofstream idx(dir / "model.safetensors.index.json");
  idx << index;
  if (!idx.flush()) return absl::DataLossError(absl::StrCat(dir.string(), ": index write failed"));
  return absl::OkStatus();
}

// Fills a fresh temporary sibling of `output` and renames it into place (removed on failure).
absl::Status PublishDir(const std::string& output,
                        const std::function<absl::Status(const fs::path&)>& fill) {
  const fs::path tmp = TemporarySibling(output);
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat(tmp.string(), ": cannot create: ", ec.message()));
  absl::Status s = fill(tmp);
  if (!s.ok()) {
    fs::remove_all(tmp, ec);
    return s;
  }
  return ReplaceWith(tmp.string(), output);
}

absl::Status ExportHf(const Args& a) {
  BRAID_RETURN_IF_ERROR(CheckOutputPath(a.output, {a.input}, true, a.force));
  BRAID_ASSIGN_OR_RETURN(Opened o, OpenCheckpoint(a.input));
  const HfLayout* hf = o.family->hf();
  if (hf == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("the '", o.family->name(), "' family has no Hugging Face layout."));
  }
  FullCheckpoint& c = o.ckpt;
  BRAID_ASSIGN_OR_RETURN(at::ScalarType dt, DtypeFromFlag(a.dtype.empty() ? "fp32" : a.dtype));
  BRAID_ASSIGN_OR_RETURN(ModelShape shape, DescribeModel(*o.family, o.config, c.vocab_size, 1));
  for (auto it = c.tensors.begin(); it != c.tensors.end();)
    it = IsOptimizerKey(it->first) ? c.tensors.erase(it) : std::next(it);
  BRAID_RETURN_IF_ERROR(FitToModel(c, shape, a.input));
  // What the layout cannot express is said first (before the tensors it has no names for).
  BRAID_ASSIGN_OR_RETURN(std::string cfg,
                         hf->ConfigJson(shape.config, c.vocab_size, TorchDtypeName(dt)));
  std::map<std::string, torch::Tensor> out;
  std::vector<std::string> problems;
  for (const HfTensor& m : hf->Names(shape.config)) {
    auto it = c.tensors.find(ModelKey(m.ours));
    if (it == c.tensors.end()) {
      problems.push_back(absl::StrCat(ModelKey(m.ours), " is missing"));
      continue;
    }
    torch::Tensor v = it->second;
    if (c.layouts[it->first].vocab) v = v.narrow(0, 0, c.vocab_size);  // no padding there
    if (m.transpose) v = v.t();
    if (m.leading_one) v = v.unsqueeze(0);
    if (m.leading_rows > 0) {
      std::vector<int64_t> rows = v.sizes().vec();
      rows[0] = m.leading_rows;
      v = torch::cat({torch::zeros(rows, v.options()), v}, 0);
    }
    const int64_t parts = static_cast<int64_t>(m.hf.size());
    if (m.kv_groups > 0) {  // per-group QKV -> query, key, value
      std::vector<torch::Tensor> qkv =
          SplitGroupedQkv(v, m.kv_groups, shape.config.model.num_attention_heads);
      for (int64_t k = 0; k < parts; ++k) out[m.hf[k]] = qkv[k].to(dt);
      c.tensors.erase(it);
      continue;
    }
    if (v.size(0) % parts != 0) {
      problems.push_back(absl::StrCat(m.ours, " does not split into ", parts, " parts"));
      continue;
    }
    std::vector<torch::Tensor> chunks = v.chunk(parts, 0);  // a fused QKV -> query, key, value
    for (int64_t k = 0; k < parts; ++k) out[m.hf[k]] = chunks[k].contiguous().to(dt);
    c.tensors.erase(it);
  }
  for (const auto& [name, t] : c.tensors) {
    problems.push_back(absl::StrCat(name, " has no Hugging Face name"));
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(a.input, ": cannot export as ",
                                                   hf->architecture(shape.config), ": ",
                                                   absl::StrJoin(problems, "; "), "."));
  }
  // The run's tokenizer files go along under the names Hugging Face loads them by (a
  // tokenizer.json is all AutoTokenizer needs); one that is gone is left out, with a note.
  std::vector<std::pair<std::string, std::string>> tokenizer_files;
  const DataConfig& d = shape.config.data;
  if (!d.vocab_file.empty()) {
    const char* name = d.tokenizer == TokenizerType::kHuggingFace     ? "tokenizer.json"
                       : d.tokenizer == TokenizerType::kSentencePiece ? "tokenizer.model"
                       : d.tokenizer == TokenizerType::kWordPiece     ? "vocab.txt"
                       : d.tokenizer == TokenizerType::kGpt2          ? "vocab.json"
                                                                      : "tokenizer.model";
    tokenizer_files.push_back({d.vocab_file, name});
    if (d.tokenizer == TokenizerType::kGpt2 && !d.merges_file.empty())
      tokenizer_files.push_back({d.merges_file, "merges.txt"});
  }
  for (auto it = tokenizer_files.begin(); it != tokenizer_files.end();) {
    std::error_code ec;
    if (fs::is_regular_file(it->first, ec)) {
      ++it;
      continue;
    }
    std::fprintf(stderr, "note: the run's tokenizer file %s is gone; exported without it\n",
                 it->first.c_str());
    it = tokenizer_files.erase(it);
  }
  size_t files = 0;
  BRAID_RETURN_IF_ERROR(PublishDir(a.output, [&](const fs::path& dir) -> absl::Status {
    for (const auto& [from, name] : tokenizer_files) {
      std::error_code ec;
      fs::copy_file(from, dir / name, fs::copy_options::overwrite_existing, ec);
      if (ec) return absl::DataLossError(absl::StrCat(from, ": cannot copy it: ", ec.message()));
    }
    return WriteHfFiles(dir, cfg, out, a.max_shard_mb, &files);
  }));
  std::printf("wrote %s: %s, %zu tensors in %zu file(s), %s\n", a.output.c_str(),
              hf->architecture(shape.config).c_str(), out.size(), files, FlagDtypeName(dt));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadText(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::map<std::string, torch::Tensor>> ReadHfWeights(const fs::path& dir) {
  std::map<std::string, torch::Tensor> all;
  std::map<std::string, std::string> index;  // the index's tensor -> file (sharded files)
  std::vector<fs::path> files;
  if (fs::exists(dir / "model.safetensors.index.json")) {
    BRAID_ASSIGN_OR_RETURN(std::string text, ReadText(dir / "model.safetensors.index.json"));
    absl::StatusOr<JsonValue> idx = ParseJson(text);
    const JsonValue* map = idx.ok() ? idx->Find("weight_map") : nullptr;
    if (map == nullptr || map->kind != JsonValue::Kind::kObject) {
      return absl::DataLossError(
          absl::StrCat((dir / "model.safetensors.index.json").string(), ": no weight_map"));
    }
    std::set<std::string> names;
    for (const auto& [k, v] : map->members) {
      if (v.kind != JsonValue::Kind::kString || index.count(k)) {
        return absl::DataLossError(absl::StrCat((dir / "model.safetensors.index.json").string(),
                                                ": weight_map entry '", k,
                                                "' is repeated or not a file name"));
      }
      index[k] = v.text;
      names.insert(v.text);
    }
    for (const auto& n : names) {
      if (n.empty() || n.find('/') != std::string::npos) {
        return absl::DataLossError(
            absl::StrCat("model.safetensors.index.json: bad file name '", n, "'"));
      }
      files.push_back(dir / n);
    }
  } else {
    files.push_back(dir / "model.safetensors");
  }
  // Every tensor exactly once, in the file the index names for it, and of a floating type.
  std::map<std::string, std::string> from;  // tensor -> the file it was read from
  std::vector<std::string> problems;
  for (const fs::path& f : files) {
    BRAID_ASSIGN_OR_RETURN(SafetensorsFile sf, ReadSafetensors(f.string()));
    for (auto& [k, v] : sf.tensors) {
      const std::string file = f.filename().string();
      if (auto it = from.find(k); it != from.end()) {
        problems.push_back(absl::StrCat(k, " is in both ", it->second, " and ", file));
        continue;
      }
      if (auto it = index.find(k); !index.empty() && (it == index.end() || it->second != file)) {
        problems.push_back(absl::StrCat(
            k, " is in ", file, ", but the index ",
            it == index.end() ? "does not list it" : absl::StrCat("puts it in ", it->second)));
        continue;
      }
      if (!v.is_floating_point()) {
        problems.push_back(absl::StrCat(k, " in ", file, " holds ", c10::toString(v.scalar_type()),
                                        " values, not floating-point weights"));
        continue;
      }
      from[k] = file;
      all[k] = v;
    }
  }
  for (const auto& [k, file] : index) {
    if (!from.count(k) && std::find_if(problems.begin(), problems.end(), [&](const auto& p) {
                            return p.rfind(k + " ", 0) == 0;
                          }) == problems.end()) {
      problems.push_back(absl::StrCat(k, " is listed in the index (", file, ") but not there"));
    }
  }
  if (!problems.empty()) {
    if (problems.size() > 8) {
      const size_t n = problems.size();
      problems.resize(8);
      problems.push_back(absl::StrCat("and ", n - 8, " more"));
    }
    return absl::DataLossError(absl::StrCat(dir.string(),
                                            ": the weight files do not hold each "
                                            "tensor once: ",
                                            absl::StrJoin(problems, "; "), "."));
  }
  return all;
}

absl::Status ImportHf(const Args& a) {
  if (a.recipe.empty()) {
    return absl::InvalidArgumentError("import-hf needs --recipe (the base config it trains with).");
  }
  BRAID_RETURN_IF_ERROR(CheckOutputPath(a.output, {a.input}, true, a.force));
  const fs::path in(a.input);
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadText(in / "config.json"));
  absl::StatusOr<JsonValue> hf_config = ParseJson(text);
  if (!hf_config.ok()) {
    return absl::DataLossError(
        absl::StrCat((in / "config.json").string(), ": ", hf_config.status().message()));
  }
  const JsonValue* type = hf_config->Find("model_type");
  if (type == nullptr || type->kind != JsonValue::Kind::kString) {
    return absl::InvalidArgumentError(
        absl::StrCat((in / "config.json").string(), ": no model_type."));
  }
  BRAID_ASSIGN_OR_RETURN(const Family* family, FindFamilyByHfType(type->text));
  const HfLayout& hf = *family->hf();
  BRAID_ASSIGN_OR_RETURN(auto weights, ReadHfWeights(in));
  std::set<std::string> names;
  for (const auto& [k, v] : weights) names.insert(k);
  BRAID_ASSIGN_OR_RETURN(std::vector<std::string> sets, hf.ImportOverrides(*hf_config, names));
  sets.insert(sets.end(), a.overrides.begin(), a.overrides.end());  // the user's last
  const int tp = a.tp > 0 ? a.tp : 1;
  sets.push_back(absl::StrCat("parallel.tensor_parallel_size=", tp));
  BRAID_ASSIGN_OR_RETURN(Config config, LoadConfig(a.recipe, sets));
  if (config.recipe != family->name()) {
    return absl::InvalidArgumentError(
        absl::StrCat(a.recipe, " is a '", config.recipe, "' recipe; ", a.input, " holds a ",
                     type->text, " model, which the '", family->name(),
                     "' family imports. HINT: pass a '", family->name(), "' recipe as --recipe."));
  }
  {  // The sizes config.json gives against the files, before a model of those sizes is built.
    double held = 0;
    for (const auto& [k, v] : weights) held += static_cast<double>(v.numel());
    Config sized = config;
    sized.data.vocab_file.clear();
    sized.parallel.tensor_parallel_size = 1;
    DropPipeline(&sized);
    BRAID_ASSIGN_OR_RETURN(ResolvedRun run, ResolveRun(sized, 1));
    const double want = static_cast<double>(family->ParameterCount(run.config, run.sizes));
    // The files may hold tied copies and buffers (more values); the model pads its vocabulary
    // (a few rows more): only a model far larger than the files is refused here, the exact
    // shapes are compared tensor by tensor below.
    if (want > 1.5 * held + 1e6) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: config.json describes a model of %.4g parameters (hidden_size %d, %d layers), "
          "but the weight files hold %.4g values: they do not belong together. Nothing was "
          "built. HINT: fix config.json, or give the folder its own weights.",
          a.input, want, run.config.model.hidden_size, run.config.model.num_layers, held));
    }
  }
  BRAID_ASSIGN_OR_RETURN(ModelShape shape,
                         DescribeModel(*family, config, config.model.vocab_size, tp));
  FullCheckpoint c;
  c.recipe = family->name();
  c.config_yaml = ConfigToYaml(shape.config);
  c.vocab_size = shape.sizes.vocab_size;
  std::set<std::string> used;
  std::vector<std::string> problems;
  // Base-model files (GPT2Model, BertModel) carry the names without the head's prefix.
  auto find = [&](const std::string& n) {
    auto it = weights.find(n);
    if (it == weights.end() && n.find('.') != std::string::npos) {
      it = weights.find(n.substr(n.find('.') + 1));
    }
    return it;
  };
  for (const HfTensor& m : hf.Names(shape.config)) {
    std::vector<torch::Tensor> parts;
    for (const std::string& n : m.hf) {
      auto it = find(n);
      if (it == weights.end()) {
        problems.push_back(absl::StrCat(n, " is missing"));
        continue;
      }
      used.insert(it->first);
      parts.push_back(it->second.to(at::kFloat));
    }
    if (parts.size() != m.hf.size()) continue;
    torch::Tensor t;
    if (m.kv_groups > 0 && parts.size() == 3) {
      if (parts[0].dim() != parts[1].dim() || parts[1].sizes() != parts[2].sizes() ||
          parts[1].size(0) % m.kv_groups != 0) {
        problems.push_back(
            absl::StrCat(absl::StrJoin(m.hf, ", "), " are ", c10::str(parts[0].sizes()), ", ",
                         c10::str(parts[1].sizes()), ", ", c10::str(parts[2].sizes()),
                         ": not a query, key and value "
                         "of ",
                         m.kv_groups, " key/value heads"));
        continue;
      }
      t = FuseGroupedQkv(parts[0], parts[1], parts[2], m.kv_groups);
    } else if (parts.size() > 1) {
      for (const auto& p : parts) {
        if (p.sizes() != parts[0].sizes()) {
          problems.push_back(absl::StrCat(absl::StrJoin(m.hf, ", "), " differ in shape"));
          parts.clear();
          break;
        }
      }
      if (parts.empty()) continue;
      t = torch::cat(parts, 0);
    } else {
      t = parts[0];
    }
    if (m.transpose) t = t.t();
    if (m.leading_one && t.dim() > 1 && t.size(0) == 1) t = t.squeeze(0);
    if (m.leading_rows > 0 && t.dim() > 0 && t.size(0) > m.leading_rows) {
      t = t.narrow(0, m.leading_rows, t.size(0) - m.leading_rows);
    }
    t = t.contiguous();
    const TpParam layout = shape.layouts.at(m.ours);
    std::vector<int64_t> want = shape.shapes.at(m.ours);
    if (layout.vocab && t.dim() == static_cast<int64_t>(want.size()) && t.size(0) == c.vocab_size) {
      t = RepadVocab(t, want[0]);  // the padding for this TP size
    }
    if (t.sizes().vec() != want) {
      problems.push_back(absl::StrFormat("%s is %s, the model needs %s", absl::StrJoin(m.hf, "|"),
                                         c10::str(t.sizes()), c10::str(c10::IntArrayRef(want))));
      continue;
    }
    c.tensors[ModelKey(m.ours)] = t;
    c.layouts[ModelKey(m.ours)] = layout;
  }
  for (const std::string& n : names) {
    if (!used.count(n) && !hf.Ignorable(n)) problems.push_back(absl::StrCat(n, " is unknown"));
  }
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(a.input, ": cannot import as ",
                                                   hf.architecture(shape.config), ": ",
                                                   absl::StrJoin(problems, "; "), "."));
  }
  BRAID_RETURN_IF_ERROR(WriteCheckpoint(a.output, c, tp));
  std::printf(
      "wrote %s: %s at TP %d, %zu tensors, step 0 (weights only; pretrain --resume trains on from "
      "them with a fresh AdamW)\n",
      a.output.c_str(), family->name().c_str(), tp, c.tensors.size());
  return absl::OkStatus();
}

}  // namespace

int Main(int argc, char** argv) {
  CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage = kUsage;
  cl.repeated = {&FLAGS_set};
  cl.min_args = 1;
  cl.max_args = 2;
  std::vector<std::string> pos = ParseCommandLineOrExit(argc, argv, cl);
  Args a;
  a.cmd = pos[0];
  a.input = absl::GetFlag(FLAGS_input).empty() ? absl::GetFlag(FLAGS_load_dir)
                                               : absl::GetFlag(FLAGS_input);
  a.output = absl::GetFlag(FLAGS_output).empty() ? absl::GetFlag(FLAGS_save_dir)
                                                 : absl::GetFlag(FLAGS_output);
  a.tp = absl::GetFlag(FLAGS_tp) > 0 ? absl::GetFlag(FLAGS_tp)
                                     : absl::GetFlag(FLAGS_target_tensor_parallel_size);
  a.pp = absl::GetFlag(FLAGS_pp) > 0 ? absl::GetFlag(FLAGS_pp)
                                     : absl::GetFlag(FLAGS_target_pipeline_parallel_size);
  a.ep = absl::GetFlag(FLAGS_ep) > 0 ? absl::GetFlag(FLAGS_ep)
                                     : absl::GetFlag(FLAGS_target_expert_parallel_size);
  a.recipe = absl::GetFlag(FLAGS_recipe);
  a.dtype = absl::GetFlag(FLAGS_dtype);
  a.max_shard_mb = absl::GetFlag(FLAGS_max_shard_mb);
  a.drop_optimizer = absl::GetFlag(FLAGS_drop_optimizer);
  a.force = absl::GetFlag(FLAGS_force);
  a.overrides = absl::GetFlag(FLAGS_set);
  const std::set<std::string> commands = {"inspect", "reshard", "release", "export-hf",
                                          "import-hf"};
  if (!commands.count(a.cmd)) {
    UsageError(absl::StrCat("unknown command '", a.cmd,
                            "' (inspect, reshard, release, export-hf, import-hf)."));
  }
  if (a.cmd == "inspect" && a.input.empty() && pos.size() == 2) a.input = pos[1];
  if (a.cmd != "inspect" && pos.size() > 1)
    UsageError(absl::StrCat("unexpected argument '", pos[1], "'."));
  if (a.input.empty())
    UsageError(a.cmd == "inspect" ? "inspect needs STEP_DIR." : "--input is required.");
  if (a.cmd != "inspect" && a.output.empty()) UsageError("--output is required.");
  if (a.cmd == "reshard" && a.tp <= 0) UsageError("reshard needs --tp N (N >= 1).");
  if (absl::GetFlag(FLAGS_tp) < 0 || absl::GetFlag(FLAGS_target_tensor_parallel_size) < 0 ||
      absl::GetFlag(FLAGS_pp) < 0 || absl::GetFlag(FLAGS_target_pipeline_parallel_size) < 0 ||
      absl::GetFlag(FLAGS_ep) < 0 || absl::GetFlag(FLAGS_target_expert_parallel_size) < 0 ||
      a.max_shard_mb < 0)
    UsageError("--tp, --pp, --ep and --max-shard-mb must not be negative.");
  if (a.pp > 0 && a.cmd != "reshard") UsageError("--pp is a reshard option.");
  if (a.ep > 0 && a.cmd != "reshard") UsageError("--ep is a reshard option.");
  if ((!a.overrides.empty() || !a.recipe.empty()) && a.cmd != "import-hf") {
    UsageError("--recipe and --set are import-hf options (a checkpoint carries its own config).");
  }
  absl::Status s;
  if (a.cmd == "inspect") {
    s = Inspect(a);
  } else if (a.cmd == "reshard" || a.cmd == "release") {
    s = Reshard(a, a.cmd == "release");
  } else if (a.cmd == "export-hf") {
    s = ExportHf(a);
  } else {
    s = ImportHf(a);
  }
  if (!s.ok()) {
    std::fprintf(stderr, "convert_checkpoint: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace braid

int main(int argc, char** argv) { return braid::Main(argc, argv); }
