// Synchronous forms, argument checks, the world-of-one backend and the device router
// (see communicator.h and backend.h).
#include <atomic>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/dist/backend.h"

namespace braid {
namespace {
std::atomic<double> g_timeout_s{600.0};

absl::Status Await(absl::StatusOr<WorkHandle> work) {
  BRAID_RETURN_IF_ERROR(work.status());
  return (*work)->Wait();
}
}  // namespace

const char* ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
  }
  return "?";
}

void SetCollectiveTimeout(double seconds) { g_timeout_s = seconds; }
double CollectiveTimeout() { return g_timeout_s; }

absl::Status Communicator::AllReduce(const at::Tensor& t, ReduceOp op) {
  return Await(AllReduceAsync(t, op));
}
absl::Status Communicator::AllGather(const at::Tensor& in, const at::Tensor& out) {
  return Await(AllGatherAsync(in, out));
}
absl::Status Communicator::ReduceScatter(const at::Tensor& in, const at::Tensor& out, ReduceOp op) {
  return Await(ReduceScatterAsync(in, out, op));
}
absl::Status Communicator::Broadcast(const at::Tensor& t, int root) {
  return Await(BroadcastAsync(t, root));
}
absl::Status Communicator::Barrier() { return Await(BarrierAsync()); }
absl::Status Communicator::SendRecv(const std::vector<at::Tensor>& send,
                                    const std::vector<int>& send_to,
                                    const std::vector<at::Tensor>& recv,
                                    const std::vector<int>& recv_from, int tag) {
  return Await(SendRecvAsync(send, send_to, recv, recv_from, tag));
}

absl::Status Communicator::AllToAll(const at::Tensor& input, const std::vector<int64_t>& send_rows,
                                    const at::Tensor& output,
                                    const std::vector<int64_t>& recv_rows) {
  return Await(AllToAllAsync(input, send_rows, output, recv_rows));
}

absl::StatusOr<std::vector<int64_t>> AllToAllCounts(Communicator& comm,
                                                    const std::vector<int64_t>& send) {
  if (static_cast<int>(send.size()) != comm.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("all_to_all counts on communicator '%s': %d counts for %d ranks.",
                        comm.name(), send.size(), comm.size()));
  }
  const at::Tensor out = torch::empty({comm.size()}, torch::kLong);
  const std::vector<int64_t> ones(send.size(), 1);
  BRAID_RETURN_IF_ERROR(comm.AllToAll(torch::tensor(send, torch::kLong), ones, out, ones));
  return std::vector<int64_t>(out.data_ptr<int64_t>(), out.data_ptr<int64_t>() + comm.size());
}

namespace dist_internal {
namespace {
std::string Prefix(const Communicator& comm, const char* what) {
  return absl::StrFormat("%s on communicator '%s' (rank %d of %d): ", what, comm.name(),
                         comm.rank(), comm.size());
}
}  // namespace

absl::Status CheckTensor(const Communicator& comm, const char* what, const at::Tensor& t) {
  if (!t.defined()) {
    return absl::InvalidArgumentError(Prefix(comm, what) + "the tensor is undefined.");
  }
  switch (t.scalar_type()) {
    case at::kFloat:
    case at::kDouble:
    case at::kBFloat16:
    case at::kHalf:
    case at::kInt:
    case at::kLong:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          Prefix(comm, what), "dtype ", std::string(c10::toString(t.scalar_type())),
          " is not supported. HINT: use float32, float64, bfloat16, float16, int32 or int64."));
  }
  if (!t.is_contiguous()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Prefix(comm, what), "the tensor is not contiguous (sizes ",
                     c10::str(t.sizes()), ", strides ", c10::str(t.strides()),
                     "). HINT: call .contiguous() first, and copy the "
                     "result back if the collective is in place."));
  }
  return absl::OkStatus();
}

