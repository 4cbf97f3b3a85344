// Checkpoint manifest parsing and checks (see manifest.h).
#include "framework/proto/manifest.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/safetensors_header.h"

namespace braid {

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
  const int tp = m.tp_size(), dp = m.dp_size();
  if (tp < 1 || tp > (1 << 16) || dp < 1 || dp > (1 << 20)) {
    return bad(absl::StrFormat("impossible layout TP %d x DP %d", tp, dp));
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
  if (static_cast<int>(files.size()) != tp) {
    return bad(absl::StrFormat("%d payload files for TP %d", files.size(), tp));
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
    if (split && t.global_shape(t.tp_axis()) % (static_cast<int64_t>(groups) * tp) != 0) {
      return bad(absl::StrFormat("%s: dimension %d of size %d does not split into %d x %d",
                                 t.name(), t.tp_axis(), t.global_shape(t.tp_axis()), groups, tp));
    }
    const int want_shards = split ? tp : 1;
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
    if (r.rank() < 0 || r.rank() >= tp * dp)
      return bad(absl::StrCat("RNG state of rank ", r.rank()));
  }
  return m;
}

}  // namespace braid
