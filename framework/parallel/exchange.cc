// The expert-parallel token exchange (see exchange.h).
#include "framework/parallel/exchange.h"

#include <atomic>
#include <chrono>

#include "framework/core/check.h"

namespace braid {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

std::atomic<int64_t> g_nanoseconds{0};  // the backward may run on the autograd engine's thread

torch::Tensor Exchange(const torch::Tensor& x, Communicator& c, const std::vector<int64_t>& send,
                       const std::vector<int64_t>& recv) {
  const auto start = std::chrono::steady_clock::now();
  int64_t rows = 0;
  for (int64_t r : recv) rows += r;
  std::vector<int64_t> shape = x.sizes().vec();
  shape[0] = rows;
  torch::Tensor out = torch::empty(shape, x.options());
  BRAID_CHECK_OK(c.AllToAll(x.contiguous(), send, out, recv));
  g_nanoseconds +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  return out;
}

struct AllToAllFn : public torch::autograd::Function<AllToAllFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, Communicator* c,
                               std::vector<int64_t> send, std::vector<int64_t> recv) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(c);
    ctx->saved_data["send"] = send;
    ctx->saved_data["recv"] = recv;
    return Exchange(x, *c, send, recv);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list g) {
    auto* c = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    return {Exchange(g[0], *c, ctx->saved_data["recv"].toIntVector(),
                     ctx->saved_data["send"].toIntVector()),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};
}  // namespace

torch::Tensor AllToAllRows(const torch::Tensor& x, Communicator& c,
                           const std::vector<int64_t>& send, const std::vector<int64_t>& recv) {
  return AllToAllFn::apply(x, &c, send, recv);
}

double TakeAllToAllSeconds() { return static_cast<double>(g_nanoseconds.exchange(0)) * 1e-9; }

}  // namespace braid
