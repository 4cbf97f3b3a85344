// Internal-invariant checks: BRAID_CHECK(cond) << "context"; prints file:line and brings every
// rank down (the fatal handler is MPI_Abort once the distributed runtime is up), so that no peer
// is left blocked in a collective. User-facing errors are absl::Status, never checks.
#pragma once
#include <sstream>
#include <string>

namespace braid {

// Called with an exit code after a fatal error has been printed. Default: std::abort().
using FatalHandler = void (*)(int exit_code);
void SetFatalHandler(FatalHandler handler);

// Prints "FATAL file:line: message" with the rank tag and calls the fatal handler.
[[noreturn]] void Fatal(const char* file, int line, const std::string& message);

namespace internal {
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  const char* file_;
  int line_;
  std::ostringstream stream_;
};
}  // namespace internal
}  // namespace braid

#define BRAID_CHECK(cond) \
  if (cond) {             \
  } else                  \
    ::braid::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()

#define BRAID_CHECK_OK(expr)                                                   \
  if (::absl::Status braid_check_status_ = (expr); braid_check_status_.ok()) { \
  } else                                                                       \
    ::braid::internal::CheckFailure(__FILE__, __LINE__, #expr).stream()        \
        << braid_check_status_.ToString() << " "
