// A T5 sample as the loader carries it: one int64 row, its fields back to back. This header is
// the only place that knows their order: the sample builder (t5_data.cc) and the benchmark's
// random samples write rows through T5Row; the objective (t5_task.cc) reads a T5Batch.
#pragma once
#include <torch/torch.h>

#include "framework/core/random.h"
#include "recipes/family.h"

namespace braid {

// Field offsets in a row of `enc` encoder and `dec` decoder positions.
struct T5Row {
  T5Row(int64_t enc_length, int64_t dec_length) : enc(enc_length), dec(dec_length) {}
  int64_t enc, dec;
  int64_t inputs() const { return 0; }                // encoder ids, pad after EOS [enc]
  int64_t input_padding() const { return enc; }       // 1 at encoder padding [enc]
  int64_t decoder_inputs() const { return 2 * enc; }  // decoder start, then targets[:-1] [dec]
  int64_t labels() const { return 2 * enc + dec; }    // targets, -100 at padding [dec]
  int64_t length() const { return 2 * enc + 2 * dec; }
};

// A T5 micro-batch with its fields named.
struct T5Batch {
  torch::Tensor inputs;          // [b, enc] int64
  torch::Tensor input_padding;   // [b, enc] bool, true at padding
  torch::Tensor decoder_inputs;  // [b, dec] int64
  torch::Tensor labels;          // [b, dec] int64, -100 where not predicted

  static T5Batch FromRows(const torch::Tensor& rows, int64_t enc, int64_t dec) {
    const T5Row r(enc, dec);
    return T5Batch{rows.narrow(1, r.inputs(), enc),
                   rows.narrow(1, r.input_padding(), enc).to(torch::kBool),
                   rows.narrow(1, r.decoder_inputs(), dec), rows.narrow(1, r.labels(), dec)};
  }
};

// Random row i of the benchmarks: random encoder ids and targets at full length, no padding;
// the decoder inputs are the targets shifted right after a 0.
inline void RandomSeq2SeqRow(int64_t i, const T5Row& r, int64_t vocab, int64_t* out) {
  Rng rng = Rng::Keyed(kSyntheticSeed, static_cast<uint64_t>(i));
  auto next = [&] { return static_cast<int64_t>(rng.Below(static_cast<uint64_t>(vocab))); };
  for (int64_t k = 0; k < r.enc; ++k) {
    out[r.inputs() + k] = next();
    out[r.input_padding() + k] = 0;
  }
  int64_t prev = 0;
  for (int64_t k = 0; k < r.dec; ++k) {
    out[r.decoder_inputs() + k] = prev;
    out[r.labels() + k] = prev = next();
  }
}

}  // namespace braid
