// Distributed sampler and prefetching loader (see loader.h).
#include "framework/data/loader.h"

#include <chrono>

#include "absl/strings/str_format.h"

namespace braid {

absl::StatusOr<DistributedBatchSampler> DistributedBatchSampler::Create(int64_t global_batch,
                                                                        int64_t micro_batch,
                                                                        int dp_rank, int dp_size,
                                                                        int64_t consumed) {
  if (micro_batch < 1 || dp_size < 1 || global_batch % (micro_batch * dp_size) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("global batch %d is not a multiple of micro batch %d x DP %d", global_batch,
                        micro_batch, dp_size));
  }
  if (consumed % global_batch != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "consumed samples %d is not a multiple of the global batch %d: a checkpoint from a run "
        "with another global batch cannot resume the data order exactly.",
        consumed, global_batch));
  }
  DistributedBatchSampler s;
  s.global_ = global_batch;
  s.micro_ = micro_batch;
  s.per_rank_ = global_batch / dp_size;
  s.dp_rank_ = dp_rank;
  s.consumed_ = consumed;
  return s;
}

std::vector<int64_t> DistributedBatchSampler::Next() {
  std::vector<int64_t> out(micro_);
  int64_t first = consumed_ + dp_rank_ * per_rank_ + within_ * micro_;
  for (int64_t k = 0; k < micro_; ++k) out[k] = first + k;
  if (++within_ == per_rank_ / micro_) {
    within_ = 0;
    consumed_ += global_;
  }
  return out;
}

Loader::Loader(std::shared_ptr<const SampleSource> source, DistributedBatchSampler sampler,
               int prefetch)
    : source_(std::move(source)),
      sampler_(sampler),
      start_consumed_(sampler.consumed()),
      global_batch_(sampler.global_batch()),
      micro_per_step_(sampler.micro_batches_per_step()),
      capacity_(std::max(1, prefetch)) {
  thread_ = std::thread([this] { Run(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  thread_.join();
}

void FillBatch(const SampleSource& source, std::vector<int64_t> indices, SampleBatch* batch) {
  const int64_t len = source.sample_length();
  batch->indices = std::move(indices);
  batch->row_length = len;
  batch->rows.resize(batch->indices.size() * len);
  for (size_t k = 0; k < batch->indices.size(); ++k) {
    source.Get(batch->indices[k] % source.size(), batch->rows.data() + k * len);
  }
}

void Loader::Run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stop_ || ready_.size() < capacity_; });
      if (stop_) return;
    }
    SampleBatch b;
    FillBatch(*source_, sampler_.Next(), &b);
    std::lock_guard<std::mutex> l(mu_);
    ready_.push_back(std::move(b));
    cv_.notify_all();
  }
}

SampleBatch Loader::Next() {
  auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return !ready_.empty(); });
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  SampleBatch b = std::move(ready_.front());
  ready_.pop_front();
  ++delivered_;
  cv_.notify_all();
  return b;
}

int64_t Loader::consumed() const {
  std::lock_guard<std::mutex> l(mu_);
  return start_consumed_ + delivered_ / micro_per_step_ * global_batch_;
}

double Loader::TakeWaitSeconds() {
  std::lock_guard<std::mutex> l(mu_);
  double w = wait_seconds_;
  wait_seconds_ = 0;
  return w;
}

}  // namespace braid
