// The MPI backend (see communicator.h): CPU tensors; one worker thread per communicator runs the
// collectives in submission order with blocking MPI calls, so an async collective makes progress
// while the caller computes (Open MPI's non-blocking collectives progress only inside MPI calls).
// bfloat16 and float16 are reduced by user-defined MPI ops that add and compare them as numbers.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <chrono>
#include <climits>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "framework/core/check.h"
#include "framework/core/status.h"
#include "framework/dist/backend.h"

namespace braid::dist_internal {
namespace {

// MPI handles for the 16-bit float types, made once after MPI_Init.
struct HalfTypes {
  MPI_Datatype bf16, fp16;
  MPI_Op bf16_sum, bf16_max, fp16_sum, fp16_max;
};

template <typename T, bool kMax>
void ReduceHalf(void* in, void* inout, int* len, MPI_Datatype*) {
  const T* a = static_cast<const T*>(in);
  T* b = static_cast<T*>(inout);
  for (int i = 0; i < *len; ++i) {
    float x = static_cast<float>(a[i]);
    float y = static_cast<float>(b[i]);
    b[i] = static_cast<T>(kMax ? (x > y ? x : y) : x + y);
  }
}

const HalfTypes& Halves() {
  static const HalfTypes types = [] {
    HalfTypes t;
    MPI_Type_contiguous(2, MPI_BYTE, &t.bf16);
    MPI_Type_commit(&t.bf16);
    MPI_Type_contiguous(2, MPI_BYTE, &t.fp16);
    MPI_Type_commit(&t.fp16);
    MPI_Op_create(&ReduceHalf<c10::BFloat16, false>, /*commute=*/1, &t.bf16_sum);
    MPI_Op_create(&ReduceHalf<c10::BFloat16, true>, 1, &t.bf16_max);
    MPI_Op_create(&ReduceHalf<c10::Half, false>, 1, &t.fp16_sum);
    MPI_Op_create(&ReduceHalf<c10::Half, true>, 1, &t.fp16_max);
    return t;
  }();
  return types;
}

MPI_Datatype TypeOf(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kInt:
      return MPI_INT32_T;
    case at::kLong:
      return MPI_INT64_T;
    case at::kBFloat16:
      return Halves().bf16;
    case at::kHalf:
      return Halves().fp16;
    default:
      break;
  }
  BRAID_CHECK(false) << "unchecked dtype " << c10::toString(t);
  return MPI_DATATYPE_NULL;
}

// kAvg is a sum followed by a division.
MPI_Op OpOf(at::ScalarType t, ReduceOp op) {
  bool max = op == ReduceOp::kMax;
  if (t == at::kBFloat16) return max ? Halves().bf16_max : Halves().bf16_sum;
  if (t == at::kHalf) return max ? Halves().fp16_max : Halves().fp16_sum;
  return max ? MPI_MAX : MPI_SUM;
}

absl::Status MpiStatus(int code, const char* call, const std::string& context) {
  if (code == MPI_SUCCESS) return absl::OkStatus();
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  return absl::InternalError(
      absl::StrFormat("%s%s failed: %s. HINT: a peer rank may have died; look for its error above.",
                      context, call, std::string(text, len)));
}
#define MPI_TRY(call, context) BRAID_RETURN_IF_ERROR(MpiStatus((call), #call, context))

class MpiWork : public Work {
 public:
  MpiWork(std::string what, std::function<absl::Status()> fn)
      : what_(std::move(what)), fn_(std::move(fn)) {}

  void Run() {
    absl::Status s = fn_();
    fn_ = nullptr;  // drops the tensors it held
    std::lock_guard<std::mutex> lock(mu_);
    status_ = std::move(s);
    done_ = true;
    cv_.notify_all();
  }

  absl::Status Wait() override {
    std::unique_lock<std::mutex> lock(mu_);
    auto timeout = std::chrono::duration<double>(CollectiveTimeout());
    if (!cv_.wait_for(lock, timeout, [&] { return done_; })) {
      Fatal(__FILE__, __LINE__,
            absl::StrFormat("%s did not complete within %.0f s. A peer rank has probably died, "
                            "hung, or taken a different code path. HINT: look for the first "
                            "error of another rank above; raise parallel.comm_timeout_s only if "
                            "steps are legitimately this slow.",
                            absl::StripSuffix(what_, ": "), CollectiveTimeout()));
    }
    return status_;
  }

