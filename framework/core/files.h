// Writing outputs without destroying anything a user has (docs/architecture.md, "Outputs"):
// every tool writes to a temporary sibling and renames it into place when complete, refuses an
// output that is one of its inputs (or inside one, or holding one), and refuses a non-empty
// output directory unless told to replace it.
#pragma once
#include <string>
#include <vector>

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace braid {

// Checks an output path before anything is read or written: it is none of `inputs`, not inside
// one and holds none; when it exists it is a directory (want_dir) or a file, and a non-empty
// directory only with `force` (then replaced whole). `flag` names the option in messages.
absl::Status CheckOutputPath(const std::string& output, const std::vector<std::string>& inputs,
                             bool want_dir, bool force, const std::string& flag = "--output");

// A fresh temporary sibling of `path` (".tmp_<name>.<host>.<pid>"), not yet created.
std::string TemporarySibling(const std::string& path);

// Moves the complete directory (or file) `tmp` to `path`, replacing what is there: the old one
// is renamed aside first and removed only after the new one is in place.
absl::Status ReplaceWith(const std::string& tmp, const std::string& path);

// The whole content of the regular file `path`; an error naming it when it is missing, a
// directory or another non-file, or cannot be read (never an exception).
absl::StatusOr<std::string> ReadFileContents(const std::string& path);

// Writes `contents` to `path` through a temporary sibling, fsynced and renamed.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents);

// An exclusive lock on a directory (flock on `<dir>/.lock`, which records the holder's host, pid
// and start time), held until the object is destroyed or the process ends. `what` names the
// directory in the error ("the run directory") that tells who holds it.
class DirectoryLock {
 public:
  static absl::StatusOr<std::unique_ptr<DirectoryLock>> Acquire(const std::string& dir,
                                                                const std::string& what);
  ~DirectoryLock();

 private:
  DirectoryLock() = default;
  int fd_ = -1;
};

}  // namespace braid
