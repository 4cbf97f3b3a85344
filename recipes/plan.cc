// Memory estimate (see plan.h).
#include "recipes/plan.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "framework/core/system.h"
#include "framework/parallel/pipeline_schedule.h"

namespace braid {

std::string MemoryEstimate::ToString() const {
  return absl::StrFormat(
      "%.1fM parameters; per rank about %.2f GB of fp32 weights, gradients and AdamW state and "
      "%.2f GB of activations for one micro-batch (%.2f GB in all)",
      parameters / 1e6, state_bytes / 1e9, activation_bytes / 1e9, total() / 1e9);
}

double ExpertParameterCount(const Config& c) {
  const ModelConfig& m = c.model;
  if (m.num_experts == 0) return 0;
  return static_cast<double>(m.hidden_size) * static_cast<double>(MoeFfnHiddenSize(m)) *
         (IsGated(m.activation) ? 3.0 : 2.0) * static_cast<double>(m.num_experts) *
         static_cast<double>(MoeLayerCount(m));
}

double ActiveParameterCount(const Config& c, double parameters) {
  const double experts = ExpertParameterCount(c);
  if (experts == 0) return parameters;
  return parameters - experts * (1.0 - static_cast<double>(c.model.moe_top_k) /
                                           static_cast<double>(c.model.num_experts));
}

MemoryEstimate EstimateMemory(const Family& family, const Config& c, const DerivedSizes& s,
                              const MemorySwitches& sw) {
  MemoryEstimate m;
  m.parameters = static_cast<double>(family.ParameterCount(c, s));
  m.expert_parameters = ExpertParameterCount(c);
  const double tp = static_cast<double>(s.tp), dp = static_cast<double>(s.dp);
  // Pipeline stages hold 1/PP of the parameters each (the layers split evenly; the embedding and
  // output layer, a few percent of a large model, are not singled out); EP ranks 1/EP of the
  // experts.
  const double pp = static_cast<double>(std::max<int64_t>(1, s.pp));
  const double ep = static_cast<double>(std::max<int64_t>(1, s.ep));
  m.local_parameters = (m.parameters - m.expert_parameters * (1.0 - 1.0 / ep)) / tp / pp;
  m.weight_bytes = m.local_parameters * 4.0;
  m.gradient_bytes = m.local_parameters * 4.0;
  const bool distributed = sw.distributed_optimizer || c.parallel.distributed_optimizer;
  m.optimizer_bytes = m.local_parameters * 8.0 / (distributed ? dp : 1.0);
  m.state_bytes = m.weight_bytes + m.gradient_bytes + m.optimizer_bytes;
  const double b = static_cast<double>(c.train.micro_batch_size);
  const double h = static_cast<double>(c.model.hidden_size);
  const double a = static_cast<double>(c.model.num_attention_heads);
  const double unit =
      c.train.precision == Precision::kBf16 ? 1.0 : 2.0;  // bytes per 16-bit unit / 2
  const bool sp = (sw.sequence_parallel || c.parallel.sequence_parallel) && s.tp > 1;
  const double vocab = static_cast<double>(s.padded_vocab_size) / tp;
  const double scored = b * static_cast<double>(family.OutputPositions(c));
  m.logits_bytes =
      c.model.output_chunk_tokens > 0
          ? 2.0 * std::min(static_cast<double>(c.model.output_chunk_tokens), scored) * vocab * 4.0 +
                (scored + vocab) * h * 4.0
          : scored * vocab * (c.train.precision == Precision::kBf16 ? 6.0 : 4.0);
  // Each stack over its own length (an encoder-decoder's decoder is shorter or longer than its
  // encoder); a cross-attention keeps its query side (as a self-attention's, without the fused
  // QKV), its scores over the memory, and the memory's keys and values.
  m.layer_bytes = 0;
  double transient = 0;  // the largest layer's backward transient (its core, or the whole layer)
  for (const Family::Stack& st : family.Stacks(c)) {
    const double seq = static_cast<double>(st.length), mem = static_cast<double>(st.memory);
    const double layers = static_cast<double>(st.layers);
    const double sbh = seq * b * h * unit;
    double core = sbh * 5.0 * a * seq / h / tp;  // the attention core of one layer
    double rest = sp ? sbh * 34.0 / tp : sbh * (10.0 + 24.0 / tp);
    if (st.memory > 0) {
      core += sbh * 5.0 * a * mem / h / tp;
      rest += (sp ? sbh * 12.0 / tp : sbh * (4.0 + 8.0 / tp)) + 2.0 * mem * b * h * unit / tp;
    }
    const double layer = rest + core;
    if (c.train.recompute == Recompute::kFull) {
      const double n = c.train.recompute_num_layers > 0
                           ? std::min(layers, static_cast<double>(c.train.recompute_num_layers))
                           : layers;
      const double input = 2.0 * sbh / (sp ? tp : 1.0);
      m.layer_bytes += n * input + (layers - n) * layer;
      transient = std::max(transient, layer + core);
    } else if (c.train.recompute == Recompute::kSelective) {
      m.layer_bytes += layers * rest;
      transient = std::max(transient, core);
    } else {
      m.layer_bytes += layers * layer;
      transient = std::max(transient, core);
    }
  }
  // Full recomputation's recomputed layer lives at a time when the logits have been freed.
  m.layer_bytes += c.train.recompute == Recompute::kFull
                       ? std::max(m.logits_bytes, transient) - m.logits_bytes
                       : transient;
  if (s.pp > 1) {
    // Each stage keeps its share of the layers' activations for every micro-batch it has
    // forwarded and not yet sent back: the schedule's peak, largest on the first stage (PP
    // micro-batches under 1F1B); the last stage has one in flight but also the logits.
    const int v = static_cast<int>(c.parallel.virtual_pipeline_size);
    const int micro = static_cast<int>(std::max<int64_t>(1, s.accumulation_steps));
    std::vector<std::vector<PipeAction>> all;
    for (int r = 0; r < s.pp; ++r) {
      all.push_back(ScheduleOf(c.parallel.pipeline_schedule, static_cast<int>(s.pp), v, r, micro));
    }
    absl::StatusOr<PipelineSimulation> sim = SimulatePipeline(all, v);
    const double first_in_flight = sim.ok() ? sim->peak_in_flight.front() : pp;
    const double last_in_flight = sim.ok() ? sim->peak_in_flight.back() : 1;
    const double per_chunk = (m.layer_bytes - transient) / (pp * v);
    const double first = per_chunk * first_in_flight + transient;
    const double last = per_chunk * last_in_flight + transient + m.logits_bytes;
    m.stage_in_flight = first_in_flight;
    if (first >= last) {
      m.layer_bytes = first;
      m.logits_bytes = 0;
    } else {
      m.layer_bytes = last - m.logits_bytes;
    }
  }
  m.activation_bytes = m.layer_bytes + m.logits_bytes;
  return m;
}

namespace {

double Gb(double bytes) { return bytes / 1e9; }

// A ring collective's time: `steps` latency terms and `fraction` of `bytes` over `gbps`.
double RingSeconds(double bytes, double fraction, int steps, double gbps, double latency_us) {
  return fraction * bytes / (gbps * 1e9) + steps * latency_us * 1e-6;
}

// The step time of layout `s` (TP, DP, PP, accumulation) for config `c` on cluster `k`.
struct StepEstimate {
  double compute = 0, tp_comm = 0, dp_comm = 0, exposed = 0, bubble = 0, p2p_bytes = 0, pp_comm = 0,
         step = 0;
  bool dp_across = false, pp_across = false;
};

StepEstimate EstimateStep(const Family& family, const Config& c, const DerivedSizes& s,
                          const ClusterSpec& k, double parameters) {
  StepEstimate e;
  const int t = static_cast<int>(s.tp), d = static_cast<int>(s.dp);
  const int p = static_cast<int>(std::max<int64_t>(1, s.pp));
  // Step time. FLOPs: 6 per parameter per token (forward and backward GEMMs) plus attention's
  // scores and context (12·L·s·h per token); full recomputation adds a forward (8 instead of 6).
  const double tokens = static_cast<double>(s.global_batch_size * c.model.seq_length);
  const double L = static_cast<double>(family.LayerCount(c));
  const double h = static_cast<double>(c.model.hidden_size);
  const double seq = static_cast<double>(c.model.seq_length);
  const double per_token =
      (c.train.recompute == Recompute::kFull ? 8.0 : 6.0) * ActiveParameterCount(c, parameters) +
      (c.train.recompute == Recompute::kFull ? 16.0 : 12.0) * L * seq * h;
  const double compute = e.compute =
      tokens * per_token / (t * d * p) / (k.peak_tflops * 1e12 * k.mfu);
  // TP: four all-reduces per layer per micro-batch (two forward, two backward) of the micro
  // batch's [b, s, h] activations (16-bit under bf16), within a node.
  const double act_bytes = static_cast<double>(c.train.micro_batch_size) * seq * h *
                           (c.train.precision == Precision::kBf16 ? 2.0 : 4.0);
  const double tp_comm = e.tp_comm =
      t > 1 ? 4.0 * L / p * static_cast<double>(s.accumulation_steps) *
                  RingSeconds(act_bytes, 2.0 * (t - 1) / t, 2 * (t - 1), k.intra_node_gbps,
                              k.intra_latency_us)
            : 0.0;
  // DP: the fp32 gradients all-reduced once per step (reduce-scatter + all-gather of the same
  // volume with the distributed optimizer), between nodes when a DP group spans them.
  const bool dp_across = e.dp_across = d > 1 && static_cast<int64_t>(t) * d > k.gpus_per_node;
  const double dp_comm = e.dp_comm =
      d > 1 ? RingSeconds(parameters / t / p * 4.0, 2.0 * (d - 1) / d, 2 * (d - 1),
                          dp_across ? k.inter_node_gbps : k.intra_node_gbps,
                          dp_across ? k.inter_latency_us : k.intra_latency_us)
            : 0.0;
  // The DP reduction overlaps the last micro-batch's backward (about 2/3 of its compute).
  const double exposed = e.exposed =
      std::max(0.0, dp_comm - 2.0 / 3.0 * compute / static_cast<double>(s.accumulation_steps));
  // PP: the bubble idles every stage for (PP - 1) / V micro-batch times of the schedule; each
  // stage sends its output forward and its input's gradient back for every micro-batch and chunk
  // (between nodes when TP x DP fills a node, Megatron's placement).
  const int v = static_cast<int>(c.parallel.virtual_pipeline_size);
  const double m_steps = static_cast<double>(s.accumulation_steps);
  const double bubble = e.bubble = p > 1 ? TheoreticalBubble(p, v, static_cast<int>(m_steps)) : 0.0;
  e.pp_across = p > 1 && static_cast<int64_t>(t) * d >= k.gpus_per_node;
  const double p2p_bytes = e.p2p_bytes = p > 1 ? 2.0 * m_steps * v * act_bytes / t : 0.0;
  const double pp_comm = e.pp_comm =
      p > 1 ? p2p_bytes / ((e.pp_across ? k.inter_node_gbps : k.intra_node_gbps) * 1e9) +
                  2.0 * m_steps * v * (e.pp_across ? k.inter_latency_us : k.intra_latency_us) * 1e-6
            : 0.0;
  e.step = (compute + tp_comm) / (1.0 - bubble) + pp_comm + exposed;
  return e;
}

// The pipeline sizes this cluster allows at the configured TP, micro batch and switches: for each
// PP that divides the world, the layers and the global batch, the DP it leaves, the fullest
// stage's memory and the step time; the recommendation is the smallest PP that fits under 90% of
// the GPU memory and steps within 2% of the fastest that fits.
std::string PipelineSizes(const Family& family, const Config& c, const DerivedSizes& s,
                          const ClusterSpec& k) {
  const int64_t world = k.world(), layers = family.LayerCount(c);
  std::string out =
      absl::StrFormat("  pipeline sizes at TP %d (micro batch %d, these switches, 1f1b%s):\n", s.tp,
                      c.train.micro_batch_size,
                      c.parallel.virtual_pipeline_size > 1
                          ? absl::StrFormat(" x %d virtual", c.parallel.virtual_pipeline_size)
                          : "");
  struct Row {
    int64_t pp;
    bool fits;
    double step;
    std::string text;
  };
  std::vector<Row> rows;
  for (int64_t p = 1; p <= std::min<int64_t>(layers, world / s.tp); p *= 2) {
    const int64_t dp = world / (s.tp * p);
    if (dp * s.tp * p != world || layers % (p * c.parallel.virtual_pipeline_size) != 0) continue;
    if (s.global_batch_size % (c.train.micro_batch_size * dp) != 0) continue;
    if (dp % std::max<int64_t>(1, s.ep) != 0) continue;  // the EP ranks come from DP
    DerivedSizes ps = s;
    ps.pp = p;
    ps.dp = dp;
    ps.accumulation_steps = s.global_batch_size / (c.train.micro_batch_size * dp);
    if (c.parallel.virtual_pipeline_size > 1 && ps.accumulation_steps % p != 0) continue;
    Config pc = c;
    pc.parallel.pipeline_parallel_size = p;
    const MemoryEstimate m = EstimateMemory(family, pc, ps);
    const bool fits = m.total() <= 0.9 * k.gpu_memory_gb * 1e9;
    const StepEstimate e = EstimateStep(family, pc, ps, k, m.parameters);
    rows.push_back(
        {p, fits, e.step,
         absl::StrFormat("    PP %-3d DP %-4d %7.1f GB %-9s step %8.3f s, bubble %4.1f%%", p, dp,
                         Gb(m.total()), fits ? "fits" : "too big", e.step, 100 * e.bubble)});
  }
  // The smallest PP that fits and is within 2% of the fastest that fits: more stages than that
  // buy next to nothing in this model and cost point-to-point hops and stage balancing.
  double fastest = 0;
  for (const Row& r : rows)
    if (r.fits && (fastest == 0 || r.step < fastest)) fastest = r.step;
  int64_t best = 0;
  for (const Row& r : rows)
    if (best == 0 && r.fits && r.step <= 1.02 * fastest) best = r.pp;
  for (const Row& r : rows) out += r.text + (r.pp == best ? "   <- recommended\n" : "\n");
  if (best == 0) {
    out +=
        "    none fits: raise TP, shrink the micro batch, or turn on recomputation and the "
        "distributed optimizer\n";
  }
  return out;
}

}  // namespace

std::string PlanReport(const Family& family, const Config& c, const DerivedSizes& s,
                       const ClusterSpec& k) {
  const double capacity = k.gpu_memory_gb * 1e9;
  const int t = static_cast<int>(s.tp), d = static_cast<int>(s.dp);
  const int p = static_cast<int>(std::max<int64_t>(1, s.pp));
  std::string out = absl::StrFormat(
      "plan: %s on %d node(s) x %d GPUs (%.0f GB, %.0f TFLOP/s, compute at %.0f%% of it; links "
      "%.0f GB/s within a node, %.0f GB/s between nodes)\n"
      "  layout: TP %d x DP %d x PP %d; micro batch %d x sequence %d, %d micro-batch(es) per step, "
      "global "
      "batch %d; precision %s; recompute %s%s%s%s\n",
      c.source_file, k.nodes, k.gpus_per_node, k.gpu_memory_gb, k.peak_tflops, 100 * k.mfu,
      k.intra_node_gbps, k.inter_node_gbps, t, d, p, c.train.micro_batch_size, c.model.seq_length,
      s.accumulation_steps, s.global_batch_size, Name(c.train.precision), Name(c.train.recompute),
      c.model.output_chunk_tokens > 0
          ? absl::StrFormat("; output in chunks of %d tokens", c.model.output_chunk_tokens)
          : "",
      c.parallel.distributed_optimizer ? "; distributed optimizer" : "",
      c.parallel.sequence_parallel ? "; sequence parallel" : "");
  const MemoryEstimate now = EstimateMemory(family, c, s);
  const MemoryEstimate distopt = EstimateMemory(family, c, s, {true, false});
  const MemoryEstimate sp = EstimateMemory(family, c, s, {false, true});
  Config full_c = c;
  full_c.train.recompute = Recompute::kFull;
  full_c.train.recompute_num_layers = 0;
  Config sel_c = c;
  sel_c.train.recompute = Recompute::kSelective;
  sel_c.train.recompute_num_layers = 0;
  const MemoryEstimate full = EstimateMemory(family, full_c, s);
  const MemoryEstimate selective = EstimateMemory(family, sel_c, s);
  absl::StrAppendFormat(
      &out,
      "  memory per rank (GB): %.1fM parameters, %.2fM on each rank%s\n"
      "    weights (fp32)      %8.2f\n"
      "    gradients (fp32)    %8.2f\n"
      "    AdamW state (fp32)  %8.2f   distributed optimizer: %.2f\n"
      "    activations         %8.2f   selective recompute: %.2f, full: %.2f; sequence "
      "parallel: %.2f\n"
      "    logits and loss     %8.2f\n"
      "    total               %8.2f   of %.0f: %s\n",
      now.parameters / 1e6, now.local_parameters / 1e6,
      p > 1 ? absl::StrFormat(" (the fullest stage: %.0f micro-batch chunks in flight on the "
                              "first)",
                              now.stage_in_flight)
            : "",
      Gb(now.weight_bytes), Gb(now.gradient_bytes), Gb(now.optimizer_bytes),
      Gb(distopt.optimizer_bytes), Gb(now.layer_bytes), Gb(selective.layer_bytes),
      Gb(full.layer_bytes), Gb(sp.layer_bytes), Gb(now.logits_bytes), Gb(now.total()),
      k.gpu_memory_gb,
      now.total() <= 0.9 * capacity ? "fits (under 90%)" : "does NOT fit (90% is the bound)");
  // The largest micro batch whose estimate stays under 90% of the memory, as configured and with
  // every switch (distributed optimizer, sequence parallelism at TP > 1, full recomputation, the
  // output in chunks of 4096 tokens).
  auto largest = [&](Config base, MemorySwitches sw) {
    int64_t best = 0;
    for (int64_t mb = 1; mb <= 4096; mb *= 2) {
      base.train.micro_batch_size = mb;
      if (EstimateMemory(family, base, s, sw).total() > 0.9 * capacity) break;
      best = mb;
    }
    return best;
  };
  Config all_c = full_c;
  if (all_c.model.output_chunk_tokens == 0) all_c.model.output_chunk_tokens = 4096;
  absl::StrAppendFormat(
      &out,
      "  largest micro batch (powers of two) under 90%%: %d as configured; %d with full "
      "recomputation; %d with every switch (distributed optimizer, SP%s, full recomputation, "
      "chunked loss)\n",
      largest(c, {}), largest(full_c, {}), largest(all_c, {true, t > 1}), t > 1 ? "" : " n/a");

  const StepEstimate e = EstimateStep(family, c, s, k, now.parameters);
  const int v = static_cast<int>(c.parallel.virtual_pipeline_size);
  if (p > 1) {
    absl::StrAppendFormat(
        &out,
        "  pipeline: %d stages%s, schedule %s, %d micro-batches: bubble %.1f%% ((PP - 1) / V / "
        "(m + (PP - 1) / V)); point-to-point %.1f MB per rank per step %s (%.3f s, not "
        "overlapped in this estimate)\n",
        p, v > 1 ? absl::StrFormat(" x %d virtual", v) : "",
        v > 1 ? "interleaved 1f1b" : Name(c.parallel.pipeline_schedule),
        static_cast<int>(s.accumulation_steps), 100 * e.bubble, e.p2p_bytes / 1e6,
        e.pp_across ? "between nodes" : "within a node", e.pp_comm);
  }
  const double tokens = static_cast<double>(s.global_batch_size * c.model.seq_length);
  const double L = static_cast<double>(family.LayerCount(c));
  const double h = static_cast<double>(c.model.hidden_size);
  const double seq = static_cast<double>(c.model.seq_length);
  absl::StrAppendFormat(
      &out,
      "  step time estimate: %.3f s = (compute %.3f s + TP all-reduces %.3f s) / (1 - bubble "
      "%.1f%%) + pipeline transfers %.3f s + DP gradient "
      "reduction %.3f s (of %.3f s, %s; the rest overlaps backward)\n"
      "    %.0f tokens/s in all, %.0f per GPU; MFU %.1f%% (6 FLOPs per parameter per token plus "
      "attention)\n",
      e.step, e.compute, e.tp_comm, 100 * e.bubble, e.pp_comm, e.exposed, e.dp_comm,
      e.dp_across ? "between nodes" : "within a node", tokens / e.step, tokens / e.step / k.world(),
      100.0 * tokens * (6.0 * ActiveParameterCount(c, now.parameters) + 12.0 * L * seq * h) /
          e.step / k.world() / (k.peak_tflops * 1e12));
  if (c.model.num_experts > 0) {
    // Each token's top-k rows of h values go to the experts' ranks and come back (dispatch and
    // combine), forward and backward: 4 all-to-alls per MoE layer per micro-batch; at balance
    // (EP - 1)/EP of the rows leave the rank. Over the slowest link the EP group spans.
    const int ep = static_cast<int>(std::max<int64_t>(1, s.ep));
    const double bytes = c.train.precision == Precision::kBf16 ? 2.0 : 4.0;
    const double rank_tokens =
        static_cast<double>(c.train.micro_batch_size * c.model.seq_length * s.accumulation_steps) /
        static_cast<double>(p);  // this stage's share of the layers below
    const double volume = 4.0 * rank_tokens * static_cast<double>(c.model.moe_top_k) * h * bytes *
                          static_cast<double>(MoeLayerCount(c.model)) * (ep - 1.0) / ep;
    const bool across = t * ep > k.gpus_per_node;
    const double gbps = across ? k.inter_node_gbps : k.intra_node_gbps;
    absl::StrAppendFormat(
        &out,
        "  experts: %d of %d per EP rank in each of %d MoE layers (EP %d of DP %d), %.2fM expert "
        "parameters on each rank of %.2fM in all; active per token: %.1fM of %.1fM\n"
        "    all-to-all (dispatch and combine, forward and backward): %.1f MB per rank per step "
        "%s (%.3f s at %.0f GB/s, not in the step time above)\n",
        static_cast<int>(c.model.num_experts / ep), static_cast<int>(c.model.num_experts),
        static_cast<int>(MoeLayerCount(c.model)), ep, d, now.expert_parameters / ep / t / p / 1e6,
        now.expert_parameters / 1e6, ActiveParameterCount(c, now.parameters) / 1e6,
        now.parameters / 1e6, volume / 1e6, across ? "between nodes" : "within a node",
        volume / (gbps * 1e9), gbps);
  }
  out += PipelineSizes(family, c, s, k);
  return out;
}

absl::Status CheckMemory(const MemoryEstimate& e, const Config& c, int local_ranks) {
  if (c.train.device != TrainDevice::kCpu) return absl::OkStatus();
  const double machine = MachineMemoryBytes();
  if (machine <= 0) return absl::OkStatus();
  const double per_rank = machine / std::max(1, local_ranks);
  if (e.total() <= per_rank) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "%s: the model needs %s, but this machine has %.1f GB for %d rank(s) on it (%.2f GB each). "
      "HINT: a smaller model (model.hidden_size, num_layers, seq_length), a smaller "
      "train.micro_batch_size, more tensor parallelism, or fewer ranks per node.",
      c.source_file, e.ToString(), machine / 1e9, local_ranks, per_rank / 1e9));
}

}  // namespace braid
