// The header of a safetensors file (docs/formats.md, "safetensors"), parsed and checked without
// LibTorch: every tensor's dtype, shape and byte range. Shapes must be non-negative and their byte
// size must not overflow; the ranges must tile the data section exactly. The train library reads
// the tensors on top of it (framework/train/safetensors.h); the fuzzer runs it alone.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace braid {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // "F32", "BF16", ...
  std::vector<int64_t> shape;
  int64_t begin = 0, end = 0;  // bytes, relative to the data section
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> tensors;  // in header order
  std::map<std::string, std::string> metadata;
  int64_t data_offset = 0;  // where the data section starts in the file
};

// Bytes per element of a safetensors dtype name; 0 when unknown.
int SafetensorsElementSize(std::string_view dtype);

// Parses and checks the header of the file whose bytes are `file` (the whole file: the ranges
// are checked against its size). `path` names it in errors.
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view file,
                                                         const std::string& path);

}  // namespace braid
