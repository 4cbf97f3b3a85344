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

torch::Tensor AllGatherLastDim(const torch::Tensor& x, Communicator& c) {
  if (c.size() == 1) return x;
  torch::Tensor in = x.contiguous();
  std::vector<int64_t> shape = {c.size()};
  for (int64_t s : in.sizes()) shape.push_back(s);
  torch::Tensor out = torch::empty(shape, in.options());
  BRAID_CHECK_OK(c.AllGather(in, out));
  return torch::cat(out.unbind(0), -1);
}

torch::Tensor ChunkLastDim(const torch::Tensor& x, Communicator& c) {
  if (c.size() == 1) return x;
  int64_t n = x.size(-1);
  BRAID_CHECK(n % c.size() == 0) << "last dim " << n << " not divisible by TP " << c.size();
  return x.narrow(-1, c.rank() * (n / c.size()), n / c.size()).contiguous();
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

struct ScatterTo : public torch::autograd::Function<ScatterTo> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, Communicator* c) {
    Keep(ctx, c);
    return ChunkLastDim(x, *c);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list g) {
    return {AllGatherLastDim(g[0], *Comm(ctx)), torch::Tensor()};
  }
};

struct GatherFrom : public torch::autograd::Function<GatherFrom> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, Communicator* c) {
    Keep(ctx, c);
    return AllGatherLastDim(x, *c);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list g) {
    return {ChunkLastDim(g[0], *Comm(ctx)), torch::Tensor()};
  }
};
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

}  // namespace braid
