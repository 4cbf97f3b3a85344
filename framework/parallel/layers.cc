// Tensor-parallel layers (see layers.h).
#include "framework/parallel/layers.h"

#include <ATen/CPUGeneratorImpl.h>

#include "framework/core/check.h"
#include "framework/kernels/kernels.h"
#include "framework/parallel/mappings.h"

namespace braid {
namespace {
uint64_t Fnv(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// The column-parallel GEMM under sequence parallelism (Megatron's scheme): forward all-gathers
// this rank's sequence slice and multiplies the whole sequence, but keeps only the slice for
// backward (an all-gather mapping followed by Linear would keep the gathered input: TP times the
// memory). Backward gathers the slice again while dx = dy @ w runs, and reduce-scatters dx along
// the sequence while dw = dy^T @ x runs. The bias is added outside.
struct GatheredLinear : public torch::autograd::Function<GatheredLinear> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w, Communicator* c) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(c);
    return Linear(AllGatherDim(x, *c, 1), w, torch::Tensor());
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad) {
    Communicator& c = *reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor x = saved[0].contiguous(), &w = saved[1];
    std::vector<int64_t> shape = {c.size()};
    for (int64_t n : x.sizes()) shape.push_back(n);
    torch::Tensor gathered = torch::empty(shape, x.options());
    auto gather = c.AllGatherAsync(x, gathered);
    BRAID_CHECK_OK(gather.status());
    torch::Tensor dx_whole = LinearGradInput(grad[0], w);
    BRAID_CHECK_OK((*gather)->Wait());
    torch::Tensor blocks = torch::stack(dx_whole.chunk(c.size(), 1), 0);  // rank r's at [r]
    torch::Tensor dx = torch::empty(blocks.sizes().slice(1), blocks.options());
    auto scatter = c.ReduceScatterAsync(blocks, dx, ReduceOp::kSum);
    BRAID_CHECK_OK(scatter.status());
    torch::Tensor dw = LinearGradWeight(grad[0], torch::cat(gathered.unbind(0), 1), w);
    BRAID_CHECK_OK((*scatter)->Wait());
    return {dx.to(x.scalar_type()), dw, torch::Tensor()};
  }
};
}  // namespace

torch::Tensor TpModule::Param(const std::string& name, torch::Tensor value, TpParam layout) {
  tp_params_[name] = layout;
  return register_parameter(name, std::move(value));
}

std::map<std::string, TpParam> CollectTpParams(torch::nn::Module& root) {
  std::map<std::string, TpParam> out;
  for (const auto& p : root.named_parameters()) out[p.key()] = TpParam{};
  for (const auto& m : root.named_modules()) {
    auto* tm = dynamic_cast<TpModule*>(m.value().get());
    if (tm == nullptr) continue;
    for (const auto& [name, layout] : tm->tp_params()) {
      out[m.key().empty() ? name : m.key() + "." + name] = layout;
    }
  }
  return out;
}

int64_t ShardDim(int64_t full, TpParam layout, int tp) {
  if (layout.axis < 0) return full;
  return (full - layout.replicated_tail) / tp + layout.replicated_tail;
}

int64_t FullDim(int64_t shard, TpParam layout, int tp) {
  if (layout.axis < 0) return shard;
  return (shard - layout.replicated_tail) * tp + layout.replicated_tail;
}

torch::Tensor ShardOf(const torch::Tensor& full, TpParam layout, int rank, int size) {
  if (layout.axis < 0 || size == 1) return full.clone();
  int axis = layout.axis;
  if (const int64_t tail = layout.replicated_tail; tail > 0) {
    BRAID_CHECK(layout.groups == 1 && full.size(axis) > tail);
    const int64_t split = full.size(axis) - tail;
    TpParam rest = layout;
    rest.replicated_tail = 0;
    return torch::cat(
        {ShardOf(full.narrow(axis, 0, split), rest, rank, size), full.narrow(axis, split, tail)},
        axis);
  }
  std::vector<int64_t> shape = full.sizes().vec();
  BRAID_CHECK(shape[axis] % (layout.groups * size) == 0)
      << "dimension " << shape[axis] << " not divisible by groups x TP " << layout.groups << "x"
      << size;
  // [..., groups, part, ...] -> slice `part` -> [..., groups * part / size, ...]
  std::vector<int64_t> grouped(shape.begin(), shape.begin() + axis);
  grouped.push_back(layout.groups);
  grouped.push_back(shape[axis] / layout.groups);
  grouped.insert(grouped.end(), shape.begin() + axis + 1, shape.end());
  int64_t part = shape[axis] / layout.groups / size;
  torch::Tensor slice = full.reshape(grouped).narrow(axis + 1, rank * part, part);
  shape[axis] = layout.groups * part;
  return slice.reshape(shape).clone();
}

torch::Tensor InitShard(const TpEnv& env, const std::string& name,
                        const std::vector<int64_t>& full_shape, double std, TpParam layout) {
  torch::Tensor full;
  if (std == 0) {
    full = torch::zeros(full_shape);
  } else {
    auto gen = at::detail::createCPUGenerator(env.seed ^ Fnv(name));
    full = at::normal(0.0, std, full_shape, gen);
  }
  return ShardOf(full, layout, env.rank(), env.size());
}

