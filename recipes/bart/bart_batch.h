// A BART row: the encoder-decoder row (recipes/seq2seq/seq2seq_batch.h) with the `noised` field
// [dec] after the labels: 1 where the target token was masked, deleted or replaced in the source.
#pragma once
#include "recipes/seq2seq/seq2seq_batch.h"

namespace braid {

struct BartRow : Seq2SeqRow {
  BartRow(int64_t enc_length, int64_t dec_length) : Seq2SeqRow(enc_length, dec_length, true) {}
};

}  // namespace braid
