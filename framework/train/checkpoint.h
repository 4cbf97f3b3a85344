// Checkpoints: one directory per saved step, `<checkpoint.dir>/step_00000100/`, holding
//   manifest.pb    protobuf (framework/proto/checkpoint.proto): format version, the effective
//                  config, step, consumed samples, every rank's RNG states, and for each tensor
//                  its name, dtype, global shape, TP layout and where each shard is
//   manifest.txt   the same in protobuf text format, for people
//   tp{r}.safetensors  this TP rank's shards (model/..., optim/exp_avg/..., optim/exp_avg_sq/...;
//                  replicated tensors only in tp0's file), written by DP replica 0
//   tp{r}.dp{d}.optim.safetensors  with parallel.distributed_optimizer: the moments as rank
//                  (r, d) holds them, its pieces of the flattened TP slices (1-d tensors under the
//                  same names; replicated tensors' only from TP rank 0); the manifest lists every
//                  rank's pieces (format 2), so no rank gathers the moments to save them
// with each file's size and CRC-32C in the manifest
// and `<checkpoint.dir>/latest` naming the newest complete one.
//
// Saving is atomic: every file goes into `.tmp_step_...`, is flushed and fsync'ed, rank 0 writes
// the manifest last, renames the directory into place, then replaces `latest` (write + rename),
// then prunes to the newest `keep_last`. A crash at any moment leaves `latest` on a complete
// checkpoint. Loading validates everything first (manifest present and not from a newer format,
// payloads present with the recorded size and checksum, every tensor's global shape equal to the
// model's) and only then touches the model, so a refused checkpoint changes nothing. Tensors are
// reassembled from their shards (and pieces) and re-sliced, so a checkpoint loads at any TP or DP
// size, with or without the distributed optimizer.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/dist/layout.h"
#include "framework/parallel/layers.h"
#include "framework/parallel/rng.h"
#include "framework/proto/manifest.h"
#include "framework/train/optimizer.h"

