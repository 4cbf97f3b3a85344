// Transformer building blocks shared by every family (GPT, BERT, T5, BART), sharded by TP:
// attention (self: causal or bidirectional with a key padding mask; cross: queries from the
// decoder, keys/values from the encoder) with whole heads per TP rank; MLP (fc1 column-parallel,
// fc2 row-parallel; GELU erf/tanh, gated GELU, SwiGLU, ReLU); LayerNorm / RMSNorm; pre-LN and
// post-LN residual layers, or parallel attention + MLP; T5 relative-position buckets; the
// decoder options of LLaMA-style models: RoPE, grouped-query attention, ALiBi and sliding-window
// biases. One all-reduce per sub-block per direction.
//
// Grouped-query attention (BlockConfig::kv_groups > 0, model.num_query_groups) lays the fused
// QKV out per group as Megatron does: rows [group][q of the group's heads/groups heads | k | v]
// [head_dim], so a contiguous TP split hands every rank whole groups (TpParam{0}, one part). The
// heads of group g are g x heads/groups .. (g+1) x heads/groups - 1 (Hugging Face's repeat_kv
// order). Keys and values are never copied per query head: the group's queries are stacked along
// the sequence ([b, g, heads/groups x s, d]) and multiply the group's keys in one GEMM. Without
// kv_groups the fused QKV stays q | k | v (three parts, each split by heads), the layout of every
// checkpoint written before grouping existed.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "framework/core/choices.h"
#include "framework/parallel/layers.h"
#include "framework/parallel/pipeline_schedule.h"
#include "framework/parallel/rng.h"

