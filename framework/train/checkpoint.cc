// Checkpoint save/load (see checkpoint.h).
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
#include "framework/train/dtype.h"
#include "framework/train/model_io.h"
#include "framework/train/safetensors.h"
#include "framework/train/step.h"  // AllReduceScalar

namespace braid {
namespace {
namespace fs = std::filesystem;

std::string StepName(int64_t step) { return absl::StrFormat("step_%08d", step); }
std::string ShardFile(int tp_rank) { return absl::StrFormat("tp%d.safetensors", tp_rank); }
// The distributed optimizer's moments: one file per rank, its pieces.
std::string OptimFile(int tp_rank, int dp_rank) {
  return absl::StrFormat("tp%d.dp%d.optim.safetensors", tp_rank, dp_rank);
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
  return out;
}

std::vector<int64_t> GlobalShape(std::vector<int64_t> s, TpParam l, int tp) {
  if (l.axis >= 0) s[l.axis] *= tp;
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
};
struct PayloadFile {
  std::string name;
  uint64_t bytes = 0;
  uint32_t crc = 0;
};

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
  bool has_opt = false;
  for (const ManifestTensor& t : tensors) {
    has_opt = has_opt || IsOptimizerKey(t.name);
    proto::TensorEntry* te = m.add_tensors();
    te->set_name(t.name);
    te->set_dtype(SafetensorsDtypeName(t.dtype));
    for (int64_t d : t.global_shape) te->add_global_shape(d);
    te->set_tp_axis(t.layout.axis);
    te->set_tp_groups(t.layout.groups);
    te->set_vocab(t.layout.vocab);
    const int shards = t.layout.axis >= 0 ? tp_size : 1;
    for (int r = 0; r < shards; ++r) {
      if (t.pieces.empty()) {
        proto::Shard* s = te->add_shards();
        s->set_tp_rank(r);
        s->set_file(ShardFile(r));
        s->set_key(t.name);
      }
      for (const ManifestTensor::Piece& p : t.pieces) {
        proto::Shard* s = te->add_shards();
        s->set_tp_rank(r);
        s->set_dp_rank(p.dp_rank);
        s->set_offset(p.offset);
        s->set_length(p.length);
        s->set_file(OptimFile(r, p.dp_rank));
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

const char kEarlierHint[] =
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
                           const std::set<std::string>* only = nullptr) {
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

}  // namespace

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

// A save between BeginSave and FinishSave (checkpoint.h).
struct PendingSave {
  const ParallelLayout* layout = nullptr;
  fs::path root, tmp;
  std::string name;
  TrainState state;
  int64_t keep_last = 0;
  // What this rank writes, by file (host copies when copied): its TP slices in ShardFile (DP
  // replica 0), its optimizer pieces in OptimFile (every rank, with the distributed optimizer).
  std::map<std::string, std::map<std::string, torch::Tensor>> files;
  bool optim_files = false;  // every rank writes an OptimFile
  // Rank 0: the manifest's header fields and tensor list.
  FullCheckpoint meta;
  std::vector<ManifestTensor> tensors;
  // The write's outcome (WriteSave): size and CRC-32C by file.
  absl::Status written;
  std::map<std::string, std::pair<uint64_t, uint32_t>> sums;
};

int64_t SaveStep(const PendingSave& save) { return save.state.step; }

namespace {
bool SavesOptimizer(const CheckpointTarget& t) {
  return t.config->checkpoint.save_optimizer && t.optimizer != nullptr;
}
// Where this rank writes an entry ("": not this rank). Replicated tensors come from TP rank 0
// only; whole tensors from DP replica 0; pieces from every DP rank.
std::string FileOf(const ParallelLayout& L, const Entry& e) {
  if (e.layout.axis < 0 && L.tp_rank != 0) return "";
  if (e.piece()) return OptimFile(L.tp_rank, L.dp_rank);
  return L.dp_rank == 0 ? ShardFile(L.tp_rank) : "";
}
// The manifest's tensor list (rank 0): the entries' whole tensors, and with the distributed
// optimizer each parameter's moments as every DP rank's pieces.
std::vector<ManifestTensor> ListTensors(const CheckpointTarget& t,
                                        const std::vector<Entry>& entries, int tp_size) {
  std::vector<std::vector<ManifestTensor::Piece>> pieces;  // by parameter
  const bool sharded = SavesOptimizer(t) && t.optimizer->sharded();
  if (sharded) {
    const auto& of_rank = t.optimizer->sharding.of_rank;
    for (int d = 0; d < static_cast<int>(of_rank.size()); ++d) {
      for (const AdamW::Range& r : of_rank[d]) {
        if (pieces.size() <= r.param) pieces.resize(r.param + 1);
        pieces[r.param].push_back({d, r.offset, r.length});
      }
    }
  }
  std::vector<ManifestTensor> out;
  for (const Entry& e : entries) {
    if (e.piece()) continue;  // listed with its parameter below
    const auto global = GlobalShape(e.shape, e.layout, tp_size);
    out.push_back({e.name, e.local.scalar_type(), global, e.layout, {}});
    if (sharded && IsModelKey(e.name) && e.param < pieces.size() && !pieces[e.param].empty()) {
      const std::string p = ParamOfKey(e.name);
      for (const std::string& key : {ExpAvgKey(p), ExpAvgSqKey(p)})
        out.push_back({key, e.local.scalar_type(), global, e.layout, pieces[e.param]});
    }
  }
  return out;
}
}  // namespace

HostCopy AllocateHostCopy(const CheckpointTarget& t) {
  HostCopy host;
  for (const Entry& e : Entries(t, SavesOptimizer(t))) {
    if (FileOf(*t.layout, e).empty()) continue;
    host[e.name] = torch::zeros(e.local.sizes(), e.local.options().device(torch::kCPU));
  }
  return host;
}

absl::StatusOr<std::shared_ptr<PendingSave>> BeginSave(const std::string& root_str,
                                                       const CheckpointTarget& t,
                                                       const TrainState& state, int64_t keep_last,
                                                       HostCopy* host) {
  const ParallelLayout& L = *t.layout;
  auto save = std::make_shared<PendingSave>();
  save->layout = &L;
  save->root = fs::path(root_str);
  save->name = StepName(state.step);
  save->tmp = save->root / (".tmp_" + save->name);
  save->state = state;
  save->keep_last = keep_last;
  std::error_code ec;
  std::string error;
  if (L.rank == 0) {
    fs::create_directories(save->root, ec);
    fs::remove_all(save->tmp, ec);
    fs::create_directories(save->tmp, ec);
    if (ec) error = absl::StrCat(save->tmp.string(), ": cannot create: ", ec.message());
  }
  if (AllReduceScalar(*L.world, error.empty() ? 0.0 : 1.0, ReduceOp::kMax) > 0) {
    return absl::InternalError(
        error.empty() ? "rank 0 could not create the checkpoint directory (its log says why)"
                      : error);
  }
  const std::vector<Entry> entries = Entries(t, SavesOptimizer(t));
  save->optim_files = SavesOptimizer(t) && t.optimizer->sharded();
  if (save->optim_files) save->files[OptimFile(L.tp_rank, L.dp_rank)];  // written even if empty
  {
    torch::NoGradGuard no_grad;
    for (const Entry& e : entries) {
      const std::string file = FileOf(L, e);
      if (file.empty()) continue;
      if (host == nullptr) {
        save->files[file][e.name] = e.local.contiguous();
        continue;
      }
      torch::Tensor& buffer = (*host)[e.name];
      if (!buffer.defined() || buffer.sizes() != e.local.sizes() ||
          buffer.scalar_type() != e.local.scalar_type()) {
        buffer = torch::empty(e.local.sizes(), e.local.options().device(torch::kCPU));
      }
      buffer.copy_(e.local);
      save->files[file][e.name] = buffer;
    }
  }
  // Every rank's RNG states, gathered now (the generators move on while the file is written).
  const int W = L.world_size;
  torch::Tensor rng_rep, rng_sh;
  if (t.rng != nullptr) {
    rng_rep = t.rng->replicated.get_state();
    rng_sh = t.rng->sharded.get_state();
  } else {
    rng_rep = rng_sh = torch::zeros({0}, torch::kByte);
  }
  int64_t rng_bytes = rng_rep.numel();
  torch::Tensor packed = torch::cat({rng_rep, rng_sh}).contiguous();
  packed = torch::cat({packed, torch::zeros({(4 - packed.numel() % 4) % 4}, torch::kByte)});
  torch::Tensor words = packed.view(torch::kInt);
  torch::Tensor all_words = torch::empty({W, words.numel()}, torch::kInt);
  BRAID_RETURN_IF_ERROR(L.world->AllGather(words, all_words));
  if (L.rank == 0) {
    FullCheckpoint& meta = save->meta;
    meta.config_yaml = ConfigToYaml(*t.config);
    meta.recipe = t.config->recipe;
    meta.state = state;
    meta.dp_size = L.dp_size;
    meta.optimizer_step = t.optimizer != nullptr ? t.optimizer->step() : 0;
    meta.vocab_size = t.vocab_size;
    meta.run_id = t.run_id;
    if (t.rng != nullptr) {
      for (int r = 0; r < W; ++r) {
        const auto* b = static_cast<const char*>(all_words[r].data_ptr());
        meta.rng[r] = {std::string(b, rng_bytes), std::string(b + rng_bytes, rng_bytes)};
      }
    }
    save->tensors = ListTensors(t, entries, L.tp_size);
  }
  return save;
}

void WriteSave(PendingSave& save) {
  if (save.files.empty()) return;
  auto write = [&]() -> absl::Status {
    for (const auto& [name, tensors] : save.files) {
      const fs::path file = save.tmp / name;
      BRAID_RETURN_IF_ERROR(WriteSafetensors(file.string(), tensors, {{"format", "pt"}}));
      BRAID_RETURN_IF_ERROR(Fsync(file));
    }
    // Crash tests only: BRAID_TEST_SAVE_DELAY=STEP:SECONDS pauses after writing the shard.
    if (const char* d = std::getenv("BRAID_TEST_SAVE_DELAY")) {
      int64_t at = 0, secs = 0;
      if (std::sscanf(d, "%ld:%ld", &at, &secs) == 2 && at == save.state.step) {
        ::sleep(static_cast<unsigned>(secs));
      }
    }
    for (const auto& [name, tensors] : save.files) {
      BRAID_ASSIGN_OR_RETURN(save.sums[name], SizeAndCrc(save.tmp / name));
    }
    return absl::OkStatus();
  };
  save.written = write();
  save.files.clear();  // the host copy is no longer needed
}

absl::Status FinishSave(PendingSave& save) {
  const ParallelLayout& L = *save.layout;
  // Every rank's outcome: its ShardFile's and OptimFile's (bytes, crc), failed.
  const int W = L.world_size;
  auto sum = [&](const std::string& file) {
    auto it = save.sums.find(file);
    return it == save.sums.end() ? std::make_pair(uint64_t{0}, uint32_t{0}) : it->second;
  };
  const auto model = sum(ShardFile(L.tp_rank)), optim = sum(OptimFile(L.tp_rank, L.dp_rank));
  torch::Tensor rec =
      torch::tensor({static_cast<int64_t>(model.first), static_cast<int64_t>(model.second),
                     static_cast<int64_t>(optim.first), static_cast<int64_t>(optim.second),
                     static_cast<int64_t>(save.written.ok() ? 0 : 1)},
                    torch::kLong);
  torch::Tensor recs = torch::empty({W, 5}, torch::kLong);
  BRAID_RETURN_IF_ERROR(L.world->AllGather(rec, recs));
  std::vector<int> failed;
  for (int r = 0; r < W; ++r) {
    if (recs[r][4].item<int64_t>() != 0) failed.push_back(r);
  }
  if (!failed.empty()) {
    std::error_code ec;
    if (L.rank == 0) fs::remove_all(save.tmp, ec);
    if (!save.written.ok()) {
      return absl::Status(save.written.code(), absl::StrCat("saving step ", save.state.step, ": ",
                                                            save.written.message()));
    }
    return absl::InternalError(
        absl::StrFormat("saving step %d failed on rank(s) %s (their logs say why)", save.state.step,
                        absl::StrJoin(failed, ", ")));
  }
  absl::Status published;
  if (L.rank == 0) {
    auto file = [&](std::string name, int rank, int column) {
      return PayloadFile{std::move(name), static_cast<uint64_t>(recs[rank][column].item<int64_t>()),
                         static_cast<uint32_t>(recs[rank][column + 1].item<int64_t>())};
    };
    std::vector<PayloadFile> files;
    for (int r = 0; r < L.tp_size; ++r)  // written by DP replica 0
      files.push_back(file(ShardFile(r), ParallelLayout::RankOf(r, 0, L.tp_size), 0));
    for (int w = 0; save.optim_files && w < W; ++w) {
      files.push_back(file(
          OptimFile(ParallelLayout::TpRankOf(w, L.tp_size), ParallelLayout::DpRankOf(w, L.tp_size)),
          w, 2));
    }
    proto::Manifest m = BuildManifest(save.meta, L.tp_size, save.tensors, files);
    published = WriteManifest(save.tmp, m);
    if (published.ok()) published = Publish(save.root, save.tmp, save.name, save.keep_last);
  }
  if (AllReduceScalar(*L.world, published.ok() ? 0.0 : 1.0, ReduceOp::kMax) > 0) {
    return published.ok() ? absl::InternalError(absl::StrFormat(
                                "saving step %d: rank 0 could not publish it (its log says why)",
                                save.state.step))
                          : published;
  }
  return absl::OkStatus();
}

absl::Status SaveCheckpoint(const std::string& root, const CheckpointTarget& target,
                            const TrainState& state, int64_t keep_last) {
  BRAID_ASSIGN_OR_RETURN(std::shared_ptr<PendingSave> save,
                         BeginSave(root, target, state, keep_last, /*host=*/nullptr));
  WriteSave(*save);
  return FinishSave(*save);
}

absl::StatusOr<FullCheckpoint> ReadCheckpoint(const std::string& step_dir, int local_tp_rank,
                                              int local_tp_size) {
  fs::path dir(step_dir);
  BRAID_ASSIGN_OR_RETURN(proto::Manifest m, ReadManifest(dir));
  if (local_tp_rank < 0 || m.tp_size() != local_tp_size) local_tp_rank = -1;
  // The shards to read: all, or in a same-layout read this rank's slices and the replicated
  // tensors (TP rank 0's); only their files are checksummed and read.
  auto needed = [&](const proto::TensorEntry& te, const proto::Shard& s) {
    return local_tp_rank < 0 || te.tp_axis() < 0 || s.tp_rank() == local_tp_rank;
  };
  std::set<std::string> wanted;
  for (const proto::TensorEntry& te : m.tensors())
    for (const proto::Shard& s : te.shards())
      if (needed(te, s)) wanted.insert(s.file());
  BRAID_RETURN_IF_ERROR(CheckPayloads(dir, m, local_tp_rank >= 0 ? &wanted : nullptr));
  FullCheckpoint c;
  c.config_yaml = m.config_yaml();
  c.recipe = m.recipe();
  c.state = TrainState{m.step(), m.consumed_samples(), m.skipped_steps()};
  c.optimizer_step = m.optimizer_step();
  c.vocab_size = m.vocab_size();
  c.run_id = m.run_id();
  c.tp_size = m.tp_size();
  c.dp_size = m.dp_size();
  for (const auto& r : m.rng()) c.rng[r.rank()] = {r.replicated(), r.sharded()};
  c.local_tp_rank = local_tp_rank;
  std::map<std::string, SafetensorsFile> files;
  for (const auto& f : m.files()) {
    if (local_tp_rank >= 0 && wanted.count(f.name()) == 0) continue;
    BRAID_ASSIGN_OR_RETURN(SafetensorsFile sf, ReadSafetensors((dir / f.name()).string()));
    files[f.name()] = std::move(sf);
  }
  for (const proto::TensorEntry& te : m.tensors()) {
    TpParam layout{te.tp_axis(), std::max(1, te.tp_groups()), te.vocab()};
    const bool split = te.tp_axis() >= 0 && te.shards_size() > 1;
    std::vector<int64_t> want(te.global_shape().begin(), te.global_shape().end());
    std::vector<int64_t> slice_shape = want;  // one TP rank's (ParseManifest checked it divides)
    if (te.tp_axis() >= 0) slice_shape[layout.axis] /= m.tp_size();
    // Each needed TP rank's slice, from its whole shard or assembled from its pieces (which
    // ParseManifest checked tile the slice).
    std::map<int, torch::Tensor> slices;
    for (const proto::Shard& s : te.shards()) {
      if (!needed(te, s)) continue;
      auto fit = files.find(s.file());
      auto tit = fit == files.end() ? decltype(fit->second.tensors.end()){}
                                    : fit->second.tensors.find(s.key());
      if (fit == files.end() || tit == fit->second.tensors.end()) {
        return absl::DataLossError(absl::StrCat(step_dir, ": tensor ", te.name(), " has no shard ",
                                                s.key(), " in ", s.file()));
      }
      const torch::Tensor& stored = tit->second;
      if (s.length() == 0) {
        slices[s.tp_rank()] = stored;
        continue;
      }
      if (stored.dim() != 1 || stored.size(0) != s.length()) {
        return absl::DataLossError(
            absl::StrFormat("%s: %s in %s is %s, the manifest says a piece of %d elements",
                            step_dir, s.key(), s.file(), c10::str(stored.sizes()), s.length()));
      }
      torch::Tensor& slice = slices[s.tp_rank()];
      if (!slice.defined()) slice = torch::empty(slice_shape, stored.options());
      if (slice.scalar_type() != stored.scalar_type()) {
        return absl::DataLossError(
            absl::StrCat(step_dir, ": the pieces of ", te.name(), " have different dtypes"));
      }
      slice.view({-1}).narrow(0, s.offset(), s.length()).copy_(stored);
    }
    std::vector<torch::Tensor> shards;
    for (auto& [rank, t] : slices) shards.push_back(t);
    if (local_tp_rank >= 0 && split) {  // this rank's shard as it is
      if (shards.size() != 1 || want.empty() || want[layout.axis] % local_tp_size != 0) {
        return absl::DataLossError(absl::StrCat(
            step_dir, ": tensor ", te.name(), " has no single shard for TP rank ", local_tp_rank));
      }
      want[layout.axis] /= local_tp_size;
      if (shards[0].sizes().vec() != want) {
        return absl::DataLossError(absl::StrFormat(
            "%s: shard %d of %s is %s, the manifest implies %s", step_dir, local_tp_rank, te.name(),
            c10::str(shards[0].sizes()), c10::str(c10::IntArrayRef(want))));
      }
      c.tensors[te.name()] = shards[0];
      c.layouts[te.name()] = layout;
      continue;
    }
    torch::Tensor full = Unshard(shards, layout);
    if (full.sizes().vec() != want) {
      return absl::DataLossError(
          absl::StrFormat("%s: tensor %s reassembles to %s, the manifest says %s", step_dir,
                          te.name(), c10::str(full.sizes()), c10::str(c10::IntArrayRef(want))));
    }
    c.tensors[te.name()] = full;
    c.layouts[te.name()] = layout;
  }
  return c;
}

namespace {
absl::Status WriteCheckpointFiles(const fs::path& tmp, const FullCheckpoint& c, int tp_size);
}  // namespace

absl::Status WriteCheckpoint(const std::string& step_dir, const FullCheckpoint& c, int tp_size) {
  const fs::path tmp = TemporarySibling(step_dir);
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat(tmp.string(), ": cannot create: ", ec.message()));
  absl::Status s = WriteCheckpointFiles(tmp, c, tp_size);
  if (!s.ok()) {
    fs::remove_all(tmp, ec);
    return s;
  }
  return ReplaceWith(tmp.string(), step_dir);
}

namespace {
absl::Status WriteCheckpointFiles(const fs::path& tmp, const FullCheckpoint& c, int tp_size) {
  std::vector<ManifestTensor> tensors;
  std::vector<std::map<std::string, torch::Tensor>> per_rank(tp_size);
  for (const auto& [name, t] : c.tensors) {
    const TpParam l = c.layouts.count(name) ? c.layouts.at(name) : TpParam{};
    if (l.vocab && l.axis == 0 && tp_size > 1 && t.size(0) % tp_size != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: %d vocabulary rows do not split over TP %d", name, t.size(0), tp_size));
    }
    tensors.push_back({name, t.scalar_type(), t.sizes().vec(), l, {}});
    const int shards = l.axis >= 0 ? tp_size : 1;
    for (int r = 0; r < shards; ++r) {
      per_rank[r][name] = l.axis >= 0 ? ShardOf(t, l, r, tp_size) : t.contiguous();
    }
  }
  std::vector<PayloadFile> files;
  for (int r = 0; r < tp_size; ++r) {
    fs::path file = tmp / ShardFile(r);
    BRAID_RETURN_IF_ERROR(WriteSafetensors(file.string(), per_rank[r], {{"format", "pt"}}));
    BRAID_ASSIGN_OR_RETURN(auto sc, SizeAndCrc(file));
    files.push_back({ShardFile(r), sc.first, sc.second});
  }
  proto::Manifest m = BuildManifest(c, tp_size, tensors, files);
  return WriteManifest(tmp, m);
}
}  // namespace

absl::StatusOr<TrainState> LoadCheckpoint(const std::string& step_dir, const CheckpointTarget& t) {
  const ParallelLayout& L = *t.layout;
  // Same TP size: every rank reads only its own shard file (and the replicated tensors'). A model
  // that does not fit that way (another vocabulary padding, say) is read again whole below.
  BRAID_ASSIGN_OR_RETURN(FullCheckpoint c, ReadCheckpoint(step_dir, L.tp_rank, L.tp_size));
  if (!c.recipe.empty() && c.recipe != t.config->recipe) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: a '%s' checkpoint cannot load into a '%s' run.", step_dir, c.recipe,
                        t.config->recipe));
  }
  bool has_opt = false;
  has_opt = c.has_optimizer();
  const bool want_opt = t.optimizer != nullptr && has_opt;
  if (t.optimizer != nullptr && !has_opt) {
    BLOG(INFO, "ckpt") << step_dir << " has no optimizer state (a release or an import): "
                       << "loading the weights, AdamW starts fresh";
  }
  std::vector<Entry> entries = Entries(t, want_opt);
  // Validate every shape before touching anything: this rank's slice of each entry, or a list of
  // what does not fit.
  std::vector<torch::Tensor> slices(entries.size());
  auto fit = [&](const FullCheckpoint& ck) {
    std::vector<std::string> problems;
    for (size_t i = 0; i < entries.size(); ++i) {
      const Entry& e = entries[i];
      auto it = ck.tensors.find(e.name);
      if (it == ck.tensors.end()) {
        if (IsOptimizerKey(e.name)) {
          problems.push_back(absl::StrCat(e.name,
                                          " is missing (saved without optimizer state; "
                                          "set checkpoint.save_optimizer=true to resume)"));
        } else {
          problems.push_back(absl::StrCat(e.name, " is missing"));
        }
        continue;
      }
      torch::Tensor full = it->second;
      const bool local = ck.local_tp_rank >= 0 && e.layout.axis >= 0;  // already this rank's shard
      std::vector<int64_t> want = local ? e.shape : GlobalShape(e.shape, e.layout, L.tp_size);
      if (!local && e.layout.vocab && full.dim() == static_cast<int64_t>(want.size()) &&
          full.dim() >= 1 &&
          full.sizes().slice(1).vec() == std::vector<int64_t>(want.begin() + 1, want.end())) {
        full = RepadVocab(full, want[0]);  // the padding depends on the TP size
      }
      if (full.sizes().vec() != want) {
        if (!IsOptimizerKey(e.name)) {  // the optimizer state mirrors the weights
          problems.push_back(absl::StrFormat("%s has shape %s in the checkpoint, %s in this model",
                                             e.name, c10::str(it->second.sizes()),
                                             c10::str(c10::IntArrayRef(want))));
        }
        continue;
      }
      full = full.to(e.local.scalar_type());
      slices[i] = local || e.layout.axis < 0 || L.tp_size == 1
                      ? full  // copied into place below
                      : ShardOf(full, e.layout, L.tp_rank, L.tp_size);
    }
    return problems;
  };
  std::vector<std::string> problems = fit(c);
  if (!problems.empty() && c.local_tp_rank >= 0) {  // e.g. another vocabulary padding: whole read
    BRAID_ASSIGN_OR_RETURN(c, ReadCheckpoint(step_dir));
    problems = fit(c);
  }
  if (!problems.empty()) {
    const size_t n = problems.size();
    if (n > 6) {
      problems.resize(6);
      problems.push_back(absl::StrCat("and ", n - 6, " more"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(step_dir, ": does not fit this model: ", absl::StrJoin(problems, "; "),
                     ". HINT: the model section of the config must match the run that saved it."));
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (!slices[i].defined()) continue;
    // A piece (the distributed optimizer's moments) from the whole slice, at any saved DP size.
    e.local.copy_(e.piece() ? slices[i].reshape({-1}).narrow(0, e.offset, e.length) : slices[i]);
  }
  if (want_opt) t.optimizer->set_step(c.optimizer_step);
  if (t.rng != nullptr) {
    auto it = c.rng.find(L.rank);
    // A generator state of another size comes from another kind of generator (a CPU run
    // resumed on a GPU or the reverse): the generators then keep their seeds.
    const bool same_kind = it != c.rng.end() && static_cast<int64_t>(it->second.first.size()) ==
                                                    t.rng->replicated.get_state().numel();
    if (c.tp_size == L.tp_size && c.dp_size == L.dp_size && it != c.rng.end() &&
        !it->second.first.empty() && same_kind) {
      auto restore = [](at::Generator& g, const std::string& bytes) {
        torch::Tensor s = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kByte);
        std::memcpy(s.data_ptr(), bytes.data(), bytes.size());
        g.set_state(s);
      };
      restore(t.rng->replicated, it->second.first);
      restore(t.rng->sharded, it->second.second);
    } else {
      BLOG(INFO, "ckpt") << "layout (TP " << c.tp_size << " x DP " << c.dp_size << " -> TP "
                         << L.tp_size << " x DP " << L.dp_size
                         << ") or device changed: dropout generators keep their seeds";
    }
  }
  return c.state;
}

}  // namespace braid
