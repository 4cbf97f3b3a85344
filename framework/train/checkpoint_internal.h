// What the checkpoint files share (checkpoint_manifest.cc, checkpoint_save.cc,
// checkpoint_load.cc): file names, the entries a target checkpoints, the manifest's tensor and
// file lists, writing, reading and checking a manifest, publishing a step. Not for use outside
// framework/train/.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "checkpoint.pb.h"
#include "framework/train/checkpoint.h"

namespace braid {
namespace checkpoint_internal {
namespace fs = std::filesystem;

std::string StepName(int64_t step);  // step_00000100
// With a pipeline stage (pp_rank >= 0; PP > 1) the names start with it: pp1.tp0.safetensors.
std::string ShardFile(int tp_rank, int pp_rank = -1);  // tp0.safetensors
// The distributed optimizer's moments: one file per rank, its pieces.
std::string OptimFile(int tp_rank, int dp_rank, int pp_rank = -1);  // tp0.dp1.optim.safetensors
absl::Status Fsync(const fs::path& p);
// A file's size and CRC-32C.
absl::StatusOr<std::pair<uint64_t, uint32_t>> SizeAndCrc(const fs::path& p);

// Every tensor the target checkpoints, with its layout: model/<p>, optim/exp_avg/<p>, ...
struct Entry {
  std::string name;
  torch::Tensor local;         // this rank's tensor (its TP slice), or its piece of it
  std::vector<int64_t> shape;  // the TP slice's shape
  TpParam layout;
  size_t param = 0;                 // index in the model's named_parameters()
  int64_t offset = 0, length = -1;  // a piece: [offset, offset + length) of the flattened slice
  bool piece() const { return length >= 0; }
};
std::vector<Entry> Entries(const CheckpointTarget& t, bool with_optimizer);
// A TP slice's shape made whole.
std::vector<int64_t> GlobalShape(std::vector<int64_t> s, TpParam l, int tp);

// A tensor as the manifest lists it.
struct ManifestTensor {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> global_shape;
  TpParam layout;
  // Stored as pieces (the distributed optimizer's moments; the same cut on every TP rank it is
  // stored for): DP rank `dp_rank` holds [offset, offset + length) of each TP slice, in its
  // OptimFile. Empty: whole shards in the TP ranks' ShardFile.
  struct Piece {
    int dp_rank = 0;
    int64_t offset = 0, length = 0;
  };
  std::vector<Piece> pieces;
  int pp_rank = -1;  // the stage whose files hold it (-1: no pipeline)
};
struct PayloadFile {
  std::string name;
  uint64_t bytes = 0;
  uint32_t crc = 0;
};

// manifest.pb (atomically) and manifest.txt in `dir`.
absl::Status WriteManifest(const fs::path& dir, const proto::Manifest& m);
// Moves a finished step directory `tmp` to root/name, points `latest` at it, keeps the newest
// `keep_last` steps.
absl::Status Publish(const fs::path& root, const fs::path& tmp, const std::string& name,
                     int64_t keep_last);
// The one place a manifest is built (SaveCheckpoint, WriteCheckpoint): `meta`'s header fields,
// the tensors with their global shapes, layouts and shards at `tp_size`, and each payload file.
proto::Manifest BuildManifest(const FullCheckpoint& meta, int tp_size,
                              const std::vector<ManifestTensor>& tensors,
                              const std::vector<PayloadFile>& files);
// " HINT: use an earlier checkpoint ...": the hint of every damaged-checkpoint error.
extern const char kEarlierHint[];
// Reads and validates a manifest (present, parsable, not from a newer format); no payloads yet.
absl::StatusOr<proto::Manifest> ReadManifest(const fs::path& dir);
// Checks the payload files of a manifest (size, CRC): all, or those named in `only`.
absl::Status CheckPayloads(const fs::path& dir, const proto::Manifest& m,
                           const std::set<std::string>* only = nullptr);

}  // namespace checkpoint_internal
}  // namespace braid
