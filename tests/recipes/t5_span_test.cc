// T5 span corruption against T5's own arithmetic and its definition (docs/formats.md, "T5 span
// corruption"): the length table of random_spans_helper, noise fraction and mean span length
// over 100k tokens, each sample's span count from the formula (computed here independently),
// sentinels in order once each on both sides, inputs and targets merging back into the raw
// chunk, and the row the data builder writes (decoder inputs = pad + targets shifted right).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "recipes/seq2seq/seq2seq_batch.h"
#include "recipes/seq2seq/span_corruption.h"
#include "recipes/t5/t5_data.h"

namespace braid {
namespace {

// Python's round(): half to even.
int64_t PyRound(double x) {
  double f = std::floor(x), d = x - f;
  if (d > 0.5) return static_cast<int64_t>(f) + 1;
  if (d < 0.5) return static_cast<int64_t>(f);
  return static_cast<int64_t>(f) % 2 == 0 ? static_cast<int64_t>(f) : static_cast<int64_t>(f) + 1;
}

TEST(T5Span, LengthTableOfT5) {
  // random_spans_helper(inputs_length, 0.15, 3.0): T5's published lengths.
  const int64_t inputs[] = {128, 256, 512, 1024, 2048};
  const int64_t raw[] = {141, 284, 568, 1137, 2274};
  const int64_t targets[] = {29, 58, 114, 229, 456};
  for (int i = 0; i < 5; ++i) {
    SpanLengths l = T5SpanLengths(inputs[i], 0.15, 3.0);
    EXPECT_EQ(l.raw, raw[i]) << inputs[i];
    EXPECT_EQ(l.targets, targets[i]) << inputs[i];
    EXPECT_EQ(l.inputs, inputs[i]) << inputs[i];
  }
}

// Rebuilds the raw chunk: each sentinel of the inputs replaced by the tokens that follow the
// same sentinel in the targets.
std::vector<int64_t> Merge(const std::vector<int64_t>& inputs, const std::vector<int64_t>& targets,
                           int64_t first_sentinel, int64_t num_sentinels, int64_t eos) {
  auto is_sentinel = [&](int64_t t) {
    return t <= first_sentinel && t > first_sentinel - num_sentinels;
  };
  std::vector<int64_t> out;
  for (size_t i = 0; i + 1 < inputs.size(); ++i) {  // without the EOS
    if (!is_sentinel(inputs[i])) {
      out.push_back(inputs[i]);
      continue;
    }
    auto at = std::find(targets.begin(), targets.end(), inputs[i]);
    for (++at; at != targets.end() && !is_sentinel(*at) && *at != eos; ++at) out.push_back(*at);
  }
  return out;
}

TEST(T5Span, StatisticsAndStructureOver100kTokens) {
  const int64_t vocab = 1000, extra = 100, first = vocab - 1, eos = 1;
  const SpanLengths l = T5SpanLengths(512, 0.15, 3.0);
  int64_t tokens = 0, noise = 0, spans = 0;
  for (int64_t sample = 0; tokens < 100000; ++sample) {
    std::vector<int64_t> raw(l.raw);
    Rng data = Rng::Keyed(7, sample);
    for (auto& t : raw) t = 3 + static_cast<int64_t>(data.Below(vocab - extra - 3));
    Rng rng = Rng::Keyed(1234, sample);
    std::vector<bool> mask = RandomSpansNoiseMask(l.raw, 0.15, 3.0, rng);
    ASSERT_EQ(static_cast<int64_t>(mask.size()), l.raw);
    // The span count of T5's formula, computed here.
    const int64_t want_noise =
        std::min<int64_t>(std::max<int64_t>(PyRound(l.raw * 0.15), 1), l.raw - 1);
    const int64_t want_spans = std::max<int64_t>(PyRound(want_noise / 3.0), 1);
    int64_t n = 0, s = 0;
    for (int64_t i = 0; i < l.raw; ++i) {
      n += mask[i];
      s += mask[i] && (i == 0 || !mask[i - 1]);
    }
    ASSERT_EQ(n, want_noise) << sample;
    ASSERT_EQ(s, want_spans) << sample;
    ASSERT_FALSE(mask[0]) << "starts with non-noise";
    ASSERT_TRUE(mask[l.raw - 1]) << "ends with noise";
    SpanCorrupted c = ApplySpanCorruption(raw, mask, first, eos);
    ASSERT_EQ(static_cast<int64_t>(c.inputs.size()), l.inputs);
    ASSERT_EQ(static_cast<int64_t>(c.targets.size()), l.targets);
    ASSERT_EQ(c.inputs.back(), eos);
    ASSERT_EQ(c.targets.back(), eos);
    // Sentinels in order, once each, on both sides.
    for (const auto* side : {&c.inputs, &c.targets}) {
      int64_t next = first;
      for (int64_t t : *side) {
        if (t > first - extra && t <= first) {
          ASSERT_EQ(t, next) << sample;
          --next;
        }
      }
      ASSERT_EQ(first - next, want_spans) << sample;
    }
    ASSERT_EQ(c.targets[0], first);
    ASSERT_EQ(Merge(c.inputs, c.targets, first, extra, eos), raw) << sample;
    tokens += l.raw, noise += n, spans += s;
  }
  const double fraction = static_cast<double>(noise) / tokens;
  const double mean_span = static_cast<double>(noise) / spans;
  EXPECT_NEAR(fraction, 0.15, 0.005);
  EXPECT_NEAR(mean_span, 3.0, 0.1);
  // The segmentation is random: span lengths vary.
  Rng a = Rng::Keyed(1, 1), b = Rng::Keyed(1, 2);
  EXPECT_NE(RandomSpansNoiseMask(568, 0.15, 3.0, a), RandomSpansNoiseMask(568, 0.15, 3.0, b));
}

TEST(T5Span, SpanLengthsAreUniformCompositions) {
  // 6 noise tokens in 2 spans: the first span's length is uniform over 1..5.
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 50000; ++i) {
    Rng rng = Rng::Keyed(99, i);
    std::vector<bool> m = RandomSpansNoiseMask(40, 0.15, 3.0, rng);  // 6 noise, 2 spans
    int first_run = 0, k = 0;
    while (!m[k]) ++k;
    while (m[k]) ++first_run, ++k;
    ++counts[first_run];
  }
  for (int len = 1; len <= 5; ++len) EXPECT_NEAR(counts[len] / 50000.0, 0.2, 0.01) << len;
}

// A source of fixed chunks 10, 11, 12, ... (raw tokens) for the row check.
class Counting : public SampleSource {
 public:
  explicit Counting(int64_t len) : len_(len) {}
  int64_t size() const override { return 100; }
  int64_t sample_length() const override { return len_; }
  void Get(int64_t i, int64_t* out) const override {
    for (int64_t k = 0; k < len_; ++k) out[k] = 10 + i + k;
  }

