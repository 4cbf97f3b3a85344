// T5 samples (see t5_data.h).
#include "recipes/t5/t5_data.h"

#include <algorithm>

#include "framework/core/check.h"
#include "recipes/seq2seq/seq2seq_batch.h"

namespace braid {

T5Samples::T5Samples(std::shared_ptr<const SampleSource> raw, const T5DataSpec& spec)
    : raw_(std::move(raw)), spec_(spec) {}

int64_t T5Samples::sample_length() const {
  return Seq2SeqRow(spec_.enc_length, spec_.dec_length).length();
}

void T5Samples::Get(int64_t i, int64_t* out) const {
  std::vector<int64_t> raw(raw_->sample_length());
  raw_->Get(i, raw.data());
  Rng rng = Rng::Keyed(spec_.seed, static_cast<uint64_t>(i));
  std::vector<bool> noise = RandomSpansNoiseMask(
      static_cast<int64_t>(raw.size()), spec_.noise_density, spec_.mean_noise_span_length, rng);
  SpanCorrupted s = ApplySpanCorruption(raw, noise, spec_.first_sentinel, spec_.eos);
  const Seq2SeqRow r(spec_.enc_length, spec_.dec_length);
  BRAID_CHECK(static_cast<int64_t>(s.inputs.size()) <= r.enc &&
              static_cast<int64_t>(s.targets.size()) <= r.dec);
  WriteSeq2SeqRow(r, s.inputs, s.targets, spec_.pad, out);
}

}  // namespace braid
