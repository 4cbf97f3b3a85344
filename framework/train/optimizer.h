// AdamW with decoupled weight decay, written out so that its state (moments, step count) can be
// checkpointed, resharded and restored exactly. The arithmetic is PyTorch's (torch.optim.AdamW,
// single-tensor form): p *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). On CPUs one fused pass per
// parameter; elsewhere multi-tensor (_foreach) ops over all parameters at once.
#pragma once
#include <torch/torch.h>

#include <utility>
#include <vector>

namespace braid {

class AdamW {
 public:
  struct Options {
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
    // CPU parameters take the one-pass kernel (FusedAdamWStep); false sends them through the
    // multi-tensor ops that GPU parameters use (how the tests check that path on a CPU).
    bool fused_cpu = true;
  };
  // `decay[i]`: whether parameter i gets weight decay (not biases and norm weights).
  AdamW(std::vector<torch::Tensor> params, std::vector<bool> decay, Options options);
  // One update from the parameters' .grad() (parameters without a gradient are left alone).
  void Step(double lr);
  // One update from `grads[i]` for params[i] (undefined: left alone). The distributed optimizer's
  // params are pieces of the parameters (views) with the reduced shard's gradients.
  void Step(double lr, const std::vector<torch::Tensor>& grads);

  const std::vector<torch::Tensor>& params() const { return params_; }
  int64_t step() const { return step_; }
  void set_step(int64_t s) { step_ = s; }
  std::vector<torch::Tensor>& exp_avg() { return m_; }
  std::vector<torch::Tensor>& exp_avg_sq() { return v_; }

  // The distributed optimizer's layout, set by TrainStep: its params are pieces, params()[j] the
  // range [offset, offset + length) of the flattened model parameter `param` (an index into the
  // model's named_parameters()), and of_rank[d] lists DP rank d's ranges (of_rank[dp_rank] is
  // params()'s). Checkpoints store the moments as these pieces, each rank its own; every rank's
  // list goes into the manifest, so a load at any DP size reassembles whole moments.
  struct Range {
    size_t param = 0;
    int64_t offset = 0, length = 0;
  };
  struct Sharding {
    int dp_rank = 0;
    std::vector<std::vector<Range>> of_rank;  // empty: not sharded
    // Parameters held whole, after the pieces: params()[of_rank[dp_rank].size() + i] is model
    // parameter whole[i] (expert parallelism's experts, replicated over their expert-data-parallel
    // group, not sharded; checkpointed whole like the replicated optimizer's).
    std::vector<size_t> whole;
  };
  Sharding sharding;
  bool sharded() const { return !sharding.of_rank.empty(); }

 private:
  std::vector<torch::Tensor> params_;
  std::vector<bool> decay_;
  Options o_;
  std::vector<torch::Tensor> m_, v_;
  int64_t step_ = 0;
};

}  // namespace braid
