// Checkpoint naming, manifests and listing (see checkpoint.h): the files of a step directory,
// the manifest built, written and validated, payload checks, publishing a finished step, and the
// checkpoints a folder holds. Saving is checkpoint_save.cc; loading and resharding
// checkpoint_load.cc; what they share, checkpoint_internal.h.
#include "framework/train/checkpoint.h"

#include <fcntl.h>
#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "checkpoint.pb.h"
#include "framework/core/check.h"
#include "framework/core/crc32c.h"
#include "framework/core/files.h"
#include "framework/core/log.h"
#include "framework/core/status.h"
#include "framework/proto/manifest.h"
#include "framework/train/checkpoint_internal.h"
#include "framework/train/dtype.h"
#include "framework/train/model_io.h"
#include "framework/train/safetensors.h"
#include "framework/train/step.h"  // AllReduceScalar

namespace braid {
namespace checkpoint_internal {

std::string StepName(int64_t step) { return absl::StrFormat("step_%08d", step); }
std::string ShardFile(int tp_rank, int pp_rank) {
  return pp_rank < 0 ? absl::StrFormat("tp%d.safetensors", tp_rank)
                     : absl::StrFormat("pp%d.tp%d.safetensors", pp_rank, tp_rank);
}
// The distributed optimizer's moments: one file per rank, its pieces.
std::string OptimFile(int tp_rank, int dp_rank, int pp_rank) {
  return pp_rank < 0
             ? absl::StrFormat("tp%d.dp%d.optim.safetensors", tp_rank, dp_rank)
             : absl::StrFormat("pp%d.tp%d.dp%d.optim.safetensors", pp_rank, tp_rank, dp_rank);
}

absl::Status Fsync(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY);
  if (fd < 0) return absl::InternalError(absl::StrCat(p.string(), ": cannot open to sync"));
  ::fsync(fd);
  ::close(fd);
  return absl::OkStatus();
}

absl::StatusOr<std::pair<uint64_t, uint32_t>> SizeAndCrc(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(p.string(), ": missing"));
  std::vector<char> buf(1 << 20);
  uint64_t bytes = 0;
  uint32_t crc = 0;
  while (in) {
    in.read(buf.data(), buf.size());
    std::streamsize n = in.gcount();
    if (n <= 0) break;
    crc = Crc32c(buf.data(), static_cast<size_t>(n), crc);
    bytes += static_cast<uint64_t>(n);
  }
  return std::make_pair(bytes, crc);
}

// The parameters, and with the optimizer its moments: the optimizer's own tensors, which for
// the distributed optimizer are this rank's pieces of them. No communication.
std::vector<Entry> Entries(const CheckpointTarget& t, bool with_optimizer) {
  std::map<std::string, TpParam> layouts = CollectTpParams(*t.model);
  std::vector<Entry> out;
  std::vector<std::string> names;
  for (const auto& p : t.model->named_parameters()) {
    out.push_back({ModelKey(p.key()), p.value().detach(), p.value().sizes().vec(), layouts[p.key()],
                   names.size()});
    names.push_back(p.key());
  }
  if (!with_optimizer || t.optimizer == nullptr) return out;
  AdamW& o = *t.optimizer;
  const size_t n = names.size();
  if (!o.sharded()) {
    for (size_t i = 0; i < n; ++i) {
      out.push_back({ExpAvgKey(names[i]), o.exp_avg()[i], out[i].shape, out[i].layout, i});
      out.push_back({ExpAvgSqKey(names[i]), o.exp_avg_sq()[i], out[i].shape, out[i].layout, i});
    }
    return out;
  }
  const std::vector<AdamW::Range>& mine = o.sharding.of_rank[o.sharding.dp_rank];
  for (size_t j = 0; j < mine.size(); ++j) {
    const AdamW::Range& r = mine[j];
    const Entry& m = out[r.param];
    out.push_back({ExpAvgKey(names[r.param]), o.exp_avg()[j], m.shape, m.layout, r.param, r.offset,
                   r.length});
    out.push_back({ExpAvgSqKey(names[r.param]), o.exp_avg_sq()[j], m.shape, m.layout, r.param,
                   r.offset, r.length});
  }
  for (size_t i = 0; i < o.sharding.whole.size(); ++i) {  // after the pieces, whole
    const size_t p = o.sharding.whole[i], j = mine.size() + i;
    out.push_back({ExpAvgKey(names[p]), o.exp_avg()[j], out[p].shape, out[p].layout, p});
    out.push_back({ExpAvgSqKey(names[p]), o.exp_avg_sq()[j], out[p].shape, out[p].layout, p});
  }
  return out;
}

std::vector<int64_t> GlobalShape(std::vector<int64_t> s, TpParam l, int tp) {
  if (l.axis >= 0) s[l.axis] = FullDim(s[l.axis], l, tp);
  return s;
}

