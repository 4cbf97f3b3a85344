// A model family, whole: everything pretrain, generate, convert_checkpoint and the benchmarks need
// to know of it. One object per family, in its own folder recipes/<family>/, registered by one
// line in recipes/registry.cc; nothing outside recipes/ names a family (docs/architecture.md,
// "Adding a family").
#pragma once
#include <torch/torch.h>

#include <initializer_list>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/core/json.h"
#include "framework/core/random.h"
#include "framework/data/splits.h"
#include "framework/data/tokenizer.h"
#include "framework/dist/layout.h"
#include "framework/nn/blocks.h"
#include "framework/train/task.h"

namespace braid {

// The seed of every family's SyntheticData: sample i is drawn from Rng::Keyed(kSyntheticSeed, i).
inline constexpr uint64_t kSyntheticSeed = 0x5EED;

// What a family's builders get: the resolved config (sizes derived once, ResolveRun), its sizes
// and the parallel layout.
struct RunContext {
  const Config& config;
  const DerivedSizes& sizes;
  const ParallelLayout& layout;
  int local_rank = 0;  // the node's index builder when 0
};

// A family's training and validation samples, and lines for the start of the log.
struct FamilyData {
  std::shared_ptr<const SampleSource> train, valid;
  std::vector<std::string> notes;
};

// One tensor of a Hugging Face layout (docs/formats.md, "Hugging Face name maps").
struct HfTensor {
  std::string ours;  // our parameter name (a checkpoint's "model/<ours>")
  // Its Hugging Face name; several when ours is their concatenation along axis 0 (a fused QKV
  // holds query, key and value).
  std::vector<std::string> hf;
  bool transpose = false;    // stored [in, out] there (GPT-2's Conv1D)
  bool leading_one = false;  // stored with a leading axis of 1 there (BART's final_logits_bias)
  // > 0: ours is a grouped-query QKV of this many key/value groups in the per-group layout
  // (framework/nn/blocks.h) and hf names the separate query, key and value weights (or biases).
  int64_t kv_groups = 0;
  // Rows stored before ours there: zeros on export, dropped on import (RoBERTa's position table
  // starts at its padding id + 1 = 2).
  int64_t leading_rows = 0;
};

// A grouped-query QKV (rows [groups][heads/groups queries | key | value][head_dim], then any
// trailing axes) <-> query [heads x head_dim, ...], key and value [groups x head_dim, ...].
std::vector<torch::Tensor> SplitGroupedQkv(const torch::Tensor& qkv, int64_t groups, int64_t heads);
torch::Tensor FuseGroupedQkv(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             int64_t groups);

// A family's Hugging Face layout: convert_checkpoint export-hf and import-hf. The converter takes
// every tensor's TP layout and shape from the model itself (Family::BuildModel on a communicator
// of one), so a layout only names tensors and writes config.json.
class HfLayout {
 public:
  virtual ~HfLayout() = default;
  // config.json's model_type: import-hf picks the family by it.
  virtual std::string model_type() const = 0;
  // Whether import-hf reads a config.json of this model_type with this layout (model_type(), and
  // BART's also mbart).
  virtual bool Reads(const std::string& type) const { return type == model_type(); }
  // The architecture written to config.json (e.g. GPT2LMHeadModel).
  virtual std::string architecture(const Config& c) const = 0;
  // The name map of the model a config describes.
  virtual std::vector<HfTensor> Names(const Config& c) const = 0;
  // config.json for the model a config describes; `vocab_size` is the real vocabulary.
  virtual absl::StatusOr<std::string> ConfigJson(const Config& c, int64_t vocab_size,
                                                 const std::string& torch_dtype) const = 0;
  // The --set overrides that turn a base recipe into the model a config.json describes (names:
  // the tensors the files hold); an error naming a value we cannot represent.
  virtual absl::StatusOr<std::vector<std::string>> ImportOverrides(
      const JsonValue& hf, const std::set<std::string>& names) const = 0;
  // Names Hugging Face files may carry that are no weight of ours (buffers, a tied copy).
  virtual bool Ignorable(const std::string& hf_name) const { return false; }
};

// What `generate` needs of a family that can generate text. A decoder-only model continues its
// prompt; an encoder-decoder model (encoder_decoder()) reads the prompt with its encoder and
// generates the decoder's side from the decoder start.
class Generator {
 public:
  virtual ~Generator() = default;
  virtual bool encoder_decoder() const { return false; }
  // Full-vocabulary logits [n, vocab] at every position of the decoder's ids (`ids` itself for a
  // decoder-only model; `decoder_ids` with `ids` as the encoder's input otherwise) and the mean
  // loss of predicting each next id there (generate --logits).
  virtual std::pair<torch::Tensor, double> Score(const std::vector<int64_t>& ids,
                                                 const std::vector<int64_t>& decoder_ids,
                                                 TpRng& rng) = 0;
  // Full-vocabulary logits [vocab] of the token after `generated` (after `prompt` followed by
  // `generated` for a decoder-only model).
  virtual torch::Tensor Next(const std::vector<int64_t>& prompt,
                             const std::vector<int64_t>& generated, TpRng& rng) = 0;
  // The id that ends a generation (-1: none).
  virtual int64_t StopId(const Tokenizer& tok) const = 0;
  // The most positions the model can read (0: no limit): an encoder-decoder model's encoder
  // input (a longer prompt is refused), and the decoder's ids, the decoder start included (the
  // generation stops there). A decoder-only model slides its window instead (0 for both).
  virtual int64_t MaxEncoderPositions() const { return 0; }
  virtual int64_t MaxDecoderPositions() const { return 0; }
  // How many decoder ids come before the generated ones (the decoder start).
  virtual int64_t DecoderStartLength() const { return 0; }
  // The ids a prompt text becomes (the decoder-only model's context, or the encoder's input):
  // the tokenizer's ids, and for an encoder-decoder model the end-of-document id after them.
  virtual std::vector<int64_t> Prompt(const Tokenizer& tok, const std::string& text) const;
};

class Family {
 public:
  virtual ~Family() = default;
  // The config's `recipe:` value.
  virtual std::string name() const = 0;
  // One line for listings: what the family trains.
  virtual std::string summary() const = 0;

