// Deterministic random numbers for data pipelines: the same stream on every machine and standard
// library (std::shuffle and std::uniform_int_distribution are implementation-defined, so index
// files and masks built with them would differ between toolchains). SplitMix64 generator,
// unbiased bounded integers by rejection, Fisher-Yates shuffle.
#pragma once
#include <cstdint>
#include <vector>

namespace braid {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  // A stream keyed by several values (seed, epoch, sample index, ...).
  static Rng Keyed(uint64_t a, uint64_t b = 0, uint64_t c = 0) {
    Rng r(a);
    r.state_ ^= Mix(b + 0x9E3779B97F4A7C15ULL);
    r.state_ ^= Mix(c + 0xD1B54A32D192ED03ULL);
    return r;
  }
  uint64_t Next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return Mix(state_);
  }
  // Uniform in [0, n), n > 0.
  uint64_t Below(uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
      x = Next();
    } while (x >= limit);
    return x % n;
  }
  // Uniform in [0, 1).
  double Uniform() { return (Next() >> 11) * 0x1.0p-53; }

  template <typename T>
  void Shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(Below(i));
      std::swap(v[i - 1], v[j]);
    }
  }

 private:
  static uint64_t Mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

}  // namespace braid
