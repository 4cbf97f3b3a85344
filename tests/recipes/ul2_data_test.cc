// UL2's mixture of denoisers (recipes/ul2/ul2_data.h) against closed forms: each span denoiser's
// noise fraction, span count per sample (T5's formula, computed here independently) and mean span
// length over >= 100k tokens; the S-denoiser's split points uniform over their range (a chi-square
// test) with the prefix in the encoder and the rest as the target; the mixture's proportions
// within 1% of the weights over 20k samples; the paradigm token of each sample's denoiser first
// in its encoder input; every sample merging back into its raw chunk.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>

#include "recipes/seq2seq/seq2seq_batch.h"
#include "recipes/seq2seq/span_corruption.h"
#include "recipes/ul2/ul2_data.h"

namespace braid {
namespace {

constexpr int64_t kVocab = 1000, kFirstSentinel = kVocab - 1, kEos = 1, kPad = 0;
constexpr int64_t kParadigm[3] = {850, 851, 852};  // below the sentinels (999 .. 900)

// Python's round(): half to even.
int64_t PyRound(double x) {
  const double f = std::floor(x), d = x - f;
  if (d != 0.5) return static_cast<int64_t>(d > 0.5 ? f + 1 : f);
  return static_cast<int64_t>(f) % 2 == 0 ? static_cast<int64_t>(f) : static_cast<int64_t>(f) + 1;
}

// Raw chunks of random ordinary tokens (3 .. 799).
class RandomChunks : public SampleSource {
 public:
  explicit RandomChunks(int64_t length) : length_(length) {}
  int64_t size() const override { return int64_t{1} << 30; }
  int64_t sample_length() const override { return length_; }
  void Get(int64_t i, int64_t* out) const override {
    Rng rng = Rng::Keyed(99, static_cast<uint64_t>(i));
    for (int64_t k = 0; k < length_; ++k) out[k] = 3 + static_cast<int64_t>(rng.Below(797));
  }

 private:
  int64_t length_;
};

struct Sample {
  std::vector<int64_t> raw, inputs, targets;
};

class Ul2Fixture {
 public:
  Ul2Fixture(std::vector<Denoiser> denoisers, std::vector<double> weights, int64_t enc = 128,
             int64_t dec = 128) {
    spec_.enc_length = enc;
    spec_.dec_length = dec;
    spec_.denoisers = std::move(denoisers);
    spec_.weights = std::move(weights);
    for (int k = 0; k < 3; ++k) spec_.paradigm_ids[k] = kParadigm[k];
    spec_.first_sentinel = kFirstSentinel;
    spec_.eos = kEos;
    spec_.pad = kPad;
    spec_.seed = 4321;
    lengths_ = Ul2LengthsOf(spec_.denoisers, enc, dec);
    raw_ = std::make_shared<RandomChunks>(lengths_.raw);
    samples_ = std::make_unique<Ul2Samples>(raw_, spec_);
  }
  Sample Get(int64_t i) const {
    Sample s;
    s.raw.resize(lengths_.raw);
    raw_->Get(i, s.raw.data());
    const Seq2SeqRow r(spec_.enc_length, spec_.dec_length);
    std::vector<int64_t> row(samples_->sample_length());
    samples_->Get(i, row.data());
    for (int64_t k = 0; k < r.enc && row[r.input_padding() + k] == 0; ++k)
      s.inputs.push_back(row[r.inputs() + k]);
    for (int64_t k = 0; k < r.dec && row[r.labels() + k] != -100; ++k) {
      s.targets.push_back(row[r.labels() + k]);
      // The decoder inputs are the targets shifted right after the decoder start (pad).
      EXPECT_EQ(row[r.decoder_inputs() + k], k == 0 ? kPad : row[r.labels() + k - 1]);
    }
    return s;
  }
  const Ul2Samples& samples() const { return *samples_; }
  const Ul2Lengths& lengths() const { return lengths_; }

