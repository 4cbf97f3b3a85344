// Checkpoint saving (see checkpoint.h): a step's files written by every rank (synchronously or
// from host copies in the background), the manifest by rank 0, published when complete; and the
// converter's whole-checkpoint writer.
#include "framework/train/checkpoint.h"

#include <cctype>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "checkpoint.pb.h"
#include "framework/core/check.h"
#include "framework/core/files.h"
#include "framework/core/status.h"
#include "framework/proto/manifest.h"
#include "framework/train/checkpoint_internal.h"
#include "framework/train/dtype.h"
#include "framework/train/model_io.h"
#include "framework/train/safetensors.h"
#include "framework/train/step.h"  // AllReduceScalar

namespace braid {
using namespace checkpoint_internal;  // NOLINT: the checkpoint files' shared helpers
namespace fs = std::filesystem;

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
  // Rank 0: the manifest's header fields and tensor list, and with pipeline stages the other
  // stages' tensor lists (serialized partial manifests, from their first rank).
  FullCheckpoint meta;
  std::vector<ManifestTensor> tensors;
  std::vector<std::string> other_stages;
  // The write's outcome (WriteSave): size and CRC-32C by file.
  absl::Status written;
  std::map<std::string, std::pair<uint64_t, uint32_t>> sums;
};

int64_t SaveStep(const PendingSave& save) { return save.state.step; }

namespace {
bool SavesOptimizer(const CheckpointTarget& t) {
  return t.config->checkpoint.save_optimizer && t.optimizer != nullptr;
}
// The stage in file names: -1 without pipeline stages (the names of before).
int StageOf(const ParallelLayout& L) { return L.pp_size > 1 ? L.pp_rank : -1; }
bool IsCopy(const CheckpointTarget& t, const Entry& e) {
  return t.copies.count(ParamOfKey(e.name)) > 0;
}
// Where this rank writes an entry ("": not this rank). Replicated tensors come from TP rank 0
// only; whole tensors from DP replica 0; pieces from every DP rank; copies another stage saves
// from nobody here.
std::string FileOf(const CheckpointTarget& t, const Entry& e) {
  const ParallelLayout& L = *t.layout;
  if (IsCopy(t, e) || (e.layout.axis < 0 && L.tp_rank != 0)) return "";
  if (e.piece()) return OptimFile(L.tp_rank, L.dp_rank, StageOf(L));
  return L.dp_rank == 0 ? ShardFile(L.tp_rank, StageOf(L)) : "";
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
  const int stage = StageOf(*t.layout);
  for (const Entry& e : entries) {
    if (e.piece() || IsCopy(t, e)) continue;  // pieces: listed with their parameter below
    const auto global = GlobalShape(e.shape, e.layout, tp_size);
    out.push_back({e.name, e.local.scalar_type(), global, e.layout, {}, stage});
    if (sharded && IsModelKey(e.name) && e.param < pieces.size() && !pieces[e.param].empty()) {
      const std::string p = ParamOfKey(e.name);
      for (const std::string& key : {ExpAvgKey(p), ExpAvgSqKey(p)})
        out.push_back({key, e.local.scalar_type(), global, e.layout, pieces[e.param], stage});
    }
  }
  return out;
}
// Expert parallelism: DP replica 0 writes every expert, as a run without EP does, so a checkpoint
// loads at any EP (each rank takes its experts by name). The other EP ranks of its block send it
// their experts' entries (weights and AdamW moments), which it files under their global numbers:
// rank r's local expert l is expert r x E/EP + l, and rank 0's local numbers are global.
std::string RenumberExpert(const std::string& name, int64_t add) {
  const std::string mark = ".experts.";
  const size_t at = name.find(mark);
  BRAID_CHECK(at != std::string::npos) << name << " is not an expert's";
  const size_t digits = at + mark.size();
  size_t end = digits;
  while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
  const int64_t e = std::stoll(name.substr(digits, end - digits));
  return absl::StrCat(name.substr(0, digits), e + add, name.substr(end));
}
absl::Status GatherExperts(const CheckpointTarget& t, std::vector<Entry>* entries) {
  const ParallelLayout& L = *t.layout;
  if (L.ep_size <= 1 || L.dp_rank >= L.ep_size) return absl::OkStatus();  // not DP replica 0's
  std::vector<size_t> experts;
  for (size_t i = 0; i < entries->size(); ++i) {
    if ((*entries)[i].layout.expert && !(*entries)[i].piece()) experts.push_back(i);
  }
  if (L.ep_rank != 0) {
    std::vector<at::Tensor> send;
    for (size_t i : experts) send.push_back((*entries)[i].local.contiguous());
    return L.ep->SendRecv(send, std::vector<int>(send.size(), 0), {}, {});
  }
  const int64_t per = t.config->model.num_experts / L.ep_size;
  std::vector<at::Tensor> recv;
  std::vector<int> from;
  std::vector<Entry> added;
  for (int r = 1; r < L.ep_size; ++r) {
    for (size_t i : experts) {
      Entry e = (*entries)[i];
      e.name = RenumberExpert(e.name, r * per);
      e.local = torch::empty(e.local.sizes(), e.local.options());
      recv.push_back(e.local);
      from.push_back(r);
      added.push_back(std::move(e));
    }
  }
  BRAID_RETURN_IF_ERROR(L.ep->SendRecv({}, {}, recv, from));
  entries->insert(entries->end(), added.begin(), added.end());
  return absl::OkStatus();
}
}  // namespace

