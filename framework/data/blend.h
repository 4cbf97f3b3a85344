// Blending several sample sources by weight (Megatron's rule): sample i of the blend comes from
// the source d that maximises w_d * max(i, 1) - count_d (ties: the lowest d), and is that
// source's count_d-th sample. BlendCounts() says how many samples each source must provide, so
// each can be built with exactly that many.
#pragma once
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/data/sample_source.h"

namespace braid {

// Samples each source contributes to a blend of `total` samples (weights are normalised).
std::vector<int64_t> BlendCounts(const std::vector<double>& weights, int64_t total);

class BlendedDataset : public SampleSource {
 public:
  static absl::StatusOr<std::unique_ptr<BlendedDataset>> Create(
      std::vector<std::unique_ptr<SampleSource>> sources, const std::vector<double>& weights,
      int64_t total);
  int64_t size() const override { return static_cast<int64_t>(which_.size()); }
  int64_t sample_length() const override { return sources_[0]->sample_length(); }
  void Get(int64_t i, int64_t* out) const override;
  // The source of blend sample i (for tests and logs).
  int source_of(int64_t i) const { return which_[i]; }

 private:
  std::vector<std::unique_ptr<SampleSource>> sources_;
  std::vector<uint16_t> which_;
  std::vector<int64_t> index_;
};

}  // namespace braid
