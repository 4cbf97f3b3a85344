// Tensor-parallel layers on top of the mappings (Megatron's layers.py). Local sizes are named
// *_per_partition. Every layer builds its full weight from (seed, parameter name) and keeps this
// rank's slice, so TP=1 and TP=N start from identical weights. Each layer records, per
// parameter, whether it is split and how (TpParam), for gradient-norm clipping, checkpoints and
// resharding.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "framework/dist/communicator.h"

namespace braid {

// How a parameter is laid out across TP ranks.
struct TpParam {
  int axis = -1;       // -1: replicated (identical on every TP rank); else the split dimension
  int groups = 1;      // a fused weight of `groups` equal parts (QKV: 3), each split separately
  bool vocab = false;  // axis 0 is the padded vocabulary (its size depends on the TP size)
  // The last this-many entries along `axis` are whole on every rank, after this rank's part of
  // the rest (groups 1): multi-query attention's key and value rows, replicated over TP. Their
  // gradients are summed over TP in backward (ColumnParallelLinear), so the copies stay equal.
  int64_t replicated_tail = 0;
  // An expert's weight (framework/nn/moe.h): with expert parallelism held by one EP rank, its
  // gradient averaged over the expert-data-parallel group instead of DP.
  bool expert = false;
};
// The size of `axis` in one TP rank's shard of a tensor whose full size there is `full`, and back.
int64_t ShardDim(int64_t full, TpParam layout, int tp);
int64_t FullDim(int64_t shard, TpParam layout, int tp);

// What every parallel layer needs: the TP group and the initialisation seed; and whether the
// layers' residual stream is split along the sequence within the TP group
// (parallel.sequence_parallel: mappings.h). The layers built with it expect [b, s/TP, h] slices
// between their GEMMs; the model scatters the stream before its first layer and gathers it after
// its last (RunStack in nn/blocks.h).
struct TpEnv {
  std::shared_ptr<Communicator> tp;
  uint64_t seed = 1234;
  bool sequence_parallel = false;
  // The pipeline stage being built (pretrain: the layout's pp rank; families split their layers
  // by parallel.pipeline_*); -1: the whole model (tools, tests).
  int pp_rank = -1;
  // Expert parallelism (parallel.expert_parallel_size): the EP group the MoE layers divide their
  // experts over and exchange tokens with (ParallelLayout::ep); null: every expert here.
  std::shared_ptr<Communicator> ep;
  int rank() const { return tp->rank(); }
  int size() const { return tp->size(); }
};

// A module whose direct parameters may be TP-split.
class TpModule : public torch::nn::Module {
 public:
  const std::map<std::string, TpParam>& tp_params() const { return tp_params_; }

 protected:
  torch::Tensor Param(const std::string& name, torch::Tensor value, TpParam layout);
  std::map<std::string, TpParam> tp_params_;
};

// Every parameter of `root` by full name with its layout (replicated unless a TpModule says so).
std::map<std::string, TpParam> CollectTpParams(torch::nn::Module& root);

// The full tensor N(0, std) drawn from (seed, name) -- or zeros when std == 0 -- sliced for this
// TP rank along `layout.axis` (each of `layout.groups` parts separately).
torch::Tensor InitShard(const TpEnv& env, const std::string& name,
                        const std::vector<int64_t>& full_shape, double std, TpParam layout);
// This rank's slice of a full tensor (the same slicing as InitShard).
torch::Tensor ShardOf(const torch::Tensor& full, TpParam layout, int rank, int size);

// y = x A^T + b with A split by rows (output features). Input replicated (with sequence
// parallelism: this rank's sequence slice, all-gathered first); output split unless
// gather_output. `groups` > 1: A is `groups` stacked blocks (fused QKV), each split alike.
// `replicated_tail` > 0: A's last rows are whole on every rank (TpParam::replicated_tail), after
// this rank's part of the others; their gradients (each rank's share) are summed over TP.
class ColumnParallelLinear : public TpModule {
 public:
  ColumnParallelLinear(const TpEnv& env, const std::string& name, int64_t in, int64_t out,
                       bool bias, double init_std, bool gather_output = false, int groups = 1,
                       int64_t replicated_tail = 0);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  std::shared_ptr<Communicator> tp_;
  bool gather_output_;
  bool sequence_ = false;
  int64_t replicated_tail_ = 0;
};

// y = x A^T + b with A split by columns (input features). Input already split (the output of a
// column-parallel layer); the partial products are all-reduced, then the (replicated) bias added.
// With sequence parallelism the partial products are reduce-scattered along the sequence instead,
// and the bias, added to this rank's slice only, has its gradient summed over TP.
class RowParallelLinear : public TpModule {
 public:
  RowParallelLinear(const TpEnv& env, const std::string& name, int64_t in, int64_t out, bool bias,
                    double init_std);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  std::shared_ptr<Communicator> tp_;
  bool sequence_ = false;
};

// Each rank owns rows [rank * V/tp, (rank+1) * V/tp) of the padded vocabulary; ids outside the
// range look up zeros, and the partial embeddings are all-reduced. Rows at or past
// `vocab_size` (the padding) start at zero.
class VocabParallelEmbedding : public TpModule {
 public:
  VocabParallelEmbedding(const TpEnv& env, const std::string& name, int64_t padded_vocab,
                         int64_t vocab_size, int64_t dim, double init_std);
  torch::Tensor forward(const torch::Tensor& ids);
  int64_t vocab_start() const { return start_; }
  int64_t vocab_per_partition() const { return per_partition_; }
  torch::Tensor weight;

 private:
  std::shared_ptr<Communicator> tp_;
  int64_t start_ = 0, per_partition_ = 0;
};

// The output projection onto this rank's slice of the vocabulary logits: x [..., dim] ->
// [..., padded_vocab / tp] (the input is replicated; the logits stay split for the
// vocabulary-parallel cross entropy). Tied (model.tie_embeddings): through the embedding's weight,
// with no parameter of its own. Untied: its own weight, split by vocabulary rows like the
// embedding's and drawn the same way from (seed, name).
class VocabParallelOutput : public TpModule {
 public:
  VocabParallelOutput(const TpEnv& env, const std::string& name,
                      std::shared_ptr<VocabParallelEmbedding> tied, int64_t padded_vocab,
                      int64_t vocab_size, int64_t dim, double init_std);
  torch::Tensor forward(const torch::Tensor& x);
  bool tied() const { return tied_ != nullptr; }
  torch::Tensor weight;  // undefined when tied

 private:
  std::shared_ptr<Communicator> tp_;
  std::shared_ptr<VocabParallelEmbedding> tied_;
};

}  // namespace braid
