// Safe outputs (see files.h).
#include "framework/core/files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace braid {
namespace fs = std::filesystem;
namespace {

fs::path Canonical(const std::string& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return ec ? fs::path(p).lexically_normal() : c;
}

// Whether `inner` is `outer` or lies inside it.
bool Within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin(), o = outer.begin();
  for (; o != outer.end(); ++i, ++o) {
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

}  // namespace

absl::Status CheckOutputPath(const std::string& output, const std::vector<std::string>& inputs,
                             bool want_dir, bool force, const std::string& flag) {
  if (output.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, " is empty."));
  const fs::path out = Canonical(output);
  for (const std::string& input : inputs) {
    const fs::path in = Canonical(input);
    if (Within(out, in) || Within(in, out)) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " ", output, (out == in ? " is the input " : " overlaps the input "), input,
          ": a conversion never writes into what it reads. HINT: choose another ", flag, "."));
    }
  }
  std::error_code ec;
  const fs::file_status st = fs::status(out, ec);
  if (!fs::exists(st)) return absl::OkStatus();
  if (want_dir && !fs::is_directory(st)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " ", output, " exists and is not a directory. HINT: choose another ", flag, "."));
  }
  if (!want_dir && fs::is_directory(st)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", output, " is a directory."));
  }
  if (want_dir && !fs::is_empty(out, ec) && !force) {
    return absl::AlreadyExistsError(
        absl::StrCat(flag, " ", output,
                     " is not empty: refusing to overwrite what is there. HINT: choose a "
                     "new directory, or pass --force to replace it whole."));
  }
  return absl::OkStatus();
}

std::string TemporarySibling(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  // Host and pid: on a filesystem shared by several nodes, two processes with the same pid on
  // different hosts still write different files.
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  return (p.parent_path() /
          absl::StrCat(".tmp_", p.filename().string(), ".", host, ".", ::getpid()))
      .string();
}

absl::Status ReplaceWith(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  fs::path target = fs::path(path).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  const bool existed = fs::exists(fs::symlink_status(target, ec));
  const fs::path aside =
      target.parent_path() / absl::StrCat(".old_", target.filename().string(), ".", ::getpid());
  if (existed) {
    fs::rename(target, aside, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot move ", target.string(), " aside: ", ec.message()));
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code back;
    if (existed) fs::rename(aside, target, back);  // put the old one back
    return absl::InternalError(
        absl::StrCat("cannot rename ", tmp, " to ", target.string(), ": ", ec.message()));
  }
  if (existed) fs::remove_all(aside, ec);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFileContents(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st))
    return absl::NotFoundError(absl::StrCat("cannot open '", path, "': no such file."));
  if (!fs::is_regular_file(st)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", path, "' is ", fs::is_directory(st) ? "a directory" : "not a regular file",
        ", not a file. HINT: name the file itself."));
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open '", path, "': ", std::strerror(errno), "."));
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      return absl::DataLossError(absl::StrCat("cannot read '", path, "': ", why, "."));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = TemporarySibling(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(tmp, ": cannot create: ", std::strerror(errno)));
  }
  const bool ok =
      ::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size()) &&
      ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    return absl::DataLossError(absl::StrCat(path, ": cannot write: ", why));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DirectoryLock>> DirectoryLock::Acquire(const std::string& dir,
                                                                      const std::string& what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string path = (fs::path(dir) / ".lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot create the lock file of ", what,
                                                    ": ", std::strerror(errno),
                                                    ". HINT: the directory must be writable."));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char holder[256] = {};
    const ssize_t n = ::pread(fd, holder, sizeof(holder) - 1, 0);
    ::close(fd);
    std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "another process";
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", dir, " is in use by ", who,
                     ". HINT: wait for that run to end, or give this "
                     "one directories of its own (logging.run_dir / --run-dir, checkpoint.dir)."));
  }
  char host[256] = "?";
  ::gethostname(host, sizeof(host) - 1);
  const std::string me = absl::StrCat(
      "host ", host, " pid ", ::getpid(), " (started ",
      absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::Now(), absl::LocalTimeZone()), ")\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) < 0) {
    // The lock holds without the note; only the message of a second run is less precise.
  }
  std::unique_ptr<DirectoryLock> lock(new DirectoryLock());
  lock->fd_ = fd;
  return lock;
}

DirectoryLock::~DirectoryLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

}  // namespace braid