namespace braid {

// model.activation, model.norm and train.recompute are the enums of framework/core/choices.h:
// gated GELU's fc1 holds the gate and the up projection, each split by TP separately (the gate
// through GELU erf or, geglu_tanh, the tanh approximation as T5 v1.1's gated-gelu); SwiGLU's gate
// goes through SiLU (LLaMA).
// train.recompute, per layer (LayerBlock): keep everything (none), keep the attention core's
// inputs and recompute scores, softmax, dropout and context in backward (selective), or keep only
// the layer's inputs and recompute the whole layer (full). The dropout generators' states are
// saved with the inputs and restored for the recomputation, so it draws the same masks and the
// gradients equal those without recomputation, bit for bit.
// (Recompute, framework/core/choices.h.)

// A mixture-of-experts MLP (framework/nn/moe.h; the model.num_experts keys of
// framework/core/config.h): `experts` 0 is a dense MLP.
struct MoeBlock {
  int64_t experts = 0;
  int64_t top_k = 2;
  int64_t ffn = 0;     // each expert's FFN width
  int64_t shared = 0;  // shared experts (one MLP of shared x ffn)
  bool shared_gate = false;
  bool pre_softmax = false;
  double aux_coeff = 0, z_coeff = 0;
  double capacity_factor = 0;  // 0: dropless
  std::vector<bool> layers;    // which layers of the stack are MoE layers (empty: all)
  int64_t total_layers = 0;    // how many are (the metrics' means over the whole model)
};

struct BlockConfig {
  int64_t hidden = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;  // 0 -> hidden / heads (model.kv_channels: T5's d_kv may differ)
  int64_t ffn = 0;
  Activation activation = Activation::kGeluTanh;
  NormType norm = NormType::kLayerNorm;
  double eps = 1e-5;
  double hidden_dropout = 0.0;
  double attention_dropout = 0.0;
  double init_std = 0.02;
  double output_init_std = 0.02;  // fc2 / attention output (GPT-2 scales by 1/sqrt(2L))
  bool bias = true;
  bool qkv_bias = false;     // biases on q, k, v only (model.add_qkv_bias), with bias false
  bool scale_scores = true;  // divide scores by sqrt(head_dim) (T5: false)
  bool pre_ln = true;
  bool parallel_residual = false;  // x + attn(ln_self(x)) + mlp(ln_mlp(x)) (pre-LN only)
  bool shared_norm = false;        // parallel_residual with ln_self read by both (no ln_mlp)
  int64_t kv_groups = 0;           // > 0: grouped-query attention with the per-group QKV layout
  double rope_theta = 0;           // > 0: RoPE on the queries and keys of self-attention
  int64_t rope_dims = 0;  // RoPE on the first rope_dims of each head only (GPT-NeoX); 0: all
  Recompute recompute = Recompute::kNone;
  int64_t recompute_layers = 0;  // kFull: only the first N layers of each stack (0: all)
  MoeBlock moe;                  // LayerBlock: experts 0 in the dense layers
  int64_t HeadDim() const { return head_dim > 0 ? head_dim : hidden / heads; }
  int64_t AttentionWidth() const { return heads * HeadDim(); }  // q (and k, v without groups)
  int64_t KvHeads() const { return kv_groups > 0 ? kv_groups : heads; }
};

// LayerNorm (weight, bias) or RMSNorm (weight only); replicated. Inside a layer with sequence
// parallelism (`sequence_group` set) each TP rank normalises its own positions, so the weights'
// gradients are summed over the group as they flow back (CopyToTp on the weights).
class Norm : public TpModule {
 public:
  Norm(const BlockConfig& c, int64_t dim, std::shared_ptr<Communicator> sequence_group = nullptr);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  bool rms_;
  double eps_;
  std::shared_ptr<Communicator> sequence_group_;
};

// Keys and values kept between calls for incremental decoding (generation, no gradients): a
// self-attention's of every position so far, a cross-attention's of the memory (computed once).
struct KvCache {
  torch::Tensor k, v;  // [b, key/value heads of this rank, positions, head size]
  int64_t length() const { return k.defined() ? k.size(2) : 0; }
};
// A layer's caches, and a stack's (one per layer; RunStack sizes it).
struct LayerCache {
  KvCache self, cross;
};
using StackCache = std::vector<LayerCache>;

// Documents packed into the samples of a batch (data.reset_attention_mask): per sample, the
// [begin, end) positions of each document in order, covering the sequence. A document ends after
// each end-of-document token (the token belongs to the document it ends).
struct DocumentSpans {
  std::vector<std::vector<std::pair<int64_t, int64_t>>> samples;
  bool OneEach() const;  // every sample a single document (the mask changes nothing)
};
// The documents of tokens [b, s] split after each `eod` (any device; read on the host). With
// `padding` [b, s] bool (true = padding, at the end of a sample), the padding joins the last
// document (RoBERTa's full-sentence packs: documents end with </s>).
DocumentSpans DocumentSpansOf(const torch::Tensor& tokens, int64_t eod,
                              const torch::Tensor& padding = {});
// Each position's index within its document [b, s] int64 (data.reset_position_ids), on `device`.
torch::Tensor DocumentPositions(const DocumentSpans& d, int64_t s, const torch::Device& device);

struct AttentionMask {
  bool causal = false;
  torch::Tensor key_padding;    // [b, s_k] bool, true = padding (ignored), or undefined
  torch::Tensor position_bias;  // [1 or b, heads_per_partition, s_q, s_k] added to scores
  // Self-attention only within each document (block-diagonal; causal or not): each document's
  // queries meet only its keys, one attention per document, so the masked blocks are never
  // computed. The position bias and the key padding are sliced to the document's block (ALiBi
  // and sliding windows depend on the distance only, so a document sees what it would alone).
  std::shared_ptr<const DocumentSpans> documents;
};

class Attention : public TpModule {
 public:
  // cross: queries from x, keys and values from `memory`.
  Attention(const TpEnv& env, const std::string& name, const BlockConfig& c, bool cross);
  // With `cache` (incremental decoding): a self-attention appends x's keys and values to it and
  // attends over all of them (x: the positions after those cached; a causal mask needs x to be
  // either all positions so far or one); a cross-attention computes the memory's keys and values
  // once and reuses them. Not with RoPE (its rotation would need the positions' offset).
  torch::Tensor forward(const torch::Tensor& x, const AttentionMask& mask, TpRng& rng,
                        const torch::Tensor& memory = {}, KvCache* cache = nullptr);
  int64_t heads_per_partition() const { return heads_; }

