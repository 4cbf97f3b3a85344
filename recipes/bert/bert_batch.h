// A BERT sample as the loader carries it: one int64 row, its fields back to back. This header is
// the only place that knows their order: the sample builder (bert_data.cc) and the benchmark's
// random samples write rows through BertRow; the objective (bert_task.cc) reads a BertBatch.
#pragma once
#include <torch/torch.h>

namespace braid {

// Field offsets in a row of a sequence of `seq` positions.
struct BertRow {
  explicit BertRow(int64_t seq_length) : seq(seq_length) {}
  int64_t seq;
  int64_t ids() const { return 0; }            // token ids [seq]
  int64_t types() const { return seq; }        // segment ids [seq]
  int64_t padding() const { return 2 * seq; }  // 1 at padding positions [seq]
  int64_t labels() const { return 3 * seq; }   // the original id where masked, else -100 [seq]
  int64_t sop() const { return 4 * seq; }      // sentence-order label: 1 when swapped [1]
  int64_t length() const { return 4 * seq + 1; }
};

// A BERT micro-batch with its fields named.
struct BertBatch {
  torch::Tensor ids, types;  // [b, seq] int64
  torch::Tensor padding;     // [b, seq] bool, true at padding
  torch::Tensor labels;      // [b, seq] int64, -100 where not predicted
  torch::Tensor sop;         // [b] int64

  static BertBatch FromRows(const torch::Tensor& rows, int64_t seq) {
    const BertRow r(seq);
    return BertBatch{rows.narrow(1, r.ids(), seq), rows.narrow(1, r.types(), seq),
                     rows.narrow(1, r.padding(), seq).to(torch::kBool),
                     rows.narrow(1, r.labels(), seq), rows.select(1, r.sop())};
  }
};

}  // namespace braid
