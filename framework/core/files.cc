// Safe outputs (see files.h).
#include "framework/core/files.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"

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
  return (p.parent_path() / absl::StrCat(".tmp_", p.filename().string(), ".", ::getpid())).string();
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

}  // namespace braid
