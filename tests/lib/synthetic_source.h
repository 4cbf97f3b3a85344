// A learnable token stream for training tests: mostly t -> (7t + 3) mod 200, one token in eight
// (and the first of every sample) random. Sample i is a pure function of i.
#pragma once
#include "framework/data/loader.h"

namespace braid::testing {

class SyntheticSource : public SampleSource {
 public:
  explicit SyntheticSource(int64_t len) : len_(len) {}
  int64_t size() const override { return 1 << 20; }
  int64_t sample_length() const override { return len_; }
  void Get(int64_t i, int64_t* out) const override {
    uint64_t h = 0x9E3779B97F4A7C15ULL * (i + 1);
    for (int64_t k = 0; k < len_; ++k) {
      h ^= h >> 29;
      h *= 0xBF58476D1CE4E5B9ULL;
      bool random = k == 0 || (h >> 20) % 8 == 0;
      out[k] = random ? static_cast<int64_t>((h >> 33) % 200) : (out[k - 1] * 7 + 3) % 200;
    }
  }

 private:
  int64_t len_;
};

}  // namespace braid::testing
