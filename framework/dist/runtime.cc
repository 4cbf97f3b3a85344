// MPI bootstrap and job-wide abort (see runtime.h).
#include "framework/dist/runtime.h"

#include <cstdlib>

#include "absl/strings/str_format.h"
#include "framework/core/check.h"
#include "framework/core/log.h"
#include "framework/dist/backend.h"

namespace braid {
namespace {
void AbortHandler(int exit_code) { Runtime::Abort(exit_code); }

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}
}  // namespace

absl::StatusOr<std::unique_ptr<Runtime>> Runtime::Init(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) {
    return absl::FailedPreconditionError(
        "MPI is already initialized: make one Runtime per "
        "process.");
  }
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
    return absl::UnavailableError(
        "MPI_Init_thread failed. HINT: start ranks with mpirun (as "
        "root: mpirun --allow-run-as-root).");
  }
  std::unique_ptr<Runtime> rt(new Runtime());
  SetFatalHandler(&AbortHandler);
  MPI_Comm_rank(MPI_COMM_WORLD, &rt->rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &rt->world_size_);
  SetLogRank(rt->rank_, rt->world_size_);
  if (provided < MPI_THREAD_MULTIPLE) {
    BLOG(ERROR, "dist") << "this MPI library provides thread level " << provided
                        << ", braid needs MPI_THREAD_MULTIPLE";
    Abort(2);
  }

  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rt->rank_, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &rt->local_rank_);
  MPI_Comm_size(node, &rt->local_size_);
  MPI_Comm_free(&node);

  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  rt->host_.assign(name, len);
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  MPI_Get_library_version(version, &len);
  rt->mpi_version_ = std::string(version, len);
  if (size_t nl = rt->mpi_version_.find_first_of(",\n"); nl != std::string::npos) {
    rt->mpi_version_.resize(nl);
  }
  if (!Env("SLURM_JOB_ID").empty()) {
    rt->scheduler_ = absl::StrFormat("slurm job %s step %s", Env("SLURM_JOB_ID"),
                                     Env("SLURM_STEP_ID").empty() ? "batch" : Env("SLURM_STEP_ID"));
  }

  MPI_Comm world;
  MPI_Comm_dup(MPI_COMM_WORLD, &world);
  rt->world_ =
      dist_internal::MakeRoutingCommunicator(dist_internal::MakeMpiCommunicator(world, "world"));
  return rt;
}

Runtime::~Runtime() {
  world_.reset();
  SetFatalHandler(nullptr);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void Runtime::Abort(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

}  // namespace braid
