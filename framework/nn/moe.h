// Mixture-of-experts MLP (docs/moe.md): a linear router with fp32 logits picks each token's top-k
// experts of `BlockConfig::moe.experts`; the tokens are sorted by expert and each expert's MLP
// runs once on its contiguous slice of them; the outputs, weighted by the router, are added back
// per token. Optional shared experts (Qwen-MoE, DeepSeek-MoE) see every token.
//
// Tensor parallelism as a dense MLP: every TP rank routes all tokens alike (the router is
// replicated) and holds a slice of every expert's FFN width (fc1 by rows, gate and up each split;
// fc2 by columns), so one all-reduce (with sequence parallelism: all-gather before, reduce-scatter
// after) per MoE MLP. The router's weights meet a TP rank's partial expert outputs, so their
// gradients are summed over TP (CopyToTp), as the expert inputs' are.
//
// Expert parallelism (TpEnv::ep with EP ranks): this rank holds experts [ep_rank x E/EP,
// (ep_rank + 1) x E/EP) under their global names (so a checkpoint does not depend on EP). It routes
// its own tokens, sends each expert's rows to the rank holding it by all-to-all (the counts per
// (source, expert) exchanged first), runs its experts on what it received regrouped by expert, and
// the reverse all-to-all brings the outputs back to be weighted and added per token. The
// backward of each all-to-all is the reverse one. Under TP the EP group joins the ranks of one TP
// rank, so each exchanges the slices of the expert widths it holds, and the sum over TP follows.
//
// Parameter names: router.weight [experts, hidden]; experts.{e}.fc1.weight [(2 x) ffn, hidden] and
// experts.{e}.fc2.weight [hidden, ffn] (no biases: Mixtral's and Qwen2-MoE's experts have none);
// shared.fc1/fc2 (a dense Mlp of shared x ffn) and shared_gate.weight [1, hidden].
//
// The load-balancing loss (Switch Transformer; Megatron-LM's normalisation, 1 for a perfectly
// balanced router) E/k x sum_e f_e P_e, with f_e the share of the tokens routed to expert e
// (counting each of a token's k choices) and P_e the mean router probability of e, and the router
// z-loss mean_t logsumexp(logits_t)^2 enter the training loss with their coefficients without
// changing the model's output: their gradient is attached to the MLP's output and scaled like the
// main loss (framework/parallel/aux_loss.h), so they work at any pipeline stage.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framework/nn/blocks.h"

namespace braid {

// What one MoE MLP's last forward routed (on the tokens this rank routed; detached).
struct MoeRouting {
  torch::Tensor kept;    // [tokens, k] bool: within the experts' capacity
  torch::Tensor counts;  // [experts] int64: tokens each expert ran (after capacity)
  torch::Tensor aux, z;  // the load-balancing and z-losses (before their coefficients)
};

// The routing of `logits` [tokens, experts] (fp32 or fp64): top-k, weights, capacity, the losses
// as tensors (aux, z) with gradients. Exposed for the router tests.
struct RouterOutput {
  torch::Tensor top_experts, weights, probs, kept;
  torch::Tensor aux, z;  // scalars
};
RouterOutput Route(const torch::Tensor& logits, const MoeBlock& moe);
// The capacity of each expert for `tokens` tokens (0: dropless, no limit).
int64_t MoeCapacity(const MoeBlock& moe, int64_t tokens);

class MoeMlp : public TpModule {
 public:
  MoeMlp(const TpEnv& env, const std::string& name, const BlockConfig& c);
  // x [b, s, h] (with sequence parallelism this rank's [b, s/TP, h]) -> the same shape.
  torch::Tensor forward(const torch::Tensor& x);
  const MoeRouting& last() const { return last_; }
  const std::string& name() const { return name_; }
  int64_t total_layers() const { return moe_.total_layers; }

 private:
  MoeBlock moe_;
  Activation activation_;
  std::string name_;
  std::shared_ptr<Communicator> tp_;
  std::shared_ptr<Communicator> ep_;  // null without expert parallelism
  int64_t local_ = 0, first_ = 0;     // the experts held here: [first_, first_ + local_)
  bool sequence_ = false;
  torch::Tensor router_;                  // [experts, hidden]
  std::vector<torch::Tensor> fc1_, fc2_;  // per local expert, this rank's TP slices
  // Runs the local experts on `rows` sorted by expert (count[l] rows of local expert l).
  torch::Tensor RunExperts(const torch::Tensor& rows, const int64_t* count);
  // Expert parallelism: `in` (rows sorted by global expert, count[e] of expert e) through the
  // experts of the ranks holding them and back, in the same order.
  torch::Tensor Dispatch(const torch::Tensor& in, const torch::Tensor& host_counts);
  std::shared_ptr<Mlp> shared_;  // shared experts, or null
  torch::Tensor shared_gate_;    // [1, hidden], or undefined
  MoeRouting last_;
};

// The run-log metrics of every MoE MLP under `root` after a forward pass, added to `metrics`:
// per layer (TensorBoard only: keys with '/') moe_aux/<layer>, moe_z/<layer>,
// moe_load_cv/<layer>; and their means over the model's MoE layers moe_aux, moe_z, moe_load_cv,
// moe_load_max and moe_load_min (the busiest and idlest expert's tokens over the mean),
// moe_dropped (the share of assignments past capacity). Each is a sum over this rank's layers
// divided by the model's count, so pipeline stages add up. Nothing without MoE layers.
void AddMoeMetrics(torch::nn::Module& root, std::map<std::string, double>* metrics);

}  // namespace braid