HostCopy AllocateHostCopy(const CheckpointTarget& t) {
  HostCopy host;
  for (const Entry& e : Entries(t, SavesOptimizer(t))) {
    if (FileOf(t, e).empty()) continue;
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
  std::vector<Entry> entries = Entries(t, SavesOptimizer(t));
  BRAID_RETURN_IF_ERROR(GatherExperts(t, &entries));
  save->optim_files = SavesOptimizer(t) && t.optimizer->sharded();
  if (save->optim_files) {
    save->files[OptimFile(L.tp_rank, L.dp_rank, StageOf(L))];  // written even if empty
  }
  {
    torch::NoGradGuard no_grad;
    for (const Entry& e : entries) {
      const std::string file = FileOf(t, e);
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
  if (L.pp_size > 1) {  // each stage's tensor list, from its first rank, to rank 0
    std::string part;
    if (L.tp_rank == 0 && L.dp_rank == 0 && L.pp_rank > 0) {
      part = BuildManifest(FullCheckpoint{}, L.tp_size, ListTensors(t, entries, L.tp_size), {})
                 .SerializeAsString();
    }
    BRAID_ASSIGN_OR_RETURN(std::vector<std::string> parts, AllGatherStrings(*L.pp, part));
    if (L.rank == 0) {
      for (std::string& s : parts)
        if (!s.empty()) save->other_stages.push_back(std::move(s));
    }
  }
  if (L.rank == 0) {
    FullCheckpoint& meta = save->meta;
    meta.config_yaml = ConfigToYaml(*t.config);
    meta.recipe = t.config->recipe;
    meta.state = state;
    meta.dp_size = L.dp_size;
    meta.pp_size = L.pp_size;
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
  const auto model = sum(ShardFile(L.tp_rank, StageOf(L))),
             optim = sum(OptimFile(L.tp_rank, L.dp_rank, StageOf(L)));
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
    const int stages = L.pp_size;
    auto stage = [&](int p) { return stages > 1 ? p : -1; };
    for (int p = 0; p < stages; ++p) {
      for (int r = 0; r < L.tp_size; ++r) {  // written by DP replica 0
        files.push_back(
            file(ShardFile(r, stage(p)), ParallelLayout::RankOf(r, 0, L.tp_size, p, L.dp_size), 0));
      }
    }
    for (int w = 0; save.optim_files && w < W; ++w) {
      files.push_back(file(OptimFile(ParallelLayout::TpRankOf(w, L.tp_size),
                                     ParallelLayout::DpRankOf(w, L.tp_size, L.dp_size),
                                     stage(ParallelLayout::PpRankOf(w, L.tp_size, L.dp_size))),
                           w, 2));
    }
    proto::Manifest m = BuildManifest(save.meta, L.tp_size, save.tensors, files);
    for (const std::string& part : save.other_stages) {
      proto::Manifest other;
      if (!other.ParseFromString(part)) {
        published = absl::InternalError("a pipeline stage's tensor list did not parse");
        break;
      }
      for (const proto::TensorEntry& te : other.tensors()) *m.add_tensors() = te;
    }
    if (published.ok()) published = WriteManifest(save.tmp, m);
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

namespace {
absl::Status WriteCheckpointFiles(const fs::path& tmp, const FullCheckpoint& c, int tp_size,
                                  const std::map<std::string, int>& stages);
}  // namespace

absl::Status WriteCheckpoint(const std::string& step_dir, const FullCheckpoint& c, int tp_size,
                             const std::map<std::string, int>& stages) {
  const fs::path tmp = TemporarySibling(step_dir);
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat(tmp.string(), ": cannot create: ", ec.message()));
  absl::Status s = WriteCheckpointFiles(tmp, c, tp_size, stages);
  if (!s.ok()) {
    fs::remove_all(tmp, ec);
    return s;
  }
  return ReplaceWith(tmp.string(), step_dir);
}

namespace {
absl::Status WriteCheckpointFiles(const fs::path& tmp, const FullCheckpoint& c, int tp_size,
                                  const std::map<std::string, int>& stages) {
  int pp_size = 1;
  for (const auto& [param, stage] : stages) pp_size = std::max(pp_size, stage + 1);
  std::vector<ManifestTensor> tensors;
  // By (stage, TP rank); stage -1 without a pipeline.
  std::map<std::pair<int, int>, std::map<std::string, torch::Tensor>> files_of;
  for (int p = 0; p < pp_size; ++p)
    for (int r = 0; r < tp_size; ++r) files_of[{pp_size > 1 ? p : -1, r}];
  for (const auto& [name, t] : c.tensors) {
    const TpParam l = c.layouts.count(name) ? c.layouts.at(name) : TpParam{};
    if (l.vocab && l.axis == 0 && tp_size > 1 && t.size(0) % tp_size != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: %d vocabulary rows do not split over TP %d", name, t.size(0), tp_size));
    }
    int stage = -1;
    if (pp_size > 1) {
      auto it = stages.find(ParamOfKey(name));
      if (it == stages.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ": no pipeline stage holds ", ParamOfKey(name)));
      }
      stage = it->second;
    }
    tensors.push_back({name, t.scalar_type(), t.sizes().vec(), l, {}, stage});
    const int shards = l.axis >= 0 ? tp_size : 1;
    for (int r = 0; r < shards; ++r) {
      files_of[{stage, r}][name] = l.axis >= 0 ? ShardOf(t, l, r, tp_size) : t.contiguous();
    }
  }
  std::vector<PayloadFile> files;
  for (const auto& [key, payload] : files_of) {
    const std::string name = ShardFile(key.second, key.first);
    fs::path file = tmp / name;
    BRAID_RETURN_IF_ERROR(WriteSafetensors(file.string(), payload, {{"format", "pt"}}));
    BRAID_ASSIGN_OR_RETURN(auto sc, SizeAndCrc(file));
    files.push_back({name, sc.first, sc.second});
  }
  FullCheckpoint meta = c;  // written as `pp_size` stages, whatever PP saved it
  meta.pp_size = pp_size;
  proto::Manifest m = BuildManifest(meta, tp_size, tensors, files);
  return WriteManifest(tmp, m);
}
}  // namespace

}  // namespace braid
