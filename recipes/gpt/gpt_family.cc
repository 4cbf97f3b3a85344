// The GPT family (see gpt_family.h): a GptModel from the model section, GPT samples
// (framework/data/splits.h) from the data section, the next-token cross entropy as the
// objective, GPT-2's Hugging Face layout, and generation.
#include "recipes/gpt/gpt_family.h"

#include <cmath>

#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/data/fim.h"
#include "framework/data/indexed_dataset.h"
#include "framework/data/splits.h"
#include "recipes/gpt/gpt_task.h"

namespace braid {
namespace {

// Entropy (nats) of the token distribution of a dataset: the loss of a model that knows only
// token frequencies; a trained model must go well below it.
double UnigramEntropy(const IndexedDataset& d) {
  std::vector<double> counts;
  std::vector<int64_t> seq;
  for (int64_t s = 0; s < d.num_sequences(); ++s) {
    seq = d.Sequence(s);
    for (int64_t t : seq) {
      if (t >= static_cast<int64_t>(counts.size())) counts.resize(t + 1, 0);
      counts[t] += 1;
    }
  }
  double total = static_cast<double>(d.num_tokens()), h = 0;
  for (double c : counts)
    if (c > 0) h -= c / total * std::log(c / total);
  return h;
}

// Random tokens, seq + 1 a sample (benchmarks).
class RandomTokens : public SampleSource {
 public:
  RandomTokens(int64_t len, int64_t vocab) : len_(len), vocab_(vocab) {}
  int64_t size() const override { return int64_t{1} << 40; }
  int64_t sample_length() const override { return len_; }
  void Get(int64_t i, int64_t* out) const override {
    Rng rng = Rng::Keyed(kSyntheticSeed, static_cast<uint64_t>(i));
    for (int64_t k = 0; k < len_; ++k) {
      out[k] = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(vocab_)));
    }
  }

 private:
  int64_t len_, vocab_;
};

class GptGenerator : public Generator {
 public:
  explicit GptGenerator(std::shared_ptr<GptModel> model) : model_(std::move(model)) {}
  std::pair<torch::Tensor, double> Score(const std::vector<int64_t>& ids,
                                         const std::vector<int64_t>&, TpRng& rng) override {
    torch::Tensor t = torch::tensor(ids).unsqueeze(0);
    const int64_t n = t.size(1);
    double loss =
        n > 1 ? model_->Loss(t.narrow(1, 0, n - 1), t.narrow(1, 1, n - 1), rng).item<double>()
              : 0.0;
    // Last, so that what an MoE layer last routed is all of `ids` (generate --logits reports it).
    torch::Tensor logits = model_->FullLogits(t, rng)[0];
    return {logits, loss};
  }
  torch::Tensor Next(const std::vector<int64_t>& prompt, const std::vector<int64_t>& generated,
                     TpRng& rng) override {
    std::vector<int64_t> ids = prompt;
    ids.insert(ids.end(), generated.begin(), generated.end());
    const int64_t start =
        std::max<int64_t>(0, static_cast<int64_t>(ids.size()) - model_->config().max_positions);
    std::vector<int64_t> window(ids.begin() + start, ids.end());
    return model_->FullLogits(torch::tensor(window).unsqueeze(0), rng)[0][-1];
  }
  int64_t StopId(const Tokenizer& tok) const override { return tok.special().eod; }

 private:
  std::shared_ptr<GptModel> model_;
};

class Gpt : public Family {
 public:
  std::string name() const override { return "gpt"; }
  std::string summary() const override {
    return "decoder-only causal LM (GPT-2; LLaMA, Mistral, Falcon, BLOOM options)";
  }
  // The decoder options (LLaMA, Mistral, Falcon, BLOOM; framework/nn/blocks.h).
  std::vector<std::string> keys() const override {
    return {"model.position", "model.rope_theta", "model.num_query_groups", "model.bias",
            "model.sliding_window", "model.parallel_residual", "data.reset_position_ids",
            "data.reset_attention_mask", "model.rotary_percent", "model.embed_layernorm",
            "model.hf_layout", "data.eod_mask_loss", "data.fim_rate", "data.fim_spm_rate",
            "data.fim_tokens", "data.fim_split_sample", "data.fim_fragment_rate",
            "model.shared_input_norm", "model.add_qkv_bias",
            // Mixture of experts (framework/nn/moe.h).
            "model.num_experts", "model.moe_top_k", "model.moe_ffn_hidden_size",
            "model.moe_layer_freq", "model.moe_layer_pattern", "model.moe_shared_experts",
            "model.moe_shared_expert_gate", "model.moe_router_pre_softmax",
            "model.moe_aux_loss_coeff", "model.moe_z_loss_coeff", "model.moe_capacity_factor"};
  }

