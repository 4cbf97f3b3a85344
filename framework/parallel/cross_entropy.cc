// Vocabulary-parallel cross entropy (see cross_entropy.h).
#include "framework/parallel/cross_entropy.h"

#include <limits>

#include "framework/core/check.h"
#include "framework/parallel/mappings.h"

namespace braid {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct CeArgs {
  Communicator* tp;
  int64_t start, vocab_size, ignore_index;
  double smoothing;
};

// The loss arithmetic both forms share. `logits` [n, V/tp] in the compute dtype (fp32, or fp64),
// contiguous, is consumed: it becomes the exponentials shifted by the global row max, in place.
struct CeParts {
  torch::Tensor loss;     // [n], 0 on ignored rows
  torch::Tensor exp;      // [n, V/tp] exp(logit - global max); 0 on padded entries
  torch::Tensor sum_exp;  // [n] over the whole vocabulary (all-reduced)
  torch::Tensor idx;      // [n] local column of the target (0 where not this rank's)
  torch::Tensor mine;     // [n] the target is this rank's (and not ignored)
  torch::Tensor ignored;  // [n]
  int64_t real = 0;       // this rank's columns that are real vocabulary entries
};

CeParts ShiftedExpLoss(torch::Tensor logits, const torch::Tensor& targets, const CeArgs& a) {
  CeParts p;
  const int64_t v = logits.size(1);
  p.real = std::max<int64_t>(0, std::min(v, a.vocab_size - a.start));
  // Padded vocabulary entries never take part.
  if (p.real < v)
    logits.narrow(1, p.real, v - p.real).fill_(-std::numeric_limits<float>::infinity());
  torch::Tensor local = targets - a.start;
  p.ignored = targets.eq(a.ignore_index);
  p.mine = (local >= 0).logical_and(local < v).logical_and(p.ignored.logical_not());
  p.idx = local.masked_fill(p.mine.logical_not(), 0);
  torch::Tensor target_logit =
      logits.gather(1, p.idx.unsqueeze(1)).squeeze(1).masked_fill(p.mine.logical_not(), 0.0);
  torch::Tensor sum_logits;  // for label smoothing: sum of the real logits
  if (a.smoothing > 0) sum_logits = logits.narrow(1, 0, p.real).sum(1);
  torch::Tensor max = std::get<0>(logits.max(1));
  if (a.tp->size() > 1) BRAID_CHECK_OK(a.tp->AllReduce(max, ReduceOp::kMax));
  logits.sub_(max.unsqueeze(1));
  target_logit = (target_logit - max).masked_fill(p.mine.logical_not(), 0.0);
  p.exp = logits.exp_();
  p.sum_exp = p.exp.sum(1);
  if (a.tp->size() > 1) {
    // One all-reduce for the sums: [sum_exp | target_logit | sum_logits].
    std::vector<torch::Tensor> parts = {p.sum_exp, target_logit};
    if (a.smoothing > 0) parts.push_back(sum_logits);
    torch::Tensor packed = torch::stack(parts);
    BRAID_CHECK_OK(a.tp->AllReduce(packed, ReduceOp::kSum));
    p.sum_exp = packed[0];
    target_logit = packed[1];
    if (a.smoothing > 0) sum_logits = packed[2];
  }
  if (a.smoothing > 0) sum_logits = sum_logits - static_cast<double>(a.vocab_size) * max;
  // Shifted logits (by the global max): loss = log Z - z_t.
  torch::Tensor log_z = p.sum_exp.log();
  p.loss = log_z - target_logit;
  if (a.smoothing > 0) {
    torch::Tensor mean_logp = sum_logits / static_cast<double>(a.vocab_size) - log_z;
    p.loss = (1.0 - a.smoothing) * p.loss - a.smoothing * mean_logp;
  }
  p.loss.masked_fill_(p.ignored, 0.0);
  return p;
}

struct ParallelCe : public torch::autograd::Function<ParallelCe> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits_in,
                               const torch::Tensor& targets, Communicator* tp, int64_t start,
                               int64_t vocab_size, int64_t ignore_index, double smoothing) {
    torch::NoGradGuard no_grad;
    // fp32 at least (fp64 stays fp64: the equivalence tests run in double).
    const auto compute = logits_in.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
    // The logits are consumed: exp and softmax are computed in place (nothing else needs them;
    // the matmul that made them keeps its inputs, not its output). Only a dtype change copies.
    CeParts p = ShiftedExpLoss(logits_in.to(compute).contiguous(), targets,
                               CeArgs{tp, start, vocab_size, ignore_index, smoothing});
    ctx->saved_data["softmax"] = p.exp.div_(p.sum_exp.unsqueeze(1));  // kept for backward
    ctx->saved_data["idx"] = p.idx;
    ctx->saved_data["mine"] = p.mine;
    ctx->saved_data["ignored"] = p.ignored;
    ctx->saved_data["smoothing"] = smoothing;
    ctx->saved_data["real"] = p.real;
    ctx->saved_data["vocab"] = vocab_size;
    ctx->saved_data["dtype"] = static_cast<int64_t>(logits_in.scalar_type());
    return p.loss;
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

// One chunk of rows through the projection (and the bias `b`, when defined) and the loss. With
// grads, writes this chunk's rows of grad_h and adds its part of grad_w and grad_b (upstream
// gradient `scale` per row). -> the chunk's summed loss.
torch::Tensor ChunkLoss(const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& b,
                        const torch::Tensor& targets, const CeArgs& a, double scale,
                        torch::Tensor* grad_h, torch::Tensor* grad_w, torch::Tensor* grad_b) {
  const auto compute = h.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  torch::Tensor logits = torch::matmul(h, w.t()).to(compute);
  if (b.defined()) logits.add_(b.to(compute));
  CeParts p = ShiftedExpLoss(logits.contiguous(), targets, a);
  const torch::Tensor &exp = p.exp, &sum_exp = p.sum_exp, &idx = p.idx, &mine = p.mine;
  const torch::Tensor& ignored = p.ignored;
  const int64_t real = p.real;
  if (grad_h != nullptr) {
    // The logits' gradient is G = diag(r) E - diag(c) onehot - diag(k) s/V [real columns], with E
    // the shifted exponentials (exp above, not normalised), k = `scale` on kept rows (0 on
    // ignored), r = k / sum_exp, c = k (1 - s) on rows whose target is this rank's. G is never
    // formed: the row scalings move onto the [chunk, H] side of the two GEMMs, and the one-hot
    // and smoothing terms are gathers and sums of rows. So after the exponentials no pass runs
    // over the [chunk, V/tp] block but the GEMMs that read it.
    const auto dt = exp.scalar_type();
    torch::Tensor keep = ignored.logical_not().to(dt).mul_(scale);
    torch::Tensor r = keep / sum_exp;
    torch::Tensor c = keep * mine.to(dt) * (1.0 - a.smoothing);
    torch::Tensor e = exp.to(h.scalar_type());
    torch::Tensor hc = h.to(dt);
    torch::Tensor wc = w.to(dt);
    // grad_h = r (E w) - c w[target] - k s/V sum(w[real rows])
    torch::Tensor ew = torch::matmul(e, w).to(dt);
    ew.mul_(r.unsqueeze(1)).sub_(wc.index_select(0, idx).mul_(c.unsqueeze(1)));
    if (a.smoothing > 0 && real > 0) {
      ew.sub_((keep * (a.smoothing / a.vocab_size)).unsqueeze(1) *
              wc.narrow(0, 0, real).sum(0).unsqueeze(0));
    }
    grad_h->copy_(ew);
    // grad_w += E^T (r h) - onehot^T (c h) - s/V [real rows] sum(k h)
    torch::Tensor rh = (hc * r.unsqueeze(1)).to(h.scalar_type());
    if (grad_w->scalar_type() == e.scalar_type()) {
      grad_w->addmm_(e.t(), rh);  // accumulated in the GEMM itself (beta = 1)
    } else {
      grad_w->add_(torch::matmul(e.t(), rh));
    }
    grad_w->index_add_(0, idx, (hc * c.unsqueeze(1)).neg_().to(grad_w->scalar_type()));
    if (a.smoothing > 0 && real > 0) {
      grad_w->narrow(0, 0, real)
          .sub_(((hc * keep.unsqueeze(1)).sum(0) * (a.smoothing / a.vocab_size))
                    .unsqueeze(0)
                    .to(grad_w->scalar_type()));
    }
    // grad_b += E^T r - onehot^T c - s/V [real columns] sum(k): the columns' sums of G.
    if (grad_b != nullptr && grad_b->defined()) {
      grad_b->add_(torch::mv(e.t(), r.to(e.scalar_type())).to(grad_b->scalar_type()));
      grad_b->index_add_(0, idx, c.neg().to(grad_b->scalar_type()));
      if (a.smoothing > 0 && real > 0) {
        grad_b->narrow(0, 0, real).sub_(keep.sum().item<double>() * (a.smoothing / a.vocab_size));
      }
    }
  }
  return p.loss.sum();
}

// The mean loss over all rows of h, chunk by chunk; with grad_h and grad_w (fp32 or fp64
// accumulators of h's and w's shapes) also their gradients for an upstream gradient of 1.
torch::Tensor MeanOverChunks(const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& b,
                             const torch::Tensor& targets, const CeArgs& a, int64_t chunk,
                             torch::Tensor* grad_h, torch::Tensor* grad_w, torch::Tensor* grad_b) {
  const int64_t n = h.size(0);
  torch::Tensor total = torch::zeros(
      {}, h.options().dtype(h.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat));
  for (int64_t r = 0; r < n; r += chunk) {
    const int64_t c = std::min(chunk, n - r);
    torch::Tensor gh;
    if (grad_h != nullptr) gh = grad_h->narrow(0, r, c);
    total += ChunkLoss(h.narrow(0, r, c), w, b, targets.narrow(0, r, c), a, 1.0 / n,
                       grad_h != nullptr ? &gh : nullptr, grad_w, grad_b);
  }
  return total / static_cast<double>(n);
}

struct ChunkedCe : public torch::autograd::Function<ChunkedCe> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& w,
                               const torch::Tensor& b, const torch::Tensor& targets,
                               Communicator* tp, int64_t start, int64_t vocab_size, int64_t chunk,
                               int64_t ignore_index, double smoothing) {
    torch::NoGradGuard no_grad;
    const auto acc = h.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
    torch::Tensor grad_h = torch::empty(h.sizes(), h.options().dtype(acc));
    torch::Tensor grad_w = torch::zeros(w.sizes(), w.options().dtype(acc));
    // No bias comes as an empty tensor (a custom function's inputs must all be defined).
    const torch::Tensor bias = b.numel() > 0 ? b : torch::Tensor();
    torch::Tensor grad_b;
    if (bias.defined()) grad_b = torch::zeros(b.sizes(), b.options().dtype(acc));
    torch::Tensor loss =
        MeanOverChunks(h, w, bias, targets, CeArgs{tp, start, vocab_size, ignore_index, smoothing},
                       chunk, &grad_h, &grad_w, &grad_b);
    ctx->saved_data["grad_h"] = grad_h;
    ctx->saved_data["grad_w"] = grad_w;
    ctx->saved_data["grad_b"] = grad_b;
    ctx->saved_data["b_dtype"] = static_cast<int64_t>(b.scalar_type());
    ctx->saved_data["h_dtype"] = static_cast<int64_t>(h.scalar_type());
    ctx->saved_data["w_dtype"] = static_cast<int64_t>(w.scalar_type());
    return loss;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad) {
    torch::Tensor grad_h = ctx->saved_data["grad_h"].toTensor();
    torch::Tensor grad_w = ctx->saved_data["grad_w"].toTensor();
    auto h_dtype = static_cast<at::ScalarType>(ctx->saved_data["h_dtype"].toInt());
    auto w_dtype = static_cast<at::ScalarType>(ctx->saved_data["w_dtype"].toInt());
    torch::Tensor grad_b = ctx->saved_data["grad_b"].toTensor();
    auto b_dtype = static_cast<at::ScalarType>(ctx->saved_data["b_dtype"].toInt());
    ctx->saved_data.clear();
    // The upstream gradient of the mean: 1 in training (loss.backward()), so usually no pass.
    torch::Tensor s = grad[0].to(grad_h.scalar_type());
    if (s.item<double>() != 1.0) {
      grad_h.mul_(s);
      grad_w.mul_(s);
      if (grad_b.defined()) grad_b.mul_(s);
    }
    return {grad_h.to(h_dtype),
            grad_w.to(w_dtype),
            grad_b.defined() ? grad_b.to(b_dtype) : torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};
}  // namespace

