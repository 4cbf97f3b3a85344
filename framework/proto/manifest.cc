// Checkpoint manifest parsing and checks (see manifest.h).
#include "framework/proto/manifest.h"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/safetensors_header.h"
#include "framework/core/status.h"

namespace braid {

namespace {
// A tensor stored as pieces: each TP rank's slice (the whole tensor when replicated: rank 0's)
// flattened and tiled exactly by its pieces, each from a DP rank of the layout, in a listed file.
template <typename Bad>
absl::Status CheckPieces(const proto::TensorEntry& t, int tp, int dp,
                         const std::set<std::string>& files, const Bad& bad) {
  const bool split = t.tp_axis() >= 0;
  int64_t numel = 1;  // of one TP rank's slice
  for (int64_t d : t.global_shape()) {
    if (d != 0 && numel > (int64_t{1} << 50) / d) return bad(absl::StrCat(t.name(), ": too large"));
    numel *= d;
  }
  if (split) {  // the rest of the axis split, its replicated tail whole in every slice
    const int64_t d = t.global_shape(t.tp_axis()), tail = t.tp_replicated_tail();
    numel = d == 0 ? 0 : numel / d * ((d - tail) / tp + tail);
  }
  std::map<int, std::vector<std::pair<int64_t, int64_t>>> by_rank;
  for (const proto::Shard& s : t.shards()) {
    if (s.tp_rank() < 0 || s.tp_rank() >= (split ? tp : 1) || s.dp_rank() < 0 ||
        s.dp_rank() >= dp || s.offset() < 0 || s.length() <= 0 || s.length() > numel ||
        s.offset() > numel - s.length() || files.count(s.file()) == 0 || s.key().empty()) {
      return bad(absl::StrFormat(
          "%s: a piece [%d, +%d) of TP rank %d, DP rank %d in '%s' does not fit a slice of %d "
          "elements in TP %d x DP %d with the listed files",
          t.name(), s.offset(), s.length(), s.tp_rank(), s.dp_rank(), s.file(), numel, tp, dp));
    }
    by_rank[s.tp_rank()].emplace_back(s.offset(), s.length());
  }
  if (static_cast<int>(by_rank.size()) != (split ? tp : 1)) {
    return bad(absl::StrFormat("%s: pieces for %d TP ranks, expected %d", t.name(), by_rank.size(),
                               split ? tp : 1));
  }
  for (auto& [rank, ranges] : by_rank) {
    std::sort(ranges.begin(), ranges.end());
    int64_t next = 0;
    for (const auto& [offset, length] : ranges) {
      if (offset != next) break;
      next += length;
    }
    if (next != numel) {
      return bad(
          absl::StrFormat("%s: the pieces of TP rank %d do not tile its %d elements "
                          "(a gap or an overlap at %d)",
                          t.name(), rank, numel, next));
    }
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<proto::Manifest> ParseManifest(std::string_view bytes, const std::string& path) {
  const std::string hint =
      " HINT: use an earlier checkpoint (its directory name), or delete this one.";
  auto bad = [&](const std::string& what) {
    return absl::DataLossError(absl::StrCat(path, ": ", what, ".", hint));
  };
  proto::Manifest m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return bad("unreadable (not a checkpoint manifest)");
  }
  if (m.format_version() == 0) return bad("empty or incomplete: no format version");
  if (m.format_version() > kCheckpointFormatVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: checkpoint format version %d is newer than this build's %d. HINT: load it with a "
        "newer braid.",
        path, m.format_version(), kCheckpointFormatVersion));
  }
  const int tp = m.tp_size(), dp = m.dp_size(), pp = std::max(1, m.pp_size());
  if (tp < 1 || tp > (1 << 16) || dp < 1 || dp > (1 << 20) || pp > (1 << 12)) {
    return bad(absl::StrFormat("impossible layout TP %d x DP %d x PP %d", tp, dp, pp));
  }
  if (m.step() < 0 || m.consumed_samples() < 0 || m.vocab_size() < 0) {
    return bad("negative step, sample count or vocabulary size");
  }
  std::set<std::string> files;
  for (const proto::FileEntry& f : m.files()) {
    if (f.name().empty() || f.name().find('/') != std::string::npos ||
        f.name().find("..") != std::string::npos || !files.insert(f.name()).second) {
      return bad(absl::StrCat("bad or repeated payload file name '", f.name(), "'"));
    }
  }
  // One per TP rank and stage, and with sharded optimizer state one more per rank.
  if (static_cast<int64_t>(files.size()) < static_cast<int64_t>(tp) * pp ||
      static_cast<int64_t>(files.size()) > static_cast<int64_t>(tp) * pp * (dp + 1)) {
    return bad(
        absl::StrFormat("%d payload files for TP %d x DP %d x PP %d", files.size(), tp, dp, pp));
  }
  if (m.tensors_size() == 0) return bad("no tensors");
  std::set<std::string> names;
  for (const proto::TensorEntry& t : m.tensors()) {
    if (t.name().empty() || !names.insert(t.name()).second) {
      return bad(absl::StrCat("empty or repeated tensor name '", t.name(), "'"));
    }
    if (SafetensorsElementSize(t.dtype()) == 0) {
      return bad(absl::StrCat(t.name(), ": unknown dtype '", t.dtype(), "'"));
    }
    for (int64_t d : t.global_shape()) {
      if (d < 0) return bad(absl::StrCat(t.name(), ": negative dimension"));
    }
    const int rank = t.global_shape_size();
    const bool split = t.tp_axis() >= 0;
    const int groups = std::max(1, t.tp_groups());
    if (t.tp_axis() < -1 || t.tp_axis() >= std::max(rank, 1) || (split && rank == 0) ||
        t.tp_groups() < 0) {
      return bad(absl::StrCat(t.name(), ": TP axis ", t.tp_axis(), " of a ", rank, "-d tensor"));
    }
    const int64_t tail = t.tp_replicated_tail();
    if (tail < 0 || (tail > 0 && (!split || groups != 1 || tail >= t.global_shape(t.tp_axis())))) {
      return bad(
          absl::StrCat(t.name(), ": a replicated tail of ", tail, " on TP axis ", t.tp_axis()));
    }
    if (split && (t.global_shape(t.tp_axis()) - tail) % (static_cast<int64_t>(groups) * tp) != 0) {
      return bad(absl::StrFormat("%s: dimension %d of size %d does not split into %d x %d",
                                 t.name(), t.tp_axis(), t.global_shape(t.tp_axis()), groups, tp));
    }
    const int want_shards = split ? tp : 1;
    bool pieces = false;
    for (const proto::Shard& s : t.shards())
      pieces = pieces || s.length() != 0 || s.offset() != 0 || s.dp_rank() != 0;
    if (pieces) {
      BRAID_RETURN_IF_ERROR(CheckPieces(t, tp, dp, files, bad));
      continue;
    }
    if (t.shards_size() != want_shards) {
      return bad(
          absl::StrFormat("%s: %d shards, expected %d", t.name(), t.shards_size(), want_shards));
    }
    std::set<int> ranks;
    for (const proto::Shard& s : t.shards()) {
      if (s.tp_rank() < 0 || s.tp_rank() >= tp || !ranks.insert(s.tp_rank()).second ||
          files.count(s.file()) == 0 || s.key().empty()) {
        return bad(absl::StrCat(t.name(), ": a shard names rank ", s.tp_rank(), " and file '",
                                s.file(), "', which the manifest does not have"));
      }
    }
  }
  for (const proto::RngState& r : m.rng()) {
    if (r.rank() < 0 || r.rank() >= tp * dp * pp)
      return bad(absl::StrCat("RNG state of rank ", r.rank()));
  }
  return m;
}

}  // namespace braid