  absl::Status Check(const Config& c) const override {
    if (c.model.shared_input_norm && !c.model.parallel_residual) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.Where("model.shared_input_norm"),
          "model.shared_input_norm: one norm shared by attention and MLP needs parallel "
          "sub-blocks. HINT: set model.parallel_residual: true (GPT-J, Falcon-7B), or leave "
          "shared_input_norm false."));
    }
    const ModelConfig& m = c.model;
    if (m.add_qkv_bias && m.bias) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.Where("model.add_qkv_bias"),
          "model.add_qkv_bias: q, k and v have biases already (model.bias: true puts them on every "
          "linear layer). HINT: set model.bias: false for q, k and v only (Qwen2)."));
    }
    if (m.num_experts == 0) {  // an MoE key on a dense model would change nothing
      const ModelConfig d;
      const std::vector<std::pair<const char*, bool>> away = {
          {"model.moe_top_k", m.moe_top_k != d.moe_top_k},
          {"model.moe_ffn_hidden_size", m.moe_ffn_hidden_size != d.moe_ffn_hidden_size},
          {"model.moe_layer_freq", m.moe_layer_freq != d.moe_layer_freq},
          {"model.moe_layer_pattern", !m.moe_layer_pattern.empty()},
          {"model.moe_shared_experts", m.moe_shared_experts != d.moe_shared_experts},
          {"model.moe_shared_expert_gate", m.moe_shared_expert_gate},
          {"model.moe_router_pre_softmax", m.moe_router_pre_softmax},
          {"model.moe_aux_loss_coeff", m.moe_aux_loss_coeff != d.moe_aux_loss_coeff},
          {"model.moe_z_loss_coeff", m.moe_z_loss_coeff != d.moe_z_loss_coeff},
          {"model.moe_capacity_factor", m.moe_capacity_factor != d.moe_capacity_factor}};
      for (const auto& [key, set] : away) {
        if (!set) continue;
        return absl::InvalidArgumentError(absl::StrCat(
            c.Where(key), key,
            ": is set, but model.num_experts is 0 (a dense model): it would change nothing. "
            "HINT: set model.num_experts (Mixtral: 8), or drop the key."));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<TpModule>> BuildModel(const TpEnv& env, const Config& c,
                                                       const DerivedSizes& s) const override {
    BRAID_ASSIGN_OR_RETURN(GptConfig g, GptConfigFrom(c, s));
    if (env.pp_rank >= 0) {
      BRAID_ASSIGN_OR_RETURN(g.stage, StagePlanOf(*this, c, env.pp_rank));
    }
    return std::static_pointer_cast<TpModule>(std::make_shared<GptModel>(env, g));
  }

  std::unique_ptr<TrainTask> MakeTask(std::shared_ptr<TpModule> model,
                                      const RunContext& ctx) const override {
    return std::make_unique<GptTask>(std::dynamic_pointer_cast<GptModel>(model),
                                     ctx.config.model.seq_length);
  }

  absl::StatusOr<FamilyData> BuildData(const RunContext& ctx) const override {
    const Config& c = ctx.config;
    GptDataSpec spec;
    spec.paths = c.data.paths;
    spec.weights = c.data.weights;
    spec.split = c.data.split;
    spec.seq_length = c.model.seq_length;
    spec.seed = static_cast<uint64_t>(c.seed);
    spec.cache_dir = c.data.cache_dir;
    spec.num_samples[0] = c.train.train_steps * ctx.sizes.global_batch_size;
    spec.num_samples[1] = c.train.eval_steps * ctx.sizes.global_batch_size;
    spec.checks = DataChecksOf(ctx);
    auto world = ctx.layout.world;
    BRAID_ASSIGN_OR_RETURN(DataSplits splits, BuildDataSplits(spec, ctx.local_rank == 0, [world] {
                             return world->Barrier();
                           }));
    FamilyData data;
    data.train = splits.split[0];
    data.valid = splits.split[1];
    if (c.data.fim_rate > 0) {
      BRAID_ASSIGN_OR_RETURN(auto tok, RequiredTokenizerOf(c, "data.fim_rate"));
      FimOptions o;
      o.rate = c.data.fim_rate;
      o.spm_rate = c.data.fim_spm_rate;
      o.fragment_rate = c.data.fim_fragment_rate;
      const std::vector<std::string>& names =
          c.data.fim_tokens.empty() ? DefaultFimTokens() : c.data.fim_tokens;
      absl::Status ids = ResolveFimIds(*tok, names, c.data.fim_split_sample, &o);
      if (!ids.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(c.Where("data.fim_rate"), "data.fim_rate: ", ids.message()));
      }
      for (int k = 0; k < 2; ++k) {
        auto& part = k == 0 ? data.train : data.valid;
        if (part) {
          part = std::make_shared<FimSource>(part, o, TokenizerOptionsOf(c),
                                             static_cast<uint64_t>(c.seed), k);
        }
      }
      data.notes.push_back(absl::StrFormat(
          "fill-in-the-middle: %.3g of the documents%s, %.3g of those SPM; sentinels %s=%d %s=%d "
          "%s=%d %s=%d",
          o.rate,
          o.split >= 0 ? absl::StrFormat(" (fragments at %s: %.3g each)", c.data.fim_split_sample,
                                         o.fragment_rate)
                       : "",
          o.spm_rate, names[0], o.prefix, names[1], o.middle, names[2], o.suffix, names[3], o.pad));
    }
    data.notes.push_back(absl::StrFormat(
        "GPT: %d layers, width %d, %d heads, vocabulary %d (padded to %d), sequence %d, %s output",
        c.model.num_layers, c.model.hidden_size, c.model.num_attention_heads, ctx.sizes.vocab_size,
        ctx.sizes.padded_vocab_size, c.model.seq_length,
        c.model.tie_embeddings ? "tied" : "untied"));
    if (c.data.reset_position_ids || c.data.reset_attention_mask || c.data.eod_mask_loss) {
      data.notes.push_back(absl::StrFormat(
          "documents split at each end-of-document token: positions %s, attention %s, loss %s",
          c.data.reset_position_ids ? "restart" : "run on",
          c.data.reset_attention_mask ? "within each document" : "across documents",
          c.data.eod_mask_loss ? "skips the predictions from EOD inputs" : "on every position"));
    }
    if (ctx.layout.rank == 0 && !c.data.paths.empty()) {
      BRAID_ASSIGN_OR_RETURN(auto first, IndexedDataset::Open(c.data.paths[0]));
      data.notes.push_back(absl::StrFormat(
          "unigram entropy of %s: %.4f nats (a model that beats token frequencies goes below it)",
          c.data.paths[0], UnigramEntropy(*first)));
    }
    return data;
  }

  std::shared_ptr<SampleSource> SyntheticData(const RunContext& ctx) const override {
    return std::make_shared<RandomTokens>(GptBatch::RowLength(ctx.config.model.seq_length),
                                          ctx.sizes.vocab_size);
  }

  const HfLayout* hf() const override { return &GptHfLayout(); }

  std::unique_ptr<Generator> MakeGenerator(std::shared_ptr<TpModule> model,
                                           const Config& config) const override {
    return std::make_unique<GptGenerator>(std::dynamic_pointer_cast<GptModel>(model));
  }
};

}  // namespace

