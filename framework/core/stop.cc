// Stop signals and their watchdog (see stop.h).
#include "framework/core/stop.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "absl/strings/str_format.h"
#include "framework/core/files.h"
#include "framework/core/system.h"

namespace braid {
namespace {

std::atomic<int> g_signal{0};
std::atomic<int> g_count{0};
std::atomic<int64_t> g_signal_ns{0};
std::atomic<bool> g_acknowledged{false};
std::atomic<int64_t> g_last_boundary_ns{0};
std::atomic<int64_t> g_longest_ns{0};
std::atomic<const char*> g_phase{"start-up"};
std::mutex g_status_mu;
std::string g_status_file;

int64_t NowNs() {  // async-signal-safe
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void OnStopSignal(int sig) {
  int none = 0;
  if (g_signal.compare_exchange_strong(none, sig)) g_signal_ns.store(NowNs());
  g_count.fetch_add(1);
}

double GraceSeconds() {
  double grace = 120;
  if (const char* g = std::getenv("BRAID_STOP_GRACE_S"); g != nullptr && *g != '\0') {
    const double v = std::strtod(g, nullptr);
    if (v > 0) grace = v;
  }
  return std::max(grace, 3.0 * static_cast<double>(g_longest_ns.load()) / 1e9);
}

// Ends the process: the signal was not answered by a step boundary in time, or came twice.
[[noreturn]] void EndNow(int sig, bool second, double waited, double grace) {
  const std::string why =
      second ? absl::StrFormat("a second stop signal (%d) came before a step boundary", sig)
             : absl::StrFormat("no step boundary came within %.0f s of stop signal %d", grace, sig);
  const std::string msg = absl::StrFormat(
      "[stop] %s, during %s: ending now without a checkpoint (%.1f s after the signal). A rerun "
      "resumes from the latest checkpoint. HINT: BRAID_STOP_GRACE_S sets the grace period.\n",
      why, g_phase.load(), waited);
  if (::write(STDERR_FILENO, msg.data(), msg.size()) < 0) {
  }
  if (const int child = RunningChildPid(); child > 0) ::kill(child, SIGTERM);
  std::string status;
  {
    std::lock_guard<std::mutex> lock(g_status_mu);
    status = g_status_file;
  }
  if (!status.empty()) {
    (void)WriteFileAtomically(
        status, absl::StrFormat("preempted (signal %d during %s; no checkpoint saved at the stop; "
                                "a rerun resumes from the latest one)\n",
                                sig, g_phase.load()));
  }
  ::_exit(kPreemptedExitCode);
}

void Watch() {
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const int sig = g_signal.load();
    if (sig == 0 || g_acknowledged.load()) continue;
    const double waited = static_cast<double>(NowNs() - g_signal_ns.load()) / 1e9;
    const double grace = GraceSeconds();
    const bool second = g_count.load() > 1;
    if (second || waited > grace) EndNow(sig, second, waited, grace);
  }
}

}  // namespace

void InstallStopSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

void StartStopWatchdog() {
  static std::once_flag once;
  std::call_once(once, [] { std::thread(Watch).detach(); });
}

int StopSignalReceived() { return g_signal.load(); }

void NoteStepBoundary() {
  const int64_t now = NowNs(), last = g_last_boundary_ns.exchange(now);
  if (last > 0 && now - last > g_longest_ns.load()) g_longest_ns.store(now - last);
  g_phase.store("training (between step boundaries)");
}

void AcknowledgeStop() { g_acknowledged.store(true); }

void SetStopStatusFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_status_mu);
  g_status_file = path;
}

void SetStopPhase(const char* phase) { g_phase.store(phase); }

}  // namespace braid
