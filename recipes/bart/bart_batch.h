// A BART sample as the loader carries it: T5's row (recipes/t5/t5_batch.h: encoder ids, encoder
// padding, decoder inputs, labels) followed by one more field, `noised` [dec]: 1 where the target
// token was masked, deleted or replaced in the source (the positions masked_acc scores).
#pragma once
#include "recipes/t5/t5_batch.h"

namespace braid {

struct BartRow : T5Row {
  BartRow(int64_t enc_length, int64_t dec_length) : T5Row(enc_length, dec_length) {}
  int64_t noised() const { return T5Row::length(); }
  int64_t length() const { return T5Row::length() + dec; }
};

struct BartBatch : T5Batch {
  torch::Tensor noised;  // [b, dec] bool

  static BartBatch FromRows(const torch::Tensor& rows, int64_t enc, int64_t dec) {
    BartBatch b{T5Batch::FromRows(rows, enc, dec)};
    b.noised = rows.narrow(1, BartRow(enc, dec).noised(), dec).to(torch::kBool);
    return b;
  }
};

}  // namespace braid
