// Stage splits and schedules (see pipeline_schedule.h).
#include "framework/parallel/pipeline_schedule.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace braid {

int StagePlan::ChunkOfLayer(int64_t i) const {
  for (size_t c = 0; c < chunks.size(); ++c) {
    if (i >= chunks[c].first_layer && i < chunks[c].first_layer + chunks[c].num_layers) {
      return static_cast<int>(c);
    }
  }
  return -1;
}

StagePlan StagePlan::Whole(int64_t num_layers) {
  StagePlan p;
  p.chunks.push_back({0, num_layers, true, true});
  p.split = {num_layers};
  return p;
}

int64_t StagePlan::LayersBefore(int64_t virtual_stage) const {
  return std::accumulate(split.begin(), split.begin() + virtual_stage, int64_t{0});
}

EncoderDecoderChunk SplitEncoderDecoder(const StagePlan::Chunk& c, int64_t encoder_layers) {
  EncoderDecoderChunk e;
  const int64_t end = c.first_layer + c.num_layers;
  e.encoder_first = std::min(c.first_layer, encoder_layers);
  e.encoder_count = std::max<int64_t>(0, std::min(end, encoder_layers) - c.first_layer);
  e.decoder_first = std::max<int64_t>(0, c.first_layer - encoder_layers);
  e.decoder_count = std::max<int64_t>(0, end - std::max(c.first_layer, encoder_layers));
  e.ends_encoder = c.first_layer < encoder_layers && end >= encoder_layers;
  return e;
}

absl::StatusOr<std::vector<int64_t>> SplitLayers(int64_t num_layers,
                                                 const PipelineSplitOptions& o) {
  const int64_t n = static_cast<int64_t>(o.pp) * o.virtual_size;
  if (!o.layers.empty()) {
    const int64_t sum = std::accumulate(o.layers.begin(), o.layers.end(), int64_t{0});
    if (static_cast<int64_t>(o.layers.size()) != n || sum != num_layers) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "parallel.pipeline_layers: [%s] has %d entries summing to %d; expected PP x "
          "virtual_pipeline_size = %d x %d = %d entries summing to the %d layers.",
          absl::StrJoin(o.layers, ", "), o.layers.size(), sum, o.pp, o.virtual_size, n,
          num_layers));
    }
    for (int64_t s = 1; s + 1 < n; ++s) {
      if (o.layers[s] == 0) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "parallel.pipeline_layers: [%s] leaves virtual stage %d (pp rank %d) without layers; "
            "only the first and the last stage have other work (the embedding, the loss). HINT: "
            "give every stage at least one layer.",
            absl::StrJoin(o.layers, ", "), s, s % o.pp));
      }
    }
    return o.layers;
  }
  const int64_t extra = (o.account_for_embedding ? 1 : 0) + (o.account_for_loss ? 1 : 0);
  const int64_t total = num_layers + extra;
  if (total < n) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "parallel.pipeline_parallel_size x virtual_pipeline_size = %d x %d = %d stages for %d "
        "layers%s: a stage would be left empty. HINT: use fewer stages.",
        o.pp, o.virtual_size, n, num_layers,
        extra > 0 ? absl::StrFormat(" (+%d accounted for the embedding/loss)", extra) : ""));
  }
  if (total % n != 0) {
    std::vector<int64_t> hint(n, total / n);
    // The remainder to the middle stages first (the ends hold the embedding and the loss).
    for (int64_t i = 0; i < total % n; ++i) hint[n > 2 ? 1 + i % (n - 2) : i]++;
    if (o.account_for_embedding) hint[0] -= 1;
    if (o.account_for_loss) hint[n - 1] -= 1;
    return absl::InvalidArgumentError(absl::StrFormat(
        "parallel.pipeline_parallel_size x virtual_pipeline_size = %d x %d = %d stages do not "
        "divide the %d layers%s evenly. HINT: set parallel.pipeline_layers to the layers of each "
        "stage, e.g. [%s], or pick sizes that divide.",
        o.pp, o.virtual_size, n, num_layers,
        extra > 0 ? absl::StrFormat(" (+%d accounted for the embedding/loss)", extra) : "",
        absl::StrJoin(hint, ", ")));
  }
  std::vector<int64_t> out(n, total / n);
  if (o.account_for_embedding) out[0] -= 1;
  if (o.account_for_loss) out[n - 1] -= 1;
  return out;
}

StagePlan PlanOfRank(const std::vector<int64_t>& split, int pp_rank, int pp_size) {
  StagePlan p;
  p.pp_rank = pp_rank;
  p.pp_size = pp_size;
  p.split = split;
  const int64_t n = static_cast<int64_t>(split.size());
  p.virtual_size = static_cast<int>(n / pp_size);
  for (int c = 0; c < p.virtual_size; ++c) {
    const int64_t s = static_cast<int64_t>(c) * pp_size + pp_rank;
    const int64_t first = std::accumulate(split.begin(), split.begin() + s, int64_t{0});
    p.chunks.push_back({first, split[s], s == 0, s == n - 1});
  }
  return p;
}

absl::Status CheckSchedule(PipelineSchedule kind, int pp, int virtual_size, int64_t micro_batches) {
  if (virtual_size > 1 && kind == PipelineSchedule::k1F1B &&
      (micro_batches < pp || micro_batches % pp != 0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the interleaved schedule (parallel.virtual_pipeline_size = %d) runs micro-batches in "
        "groups of PP = %d, but a step has %d micro-batches (train.global_batch_size / "
        "(micro_batch_size x DP)). HINT: make the accumulation steps a multiple of %d, or set "
        "parallel.virtual_pipeline_size: 1.",
        virtual_size, pp, micro_batches, pp));
  }
  return absl::OkStatus();
}

