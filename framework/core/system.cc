// Process facts (see system.h).
#include "framework/core/system.h"

#include <dlfcn.h>
#include <link.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"

extern char** environ;

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

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double PeakRssMb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return 0;
}

namespace {
std::atomic<int> g_child_pid{0};
}  // namespace

int RunningChildPid() { return g_child_pid.load(); }

absl::Status RunProgram(const std::vector<std::string>& argv, bool stdout_to_stderr) {
  if (argv.empty()) return absl::InvalidArgumentError("RunProgram: no program");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_to_stderr) posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  // The child starts with the default signal dispositions and nothing blocked.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start ", argv[0], ": ", std::strerror(err)));
  }
  g_child_pid.store(pid);
  int status = 0;
  pid_t r;
  while ((r = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  g_child_pid.store(0);
  if (r < 0) {
    return absl::InternalError(absl::StrCat("waiting for ", argv[0], ": ", std::strerror(errno)));
  }
  if (WIFSIGNALED(status)) {
    return absl::AbortedError(absl::StrCat(argv[0], " was killed by signal ", WTERMSIG(status)));
  }
  if (WEXITSTATUS(status) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(argv[0], " exited with status ", WEXITSTATUS(status)));
  }
  return absl::OkStatus();
}

}  // namespace braid
