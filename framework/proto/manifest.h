// Parsing and checking a checkpoint manifest (framework/proto/checkpoint.proto) without LibTorch:
// the format version, the layout (TP and DP sizes), one payload file per TP rank, and for every
// tensor a sane dtype, shape, TP axis and a shard on every rank it is split over. A manifest that
// passes can be trusted by the loader (framework/train/checkpoint.cc); the fuzzer runs it alone.
#pragma once
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "checkpoint.pb.h"

namespace braid {

inline constexpr uint32_t kCheckpointFormatVersion = 1;

// `bytes` is the content of `path` (named in errors).
absl::StatusOr<proto::Manifest> ParseManifest(std::string_view bytes, const std::string& path);

}  // namespace braid