std::vector<PipeAction> ForwardOnlySchedule(int virtual_size, int micro_batches) {
  std::vector<PipeAction> out;
  for (int m = 0; m < micro_batches; ++m)
    for (int c = 0; c < virtual_size; ++c) out.push_back({PipeAction::kForward, m, c});
  return out;
}

std::vector<PipeAction> ScheduleOf(PipelineSchedule kind, int pp, int v, int rank, int m) {
  std::vector<PipeAction> out;
  if (kind == PipelineSchedule::kAllForwardAllBackward) {
    for (int c = 0; c < v; ++c)
      for (int i = 0; i < m; ++i) out.push_back({PipeAction::kForward, i, c});
    for (int c = v - 1; c >= 0; --c)
      for (int i = 0; i < m; ++i) out.push_back({PipeAction::kBackward, i, c});
    return out;
  }
  if (v == 1) {
    const int warmup = std::min(pp - rank - 1, m);
    for (int i = 0; i < warmup; ++i) out.push_back({PipeAction::kForward, i, 0});
    for (int i = 0; i < m - warmup; ++i) {
      out.push_back({PipeAction::kForward, warmup + i, 0});
      out.push_back({PipeAction::kBackward, i, 0});
    }
    for (int i = m - warmup; i < m; ++i) out.push_back({PipeAction::kBackward, i, 0});
    return out;
  }
  // Interleaved: virtual micro-batch k runs micro-batch (k / (PP V)) PP + k % PP through chunk
  // (k % (PP V)) / PP going forward, the reverse chunk going backward.
  const int total = m * v;
  auto micro = [&](int k) { return (k / (pp * v)) * pp + k % pp; };
  auto chunk = [&](int k, bool forward) {
    const int c = (k % (pp * v)) / pp;
    return forward ? c : v - 1 - c;
  };
  int warmup = m == pp ? total : std::min(total, (pp - rank - 1) * 2 + (v - 1) * pp);
  for (int k = 0; k < warmup; ++k) out.push_back({PipeAction::kForward, micro(k), chunk(k, true)});
  for (int k = 0; k < total - warmup; ++k) {
    out.push_back({PipeAction::kForward, micro(k + warmup), chunk(k + warmup, true)});
    out.push_back({PipeAction::kBackward, micro(k), chunk(k, false)});
  }
  for (int k = total - warmup; k < total; ++k) {
    out.push_back({PipeAction::kBackward, micro(k), chunk(k, false)});
  }
  return out;
}

absl::StatusOr<PipelineSimulation> SimulatePipeline(
    const std::vector<std::vector<PipeAction>>& schedules, int v, double forward, double backward) {
  const int pp = static_cast<int>(schedules.size());
  const int last = pp * v - 1;
  // Completion times by (kind, micro, virtual stage).
  std::map<std::tuple<int, int, int>, double> done;
  std::vector<size_t> next(pp, 0);
  std::vector<double> clock(pp, 0);
  std::vector<int> in_flight(pp, 0);
  PipelineSimulation sim;
  sim.peak_in_flight.assign(pp, 0);
  double busy = 0;
  for (bool progress = true; progress;) {
    progress = false;
    for (int r = 0; r < pp; ++r) {
      while (next[r] < schedules[r].size()) {
        const PipeAction& a = schedules[r][next[r]];
        const int s = a.chunk * pp + r;
        double ready = clock[r];
        if (a.kind == PipeAction::kForward && s > 0) {
          auto it = done.find({PipeAction::kForward, a.micro, s - 1});
          if (it == done.end()) break;
          ready = std::max(ready, it->second);
        }
        if (a.kind == PipeAction::kBackward) {
          auto own = done.find({PipeAction::kForward, a.micro, s});
          if (own == done.end()) break;  // would be a schedule bug: caught as a deadlock
          if (s < last) {
            auto it = done.find({PipeAction::kBackward, a.micro, s + 1});
            if (it == done.end()) break;
            ready = std::max(ready, it->second);
          }
        }
        const double cost = a.kind == PipeAction::kForward ? forward : backward;
        clock[r] = ready + cost;
        busy += cost;
        done[{a.kind, a.micro, s}] = clock[r];
        in_flight[r] += a.kind == PipeAction::kForward ? 1 : -1;
        sim.peak_in_flight[r] = std::max(sim.peak_in_flight[r], in_flight[r]);
        ++next[r];
        progress = true;
      }
    }
  }
  for (int r = 0; r < pp; ++r) {
    if (next[r] < schedules[r].size()) {
      const PipeAction& a = schedules[r][next[r]];
      return absl::InternalError(absl::StrFormat(
          "pipeline schedule deadlocks: rank %d waits at its action %d (%s of micro-batch %d, "
          "chunk %d) for a message no rank will send",
          r, next[r], a.kind == PipeAction::kForward ? "forward" : "backward", a.micro, a.chunk));
    }
    sim.makespan = std::max(sim.makespan, clock[r]);
  }
  sim.bubble = sim.makespan > 0 ? 1.0 - busy / (pp * sim.makespan) : 0;
  return sim;
}

double TheoreticalBubble(int pp, int virtual_size, int micro_batches) {
  const double idle = static_cast<double>(pp - 1) / virtual_size;
  return idle / (micro_batches + idle);
}

}  // namespace braid
