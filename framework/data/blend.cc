// Weighted blending (see blend.h). The blend index is computed in memory in one pass.
#include "framework/data/blend.h"

#include "absl/strings/str_format.h"

namespace braid {
namespace {
// Calls visit(i, d, k) for each blend sample i: source d, its k-th sample.
template <typename F>
void Walk(const std::vector<double>& weights, int64_t total, F visit) {
  double sum = 0;
  for (double w : weights) sum += w;
  std::vector<int64_t> count(weights.size(), 0);
  for (int64_t i = 0; i < total; ++i) {
    double scale = static_cast<double>(std::max<int64_t>(i, 1));
    size_t best = 0;
    double best_err = -1e300;
    for (size_t d = 0; d < weights.size(); ++d) {
      double err = weights[d] / sum * scale - static_cast<double>(count[d]);
      if (err > best_err) {
        best_err = err;
        best = d;
      }
    }
    visit(i, best, count[best]++);
  }
}
}  // namespace

std::vector<int64_t> BlendCounts(const std::vector<double>& weights, int64_t total) {
  std::vector<int64_t> counts(weights.size(), 0);
  Walk(weights, total, [&](int64_t, size_t d, int64_t) { ++counts[d]; });
  return counts;
}

absl::StatusOr<std::unique_ptr<BlendedDataset>> BlendedDataset::Create(
    std::vector<std::unique_ptr<SampleSource>> sources, const std::vector<double>& weights,
    int64_t total) {
  if (sources.empty() || sources.size() != weights.size() || sources.size() > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("blend: %d sources and %d weights", sources.size(), weights.size()));
  }
  std::vector<int64_t> counts = BlendCounts(weights, total);
  for (size_t d = 0; d < sources.size(); ++d) {
    if (sources[d]->size() < counts[d] ||
        sources[d]->sample_length() != sources[0]->sample_length()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "blend: source %d has %d samples of length %d; the blend needs %d of length %d", d,
          sources[d]->size(), sources[d]->sample_length(), counts[d], sources[0]->sample_length()));
    }
  }
  std::unique_ptr<BlendedDataset> b(new BlendedDataset());
  b->sources_ = std::move(sources);
  b->which_.resize(total);
  b->index_.resize(total);
  Walk(weights, total, [&](int64_t i, size_t d, int64_t k) {
    b->which_[i] = static_cast<uint16_t>(d);
    b->index_[i] = k;
  });
  return b;
}

void BlendedDataset::Get(int64_t i, int64_t* out) const {
  sources_[which_[i]]->Get(index_[i], out);
}

}  // namespace braid
