// UL2 samples (see ul2_data.h).
#include "recipes/ul2/ul2_data.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "framework/core/check.h"
#include "recipes/seq2seq/seq2seq_batch.h"
#include "recipes/seq2seq/span_corruption.h"

namespace braid {

std::vector<Denoiser> DefaultDenoisers() {
  using K = Denoiser::Kind;
  return {{K::kR, 3, 0.15},  {K::kR, 8, 0.15}, {K::kX, 3, 0.5}, {K::kX, 8, 0.5},
          {K::kX, 64, 0.15}, {K::kX, 64, 0.5}, {K::kS, 0, 0}};
}

absl::StatusOr<Denoiser> ParseDenoiser(const std::string& text) {
  const std::vector<std::string> parts = absl::StrSplit(text, ' ', absl::SkipWhitespace());
  Denoiser d;
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' ", why,
        ". HINT: write \"R <mean span> <rate>\" or \"X <mean span> <rate>\" (span corruption: "
        "\"R 3 0.15\", \"X 64 0.5\") or \"S\" (prefix LM)."));
  };
  if (parts.size() == 1 && parts[0] == "S") {
    d.kind = Denoiser::Kind::kS;
    d.mean_span = d.rate = 0;
    return d;
  }
  if (parts.size() != 3 || (parts[0] != "R" && parts[0] != "X")) return bad("is not a denoiser");
  d.kind = parts[0] == "R" ? Denoiser::Kind::kR : Denoiser::Kind::kX;
  if (!absl::SimpleAtod(parts[1], &d.mean_span) || !(d.mean_span >= 1 && d.mean_span <= 1e6)) {
    return bad("has no mean span length in [1, 1e6]");
  }
  if (!absl::SimpleAtod(parts[2], &d.rate) || !(d.rate > 0 && d.rate < 1)) {
    return bad("has no corruption rate in (0, 1)");
  }
  return d;
}

std::string DenoiserName(const Denoiser& d) {
  if (d.kind == Denoiser::Kind::kS) return "S";
  return absl::StrFormat("%s(%g, %g)", d.kind == Denoiser::Kind::kR ? "R" : "X", d.mean_span,
                         d.rate);
}

const char* ParadigmToken(Denoiser::Kind kind) {
  switch (kind) {
    case Denoiser::Kind::kR:
      return "[NLU]";
    case Denoiser::Kind::kX:
      return "[NLG]";
    case Denoiser::Kind::kS:
      return "[S2S]";
  }
  return "";
}

Ul2Lengths Ul2LengthsOf(const std::vector<Denoiser>& denoisers, int64_t enc, int64_t dec) {
  Ul2Lengths l;
  l.raw = 0;
  for (const Denoiser& d : denoisers) {  // the paradigm token takes one encoder position
    if (d.kind == Denoiser::Kind::kS) continue;
    const int64_t raw = T5SpanLengths(enc - 1, d.rate, d.mean_span).raw;
    l.raw = l.raw == 0 ? raw : std::min(l.raw, raw);
  }
  if (l.raw == 0) l.raw = enc - 1;  // the S-denoiser alone: prefixes up to the encoder's length
  l.raw = std::max<int64_t>(l.raw, 2);
  for (const Denoiser& d : denoisers) {
    if (d.kind == Denoiser::Kind::kS) continue;
    const NoiseCounts n = CountNoise(l.raw, d.rate, d.mean_span);
    l.max_targets = std::max(l.max_targets, n.noise + n.spans + 1);
    l.max_spans = std::max(l.max_spans, n.spans);
  }
  // A prefix of p tokens: [S2S] + p + EOS in the encoder; the other raw - p + EOS as the target.
  l.min_split = std::max<int64_t>(1, l.raw + 1 - dec);
  l.max_split = std::min<int64_t>(l.raw - 1, enc - 2);
  return l;
}

Ul2Samples::Ul2Samples(std::shared_ptr<const SampleSource> raw, const Ul2DataSpec& spec)
    : raw_(std::move(raw)),
      spec_(spec),
      lengths_(Ul2LengthsOf(spec.denoisers, spec.enc_length, spec.dec_length)) {
  BRAID_CHECK(spec_.weights.size() == spec_.denoisers.size() && !spec_.denoisers.empty());
  double total = 0;
  for (double w : spec_.weights) cumulative_.push_back(total += w);
  BRAID_CHECK(total > 0);
}

int64_t Ul2Samples::sample_length() const {
  return Seq2SeqRow(spec_.enc_length, spec_.dec_length).length();
}

Ul2Samples::Draw Ul2Samples::DrawOf(Rng& rng) const {
  Draw d;
  const double u = rng.Uniform() * cumulative_.back();
  // u < total: the first denoiser whose cumulative weight exceeds it (never one of weight 0).
  d.denoiser = std::upper_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin();
  if (spec_.denoisers[d.denoiser].kind == Denoiser::Kind::kS) {
    d.split = lengths_.min_split + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(
                                       lengths_.max_split - lengths_.min_split + 1)));
  }
  return d;
}

int64_t Ul2Samples::DenoiserOf(int64_t i) const {
  Rng rng = Rng::Keyed(spec_.seed, static_cast<uint64_t>(i));
  return DrawOf(rng).denoiser;
}

int64_t Ul2Samples::SplitOf(int64_t i) const {
  Rng rng = Rng::Keyed(spec_.seed, static_cast<uint64_t>(i));
  return DrawOf(rng).split;
}

void Ul2Samples::Get(int64_t i, int64_t* out) const {
  std::vector<int64_t> raw(raw_->sample_length());
  raw_->Get(i, raw.data());
  Rng rng = Rng::Keyed(spec_.seed, static_cast<uint64_t>(i));
  const Draw draw = DrawOf(rng);
  const Denoiser& d = spec_.denoisers[draw.denoiser];
  std::vector<int64_t> inputs = {spec_.paradigm_ids[static_cast<int>(d.kind)]}, targets;
  if (d.kind == Denoiser::Kind::kS) {
    inputs.insert(inputs.end(), raw.begin(), raw.begin() + draw.split);
    inputs.push_back(spec_.eos);
    targets.assign(raw.begin() + draw.split, raw.end());
    targets.push_back(spec_.eos);
  } else {
    const std::vector<bool> noise =
        RandomSpansNoiseMask(static_cast<int64_t>(raw.size()), d.rate, d.mean_span, rng);
    SpanCorrupted s = ApplySpanCorruption(raw, noise, spec_.first_sentinel, spec_.eos);
    inputs.insert(inputs.end(), s.inputs.begin(), s.inputs.end());
    targets = std::move(s.targets);
  }
  const Seq2SeqRow r(spec_.enc_length, spec_.dec_length);
  BRAID_CHECK(static_cast<int64_t>(inputs.size()) <= r.enc &&
              static_cast<int64_t>(targets.size()) <= r.dec);
  WriteSeq2SeqRow(r, inputs, targets, spec_.pad, out);
}

}  // namespace braid
