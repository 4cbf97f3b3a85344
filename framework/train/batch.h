// The trainer's micro-batch: the loader's sample rows (framework/data/loader.h) as one int64
// tensor on the training device. A family reads its named fields out of the rows with its own
// row layout (recipes/<family>/*_batch.h); nothing else knows the order of the fields.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "framework/data/loader.h"

namespace braid {

struct Batch {
  torch::Tensor rows;            // [micro_batch, row_length] int64
  std::vector<int64_t> indices;  // global sample indices
};

// Wraps the loader's rows without a copy (the tensor takes them over), on `device`.
Batch ToBatch(SampleBatch samples, torch::Device device = torch::kCPU);

// Columns [offset, offset + length) of every row: [micro_batch, length].
inline torch::Tensor RowField(const torch::Tensor& rows, int64_t offset, int64_t length) {
  return rows.narrow(1, offset, length);
}

}  // namespace braid
