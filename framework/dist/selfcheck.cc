// Closed-form collective checks (see selfcheck.h).
#include "framework/dist/selfcheck.h"

#include <torch/torch.h>

#include "absl/strings/str_format.h"
#include "framework/core/status.h"

namespace braid::selfcheck {
namespace {
constexpr int64_t kN = 1037;  // odd, not a multiple of any block or vector width

at::Tensor Iota(int64_t n) { return torch::arange(n, torch::kDouble); }

// Compares in double after both sides went through `dtype` (inputs are exact small integers).
absl::Status Expect(const Communicator& c, const char* what, c10::ScalarType dtype,
                    const at::Tensor& got, const at::Tensor& want_double) {
  at::Tensor want = want_double.to(dtype).to(torch::kDouble);
  at::Tensor have = got.to(torch::kDouble).reshape(want.sizes());
  if (torch::equal(have, want)) return absl::OkStatus();
  int64_t bad = (have != want).nonzero()[0].item<int64_t>();
  return absl::InternalError(
      absl::StrFormat("%s %s on '%s' (rank %d of %d): element %d is %g, the closed form gives %g",
                      what, c10::toString(dtype), c.name(), c.rank(), c.size(), bad,
                      have[bad].item<double>(), want[bad].item<double>()));
}

// Runs `issue` for `count` tensors: synchronously, or all async and waited last-first.
absl::Status Drive(bool async, int count,
                   const std::function<absl::StatusOr<WorkHandle>(int)>& issue) {
  std::vector<WorkHandle> pending;
  for (int k = 0; k < count; ++k) {
    BRAID_ASSIGN_OR_RETURN(WorkHandle w, issue(k));
    if (async) {
      pending.push_back(w);
    } else {
      BRAID_RETURN_IF_ERROR(w->Wait());
    }
  }
  for (auto it = pending.rbegin(); it != pending.rend(); ++it) BRAID_RETURN_IF_ERROR((*it)->Wait());
  return absl::OkStatus();
}
}  // namespace

std::vector<c10::ScalarType> SupportedDtypes() {
  return {torch::kFloat, torch::kDouble, torch::kBFloat16, torch::kHalf, torch::kInt, torch::kLong};
}

bool IsFloating(c10::ScalarType t) { return at::isFloatingType(t); }

absl::Status AllReduce(Communicator& c, c10::ScalarType dtype, ReduceOp op, bool async) {
  const double s = c.size();
  const int copies = async ? 3 : 1;
  std::vector<at::Tensor> t;
  for (int k = 0; k < copies; ++k) {
    t.push_back((Iota(kN).remainder(4) + c.rank() + 1 + k).to(dtype));
  }
  BRAID_RETURN_IF_ERROR(Drive(async, copies, [&](int k) { return c.AllReduceAsync(t[k], op); }));
  for (int k = 0; k < copies; ++k) {
    at::Tensor m = Iota(kN).remainder(4) + k;
    at::Tensor want = op == ReduceOp::kMax ? m + s : s * (s + 1) / 2 + s * m;
    if (op == ReduceOp::kAvg) want = want / s;
    BRAID_RETURN_IF_ERROR(Expect(
        c, absl::StrFormat("all_reduce(%s)%s", ReduceOpName(op), async ? " async" : "").c_str(),
        dtype, t[k], want));
  }
  return absl::OkStatus();
}

absl::Status AllGather(Communicator& c, c10::ScalarType dtype, bool async) {
  const int copies = async ? 2 : 1;
  std::vector<at::Tensor> in, out;
  for (int k = 0; k < copies; ++k) {
    in.push_back((Iota(kN).remainder(7) + c.rank() * 8 + k).to(dtype));
    out.push_back(torch::full({c.size(), kN}, -1, torch::TensorOptions().dtype(dtype)));
  }
  BRAID_RETURN_IF_ERROR(
      Drive(async, copies, [&](int k) { return c.AllGatherAsync(in[k], out[k]); }));
  for (int k = 0; k < copies; ++k) {
    at::Tensor want = Iota(kN).remainder(7).unsqueeze(0) +
                      torch::arange(c.size(), torch::kDouble).unsqueeze(1) * 8 + k;
    BRAID_RETURN_IF_ERROR(
        Expect(c, async ? "all_gather async" : "all_gather", dtype, out[k], want));
  }
  return absl::OkStatus();
}

absl::Status ReduceScatter(Communicator& c, c10::ScalarType dtype, ReduceOp op, bool async) {
  const double s = c.size();
  const int copies = async ? 2 : 1;
  std::vector<at::Tensor> in, out;
  for (int k = 0; k < copies; ++k) {
    in.push_back((Iota(kN * c.size()).remainder(5) + c.rank() + 1 + k).to(dtype));
    out.push_back(torch::full({kN}, -1, torch::TensorOptions().dtype(dtype)));
  }
  BRAID_RETURN_IF_ERROR(
      Drive(async, copies, [&](int k) { return c.ReduceScatterAsync(in[k], out[k], op); }));
  for (int k = 0; k < copies; ++k) {
    at::Tensor m = (Iota(kN) + c.rank() * kN).remainder(5) + k;
    at::Tensor want = op == ReduceOp::kMax ? m + s : s * (s + 1) / 2 + s * m;
    if (op == ReduceOp::kAvg) want = want / s;
    BRAID_RETURN_IF_ERROR(Expect(
        c, absl::StrFormat("reduce_scatter(%s)%s", ReduceOpName(op), async ? " async" : "").c_str(),
        dtype, out[k], want));
  }
  return absl::OkStatus();
}

absl::Status Broadcast(Communicator& c, c10::ScalarType dtype, int root, bool async) {
  const int copies = async ? 2 : 1;
  std::vector<at::Tensor> t;
  for (int k = 0; k < copies; ++k) {
    t.push_back(c.rank() == root ? (Iota(kN).remainder(3) + 7 + root + k).to(dtype)
                                 : torch::full({kN}, -1, torch::TensorOptions().dtype(dtype)));
  }
  BRAID_RETURN_IF_ERROR(Drive(async, copies, [&](int k) { return c.BroadcastAsync(t[k], root); }));
  for (int k = 0; k < copies; ++k) {
    BRAID_RETURN_IF_ERROR(Expect(c, async ? "broadcast async" : "broadcast", dtype, t[k],
                                 Iota(kN).remainder(3) + 7 + root + k));
  }
  return absl::OkStatus();
}

absl::Status Barrier(Communicator& c, bool async) {
  return Drive(async, async ? 2 : 1, [&](int) { return c.BarrierAsync(); });
}

absl::Status RunAll(Communicator& c, int* checks_run) {
  int n = 0;
  for (bool async : {false, true}) {
    for (c10::ScalarType dtype : SupportedDtypes()) {
      for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
        if (op == ReduceOp::kAvg && !IsFloating(dtype)) continue;
        BRAID_RETURN_IF_ERROR(AllReduce(c, dtype, op, async));
        BRAID_RETURN_IF_ERROR(ReduceScatter(c, dtype, op, async));
        n += 2;
      }
      BRAID_RETURN_IF_ERROR(AllGather(c, dtype, async));
      for (int root = 0; root < c.size(); ++root) {
        BRAID_RETURN_IF_ERROR(Broadcast(c, dtype, root, async));
      }
      n += 1 + c.size();
    }
    BRAID_RETURN_IF_ERROR(Barrier(c, async));
    ++n;
  }
  if (checks_run != nullptr) *checks_run = n;
  return absl::OkStatus();
}

}  // namespace braid::selfcheck
