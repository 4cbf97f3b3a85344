// `generate`: loads the weights a run saved (<run_dir>/final: model.safetensors + config.yaml,
// or a checkpoint step directory with --checkpoint) of any family that generates text
// (Family::MakeGenerator), at any TP size (run it under mpirun with the ranks you like; TP = the
// world size), and
//   samples text from a prompt:  generate --run-dir DIR --prompt "text" [--max-new-tokens N]
//                                [--temperature T] [--top-k K] [--seed S]   (T = 0: greedy)
//   fills in the middle:          generate --run-dir DIR --fim-prefix "text" --fim-suffix "text"
//                                (a decoder trained with data.fim_rate; prints the middle)
//   or prints logits as JSON:    generate --run-dir DIR --logits 1,2,3
//                                -> {"loss": mean next-token cross entropy, "ids": [...],
//                                    "logits": [[V floats] per position]}
// An encoder-decoder model (T5) reads the prompt, EOS appended, with its encoder and prints what
// its decoder generates from the decoder start (the spans of the prompt's sentinels:
// --prompt "The <extra_id_0> walks in <extra_id_1> park"). Its --logits are the encoder's ids,
// --decoder-ids the decoder's; the logits and loss are the decoder's.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "framework/core/config.h"
#include "framework/core/flags.h"
#include "framework/core/json.h"
#include "framework/core/log.h"
#include "framework/core/status.h"
#include "framework/data/fim.h"
#include "framework/data/tokenizer.h"
#include "framework/dist/layout.h"
#include "framework/dist/runtime.h"
#include "framework/nn/moe.h"
#include "framework/train/checkpoint.h"
#include "framework/train/model_io.h"
#include "framework/train/safetensors.h"
#include "recipes/registry.h"

namespace braid {
namespace {
namespace fs = std::filesystem;

constexpr char kUsage[] =
    "usage: generate (--run-dir DIR | --checkpoint STEP_DIR) (--prompt TEXT | --logits ID,ID,...\n"
    "                | --fim-prefix TEXT --fim-suffix TEXT)\n"
    "                [--decoder-ids ID,ID,...] [--max-new-tokens N]\n"
    "                [--temperature T] [--top-k K] [--seed S]\n";

struct Args {
  std::string run_dir, checkpoint, prompt, logits, decoder_ids;
  bool fim = false;  // fill in the middle between fim_prefix and fim_suffix
  std::string fim_prefix, fim_suffix;
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
      if (IsModelKey(name)) w[ParamOfKey(name)] = t.to(torch::kFloat);
    return std::make_pair(std::move(config), std::move(w));
  }
  fs::path dir = fs::path(a.run_dir) / "final";
  BRAID_ASSIGN_OR_RETURN(Config config, LoadConfig((dir / "config.yaml").string()));
  BRAID_ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensors((dir / "model.safetensors").string()));
  return std::make_pair(std::move(config), std::move(f.tensors));
}