 private:
  int64_t len_;
};

TEST(T5Span, RowsHoldShiftedTargetsAndPadding) {
  const SpanLengths l = T5SpanLengths(128, 0.15, 3.0);
  T5DataSpec spec;
  spec.enc_length = 130;  // two padding positions
  spec.dec_length = l.targets + 3;
  spec.first_sentinel = 999;
  spec.num_sentinels = 100;
  spec.eos = 1;
  spec.pad = 0;
  T5Samples samples(std::make_shared<Counting>(l.raw), spec);
  const Seq2SeqRow r(spec.enc_length, spec.dec_length);
  ASSERT_EQ(samples.sample_length(), r.length());
  std::vector<int64_t> row(r.length()), again(r.length());
  samples.Get(5, row.data());
  samples.Get(5, again.data());
  EXPECT_EQ(row, again) << "a sample is a function of its index";
  for (int64_t k = 0; k < r.enc; ++k) {
    EXPECT_EQ(row[r.input_padding() + k], k >= l.inputs ? 1 : 0) << k;
    if (k >= l.inputs) EXPECT_EQ(row[r.inputs() + k], 0);
  }
  EXPECT_EQ(row[r.inputs() + l.inputs - 1], 1) << "EOS ends the inputs";
  EXPECT_EQ(row[r.decoder_inputs()], 0) << "the decoder starts from pad";
  for (int64_t k = 1; k < r.dec; ++k) {
    const int64_t label = row[r.labels() + k - 1];
    if (label != -100) EXPECT_EQ(row[r.decoder_inputs() + k], label) << k;
  }
  for (int64_t k = 0; k < r.dec; ++k) {
    EXPECT_EQ(row[r.labels() + k] == -100, k >= l.targets) << k;
  }
  std::vector<int64_t> other(r.length());
  samples.Get(6, other.data());
  EXPECT_NE(row, other);
}

// Hardening (issue: "T5 settings the config ranges accept hit FATAL t5_data.cc"): encoders of 8
// and 9 tokens, a density of 0.001 and spans of a million tokens, among others, ended the run in
// an internal check. Every sample of every such setting must fit the lengths T5SpanLengths gives
// (the rows T5Samples lays out), and the sample builder must make its rows without failing.
TEST(T5Span, ExtremeSettingsStayWithinTheirLengths) {
  const double densities[] = {0.001, 0.01, 0.15, 0.5, 0.9, 0.999};
  const double means[] = {1.0, 3.0, 37.5, 1e6};
  int64_t checked = 0;
  for (int64_t seq : {8, 9, 10, 11, 13, 16, 24, 37, 64, 128}) {
    for (double density : densities) {
      for (double mean : means) {
        const SpanLengths l = T5SpanLengths(seq, density, mean);
        ASSERT_GE(l.raw, 1) << seq;
        ASSERT_LE(l.inputs, seq) << seq << " " << density << " " << mean;
        for (int64_t sample = 0; sample < 40; ++sample) {
          std::vector<int64_t> raw(l.raw);
          for (int64_t k = 0; k < l.raw; ++k) raw[k] = 10 + k;
          Rng rng = Rng::Keyed(99, static_cast<uint64_t>(sample));
          const std::vector<bool> mask = RandomSpansNoiseMask(l.raw, density, mean, rng);
          ASSERT_EQ(static_cast<int64_t>(mask.size()), l.raw);
          const SpanCorrupted c = ApplySpanCorruption(raw, mask, 999, 1);
          ASSERT_LE(static_cast<int64_t>(c.inputs.size()), l.inputs)
              << "seq " << seq << " density " << density << " mean " << mean;
          ASSERT_LE(static_cast<int64_t>(c.targets.size()), l.targets)
              << "seq " << seq << " density " << density << " mean " << mean;
          ++checked;
        }
        T5DataSpec spec;
        spec.enc_length = seq;
        spec.dec_length = l.targets;
        spec.noise_density = density;
        spec.mean_noise_span_length = mean;
        spec.first_sentinel = 999;
        spec.num_sentinels = 100;
        spec.eos = 1;
        spec.pad = 0;
        T5Samples samples(std::make_shared<Counting>(l.raw), spec);
        std::vector<int64_t> row(samples.sample_length());
        for (int64_t i = 0; i < 5; ++i) samples.Get(i, row.data());  // no internal check fires
      }
    }
  }
  EXPECT_EQ(checked, 10 * 6 * 4 * 40);
}

}  // namespace
}  // namespace braid