 private:
  std::shared_ptr<ColumnParallelLinear> qkv_, q_, kv_;
  std::shared_ptr<RowParallelLinear> out_;
  int64_t heads_, head_dim_;
  int64_t groups_ = 0;  // this rank's key/value groups with the per-group layout; 0: none
  double dropout_;
  bool scale_;
  bool recompute_core_ = false;  // Recompute::kSelective
  double rope_theta_ = 0;
  int64_t rope_dims_ = 0;              // the rotated dimensions of a head (head_dim_: all)
  torch::Tensor rope_cos_, rope_sin_;  // RopeTables for the last sequence length seen
};

// The MLP's activation of h (fc1's output; gated: gate | up halves, this rank's slices of each).
torch::Tensor Activate(const torch::Tensor& h, Activation activation);

class MoeMlp;  // framework/nn/moe.h

class Mlp : public TpModule {
 public:
  Mlp(const TpEnv& env, const std::string& name, const BlockConfig& c);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  std::shared_ptr<ColumnParallelLinear> fc1_;
  std::shared_ptr<RowParallelLinear> fc2_;
  Activation activation_;
};

// The block config of layer `index` of a stack: kFull becomes kNone past recompute_layers
// (Megatron's "block" method: the first N layers recompute, the rest keep their activations);
// moe.experts becomes 0 in the layers moe.layers marks dense.
BlockConfig LayerBlock(const BlockConfig& c, int64_t index);

// One transformer layer: self-attention, optional cross-attention, MLP, each a residual
// sub-block with pre-LN (x + f(norm(x))) or post-LN (norm(x + f(x))).
//
// Built with TpEnv::sequence_parallel (and TP > 1), x and the output are this rank's slice
// [b, s/TP, h] of the sequence: norms, residual adds and the hidden dropout (drawn from the
// `sharded` generator, as the positions differ per rank) run on the slice; the q/k/v and fc1
// GEMMs all-gather it, the output and fc2 GEMMs reduce-scatter back to it. Attention itself sees
// the whole sequence (masks and position biases stay whole). The encoder output a cross-attention
// reads (`memory`) is whole on every rank.
class TransformerLayer : public TpModule {
 public:
  TransformerLayer(const TpEnv& env, const std::string& name, const BlockConfig& c,
                   bool with_cross);
  torch::Tensor forward(const torch::Tensor& x, const AttentionMask& self_mask, TpRng& rng,
                        const torch::Tensor& memory = {}, const AttentionMask& cross_mask = {},
                        LayerCache* cache = nullptr);
  // Forward matmul FLOPs of this layer for one sample (2 per multiply-add; the whole layer, not
  // this rank's share): q_len positions, self-attention over q_len keys, cross-attention over
  // mem_len memory positions. Attention scores and context both count, without halving for a
  // causal mask (PaLM's and Megatron's convention). Training is 3x this.
  double ForwardFlops(int64_t q_len, int64_t mem_len = 0) const;
  // The TP group the sequence is split over; null without sequence parallelism.
  const std::shared_ptr<Communicator>& sequence_group() const { return sequence_group_; }

