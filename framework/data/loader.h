// Distributed, resumable loading. The global order of samples is the source's order (a seeded
// permutation that depends on neither DP nor TP size). Global batch b is samples
// [b*G, (b+1)*G); DP rank r takes the contiguous slice [b*G + r*G/DP, b*G + (r+1)*G/DP) and
// splits it into micro-batches. The state to resume is the number of consumed samples (a
// multiple of G), so a run resumed at any DP size sees exactly the global batches an
// uninterrupted run would. A background thread prefetches micro-batches; the time the trainer
// waits for one is measured.
#pragma once
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/data/sample_source.h"

namespace braid {

class DistributedBatchSampler {
 public:
  // Fails unless micro_batch x DP divides global_batch and `consumed` is a multiple of it.
  static absl::StatusOr<DistributedBatchSampler> Create(int64_t global_batch, int64_t micro_batch,
                                                        int dp_rank, int dp_size, int64_t consumed);
  // Global sample indices of this rank's next micro-batch.
  std::vector<int64_t> Next();
  // Samples consumed by all ranks together, counted in whole global batches.
  int64_t consumed() const { return consumed_; }
  int64_t micro_batches_per_step() const { return per_rank_ / micro_; }
  int64_t global_batch() const { return global_; }

 private:
  int64_t global_ = 0, micro_ = 0, per_rank_ = 0;
  int dp_rank_ = 0;
  int64_t consumed_ = 0;  // start of the current global batch
  int64_t within_ = 0;    // micro-batches taken from it
};

// One micro-batch as the loader hands it out: `size()` sample rows of `row_length` int64 values
// back to back (the trainer wraps them in a tensor without copying: framework/train/batch.h).
struct SampleBatch {
  std::vector<int64_t> rows;  // [micro_batch x row_length]
  int64_t row_length = 0;
  std::vector<int64_t> indices;  // global sample indices
  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

// Fills `batch` with the samples at `indices` of `source` (each index modulo its size).
void FillBatch(const SampleSource& source, std::vector<int64_t> indices, SampleBatch* batch);

class Loader {
 public:
  Loader(std::shared_ptr<const SampleSource> source, DistributedBatchSampler sampler, int prefetch);
  ~Loader();
  SampleBatch Next();
  // Consumed samples after the batches handed out so far (the value a checkpoint stores).
  int64_t consumed() const;
  // Seconds Next() spent waiting for the prefetch thread; Take resets the counter.
  double TakeWaitSeconds();

 private:
  void Run();
  std::shared_ptr<const SampleSource> source_;
  DistributedBatchSampler sampler_;
  const int64_t start_consumed_;
  const int64_t global_batch_;
  const int64_t micro_per_step_;
  int64_t delivered_ = 0;
  size_t capacity_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SampleBatch> ready_;
  bool stop_ = false;
  double wait_seconds_ = 0;
};

}  // namespace braid
