// Rank-aware logging and fatal errors (see log.h, check.h).
#include "framework/core/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

#include "absl/strings/str_format.h"
#include "framework/core/check.h"
#include "framework/core/system.h"

namespace braid {
namespace {
std::atomic<int> g_rank{0};
std::atomic<int> g_world{0};
std::atomic<bool> g_all_ranks{false};
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<FatalHandler> g_fatal_handler{nullptr};
std::mutex g_write_mutex;
std::FILE* g_log_file = nullptr;
std::atomic<bool> g_has_log_file{false};
std::atomic<bool> g_log_failed{false};
std::string g_log_path;

std::string TimeStamp() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm local;
  localtime_r(&tv.tv_sec, &local);
  return absl::StrFormat("%02d:%02d:%02d.%03d", local.tm_hour, local.tm_min, local.tm_sec,
                         static_cast<int>(tv.tv_usec / 1000));
}
}  // namespace

void SetLogRank(int rank, int world_size) {
  g_rank = rank;
  g_world = world_size;
}
void SetLogAllRanks(bool all_ranks) { g_all_ranks = all_ranks; }
void SetLogLevel(LogLevel min_level) { g_min_level = static_cast<int>(min_level); }

bool ShouldLog(LogLevel level) {
  if (static_cast<int>(level) < g_min_level) return false;
  if (level >= LogLevel::kWarning) return true;
  return g_rank == 0 || g_all_ranks;
}

std::string RankTag() {
  if (g_world == 0) return "";
  return absl::StrFormat("[rank %d/%d]", g_rank.load(), g_world.load());
}

absl::Status SetLogFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_write_mutex);
  if (g_log_file != nullptr) std::fclose(g_log_file);
  g_log_file = path.empty() ? nullptr : std::fopen(path.c_str(), "a");
  g_has_log_file = g_log_file != nullptr;
  g_log_path = path;
  g_log_failed = false;
  if (!path.empty() && g_log_file == nullptr) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s: cannot open the log file: %s. HINT: the run directory (logging.run_dir) must be "
        "writable.",
        path, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status LogFileStatus() {
  if (!g_log_failed.load()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(g_write_mutex);
  return absl::DataLossError(
      absl::StrFormat("%s: cannot write the log (disk full or read-only?). HINT: the run directory "
                      "(logging.run_dir) must be writable and have free space.",
                      g_log_path));
}

bool HasLogFile() { return g_has_log_file; }

LogLine::LogLine(LogLevel level, const char* tag) : level_(level), tag_(tag) {}

LogLine::~LogLine() {
  static const char* kLevelNames[] = {"debug ", "", "WARNING ", "ERROR "};
  std::string line = absl::StrFormat("[%s]%s[%s] %s%s\n", TimeStamp(), RankTag(), tag_,
                                     kLevelNames[static_cast<int>(level_)], stream_.str());
  std::lock_guard<std::mutex> lock(g_write_mutex);
  if (g_log_file != nullptr) {
    const bool ok = std::fwrite(line.data(), 1, line.size(), g_log_file) == line.size() &&
                    std::fflush(g_log_file) == 0;
    if (!ok) g_log_failed = true;
  }
  if (!ShouldLog(level_)) return;
  FILE* out = level_ >= LogLevel::kWarning ? stderr : stdout;
  if (level_ < LogLevel::kWarning && OutputIsTerminal()) std::fputs("\r\033[K", out);
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
}

void SetFatalHandler(FatalHandler handler) { g_fatal_handler = handler; }

void Fatal(const char* file, int line, const std::string& message) {
  {
    std::string text =
        absl::StrFormat("[%s]%s FATAL %s:%d: %s\n", TimeStamp(), RankTag(), file, line, message);
    std::lock_guard<std::mutex> lock(g_write_mutex);
    std::fflush(stdout);
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
  }
  FatalHandler handler = g_fatal_handler.load();
  if (handler != nullptr) handler(1);
  std::abort();
}

namespace internal {
CheckFailure::CheckFailure(const char* file, int line, const char* condition)
    : file_(file), line_(line) {
  stream_ << "check failed: " << condition << " ";
}
CheckFailure::~CheckFailure() { Fatal(file_, line_, stream_.str()); }
}  // namespace internal

}  // namespace braid