 private:
  std::string what_;
  std::function<absl::Status()> fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  absl::Status status_;
};

// Point-to-point requests posted by the caller; Wait() tests them until all are complete (with
// short sleeps, so a waiting rank leaves the cores to the others), then checks that every
// receive got as many elements as expected.
class MpiP2pWork : public Work {
 public:
  MpiP2pWork(std::string what, const std::vector<at::Tensor>& recv)
      : what_(std::move(what)), num_recv_(recv.size()) {}
  ~MpiP2pWork() override {
    if (!done_) (void)Wait();  // the buffers must outlive the requests
  }
  void Add(MPI_Request r, at::Tensor t) {
    requests_.push_back(r);
    tensors_.push_back(std::move(t));
  }
  absl::Status Wait() override {
    if (done_) return status_;
    const auto start = std::chrono::steady_clock::now();
    std::vector<MPI_Status> statuses(requests_.size());
    for (int sleep_us = 1;;) {
      int flag = 0;
      int code =
          MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag, statuses.data());
      if (code != MPI_SUCCESS) {
        done_ = true;
        status_ = MpiStatus(code, "MPI_Testall", what_);
        return status_;
      }
      if (flag != 0) break;
      std::chrono::duration<double> waited = std::chrono::steady_clock::now() - start;
      if (waited.count() > CollectiveTimeout()) {
        Fatal(__FILE__, __LINE__,
              absl::StrFormat("%s did not complete within %.0f s. A peer stage has probably died "
                              "or hung. HINT: look for the first error of another rank above.",
                              absl::StripSuffix(what_, ": "), CollectiveTimeout()));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
      sleep_us = std::min(2 * sleep_us, 50);
    }
    done_ = true;
    for (size_t i = 0; i < num_recv_; ++i) {
      int count = 0;
      MPI_Get_count(&statuses[i], TypeOf(tensors_[i].scalar_type()), &count);
      if (count != tensors_[i].numel()) {
        status_ = absl::InternalError(absl::StrFormat(
            "%sreceived %d elements from rank %d, expected %d. HINT: the two ranks disagree on "
            "the shapes they exchange (a different config?).",
            what_, count, statuses[i].MPI_SOURCE, tensors_[i].numel()));
        break;
      }
    }
    tensors_.clear();
    return status_;
  }