GptBatch GptBatch::FromRows(const torch::Tensor& rows) {
  const int64_t seq = rows.size(1) - 1;
  return GptBatch{rows.narrow(1, 0, seq), rows.narrow(1, 1, seq)};
}

absl::StatusOr<GptConfig> GptConfigFrom(const Config& c, const DerivedSizes& sizes) {
  GptConfig g;
  g.layers = c.model.num_layers;
  g.max_positions = sizes.max_position_embeddings;
  g.vocab_size = sizes.vocab_size;
  g.padded_vocab = sizes.padded_vocab_size;
  g.tie_embeddings = c.model.tie_embeddings;
  g.position = c.model.position;
  g.embed_layernorm = c.model.embed_layernorm;
  g.sliding_window = c.model.sliding_window;
  g.output_chunk_tokens = c.model.output_chunk_tokens;
  g.reset_position_ids = c.data.reset_position_ids;
  g.reset_attention_mask = c.data.reset_attention_mask;
  g.eod_mask_loss = c.data.eod_mask_loss;
  if (g.reset_position_ids || g.reset_attention_mask || g.eod_mask_loss) {
    // The documents are told apart by the tokenizer's end-of-document token.
    const std::string key = g.reset_attention_mask ? "data.reset_attention_mask"
                            : g.reset_position_ids ? "data.reset_position_ids"
                                                   : "data.eod_mask_loss";
    BRAID_ASSIGN_OR_RETURN(auto tok, RequiredTokenizerOf(c, key));
    g.eod = tok->special().eod;
    if (g.eod < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s%s: the tokenizer %s has no end-of-document token to split documents at. HINT: use "
          "the tokenizer the data was preprocessed with (preprocess_data --append-eod).",
          c.Where(key), key, c.data.vocab_file));
    }
  }
  BRAID_ASSIGN_OR_RETURN(g.block, BlockConfigFrom(c, sizes));
  return g;
}

const Family& GptFamily() {
  static const Gpt kGpt;
  return kGpt;
}

}  // namespace braid