absl::Status WriteManifest(const fs::path& dir, const proto::Manifest& m) {
  std::string bin;
  m.SerializeToString(&bin);
  std::string text;
  google::protobuf::TextFormat::PrintToString(m, &text);
  {
    std::ofstream out(dir / "manifest.txt", std::ios::binary);
    out << text;
  }
  {
    std::ofstream out(dir / "manifest.pb.tmp", std::ios::binary);
    out << bin;
    if (!out.flush())
      return absl::InternalError(absl::StrCat(dir.string(), ": manifest write failed"));
  }
  BRAID_RETURN_IF_ERROR(Fsync(dir / "manifest.pb.tmp"));
  fs::rename(dir / "manifest.pb.tmp", dir / "manifest.pb");
  return absl::OkStatus();
}

absl::Status Publish(const fs::path& root, const fs::path& tmp, const std::string& name,
                     int64_t keep_last) {
  std::error_code ec;
  BRAID_RETURN_IF_ERROR(ReplaceWith(tmp.string(), (root / name).string()));
  BRAID_RETURN_IF_ERROR(Fsync(root));
  {
    std::ofstream out(root / "latest.tmp");
    out << name << "\n";
    if (!out.flush()) return absl::InternalError("cannot write latest.tmp");
  }
  BRAID_RETURN_IF_ERROR(Fsync(root / "latest.tmp"));
  fs::rename(root / "latest.tmp", root / "latest", ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot replace ", (root / "latest").string()));
  BRAID_RETURN_IF_ERROR(Fsync(root));
  std::vector<std::string> steps;
  for (const auto& e : fs::directory_iterator(root)) {
    std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind("step_", 0) == 0) steps.push_back(n);
  }
  std::sort(steps.begin(), steps.end());
  for (size_t k = 0; k + keep_last < steps.size(); ++k) fs::remove_all(root / steps[k], ec);
  return absl::OkStatus();
}

// The one place a manifest is built (SaveCheckpoint, WriteCheckpoint): `meta`'s header fields
// (config, recipe, state, optimizer step, vocabulary, DP size, RNG states), the tensors with
// their global shapes, layouts and shards at `tp_size`, and each TP rank's payload file
// (size, CRC-32C).
proto::Manifest BuildManifest(const FullCheckpoint& meta, int tp_size,
                              const std::vector<ManifestTensor>& tensors,
                              const std::vector<PayloadFile>& files) {
  proto::Manifest m;
  m.set_format_version(kCheckpointFormatVersion);
  m.set_config_yaml(meta.config_yaml);
  m.set_recipe(meta.recipe);
  m.set_step(meta.state.step);
  m.set_consumed_samples(meta.state.consumed_samples);
  m.set_skipped_steps(meta.state.skipped_steps);
  m.set_tp_size(tp_size);
  m.set_dp_size(meta.dp_size);
  m.set_optimizer_step(meta.optimizer_step);
  m.set_vocab_size(meta.vocab_size);
  m.set_run_id(meta.run_id);
  m.set_pp_size(meta.pp_size);
  bool has_opt = false;
  for (const ManifestTensor& t : tensors) {
    has_opt = has_opt || IsOptimizerKey(t.name);
    proto::TensorEntry* te = m.add_tensors();
    te->set_name(t.name);
    te->set_dtype(SafetensorsDtypeName(t.dtype));
    for (int64_t d : t.global_shape) te->add_global_shape(d);
    te->set_tp_axis(t.layout.axis);
    te->set_tp_groups(t.layout.groups);
    te->set_tp_replicated_tail(t.layout.replicated_tail);
    te->set_vocab(t.layout.vocab);
    const int shards = t.layout.axis >= 0 ? tp_size : 1;
    for (int r = 0; r < shards; ++r) {
      if (t.pieces.empty()) {
        proto::Shard* s = te->add_shards();
        s->set_tp_rank(r);
        s->set_file(ShardFile(r, t.pp_rank));
        s->set_key(t.name);
      }
      for (const ManifestTensor::Piece& p : t.pieces) {
        proto::Shard* s = te->add_shards();
        s->set_tp_rank(r);
        s->set_dp_rank(p.dp_rank);
        s->set_offset(p.offset);
        s->set_length(p.length);
        s->set_file(OptimFile(r, p.dp_rank, t.pp_rank));
        s->set_key(t.name);
      }
    }
  }
  m.set_has_optimizer(has_opt);
  for (const PayloadFile& p : files) {
    proto::FileEntry* f = m.add_files();
    f->set_name(p.name);
    f->set_bytes(p.bytes);
    f->set_crc32c(p.crc);
  }
  for (const auto& [rank, states] : meta.rng) {
    proto::RngState* s = m.add_rng();
    s->set_rank(rank);
    s->set_replicated(states.first);
    s->set_sharded(states.second);
  }
  return m;
}

