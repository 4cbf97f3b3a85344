// A dataset of fixed-length token samples, indexed 0..size()-1 in its global (already shuffled)
// order. GPT splits, blends of them, and later the BERT/T5/BART sample builders implement it;
// the distributed sampler and the loader know nothing else about the data.
#pragma once
#include <cstdint>

namespace braid {

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual int64_t size() const = 0;
  // Tokens per sample (GPT: seq_len + 1).
  virtual int64_t sample_length() const = 0;
  // Writes sample `i` (0 <= i < size()) to out[0 .. sample_length()). Thread-safe.
  virtual void Get(int64_t i, int64_t* out) const = 0;
};

}  // namespace braid
