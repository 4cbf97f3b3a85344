// Typed, validated run configuration: YAML recipe files (with `include:` of a base file and
// `--set section.key=value` overrides) -> Config. Every error names file:line:column and the key
// path, and carries a hint. The set of keys, their types, ranges and defaults is written once, in
// DescribeConfig() in config.cc; parsing, printing and suggestions all walk that one description.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/choices.h"

namespace braid {

struct ModelConfig {
  int64_t num_layers = 0;                      // required
  int64_t hidden_size = 0;                     // required
  int64_t num_attention_heads = 0;             // required
  int64_t ffn_hidden_size = 0;                 // 0 -> 4 * hidden_size
  int64_t seq_length = 0;                      // required
  int64_t max_position_embeddings = 0;         // 0 -> seq_length
  int64_t vocab_size = 0;                      // 0 -> taken from the tokenizer
  int64_t make_vocab_size_divisible_by = 128;  // padded to a multiple of this x TP
  double hidden_dropout = 0.1;
  double attention_dropout = 0.1;
  double layernorm_epsilon = 1e-5;
  double init_std = 0.02;
  Activation activation = Activation::kGeluTanh;  // core/choices.h
  NormType norm = NormType::kLayerNorm;
  bool tie_embeddings = true;
  bool binary_head = true;     // BERT: pooler + sentence-order prediction head (pair samples)
  int64_t num_tokentypes = 2;  // BERT segment ids
  // Encoder-decoder (T5): model.num_layers and seq_length are the encoder's.
  int64_t kv_channels = 0;         // attention head size; 0 -> hidden_size / heads
  int64_t decoder_num_layers = 0;  // 0 -> num_layers
  int64_t decoder_seq_length = 0;  // 0 -> the family's own (T5: the targets' length)
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  // BART / mBART: pre-LN layers with a final norm per stack (mBART) or post-LN (BART); the
  // embeddings scaled by sqrt(hidden_size) (mBART; Hugging Face's scale_embedding).
  bool pre_ln = false;
  bool scale_embedding = false;
  // Decoder options (GPT family: LLaMA, Mistral, Falcon, BLOOM; framework/nn/blocks.h):
  Position position = Position::kLearned;
  double rope_theta = 10000.0;   // RoPE base
  int64_t num_query_groups = 0;  // key/value heads; 0 -> num_attention_heads (no grouping)
  bool bias = true;              // biases in every linear layer
  // Biases on the query, key and value projections only (Qwen2, Qwen2-MoE; Megatron-LM's
  // --add-qkv-bias), with model.bias false.
  bool add_qkv_bias = false;
  int64_t sliding_window = 0;      // attend to the last this-many positions; 0 -> all
  bool parallel_residual = false;  // x + attn(ln1(x)) + mlp(ln2(x)) (GPT-J, Falcon, NeoX)
  // With parallel_residual: one norm read by both branches, x + attn(ln(x)) + mlp(ln(x)) (GPT-J,
  // Falcon-7B's single input_layernorm).
  bool shared_input_norm = false;
  // RoPE on this share of each head's dimensions, the rest passed through (Megatron-LM's
  // --rotary-percent, GPT-NeoX's rotary_pct: Pythia 0.25).
  double rotary_percent = 1.0;
  bool embed_layernorm = false;  // a LayerNorm after the word embeddings (BLOOM)
  HfLayoutChoice hf_layout = HfLayoutChoice::kAuto;  // the Hugging Face layout of export-hf
  // The output projection and the loss over chunks of this many tokens, so the [tokens,
  // vocabulary / TP] logits are never held whole (every recipe; BERT: the masked rows); 0 -> off.
  int64_t output_chunk_tokens = 0;
  // Mixture of experts (GPT family; docs/moe.md, framework/nn/moe.h): the MLP of the MoE layers
  // is num_experts SwiGLU (any model.activation) experts of moe_ffn_hidden_size behind a linear
  // router with fp32 logits; each token goes to its moe_top_k experts. Layer i is an MoE layer
  // when i % moe_layer_freq == 0, or where moe_layer_pattern (one 1/0 per layer) says 1.
  int64_t num_experts = 0;  // 0: dense MLPs
  int64_t moe_top_k = 2;
  int64_t moe_ffn_hidden_size = 0;  // 0 -> ffn_hidden_size
  int64_t moe_layer_freq = 1;
  std::vector<int64_t> moe_layer_pattern;
  // Experts every token passes through besides its routed ones (Qwen-MoE, DeepSeek-MoE): one MLP
  // of moe_shared_experts x moe_ffn_hidden_size, scaled by sigmoid(a linear gate) when
  // moe_shared_expert_gate (Qwen2-MoE's shared_expert_gate).
  int64_t moe_shared_experts = 0;
  bool moe_shared_expert_gate = false;
  // false: softmax over the top-k logits (Mixtral; equal to the top-k of the softmax renormalised,
  // Qwen2-MoE's norm_topk_prob: true); true: the top-k of the softmax over all experts, not
  // renormalised (Megatron-LM's --moe-router-pre-softmax; Qwen2-MoE's norm_topk_prob: false).
  bool moe_router_pre_softmax = false;
  double moe_aux_loss_coeff = 0.0;  // Switch load-balancing loss per MoE layer (1 at balance)
  double moe_z_loss_coeff = 0.0;    // router z-loss per MoE layer: mean logsumexp(logits)^2
  // > 0: each expert takes at most ceil(tokens x top_k / experts x factor) tokens of a
  // micro-batch, the first in token order; the others pass through the residual only. 0: dropless.
  double moe_capacity_factor = 0.0;
};

struct ParallelConfig {
  int64_t tensor_parallel_size = 1;
  double comm_timeout_s = 600;  // a collective waiting longer aborts the job
  double grad_bucket_mb = 25;   // DP gradient bucket size (MB of fp32 gradients)
  // ZeRO-1: gradients reduce-scattered, AdamW moments and update on this DP rank's shard of each
  // bucket only, the updated parameters all-gathered (parallel/grad_reducer.h).
  bool distributed_optimizer = false;
  // Megatron's sequence parallelism: the residual stream split along the sequence within the TP
  // group between the GEMMs (norms, dropout, residual adds on s/TP positions), all-gather before
  // and reduce-scatter after the TP GEMMs instead of all-reduces (parallel/mappings.h).
  bool sequence_parallel = false;
  // Pipeline parallelism (docs/pipeline.md): the layers divided over PP stages, world = TP x DP x
  // PP. pipeline_layers: the layers of each (virtual) stage in order, PP x virtual_pipeline_size
  // entries; empty: even, with the embedding and the loss counted as one layer each where the
  // account_for_* flags ask (Megatron's options). virtual_pipeline_size > 1: each rank holds that
  // many chunks of layers, round robin, run by the interleaved 1F1B schedule.
  int64_t pipeline_parallel_size = 1;
  int64_t virtual_pipeline_size = 1;
  PipelineSchedule pipeline_schedule = PipelineSchedule::k1F1B;
  std::vector<int64_t> pipeline_layers;
  bool account_for_embedding_in_pipeline_split = false;
  bool account_for_loss_in_pipeline_split = false;
  // Expert parallelism (docs/moe.md): the MoE layers' experts divided over EP ranks taken from
  // the data-parallel dimension (Megatron's layout: world = TP x EP x DP/EP x PP for the experts,
  // TP x DP x PP for the rest); each rank holds num_experts / EP of every MoE layer's experts and
  // the tokens go to them by all-to-all.
  int64_t expert_parallel_size = 1;
};

struct DataConfig {
  std::vector<std::string> paths;  // indexed-dataset prefixes; several are blended by weight
  std::vector<double> weights;     // empty -> equal weights
  std::string split = "949,50,1";  // train,valid,test proportions, by documents
  TokenizerType tokenizer = TokenizerType::kSentencePiece;
  std::string vocab_file;
  std::string tokenizer_file;  // huggingface / tiktoken: another name for vocab_file
  std::string merges_file;
  bool lowercase = true;
  int64_t prefetch = 2;                   // batches prepared ahead by the background thread
  std::string cache_dir;                  // sample-index cache; empty -> next to the data
  std::vector<std::string> added_tokens;  // each one id: the vocabulary's, or appended after it
  // BERT / RoBERTa samples: "document" packs sentences of one document (Google's BERT);
  // "full_sentences" packs contiguous sentences across documents, [SEP] between them (RoBERTa).
  Packing packing = Packing::kDocument;
  bool dynamic_masking = true;  // masks drawn anew each epoch (false: the same masks every epoch)
  // Decoder samples packed from several documents (Megatron-LM's --reset-position-ids,
  // --reset-attention-mask, --eod-mask-loss; docs/document_masking.md): learned positions restart
  // after each end-of-document token; attention stays within each document; the loss skips the
  // predictions made from an end-of-document token (those of the next document's first token).
  bool reset_position_ids = false;
  bool reset_attention_mask = false;
  bool eod_mask_loss = false;
  // Fill-in-the-middle for decoders (docs/fim.md; Megatron-LM's fim_dataset): the probability a
  // document is transformed, and that a transformed one is SPM rather than PSM; the sentinels'
  // names (prefix, middle, suffix, pad; empty: StarCoder's <fim_prefix> <fim_middle>
  // <fim_suffix> <fim_pad>); a token that splits a document into fragments transformed each with
  // fim_fragment_rate (empty: none).
  double fim_rate = 0.0;
  double fim_spm_rate = 0.5;
  std::vector<std::string> fim_tokens;
  std::string fim_split_sample;
  double fim_fragment_rate = 0.5;
  // Masked LM (BERT):
  double mask_prob = 0.15;
  int64_t max_predictions = 0;  // 0 -> round(mask_prob x seq_length) (20 for 128)
  double short_seq_prob = 0.1;
  bool whole_word_masking = false;
  // Span corruption (T5):
  int64_t vocab_extra_ids = 0;  // sentinels <extra_id_k> at the top of the vocabulary
  double noise_density = 0.15;
  double mean_noise_span_length = 3.0;
  // Denoising (BART; fairseq's names and defaults, recipes/bart/denoising.h):
  double mask_ratio = 0.3;         // fraction of the words masked, by spans
  double poisson_lambda = 3.5;     // span lengths in words ~ Poisson(lambda), truncated at 128
  double mask_random = 0.1;        // fraction of the masks that are a random token instead
  int64_t replace_length = 1;      // a span becomes: 1 one <mask>, 0 nothing, -1 a <mask> a token
  double permute_sentences = 1.0;  // fraction of a sample's sentences shuffled
  double insert_ratio = 0.0;       // fairseq's --insert: random <mask>/tokens inserted
  double rotate_ratio = 0.0;       // fairseq's --rotate: probability of rotating the document
  std::vector<std::string> languages;  // mBART: one language token per path ("en_XX")
  // UL2's mixture of denoisers (recipes/ul2/ul2_data.h): "R <mean span> <rate>", "X <mean span>
  // <rate>" or "S" each; empty -> the paper's seven. Their weights; empty -> the default mixture.
  std::vector<std::string> denoisers;
  std::vector<double> denoiser_weights;
};

struct TrainConfig {
  TrainDevice device = TrainDevice::kCpu;
  Precision precision = Precision::kFp32;
  int64_t micro_batch_size = 4;
  int64_t global_batch_size = 0;  // 0 -> micro_batch_size x DP (no accumulation)
  int64_t train_steps = 100;
  double lr = 3e-4;
  double min_lr = 0.0;
  int64_t lr_warmup_steps = 0;
  LrDecayStyle lr_decay_style = LrDecayStyle::kCosine;
  int64_t lr_decay_steps = 0;  // 0 -> train_steps
  double weight_decay = 0.01;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  double clip_grad = 1.0;  // 0 -> no clipping
  int64_t eval_interval = 100;
  int64_t eval_steps = 10;
  int64_t threads = 0;        // intra-op threads per rank; 0 -> node cores / ranks on the node
  int64_t max_bad_steps = 3;  // consecutive NaN/Inf steps before the run stops
  int64_t exit_interval = 0;  // stop (after saving a checkpoint) when step % this == 0; 0: never
  // Activation recomputation (Megatron's granularities): "selective" keeps the attention core's
  // inputs and recomputes scores, softmax and dropout in backward; "full" keeps only each layer's
  // input and recomputes the whole layer. Dropout masks are redrawn from the saved generator
  // states, so the gradients are those of "none".
  Recompute recompute = Recompute::kNone;
  int64_t recompute_num_layers = 0;  // full: the first N layers of each stack; 0 -> all
};

struct CheckpointConfig {
  std::string dir;            // empty -> <run_dir>/checkpoints
  int64_t save_interval = 0;  // 0 -> only at the end
  int64_t keep_last = 2;
  bool resume = true;          // continue from <dir>/latest when it exists
  bool overwrite = false;      // start fresh over existing checkpoints (deleting them first)
  bool save_optimizer = true;  // AdamW moments too (needed for an exact resume)
  // Copy the state to host memory at the step boundary and write it from a background thread
  // while training goes on (checkpoint_policy.h); `latest` moves when the write is complete.
  bool async_save = false;
};

struct LoggingConfig {
  std::string run_dir = "runs/default";
  int64_t interval = 10;
  bool all_ranks = false;
  bool tensorboard = true;
  LogChoice level = LogChoice::kInfo;
};

struct Config {
  std::string recipe;  // the model family (recipes/registry.h; required)
  int64_t seed = 1234;
  ModelConfig model;
  ParallelConfig parallel;
  DataConfig data;
  TrainConfig train;
  CheckpointConfig checkpoint;
  LoggingConfig logging;

