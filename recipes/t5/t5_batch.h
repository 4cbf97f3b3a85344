// A T5 sample as the loader carries it: one int64 row, its fields back to back. This header is
// the only place that knows their order: the sample builder (t5_data.cc) and the benchmark's
// random samples write rows through T5Row; the objective (t5_task.cc) reads a T5Batch.
#pragma once
#include <torch/torch.h>

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

}  // namespace braid
