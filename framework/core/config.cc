// Config binding, validation and printing (see config.h). The one description of every key is
// DescribeConfig(); the Reader and Printer below are two walks over it.
#include "framework/core/config.h"

#include <cmath>
#include <functional>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "framework/core/config_tree.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"

namespace braid {
namespace {
using config_internal::Location;
using config_internal::Node;

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();
enum class Need { kOptional, kRequired };

// A walk over the description of every key.
class Fields {
 public:
  virtual ~Fields() = default;
  virtual void Section(const char* key, const std::function<void()>& body) = 0;
  virtual void Int(const char* key, int64_t* v, int64_t lo, int64_t hi, Need need) = 0;
  virtual void Float(const char* key, double* v, double lo, double hi) = 0;
  virtual void Bool(const char* key, bool* v) = 0;
  virtual void Str(const char* key, std::string* v, Need need) = 0;
  virtual void Choice(const char* key, std::string* v, const std::vector<std::string>& choices,
                      Need need) = 0;
  virtual void StrList(const char* key, std::vector<std::string>* v) = 0;
  virtual void FloatList(const char* key, std::vector<double>* v, double lo, double hi) = 0;
  virtual void IntList(const char* key, std::vector<int64_t>* v, int64_t lo, int64_t hi) = 0;
};

// A choice of core/choices.h: walked as its name (read, printed), stored as the enum.
template <typename E>
void EnumChoice(Fields& f, const char* key, E* value) {
  std::string name = Name(*value);
  f.Choice(key, &name, AllNames<E>(), Need::kOptional);
  ParseChoice(name, value);  // the reader accepted only a name of the table
}

// Every key of a recipe, its type, range and whether it is required. Defaults are in config.h.
void DescribeConfig(Config& c, Fields& f) {
  f.Str("recipe", &c.recipe, Need::kRequired);  // a family of recipes/registry.cc
  f.Int("seed", &c.seed, 0, kMaxInt, Need::kOptional);
  f.Section("model", [&] {
    ModelConfig& m = c.model;
    f.Int("num_layers", &m.num_layers, 1, 1024, Need::kRequired);
    f.Int("hidden_size", &m.hidden_size, 1, 1 << 20, Need::kRequired);
    f.Int("num_attention_heads", &m.num_attention_heads, 1, 4096, Need::kRequired);
    f.Int("ffn_hidden_size", &m.ffn_hidden_size, 0, 1 << 22, Need::kOptional);
    f.Int("seq_length", &m.seq_length, 1, 1 << 20, Need::kRequired);
    f.Int("max_position_embeddings", &m.max_position_embeddings, 0, 1 << 20, Need::kOptional);
    f.Int("vocab_size", &m.vocab_size, 0, 1 << 24, Need::kOptional);
    f.Int("make_vocab_size_divisible_by", &m.make_vocab_size_divisible_by, 1, 1 << 16,
          Need::kOptional);
    f.Float("hidden_dropout", &m.hidden_dropout, 0.0, 1.0);
    f.Float("attention_dropout", &m.attention_dropout, 0.0, 1.0);
    f.Float("layernorm_epsilon", &m.layernorm_epsilon, 0.0, 1.0);
    f.Float("init_std", &m.init_std, 0.0, 10.0);
    EnumChoice(f, "activation", &m.activation);
    EnumChoice(f, "norm", &m.norm);
    f.Bool("tie_embeddings", &m.tie_embeddings);
    f.Bool("binary_head", &m.binary_head);
    f.Int("num_tokentypes", &m.num_tokentypes, 1, 1024, Need::kOptional);
    f.Int("kv_channels", &m.kv_channels, 0, 1 << 16, Need::kOptional);
    f.Int("decoder_num_layers", &m.decoder_num_layers, 0, 1024, Need::kOptional);
    f.Int("decoder_seq_length", &m.decoder_seq_length, 0, 1 << 20, Need::kOptional);
    f.Int("relative_attention_num_buckets", &m.relative_attention_num_buckets, 2, 4096,
          Need::kOptional);
    f.Int("relative_attention_max_distance", &m.relative_attention_max_distance, 2, 1 << 20,
          Need::kOptional);
    f.Bool("pre_ln", &m.pre_ln);
    f.Bool("scale_embedding", &m.scale_embedding);
    EnumChoice(f, "position", &m.position);
    f.Float("rope_theta", &m.rope_theta, 1.0, 1e12);
    f.Int("num_query_groups", &m.num_query_groups, 0, 4096, Need::kOptional);
    f.Bool("bias", &m.bias);
    f.Bool("add_qkv_bias", &m.add_qkv_bias);
    f.Int("sliding_window", &m.sliding_window, 0, 1 << 24, Need::kOptional);
    f.Bool("parallel_residual", &m.parallel_residual);
    f.Bool("shared_input_norm", &m.shared_input_norm);
    f.Float("rotary_percent", &m.rotary_percent, 1e-6, 1.0);
    f.Bool("embed_layernorm", &m.embed_layernorm);
    EnumChoice(f, "hf_layout", &m.hf_layout);
    f.Int("output_chunk_tokens", &m.output_chunk_tokens, 0, 1 << 30, Need::kOptional);
    f.Int("num_experts", &m.num_experts, 0, 1 << 16, Need::kOptional);
    f.Int("moe_top_k", &m.moe_top_k, 1, 1 << 16, Need::kOptional);
    f.Int("moe_ffn_hidden_size", &m.moe_ffn_hidden_size, 0, 1 << 22, Need::kOptional);
    f.Int("moe_layer_freq", &m.moe_layer_freq, 1, 1024, Need::kOptional);
    f.IntList("moe_layer_pattern", &m.moe_layer_pattern, 0, 1);
    f.Int("moe_shared_experts", &m.moe_shared_experts, 0, 1024, Need::kOptional);
    f.Bool("moe_shared_expert_gate", &m.moe_shared_expert_gate);
    f.Bool("moe_router_pre_softmax", &m.moe_router_pre_softmax);
    f.Float("moe_aux_loss_coeff", &m.moe_aux_loss_coeff, 0.0, 1e6);
    f.Float("moe_z_loss_coeff", &m.moe_z_loss_coeff, 0.0, 1e6);
    f.Float("moe_capacity_factor", &m.moe_capacity_factor, 0.0, 1e6);
  });
  f.Section("parallel", [&] {
    ParallelConfig& p = c.parallel;
    f.Int("tensor_parallel_size", &p.tensor_parallel_size, 1, 1024, Need::kOptional);
    f.Float("comm_timeout_s", &p.comm_timeout_s, 1.0, 1e6);
    f.Float("grad_bucket_mb", &p.grad_bucket_mb, 0.001, 65536.0);
    f.Bool("distributed_optimizer", &p.distributed_optimizer);
    f.Bool("sequence_parallel", &p.sequence_parallel);
    f.Int("pipeline_parallel_size", &p.pipeline_parallel_size, 1, 1024, Need::kOptional);
    f.Int("virtual_pipeline_size", &p.virtual_pipeline_size, 1, 1024, Need::kOptional);
    EnumChoice(f, "pipeline_schedule", &p.pipeline_schedule);
    f.IntList("pipeline_layers", &p.pipeline_layers, 0, 1 << 20);
    f.Bool("account_for_embedding_in_pipeline_split", &p.account_for_embedding_in_pipeline_split);
    f.Bool("account_for_loss_in_pipeline_split", &p.account_for_loss_in_pipeline_split);
    f.Int("expert_parallel_size", &p.expert_parallel_size, 1, 1024, Need::kOptional);
  });
  f.Section("data", [&] {
    DataConfig& d = c.data;
    f.StrList("paths", &d.paths);
    f.FloatList("weights", &d.weights, 0.0, kInf);
    f.Str("split", &d.split, Need::kOptional);
    EnumChoice(f, "tokenizer", &d.tokenizer);
    f.Str("vocab_file", &d.vocab_file, Need::kOptional);
    f.Str("tokenizer_file", &d.tokenizer_file, Need::kOptional);
    f.Str("merges_file", &d.merges_file, Need::kOptional);
    f.Bool("lowercase", &d.lowercase);
    f.Int("prefetch", &d.prefetch, 0, 1024, Need::kOptional);
    f.Str("cache_dir", &d.cache_dir, Need::kOptional);
    f.StrList("added_tokens", &d.added_tokens);
    EnumChoice(f, "packing", &d.packing);
    f.Bool("dynamic_masking", &d.dynamic_masking);
    f.Bool("reset_position_ids", &d.reset_position_ids);
    f.Bool("reset_attention_mask", &d.reset_attention_mask);
    f.Bool("eod_mask_loss", &d.eod_mask_loss);
    f.Float("fim_rate", &d.fim_rate, 0.0, 1.0);
    f.Float("fim_spm_rate", &d.fim_spm_rate, 0.0, 1.0);
    f.StrList("fim_tokens", &d.fim_tokens);
    f.Str("fim_split_sample", &d.fim_split_sample, Need::kOptional);
    f.Float("fim_fragment_rate", &d.fim_fragment_rate, 0.0, 1.0);
    f.Float("mask_prob", &d.mask_prob, 0.0, 1.0);
    f.Int("max_predictions", &d.max_predictions, 0, 1 << 20, Need::kOptional);
    f.Float("short_seq_prob", &d.short_seq_prob, 0.0, 1.0);
    f.Bool("whole_word_masking", &d.whole_word_masking);
    f.Int("vocab_extra_ids", &d.vocab_extra_ids, 0, 1 << 16, Need::kOptional);
    f.Float("noise_density", &d.noise_density, 0.001, 0.999);
    f.Float("mean_noise_span_length", &d.mean_noise_span_length, 1.0, 1e6);
    f.Float("mask_ratio", &d.mask_ratio, 0.0, 1.0);
    // Above 0: at 0 every span would be empty and the span budget never filled (fairseq loops
    // forever there too); 0.1 still fills it within a few rounds of draws.
    f.Float("poisson_lambda", &d.poisson_lambda, 0.1, 100.0);
    f.Float("mask_random", &d.mask_random, 0.0, 1.0);
    f.Int("replace_length", &d.replace_length, -1, 1, Need::kOptional);
    f.Float("permute_sentences", &d.permute_sentences, 0.0, 1.0);
    f.Float("insert_ratio", &d.insert_ratio, 0.0, 1.0);
    f.Float("rotate_ratio", &d.rotate_ratio, 0.0, 1.0);
    f.StrList("languages", &d.languages);
    f.StrList("denoisers", &d.denoisers);
    f.FloatList("denoiser_weights", &d.denoiser_weights, 0.0, kInf);
  });
  f.Section("train", [&] {
    TrainConfig& t = c.train;
    EnumChoice(f, "device", &t.device);
    EnumChoice(f, "precision", &t.precision);
    f.Int("micro_batch_size", &t.micro_batch_size, 1, 1 << 20, Need::kOptional);
    f.Int("global_batch_size", &t.global_batch_size, 0, 1 << 30, Need::kOptional);
    f.Int("train_steps", &t.train_steps, 0, kMaxInt, Need::kOptional);
    f.Float("lr", &t.lr, 0.0, 10.0);
    f.Float("min_lr", &t.min_lr, 0.0, 10.0);
    f.Int("lr_warmup_steps", &t.lr_warmup_steps, 0, kMaxInt, Need::kOptional);
    EnumChoice(f, "lr_decay_style", &t.lr_decay_style);
    f.Int("lr_decay_steps", &t.lr_decay_steps, 0, kMaxInt, Need::kOptional);
    f.Float("weight_decay", &t.weight_decay, 0.0, 10.0);
    f.Float("adam_beta1", &t.adam_beta1, 0.0, 1.0);
    f.Float("adam_beta2", &t.adam_beta2, 0.0, 1.0);
    f.Float("adam_eps", &t.adam_eps, 0.0, 1.0);
    f.Float("clip_grad", &t.clip_grad, 0.0, 1e9);
    f.Int("eval_interval", &t.eval_interval, 0, kMaxInt, Need::kOptional);
    f.Int("eval_steps", &t.eval_steps, 0, kMaxInt, Need::kOptional);
    f.Int("threads", &t.threads, 0, 4096, Need::kOptional);
    f.Int("max_bad_steps", &t.max_bad_steps, 1, kMaxInt, Need::kOptional);
    f.Int("exit_interval", &t.exit_interval, 0, kMaxInt, Need::kOptional);
    EnumChoice(f, "recompute", &t.recompute);
    f.Int("recompute_num_layers", &t.recompute_num_layers, 0, kMaxInt, Need::kOptional);
  });
  f.Section("checkpoint", [&] {
    CheckpointConfig& k = c.checkpoint;
    f.Str("dir", &k.dir, Need::kOptional);
    f.Int("save_interval", &k.save_interval, 0, kMaxInt, Need::kOptional);
    f.Int("keep_last", &k.keep_last, 1, 1 << 20, Need::kOptional);
    f.Bool("resume", &k.resume);
    f.Bool("overwrite", &k.overwrite);
    f.Bool("save_optimizer", &k.save_optimizer);
    f.Bool("async_save", &k.async_save);
  });
  f.Section("logging", [&] {
    LoggingConfig& l = c.logging;
    f.Str("run_dir", &l.run_dir, Need::kOptional);
    f.Int("interval", &l.interval, 1, kMaxInt, Need::kOptional);
    f.Bool("all_ranks", &l.all_ranks);
    f.Bool("tensorboard", &l.tensorboard);
    EnumChoice(f, "level", &l.level);
  });
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

// Binds a located tree to a Config, collecting every error.
class Reader : public Fields {
 public:
  Reader(const Node& root, Config& config) : config_(config) {
    frames_.push_back(Frame{&root, "", root.loc, {}});
  }

  void Section(const char* key, const std::function<void()>& body) override {
    const Node* n = Lookup(key);
    Frame frame{nullptr, Path(key), Top().loc, {}};
    if (n != nullptr) {
      frame.loc = n->loc;
      if (n->kind == Node::Kind::kMap) {
        frame.map = n;
      } else if (n->kind != Node::Kind::kNull) {
        Error(n->loc, Path(key),
              absl::StrCat("expected a mapping of keys, got ", n->KindName(), " '", n->scalar,
                           "'. HINT: write `", key,
                           ":` on its own line and its keys indented "
                           "below it."));
      }
    }
    frames_.push_back(std::move(frame));
    body();
    CheckUnknownKeys();
    frames_.pop_back();
  }

  void Int(const char* key, int64_t* v, int64_t lo, int64_t hi, Need need) override {
    const Node* n = Scalar(key, need, "an integer");
    if (n == nullptr) return;
    int64_t value;
    double as_double;
    if (!absl::SimpleAtoi(n->scalar, &value)) {
      if (absl::SimpleAtod(n->scalar, &as_double)) {
        Error(n->loc, Path(key),
              absl::StrCat("expected an integer, got '", n->scalar,
                           "'. HINT: write a whole number."));
      } else {
        Error(n->loc, Path(key), absl::StrCat("expected an integer, got '", n->scalar, "'."));
      }
      return;
    }
    if (value < lo || value > hi) {
      Error(n->loc, Path(key),
            absl::StrCat("value ", value, " is out of range [", lo, ", ",
                         hi == kMaxInt ? "inf" : absl::StrCat(hi), "]."));
      return;
    }
    *v = value;
  }

  void Float(const char* key, double* v, double lo, double hi) override {
    const Node* n = Scalar(key, Need::kOptional, "a number");
    if (n == nullptr) return;
    double value;
    if (!ParseFloat(n->scalar, &value)) {
      Error(n->loc, Path(key), absl::StrCat("expected a number, got '", n->scalar, "'."));
      return;
    }
    if (!(value >= lo && value <= hi)) {
      Error(n->loc, Path(key),
            absl::StrCat("value ", n->scalar, " is out of range [", ShortestDouble(lo), ", ",
                         ShortestDouble(hi), "]."));
      return;
    }
    *v = value;
  }

  void Bool(const char* key, bool* v) override {
    const Node* n = Scalar(key, Need::kOptional, "true or false");
    if (n == nullptr) return;
    std::string s = absl::AsciiStrToLower(n->scalar);
    if (s == "true" || s == "yes" || s == "on") {
      *v = true;
    } else if (s == "false" || s == "no" || s == "off") {
      *v = false;
    } else {
      Error(n->loc, Path(key), absl::StrCat("expected true or false, got '", n->scalar, "'."));
    }
  }

  void Str(const char* key, std::string* v, Need need) override {
    const Node* n = Scalar(key, need, "a string");
    if (n != nullptr) *v = n->scalar;
  }

  void Choice(const char* key, std::string* v, const std::vector<std::string>& choices,
              Need need) override {
    const Node* n = Scalar(key, need, absl::StrCat("one of ", absl::StrJoin(choices, "|")));
    if (n == nullptr) return;
    if (std::find(choices.begin(), choices.end(), n->scalar) == choices.end()) {
      std::string guess = ClosestMatch(n->scalar, choices);
      Error(n->loc, Path(key),
            absl::StrCat("'", n->scalar, "' is not one of ", absl::StrJoin(choices, ", "), ".",
                         guess.empty() ? "" : absl::StrCat(" HINT: did you mean '", guess, "'?")));
      return;
    }
    *v = n->scalar;
  }

  void StrList(const char* key, std::vector<std::string>* v) override {
    const Node* n = List(key);
    if (n == nullptr) return;
    std::vector<std::string> out;
    for (const Node& item : n->items) {
      if (item.kind != Node::Kind::kScalar) {
        Error(item.loc, Path(key),
              absl::StrCat("list items must be strings, got ", item.KindName(), "."));
        return;
      }
      out.push_back(item.scalar);
    }
    *v = std::move(out);
  }

  void FloatList(const char* key, std::vector<double>* v, double lo, double hi) override {
    NumberList(
        key, v,
        [&](const std::string& text, double* value) {
          return ParseFloat(text, value) && *value >= lo && *value <= hi;
        },
        absl::StrCat("numbers in [", ShortestDouble(lo), ", ", ShortestDouble(hi), "]"));
  }

  void IntList(const char* key, std::vector<int64_t>* v, int64_t lo, int64_t hi) override {
    NumberList(
        key, v,
        [&](const std::string& text, int64_t* value) {
          return absl::SimpleAtoi(text, value) && *value >= lo && *value <= hi;
        },
        absl::StrCat("whole numbers in [", lo, ", ", hi, "]"));
  }

  // A list whose every item `parse` accepts; else an error naming the item and what was expected.
  template <typename T, typename Parse>
  void NumberList(const char* key, std::vector<T>* v, Parse parse, const std::string& expected) {
    const Node* n = List(key);
    if (n == nullptr) return;
    std::vector<T> out;
    for (const Node& item : n->items) {
      T value;
      if (item.kind != Node::Kind::kScalar || !parse(item.scalar, &value)) {
        Error(item.loc, Path(key),
              absl::StrCat("list items must be ", expected, ", got '", item.scalar, "'."));
        return;
      }
      out.push_back(value);
    }
    *v = std::move(out);
  }

  void Finish() { CheckUnknownKeys(); }

  absl::Status status() const {
    if (errors_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
  }

 private:
  struct Frame {
    const Node* map;  // null when the section is absent
    std::string path;
    Location loc;
    std::vector<std::string> known;
  };
  Frame& Top() { return frames_.back(); }

  std::string Path(const char* key) {
    return Top().path.empty() ? std::string(key) : absl::StrCat(Top().path, ".", key);
  }

  const Node* Lookup(const char* key) {
    Top().known.push_back(key);
    return Top().map == nullptr ? nullptr : Top().map->Find(key);
  }

  void Record(const char* key) {
    for (const Node::Entry& e : Top().map->entries)
      if (e.key == key) config_.origin[Path(key)] = e.key_loc.ToString();
  }

  // The scalar node of `key`, or null when absent (reported if required) or of the wrong kind.
  const Node* Scalar(const char* key, Need need, const std::string& expected) {
    const Node* n = Lookup(key);
    if (n == nullptr) {
      if (need == Need::kRequired) {
        std::string section =
            Top().path.empty() ? "at the top level" : absl::StrCat("under `", Top().path, ":`");
        Error(Top().loc, Path(key),
              absl::StrCat("missing required key. HINT: add `", key, ": <", expected, ">` ",
                           section, ", or pass --set ", Path(key), "=..."));
      }
      return nullptr;
    }
    if (n->kind != Node::Kind::kScalar) {
      Error(n->loc, Path(key), absl::StrCat("expected ", expected, ", got ", n->KindName(), "."));
      return nullptr;
    }
    Record(key);
    return n;
  }

  const Node* List(const char* key) {
    const Node* n = Lookup(key);
    if (n == nullptr) return nullptr;
    if (n->kind == Node::Kind::kScalar) {  // a single value stands for a list of one
      static thread_local Node wrapped;
      wrapped = Node{};
      wrapped.kind = Node::Kind::kSequence;
      wrapped.loc = n->loc;
      wrapped.items.push_back(*n);
      Record(key);
      return &wrapped;
    }
    if (n->kind != Node::Kind::kSequence) {
      Error(n->loc, Path(key),
            absl::StrCat("expected a list, got ", n->KindName(),
                         ". HINT: write [a, b] or one '- item' per line."));
      return nullptr;
    }
    Record(key);
    return n;
  }

  static bool ParseFloat(const std::string& s, double* value) {
    return absl::SimpleAtod(s, value) && std::isfinite(*value);
  }

  void CheckUnknownKeys() {
    const Frame& f = Top();
    if (f.map == nullptr) return;
    for (const Node::Entry& e : f.map->entries) {
      if (std::find(f.known.begin(), f.known.end(), e.key) != f.known.end()) continue;
      std::string path = f.path.empty() ? e.key : absl::StrCat(f.path, ".", e.key);
      std::string guess = ClosestMatch(e.key, f.known);
      Error(e.key_loc, path,
            absl::StrCat("unknown key.",
                         guess.empty() ? "" : absl::StrCat(" HINT: did you mean '", guess, "'?"),
                         " Valid keys here: ", absl::StrJoin(f.known, ", "), "."));
    }
  }

  void Error(const Location& loc, const std::string& path, const std::string& message) {
    errors_.push_back(absl::StrCat(loc.ToString(), ": ", path, ": ", message));
  }

  Config& config_;
  std::vector<Frame> frames_;
  std::vector<std::string> errors_;
};

// Prints the effective config as YAML with the origin of every value (the keys `shown` accepts).
class Printer : public Fields {
 public:
  Printer(const Config& config, const KeyFilter& shown) : config_(config), shown_(shown) {}

  void Section(const char* key, const std::function<void()>& body) override {
    Line(key, "", false);
    path_.push_back(key);
    body();
    path_.pop_back();
  }
  void Int(const char* key, int64_t* v, int64_t, int64_t, Need) override {
    Line(key, absl::StrCat(*v), true);
  }
  void Float(const char* key, double* v, double, double) override {
    Line(key, ShortestDouble(*v), true);
  }
  void Bool(const char* key, bool* v) override { Line(key, *v ? "true" : "false", true); }
  void Str(const char* key, std::string* v, Need) override { Line(key, Quote(*v), true); }
  void Choice(const char* key, std::string* v, const std::vector<std::string>&, Need) override {
    Line(key, *v, true);
  }
  void StrList(const char* key, std::vector<std::string>* v) override {
    std::vector<std::string> q;
    for (const auto& s : *v) q.push_back(Quote(s));
    Line(key, absl::StrCat("[", absl::StrJoin(q, ", "), "]"), true);
  }
  void FloatList(const char* key, std::vector<double>* v, double, double) override {
    std::vector<std::string> q;
    for (double d : *v) q.push_back(ShortestDouble(d));
    Line(key, absl::StrCat("[", absl::StrJoin(q, ", "), "]"), true);
  }
  void IntList(const char* key, std::vector<int64_t>* v, int64_t, int64_t) override {
    Line(key, absl::StrCat("[", absl::StrJoin(*v, ", "), "]"), true);
  }
  std::string text() const { return out_; }
  // Every value printed, {key path, text}, in order.
  const std::vector<std::pair<std::string, std::string>>& values() const { return values_; }

 private:
  void Line(const char* key, const std::string& value, bool is_value) {
    std::string indent(2 * path_.size(), ' ');
    std::string text = absl::StrCat(indent, key, ":", value.empty() ? "" : " ", value);
    if (is_value) {
      std::string full = path_.empty() ? key : absl::StrCat(absl::StrJoin(path_, "."), ".", key);
      if (shown_ && !shown_(full)) return;
      values_.emplace_back(full, value);
      auto it = config_.origin.find(full);
      std::string from = it == config_.origin.end() ? "default" : it->second;
      text = absl::StrFormat("%-44s # %s", text, from);
    }
    absl::StrAppend(&out_, text, "\n");
  }
  const Config& config_;
  KeyFilter shown_;
  std::vector<std::string> path_;
  std::string out_;
  std::vector<std::pair<std::string, std::string>> values_;
};

// The printed value of every key, {key path, text}.
std::vector<std::pair<std::string, std::string>> ValuesOf(const Config& config) {
  Config copy = config;  // the walk takes mutable pointers; printing changes nothing
  Printer printer(config, nullptr);
  DescribeConfig(copy, printer);
  return printer.values();
}

// Checks that need no world size.
absl::Status ValidateStatic(const Config& c) {
  std::vector<std::string> errors;
  auto fail = [&](const std::string& key, const std::string& msg) {
    errors.push_back(absl::StrCat(c.Where(key), key, ": ", msg));
  };
  const ModelConfig& m = c.model;
  if (m.kv_channels == 0 && m.hidden_size % m.num_attention_heads != 0) {
    fail("model.hidden_size",
         absl::StrFormat(
             "%d is not divisible by model.num_attention_heads = %d. HINT: the head size is "
             "hidden_size / num_attention_heads and must be whole (or set model.kv_channels).",
             m.hidden_size, m.num_attention_heads));
  }
  int64_t tp = c.parallel.tensor_parallel_size;
  if (m.num_attention_heads % tp != 0) {
    fail("model.num_attention_heads",
         absl::StrFormat("%d heads cannot be split across parallel.tensor_parallel_size = %d "
                         "ranks. HINT: pick a "
                         "TP size that divides the number of heads.",
                         m.num_attention_heads, tp));
  }
  if (m.num_query_groups > 0) {
    if (m.num_attention_heads % m.num_query_groups != 0) {
      fail("model.num_query_groups",
           absl::StrFormat("%d key/value groups do not divide model.num_attention_heads = %d. "
                           "HINT: every group serves the same number of query heads (LLaMA-2 "
                           "70B: 64 heads, 8 groups).",
                           m.num_query_groups, m.num_attention_heads));
    } else if (m.num_query_groups % tp != 0 && m.num_query_groups != 1) {
      fail("model.num_query_groups",
           absl::StrFormat("%d key/value groups cannot be split across "
                           "parallel.tensor_parallel_size = %d ranks: each rank holds whole "
                           "groups (one group, multi-query attention, is copied to every rank). "
                           "HINT: pick a TP size that divides the number of groups.",
                           m.num_query_groups, tp));
    }
  }
  if (c.parallel.sequence_parallel && m.seq_length % tp != 0) {
    fail("parallel.sequence_parallel",
         absl::StrFormat("model.seq_length = %d does not split over parallel.tensor_parallel_size "
                         "= %d ranks. HINT: make the sequence length a multiple of the TP size, "
                         "or turn sequence parallelism off.",
                         m.seq_length, tp));
  }
  if (c.train.recompute_num_layers > 0 && c.train.recompute != Recompute::kFull) {
    fail("train.recompute_num_layers",
         absl::StrFormat("%d, but train.recompute is '%s': the number of layers applies to full "
                         "recomputation only. HINT: set train.recompute: full, or drop "
                         "train.recompute_num_layers.",
                         c.train.recompute_num_layers, Name(c.train.recompute)));
  }
  {  // full recomputation of the first N layers of each stack: N beyond the deepest is a mistake
    const int64_t deepest = std::max(m.num_layers, DecoderLayers(m));
    if (c.train.recompute_num_layers > deepest) {
      fail("train.recompute_num_layers",
           absl::StrFormat("%d, but the deepest stack has %d layers. HINT: at most %d, or 0 for "
                           "all of them.",
                           c.train.recompute_num_layers, deepest, deepest));
    }
  }
  if (m.position == Position::kRope && HeadSize(m) % 2 != 0) {
    fail("model.position", "rope rotates pairs of head dimensions: the head size must be even.");
  }
  if (m.position == Position::kRope && m.rotary_percent < 1.0) {
    const double dims = static_cast<double>(HeadSize(m)) * m.rotary_percent;
    if (dims != std::floor(dims) || static_cast<int64_t>(dims) % 2 != 0 || dims < 2) {
      fail("model.rotary_percent",
           absl::StrFormat("%g of the head size %d is %g dimensions; RoPE needs an even whole "
                           "number of them. HINT: Pythia's 0.25 of 64 is 16.",
                           m.rotary_percent, HeadSize(m), dims));
    }
  }
  const int64_t ep = c.parallel.expert_parallel_size;
  if (ep > 1 && m.num_experts == 0) {
    fail("parallel.expert_parallel_size",
         absl::StrFormat("%d, but the model has no experts (model.num_experts is 0). HINT: expert "
                         "parallelism splits the experts of MoE layers; leave it at 1 for a dense "
                         "model.",
                         ep));
  } else if (ep > 1 && m.num_experts % ep != 0) {
    fail("parallel.expert_parallel_size",
         absl::StrFormat("%d does not divide model.num_experts = %d: each EP rank holds the same "
                         "number of whole experts. HINT: pick an EP size that divides the "
                         "experts (8 experts: 2, 4 or 8).",
                         ep, m.num_experts));
  }
  if (m.num_experts > 0) {
    if (m.moe_top_k > m.num_experts) {
      fail("model.moe_top_k",
           absl::StrFormat("%d experts per token, but model.num_experts is %d. HINT: top-k is at "
                           "most the number of experts (Mixtral: 2 of 8).",
                           m.moe_top_k, m.num_experts));
    }
    if (MoeFfnHiddenSize(m) % tp != 0) {
      fail(m.moe_ffn_hidden_size > 0 ? "model.moe_ffn_hidden_size" : "model.ffn_hidden_size",
           absl::StrFormat("the experts' FFN width %d is not divisible by "
                           "parallel.tensor_parallel_size = %d: each TP rank holds a slice of "
                           "every expert. HINT: pick a TP size that divides it.",
                           MoeFfnHiddenSize(m), tp));
    }
    if (!m.moe_layer_pattern.empty() &&
        static_cast<int64_t>(m.moe_layer_pattern.size()) != m.num_layers) {
      fail("model.moe_layer_pattern",
           absl::StrFormat("%d entries for model.num_layers = %d. HINT: one 1 (MoE) or 0 (dense) "
                           "per layer.",
                           m.moe_layer_pattern.size(), m.num_layers));
    } else if (MoeLayerCount(m) == 0) {
      fail("model.moe_layer_pattern",
           "no layer is an MoE layer, but model.num_experts is set. HINT: put a 1 in the pattern, "
           "or set model.num_experts: 0 for a dense model.");
    }
    if (m.moe_shared_expert_gate && m.moe_shared_experts == 0) {
      fail("model.moe_shared_expert_gate",
           "a gate for shared experts, but model.moe_shared_experts is 0. HINT: set "
           "model.moe_shared_experts (Qwen1.5-MoE-A2.7B: 4), or drop the gate.");
    }
  }
  const int64_t ffn = FfnHiddenSize(m);
  if (ffn % tp != 0) {
    fail(m.ffn_hidden_size > 0 ? "model.ffn_hidden_size" : "model.hidden_size",
         absl::StrFormat("the FFN width %d is not divisible by parallel.tensor_parallel_size = "
                         "%d. HINT: pick a TP size that divides it.",
                         ffn, tp));
  }
  if (m.max_position_embeddings > 0 && m.max_position_embeddings < m.seq_length) {
    fail("model.max_position_embeddings",
         absl::StrFormat("%d is smaller than model.seq_length = %d.", m.max_position_embeddings,
                         m.seq_length));
  }
  if (!c.data.weights.empty() &&
      std::all_of(c.data.weights.begin(), c.data.weights.end(), [](double w) { return w == 0; })) {
    fail("data.weights",
         "every weight is 0: nothing would be sampled. HINT: give at least one "
         "dataset a positive weight.");
  }
  if (!c.data.weights.empty() && c.data.weights.size() != c.data.paths.size()) {
    fail("data.weights", absl::StrFormat("%d weights for %d data.paths. HINT: give one weight "
                                         "per path, or none for equal weights.",
                                         c.data.weights.size(), c.data.paths.size()));
  }
  {
    std::vector<std::string> parts = absl::StrSplit(c.data.split, ',');
    double sum = 0;
    bool ok = parts.size() == 3;
    for (const std::string& p : parts) {
      double v;
      ok = ok && absl::SimpleAtod(p, &v) && v >= 0;
      if (ok) sum += v;
    }
    if (!ok || sum <= 0) {
      fail("data.split", absl::StrCat("'", c.data.split,
                                      "' is not three non-negative "
                                      "proportions train,valid,test. HINT: e.g. \"949,50,1\"."));
    }
  }
  if (c.train.min_lr > c.train.lr) {
    fail("train.min_lr",
         absl::StrFormat("%s is above train.lr = %s.", ShortestDouble(c.train.min_lr),
                         ShortestDouble(c.train.lr)));
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

absl::StatusOr<Config> Bind(const Node& root, const std::string& source) {
  Config config;
  config.source_file = source;
  Reader reader(root, config);
  DescribeConfig(config, reader);
  reader.Finish();
  BRAID_RETURN_IF_ERROR(reader.status());
  // data.tokenizer_file (Hugging Face's word for a tokenizer.json) is data.vocab_file by another
  // name; set, it wins over a recipe's vocab_file (`--set data.tokenizer=huggingface --set
  // data.tokenizer_file=tokenizer.json` on a recipe made for another tokenizer).
  DataConfig& d = config.data;
  if (!d.tokenizer_file.empty()) {
    d.vocab_file = d.tokenizer_file;
    d.tokenizer_file.clear();
  }
  BRAID_RETURN_IF_ERROR(ValidateStatic(config));
  return config;
}

absl::StatusOr<Config> Finish(absl::StatusOr<Node> root, const std::string& source,
                              const std::vector<std::string>& overrides) {
  BRAID_RETURN_IF_ERROR(root.status());
  for (const std::string& o : overrides) BRAID_RETURN_IF_ERROR(ApplyOverride(*root, o));
  return Bind(*root, source);
}

}  // namespace

std::string Config::Where(const std::string& key_path) const {
  auto it = origin.find(key_path);
  return it == origin.end() ? "" : absl::StrCat(it->second, ": ");
}

absl::StatusOr<Config> LoadConfig(const std::string& path,
                                  const std::vector<std::string>& overrides) {
  return Finish(config_internal::LoadWithIncludes(path), path, overrides);
}

absl::StatusOr<Config> LoadConfigFromString(const std::string& yaml_text, const std::string& name,
                                            const std::vector<std::string>& overrides) {
  return Finish(config_internal::LoadWithIncludesFromString(yaml_text, name), name, overrides);
}

int64_t FfnHiddenSize(const ModelConfig& m) {
  return m.ffn_hidden_size > 0 ? m.ffn_hidden_size : 4 * m.hidden_size;
}

int64_t HeadSize(const ModelConfig& m) {
  return m.kv_channels > 0 ? m.kv_channels : m.hidden_size / m.num_attention_heads;
}

int64_t QueryGroups(const ModelConfig& m) {
  return m.num_query_groups > 0 ? m.num_query_groups : m.num_attention_heads;
}

int64_t DecoderLayers(const ModelConfig& m) {
  return m.decoder_num_layers > 0 ? m.decoder_num_layers : m.num_layers;
}

int64_t MoeFfnHiddenSize(const ModelConfig& m) {
  return m.moe_ffn_hidden_size > 0 ? m.moe_ffn_hidden_size : FfnHiddenSize(m);
}

bool IsMoeLayer(const ModelConfig& m, int64_t i) {
  if (m.num_experts == 0) return false;
  if (!m.moe_layer_pattern.empty()) {
    return i < static_cast<int64_t>(m.moe_layer_pattern.size()) && m.moe_layer_pattern[i] == 1;
  }
  return i % m.moe_layer_freq == 0;
}

int64_t MoeLayerCount(const ModelConfig& m) {
  int64_t n = 0;
  for (int64_t i = 0; i < m.num_layers; ++i) n += IsMoeLayer(m, i) ? 1 : 0;
  return n;
}

void DropPipeline(Config* c) {
  c->parallel.pipeline_parallel_size = 1;
  c->parallel.virtual_pipeline_size = 1;
  c->parallel.pipeline_layers.clear();
  c->parallel.expert_parallel_size = 1;
}

Config ResolvedConfig(const Config& config, const DerivedSizes& sizes) {
  Config c = config;
  auto set = [&c](const char* key, int64_t* field, int64_t value) {
    if (value <= 0 || *field == value) return;
    *field = value;
    c.origin[key] = "derived";
  };
  set("model.vocab_size", &c.model.vocab_size, sizes.vocab_size);
  set("model.ffn_hidden_size", &c.model.ffn_hidden_size, sizes.ffn_hidden_size);
  set("model.max_position_embeddings", &c.model.max_position_embeddings,
      sizes.max_position_embeddings);
  set("train.global_batch_size", &c.train.global_batch_size, sizes.global_batch_size);
  return c;
}

int64_t PaddedVocabSize(int64_t vocab_size, int64_t divisible_by, int64_t tp) {
  int64_t multiple = divisible_by * tp;
  return (vocab_size + multiple - 1) / multiple * multiple;
}

absl::StatusOr<DerivedSizes> DeriveSizes(const Config& c, int64_t world_size, int64_t vocab_size) {
  DerivedSizes d;
  d.world_size = world_size;
  d.tp = c.parallel.tensor_parallel_size;
  d.pp = c.parallel.pipeline_parallel_size;
  if (world_size % d.tp != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%sparallel.tensor_parallel_size: %d does not divide the world size %d. HINT: launch a "
        "multiple of %d ranks, or change the TP size.",
        c.Where("parallel.tensor_parallel_size"), d.tp, world_size, d.tp));
  }
  if (world_size % (d.tp * d.pp) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%sparallel.pipeline_parallel_size: TP %d x PP %d = %d does not divide the world size %d. "
        "HINT: launch a multiple of %d ranks (world = TP x DP x PP), or change the PP size.",
        c.Where("parallel.pipeline_parallel_size"), d.tp, d.pp, d.tp * d.pp, world_size,
        d.tp * d.pp));
  }
  if (c.model.num_query_groups > 1 && c.model.num_query_groups % d.tp != 0) {
    // Also reached by convert_checkpoint reshard, which sets the TP size after loading.
    return absl::InvalidArgumentError(absl::StrFormat(
        "%smodel.num_query_groups: %d key/value groups cannot be split across a TP size of %d: "
        "each rank holds whole groups (one group, multi-query attention, is copied to every "
        "rank). HINT: pick a TP size that divides the number of groups.",
        c.Where("model.num_query_groups"), c.model.num_query_groups, d.tp));
  }
  d.dp = world_size / (d.tp * d.pp);
  d.ep = c.parallel.expert_parallel_size;
  if (d.dp % d.ep != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%sparallel.expert_parallel_size: %d does not divide the data-parallel size %d (world %d "
        "= TP %d x DP %d x PP %d): the EP ranks are taken from DP. HINT: launch a multiple of %d "
        "ranks, or pick an EP size that divides %d.",
        c.Where("parallel.expert_parallel_size"), d.ep, d.dp, world_size, d.tp, d.dp, d.pp,
        d.tp * d.pp * d.ep, d.dp));
  }
  int64_t micro = c.train.micro_batch_size;
  d.global_batch_size = c.train.global_batch_size > 0 ? c.train.global_batch_size : micro * d.dp;
  if (d.global_batch_size % (micro * d.dp) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%strain.global_batch_size: %d is not a multiple of micro_batch_size x DP = %d x %d. "
        "HINT: the global batch is micro_batch_size x accumulation_steps x DP; with DP = %d "
        "try %d or %d.",
        c.Where("train.global_batch_size"), d.global_batch_size, micro, d.dp, d.dp,
        d.global_batch_size / (micro * d.dp) * micro * d.dp,
        (d.global_batch_size / (micro * d.dp) + 1) * micro * d.dp));
  }
  d.accumulation_steps = d.global_batch_size / (micro * d.dp);
  d.ffn_hidden_size = FfnHiddenSize(c.model);
  d.head_size = HeadSize(c.model);
  d.num_query_groups = QueryGroups(c.model);
  d.decoder_num_layers = DecoderLayers(c.model);
  d.max_position_embeddings =
      c.model.max_position_embeddings > 0 ? c.model.max_position_embeddings : c.model.seq_length;
  const int64_t vocab = vocab_size > 0 ? vocab_size : c.model.vocab_size;
  d.vocab_size = vocab;
  if (vocab > 0)
    d.padded_vocab_size = PaddedVocabSize(vocab, c.model.make_vocab_size_divisible_by, d.tp);
  return d;
}

