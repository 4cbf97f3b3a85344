// Rank-aware logging: BLOG(INFO, "comm") << "..."; prints
// "[hh:mm:ss.mmm][rank r/w][comm] ..." on rank 0 (every rank when all-ranks logging is on;
// warnings and errors from every rank always). Info goes to stdout, warnings/errors to stderr.
#pragma once
#include <sstream>
#include <string>

#include "absl/status/status.h"

namespace braid {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Set once the rank is known (dist/runtime does this).
void SetLogRank(int rank, int world_size);
void SetLogAllRanks(bool all_ranks);
void SetLogLevel(LogLevel min_level);
bool ShouldLog(LogLevel level);
// Also writes every line of this rank (all levels, whether or not the console shows it) to
// `path` (per-rank logs in the run directory), appending; an error when it cannot be opened.
// Empty path: stop.
absl::Status SetLogFile(const std::string& path);
// OK while every line reached the log file; an error naming it once a write failed (disk full,
// read-only): the trainer stops on it instead of losing the log silently.
absl::Status LogFileStatus();
// The "[rank r/w]" tag of this process ("" before the runtime is up).
std::string RankTag();
bool HasLogFile();

class LogLine {
 public:
  LogLine(LogLevel level, const char* tag);
  ~LogLine();
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  const char* tag_;
  std::ostringstream stream_;
};

}  // namespace braid

#define BLOG_LEVEL_DEBUG ::braid::LogLevel::kDebug
#define BLOG_LEVEL_INFO ::braid::LogLevel::kInfo
#define BLOG_LEVEL_WARNING ::braid::LogLevel::kWarning
#define BLOG_LEVEL_ERROR ::braid::LogLevel::kError
#define BLOG(level, tag)                                                   \
  if (!::braid::ShouldLog(BLOG_LEVEL_##level) && !::braid::HasLogFile()) { \
  } else                                                                   \
    ::braid::LogLine(BLOG_LEVEL_##level, tag).stream()
