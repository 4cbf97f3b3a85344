// Corpus inputs for preprocess_data: several files, directories and glob patterns, each plain,
// gzip (.gz) or Zstandard (.zst) (told by its first bytes, not its name), read as a stream so that
// memory stays flat whatever the size. A truncated or corrupt archive is an error naming it.
#pragma once
#include <memory>
#include <streambuf>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace braid {

// Expands --input: a comma-separated list of files, directories (their regular files, sorted,
// recursively; hidden ones skipped) and glob patterns. "-" is stdin. Errors name what matched
// nothing or cannot be read.
absl::StatusOr<std::vector<std::string>> ExpandInputs(const std::string& spec);

// The name without a .gz / .zst ending ("a.jsonl.gz" -> "a.jsonl").
std::string WithoutCompressionSuffix(const std::string& path);

// A read-only stream buffer over one input file, decompressing as it reads.
class InputFileBuf : public std::streambuf {
 public:
  static absl::StatusOr<std::unique_ptr<InputFileBuf>> Open(const std::string& path);
  ~InputFileBuf() override;
  // Not OK when reading stopped at a damaged file (underflow then reports the end).
  const absl::Status& status() const { return status_; }
  bool compressed() const { return kind_ != Kind::kPlain; }

 protected:
  int_type underflow() override;

 private:
  enum class Kind { kPlain, kGzip, kZstd };
  InputFileBuf() = default;
  size_t Fill();  // decompressed bytes into out_; 0 at the end or on error

  std::string path_;
  Kind kind_ = Kind::kPlain;
  void* file_ = nullptr;  // FILE* (plain, zstd) or gzFile
  void* zstd_ = nullptr;  // ZSTD_DCtx*
  std::vector<char> in_, out_;
  size_t in_pos_ = 0, in_size_ = 0;
  size_t frame_left_ = 0;  // zstd: nonzero while a frame is unfinished
  bool eof_ = false;
  absl::Status status_;
};

}  // namespace braid