absl::Status CheckSameKind(const Communicator& comm, const char* what, const at::Tensor& a,
                           const at::Tensor& b) {
  BRAID_RETURN_IF_ERROR(CheckTensor(comm, what, a));
  BRAID_RETURN_IF_ERROR(CheckTensor(comm, what, b));
  if (a.scalar_type() != b.scalar_type() || a.device() != b.device()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Prefix(comm, what), "input and output differ (", c10::toString(a.scalar_type()), " on ",
        a.device().str(), " vs ", c10::toString(b.scalar_type()), " on ", b.device().str(),
        "). HINT: allocate the output with input.options()."));
  }
  return absl::OkStatus();
}

absl::Status CheckOp(const Communicator& comm, const char* what, const at::Tensor& t, ReduceOp op) {
  if (op == ReduceOp::kAvg && !at::isFloatingType(t.scalar_type())) {
    return absl::InvalidArgumentError(absl::StrCat(
        Prefix(comm, what), "avg needs a floating-point dtype, got ",
        c10::toString(t.scalar_type()), ". HINT: reduce with sum and divide yourself."));
  }
  return absl::OkStatus();
}

absl::Status CheckBlocks(const Communicator& comm, const char* what, const at::Tensor& big,
                         const at::Tensor& block) {
  if (big.numel() != block.numel() * comm.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%sthe large tensor has %d elements, expected size x block = %d x %d = %d.",
        Prefix(comm, what), big.numel(), comm.size(), block.numel(), block.numel() * comm.size()));
  }
  const char* b = static_cast<const char*>(big.data_ptr());
  const char* k = static_cast<const char*>(block.data_ptr());
  const int64_t bytes = block.numel() * block.element_size();
  const bool overlap = k < b + bytes * comm.size() && b < k + bytes;
  if (comm.size() > 1 && overlap && !IsRankBlock(comm, big, block)) {
    return absl::InvalidArgumentError(
        Prefix(comm, what) +
        "input and output overlap, and the smaller is not this rank's block of the larger. HINT: "
        "use separate tensors, or this rank's block for the in-place form.");
  }
  return absl::OkStatus();
}

bool IsRankBlock(const Communicator& comm, const at::Tensor& big, const at::Tensor& block) {
  return static_cast<const char*>(block.data_ptr()) ==
         static_cast<const char*>(big.data_ptr()) +
             comm.rank() * block.numel() * block.element_size();
}

absl::Status CheckRoot(const Communicator& comm, int root) {
  if (root < 0 || root >= comm.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%sroot %d is not a rank of it.", Prefix(comm, "broadcast"), root));
  }
  return absl::OkStatus();
}