 private:
  torch::Tensor RunMlp(const torch::Tensor& x);  // the dense or the MoE MLP
  torch::Tensor Layer(const torch::Tensor& x, const AttentionMask& self_mask, TpRng& rng,
                      const torch::Tensor& memory, const AttentionMask& cross_mask,
                      LayerCache* cache);
  BlockConfig c_;
  std::shared_ptr<Norm> ln_self_, ln_cross_, ln_mlp_;
  std::shared_ptr<Attention> self_, cross_;
  std::shared_ptr<Mlp> mlp_;
  std::shared_ptr<MoeMlp> moe_;  // instead of mlp_ in an MoE layer
  std::shared_ptr<Communicator> sequence_group_;
};

// x [b, s, h] through a stack of TransformerLayers. With sequence parallelism the stream is
// split along the sequence before the first layer and gathered whole after the last, so the code
// around a stack (embeddings, final norms, heads) runs whole on every TP rank as without it.
// With `cache` (incremental decoding, sized to the stack on first use) each layer keeps its keys
// and values there (Attention::forward).
torch::Tensor RunStack(const torch::nn::ModuleList& layers, torch::Tensor x,
                       const AttentionMask& self_mask, TpRng& rng, const torch::Tensor& memory = {},
                       const AttentionMask& cross_mask = {}, StackCache* cache = nullptr);

// The summed ForwardFlops of a stack of TransformerLayers.
double StackForwardFlops(const torch::nn::ModuleList& layers, int64_t q_len, int64_t mem_len = 0);
// TransformerLayer::ForwardFlops of a layer with config `c` (with cross-attention when `cross`),
// known without building it (a pipeline stage counts the layers other stages hold).
double LayerForwardFlops(const BlockConfig& c, bool cross, int64_t q_len, int64_t mem_len = 0);
// The ForwardFlops of a whole stack of `layers` layers (LayerBlock of each).
double WholeStackForwardFlops(const BlockConfig& c, int64_t layers, bool cross, int64_t q_len,
                              int64_t mem_len = 0);

// Layers [first, first + count) of a stack (a pipeline stage's share), built as TransformerLayers
// named `name`.{i} and registered in `holder` under their index i in the whole stack, so that a
// stage's parameters keep the whole model's names. Returns them in order, to run with RunStack.
torch::nn::ModuleList StackLayers(const TpEnv& env, torch::nn::Module& holder,
                                  const std::string& name, const BlockConfig& c, int64_t first,
                                  int64_t count, bool with_cross);

// An encoder-decoder model's layers for a stage plan over encoder + decoder layers
// (SplitEncoderDecoder), registered in the model as encoder.{i} and decoder.{i} (i: the index in
// each whole stack).
struct EncoderDecoderStacks {
  std::vector<torch::nn::ModuleList> encoder, decoder;                   // per chunk of the plan
  torch::nn::ModuleList whole_encoder{nullptr}, whole_decoder{nullptr};  // the whole model only
  bool ends_encoder = false;  // a chunk holds the encoder's last layer (and its final norm)
};
EncoderDecoderStacks BuildEncoderDecoderStacks(const TpEnv& env, torch::nn::Module& model,
                                               const StagePlan& plan, int64_t encoder_layers,
                                               const BlockConfig& c);

// ALiBi's head slopes (Press et al., "Train Short, Test Long"): 2^(-8k/n) for heads k = 1..n when n
// is a power of two; otherwise the slopes of the largest power of two p below n followed by every
// other slope of 2p (BLOOM's build_alibi_tensor), n - p of them.
std::vector<double> AlibiSlopes(int64_t heads);
// An additive attention bias [1, heads or 1, s, s] for a causal decoder: -slope x (i - j) per head
// for query i and key j (ALiBi; `slopes` this rank's heads', empty: none) and -inf where key j
// lies `window` or more positions back (i - j >= window; Mistral's sliding window, 0: none).
// The causal mask itself stays the attention's.
torch::Tensor DecoderPositionBias(int64_t s, const std::vector<double>& slopes, int64_t window,
                                  const torch::TensorOptions& options);

// T5's relative position bucket of (key - query) distances: half the buckets exact, the rest
// logarithmic up to max_distance; bidirectional splits them by sign. The queries are positions
// q_offset .. q_offset + q_len - 1 (incremental decoding), the keys 0 .. k_len - 1.
torch::Tensor RelativePositionBuckets(int64_t q_len, int64_t k_len, bool bidirectional,
                                      int64_t num_buckets = 32, int64_t max_distance = 128,
                                      int64_t q_offset = 0);

// Learned bias per (bucket, head), heads split across TP: returns [1, heads/tp, q, k].
class RelativePositionBias : public TpModule {
 public:
  RelativePositionBias(const TpEnv& env, const std::string& name, int64_t heads, bool bidirectional,
                       int64_t num_buckets = 32, int64_t max_distance = 128,
                       double init_std = 0.02);
  torch::Tensor forward(int64_t q_len, int64_t k_len, int64_t q_offset = 0);
  torch::Tensor weight;  // [buckets, heads/tp]

 private:
  bool bidirectional_;
  int64_t buckets_, max_distance_;
};

}  // namespace braid
