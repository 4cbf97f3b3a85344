// An encoder-decoder sample as the loader carries it: one int64 row, its fields back to back.
// This header is the only place that knows their order: the sample builders (T5's, BART's,
// UL2's) and the benchmarks' random samples write rows through Seq2SeqRow; the objective
// (seq2seq_task.h) reads a Seq2SeqBatch. BART's rows carry one more field, `noised` (1 where the
// target token was masked, deleted or replaced in the source: the positions masked_acc scores).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "framework/core/random.h"
#include "recipes/family.h"

namespace braid {

// Field offsets in a row of `enc` encoder and `dec` decoder positions.
struct Seq2SeqRow {
  Seq2SeqRow(int64_t enc_length, int64_t dec_length, bool with_noised = false)
      : enc(enc_length), dec(dec_length), has_noised(with_noised) {}
  int64_t enc, dec;
  bool has_noised;
  int64_t inputs() const { return 0; }                  // encoder ids, pad after EOS [enc]
  int64_t input_padding() const { return enc; }         // 1 at encoder padding [enc]
  int64_t decoder_inputs() const { return 2 * enc; }    // decoder start, then targets[:-1] [dec]
  int64_t labels() const { return 2 * enc + dec; }      // targets, -100 at padding [dec]
  int64_t noised() const { return 2 * enc + 2 * dec; }  // (with_noised) 1 where noised [dec]
  int64_t length() const { return 2 * enc + 2 * dec + (has_noised ? dec : 0); }
};

// A micro-batch with its fields named.
struct Seq2SeqBatch {
  torch::Tensor inputs;          // [b, enc] int64
  torch::Tensor input_padding;   // [b, enc] bool, true at padding
  torch::Tensor decoder_inputs;  // [b, dec] int64
  torch::Tensor labels;          // [b, dec] int64, -100 where not predicted
  torch::Tensor noised;          // [b, dec] bool; undefined for rows without the field

  static Seq2SeqBatch FromRows(const torch::Tensor& rows, int64_t enc, int64_t dec,
                               bool with_noised = false) {
    const Seq2SeqRow r(enc, dec, with_noised);
    Seq2SeqBatch b{rows.narrow(1, r.inputs(), enc),
                   rows.narrow(1, r.input_padding(), enc).to(torch::kBool),
                   rows.narrow(1, r.decoder_inputs(), dec), rows.narrow(1, r.labels(), dec)};
    if (with_noised) b.noised = rows.narrow(1, r.noised(), dec).to(torch::kBool);
    return b;
  }
};

// A sample's row from its encoder input and its targets (each at most the row's lengths): the
// inputs padded with `pad`, the decoder inputs the decoder start (`pad`) then the targets shifted
// right, the labels the targets with -100 at padding.
inline void WriteSeq2SeqRow(const Seq2SeqRow& r, const std::vector<int64_t>& inputs,
                            const std::vector<int64_t>& targets, int64_t pad, int64_t* out) {
  const int64_t n_in = static_cast<int64_t>(inputs.size());
  const int64_t n_tg = static_cast<int64_t>(targets.size());
  for (int64_t k = 0; k < r.enc; ++k) {
    out[r.inputs() + k] = k < n_in ? inputs[k] : pad;
    out[r.input_padding() + k] = k >= n_in;
  }
  for (int64_t k = 0; k < r.dec; ++k) {
    out[r.decoder_inputs() + k] = k == 0 ? pad : (k - 1 < n_tg ? targets[k - 1] : pad);
    out[r.labels() + k] = k < n_tg ? targets[k] : -100;
  }
}

// Random row i of the benchmarks: random encoder ids and targets at full length, no padding;
// the decoder inputs are the targets shifted right after a 0; every target counted as noised.
inline void RandomSeq2SeqRow(int64_t i, const Seq2SeqRow& r, int64_t vocab, int64_t* out) {
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
    if (r.has_noised) out[r.noised() + k] = 1;
  }
}

// Random rows (benchmarks): an endless stream of RandomSeq2SeqRow.
class RandomSeq2SeqRows : public SampleSource {
 public:
  RandomSeq2SeqRows(const Seq2SeqRow& row, int64_t vocab) : row_(row), vocab_(vocab) {}
  int64_t size() const override { return int64_t{1} << 40; }
  int64_t sample_length() const override { return row_.length(); }
  void Get(int64_t i, int64_t* out) const override { RandomSeq2SeqRow(i, row_, vocab_, out); }

 private:
  Seq2SeqRow row_;
  int64_t vocab_;
};

}  // namespace braid
