// Process facts (see system.h).
#include "framework/core/system.h"

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <set>

namespace braid {

std::string BlasInUse() {
  std::set<std::string> found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        std::string name = info->dlpi_name ? info->dlpi_name : "";
        if (name.find("blas") != std::string::npos) {
          char real[PATH_MAX];
          if (realpath(name.c_str(), real) != nullptr) name = real;
          static_cast<std::set<std::string>*>(data)->insert(name);
        }
        return 0;
      },
      &found);
  std::string out;
  for (const auto& s : found) out += (out.empty() ? "" : ", ") + s;
  using ConfigFn = char* (*)();
  if (auto fn = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    out += std::string(" [OpenBLAS: ") + fn() + "]";
  }
  return out.empty() ? "none found (LibTorch's own kernels?)" : out;
}

bool OutputIsTerminal() {
  static const bool terminal = [] {
    if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr) return ::isatty(STDOUT_FILENO) != 0;
    char link[PATH_MAX] = {0};
    std::string fd = "/proc/" + std::to_string(::getppid()) + "/fd/1";
    ssize_t n = ::readlink(fd.c_str(), link, sizeof(link) - 1);
    if (n <= 0) return false;
    std::string target(link, static_cast<size_t>(n));
    return target.rfind("/dev/pts/", 0) == 0 || target.rfind("/dev/tty", 0) == 0;
  }();
  return terminal;
}

double MachineMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemTotal:", 0) == 0) return std::strtod(line.c_str() + 9, nullptr) * 1024.0;
  }
  return 0;
}

double PeakRssMb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return 0;
}

}  // namespace braid