  // Config checks only this family makes, after the generic ones (config.h); errors name the
  // key and where it was set.
  virtual absl::Status Check(const Config& c) const { return absl::OkStatus(); }
  // The model and data keys this family reads besides the shared ones (SharedKeys()): a key of
  // another family set away from its default is refused by ResolveRun, naming the families that
  // read it (docs/architecture.md, "Who reads a key"); --print-config lists only the keys a
  // family reads.
  virtual std::vector<std::string> keys() const { return {}; }
  // The real vocabulary size: the tokenizer's when data.vocab_file names one (model.vocab_size
  // must then agree), else model.vocab_size.
  virtual absl::StatusOr<int64_t> VocabSize(const Config& c) const;

  // The model's parameters (all ranks together) and transformer layers, from the config alone:
  // the memory estimate before anything is built (recipes/plan.h). The defaults count one stack
  // of model.num_layers layers, the vocabulary embedding (and an untied output), the positions.
  virtual int64_t ParameterCount(const Config& c, const DerivedSizes& s) const;
  virtual int64_t LayerCount(const Config& c) const { return c.model.num_layers; }
  // The transformer stacks as the memory estimate sees them: each stack's layers, the positions
  // they run over, and those of the memory a cross-attention reads (0: none); and how many
  // positions per sample the output layer scores. The default: one stack of model.num_layers
  // over model.seq_length, scored at every position.
  struct Stack {
    int64_t layers = 0, length = 0, memory = 0;
  };
  virtual std::vector<Stack> Stacks(const Config& c) const {
    return {{c.model.num_layers, c.model.seq_length, 0}};
  }
  virtual int64_t OutputPositions(const Config& c) const { return c.model.seq_length; }
  // The decoder's positions per sample of an encoder-decoder family (recipes/seq2seq/); 0: none.
  // ResolveRun writes it into DerivedSizes::decoder_seq_length.
  virtual int64_t DecoderLength(const Config& c) const { return 0; }

  // The model, sharded over env.tp, from the resolved config and sizes.
  virtual absl::StatusOr<std::shared_ptr<TpModule>> BuildModel(const TpEnv& env, const Config& c,
                                                               const DerivedSizes& s) const = 0;
  // The objective (loss, metrics, FLOPs) around a model BuildModel made.
  virtual std::unique_ptr<TrainTask> MakeTask(std::shared_ptr<TpModule> model,
                                              const RunContext& ctx) const = 0;
  // The training and validation samples of the data section.
  virtual absl::StatusOr<FamilyData> BuildData(const RunContext& ctx) const = 0;
  // Random samples in this family's row layout (benchmarks): an endless stream.
  virtual std::shared_ptr<SampleSource> SyntheticData(const RunContext& ctx) const = 0;