 private:
  std::string what_;
  size_t num_recv_;
  std::vector<MPI_Request> requests_;
  std::vector<at::Tensor> tensors_;  // kept alive until the requests complete
  bool done_ = false;
  absl::Status status_;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, std::string name) : comm_(comm), name_(std::move(name)) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    int* ub = nullptr;
    int flag = 0;
    MPI_Comm_get_attr(comm_, MPI_TAG_UB, &ub, &flag);
    if (flag != 0 && ub != nullptr && *ub > 0) tag_ub_ = *ub;
    worker_ = std::thread([this] { Loop(); });
  }

  ~MpiCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    worker_.join();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && comm_ != MPI_COMM_WORLD) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  std::string backend() const override { return "mpi"; }

  absl::StatusOr<WorkHandle> AllReduceAsync(const at::Tensor& t, ReduceOp op) override {
    BRAID_RETURN_IF_ERROR(CpuTensor("all_reduce", t));
    BRAID_RETURN_IF_ERROR(CheckOp(*this, "all_reduce", t, op));
    std::string ctx = Context("all_reduce", t);
    return Submit(ctx, [this, t, op, ctx]() -> absl::Status {
      MPI_Datatype type = TypeOf(t.scalar_type());
      MPI_Op mpi_op = OpOf(t.scalar_type(), op);
      char* base = static_cast<char*>(t.data_ptr());
      // MPI counts are int: reduce in chunks below INT_MAX elements.
      for (int64_t off = 0; off < t.numel(); off += INT_MAX) {
        int count = static_cast<int>(std::min<int64_t>(INT_MAX, t.numel() - off));
        MPI_TRY(
            MPI_Allreduce(MPI_IN_PLACE, base + off * t.element_size(), count, type, mpi_op, comm_),
            ctx);
      }
      if (op == ReduceOp::kAvg) t.div_(size_);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<WorkHandle> AllGatherAsync(const at::Tensor& in, const at::Tensor& out) override {
    BRAID_RETURN_IF_ERROR(CpuTensor("all_gather", in));
    BRAID_RETURN_IF_ERROR(CheckSameKind(*this, "all_gather", in, out));
    BRAID_RETURN_IF_ERROR(CheckBlocks(*this, "all_gather", out, in));
    BRAID_RETURN_IF_ERROR(FitsInt("all_gather", in.numel()));
    std::string ctx = Context("all_gather", in);
    const bool in_place = IsRankBlock(*this, out, in);
    return Submit(ctx, [this, in, out, ctx, in_place]() -> absl::Status {
      MPI_Datatype type = TypeOf(in.scalar_type());
      int n = static_cast<int>(in.numel());
      MPI_TRY(MPI_Allgather(in_place ? MPI_IN_PLACE : in.data_ptr(), n, type, out.data_ptr(), n,
                            type, comm_),
              ctx);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<WorkHandle> ReduceScatterAsync(const at::Tensor& in, const at::Tensor& out,
                                                ReduceOp op) override {
    BRAID_RETURN_IF_ERROR(CpuTensor("reduce_scatter", in));
    BRAID_RETURN_IF_ERROR(CheckSameKind(*this, "reduce_scatter", in, out));
    BRAID_RETURN_IF_ERROR(CheckOp(*this, "reduce_scatter", in, op));
    BRAID_RETURN_IF_ERROR(CheckBlocks(*this, "reduce_scatter", in, out));
    BRAID_RETURN_IF_ERROR(FitsInt("reduce_scatter", out.numel()));
    std::string ctx = Context("reduce_scatter", in);
    const bool in_place = IsRankBlock(*this, in, out);
    return Submit(ctx, [this, in, out, op, ctx, in_place]() -> absl::Status {
      MPI_Datatype type = TypeOf(in.scalar_type());
      const int n = static_cast<int>(out.numel());
      if (in_place) {  // MPI leaves the result in the first block; this rank's block is apart
        MPI_TRY(MPI_Reduce_scatter_block(MPI_IN_PLACE, in.data_ptr(), n, type,
                                         OpOf(in.scalar_type(), op), comm_),
                ctx);
        if (rank_ > 0) out.view(-1).copy_(in.view(-1).narrow(0, 0, n));
      } else {
        MPI_TRY(MPI_Reduce_scatter_block(in.data_ptr(), out.data_ptr(), n, type,
                                         OpOf(in.scalar_type(), op), comm_),
                ctx);
      }
      if (op == ReduceOp::kAvg) out.div_(size_);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<WorkHandle> BroadcastAsync(const at::Tensor& t, int root) override {
    BRAID_RETURN_IF_ERROR(CpuTensor("broadcast", t));
    BRAID_RETURN_IF_ERROR(CheckRoot(*this, root));
    std::string ctx = Context("broadcast", t);
    return Submit(ctx, [this, t, root, ctx]() -> absl::Status {
      MPI_Datatype type = TypeOf(t.scalar_type());
      char* base = static_cast<char*>(t.data_ptr());
      for (int64_t off = 0; off < t.numel(); off += INT_MAX) {
        int count = static_cast<int>(std::min<int64_t>(INT_MAX, t.numel() - off));
        MPI_TRY(MPI_Bcast(base + off * t.element_size(), count, type, root, comm_), ctx);
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<WorkHandle> BarrierAsync() override {
    std::string ctx =
        absl::StrFormat("barrier on communicator '%s' (rank %d of %d): ", name_, rank_, size_);
    return Submit(ctx, [this, ctx]() -> absl::Status {
      MPI_TRY(MPI_Barrier(comm_), ctx);
      return absl::OkStatus();
    });
  }

  // Posted from the calling thread (MPI_THREAD_MULTIPLE), not through the worker: a pending
  // send never holds up a later receive, so any schedule whose messages are all eventually sent
  // completes. Messages are told apart by `tag` (modulo MPI_TAG_UB).
  absl::StatusOr<WorkHandle> AllToAllAsync(const at::Tensor& in,
                                           const std::vector<int64_t>& send_rows,
                                           const at::Tensor& out,
                                           const std::vector<int64_t>& recv_rows) override {
    BRAID_RETURN_IF_ERROR(CpuTensor("all_to_all", in));
    BRAID_RETURN_IF_ERROR(CpuTensor("all_to_all", out));
    BRAID_ASSIGN_OR_RETURN(const int64_t row, CheckAllToAll(*this, in, send_rows, out, recv_rows));
    // MPI_Alltoallv counts bytes in int: the whole of either tensor must fit.
    BRAID_RETURN_IF_ERROR(FitsInt("all_to_all", in.size(0) * row));
    BRAID_RETURN_IF_ERROR(FitsInt("all_to_all", out.size(0) * row));
    std::vector<int> send_bytes, send_at, recv_bytes, recv_at;
    int64_t sent = 0, received = 0;
    for (int p = 0; p < size_; ++p) {
      send_bytes.push_back(static_cast<int>(send_rows[p] * row));
      send_at.push_back(static_cast<int>(sent * row));
      recv_bytes.push_back(static_cast<int>(recv_rows[p] * row));
      recv_at.push_back(static_cast<int>(received * row));
      sent += send_rows[p];
      received += recv_rows[p];
    }
    std::string ctx = Context("all_to_all", in);
    return Submit(
        ctx, [this, in, out, ctx, send_bytes, send_at, recv_bytes, recv_at]() -> absl::Status {
          MPI_TRY(MPI_Alltoallv(in.data_ptr(), send_bytes.data(), send_at.data(), MPI_BYTE,
                                out.data_ptr(), recv_bytes.data(), recv_at.data(), MPI_BYTE, comm_),
                  ctx);
          return absl::OkStatus();
        });
  }

  absl::StatusOr<WorkHandle> SendRecvAsync(const std::vector<at::Tensor>& send,
                                           const std::vector<int>& send_to,
                                           const std::vector<at::Tensor>& recv,
                                           const std::vector<int>& recv_from, int tag) override {
    BRAID_RETURN_IF_ERROR(CheckP2p(*this, send, send_to, recv, recv_from));
    for (const std::vector<at::Tensor>* ts : {&send, &recv}) {
      for (const at::Tensor& t : *ts) {
        BRAID_RETURN_IF_ERROR(CpuTensor("send_recv", t));
        BRAID_RETURN_IF_ERROR(FitsInt("send_recv", t.numel()));
      }
    }
    const int mpi_tag = tag < 0 ? 0 : tag % tag_ub_;
    std::string ctx = absl::StrFormat(
        "send_recv (tag %d: %d sends to rank(s) %s, %d receives from rank(s) %s) on communicator "
        "'%s' (rank %d of %d): ",
        tag, send.size(), absl::StrJoin(send_to, ","), recv.size(), absl::StrJoin(recv_from, ","),
        name_, rank_, size_);
    auto work = std::make_shared<MpiP2pWork>(ctx, recv);
    for (size_t i = 0; i < recv.size(); ++i) {
      MPI_Request r;
      MPI_TRY(MPI_Irecv(recv[i].data_ptr(), static_cast<int>(recv[i].numel()),
                        TypeOf(recv[i].scalar_type()), recv_from[i], mpi_tag, comm_, &r),
              ctx);
      work->Add(r, recv[i]);
    }
    for (size_t i = 0; i < send.size(); ++i) {
      MPI_Request r;
      MPI_TRY(MPI_Isend(send[i].data_ptr(), static_cast<int>(send[i].numel()),
                        TypeOf(send[i].scalar_type()), send_to[i], mpi_tag, comm_, &r),
              ctx);
      work->Add(r, send[i]);
    }
    return WorkHandle(work);
  }

  absl::StatusOr<std::shared_ptr<Communicator>> Split(int color, int key,
                                                      const std::string& name) override {
    std::string ctx = absl::StrFormat("split of communicator '%s' into '%s': ", name_, name);
    MPI_Comm child = MPI_COMM_NULL;
    BRAID_ASSIGN_OR_RETURN(WorkHandle work, Submit(ctx, [this, color, key, &child, ctx] {
                             return MpiStatus(MPI_Comm_split(comm_, color, key, &child),
                                              "MPI_Comm_split", ctx);
                           }));
    BRAID_RETURN_IF_ERROR(work->Wait());
    return MakeMpiCommunicator(child, name);
  }

 private:
  absl::Status CpuTensor(const char* what, const at::Tensor& t) {
    BRAID_RETURN_IF_ERROR(CheckTensor(*this, what, t));
    if (!t.device().is_cpu()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s on communicator '%s': the MPI backend takes CPU tensors, got one on %s. HINT: "
          "CUDA tensors go through NCCL; call the routing communicator from Runtime.",
          what, name_, t.device().str()));
    }
    return absl::OkStatus();
  }

  absl::Status FitsInt(const char* what, int64_t n) {
    if (n <= INT_MAX) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s on communicator '%s': %d elements per rank exceed MPI's int count.", what, name_, n));
  }

  std::string Context(const char* what, const at::Tensor& t) const {
    return absl::StrFormat("%s of %d x %s on communicator '%s' (rank %d of %d): ", what, t.numel(),
                           c10::toString(t.scalar_type()), name_, rank_, size_);
  }

  absl::StatusOr<WorkHandle> Submit(const std::string& what, std::function<absl::Status()> fn) {
    auto work = std::make_shared<MpiWork>(what, std::move(fn));
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(work);
    cv_.notify_all();
    return WorkHandle(work);
  }

  void Loop() {
    for (;;) {
      std::shared_ptr<MpiWork> work;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stop_ with nothing left to run
        work = std::move(queue_.front());
        queue_.pop_front();
      }
      work->Run();
    }
  }

  int tag_ub_ = 32767;  // MPI_TAG_UB of this communicator (at least 32767)
  MPI_Comm comm_;
  std::string name_;
  int rank_ = 0;
  int size_ = 1;
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<MpiWork>> queue_;
  bool stop_ = false;
};

}  // namespace

std::shared_ptr<Communicator> MakeMpiCommunicator(MPI_Comm comm, const std::string& name) {
  int size = 0;
  MPI_Comm_size(comm, &size);
  if (size == 1) {
    if (comm != MPI_COMM_WORLD) MPI_Comm_free(&comm);
    return MakeLocalCommunicator(name);
  }
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  return std::make_shared<MpiCommunicator>(comm, name);
}

}  // namespace braid::dist_internal