namespace braid {

// Tensor names in a checkpoint: model/<param>, optim/exp_avg/<param>, optim/exp_avg_sq/<param>.
std::string ModelKey(const std::string& param);
std::string ExpAvgKey(const std::string& param);
std::string ExpAvgSqKey(const std::string& param);
bool IsModelKey(const std::string& name);
bool IsOptimizerKey(const std::string& name);
// The parameter a checkpoint name is about ("optim/exp_avg/h.0.mlp.fc1.weight" ->
// "h.0.mlp.fc1.weight"); the name itself when it has no known prefix.
std::string ParamOfKey(const std::string& name);

struct TrainState {
  int64_t step = 0;              // completed steps
  int64_t consumed_samples = 0;  // data position
  int64_t skipped_steps = 0;
};

struct CheckpointTarget {
  const Config* config = nullptr;
  const ParallelLayout* layout = nullptr;
  torch::nn::Module* model = nullptr;
  AdamW* optimizer = nullptr;  // may be null (weights only)
  TpRng* rng = nullptr;        // may be null
  int64_t vocab_size = 0;      // the real (unpadded) vocabulary, for export
  std::string run_id;          // the run saving it (recorded in the manifest; rank 0's counts)
  // Parameters this rank holds a copy of that another stage saves (pipeline parallelism: the
  // last stage's copy of a tied embedding); loaded like the others.
  std::set<std::string> copies;
};

// Collective over the world. Writes <root>/step_<N> atomically and updates <root>/latest.
// BeginSave + WriteSave + FinishSave, without copying the state.
absl::Status SaveCheckpoint(const std::string& root, const CheckpointTarget& target,
                            const TrainState& state, int64_t keep_last);

// A save in three parts, for saving in the background (checkpoint.async_save):
//   BeginSave  (collective, at the step boundary) creates <root>/.tmp_step_<N>, takes this rank's
//              share of the state (with `host`, copied into those host buffers: training may then
//              change the parameters) and every rank's RNG states;
//   WriteSave  (no communication: any thread) writes, fsyncs and checksums this rank's files, and
//              keeps the outcome;
//   FinishSave (collective) gathers every rank's outcome; when all succeeded rank 0 writes the
//              manifest, renames the directory into place and moves `latest`; otherwise the
//              temporary directory is removed and the error names the rank(s) that failed.
// `latest` moves only in FinishSave, so a crash at any moment before leaves it where it was.
struct PendingSave;
// Host buffers for BeginSave's copy, by checkpoint name; AllocateHostCopy makes this rank's (DP
// replica 0's slices, and with the distributed optimizer every rank's pieces of the moments) and
// fills them with zeros, so the pages are mapped before training
// starts rather than faulted in during the first save's stall.
using HostCopy = std::map<std::string, torch::Tensor>;
HostCopy AllocateHostCopy(const CheckpointTarget& target);
absl::StatusOr<std::shared_ptr<PendingSave>> BeginSave(const std::string& root,
                                                       const CheckpointTarget& target,
                                                       const TrainState& state, int64_t keep_last,
                                                       HostCopy* host);
void WriteSave(PendingSave& save);
absl::Status FinishSave(PendingSave& save);
int64_t SaveStep(const PendingSave& save);

// Who wrote a step directory, from its manifest alone (no payload is read).
struct CheckpointOrigin {
  std::string run_id;  // empty: written before run ids existed, or by the converter
  std::string config_yaml;
  int64_t step = 0;
};
absl::StatusOr<CheckpointOrigin> ReadCheckpointOrigin(const std::string& step_dir);

// <root>/<name in latest>, or NotFound when there is no `latest`.
absl::StatusOr<std::string> LatestCheckpoint(const std::string& root);

// What a checkpoint root holds: its step directories (complete: with a manifest.pb), and whether
// `latest` names a complete one (else why not).
struct CheckpointListing {
  std::vector<std::string> all;       // step_* directory names, in step order
  std::vector<std::string> complete;  // of which with manifest.pb
  bool latest_ok = false;
  std::string latest;          // <root>/<name> when latest_ok
  std::string latest_problem;  // "is missing", "is empty", ...
};
CheckpointListing ListCheckpoints(const std::string& root);

// Loads a step directory into the target (any TP/DP size). RNG states are restored when the
// layout is the one that saved them; otherwise the generators keep their seeds (and say so).
absl::StatusOr<TrainState> LoadCheckpoint(const std::string& step_dir,
                                          const CheckpointTarget& target);

// ---- whole-checkpoint access without MPI (conversion tool, tests) ----

struct FullCheckpoint {
  std::string config_yaml;
  std::string recipe;
  TrainState state;
  int64_t optimizer_step = 0;
  int64_t vocab_size = 0;
  int tp_size = 1, dp_size = 1, pp_size = 1;
  std::string run_id;  // the run that wrote it; empty when unknown (older, converted)
  // Full tensors by checkpoint name (ModelKey, ExpAvgKey, ExpAvgSqKey); or, when
  // local_tp_rank >= 0, TP-split tensors as that rank's shard (replicated ones whole).
  std::map<std::string, torch::Tensor> tensors;
  int local_tp_rank = -1;
  std::map<std::string, TpParam> layouts;                  // by tensor name
  std::map<int, std::pair<std::string, std::string>> rng;  // rank -> (replicated, sharded)
  bool has_optimizer() const;
};

// Validates and reads a step directory, reassembling every tensor. With local_tp_rank >= 0 and a
// checkpoint saved at TP = local_tp_size (a resume in the same layout), only that rank's file and
// the file of the replicated tensors (TP rank 0's) are checksummed and read, and split tensors stay
// that rank's shard: each rank reads 1-2 files instead of all TP of them. Other layouts read all.
absl::StatusOr<FullCheckpoint> ReadCheckpoint(const std::string& step_dir, int local_tp_rank = -1,
                                              int local_tp_size = 0);
// Writes `ckpt` as a step directory for `tp_size` (atomically, no `latest` update). With `stages`
// (every parameter's pipeline stage, 0 .. PP - 1) each stage's tensors (a parameter's and its
// optimizer state's) go to that stage's files, as a run at that PP saves them; empty: one stage.
absl::Status WriteCheckpoint(const std::string& step_dir, const FullCheckpoint& ckpt, int tp_size,
                             const std::map<std::string, int>& stages = {});

}  // namespace braid