  // The Hugging Face layout; null when the family has none.
  virtual const HfLayout* hf() const { return nullptr; }
  // Text generation with a model of `config` (its tokenizer's special ids where the family needs
  // them); null when the family cannot generate.
  virtual std::unique_ptr<Generator> MakeGenerator(std::shared_ptr<TpModule> model,
                                                   const Config& config) const {
    return nullptr;
  }
};

// The transformer block settings of the model section (hidden size, heads, FFN width,
// activation, norm, eps, dropouts, init), shared by every family's builder.
absl::StatusOr<BlockConfig> BlockConfigFrom(const Config& config, const DerivedSizes& sizes);
// The keys every family reads: the top level, the parallel, train, checkpoint and logging
// sections, and the model and data keys of every transformer and every dataset (sizes, norms,
// activation, dropout, tokenizer, paths).
const std::vector<std::string>& SharedKeys();
// Whether `family` reads `key_path`: a shared key or one of its own (Family::keys()).
bool FamilyReads(const Family& family, const std::string& key_path);

// The checks every family's data gets: token ids below the vocabulary, and an empty validation
// split allowed (no validation) when train.eval_interval is 0.
DataChecks DataChecksOf(const RunContext& ctx);

// The train and validation splits of the data section (test: none) with the sample counts the
// train section asks for (steps x global batch), one index builder per node (local rank 0, then
// a barrier) and DataChecksOf(ctx): BuildSplits (framework/data/splits.h) as every family
// calls it; `make` builds one dataset's part of one split.
absl::StatusOr<DataSplits> BuildFamilySplits(const RunContext& ctx, const SplitFactory& make);

// Typed reads of a Hugging Face config.json (import-hf). A value of another JSON type than the
// key has in transformers' config classes (the string "false" for a boolean, a string or a
// fraction for an integer), outside its range, or not among the choices is an error naming the
// key and the value: never coerced, never replaced by the default. Absent or null: `fallback`.
// A required positive integer:
absl::StatusOr<int64_t> HfInt(const JsonValue& hf, const char* key);
// An integer of at least `min`:
absl::StatusOr<int64_t> HfIntOr(const JsonValue& hf, const char* key, int64_t fallback,
                                int64_t min = 1);
// A finite positive number (epsilons, RoPE's base):
absl::StatusOr<double> HfNumberOr(const JsonValue& hf, const char* key, double fallback);
absl::StatusOr<bool> HfBoolOr(const JsonValue& hf, const char* key, bool fallback);
// A string, one of `choices` when they are given:
absl::StatusOr<std::string> HfStringOr(const JsonValue& hf, const char* key,
                                       const std::string& fallback,
                                       const std::vector<std::string>& choices = {});

// Names a Hugging Face config uses for ours (activations): {ours, theirs} pairs, looked up either
// way; null when the name is not in the table.
struct HfNameTable {
  std::vector<std::pair<std::string, std::string>> pairs;
  const std::string* Theirs(const std::string& ours) const;
  const std::string* Ours(const std::string& theirs) const;
  std::string TheirNames() const;  // "gelu_new, gelu, relu"
};

// The --set override of model.activation for config.json's `key` (`fallback` when absent): an
// error naming the value when the table does not have it.
absl::StatusOr<std::string> HfActivationOverride(const JsonValue& hf, const char* key,
                                                 const std::string& fallback,
                                                 const HfNameTable& table);
// The --set override of model.tie_embeddings for config.json's tie_word_embeddings (true when
// absent); an untied model's files must hold its output layer, `output_name`.
absl::StatusOr<std::string> HfTieOverride(const JsonValue& hf, const std::set<std::string>& names,
                                          const std::string& output_name);

// HfTieOverride for a layout whose tie_word_embeddings defaults to false (Llama, Qwen2-MoE;
// `layout` names it in the message): absent, the files must hold lm_head.weight.
absl::StatusOr<std::string> HfUntiedByDefault(const JsonValue& hf,
                                              const std::set<std::string>& names,
                                              const std::string& layout);
// model.<ours>=<value> for each {config.json integer key, our model key} of `keys`, appended to
// `sets`; an error naming a key that is absent or not an integer.
absl::Status HfIntSets(const JsonValue& hf,
                       std::initializer_list<std::pair<const char*, const char*>> keys,
                       std::vector<std::string>* sets);

// An error when config.json sets rope_scaling (Llama 3.1's or a long-context scaling): braid's
// RoPE has none, and the model would compute other logits.
absl::Status HfRefuseRopeScaling(const JsonValue& hf);

// An error when the model's heads are not hidden_size / num_attention_heads wide (model.kv_channels
// set to another size): `layout` (GPT-2, BART, BERT) has no key for a head size, so its readers
// would split the attention otherwise than the weights were trained.
absl::Status HfHeadSizeIsHiddenOverHeads(const Config& c, const std::string& layout);

// The tokenizer the data section names, and the options it is made from.
TokenizerOptions TokenizerOptionsOf(const Config& config);
absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerOf(const Config& config);
// The same for a family whose data needs it (`need`: "the BERT recipe needs its tokenizer ..."):
// an error saying so when data.vocab_file is not set.
absl::StatusOr<std::unique_ptr<Tokenizer>> RequiredTokenizerOf(const Config& config,
                                                               const std::string& need);

}  // namespace braid
