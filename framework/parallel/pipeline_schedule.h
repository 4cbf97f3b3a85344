// Pipeline parallelism without tensors (docs/pipeline.md): how the layers are divided over the
// stages, and the order in which each stage runs its micro-batches' forward and backward passes.
//
// Stages. With PP ranks and V virtual stages per rank (parallel.virtual_pipeline_size) the model is
// cut into PP x V consecutive pieces, the virtual stages; virtual stage s lives on pp rank s % PP
// as its chunk s / PP (Megatron's round robin), so rank 0 holds pieces 0, PP, 2 PP, ... The first
// virtual stage also holds the embedding, the last the final norm, the output layer and the loss.
//
// Schedules (what each rank runs, in order; a receive waits, a send does not):
//   all-forward-all-backward  every forward, then every backward;
//   1F1B                      PP - 1 - rank warm-up forwards, then one forward and one backward
//                             in turn, then the remaining backwards: at most PP - rank
//                             micro-batches' activations held (rank 0 holds the most);
//   interleaved 1F1B (V > 1)  the same over V chunks: forwards go through the chunks in groups of
//                             PP micro-batches, backwards through the chunks in reverse; the bubble
//                             shrinks by V.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/choices.h"

namespace braid {

// One rank's share of the model: its chunks (one per virtual stage it holds, in chunk order),
// each a range of the model's layers, and whether it holds the embedding and the output.
struct StagePlan {
  int pp_rank = 0, pp_size = 1, virtual_size = 1;
  struct Chunk {
    int64_t first_layer = 0, num_layers = 0;
    bool embedding = false;  // the first virtual stage
    bool output = false;     // the last virtual stage (final norm, output layer, loss)
  };
  std::vector<Chunk> chunks;   // virtual_size entries
  std::vector<int64_t> split;  // the layers of every virtual stage (of all ranks), in order
  bool holds_embedding() const { return chunks.front().embedding; }
  bool holds_output() const { return chunks.back().output; }
  // Whether this rank holds layer `i` (of the whole model), and which chunk does.
  int ChunkOfLayer(int64_t i) const;
  // The whole model on one rank (PP = 1).
  static StagePlan Whole(int64_t num_layers);
  // The layers of the virtual stages before `virtual_stage` (what has run when it starts).
  int64_t LayersBefore(int64_t virtual_stage) const;
};

// An encoder-decoder model's layers are counted encoder first, then decoder: a chunk may hold
// the end of one stack and the start of the other. Its share of each (indices within the stack),
// and whether it holds the encoder's last layer (the encoder's final norm runs there).
struct EncoderDecoderChunk {
  int64_t encoder_first = 0, encoder_count = 0, decoder_first = 0, decoder_count = 0;
  bool ends_encoder = false;
};
EncoderDecoderChunk SplitEncoderDecoder(const StagePlan::Chunk& chunk, int64_t encoder_layers);

struct PipelineSplitOptions {
  int pp = 1, virtual_size = 1;
  std::vector<int64_t> layers;  // explicit layers per virtual stage (PP x V entries), or empty
  bool account_for_embedding = false, account_for_loss = false;
};

// The layers of each virtual stage (PP x V entries, in order). Even by default: the layers (plus
// one for the embedding and one for the loss when accounted for) divided equally, the first and
// last stage giving up the accounted ones. Refuses, naming the numbers: a count that does not
// divide, an explicit list of the wrong length or sum, a stage left without any work.
absl::StatusOr<std::vector<int64_t>> SplitLayers(int64_t num_layers,
                                                 const PipelineSplitOptions& options);
// This rank's plan from such a split.
StagePlan PlanOfRank(const std::vector<int64_t>& split, int pp_rank, int pp_size);

// One step of a schedule: the forward or backward pass of micro-batch `micro` through this rank's
// chunk `chunk`.
struct PipeAction {
  enum Kind { kForward, kBackward } kind;
  int micro = 0;
  int chunk = 0;
  bool operator==(const PipeAction& o) const {
    return kind == o.kind && micro == o.micro && chunk == o.chunk;
  }
};

// Refuses a schedule that cannot run: interleaving (V > 1) with a micro-batch count that is not a
// multiple of PP (Megatron's rule), naming the numbers.
absl::Status CheckSchedule(PipelineSchedule kind, int pp, int virtual_size, int64_t micro_batches);
// What pp rank `rank` runs for one step of `micro_batches` micro-batches.
std::vector<PipeAction> ScheduleOf(PipelineSchedule kind, int pp, int virtual_size, int rank,
                                   int micro_batches);
// Forward passes only (evaluation): micro-batch by micro-batch through the chunks.
std::vector<PipeAction> ForwardOnlySchedule(int virtual_size, int micro_batches);

// Runs every rank's schedule against the others on a clock: a forward takes `forward` time units,
// a backward `backward`, messages are free. Fails if the schedules deadlock (a rank waits for a
// message nobody will send). For tests and the bubble benchmark.
struct PipelineSimulation {
  double makespan = 0;              // time until the last rank finishes
  double bubble = 0;                // idle share of the ranks' time: 1 - busy / (PP x makespan)
  std::vector<int> peak_in_flight;  // per rank: most micro-batch chunks forwarded, not yet back
};
absl::StatusOr<PipelineSimulation> SimulatePipeline(
    const std::vector<std::vector<PipeAction>>& schedules, int virtual_size, double forward = 1,
    double backward = 2);

// The textbook bubble of 1F1B: (PP - 1) / (m + PP - 1), divided by V for the interleaved schedule
// (Narayanan et al., 2021).
double TheoreticalBubble(int pp, int virtual_size, int micro_batches);

}  // namespace braid
