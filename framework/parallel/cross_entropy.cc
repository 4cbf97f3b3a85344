// Vocabulary-parallel cross entropy (see cross_entropy.h).
#include "framework/parallel/cross_entropy.h"

#include <limits>

#include "framework/core/check.h"
#include "framework/parallel/mappings.h"

namespace braid {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct ParallelCe : public torch::autograd::Function<ParallelCe> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits_in,
                               const torch::Tensor& targets, Communicator* tp, int64_t start,
                               int64_t vocab_size, int64_t ignore_index, double smoothing) {
    const int64_t n = logits_in.size(0), v = logits_in.size(1);
    torch::NoGradGuard no_grad;
    // fp32 at least (fp64 stays fp64: the equivalence tests run in double).
    const auto compute = logits_in.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
    // The logits are consumed: exp and softmax are computed in place (nothing else needs them;
    // the matmul that made them keeps its inputs, not its output). Only a dtype change copies.
    torch::Tensor logits = logits_in.to(compute).contiguous();
    int64_t real = std::max<int64_t>(0, std::min(v, vocab_size - start));
    // Padded vocabulary entries never take part.
    if (real < v) logits.narrow(1, real, v - real).fill_(-std::numeric_limits<float>::infinity());

    torch::Tensor local = targets - start;
    torch::Tensor ignored = targets.eq(ignore_index);
    torch::Tensor mine = (local >= 0).logical_and(local < v).logical_and(ignored.logical_not());
    torch::Tensor idx = local.masked_fill(mine.logical_not(), 0);
    torch::Tensor target_logit =
        logits.gather(1, idx.unsqueeze(1)).squeeze(1).masked_fill(mine.logical_not(), 0.0);
    torch::Tensor sum_logits;  // for label smoothing: sum of the real logits
    if (smoothing > 0) sum_logits = logits.narrow(1, 0, real).sum(1);
    torch::Tensor max = std::get<0>(logits.max(1));
    if (tp->size() > 1) BRAID_CHECK_OK(tp->AllReduce(max, ReduceOp::kMax));
    logits.sub_(max.unsqueeze(1));
    target_logit = (target_logit - max).masked_fill(mine.logical_not(), 0.0);
    torch::Tensor exp = logits.exp_();
    torch::Tensor sum_exp = exp.sum(1);
    if (tp->size() > 1) {
      // One all-reduce for the sums: [sum_exp | target_logit | sum_logits].
      std::vector<torch::Tensor> parts = {sum_exp, target_logit};
      if (smoothing > 0) parts.push_back(sum_logits);
      torch::Tensor packed = torch::stack(parts);
      BRAID_CHECK_OK(tp->AllReduce(packed, ReduceOp::kSum));
      sum_exp = packed[0];
      target_logit = packed[1];
      if (smoothing > 0) sum_logits = packed[2];
    }
    exp.div_(sum_exp.unsqueeze(1));  // softmax, kept for backward
    if (smoothing > 0) sum_logits = sum_logits - static_cast<double>(vocab_size) * max;
    // Shifted logits (by the global max): loss = log Z - z_t.
    torch::Tensor log_z = sum_exp.log();
    torch::Tensor loss = log_z - target_logit;
    if (smoothing > 0) {
      torch::Tensor mean_logp = sum_logits / static_cast<double>(vocab_size) - log_z;
      loss = (1.0 - smoothing) * loss - smoothing * mean_logp;
    }
    loss.masked_fill_(ignored, 0.0);
    ctx->saved_data["softmax"] = exp;
    ctx->saved_data["idx"] = idx;
    ctx->saved_data["mine"] = mine;
    ctx->saved_data["ignored"] = ignored;
    ctx->saved_data["smoothing"] = smoothing;
    ctx->saved_data["real"] = real;
    ctx->saved_data["vocab"] = vocab_size;
    ctx->saved_data["dtype"] = static_cast<int64_t>(logits_in.scalar_type());
    return loss;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    torch::Tensor g = ctx->saved_data["softmax"].toTensor();  // reused in place
    torch::Tensor idx = ctx->saved_data["idx"].toTensor();
    torch::Tensor mine = ctx->saved_data["mine"].toTensor();
    torch::Tensor ignored = ctx->saved_data["ignored"].toTensor();
    double smoothing = ctx->saved_data["smoothing"].toDouble();
    int64_t real = ctx->saved_data["real"].toInt();
    int64_t vocab = ctx->saved_data["vocab"].toInt();
    auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    ctx->saved_data.clear();
    torch::Tensor onehot_weight = mine.to(g.scalar_type()) * (1.0 - smoothing);
    g.scatter_add_(1, idx.unsqueeze(1), -onehot_weight.unsqueeze(1));
    if (smoothing > 0 && real > 0) g.narrow(1, 0, real).sub_(smoothing / vocab);
    torch::Tensor scale = grad[0].to(g.scalar_type()).masked_fill(ignored, 0.0);
    g.mul_(scale.unsqueeze(1));
    return {g.to(dtype),     torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};
}  // namespace

torch::Tensor VocabParallelCrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                        Communicator& tp, VocabShard shard, int64_t ignore_index,
                                        double label_smoothing) {
  return ParallelCe::apply(logits, targets, &tp, shard.start, shard.vocab_size, ignore_index,
                           label_smoothing);
}

torch::Tensor VocabParallelArgmax(const torch::Tensor& logits, Communicator& tp, VocabShard shard) {
  torch::NoGradGuard no_grad;
  const int64_t per = logits.size(-1);
  const int64_t real = std::max<int64_t>(0, std::min(per, shard.vocab_size - shard.start));
  torch::Tensor best, id;
  if (real > 0) {
    auto [v, i] = logits.detach().narrow(-1, 0, real).max(-1);
    best = v.to(torch::kDouble);
    id = (i + shard.start).to(torch::kDouble);
  } else {  // a rank holding only padding
    best = torch::full({logits.size(0)}, -std::numeric_limits<double>::infinity(),
                       logits.options().dtype(torch::kDouble));
    id = torch::zeros({logits.size(0)}, logits.options().dtype(torch::kDouble));
  }
  torch::Tensor all = AllGatherLastDim(torch::stack({best, id}, -1), tp).view({-1, tp.size(), 2});
  torch::Tensor rank = all.select(2, 0).argmax(1, /*keepdim=*/true);
  return all.select(2, 1).gather(1, rank).squeeze(1).to(torch::kLong);
}

}  // namespace braid
