// The NCCL backend (see communicator.h): CUDA tensors. Each communicator has its own CUDA
// stream; a collective waits (on the device, via an event) for the caller's current stream,
// runs on its own stream, and Work::Wait() makes the caller's current stream wait for it in turn:
// the host never blocks except in Barrier. Bootstrapped from a CPU communicator over the same
// ranks, which carries the ncclUniqueId. Built only when CMake finds NCCL (BRAID_HAVE_NCCL).
#include "braid/build_config.h"
#include "framework/dist/backend.h"

#if BRAID_HAVE_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>
#if BRAID_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#endif
#endif

#include "absl/strings/str_format.h"
#include "framework/core/status.h"

namespace braid {

bool HaveNccl() { return BRAID_HAVE_NCCL != 0; }

#if BRAID_HAVE_NCCL

absl::StatusOr<std::string> NcclVersion() {
  int v = 0;
  ncclResult_t r = ncclGetVersion(&v);
  if (r != ncclSuccess) {
    return absl::InternalError(absl::StrCat("ncclGetVersion failed: ", ncclGetErrorString(r)));
  }
  // Since 2.9 the code is major*10000 + minor*100 + patch.
  return absl::StrFormat("%d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
}

namespace dist_internal {
namespace {

#define NCCL_TRY(call, context)                                                                \
  do {                                                                                         \
    ncclResult_t r_ = (call);                                                                  \
    if (r_ != ncclSuccess)                                                                     \
      return absl::InternalError(                                                              \
          absl::StrFormat("%s%s failed: %s (%s). HINT: NCCL_DEBUG=WARN "                       \
                          "shows NCCL's own reason.",                                          \
                          context, #call, ncclGetErrorString(r_), ncclGetLastError(nullptr))); \
  } while (0)
#define CUDA_TRY(call, context)                                                        \
  do {                                                                                 \
    cudaError_t e_ = (call);                                                           \
    if (e_ != cudaSuccess)                                                             \
      return absl::InternalError(                                                      \
          absl::StrFormat("%s%s failed: %s", context, #call, cudaGetErrorString(e_))); \
  } while (0)

// The stream LibTorch is issuing work on (the legacy default stream without LibTorch CUDA).
cudaStream_t CurrentStream(int device) {
#if BRAID_TORCH_CUDA
  return c10::cuda::getCurrentCUDAStream(device).stream();
#else
  (void)device;
  return cudaStreamLegacy;
#endif
}

absl::StatusOr<ncclDataType_t> NcclType(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kHalf:
      return ncclFloat16;
    case at::kBFloat16:
      return ncclBfloat16;
    case at::kInt:
      return ncclInt32;
    case at::kLong:
      return ncclInt64;
    default:
      return absl::InvalidArgumentError("unsupported dtype for NCCL");
  }
}

ncclRedOp_t NcclOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
  }
  return ncclSum;
}

// Done when the caller's current stream is ordered after the collective's event.
class NcclWork : public Work {
 public:
  NcclWork(cudaEvent_t done, int device) : done_(done), device_(device) {}
  ~NcclWork() override { cudaEventDestroy(done_); }
  absl::Status Wait() override {
    CUDA_TRY(cudaSetDevice(device_), "nccl wait: ");
    CUDA_TRY(cudaStreamWaitEvent(CurrentStream(device_), done_, 0), "nccl wait: ");
    return absl::OkStatus();
  }

 private:
  cudaEvent_t done_;
  int device_;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, cudaStream_t stream, int device, int rank, int size,
                   std::string name)
      : comm_(comm),
        stream_(stream),
        device_(device),
        rank_(rank),
        size_(size),
        name_(std::move(name)) {}
  ~NcclCommunicator() override {
    ncclCommDestroy(comm_);
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  std::string backend() const override { return "nccl"; }

  absl::StatusOr<WorkHandle> AllReduceAsync(const at::Tensor& t, ReduceOp op) override {
    BRAID_RETURN_IF_ERROR(Check("all_reduce", t));
    BRAID_RETURN_IF_ERROR(CheckOp(*this, "all_reduce", t, op));
    BRAID_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(t.scalar_type()));
    return Launch("all_reduce", {t}, [&](const std::string& ctx) -> absl::Status {
      NCCL_TRY(
          ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), type, NcclOp(op), comm_, stream_),
          ctx);
      return absl::OkStatus();
    });
  }
  absl::StatusOr<WorkHandle> AllGatherAsync(const at::Tensor& in, const at::Tensor& out) override {
    BRAID_RETURN_IF_ERROR(Check("all_gather", in));
    BRAID_RETURN_IF_ERROR(CheckSameKind(*this, "all_gather", in, out));
    BRAID_RETURN_IF_ERROR(CheckBlocks(*this, "all_gather", out, in));
    BRAID_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(in.scalar_type()));
    return Launch("all_gather", {in, out}, [&](const std::string& ctx) -> absl::Status {
      NCCL_TRY(ncclAllGather(in.data_ptr(), out.data_ptr(), in.numel(), type, comm_, stream_), ctx);
      return absl::OkStatus();
    });
  }
  absl::StatusOr<WorkHandle> ReduceScatterAsync(const at::Tensor& in, const at::Tensor& out,
                                                ReduceOp op) override {
    BRAID_RETURN_IF_ERROR(Check("reduce_scatter", in));
    BRAID_RETURN_IF_ERROR(CheckSameKind(*this, "reduce_scatter", in, out));
    BRAID_RETURN_IF_ERROR(CheckOp(*this, "reduce_scatter", in, op));
    BRAID_RETURN_IF_ERROR(CheckBlocks(*this, "reduce_scatter", in, out));
    BRAID_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(in.scalar_type()));
    return Launch("reduce_scatter", {in, out}, [&](const std::string& ctx) -> absl::Status {
      NCCL_TRY(ncclReduceScatter(in.data_ptr(), out.data_ptr(), out.numel(), type, NcclOp(op),
                                 comm_, stream_),
               ctx);
      return absl::OkStatus();
    });
  }
  absl::StatusOr<WorkHandle> BroadcastAsync(const at::Tensor& t, int root) override {
    BRAID_RETURN_IF_ERROR(Check("broadcast", t));
    BRAID_RETURN_IF_ERROR(CheckRoot(*this, root));
    BRAID_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(t.scalar_type()));
    return Launch("broadcast", {t}, [&](const std::string& ctx) -> absl::Status {
      NCCL_TRY(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), type, root, comm_, stream_),
               ctx);
      return absl::OkStatus();
    });
  }
  absl::StatusOr<WorkHandle> SendRecvAsync(const std::vector<at::Tensor>& send,
                                           const std::vector<int>& send_to,
                                           const std::vector<at::Tensor>& recv,
                                           const std::vector<int>& recv_from, int tag) override {
    BRAID_RETURN_IF_ERROR(CheckP2p(*this, send, send_to, recv, recv_from));
    std::vector<at::Tensor> all;
    for (const std::vector<at::Tensor>* ts : {&send, &recv}) {
      for (const at::Tensor& t : *ts) {
        BRAID_RETURN_IF_ERROR(Check("send_recv", t));
        BRAID_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(t.scalar_type()));
        (void)type;
        all.push_back(t);
      }
    }
    return Launch("send_recv", all, [&](const std::string& ctx) -> absl::Status {
      NCCL_TRY(ncclGroupStart(), ctx);
      ncclResult_t r = ncclSuccess;
      for (size_t i = 0; i < recv.size() && r == ncclSuccess; ++i) {
        r = ncclRecv(recv[i].data_ptr(), recv[i].numel(), *NcclType(recv[i].scalar_type()),
                     recv_from[i], comm_, stream_);
      }
      for (size_t i = 0; i < send.size() && r == ncclSuccess; ++i) {
        r = ncclSend(send[i].data_ptr(), send[i].numel(), *NcclType(send[i].scalar_type()),
                     send_to[i], comm_, stream_);
      }
      ncclResult_t end = ncclGroupEnd();
      NCCL_TRY(r, ctx);
      NCCL_TRY(end, ctx);
      return absl::OkStatus();
    });
  }
  absl::StatusOr<WorkHandle> AllToAllAsync(const at::Tensor& in,
                                           const std::vector<int64_t>& send_rows,
                                           const at::Tensor& out,
                                           const std::vector<int64_t>& recv_rows) override {
    BRAID_ASSIGN_OR_RETURN(const int64_t row, CheckAllToAll(*this, in, send_rows, out, recv_rows));
    BRAID_RETURN_IF_ERROR(Check("all_to_all", in));
    BRAID_RETURN_IF_ERROR(Check("all_to_all", out));
    BRAID_ASSIGN_OR_RETURN(ncclDataType_t type, NcclType(in.scalar_type()));
    const int64_t elements = row / static_cast<int64_t>(in.element_size());  // per row
    return Launch("all_to_all", {in, out}, [&](const std::string& ctx) -> absl::Status {
      auto* src = static_cast<char*>(in.data_ptr());
      auto* dst = static_cast<char*>(out.data_ptr());
      NCCL_TRY(ncclGroupStart(), ctx);
      ncclResult_t r = ncclSuccess;
      int64_t sent = 0, received = 0;
      for (int p = 0; p < size_ && r == ncclSuccess; ++p) {
        if (recv_rows[p] > 0) {
          r = ncclRecv(dst + received * row, recv_rows[p] * elements, type, p, comm_, stream_);
        }
        if (send_rows[p] > 0 && r == ncclSuccess) {
          r = ncclSend(src + sent * row, send_rows[p] * elements, type, p, comm_, stream_);
        }
        received += recv_rows[p];
        sent += send_rows[p];
      }
      ncclResult_t end = ncclGroupEnd();
      NCCL_TRY(r, ctx);
      NCCL_TRY(end, ctx);
      return absl::OkStatus();
    });
  }
  // Host-blocking: a one-element all-reduce on this communicator's stream, then a sync.
  absl::StatusOr<WorkHandle> BarrierAsync() override {
    std::string ctx = absl::StrFormat("barrier on nccl communicator '%s': ", name_);
    CUDA_TRY(cudaSetDevice(device_), ctx);
    float* scratch = nullptr;
    CUDA_TRY(cudaMalloc(&scratch, sizeof(float)), ctx);
    ncclResult_t r = ncclAllReduce(scratch, scratch, 1, ncclFloat32, ncclSum, comm_, stream_);
    cudaError_t e = cudaStreamSynchronize(stream_);
    cudaFree(scratch);
    NCCL_TRY(r, ctx);
    CUDA_TRY(e, ctx);
    return DoneWork();
  }
  absl::StatusOr<std::shared_ptr<Communicator>> Split(int, int, const std::string& name) override {
    return absl::UnimplementedError(absl::StrFormat(
        "split of nccl communicator '%s' into '%s': split the CPU communicator instead; the "
        "routing communicator makes the NCCL one for each group.",
        name_, name));
  }

  // Collective over the CPU communicator: rank 0 makes the id, everyone joins.
  static absl::StatusOr<std::shared_ptr<Communicator>> Create(Communicator& cpu) {
    std::string ctx = absl::StrFormat("creating the nccl communicator for '%s': ", cpu.name());
    int device = 0;
    CUDA_TRY(cudaGetDevice(&device), ctx);
    ncclUniqueId id;
    if (cpu.rank() == 0) NCCL_TRY(ncclGetUniqueId(&id), ctx);
    // Byte tensors are not a collective dtype; carry the id as int32 words.
    static_assert(sizeof(ncclUniqueId) % 4 == 0, "ncclUniqueId size");
    at::Tensor words = torch::from_blob(&id, {static_cast<int64_t>(sizeof(id) / 4)},
                                        at::TensorOptions().dtype(at::kInt));
    BRAID_RETURN_IF_ERROR(cpu.Broadcast(words, 0));
    ncclComm_t comm;
    NCCL_TRY(ncclCommInitRank(&comm, cpu.size(), id, cpu.rank()), ctx);
    cudaStream_t stream;
    CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), ctx);
    return std::shared_ptr<Communicator>(std::make_shared<NcclCommunicator>(
        comm, stream, device, cpu.rank(), cpu.size(), cpu.name()));
  }

 private:
  absl::Status Check(const char* what, const at::Tensor& t) {
    BRAID_RETURN_IF_ERROR(CheckTensor(*this, what, t));
    if (!t.device().is_cuda() || t.device().index() != device_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s on nccl communicator '%s': expected a tensor on cuda:%d, got %s. HINT: move the "
          "tensor to this rank's GPU.",
          what, name_, device_, t.device().str()));
    }
    return absl::OkStatus();
  }

  // Orders our stream after the caller's, issues `issue` on our stream, records completion.
  absl::StatusOr<WorkHandle> Launch(const char* what, const std::vector<at::Tensor>& tensors,
                                    const std::function<absl::Status(const std::string&)>& issue) {
    std::string ctx = absl::StrFormat("%s on nccl communicator '%s' (rank %d of %d): ", what, name_,
                                      rank_, size_);
    CUDA_TRY(cudaSetDevice(device_), ctx);
    cudaEvent_t ready, done;
    CUDA_TRY(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), ctx);
    CUDA_TRY(cudaEventRecord(ready, CurrentStream(device_)), ctx);
    CUDA_TRY(cudaStreamWaitEvent(stream_, ready, 0), ctx);
    cudaEventDestroy(ready);
    BRAID_RETURN_IF_ERROR(issue(ctx));
