// The T5 recipe's data: span corruption (span_corruption.h) over raw chunks of concatenated
// documents. The chunks are GPT samples (framework/data/gpt_dataset.h) of T5SpanLengths().raw
// tokens: documents shuffled per epoch and concatenated without a separator (sentence-split data
// joins a document's sentences), the sample order a seeded permutation, the index cached on disk.
// (A GPT sample starts on the last token of the one before it, so consecutive chunks share one
// token; T5 cuts them disjoint. One token in `raw` is not worth a second index format.)
// Everything random about sample i is drawn from Rng::Keyed(seed, i) over the global sample
// index (which runs on across epochs): the same on every TP rank, after a resume, at any DP size.
// A sample is one row (t5_batch.h): inputs padded with pad, decoder inputs = decoder start (pad)
// then the targets shifted right, labels = the targets with -100 at padding.
#pragma once
#include <memory>

#include "absl/status/statusor.h"
#include "framework/data/sample_source.h"
#include "recipes/seq2seq/span_corruption.h"

namespace braid {

struct T5DataSpec {
  int64_t enc_length = 0, dec_length = 0;  // row lengths (>= the span arithmetic's)
  double noise_density = 0.15;
  double mean_noise_span_length = 3.0;
  int64_t first_sentinel = -1;  // <extra_id_0>; sentinel k is first_sentinel - k
  int64_t num_sentinels = 0;    // at least the spans of a chunk
  int64_t eos = 1, pad = 0;
  uint64_t seed = 1234;
};

class T5Samples : public SampleSource {
 public:
  // `raw`: chunks of SpanLengthsOf(spec).raw tokens.
  T5Samples(std::shared_ptr<const SampleSource> raw, const T5DataSpec& spec);
  int64_t size() const override { return raw_->size(); }
  int64_t sample_length() const override;
  void Get(int64_t i, int64_t* out) const override;

 private:
  std::shared_ptr<const SampleSource> raw_;
  T5DataSpec spec_;
};

}  // namespace braid
