// T5's span corruption (docs/formats.md, "T5 span corruption"), torch-free: the length
// arithmetic of T5's random_spans_helper, the noise mask of random_spans_noise_mask, and the
// inputs/targets it makes of a raw chunk.
//   raw chunk:  t0 t1 t2 t3 t4 t5 t6 t7     noise mask: . . X X . . . X
//   inputs:     t0 t1 <s0> t4 t5 t6 <s1> EOS
//   targets:    <s0> t2 t3 <s1> t7 EOS
// Sentinel k (<extra_id_k>) is the id vocab - 1 - k, Hugging Face's numbering: the first
// sentinel is the last id of the vocabulary.
#pragma once
#include <cstdint>
#include <vector>

#include "framework/core/random.h"

namespace braid {

struct SpanLengths {
  int64_t raw = 0;      // tokens of a raw chunk
  int64_t inputs = 0;   // encoder tokens it becomes (with the sentinels and EOS)
  int64_t targets = 0;  // decoder tokens it becomes (with the sentinels and EOS)
};

// The noise and span counts of a chunk of `length` tokens (T5's, with its clamps: at least one
// noise token, at least one non-noise token, at least one span). Rounding is half-to-even, as
// TensorFlow's tf.round and Python's round.
struct NoiseCounts {
  int64_t noise = 0, spans = 0;
};
NoiseCounts CountNoise(int64_t length, double noise_density, double mean_span);

// The longest raw chunk whose inputs fit `inputs_length` tokens, and the lengths it gives
// (random_spans_helper: 512 -> raw 568, targets 114), counted with CountNoise's clamps: no sample
// of a raw chunk is longer than them, for any density and mean span length.
SpanLengths T5SpanLengths(int64_t inputs_length, double noise_density, double mean_span);

// The noise mask of a chunk of `length` tokens: CountNoise's spans, the noise and the non-noise
// tokens each split into that many non-empty runs uniformly at random, interleaved starting
// with non-noise (so the chunk ends in noise). true = noise.
std::vector<bool> RandomSpansNoiseMask(int64_t length, double noise_density, double mean_span,
                                       Rng& rng);

// The inputs and targets of `raw` under `noise` (same length): each noise span becomes one
// sentinel in the inputs; the targets are each sentinel followed by its span; both end with
// `eos`. Sentinel k is first_sentinel - k.
struct SpanCorrupted {
  std::vector<int64_t> inputs, targets;
};
SpanCorrupted ApplySpanCorruption(const std::vector<int64_t>& raw, const std::vector<bool>& noise,
                                  int64_t first_sentinel, int64_t eos);

}  // namespace braid