#if BRAID_TORCH_CUDA
    // The caching allocator must not hand these blocks out again before our stream is done.
    for (const at::Tensor& t : tensors) {
      c10::cuda::CUDACachingAllocator::recordStream(
          t.storage().data_ptr(), c10::cuda::getStreamFromExternal(stream_, device_));
    }
#else
    (void)tensors;
#endif
    CUDA_TRY(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), ctx);
    CUDA_TRY(cudaEventRecord(done, stream_), ctx);
    return WorkHandle(std::make_shared<NcclWork>(done, device_));
  }

  ncclComm_t comm_;
  cudaStream_t stream_;
  int device_;
  int rank_;
  int size_;
  std::string name_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<Communicator>> MakeNcclCommunicator(Communicator& cpu) {
  return NcclCommunicator::Create(cpu);
}

}  // namespace dist_internal

#else  // !BRAID_HAVE_NCCL

absl::StatusOr<std::string> NcclVersion() {
  return absl::UnimplementedError(
      "this build has no NCCL backend (nccl.h was not found at "
      "configure time). HINT: configure with -DBRAID_NCCL_ROOT=...");
}

namespace dist_internal {
absl::StatusOr<std::shared_ptr<Communicator>> MakeNcclCommunicator(Communicator& cpu) {
  return absl::UnimplementedError(absl::StrFormat(
      "communicator '%s': CUDA tensors need the NCCL backend, which this build lacks (nccl.h "
      "was not found at configure time). HINT: configure with -DBRAID_NCCL_ROOT=...",
      cpu.name()));
}
}  // namespace dist_internal

#endif  // BRAID_HAVE_NCCL
}  // namespace braid
