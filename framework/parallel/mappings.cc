// TP mappings (see mappings.h). A collective that fails here is a bug or a dead peer, not user
// input: BRAID_CHECK brings the job down with the message.
#include "framework/parallel/mappings.h"

#include "framework/core/check.h"

namespace braid {

torch::Tensor AllReduceSum(const torch::Tensor& x, Communicator& c) {
  if (c.size() == 1) return x;
  torch::Tensor y = x.contiguous().clone();
  BRAID_CHECK_OK(c.AllReduce(y, ReduceOp::kSum));
  return y;
}

torch::Tensor AllGatherDim(const torch::Tensor& x, Communicator& c, int64_t dim) {
  if (c.size() == 1) return x;
  torch::Tensor in = x.contiguous();
  std::vector<int64_t> shape = {c.size()};
  for (int64_t s : in.sizes()) shape.push_back(s);
  torch::Tensor out = torch::empty(shape, in.options());
  BRAID_CHECK_OK(c.AllGather(in, out));
  return torch::cat(out.unbind(0), dim);
}

namespace {
void CheckDivides(const torch::Tensor& x, Communicator& c, int64_t dim) {
  const int64_t n = x.size(dim);
  BRAID_CHECK(n % c.size() == 0)
      << (dim == 1 ? "parallel.sequence_parallel: a sequence of " : "a last dimension of ") << n
      << " does not split over the " << c.size() << " ranks of TP"
      << (dim == 1 ? ". HINT: make every sequence length (model.seq_length, the decoder's) a "
                     "multiple of parallel.tensor_parallel_size."
                   : "");
}
}  // namespace

torch::Tensor ChunkDim(const torch::Tensor& x, Communicator& c, int64_t dim) {
  if (c.size() == 1) return x;
  CheckDivides(x, c, dim);
  const int64_t n = x.size(dim) / c.size();
  return x.narrow(dim, c.rank() * n, n).contiguous();
}

torch::Tensor ReduceScatterDim(const torch::Tensor& x, Communicator& c, int64_t dim) {
  if (c.size() == 1) return x;
  CheckDivides(x, c, dim);
  torch::Tensor in = torch::stack(x.chunk(c.size(), dim), 0);  // rank r's block at [r]
  torch::Tensor out = torch::empty(in.sizes().slice(1), in.options());
  BRAID_CHECK_OK(c.ReduceScatter(in, out, ReduceOp::kSum));
  return out;
}

namespace {
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

Communicator* Comm(AutogradContext* ctx) {
  return reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
}
void Keep(AutogradContext* ctx, Communicator* c) {
  ctx->saved_data["comm"] = reinterpret_cast<int64_t>(c);
}

struct CopyTo : public torch::autograd::Function<CopyTo> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, Communicator* c) {
    Keep(ctx, c);
    return x.view_as(x);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list g) {
    return {AllReduceSum(g[0], *Comm(ctx)), torch::Tensor()};
  }
};

struct ReduceFrom : public torch::autograd::Function<ReduceFrom> {
  static torch::Tensor forward(AutogradContext*, const torch::Tensor& x, Communicator* c) {
    return AllReduceSum(x, *c);
  }
  static tensor_list backward(AutogradContext*, tensor_list g) { return {g[0], torch::Tensor()}; }
};

// Forward `fwd`, backward `bwd`, each a collective along `dim` over the saved communicator.
using Collective = torch::Tensor (*)(const torch::Tensor&, Communicator&, int64_t);
template <Collective fwd, Collective bwd, int64_t dim>
struct Along : public torch::autograd::Function<Along<fwd, bwd, dim>> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, Communicator* c) {
    Keep(ctx, c);
    return fwd(x, *c, dim);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list g) {
    return {bwd(g[0], *Comm(ctx), dim), torch::Tensor()};
  }
};
using ScatterTo = Along<ChunkDim, AllGatherDim, -1>;
using GatherFrom = Along<AllGatherDim, ChunkDim, -1>;
using ScatterSeq = Along<ChunkDim, AllGatherDim, 1>;
using GatherSeq = Along<AllGatherDim, ChunkDim, 1>;
using ReduceScatterSeq = Along<ReduceScatterDim, AllGatherDim, 1>;
}  // namespace

torch::Tensor CopyToTp(const torch::Tensor& x, Communicator& tp) {
  return tp.size() == 1 ? x : CopyTo::apply(x, &tp);
}
torch::Tensor ReduceFromTp(const torch::Tensor& x, Communicator& tp) {
  return tp.size() == 1 ? x : ReduceFrom::apply(x, &tp);
}
torch::Tensor ScatterToTp(const torch::Tensor& x, Communicator& tp) {
  return tp.size() == 1 ? x : ScatterTo::apply(x, &tp);
}
torch::Tensor GatherFromTp(const torch::Tensor& x, Communicator& tp) {
  return tp.size() == 1 ? x : GatherFrom::apply(x, &tp);
}
torch::Tensor ScatterToSequence(const torch::Tensor& x, Communicator& tp) {
  return tp.size() == 1 ? x : ScatterSeq::apply(x, &tp);
}
torch::Tensor GatherFromSequence(const torch::Tensor& x, Communicator& tp) {
  return tp.size() == 1 ? x : GatherSeq::apply(x, &tp);
}
torch::Tensor ReduceScatterToSequence(const torch::Tensor& x, Communicator& tp) {
  return tp.size() == 1 ? x : ReduceScatterSeq::apply(x, &tp);
}

}  // namespace braid