absl::Status CheckP2p(const Communicator& comm, const std::vector<at::Tensor>& send,
                      const std::vector<int>& send_to, const std::vector<at::Tensor>& recv,
                      const std::vector<int>& recv_from) {
  if (send.size() != send_to.size() || recv.size() != recv_from.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s%d tensors to send to %d peers, %d to receive from %d peers: one peer per tensor.",
        Prefix(comm, "send_recv"), send.size(), send_to.size(), recv.size(), recv_from.size()));
  }
  for (int pass = 0; pass < 2; ++pass) {
    const std::vector<at::Tensor>& ts = pass == 0 ? send : recv;
    const std::vector<int>& peers = pass == 0 ? send_to : recv_from;
    for (size_t i = 0; i < ts.size(); ++i) {
      BRAID_RETURN_IF_ERROR(CheckTensor(comm, pass == 0 ? "send" : "recv", ts[i]));
      const bool self_ok = comm.size() == 1;
      if (peers[i] < 0 || peers[i] >= comm.size() || (peers[i] == comm.rank() && !self_ok)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%speer %d is not another rank of this communicator (ranks 0..%d).",
                            Prefix(comm, pass == 0 ? "send" : "recv"), peers[i], comm.size() - 1));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CheckAllToAll(const Communicator& comm, const at::Tensor& input,
                                      const std::vector<int64_t>& send_rows,
                                      const at::Tensor& output,
                                      const std::vector<int64_t>& recv_rows) {
  BRAID_RETURN_IF_ERROR(CheckTensor(comm, "all_to_all", input));
  BRAID_RETURN_IF_ERROR(CheckTensor(comm, "all_to_all", output));
  const auto describe = [](const at::Tensor& t) {
    std::string shape;
    for (int64_t d : t.sizes()) absl::StrAppend(&shape, shape.empty() ? "" : "x", d);
    return absl::StrCat(c10::toString(t.scalar_type()), " [", shape, "] on ", t.device().str());
  };
  if (input.scalar_type() != output.scalar_type() || input.device() != output.device() ||
      input.dim() != output.dim() || input.dim() == 0 ||
      input.sizes().slice(1) != output.sizes().slice(1)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%sinput %s and output %s differ in dtype, device or row shape (all but dim 0).",
        Prefix(comm, "all_to_all"), describe(input), describe(output)));
  }
  for (const auto* counts : {&send_rows, &recv_rows}) {
    const at::Tensor& t = counts == &send_rows ? input : output;
    int64_t sum = 0;
    bool negative = false;
    for (int64_t n : *counts) {
      sum += n;
      negative = negative || n < 0;
    }
    if (static_cast<int>(counts->size()) != comm.size() || negative || sum != t.size(0)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s%d %s counts summing to %d (%s), for %d ranks and %d rows of the %s.",
          Prefix(comm, "all_to_all"), counts->size(), counts == &send_rows ? "send" : "receive",
          sum, negative ? "some negative" : "none negative", comm.size(), t.size(0),
          counts == &send_rows ? "input" : "output"));
    }
  }
  const auto bytes = [](const at::Tensor& t) {
    return static_cast<const char*>(t.data_ptr()) +
           static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
  };
  if (input.numel() > 0 && output.numel() > 0 &&
      static_cast<const char*>(input.data_ptr()) < bytes(output) &&
      static_cast<const char*>(output.data_ptr()) < bytes(input)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%sinput and output overlap in memory; all-to-all is not in place.",
                        Prefix(comm, "all_to_all")));
  }
  int64_t row = static_cast<int64_t>(input.element_size());
  for (int64_t d = 1; d < input.dim(); ++d) row *= input.size(d);
  return row;
}

namespace {

class DoneWorkImpl : public Work {
 public:
  explicit DoneWorkImpl(absl::Status s) : status_(std::move(s)) {}
  absl::Status Wait() override { return status_; }

 private:
  absl::Status status_;
};

// A communicator of one rank: reductions and broadcast leave the tensor as it is, gathers copy.
class LocalCommunicator : public Communicator {
 public:
  explicit LocalCommunicator(std::string name) : name_(std::move(name)) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const std::string& name() const override { return name_; }
  std::string backend() const override { return "local"; }