 private:
  Ul2DataSpec spec_;
  Ul2Lengths lengths_;
  std::shared_ptr<RandomChunks> raw_;
  std::unique_ptr<Ul2Samples> samples_;
};

bool IsSentinel(int64_t t) { return t > kFirstSentinel - 100 && t <= kFirstSentinel; }

TEST(Ul2, SpanDenoisersMatchT5sFormulaOver100kTokens) {
  for (const Denoiser& d : DefaultDenoisers()) {
    if (d.kind == Denoiser::Kind::kS) continue;
    Ul2Fixture f({d}, {1.0});
    const int64_t raw = f.lengths().raw;
    // T5's formula, here: noise = round(raw x rate) in [1, raw - 1], spans = max(1, round(noise
    // / mean)), never more than either side can fill.
    const int64_t want_noise =
        std::min<int64_t>(std::max<int64_t>(PyRound(raw * d.rate), 1), raw - 1);
    const int64_t want_spans = std::min<int64_t>(
        {std::max<int64_t>(PyRound(want_noise / d.mean_span), 1), want_noise, raw - want_noise});
    int64_t tokens = 0, noise = 0, spans = 0;
    for (int64_t i = 0; tokens < 100000; ++i) {
      const Sample s = f.Get(i);
      ASSERT_EQ(s.inputs[0], kParadigm[static_cast<int>(d.kind)]) << DenoiserName(d);
      // Merge back: every input token is kept raw text or a sentinel standing for its span.
      std::vector<int64_t> merged;
      int64_t n = 0, sp = 0;
      for (size_t k = 1; k + 1 < s.inputs.size(); ++k) {
        if (!IsSentinel(s.inputs[k])) {
          merged.push_back(s.inputs[k]);
          continue;
        }
        ++sp;
        auto at = std::find(s.targets.begin(), s.targets.end(), s.inputs[k]);
        ASSERT_NE(at, s.targets.end());
        for (++at; at != s.targets.end() && !IsSentinel(*at) && *at != kEos; ++at) {
          merged.push_back(*at);
          ++n;
        }
      }
      ASSERT_EQ(s.inputs.back(), kEos);
      ASSERT_EQ(s.targets.back(), kEos);
      ASSERT_EQ(merged, s.raw) << DenoiserName(d) << " sample " << i;
      ASSERT_EQ(n, want_noise) << DenoiserName(d);
      ASSERT_EQ(sp, want_spans) << DenoiserName(d);
      tokens += raw;
      noise += n;
      spans += sp;
    }
    EXPECT_NEAR(static_cast<double>(noise) / tokens, d.rate, 0.5 / raw + 1e-9) << DenoiserName(d);
    // Mean span length: the formula's noise / spans (rounded through the span count; X(64, 0.15) on
    // chunks of 140 tokens is one span of 21).
    EXPECT_NEAR(static_cast<double>(noise) / spans, static_cast<double>(want_noise) / want_spans,
                1e-9)
        << DenoiserName(d);
  }
}

TEST(Ul2, SDenoiserSplitsUniformlyAndKeepsTheOrder) {
  Ul2Fixture f({Denoiser{Denoiser::Kind::kS, 0, 0}}, {1.0}, 128, 64);
  const Ul2Lengths& l = f.lengths();
  // A chunk of raw tokens: the prefix [S2S] + p + EOS fits 128, the rest + EOS fits 64.
  EXPECT_EQ(l.max_split, std::min(l.raw - 1, int64_t{126}));
  EXPECT_EQ(l.min_split, std::max<int64_t>(1, l.raw + 1 - 64));
  const int64_t range = l.max_split - l.min_split + 1;
  ASSERT_GT(range, 10);
  std::vector<int64_t> counts(range, 0);
  int64_t tokens = 0, n = 0;
  for (int64_t i = 0; tokens < 100000 || n < 200 * range; ++i, ++n) {
    const Sample s = f.Get(i);
    const int64_t p = f.samples().SplitOf(i);
    ASSERT_GE(p, l.min_split);
    ASSERT_LE(p, l.max_split);
    ++counts[p - l.min_split];
    ASSERT_EQ(s.inputs.front(), kParadigm[2]);
    ASSERT_EQ(static_cast<int64_t>(s.inputs.size()), p + 2);
    ASSERT_TRUE(std::equal(s.raw.begin(), s.raw.begin() + p, s.inputs.begin() + 1));
    ASSERT_EQ(s.inputs.back(), kEos);
    ASSERT_EQ(static_cast<int64_t>(s.targets.size()), l.raw - p + 1);
    ASSERT_TRUE(std::equal(s.raw.begin() + p, s.raw.end(), s.targets.begin()));
    ASSERT_EQ(s.targets.back(), kEos);
    tokens += l.raw;
  }
  // Chi-square against the uniform law: range - 1 degrees of freedom; the 99.9% quantile is
  // below df + 4.5 sqrt(2 df) + 12 for these sizes.
  const double expect = static_cast<double>(n) / range;
  double chi2 = 0;
  for (int64_t c : counts) chi2 += (c - expect) * (c - expect) / expect;
  const double df = static_cast<double>(range - 1);
  EXPECT_LT(chi2, df + 4.5 * std::sqrt(2 * df) + 12) << "split points are not uniform";
  EXPECT_GT(chi2, df - 4.5 * std::sqrt(2 * df)) << "split points too even to be random";
}

TEST(Ul2, MixtureProportionsAndParadigmTokens) {
  const std::vector<double> weights = {1, 1, 2, 1, 1, 3, 1};
  Ul2Fixture f(DefaultDenoisers(), weights);
  const std::vector<Denoiser> d = DefaultDenoisers();
  std::vector<int64_t> counts(d.size(), 0);
  const int64_t n = 20000;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = f.samples().DenoiserOf(i);
    ++counts[k];
    const Sample s = f.Get(i);
    ASSERT_EQ(s.inputs[0], kParadigm[static_cast<int>(d[k].kind)]) << i;
    // Each sample's denoiser shows: the S-denoiser keeps a prefix (no sentinel), the others
    // corrupt spans (sentinels on both sides).
    const bool sentinels =
        std::any_of(s.inputs.begin(), s.inputs.end(), [](int64_t t) { return IsSentinel(t); });
    ASSERT_EQ(sentinels, d[k].kind != Denoiser::Kind::kS) << i;
  }
  const double total = 10;
  for (size_t k = 0; k < d.size(); ++k) {
    EXPECT_NEAR(static_cast<double>(counts[k]) / n, weights[k] / total, 0.01) << DenoiserName(d[k]);
  }
}

TEST(Ul2, EverySampleFitsItsRowAtEveryLength) {
  // Ul2Samples::Get checks that inputs and targets fit (a failure aborts): the lengths of every
  // denoiser at short and long encoders, with a decoder as long as the longest span target.
  for (int64_t enc : {16, 33, 128, 512}) {
    const Ul2Lengths l = Ul2LengthsOf(DefaultDenoisers(), enc, enc);
    ASSERT_LE(l.max_targets, enc) << enc;
    Ul2Fixture f(DefaultDenoisers(), std::vector<double>(7, 1.0), enc, enc);
    for (int64_t i = 0; i < 300; ++i) (void)f.Get(i);
  }
}

TEST(Ul2, ParsesAndRefusesDenoisers) {
  absl::StatusOr<Denoiser> r = ParseDenoiser("R 3 0.15");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, Denoiser::Kind::kR);
  EXPECT_EQ(r->mean_span, 3.0);
  EXPECT_EQ(r->rate, 0.15);
  EXPECT_EQ(ParseDenoiser("X 64 0.5")->kind, Denoiser::Kind::kX);
  EXPECT_EQ(ParseDenoiser("S")->kind, Denoiser::Kind::kS);
  for (const char* bad : {"Q 3 0.15", "R 3", "R 0.5 0.15", "X 3 1.5", "R three 0.1", "", "S 3"}) {
    EXPECT_FALSE(ParseDenoiser(bad).ok()) << bad;
  }
  EXPECT_NE(std::string(ParseDenoiser("X 3 1.5").status().message()).find("HINT"),
            std::string::npos);
}

}  // namespace
}  // namespace braid
