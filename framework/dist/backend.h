// Internals shared by the communicator backends: argument checks, a ready-made Work, the
// world-of-one backend and the factories. Not for callers outside framework/dist.
#pragma once
#include <mpi.h>
#include <torch/torch.h>

#include <memory>
#include <string>

#include "framework/dist/communicator.h"

namespace braid::dist_internal {

// Shape/dtype/contiguity checks common to every backend. `what` names the collective.
absl::Status CheckTensor(const Communicator& comm, const char* what, const at::Tensor& t);
absl::Status CheckSameKind(const Communicator& comm, const char* what, const at::Tensor& a,
                           const at::Tensor& b);
absl::Status CheckOp(const Communicator& comm, const char* what, const at::Tensor& t, ReduceOp op);
// `big` holds size() blocks of `block`'s size; `block` is either apart from it or exactly this
// rank's block of it (IsRankBlock: the in-place form of all-gather and reduce-scatter).
absl::Status CheckBlocks(const Communicator& comm, const char* what, const at::Tensor& big,
                         const at::Tensor& block);
bool IsRankBlock(const Communicator& comm, const at::Tensor& big, const at::Tensor& block);
absl::Status CheckRoot(const Communicator& comm, int root);
// Send/receive lists: one peer per tensor, every peer another rank of `comm` (itself only in a
// world of one), every tensor valid.
absl::Status CheckP2p(const Communicator& comm, const std::vector<at::Tensor>& send,
                      const std::vector<int>& send_to, const std::vector<at::Tensor>& recv,
                      const std::vector<int>& recv_from);

// All-to-all arguments: one count per rank, none negative, summing to each tensor's rows; the
// tensors of one kind with equal row shapes, apart in memory. Returns the bytes of one row.
absl::StatusOr<int64_t> CheckAllToAll(const Communicator& comm, const at::Tensor& input,
                                      const std::vector<int64_t>& send_rows,
                                      const at::Tensor& output,
                                      const std::vector<int64_t>& recv_rows);

// A Work that is already complete.
WorkHandle DoneWork(absl::Status status = absl::OkStatus());

// The world-of-one communicator.
std::shared_ptr<Communicator> MakeLocalCommunicator(const std::string& name);

// An MPI communicator over `comm` (taken over: freed with the communicator); a world-of-one
// communicator when `comm` has one rank.
std::shared_ptr<Communicator> MakeMpiCommunicator(MPI_Comm comm, const std::string& name);

// Wraps a CPU communicator so that CUDA tensors go to an NCCL communicator bootstrapped from it
// (created on the first CUDA collective).
std::shared_ptr<Communicator> MakeRoutingCommunicator(std::shared_ptr<Communicator> cpu);

// An NCCL communicator over the ranks of `cpu` (collective over `cpu`): rank 0 makes the unique
// id and broadcasts it. Fails with a clear message when NCCL is not built in.
absl::StatusOr<std::shared_ptr<Communicator>> MakeNcclCommunicator(Communicator& cpu);

}  // namespace braid::dist_internal
