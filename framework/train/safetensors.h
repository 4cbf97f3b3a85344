// safetensors files (docs/formats.md, "safetensors"): u64 little-endian header length, a JSON
// header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
// tensors back to back, little-endian, C order. Readable by Hugging Face and numpy; nothing in
// it executes on load.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace braid {

// Writes `tensors` (CPU; float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8,
// bool) in name order, atomically (temporary file, then rename).
absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Reads and validates a whole file: header JSON, dtypes, shapes against byte ranges, ranges
// that tile the data with no holes or overlaps. Errors name the file and the tensor.
absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path);

}  // namespace braid