ColumnParallelLinear::ColumnParallelLinear(const TpEnv& env, const std::string& name, int64_t in,
                                           int64_t out, bool with_bias, double init_std,
                                           bool gather_output, int groups, int64_t replicated_tail)
    : tp_(env.tp),
      gather_output_(gather_output),
      sequence_(env.sequence_parallel),
      replicated_tail_(replicated_tail) {
  TpParam layout{0, groups, false, replicated_tail_};
  weight = Param("weight", InitShard(env, name + ".weight", {out, in}, init_std, layout), layout);
  if (with_bias) bias = Param("bias", InitShard(env, name + ".bias", {out}, 0.0, layout), layout);
}

torch::Tensor ColumnParallelLinear::forward(const torch::Tensor& x) {
  torch::Tensor w = weight, b = bias;
  if (replicated_tail_ > 0 && tp_->size() > 1) {  // the copies' gradients summed over TP
    auto tail = [&](const torch::Tensor& t) {
      const int64_t split = t.size(0) - replicated_tail_;
      return torch::cat(
          {t.narrow(0, 0, split), CopyToTp(t.narrow(0, split, replicated_tail_), *tp_)});
    };
    w = tail(weight);
    if (b.defined()) b = tail(bias);
  }
  torch::Tensor y;
  if (sequence_ && tp_->size() > 1) {
    y = GatheredLinear::apply(x, w, tp_.get());
    if (b.defined()) y = y + b;
  } else {
    y = Linear(CopyToTp(x, *tp_), w, b);
  }
  return gather_output_ ? GatherFromTp(y, *tp_) : y;
}

RowParallelLinear::RowParallelLinear(const TpEnv& env, const std::string& name, int64_t in,
                                     int64_t out, bool with_bias, double init_std)
    : tp_(env.tp), sequence_(env.sequence_parallel) {
  weight = Param("weight", InitShard(env, name + ".weight", {out, in}, init_std, {1, 1}), {1, 1});
  if (with_bias) bias = Param("bias", torch::zeros({out}), TpParam{});
}

torch::Tensor RowParallelLinear::forward(const torch::Tensor& x) {
  torch::Tensor partial = Linear(x, weight, torch::Tensor());
  if (!sequence_) {
    torch::Tensor y = ReduceFromTp(partial, *tp_);
    return bias.defined() ? y + bias : y;
  }
  torch::Tensor y = ReduceScatterToSequence(partial, *tp_);
  return bias.defined() ? y + CopyToTp(bias, *tp_) : y;
}

namespace {
// This rank's rows of a [padded_vocab, dim] weight drawn from (seed, name), the padding rows zero.
torch::Tensor VocabWeightShard(const TpEnv& env, const std::string& name, int64_t padded_vocab,
                               int64_t vocab_size, int64_t dim, double init_std) {
  BRAID_CHECK(padded_vocab % env.size() == 0 && padded_vocab >= vocab_size);
  auto gen = at::detail::createCPUGenerator(env.seed ^ Fnv(name));
  torch::Tensor full = at::normal(0.0, init_std, {padded_vocab, dim}, gen);
  full.narrow(0, vocab_size, padded_vocab - vocab_size).zero_();
  return ShardOf(full, {0, 1, true}, env.rank(), env.size());
}
}  // namespace

VocabParallelEmbedding::VocabParallelEmbedding(const TpEnv& env, const std::string& name,
                                               int64_t padded_vocab, int64_t vocab_size,
                                               int64_t dim, double init_std)
    : tp_(env.tp) {
  per_partition_ = padded_vocab / env.size();
  start_ = env.rank() * per_partition_;
  weight = Param("weight",
                 VocabWeightShard(env, name + ".weight", padded_vocab, vocab_size, dim, init_std),
                 {0, 1, true});
}

torch::Tensor VocabParallelEmbedding::forward(const torch::Tensor& ids) {
  if (tp_->size() == 1) return torch::embedding(weight, ids);
  torch::Tensor local = ids - start_;
  torch::Tensor outside = (local < 0).logical_or(local >= per_partition_);
  torch::Tensor e = torch::embedding(weight, local.masked_fill(outside, 0));
  e = e.masked_fill(outside.unsqueeze(-1), 0.0);
  return ReduceFromTp(e, *tp_);
}

VocabParallelOutput::VocabParallelOutput(const TpEnv& env, const std::string& name,
                                         std::shared_ptr<VocabParallelEmbedding> tied,
                                         int64_t padded_vocab, int64_t vocab_size, int64_t dim,
                                         double init_std)
    : tp_(env.tp), tied_(std::move(tied)) {
  if (tied_ == nullptr) {
    weight = Param("weight",
                   VocabWeightShard(env, name + ".weight", padded_vocab, vocab_size, dim, init_std),
                   {0, 1, true});
  }
}

torch::Tensor VocabParallelOutput::forward(const torch::Tensor& x) {
  const torch::Tensor& w = tied_ != nullptr ? tied_->weight : weight;
  return torch::matmul(CopyToTp(x, *tp_), w.t());
}

}  // namespace braid
