// T5 span corruption (see span_corruption.h).
#include "recipes/seq2seq/span_corruption.h"

#include <algorithm>
#include <cmath>

namespace braid {
namespace {

// Half-to-even rounding of a non-negative value (tf.round, Python's round).
int64_t RoundHalfEven(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

// `n` items split into `k` non-empty runs (1 <= k <= n), every composition equally likely: k - 1
// distinct cut points among the n - 1 gaps. T5 shuffles an indicator of the gaps; the law is
// the same.
std::vector<int64_t> RandomSegmentation(int64_t n, int64_t k, Rng& rng) {
  std::vector<int64_t> gaps(n - 1);
  for (int64_t i = 0; i < n - 1; ++i) gaps[i] = i + 1;
  // A partial Fisher-Yates shuffle picks the first k - 1 cuts.
  for (int64_t i = 0; i < k - 1; ++i) {
    int64_t j = i + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(n - 1 - i)));
    std::swap(gaps[i], gaps[j]);
  }
  std::vector<int64_t> cuts(gaps.begin(), gaps.begin() + (k - 1));
  std::sort(cuts.begin(), cuts.end());
  std::vector<int64_t> lengths;
  lengths.reserve(k);
  int64_t prev = 0;
  for (int64_t c : cuts) {
    lengths.push_back(c - prev);
    prev = c;
  }
  lengths.push_back(n - prev);
  return lengths;
}

}  // namespace

NoiseCounts CountNoise(int64_t length, double noise_density, double mean_span) {
  const int64_t len = std::max<int64_t>(length, 2);
  NoiseCounts c;
  c.noise =
      std::clamp<int64_t>(RoundHalfEven(static_cast<double>(len) * noise_density), 1, len - 1);
  c.spans = std::max<int64_t>(RoundHalfEven(static_cast<double>(c.noise) / mean_span), 1);
  return c;
}

SpanLengths T5SpanLengths(int64_t inputs_length, double noise_density, double mean_span) {
  // T5's helper counts without the clamps of the mask itself (at least one noise token, one kept
  // token and one span); they agree for realistic lengths (the table of 128..2048). Counting with
  // them, as the mask does, keeps every sample within these lengths at the extremes too (an
  // encoder of 8 tokens, a density of 0.001, spans of a million tokens): the mask never has more
  // spans than CountNoise's, so inputs and targets are never longer.
  auto lengths = [&](int64_t raw) {
    const NoiseCounts n = CountNoise(raw, noise_density, mean_span);
    return SpanLengths{raw, raw - n.noise + n.spans + 1, n.noise + n.spans + 1};
  };
  int64_t raw = inputs_length - 1;
  while (lengths(raw + 1).inputs <= inputs_length) ++raw;
  SpanLengths out = lengths(raw);
  // T5's adjustment for density 0.5: targets no longer than the inputs.
  if (noise_density == 0.5 && out.targets > out.inputs) {
    out.raw -= 1;
    out.targets -= 1;
  }
  return out;
}

std::vector<bool> RandomSpansNoiseMask(int64_t length, double noise_density, double mean_span,
                                       Rng& rng) {
  const int64_t len = std::max<int64_t>(length, 2);
  const NoiseCounts c = CountNoise(length, noise_density, mean_span);
  // Never more spans than either side can fill with non-empty runs.
  const int64_t spans = std::min({c.spans, c.noise, len - c.noise});
  std::vector<int64_t> noise_runs = RandomSegmentation(c.noise, spans, rng);
  std::vector<int64_t> keep_runs = RandomSegmentation(len - c.noise, spans, rng);
  std::vector<bool> mask;
  mask.reserve(len);
  for (int64_t s = 0; s < spans; ++s) {
    mask.insert(mask.end(), keep_runs[s], false);
    mask.insert(mask.end(), noise_runs[s], true);
  }
  mask.resize(length);
  return mask;
}

SpanCorrupted ApplySpanCorruption(const std::vector<int64_t>& raw, const std::vector<bool>& noise,
                                  int64_t first_sentinel, int64_t eos) {
  SpanCorrupted out;
  int64_t sentinel = first_sentinel;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (noise[i]) {
      if (i == 0 || !noise[i - 1]) {  // a span starts: one sentinel on both sides
        out.inputs.push_back(sentinel);
        out.targets.push_back(sentinel);
        --sentinel;
      }
      out.targets.push_back(raw[i]);
    } else {
      out.inputs.push_back(raw[i]);
    }
  }
  out.inputs.push_back(eos);
  out.targets.push_back(eos);
  return out;
}

}  // namespace braid
