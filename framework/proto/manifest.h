// Parsing and checking a checkpoint manifest (framework/proto/checkpoint.proto) without LibTorch:
// the format version, the layout (TP and DP sizes), the payload files (one per TP rank, and with
// sharded optimizer state one per rank), and for every tensor a sane dtype, shape, TP axis and a
// shard on every rank it is split over, or pieces that tile each such rank's slice exactly. A
// manifest that passes can be trusted by the loader (framework/train/checkpoint_load.cc); the
// fuzzer runs it alone.
#pragma once
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "checkpoint.pb.h"

namespace braid {

// 1: every shard whole. 2: shards may be pieces (the distributed optimizer's moments, one file
// per rank); format 1 checkpoints still load.
inline constexpr uint32_t kCheckpointFormatVersion = 2;

// `bytes` is the content of `path` (named in errors).
absl::StatusOr<proto::Manifest> ParseManifest(std::string_view bytes, const std::string& path);

}  // namespace braid
