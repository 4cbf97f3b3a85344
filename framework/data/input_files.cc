// Input files for preprocess_data (see input_files.h).
#include "framework/data/input_files.h"

#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace braid {

namespace fs = std::filesystem;

std::string WithoutCompressionSuffix(const std::string& path) {
  for (const char* s : {".gz", ".zst"})
    if (absl::EndsWith(path, s)) return path.substr(0, path.size() - std::strlen(s));
  return path;
}

absl::StatusOr<std::vector<std::string>> ExpandInputs(const std::string& spec) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    const std::string p(part);
    if (p == "-") {
      out.push_back(p);
      continue;
    }
    std::vector<std::string> matched;
    if (p.find_first_of("*?[") != std::string::npos) {
      glob_t g;
      if (::glob(p.c_str(), 0, nullptr, &g) == 0) {
        for (size_t k = 0; k < g.gl_pathc; ++k) matched.push_back(g.gl_pathv[k]);
      }
      globfree(&g);
      if (matched.empty()) {
        return absl::NotFoundError(
            absl::StrCat("--input ", p,
                         ": the pattern matches no file. HINT: quote it so that the shell "
                         "does not expand it first, and check the directory."));
      }
    } else {
      matched.push_back(p);
    }
    for (const std::string& m : matched) {
      struct stat st;
      if (::stat(m.c_str(), &st) != 0) {
        return absl::NotFoundError(
            absl::StrCat("--input ", m, ": cannot read it: ", std::strerror(errno), "."));
      }
      if (S_ISDIR(st.st_mode)) {
        std::vector<std::string> files;
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(m, ec); !ec && it != fs::end(it);
             it.increment(ec)) {
          const std::string name = it->path().filename().string();
          if (!name.empty() && name[0] == '.') {
            if (it->is_directory()) it.disable_recursion_pending();
            continue;
          }
          if (it->is_regular_file()) files.push_back(it->path().string());
        }
        if (ec) {
          return absl::PermissionDeniedError(
              absl::StrCat("--input ", m, ": cannot list it: ", ec.message(), "."));
        }
        if (files.empty()) {
          return absl::NotFoundError(absl::StrCat("--input ", m, ": the directory holds no file."));
        }
        std::sort(files.begin(), files.end());
        out.insert(out.end(), files.begin(), files.end());
        continue;
      }
      if (::access(m.c_str(), R_OK) != 0) {
        return absl::PermissionDeniedError(
            absl::StrCat("--input ", m, ": not readable: ", std::strerror(errno), "."));
      }
      out.push_back(m);
    }
  }
  if (out.empty()) return absl::InvalidArgumentError("--input names no file.");
  return out;
}

absl::StatusOr<std::unique_ptr<InputFileBuf>> InputFileBuf::Open(const std::string& path) {
  std::unique_ptr<InputFileBuf> b(new InputFileBuf());
  b->path_ = path;
  FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open it: ", std::strerror(errno)));
  }
  b->in_.resize(size_t{1} << 17);
  b->out_.resize(size_t{1} << 18);
  // The first bytes tell the kind (stdin is read as plain text).
  unsigned char magic[4] = {};
  size_t got = 0;
  if (path != "-") {
    got = std::fread(magic, 1, 4, f);
    std::rewind(f);
  }
  if (got >= 2 && magic[0] == 0x1F && magic[1] == 0x8B) {
    std::fclose(f);
    gzFile gz = gzopen(path.c_str(), "rb");
    if (gz == nullptr) return absl::NotFoundError(absl::StrCat(path, ": cannot open it."));
    gzbuffer(gz, 1 << 17);
    b->kind_ = Kind::kGzip;
    b->file_ = gz;
  } else if (got == 4 && magic[0] == 0x28 && magic[1] == 0xB5 && magic[2] == 0x2F &&
             magic[3] == 0xFD) {
    b->kind_ = Kind::kZstd;
    b->file_ = f;
    b->zstd_ = ZSTD_createDCtx();
  } else {
    b->file_ = f;
  }
  return b;
}

InputFileBuf::~InputFileBuf() {
  if (kind_ == Kind::kGzip) {
    gzclose(static_cast<gzFile>(file_));
  } else if (file_ != nullptr && file_ != stdin) {
    std::fclose(static_cast<FILE*>(file_));
  }
  if (zstd_ != nullptr) ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(zstd_));
}

size_t InputFileBuf::Fill() {
  if (eof_ || !status_.ok()) return 0;
  switch (kind_) {
    case Kind::kPlain: {
      auto* f = static_cast<FILE*>(file_);
      const size_t n = std::fread(out_.data(), 1, out_.size(), f);
      if (n == 0) {
        if (std::ferror(f)) {
          status_ =
              absl::DataLossError(absl::StrCat(path_, ": read error: ", std::strerror(errno)));
        }
        eof_ = true;
      }
      return n;
    }
    case Kind::kGzip: {
      auto gz = static_cast<gzFile>(file_);
      const int n = gzread(gz, out_.data(), static_cast<unsigned>(out_.size()));
      if (n < 0 || (n == 0 && !gzeof(gz))) {
        int err = 0;
        const char* msg = gzerror(gz, &err);
        status_ = absl::DataLossError(absl::StrCat(
            path_, ": the gzip stream is damaged or truncated (", msg,
            "). HINT: check the file with `gzip -t` and fetch it again; nothing was written."));
        return 0;
      }
      if (n == 0) {
        // zlib reads a truncated member as a short stream without an error on some versions:
        // gzeof with a pending error code says so.
        int err = 0;
        gzerror(gz, &err);
        if (err != Z_OK && err != Z_STREAM_END) {
          status_ = absl::DataLossError(
              absl::StrCat(path_,
                           ": the gzip stream is truncated. HINT: check the file with "
                           "`gzip -t` and fetch it again; nothing was written."));
        }
        eof_ = true;
      }
      return static_cast<size_t>(std::max(n, 0));
    }
    case Kind::kZstd: {
      auto* f = static_cast<FILE*>(file_);
      auto* z = static_cast<ZSTD_DCtx*>(zstd_);
      while (true) {
        if (in_pos_ == in_size_) {
          in_size_ = std::fread(in_.data(), 1, in_.size(), f);
          in_pos_ = 0;
          if (in_size_ == 0) {
            if (frame_left_ != 0 || std::ferror(f)) {
              status_ = absl::DataLossError(absl::StrCat(
                  path_,
                  ": the zstd stream is truncated. HINT: check the file with `zstd -t` "
                  "and fetch it again; nothing was written."));
            }
            eof_ = true;
            return 0;
          }
        }
        ZSTD_inBuffer in{in_.data(), in_size_, in_pos_};
        ZSTD_outBuffer out{out_.data(), out_.size(), 0};
        const size_t ret = ZSTD_decompressStream(z, &out, &in);
        in_pos_ = in.pos;
        if (ZSTD_isError(ret)) {
          status_ = absl::DataLossError(absl::StrCat(path_, ": the zstd stream is damaged (",
                                                     ZSTD_getErrorName(ret),
                                                     "). HINT: check the file with `zstd -t`."));
          return 0;
        }
        frame_left_ = ret;
        if (out.pos > 0) return out.pos;
      }
    }
  }
  return 0;
}

InputFileBuf::int_type InputFileBuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  const size_t n = Fill();
  if (n == 0) return traits_type::eof();
  setg(out_.data(), out_.data(), out_.data() + n);
  return traits_type::to_int_type(*gptr());
}

}  // namespace braid