absl::Status Run(const Runtime& rt, const Args& a) {
  BRAID_ASSIGN_OR_RETURN(auto loaded, LoadWeights(a));
  Config& saved = loaded.first;
  saved.parallel.tensor_parallel_size = rt.world_size();  // TP = the ranks of this command
  DropPipeline(&saved);
  BRAID_ASSIGN_OR_RETURN(ResolvedRun run, ResolveRun(saved, rt.world_size()));
  const Config& config = run.config;
  BRAID_ASSIGN_OR_RETURN(ParallelLayout layout,
                         ParallelLayout::Create(rt.world(), rt.world_size()));
  BRAID_ASSIGN_OR_RETURN(
      std::shared_ptr<TpModule> model,
      run.family->BuildModel(TpEnv{layout.tp, static_cast<uint64_t>(config.seed)}, config,
                             run.sizes));
  std::unique_ptr<Generator> gen = run.family->MakeGenerator(model, config);
  if (gen == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("generate: the '", config.recipe, "' family does not generate text."));
  }
  // The weights are full tensors: each rank keeps its slice (the vocabulary re-padded).
  BRAID_RETURN_IF_ERROR(LoadFullState(*model, loaded.second, layout.tp_rank, layout.tp_size));
  model->eval();
  torch::NoGradGuard no_grad;
  TpRng rng(config.seed, 0, layout.tp_rank);
  const int64_t vocab = run.sizes.vocab_size;

  // Comma-separated ids below the vocabulary, at most `limit` of them.
  auto parse_ids = [&](const std::string& text, const char* flag,
                       int64_t limit) -> absl::StatusOr<std::vector<int64_t>> {
    std::vector<int64_t> ids;
    for (absl::string_view s : absl::StrSplit(text, ',', absl::SkipEmpty())) {
      if (static_cast<int64_t>(ids.size()) >= limit) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, ": more ids than the model's ", limit, " positions."));
      }
      int64_t v;
      if (!absl::SimpleAtoi(s, &v) || v < 0 || v >= vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, ": '", std::string(s), "' is not a token id below ", vocab));
      }
      ids.push_back(v);
    }
    if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, " names no token id."));
    return ids;
  };
  if (gen->encoder_decoder() && !a.logits.empty() && a.decoder_ids.empty()) {
    return absl::InvalidArgumentError(
        "--logits: this is an encoder-decoder model: give the decoder's ids with --decoder-ids "
        "(they start with the decoder start id, 0 for T5).");
  }
  if (!gen->encoder_decoder() && !a.decoder_ids.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--decoder-ids: the '", config.recipe, "' family has no decoder of its own."));
  }
  // The positions the model has: an encoder-decoder model's encoder and decoder tables (BART's
  // learned positions; T5 has none), a decoder-only model's own.
  const int64_t encoder_limit = gen->MaxEncoderPositions() > 0 ? gen->MaxEncoderPositions()
                                                               : run.sizes.max_position_embeddings;
  const int64_t decoder_limit =
      gen->MaxDecoderPositions() > 0 ? gen->MaxDecoderPositions() : 1 << 20;
  if (!a.logits.empty()) {
    BRAID_ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                           parse_ids(a.logits, "--logits", encoder_limit));
    std::vector<int64_t> decoder_ids;
    if (gen->encoder_decoder()) {
      BRAID_ASSIGN_OR_RETURN(decoder_ids, parse_ids(a.decoder_ids, "--decoder-ids", decoder_limit));
    }
    auto [logits, loss] = gen->Score(ids, decoder_ids, rng);
    if (rt.rank() == 0) {
      std::string out = absl::StrFormat("{\"loss\": %.9g, \"ids\": [", loss);
      for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&out, i ? ", " : "", ids[i]);
      if (gen->encoder_decoder()) {
        out += "], \"decoder_ids\": [";
        for (size_t i = 0; i < decoder_ids.size(); ++i)
          absl::StrAppend(&out, i ? ", " : "", decoder_ids[i]);
      }
      out += "], \"logits\": [";
      for (int64_t p = 0; p < logits.size(0); ++p) {
        out += p ? ", [" : "[";
        const float* row = logits[p].contiguous().data_ptr<float>();
        for (int64_t v = 0; v < logits.size(1); ++v)
          absl::StrAppendFormat(&out, v ? ", %.9g" : "%.9g", row[v]);
        out += "]";
      }
      out += "]";
      // A mixture of experts: each MoE layer's load-balancing and z-loss over these ids.
      std::map<std::string, double> moe;
      AddMoeMetrics(*model, &moe);
      for (const char* kind : {"moe_aux", "moe_z"}) {
        std::string layers;
        for (const auto& [k, v] : moe) {
          if (!absl::StartsWith(k, absl::StrCat(kind, "/"))) continue;
          absl::StrAppendFormat(&layers, "%s\"%s\": %.9g", layers.empty() ? "" : ", ",
                                k.substr(std::strlen(kind) + 1), v);
        }
        if (!layers.empty()) absl::StrAppend(&out, ", \"", kind, "\": {", layers, "}");
      }
      out += "}\n";
      std::fputs(out.c_str(), stdout);
    }
    return absl::OkStatus();
  }
  if (config.data.vocab_file.empty()) {
    return absl::InvalidArgumentError("--prompt needs the run's tokenizer (data.vocab_file).");
  }
  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, TokenizerOf(config));
  std::vector<int64_t> prompt;
  std::vector<int64_t> stops;  // ids that end the generation besides StopId
  if (a.fim) {
    // PSM, as the model was trained (docs/fim.md): <fim_prefix> prefix <fim_suffix> suffix
    // <fim_middle>, then the middle until the end of the document or a sentinel.
    if (gen->encoder_decoder()) {
      return absl::InvalidArgumentError(
          "--fim-prefix/--fim-suffix: fill-in-the-middle is for decoder-only models.");
    }
    FimOptions o;
    const std::vector<std::string>& names =
        config.data.fim_tokens.empty() ? DefaultFimTokens() : config.data.fim_tokens;
    absl::Status ids = ResolveFimIds(*tok, names, "", &o);
    if (!ids.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--fim-prefix: ", ids.message()));
    }
    auto add = [&](const std::string& text) {
      for (int32_t id : tok->Encode(text)) prompt.push_back(id);
    };
    prompt.push_back(o.prefix);
    add(a.fim_prefix);
    prompt.push_back(o.suffix);
    add(a.fim_suffix);
    prompt.push_back(o.middle);
    stops = {o.prefix, o.middle, o.suffix, o.pad};
  } else {
    prompt = gen->Prompt(*tok, a.prompt);
  }
  if (prompt.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--prompt '", a.prompt,
                     "' is empty after tokenization: there is nothing to continue. "
                     "HINT: give some text."));
  }
  if (gen->encoder_decoder() && gen->MaxEncoderPositions() > 0 &&
      static_cast<int64_t>(prompt.size()) > gen->MaxEncoderPositions()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--prompt: %d tokens, but the encoder reads at most %d (model.max_position_embeddings). "
        "HINT: shorten the prompt.",
        prompt.size(), gen->MaxEncoderPositions()));
  }
  int64_t max_new = a.max_new;
  if (gen->MaxDecoderPositions() > 0) {
    const int64_t room = gen->MaxDecoderPositions() - gen->DecoderStartLength();
    if (max_new > room) {
      BLOG(WARNING, "generate") << absl::StrFormat(
          "--max-new-tokens %d: the decoder has %d positions (model.max_position_embeddings), %d "
          "of them its start; generating at most %d tokens",
          max_new, gen->MaxDecoderPositions(), gen->DecoderStartLength(), room);
      max_new = std::max<int64_t>(0, room);
    }
  }
  std::vector<int64_t> generated;
  auto sampler = at::detail::createCPUGenerator(a.seed);  // same on every rank: same choices
  const int64_t stop = gen->StopId(*tok);
  const auto started = std::chrono::steady_clock::now();
  for (int64_t n = 0; n < max_new; ++n) {
    if (n == 16 && rt.rank() == 0) {  // a long generation says how long it will take
      const double per =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() /
          static_cast<double>(n);
      if (per * static_cast<double>(max_new) > 10) {
        BLOG(INFO, "generate") << absl::StrFormat(
            "up to %d tokens at %.1f tokens/s: about %.0f s (more for a long decoder; it stops "
            "earlier at the end token)",
            max_new, 1.0 / per, per * static_cast<double>(max_new));
      }
    }
    torch::Tensor last = gen->Next(prompt, generated, rng);
    int64_t next;
    if (a.temperature <= 0) {
      next = last.argmax().item<int64_t>();
    } else {
      torch::Tensor l = last / a.temperature;
      if (a.top_k > 0 && a.top_k < l.size(0)) {
        auto kth = std::get<0>(l.topk(a.top_k)).min();
        l = l.masked_fill(l < kth, -std::numeric_limits<float>::infinity());
      }
      next = torch::multinomial(torch::softmax(l, -1), 1, false, sampler).item<int64_t>();
    }
    if (next == stop || std::find(stops.begin(), stops.end(), next) != stops.end()) break;
    generated.push_back(next);
  }
  if (rt.rank() == 0) {
    // A decoder-only model prints the prompt and its continuation; an encoder-decoder model what
    // its decoder wrote.
    // With --fim-prefix/--fim-suffix, the middle alone.
    std::vector<int32_t> out;
    if (!gen->encoder_decoder() && !a.fim) out.assign(prompt.begin(), prompt.end());
    out.insert(out.end(), generated.begin(), generated.end());
    std::printf("%s\n", tok->Decode(out).c_str());
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace braid

ABSL_FLAG(std::string, run_dir, "", "a finished run: its final/model.safetensors and config.yaml");
ABSL_FLAG(std::string, checkpoint, "", "a checkpoint step directory (instead of --run-dir)");
ABSL_FLAG(std::string, prompt, "", "text to continue");
ABSL_FLAG(std::string, fim_prefix, "",
          "fill in the middle: the text before it (with --fim-suffix; prints the middle)");
ABSL_FLAG(std::string, fim_suffix, "", "fill in the middle: the text after it");
ABSL_FLAG(std::string, logits, "",
          "comma-separated token ids: print their logits and loss as JSON");
ABSL_FLAG(std::string, decoder_ids, "",
          "encoder-decoder models: the decoder's comma-separated ids for --logits");
ABSL_FLAG(int32_t, max_new_tokens, 40, "tokens to generate (0 or more)");
ABSL_FLAG(double, temperature, 0.8, "sampling temperature (0: greedy)");
ABSL_FLAG(int32_t, top_k, 0, "sample from the k most likely tokens (0: all)");
ABSL_FLAG(uint64_t, seed, 1, "sampling seed (the same on every rank)");

int main(int argc, char** argv) {
  braid::CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage = braid::kUsage;
  braid::ParseCommandLineOrExit(argc, argv, cl);
  braid::Args a;
  a.run_dir = absl::GetFlag(FLAGS_run_dir);
  a.checkpoint = absl::GetFlag(FLAGS_checkpoint);
  a.prompt = absl::GetFlag(FLAGS_prompt);
  a.logits = absl::GetFlag(FLAGS_logits);
  a.decoder_ids = absl::GetFlag(FLAGS_decoder_ids);
  a.max_new = absl::GetFlag(FLAGS_max_new_tokens);
  a.temperature = absl::GetFlag(FLAGS_temperature);
  a.top_k = absl::GetFlag(FLAGS_top_k);
  a.seed = absl::GetFlag(FLAGS_seed);
  if (a.run_dir.empty() == a.checkpoint.empty()) {
    braid::UsageError("give one of --run-dir and --checkpoint.");
  }
  a.fim_prefix = absl::GetFlag(FLAGS_fim_prefix);
  a.fim_suffix = absl::GetFlag(FLAGS_fim_suffix);
  a.fim = !a.fim_prefix.empty() || !a.fim_suffix.empty();  // one of them may be empty
  if (static_cast<int>(!a.prompt.empty()) + static_cast<int>(!a.logits.empty()) +
          static_cast<int>(a.fim) !=
      1) {
    braid::UsageError("give one of --prompt, --logits and --fim-prefix/--fim-suffix.");
  }
  if (a.max_new < 0) braid::UsageError("--max-new-tokens must not be negative.");
  if (a.top_k < 0) braid::UsageError("--top-k must not be negative (0: no limit).");
  if (!std::isfinite(a.temperature) || a.temperature < 0) {
    braid::UsageError("--temperature must be a finite number, 0 (greedy) or more.");
  }
  auto rt = braid::Runtime::Init(&argc, &argv);
  if (!rt.ok()) {
    std::fprintf(stderr, "generate: %s\n", std::string(rt.status().message()).c_str());
    return 1;
  }
  absl::Status s = braid::Run(**rt, a);
  if (!s.ok()) {
    BLOG(ERROR, "generate") << s.message();
    if ((*rt)->world_size() > 1) braid::Runtime::Abort(1);
    return 1;
  }
  return 0;
}