  absl::StatusOr<WorkHandle> AllReduceAsync(const at::Tensor& t, ReduceOp op) override {
    BRAID_RETURN_IF_ERROR(CheckTensor(*this, "all_reduce", t));
    BRAID_RETURN_IF_ERROR(CheckOp(*this, "all_reduce", t, op));
    return DoneWork();
  }
  absl::StatusOr<WorkHandle> AllGatherAsync(const at::Tensor& in, const at::Tensor& out) override {
    BRAID_RETURN_IF_ERROR(CheckSameKind(*this, "all_gather", in, out));
    BRAID_RETURN_IF_ERROR(CheckBlocks(*this, "all_gather", out, in));
    if (out.data_ptr() != in.data_ptr()) out.view(-1).copy_(in.view(-1));
    return DoneWork();
  }
  absl::StatusOr<WorkHandle> ReduceScatterAsync(const at::Tensor& in, const at::Tensor& out,
                                                ReduceOp op) override {
    BRAID_RETURN_IF_ERROR(CheckSameKind(*this, "reduce_scatter", in, out));
    BRAID_RETURN_IF_ERROR(CheckOp(*this, "reduce_scatter", in, op));
    BRAID_RETURN_IF_ERROR(CheckBlocks(*this, "reduce_scatter", in, out));
    if (out.data_ptr() != in.data_ptr()) out.view(-1).copy_(in.view(-1));
    return DoneWork();
  }
  absl::StatusOr<WorkHandle> BroadcastAsync(const at::Tensor& t, int root) override {
    BRAID_RETURN_IF_ERROR(CheckTensor(*this, "broadcast", t));
    BRAID_RETURN_IF_ERROR(CheckRoot(*this, root));
    return DoneWork();
  }
  absl::StatusOr<WorkHandle> BarrierAsync() override { return DoneWork(); }
  // A world of one sends to itself: the i-th send lands in the i-th receive.
  absl::StatusOr<WorkHandle> SendRecvAsync(const std::vector<at::Tensor>& send,
                                           const std::vector<int>& send_to,
                                           const std::vector<at::Tensor>& recv,
                                           const std::vector<int>& recv_from, int tag) override {
    BRAID_RETURN_IF_ERROR(CheckP2p(*this, send, send_to, recv, recv_from));
    if (send.size() != recv.size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "send_recv on communicator '%s' (one rank): %d sends and %d receives; to itself they "
          "must pair up.",
          name_, send.size(), recv.size()));
    }
    for (size_t i = 0; i < send.size(); ++i) {
      BRAID_RETURN_IF_ERROR(CheckSameKind(*this, "send_recv", send[i], recv[i]));
      recv[i].copy_(send[i]);
    }
    return DoneWork();
  }
  absl::StatusOr<WorkHandle> AllToAllAsync(const at::Tensor& in,
                                           const std::vector<int64_t>& send_rows,
                                           const at::Tensor& out,
                                           const std::vector<int64_t>& recv_rows) override {
    BRAID_RETURN_IF_ERROR(CheckAllToAll(*this, in, send_rows, out, recv_rows).status());
    if (out.numel() > 0) out.copy_(in);
    return DoneWork();
  }
  absl::StatusOr<std::shared_ptr<Communicator>> Split(int, int, const std::string& name) override {
    return MakeLocalCommunicator(name);
  }

 private:
  std::string name_;
};

// Routes CPU tensors to the CPU communicator and CUDA tensors to an NCCL communicator made from
// it on first use (a collective, like the call that triggers it).
class RoutingCommunicator : public Communicator {
 public:
  explicit RoutingCommunicator(std::shared_ptr<Communicator> cpu) : cpu_(std::move(cpu)) {}
  int rank() const override { return cpu_->rank(); }
  int size() const override { return cpu_->size(); }
  const std::string& name() const override { return cpu_->name(); }
  std::string backend() const override {
    return HaveNccl() && cpu_->size() > 1 ? cpu_->backend() + "+nccl" : cpu_->backend();
  }