  std::string source_file;  // the recipe file named on the command line
  // Where each set value came from, by key path: "recipes/gpt/tiny.yaml:4:3" or "--set ...".
  std::map<std::string, std::string> origin;
  // "file:line:col: " for a key path, or "" when the key kept its default.
  std::string Where(const std::string& key_path) const;
};

// Sizes that follow from the config and the world size.
struct DerivedSizes {
  int64_t world_size = 1;
  int64_t tp = 1;
  int64_t dp = 1;
  int64_t pp = 1;
  int64_t ep = 1;                  // parallel.expert_parallel_size (divides dp)
  int64_t accumulation_steps = 1;  // micro-batches per step on each DP rank
  int64_t global_batch_size = 1;
  int64_t ffn_hidden_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t head_size = 0;           // model.kv_channels, or hidden_size / heads
  int64_t num_query_groups = 0;    // model.num_query_groups, or the heads (no grouping)
  int64_t decoder_num_layers = 0;  // model.decoder_num_layers, or num_layers (encoder-decoder)
  // The decoder's positions per sample (the family's, Family::DecoderLength; 0: no decoder).
  int64_t decoder_seq_length = 0;
  int64_t vocab_size = 0;         // the real vocabulary; 0 while it is not known
  int64_t padded_vocab_size = 0;  // 0 while the vocabulary size is not known
};

// The model section's "0 means default" sizes, each resolved here and nowhere else (DeriveSizes
// writes them into DerivedSizes): the FFN width (4 x hidden_size), the head size (hidden_size /
// heads), the key/value groups (one per head), the decoder's layers (the encoder's).
int64_t FfnHiddenSize(const ModelConfig& m);
int64_t HeadSize(const ModelConfig& m);
int64_t QueryGroups(const ModelConfig& m);
int64_t DecoderLayers(const ModelConfig& m);
// Mixture of experts: the experts' FFN width (model.moe_ffn_hidden_size, or ffn_hidden_size);
// whether layer i is an MoE layer (model.moe_layer_pattern, or i % moe_layer_freq == 0; never
// without model.num_experts); how many of the num_layers are.
int64_t MoeFfnHiddenSize(const ModelConfig& m);
bool IsMoeLayer(const ModelConfig& m, int64_t i);
int64_t MoeLayerCount(const ModelConfig& m);
// The same config with the whole model on every rank (no pipeline stages): what tools that load a
// model alone (generate, the converter) build, whatever layout trained it: nor are the experts
// divided (expert_parallel_size 1).
void DropPipeline(Config* c);

// Loads a recipe file, resolves `include:` (paths relative to the including file), applies
// `--set key.path=value` overrides (values parsed as YAML), binds and validates the result.
absl::StatusOr<Config> LoadConfig(const std::string& path,
                                  const std::vector<std::string>& overrides = {});
// The same from text; `name` stands for the file name in messages and includes resolve from the
// current directory.
absl::StatusOr<Config> LoadConfigFromString(const std::string& yaml_text, const std::string& name,
                                            const std::vector<std::string>& overrides = {});

// Cross-field checks that need the world size: TP divides heads, FFN width and the world; the
// global batch is micro x accumulation x DP. Also pads the vocabulary (vocab_size may be 0 when
// the tokenizer has not been loaded yet; pass it here once known).
absl::StatusOr<DerivedSizes> DeriveSizes(const Config& config, int64_t world_size,
                                         int64_t vocab_size = 0);

// `config` with the derived sizes written in (model.vocab_size, ffn_hidden_size,
// max_position_embeddings, train.global_batch_size), each with origin "derived": the config a
// run records in its checkpoints and final/config.yaml.
Config ResolvedConfig(const Config& config, const DerivedSizes& sizes);

// Megatron's padding: the smallest multiple of divisible_by x tp not below vocab_size.
int64_t PaddedVocabSize(int64_t vocab_size, int64_t divisible_by, int64_t tp);

// Which keys a listing shows, by key path ("model.hidden_size"); null: all.
using KeyFilter = std::function<bool(const std::string& key_path)>;

// The effective config as YAML, each value annotated with where it came from; derived sizes
// appended as comments when given; only the keys `shown` accepts (a family's, recipes/family.h).
std::string ConfigToYaml(const Config& config, const DerivedSizes* derived = nullptr,
                         const KeyFilter& shown = nullptr);

// Every key path of a config, in the order of DescribeConfig ("recipe", "model.num_layers", ...).
std::vector<std::string> ConfigKeyPaths();
// The key paths whose value differs from a default-constructed Config's (set in a file, by
// --set, or derived), in the same order.
std::vector<std::string> KeysAwayFromDefault(const Config& config);

}  // namespace braid
