// What a run will need, worked out from the resolved config before anything is built: the
// parameter count (the family's, Family::ParameterCount), and per rank the bytes of fp32 weights,
// gradients and AdamW state, and of the activations of one micro-batch. pretrain refuses a run
// whose estimate exceeds the machine's memory per rank, --print-config prints it, and
// `pretrain --plan` (PlanReport) sets it against a cluster.
//
// Activations, per layer (Korthikanti et al., "Reducing Activation Recomputation in Large
// Transformer Models", in 16-bit units, doubled for fp32): s·b·h·(10 + 24/t + 5·a·s/(h·t)) with
// TP t; with sequence parallelism s·b·h·(34 + 5·a·s/h)/t. Selective recomputation keeps the
// layer without its attention core (the 5·a·s/h term); full keeps 2·s·b·h (the input). During
// backward one layer's attention core (and, under full recomputation, the recomputed layer) lives
// on top of what is kept, and the logits [tokens, V/t] in fp32 (once; the chunked loss: two
// chunks' blocks plus the hidden-state and weight gradients it makes early). Fitted against the
// peak of live tensors measured on this machine (BENCHMARKS.md, activation recomputation) for
// GPT with dropout: within 10% there, within 15% in 10 of 11 cases. Not modelled: cross-attention,
// fused attention kernels (which keep no s x s scores), allocator fragmentation and workspace.
#pragma once
#include <string>

#include "absl/status/status.h"
#include "framework/core/config.h"
#include "recipes/family.h"

namespace braid {

struct MemoryEstimate {
  double parameters = 0;         // the whole model
  double expert_parameters = 0;  // of which the MoE layers' experts (EP divides them)
  double local_parameters = 0;   // on each rank: 1/TP, 1/PP, the experts 1/EP as well
  double state_bytes = 0;        // per rank: weights, gradients, AdamW moments (fp32)
  double activation_bytes = 0;   // per rank, one micro-batch (layers and logits)
  // The parts.
  double weight_bytes = 0, gradient_bytes = 0, optimizer_bytes = 0;
  double layer_bytes = 0;   // what the transformer layers keep, and the transient of backward
  double logits_bytes = 0;  // the output layer and loss
  // Pipeline parallelism: the estimate is the fullest stage's (the first, holding the schedule's
  // peak of in-flight micro-batches, or the last with the logits); that peak on the first stage.
  double stage_in_flight = 0;
  double total() const { return state_bytes + activation_bytes; }
  std::string ToString() const;
};

// Switches the estimate can assume beyond the config's (for the planner's "what if" columns).
struct MemorySwitches {
  bool distributed_optimizer = false;  // AdamW moments sharded over DP (or the config's key)
  bool sequence_parallel = false;      // norm/dropout regions split over TP (or the config's key)
};

MemoryEstimate EstimateMemory(const Family& family, const Config& config, const DerivedSizes& sizes,
                              const MemorySwitches& switches = {});

// A cluster for `pretrain --plan`: H100 SXM defaults (80 GB; 989 TFLOP/s dense bf16; NVLink 4
// at 450 GB/s per direction; one 400 Gb/s InfiniBand port, 50 GB/s, per GPU).
struct ClusterSpec {
  int nodes = 1;
  int gpus_per_node = 8;
  double gpu_memory_gb = 80;
  double peak_tflops = 989;      // the matmul rate of the training precision
  double mfu = 0.4;              // the fraction of it the compute is assumed to reach
  double intra_node_gbps = 450;  // GB/s per GPU within a node
  double inter_node_gbps = 50;   // GB/s per GPU between nodes
  double intra_latency_us = 5;   // alpha of the alpha-beta model, per collective step
  double inter_latency_us = 10;
  int world() const { return nodes * gpus_per_node; }
};

// The planner's report for the configured layout on `cluster` (sizes derived for
// cluster.world() ranks): per-rank memory by part, with and without the memory switches; an
// estimated step time (compute at cluster.mfu of the peak, each collective's volume over an
// alpha-beta ring model on the link it crosses); the largest micro batch that fits.
std::string PlanReport(const Family& family, const Config& config, const DerivedSizes& sizes,
                       const ClusterSpec& cluster);

// The model's expert weights (every MoE layer's experts' fc1 and fc2), and the parameters one
// token's forward uses (the experts: top-k of them).
double ExpertParameterCount(const Config& c);
double ActiveParameterCount(const Config& c, double parameters);

// An error when `estimate` per rank exceeds the machine's memory divided among the `local_ranks`
// ranks on this node (train.device: cpu; GPUs are not checked here).
absl::Status CheckMemory(const MemoryEstimate& estimate, const Config& config, int local_ranks);

}  // namespace braid