std::vector<std::string> ConfigKeyPaths() {
  std::vector<std::string> out;
  for (const auto& [key, value] : ValuesOf(Config{})) out.push_back(key);
  return out;
}

std::vector<std::string> KeysAwayFromDefault(const Config& config) {
  const auto values = ValuesOf(config), defaults = ValuesOf(Config{});
  std::vector<std::string> out;
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].second != defaults[i].second) out.push_back(values[i].first);
  return out;
}

std::string ConfigToYaml(const Config& config, const DerivedSizes* derived,
                         const KeyFilter& shown) {
  Config copy = config;  // the walk takes mutable pointers; printing changes nothing
  Printer printer(config, shown);
  DescribeConfig(copy, printer);
  std::string out =
      absl::StrCat("# effective config of ", config.source_file, "\n", printer.text());
  if (derived != nullptr) {
    absl::StrAppendFormat(&out,
                          "# derived: world_size=%d tp=%d dp=%d accumulation_steps=%d "
                          "global_batch_size=%d ffn_hidden_size=%d max_position_embeddings=%d "
                          "padded_vocab_size=%s\n",
                          derived->world_size, derived->tp, derived->dp,
                          derived->accumulation_steps, derived->global_batch_size,
                          derived->ffn_hidden_size, derived->max_position_embeddings,
                          derived->padded_vocab_size > 0 ? absl::StrCat(derived->padded_vocab_size)
                                                         : std::string("(from the tokenizer)"));
  }
  return out;
}

}  // namespace braid