extern const char kEarlierHint[] =
    " HINT: use an earlier checkpoint (its directory name), or delete this one.";

// Reads and validates a manifest (present, parsable, not from a newer format); no payloads yet.
absl::StatusOr<proto::Manifest> ReadManifest(const fs::path& dir) {
  const std::string hint = kEarlierHint;
  if (!fs::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat(dir.string(), ": no such checkpoint directory."));
  }
  std::ifstream in(dir / "manifest.pb", std::ios::binary);
  if (!in) {
    return absl::DataLossError(absl::StrCat(dir.string(),
                                            ": no complete manifest (manifest.pb): "
                                            "the save did not finish.",
                                            hint));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseManifest(ss.str(), (dir / "manifest.pb").string());
}

// Checks the payload files of a manifest (size, CRC): all, or those named in `only`.
absl::Status CheckPayloads(const fs::path& dir, const proto::Manifest& m,
                           const std::set<std::string>* only) {
  const std::string hint = kEarlierHint;
  for (const proto::FileEntry& f : m.files()) {
    if (only != nullptr && only->count(f.name()) == 0) continue;
    auto sc = SizeAndCrc(dir / f.name());
    if (!sc.ok())
      return absl::DataLossError(
          absl::StrCat((dir / f.name()).string(), ": missing payload.", hint));
    if (sc->first != f.bytes()) {
      return absl::DataLossError(
          absl::StrFormat("%s: %d bytes, the manifest says %d (truncated?).%s",
                          (dir / f.name()).string(), sc->first, f.bytes(), hint));
    }
    if (sc->second != f.crc32c()) {
      return absl::DataLossError(
          absl::StrFormat("%s: checksum mismatch (crc32c %08x, manifest %08x): "
                          "the file is corrupt.%s",
                          (dir / f.name()).string(), sc->second, f.crc32c(), hint));
    }
  }
  return absl::OkStatus();
}

}  // namespace checkpoint_internal

using namespace checkpoint_internal;  // NOLINT: this file defines them

std::string ModelKey(const std::string& param) { return "model/" + param; }
std::string ExpAvgKey(const std::string& param) { return "optim/exp_avg/" + param; }
std::string ExpAvgSqKey(const std::string& param) { return "optim/exp_avg_sq/" + param; }
bool IsModelKey(const std::string& name) { return name.rfind("model/", 0) == 0; }
bool IsOptimizerKey(const std::string& name) { return name.rfind("optim/", 0) == 0; }
std::string ParamOfKey(const std::string& name) {
  for (const char* prefix : {"model/", "optim/exp_avg/", "optim/exp_avg_sq/"}) {
    if (name.rfind(prefix, 0) == 0) return name.substr(std::strlen(prefix));
  }
  return name;
}

bool FullCheckpoint::has_optimizer() const {
  for (const auto& [name, t] : tensors)
    if (IsOptimizerKey(name)) return true;
  return false;
}

absl::StatusOr<CheckpointOrigin> ReadCheckpointOrigin(const std::string& step_dir) {
  BRAID_ASSIGN_OR_RETURN(proto::Manifest m, ReadManifest(fs::path(step_dir)));
  return CheckpointOrigin{m.run_id(), m.config_yaml(), m.step()};
}

absl::StatusOr<std::string> LatestCheckpoint(const std::string& root) {
  std::ifstream in(fs::path(root) / "latest");
  std::string name;
  if (!in || !(in >> name)) return absl::NotFoundError(absl::StrCat(root, ": no 'latest'"));
  return (fs::path(root) / name).string();
}

CheckpointListing ListCheckpoints(const std::string& root) {
  CheckpointListing l;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (it->is_directory() && n.rfind("step_", 0) == 0) {
      l.all.push_back(n);
      if (fs::exists(it->path() / "manifest.pb")) l.complete.push_back(n);
    }
  }
  std::sort(l.all.begin(), l.all.end());
  std::sort(l.complete.begin(), l.complete.end());
  const fs::path latest = fs::path(root) / "latest";
  if (!fs::exists(fs::symlink_status(latest, ec))) {
    l.latest_problem = "is missing";
  } else if (fs::is_directory(latest, ec)) {
    l.latest_problem = "is a directory";
  } else {
    std::ifstream in(latest);
    std::string name;
    if (!(in >> name)) {
      l.latest_problem = "is empty";
    } else if (!fs::exists(fs::path(root) / name / "manifest.pb")) {
      l.latest_problem = absl::StrCat("names '", name, "', which is not a complete checkpoint");
    } else {
      l.latest_ok = true;
      l.latest = (fs::path(root) / name).string();
    }
  }
  return l;
}

}  // namespace braid
