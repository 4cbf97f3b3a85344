// Communicator: the collectives every parallel layer uses. Takes tensors, counts from numel(),
// checks dtype, device and contiguity (a clear error, never a silent wrong answer). Each
// collective has an asynchronous form returning a Work handle to wait on (how gradient reduction
// overlaps backward) and a synchronous form (async + Wait).
//
// Backends (chosen by the tensor's device at run time, never by #ifdef in callers):
//   - world-of-one: a communicator of size 1; every collective is a local no-op or copy;
//   - MPI (mpi_backend.cc): CPU tensors; each communicator owns one worker thread that runs its
//     collectives in submission order, so an async collective progresses while the caller
//     computes;
//   - NCCL (nccl_backend.cc): CUDA tensors, on the communicator's own stream, ordered after the
//     caller's stream by an event, and the caller's stream ordered after it by Wait().
// The Communicator that callers hold (from Runtime::world() or Split) routes each call to the
// backend for the tensor's device.
//
// Supported dtypes: float32, float64, bfloat16, float16 (reduced as numbers, not bytes), int32,
// int64. ReduceOp::kAvg needs a floating-point dtype.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace at {
class Tensor;
}

namespace braid {

enum class ReduceOp { kSum, kAvg, kMax };
const char* ReduceOpName(ReduceOp op);

// A handle on an asynchronous collective.
class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the collective is complete (for NCCL: until the caller's current stream is
  // ordered after it) and returns its status. A collective that does not finish within the
  // collective timeout aborts the whole job with a message naming it.
  virtual absl::Status Wait() = 0;
};
using WorkHandle = std::shared_ptr<Work>;

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Names the group in messages ("world", "tp", "dp").
  virtual const std::string& name() const = 0;
  // "mpi", "nccl", "local" (world-of-one), or "mpi+nccl" for the routing communicator.
  virtual std::string backend() const = 0;

  // In place on `tensor`.
  virtual absl::StatusOr<WorkHandle> AllReduceAsync(const at::Tensor& tensor, ReduceOp op) = 0;
  // `output` holds size() x input.numel() elements: rank r's input lands at [r * n, (r+1) * n).
  // In place when `input` is this rank's block of `output` (NCCL's convention).
  virtual absl::StatusOr<WorkHandle> AllGatherAsync(const at::Tensor& input,
                                                    const at::Tensor& output) = 0;
  // `input` holds size() x output.numel() elements; rank r gets the reduction of block r. In
  // place when `output` is this rank's block of `input` (NCCL's convention; the other blocks of
  // `input` then hold partial results). Any other overlap of the two is refused.
  virtual absl::StatusOr<WorkHandle> ReduceScatterAsync(const at::Tensor& input,
                                                        const at::Tensor& output, ReduceOp op) = 0;
  // In place: every rank ends with root's `tensor`.
  virtual absl::StatusOr<WorkHandle> BroadcastAsync(const at::Tensor& tensor, int root) = 0;
  virtual absl::StatusOr<WorkHandle> BarrierAsync() = 0;
  // Point-to-point, batched (what a pipeline stage exchanges with its neighbours): sends
  // send[i] to rank send_to[i] and receives recv[j] from rank recv_from[j] (ranks of this
  // communicator), all posted before any is waited on, so a pair of ranks that send to each other
  // in one call cannot deadlock. Messages between two ranks match in the order they were posted;
  // the receiver knows every shape and dtype (no size exchange). MPI: MPI_Irecv/MPI_Isend +
  // MPI_Waitall on the communicator's worker; NCCL: ncclSend/ncclRecv in one group.
  virtual absl::StatusOr<WorkHandle> SendRecvAsync(const std::vector<at::Tensor>& send,
                                                   const std::vector<int>& send_to,
                                                   const std::vector<at::Tensor>& recv,
                                                   const std::vector<int>& recv_from, int tag) = 0;

  // All-to-all with variable counts (expert parallelism's token exchange): `input` is size()
  // consecutive blocks along dim 0, block r (send_rows[r] rows) for rank r; `output` receives
  // recv_rows[r] rows from each rank r, in rank order. The receiver knows its counts (exchange
  // them first: AllToAllCounts). Rows are dim-0 slices: input and output share the dtype, the
  // device and every other dimension, and do not overlap. MPI: MPI_Alltoallv on the worker;
  // NCCL: ncclSend/ncclRecv with every rank (itself included) in one group.
  virtual absl::StatusOr<WorkHandle> AllToAllAsync(const at::Tensor& input,
                                                   const std::vector<int64_t>& send_rows,
                                                   const at::Tensor& output,
                                                   const std::vector<int64_t>& recv_rows) = 0;

  // Collective over this communicator: ranks with the same color form a new communicator,
  // ordered by key. `name` labels it in messages.
  virtual absl::StatusOr<std::shared_ptr<Communicator>> Split(int color, int key,
                                                              const std::string& name) = 0;

  absl::Status AllReduce(const at::Tensor& tensor, ReduceOp op);
  absl::Status AllGather(const at::Tensor& input, const at::Tensor& output);
  absl::Status ReduceScatter(const at::Tensor& input, const at::Tensor& output, ReduceOp op);
  absl::Status Broadcast(const at::Tensor& tensor, int root);
  absl::Status Barrier();
  absl::Status SendRecv(const std::vector<at::Tensor>& send, const std::vector<int>& send_to,
                        const std::vector<at::Tensor>& recv, const std::vector<int>& recv_from,
                        int tag = 0);
  absl::Status AllToAll(const at::Tensor& input, const std::vector<int64_t>& send_rows,
                        const at::Tensor& output, const std::vector<int64_t>& recv_rows);
};

// What each rank sends this one, given what this one sends each rank (`send[r]`: to rank r): the
// counts of an all-to-all, exchanged over `comm` (on the CPU; on a routing communicator over MPI).
absl::StatusOr<std::vector<int64_t>> AllToAllCounts(Communicator& comm,
                                                    const std::vector<int64_t>& send);

// Every rank's `mine` on every rank of `comm`, in rank order (CPU tensors: on a routing
// communicator this goes over MPI).
absl::StatusOr<std::vector<std::string>> AllGatherStrings(Communicator& comm,
                                                          const std::string& mine);

// A communicator of one rank that needs no MPI: tools that build a model alone (the checkpoint
// converter asks such a model for its parameters' TP layouts).
std::shared_ptr<Communicator> LocalCommunicator(const std::string& name);

// Seconds a Wait() allows before it declares a peer dead and aborts the job (default 600).
void SetCollectiveTimeout(double seconds);
double CollectiveTimeout();

// True when this build has the NCCL backend.
bool HaveNccl();
// The NCCL library's version as "2.28.9", or an error when NCCL is not built in.
absl::StatusOr<std::string> NcclVersion();

}  // namespace braid
