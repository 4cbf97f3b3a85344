// Training device and precision (see device.h).
#include "framework/train/device.h"

#include <torch/cuda.h>
#include <torch/version.h>

#include <chrono>
#include <cstdlib>

#include "absl/strings/str_format.h"

namespace braid {
namespace {

int LocalRank(int rank) {
  for (const char* name :
       {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"}) {
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') return std::atoi(v);
  }
  return rank;
}

}  // namespace

absl::StatusOr<torch::Device> ResolveTrainDevice(const Config& config, int rank) {
  if (config.train.device == TrainDevice::kCpu) return torch::Device(torch::kCPU);
  if (!torch::cuda::is_available()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%strain.device: cuda, but %s. HINT: set train.device: cpu here, or run on a GPU machine "
        "with braid built against a CUDA LibTorch (tools/gpu/README.md).",
        config.Where("train.device"),
        at::hasCUDA() ? "no GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
                      : "this build's LibTorch " TORCH_VERSION " has no CUDA support"));
  }
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(LocalRank(rank) % count));
}

void SynchronizeDevice(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

double MeasureMatmulGflops(torch::Device device, at::ScalarType dtype, double seconds,
                           const std::vector<std::array<int64_t, 3>>& shapes, int trials) {
  torch::NoGradGuard no_grad;
  std::vector<std::array<int64_t, 3>> all = shapes;
  const int64_t n = device.is_cpu() ? 512 : 8192;
  all.push_back({n, n, n});
  auto opts = torch::TensorOptions().device(device).dtype(dtype);
  auto now = [] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  const double per_trial = seconds / std::max(1, trials) / static_cast<double>(all.size());
  double best = 0;
  for (const auto& [m, k, p] : all) {
    if (m <= 0 || k <= 0 || p <= 0) continue;
    torch::Tensor a = torch::randn({m, k}, opts), b = torch::randn({k, p}, opts);
    torch::Tensor c = torch::empty({m, p}, opts);
    for (int i = 0; i < 2; ++i) at::mm_out(c, a, b);  // warm-up (and GPU clocks up)
    SynchronizeDevice(device);
    const int per_round = device.is_cpu() ? 1 : 10;
    for (int t = 0; t < std::max(1, trials); ++t) {
      int64_t iters = 0;
      const double start = now();
      double elapsed = 0;
      while (elapsed < per_trial || iters < 2) {
        for (int i = 0; i < per_round; ++i) at::mm_out(c, a, b);
        SynchronizeDevice(device);
        iters += per_round;
        elapsed = now() - start;
      }
      best = std::max(best, 2.0 * static_cast<double>(m) * k * p * iters / elapsed / 1e9);
    }
  }
  return best;
}

}  // namespace braid
