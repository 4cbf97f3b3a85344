// Checkpoint loading (see checkpoint.h): a step's manifest and payloads read and checked, whole
// tensors reassembled from TP slices and DP pieces, and loaded into a model and optimizer at any
// TP and DP size.
#include "framework/train/checkpoint.h"

#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "checkpoint.pb.h"
#include "framework/core/log.h"
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
  c.pp_size = std::max(1, m.pp_size());
  for (const auto& r : m.rng()) c.rng[r.rank()] = {r.replicated(), r.sharded()};
  c.local_tp_rank = local_tp_rank;
  std::map<std::string, SafetensorsFile> files;
  for (const auto& f : m.files()) {
    if (local_tp_rank >= 0 && wanted.count(f.name()) == 0) continue;
    BRAID_ASSIGN_OR_RETURN(SafetensorsFile sf, ReadSafetensors((dir / f.name()).string()));
    files[f.name()] = std::move(sf);
  }
  for (const proto::TensorEntry& te : m.tensors()) {
    TpParam layout{te.tp_axis(), std::max(1, te.tp_groups()), te.vocab(), te.tp_replicated_tail()};
    const bool split = te.tp_axis() >= 0 && te.shards_size() > 1;
    std::vector<int64_t> want(te.global_shape().begin(), te.global_shape().end());
    std::vector<int64_t> slice_shape = want;  // one TP rank's (ParseManifest checked it divides)
    if (te.tp_axis() >= 0) {
      slice_shape[layout.axis] = ShardDim(slice_shape[layout.axis], layout, m.tp_size());
    }
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
      if (shards.size() != 1 || want.empty() ||
          (want[layout.axis] - layout.replicated_tail) % local_tp_size != 0) {
        return absl::DataLossError(absl::StrCat(
            step_dir, ": tensor ", te.name(), " has no single shard for TP rank ", local_tp_rank));
      }
      want[layout.axis] = ShardDim(want[layout.axis], layout, local_tp_size);
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
    if (c.tp_size == L.tp_size && c.dp_size == L.dp_size && c.pp_size == L.pp_size &&
        it != c.rng.end() && !it->second.first.empty() && same_kind) {
      auto restore = [](at::Generator& g, const std::string& bytes) {
        torch::Tensor s = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kByte);
        std::memcpy(s.data_ptr(), bytes.data(), bytes.size());
        g.set_state(s);
      };
      restore(t.rng->replicated, it->second.first);
      restore(t.rng->sharded, it->second.second);
    } else {
      BLOG(INFO, "ckpt") << "layout (TP " << c.tp_size << " x DP " << c.dp_size << " x PP "
                         << c.pp_size << " -> TP " << L.tp_size << " x DP " << L.dp_size << " x PP "
                         << L.pp_size << ") or device changed: dropout generators keep their seeds";
    }
  }
  return c.state;
}

}  // namespace braid
