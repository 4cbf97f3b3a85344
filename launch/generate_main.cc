// `generate`: loads the weights a run saved (<run_dir>/final: model.safetensors + config.yaml,
// or a checkpoint step directory with --checkpoint) at any TP size (run it under mpirun with the
// ranks you like; TP = world size) and
//   samples text from a prompt:  generate --run-dir DIR --prompt "text" [--max-new-tokens N]
//                                [--temperature T] [--top-k K] [--seed S]   (T = 0: greedy)
//   or prints logits as JSON:    generate --run-dir DIR --logits 1,2,3
//                                -> {"loss": mean next-token cross entropy, "ids": [...],
//                                    "logits": [[V floats] per position]}
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "framework/core/config.h"
#include "framework/core/json.h"
#include "framework/core/log.h"
#include "framework/core/status.h"
#include "framework/data/tokenizer.h"
#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/models/gpt.h"
#include "framework/train/checkpoint.h"
#include "framework/train/model_io.h"
#include "framework/train/safetensors.h"
#include "recipes/gpt/gpt_task.h"

namespace braid {
namespace {
namespace fs = std::filesystem;

constexpr char kUsage[] =
    "usage: generate (--run-dir DIR | --checkpoint STEP_DIR) (--prompt TEXT | --logits ID,ID,...)\n"
    "                [--max-new-tokens N]\n"
    "                [--temperature T] [--top-k K] [--seed S]\n";

struct Args {
  std::string run_dir, checkpoint, prompt, logits;
  int max_new = 40, top_k = 0;
  double temperature = 0.8;
  uint64_t seed = 1;
};

// The config and full weights of a finished run (<run_dir>/final) or of a checkpoint.
absl::StatusOr<std::pair<Config, std::map<std::string, torch::Tensor>>> LoadWeights(const Args& a) {
  if (!a.checkpoint.empty()) {
    BRAID_ASSIGN_OR_RETURN(FullCheckpoint c, ReadCheckpoint(a.checkpoint));
    BRAID_ASSIGN_OR_RETURN(Config config,
                           LoadConfigFromString(c.config_yaml, a.checkpoint + "/manifest config"));
    std::map<std::string, torch::Tensor> w;
    for (auto& [name, t] : c.tensors)
      if (name.rfind("model/", 0) == 0) w[name.substr(6)] = t.to(torch::kFloat);
    return std::make_pair(std::move(config), std::move(w));
  }
  fs::path dir = fs::path(a.run_dir) / "final";
  BRAID_ASSIGN_OR_RETURN(Config config, LoadConfig((dir / "config.yaml").string()));
  BRAID_ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensors((dir / "model.safetensors").string()));
  return std::make_pair(std::move(config), std::move(f.tensors));
}

absl::Status Run(const Runtime& rt, const Args& a) {
  BRAID_ASSIGN_OR_RETURN(auto loaded, LoadWeights(a));
  Config& config = loaded.first;
  std::map<std::string, torch::Tensor>& tensors = loaded.second;
  if (config.recipe != "gpt") {
    return absl::UnimplementedError(
        absl::StrCat("generate handles GPT runs; this one is '", config.recipe, "'."));
  }
  auto wte = tensors.find("wte.weight");
  if (wte == tensors.end()) {
    return absl::InvalidArgumentError("the weights have no wte.weight: not a GPT.");
  }
  std::unique_ptr<Tokenizer> tok;
  int64_t vocab = config.model.vocab_size;
  if (!config.data.vocab_file.empty()) {
    TokenizerOptions to{config.data.tokenizer, config.data.vocab_file, config.data.merges_file,
                        config.data.lowercase};
    BRAID_ASSIGN_OR_RETURN(tok, MakeTokenizer(to));
    vocab = tok->VocabSize();
  }
  config.parallel.tensor_parallel_size = rt.world_size();
  BRAID_ASSIGN_OR_RETURN(DerivedSizes sizes, DeriveSizes(config, rt.world_size(), vocab));
  BRAID_ASSIGN_OR_RETURN(ParallelLayout layout,
                         ParallelLayout::Create(rt.world(), rt.world_size()));
  // The saved embedding is padded for the training TP size: re-pad for this one.
  torch::Tensor w = wte->second.narrow(0, 0, vocab);
  tensors["wte.weight"] =
      torch::cat({w, torch::zeros({sizes.padded_vocab_size - vocab, w.size(1)})});

  GptConfig g = GptConfigFrom(config, sizes, vocab);
  auto model_ptr =
      std::make_shared<GptModel>(TpEnv{layout.tp, static_cast<uint64_t>(config.seed)}, g);
  GptModel& model = *model_ptr;  // modules must live in a shared_ptr (named_modules)
  BRAID_RETURN_IF_ERROR(LoadFullState(model, tensors, layout.tp_rank, layout.tp_size));
  model.eval();
  torch::NoGradGuard no_grad;
  TpRng rng(config.seed, 0, layout.tp_rank);

  if (!a.logits.empty()) {
    std::vector<int64_t> ids;
    for (absl::string_view s : absl::StrSplit(a.logits, ',', absl::SkipEmpty())) {
      int64_t v;
      if (!absl::SimpleAtoi(s, &v) || v < 0 || v >= vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat("--logits: '", std::string(s), "' is not a token id below ", vocab));
      }
      ids.push_back(v);
    }
    torch::Tensor logits = model.FullLogits(torch::tensor(ids).unsqueeze(0), rng)[0];
    // The training objective on the same ids (vocabulary-parallel cross entropy).
    double loss =
        ids.size() > 1 ? model.Loss(torch::tensor(ids).unsqueeze(0), rng).item<double>() : 0.0;
    if (rt.rank() == 0) {
      std::string out = absl::StrFormat("{\"loss\": %.9g, \"ids\": [", loss);
      for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&out, i ? ", " : "", ids[i]);
      out += "], \"logits\": [";
      for (int64_t p = 0; p < logits.size(0); ++p) {
        out += p ? ", [" : "[";
        const float* row = logits[p].contiguous().data_ptr<float>();
        for (int64_t v = 0; v < logits.size(1); ++v)
          absl::StrAppendFormat(&out, v ? ", %.9g" : "%.9g", row[v]);
        out += "]";
      }
      out += "]}\n";
      std::fputs(out.c_str(), stdout);
    }
    return absl::OkStatus();
  }
  if (!tok)
    return absl::InvalidArgumentError("--prompt needs the run's tokenizer (data.vocab_file).");
  std::vector<int32_t> prompt = tok->Encode(a.prompt);
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  auto gen = at::detail::createCPUGenerator(a.seed);  // same on every rank: same choices
  for (int n = 0; n < a.max_new; ++n) {
    int64_t start = std::max<int64_t>(0, static_cast<int64_t>(ids.size()) - g.max_positions);
    std::vector<int64_t> window(ids.begin() + start, ids.end());
    torch::Tensor last = model.FullLogits(torch::tensor(window).unsqueeze(0), rng)[0][-1];
    int64_t next;
    if (a.temperature <= 0) {
      next = last.argmax().item<int64_t>();
    } else {
      torch::Tensor l = last / a.temperature;
      if (a.top_k > 0 && a.top_k < l.size(0)) {
        auto kth = std::get<0>(l.topk(a.top_k)).min();
        l = l.masked_fill(l < kth, -std::numeric_limits<float>::infinity());
      }
      next = torch::multinomial(torch::softmax(l, -1), 1, false, gen).item<int64_t>();
    }
    if (next == tok->special().eod) break;
    ids.push_back(next);
  }
  if (rt.rank() == 0) {
    std::vector<int32_t> out(ids.begin(), ids.end());
    std::printf("%s\n", tok->Decode(out).c_str());
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace braid

int main(int argc, char** argv) {
  braid::Args a;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    bool ok = v != nullptr;
    if (f == "--run-dir" && ok)
      a.run_dir = argv[++i];
    else if (f == "--checkpoint" && ok)
      a.checkpoint = argv[++i];
    else if (f == "--prompt" && ok)
      a.prompt = argv[++i];
    else if (f == "--logits" && ok)
      a.logits = argv[++i];
    else if (f == "--max-new-tokens" && ok)
      ok = absl::SimpleAtoi(argv[++i], &a.max_new);
    else if (f == "--temperature" && ok)
      ok = absl::SimpleAtod(argv[++i], &a.temperature);
    else if (f == "--top-k" && ok)
      ok = absl::SimpleAtoi(argv[++i], &a.top_k);
    else if (f == "--seed" && ok)
      ok = absl::SimpleAtoi(argv[++i], &a.seed);
    else
      ok = false;
    if (!ok) {
      std::fprintf(stderr, "generate: bad argument '%s'\n%s", f.c_str(), braid::kUsage);
      return 2;
    }
  }
  if ((a.run_dir.empty() && a.checkpoint.empty()) || (a.prompt.empty() && a.logits.empty())) {
    std::fputs(braid::kUsage, stderr);
    return 2;
  }
  auto rt = braid::Runtime::Init(&argc, &argv);
  if (!rt.ok()) return 2;
  absl::Status s = braid::Run(**rt, a);
  if (!s.ok()) {
    BLOG(ERROR, "generate") << s.message();
    if ((*rt)->world_size() > 1) braid::Runtime::Abort(1);
    return 1;
  }
  return 0;
}