torch::Tensor ChunkedVocabParallelLoss(const torch::Tensor& h, const torch::Tensor& weight,
                                       const torch::Tensor& targets, Communicator& tp,
                                       VocabShard shard, int64_t chunk_tokens, int64_t ignore_index,
                                       double label_smoothing, const torch::Tensor& bias) {
  BRAID_CHECK(chunk_tokens > 0) << "chunk_tokens must be positive";
  BRAID_CHECK(h.dim() == 2 && weight.dim() == 2 && h.size(1) == weight.size(1) &&
              targets.numel() == h.size(0))
      << "ChunkedVocabParallelLoss: h " << h.sizes() << ", weight " << weight.sizes()
      << ", targets " << targets.sizes();
  BRAID_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)))
      << "ChunkedVocabParallelLoss: bias " << bias.sizes() << " for weight " << weight.sizes();
  if (torch::GradMode::is_enabled() &&
      (h.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()))) {
    return ChunkedCe::apply(h, weight, bias.defined() ? bias : torch::empty({0}, weight.options()),
                            targets, &tp, shard.start, shard.vocab_size, chunk_tokens, ignore_index,
                            label_smoothing);
  }
  // Evaluation: the loss alone, chunk by chunk.
  torch::NoGradGuard no_grad;
  return MeanOverChunks(h, weight, bias, targets,
                        CeArgs{&tp, shard.start, shard.vocab_size, ignore_index, label_smoothing},
                        chunk_tokens, nullptr, nullptr, nullptr);
}

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

torch::Tensor ChunkedVocabParallelArgmax(const torch::Tensor& h, const torch::Tensor& weight,
                                         const torch::Tensor& bias, Communicator& tp,
                                         VocabShard shard, int64_t chunk_tokens) {
  BRAID_CHECK(chunk_tokens > 0) << "chunk_tokens must be positive";
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> ids;
  for (int64_t at = 0; at < h.size(0); at += chunk_tokens) {
    torch::Tensor logits =
        torch::matmul(h.narrow(0, at, std::min(chunk_tokens, h.size(0) - at)), weight.t());
    if (bias.defined()) logits = logits + bias;
    ids.push_back(VocabParallelArgmax(logits, tp, shard));
  }
  return ids.empty() ? torch::zeros({0}, h.options().dtype(torch::kLong)) : torch::cat(ids);
}

}  // namespace braid
