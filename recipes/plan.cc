// Memory estimate (see plan.h).
#include "recipes/plan.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "framework/core/system.h"

namespace braid {

std::string MemoryEstimate::ToString() const {
  return absl::StrFormat(
      "%.1fM parameters; per rank about %.2f GB of fp32 weights, gradients and AdamW state and "
      "%.2f GB of activations for one micro-batch (%.2f GB in all)",
      parameters / 1e6, state_bytes / 1e9, activation_bytes / 1e9, total() / 1e9);
}

MemoryEstimate EstimateMemory(const Family& family, const Config& c, const DerivedSizes& s) {
  MemoryEstimate m;
  m.parameters = static_cast<double>(family.ParameterCount(c, s));
  const double tp = static_cast<double>(s.tp);
  m.state_bytes = m.parameters / tp * 16.0;  // weights 4 + gradients 4 + AdamW moments 8
  const double b = static_cast<double>(c.train.micro_batch_size);
  const double seq = static_cast<double>(c.model.seq_length);
  const double h = static_cast<double>(c.model.hidden_size);
  const double a = static_cast<double>(c.model.num_attention_heads);
  const double bytes = c.train.precision == "bf16" ? 1.0 : 2.0;  // relative to 16-bit
  // A layer keeps s·b·h·(34 + 5·a·s/h) 16-bit units; selective recomputation drops the attention
  // core's 5·a·s/h; a fully recomputed layer keeps only its input (2 units), and one layer's
  // whole set lives again while it is recomputed in backward.
  const double per_layer = seq * b * h * (34.0 + 5.0 * a * seq / h) * bytes / tp;
  const double layers = static_cast<double>(family.LayerCount(c));
  double stack = per_layer * layers;
  if (c.train.recompute == "selective") {
    stack = seq * b * h * 34.0 * bytes / tp * layers;
  } else if (c.train.recompute == "full") {
    const double n = c.train.recompute_num_layers > 0
                         ? std::min(layers, static_cast<double>(c.train.recompute_num_layers))
                         : layers;
    stack = n * seq * b * h * 2.0 * bytes + (layers - n) * per_layer + per_layer;
  }
  const double vocab = static_cast<double>(s.padded_vocab_size) / tp;
  // The logits in fp32, their softmax and gradient: three [tokens, vocabulary / TP] tensors. With
  // model.output_chunk_tokens: one chunk's logits (softmax and gradient in place, a copy for the
  // GEMMs), and the gradients of the hidden states and the output weight made in the forward pass.
  const double logits =
      c.model.output_chunk_tokens > 0
          ? 2.0 * std::min(static_cast<double>(c.model.output_chunk_tokens), b * seq) * vocab *
                    4.0 +
                (b * seq + vocab) * h * 4.0
          : 3.0 * b * seq * vocab * 4.0;
  m.activation_bytes = stack + logits;
  return m;
}

absl::Status CheckMemory(const MemoryEstimate& e, const Config& c, int local_ranks) {
  if (c.train.device != "cpu") return absl::OkStatus();
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
