// Runtime benchmark: prints figures, never fails on time.
//   bench_runtime                      (one process) the BLAS LibTorch calls, and the fp32 matmul
//                                      rate at 1 and 2 threads: the ceiling for every MFU figure
//   mpirun -np 2 bench_runtime         MPI all-reduce bus bandwidth from 4 KiB to 64 MiB
// tools/bench/run_runtime_bench.sh runs both.
#include <torch/torch.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <string>

#include "absl/strings/str_format.h"
#include "framework/core/check.h"
#include "framework/core/flags.h"
#include "framework/core/system.h"
#include "framework/dist/runtime.h"

namespace braid {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void BenchMatmul() {
  std::printf("LibTorch %s; BLAS: %s\n", TORCH_VERSION, BlasInUse().c_str());
  std::printf("%-8s %-6s %-12s %-10s\n", "threads", "n", "GFLOP/s", "per core");
  for (int threads : {1, 2}) {
    torch::set_num_threads(threads);
    for (int64_t n : {512, 1024, 2048}) {
      torch::manual_seed(0);
      at::Tensor a = torch::randn({n, n}), b = torch::randn({n, n}), c = torch::empty({n, n});
      for (int i = 0; i < 2; ++i) at::mm_out(c, a, b);  // warm-up
      int iters = 0;
      double start = Now(), elapsed = 0;
      while (elapsed < 1.0 || iters < 3) {
        at::mm_out(c, a, b);
        ++iters;
        elapsed = Now() - start;
      }
      double gflops = 2.0 * n * n * n * iters / elapsed / 1e9;
      std::printf("%-8d %-6ld %-12.1f %-10.1f\n", threads, static_cast<long>(n), gflops,
                  gflops / threads);
    }
  }
}

void BenchAllReduce(const Runtime& rt) {
  auto comm = rt.world();
  const double n = rt.world_size();
  if (rt.rank() == 0) {
    std::printf("MPI all-reduce (sum, float32, in place), %d ranks on %s, %s\n", rt.world_size(),
                rt.host().c_str(), rt.mpi_version().c_str());
    std::printf("%-10s %-8s %-12s %-14s %-14s\n", "bytes", "iters", "time/op us", "algbw GB/s",
                "busbw GB/s");
  }
  for (int64_t bytes = 4 << 10; bytes <= 64 << 20; bytes *= 4) {
    at::Tensor t = torch::ones({bytes / 4});
    BRAID_CHECK_OK(comm->AllReduce(t, ReduceOp::kSum));  // warm-up
    // Same iteration count on every rank: rank 0 decides from a timed probe.
    double probe = Now();
    BRAID_CHECK_OK(comm->AllReduce(t, ReduceOp::kSum));
    at::Tensor iters_t =
        torch::full({1}, std::max(5.0, std::min(2000.0, 0.5 / (Now() - probe))), torch::kDouble);
    BRAID_CHECK_OK(comm->Broadcast(iters_t, 0));
    int iters = static_cast<int>(iters_t.item<double>());
    BRAID_CHECK_OK(comm->Barrier());
    double start = Now();
    for (int i = 0; i < iters; ++i) BRAID_CHECK_OK(comm->AllReduce(t, ReduceOp::kSum));
    at::Tensor elapsed = torch::full({1}, Now() - start, torch::kDouble);
    BRAID_CHECK_OK(comm->AllReduce(elapsed, ReduceOp::kMax));
    double per_op = elapsed.item<double>() / iters;
    double algbw = bytes / per_op / 1e9;
    if (rt.rank() == 0) {
      std::printf("%-10ld %-8d %-12.1f %-14.3f %-14.3f\n", static_cast<long>(bytes), iters,
                  per_op * 1e6, algbw, algbw * 2 * (n - 1) / n);
    }
  }
}

}  // namespace
}  // namespace braid

int main(int argc, char** argv) {
  braid::CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage =
      "usage: bench_runtime          (one rank: the matmul rate of 1 and 2 threads)\n"
      "       mpirun -np N bench_runtime   (N ranks: all-reduce bandwidth by message size)\n";
  braid::ParseCommandLineOrExit(argc, argv, cl);
  auto rt = braid::Runtime::Init(&argc, &argv);
  if (!rt.ok()) {
    std::fprintf(stderr, "%s\n", std::string(rt.status().message()).c_str());
    return 2;
  }
  if ((*rt)->world_size() == 1) {
    braid::BenchMatmul();
  } else {
    braid::BenchAllReduce(**rt);
  }
  return 0;
}
