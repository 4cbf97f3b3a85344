// The distributed runtime: MPI bootstrap (under mpirun, or Open MPI started inside a Slurm
// allocation), this process's rank, world size, local rank (from a shared-memory split, not rank
// modulo GPUs) and host, the world communicator, and job-wide abort. While a Runtime lives, a
// fatal error on any rank (BRAID_CHECK, Runtime::Abort) calls MPI_Abort, so that mpirun tears
// the whole job down with a non-zero code instead of leaving peers blocked in a collective.
#pragma once
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "framework/dist/communicator.h"

namespace braid {

class Runtime {
 public:
  // Initializes MPI (thread level MULTIPLE: each communicator's worker thread calls MPI).
  static absl::StatusOr<std::unique_ptr<Runtime>> Init(int* argc, char*** argv);
  ~Runtime();  // MPI_Finalize; destroy every communicator first

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }  // rank among the processes of this node
  int local_size() const { return local_size_; }  // processes on this node
  const std::string& host() const { return host_; }
  // "Open MPI v4.1.4, ..." as the library reports it.
  const std::string& mpi_version() const { return mpi_version_; }
  // "slurm job 123 step 0" when started inside a Slurm allocation, else "".
  const std::string& scheduler() const { return scheduler_; }

  std::shared_ptr<Communicator> world() const { return world_; }

  // Prints nothing; brings every rank down with `exit_code` (MPI_Abort).
  [[noreturn]] static void Abort(int exit_code);

 private:
  Runtime() = default;
  int rank_ = 0, world_size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::string host_, mpi_version_, scheduler_;
  std::shared_ptr<Communicator> world_;
};

}  // namespace braid
