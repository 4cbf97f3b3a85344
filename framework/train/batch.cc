// The trainer's micro-batch (see batch.h).
#include "framework/train/batch.h"

namespace braid {

Batch ToBatch(SampleBatch samples, torch::Device device) {
  auto* owned = new std::vector<int64_t>(std::move(samples.rows));
  Batch b;
  b.rows = torch::from_blob(
      owned->data(), {samples.size(), samples.row_length}, [owned](void*) { delete owned; },
      torch::TensorOptions().dtype(torch::kLong));
  if (!device.is_cpu()) b.rows = b.rows.to(device);
  b.indices = std::move(samples.indices);
  return b;
}

}  // namespace braid