  absl::StatusOr<WorkHandle> AllReduceAsync(const at::Tensor& t, ReduceOp op) override {
    BRAID_ASSIGN_OR_RETURN(Communicator * c, For(t, "all_reduce"));
    return c->AllReduceAsync(t, op);
  }
  absl::StatusOr<WorkHandle> AllGatherAsync(const at::Tensor& in, const at::Tensor& out) override {
    BRAID_ASSIGN_OR_RETURN(Communicator * c, For(in, "all_gather"));
    return c->AllGatherAsync(in, out);
  }
  absl::StatusOr<WorkHandle> ReduceScatterAsync(const at::Tensor& in, const at::Tensor& out,
                                                ReduceOp op) override {
    BRAID_ASSIGN_OR_RETURN(Communicator * c, For(in, "reduce_scatter"));
    return c->ReduceScatterAsync(in, out, op);
  }
  absl::StatusOr<WorkHandle> BroadcastAsync(const at::Tensor& t, int root) override {
    BRAID_ASSIGN_OR_RETURN(Communicator * c, For(t, "broadcast"));
    return c->BroadcastAsync(t, root);
  }
  absl::StatusOr<WorkHandle> SendRecvAsync(const std::vector<at::Tensor>& send,
                                           const std::vector<int>& send_to,
                                           const std::vector<at::Tensor>& recv,
                                           const std::vector<int>& recv_from, int tag) override {
    const at::Tensor& first = !send.empty() ? send[0] : !recv.empty() ? recv[0] : at::Tensor();
    BRAID_ASSIGN_OR_RETURN(Communicator * c, For(first, "send_recv"));
    return c->SendRecvAsync(send, send_to, recv, recv_from, tag);
  }
  absl::StatusOr<WorkHandle> AllToAllAsync(const at::Tensor& in,
                                           const std::vector<int64_t>& send_rows,
                                           const at::Tensor& out,
                                           const std::vector<int64_t>& recv_rows) override {
    BRAID_ASSIGN_OR_RETURN(Communicator * c, For(in, "all_to_all"));
    return c->AllToAllAsync(in, send_rows, out, recv_rows);
  }
  // A barrier orders the host: the CPU communicator's is enough for both backends.
  absl::StatusOr<WorkHandle> BarrierAsync() override { return cpu_->BarrierAsync(); }
  absl::StatusOr<std::shared_ptr<Communicator>> Split(int color, int key,
                                                      const std::string& name) override {
    BRAID_ASSIGN_OR_RETURN(std::shared_ptr<Communicator> child, cpu_->Split(color, key, name));
    return MakeRoutingCommunicator(std::move(child));
  }

 private:
  absl::StatusOr<Communicator*> For(const at::Tensor& t, const char* what) {
    if (!t.defined() || t.device().is_cpu()) return cpu_.get();
    if (!t.device().is_cuda()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s on communicator '%s': tensors on %s are not supported; use CPU or CUDA tensors.",
          what, name(), t.device().str()));
    }
    if (cpu_->size() == 1) return cpu_.get();  // world-of-one works on any device
    std::lock_guard<std::mutex> lock(mu_);
    if (gpu_ == nullptr) {
      BRAID_ASSIGN_OR_RETURN(gpu_, MakeNcclCommunicator(*cpu_));
    }
    return gpu_.get();
  }

  std::shared_ptr<Communicator> cpu_;
  std::shared_ptr<Communicator> gpu_;
  std::mutex mu_;
};

}  // namespace

WorkHandle DoneWork(absl::Status status) {
  return std::make_shared<DoneWorkImpl>(std::move(status));
}

std::shared_ptr<Communicator> MakeLocalCommunicator(const std::string& name) {
  return std::make_shared<LocalCommunicator>(name);
}

std::shared_ptr<Communicator> MakeRoutingCommunicator(std::shared_ptr<Communicator> cpu) {
  return std::make_shared<RoutingCommunicator>(std::move(cpu));
}

}  // namespace dist_internal
std::shared_ptr<Communicator> LocalCommunicator(const std::string& name) {
  return dist_internal::MakeLocalCommunicator(name);
}

// As int32 words (bytes are not a collective dtype).
absl::StatusOr<std::vector<std::string>> AllGatherStrings(Communicator& comm,
                                                          const std::string& mine) {
  const int n = comm.size();
  torch::Tensor len = torch::tensor({static_cast<int64_t>(mine.size())}, torch::kLong);
  torch::Tensor lens = torch::empty({n}, torch::kLong);
  BRAID_RETURN_IF_ERROR(comm.AllGather(len, lens));
  const int64_t most = lens.max().item<int64_t>();
  const int64_t words = (most + 3) / 4;
  torch::Tensor buf = torch::zeros({std::max<int64_t>(words, 1)}, torch::kInt);
  std::memcpy(buf.data_ptr(), mine.data(), mine.size());
  torch::Tensor all = torch::empty({n, buf.numel()}, torch::kInt);
  BRAID_RETURN_IF_ERROR(comm.AllGather(buf, all));
  std::vector<std::string> out;
  for (int r = 0; r < n; ++r) {
    out.emplace_back(static_cast<const char*>(all[r].data_ptr()), lens[r].item<int64_t>());
  }
  return out;
}

}  // namespace braid
