// The UL2 family (see ul2_family.h): the T5 model, UL2's mixture of denoisers as its data.
#include "recipes/ul2/ul2_family.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "recipes/seq2seq/t5_model.h"

namespace braid {
namespace {

class Ul2 : public T5ModelFamily {
 public:
  std::string name() const override { return "ul2"; }
  std::string summary() const override {
    return "encoder-decoder with UL2's mixture of denoisers (R, X, S; the T5 v1.1 model)";
  }
  // The decoder as long as the encoder unless set: the S-denoiser's targets are up to a chunk.
  int64_t DecoderLength(const Config& c) const override {
    return c.model.decoder_seq_length > 0 ? c.model.decoder_seq_length : c.model.seq_length;
  }

  absl::StatusOr<FamilyData> BuildData(const RunContext& ctx) const override {
    const Config& c = ctx.config;
    BRAID_ASSIGN_OR_RETURN(
        auto tok,
        RequiredTokenizerOf(
            c,
            "the UL2 recipe needs its tokenizer (for EOS, pad, the sentinels and the paradigm "
            "tokens)"));
    BRAID_ASSIGN_OR_RETURN(const T5Specials sp, T5SpecialsOf(c, *tok, "UL2"));
    BRAID_ASSIGN_OR_RETURN(const Ul2Mixture mix, Ul2MixtureOf(c));
    Ul2DataSpec spec;
    spec.enc_length = c.model.seq_length;
    spec.dec_length = DecoderLength(c);
    spec.denoisers = mix.denoisers;
    spec.weights = mix.weights;
    spec.first_sentinel = sp.first_sentinel;
    spec.eos = sp.eos;
    spec.pad = sp.pad;
    for (Denoiser::Kind kind : {Denoiser::Kind::kR, Denoiser::Kind::kX, Denoiser::Kind::kS}) {
      const std::string token = ParadigmToken(kind);
      const std::vector<int32_t> ids = tok->Encode(token);
      if (ids.size() != 1 || tok->IdToToken(ids[0]) != token) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: the paradigm token %s is not one token of this tokenizer. HINT: list it in "
            "data.added_tokens (recipes/ul2/base.yaml lists all three).",
            c.data.vocab_file, token));
      }
      spec.paradigm_ids[static_cast<int>(kind)] = ids[0];
    }
    const Ul2Lengths lengths = Ul2LengthsOf(spec.denoisers, spec.enc_length, spec.dec_length);
    BRAID_ASSIGN_OR_RETURN(
        DataSplits splits,
        BuildChunkSplits(ctx, lengths.raw,
                         [&](std::shared_ptr<const SampleSource> raw, uint64_t seed) {
                           Ul2DataSpec part = spec;
                           part.seed = seed;
                           return std::unique_ptr<SampleSource>(
                               std::make_unique<Ul2Samples>(std::move(raw), part));
                         }));
    FamilyData out;
    out.train = splits.split[0];
    out.valid = splits.split[1];
    std::vector<std::string> mixture;
    double total = 0;
    for (double w : mix.weights) total += w;
    for (size_t k = 0; k < mix.denoisers.size(); ++k) {
      mixture.push_back(absl::StrFormat("%s %.1f%%", DenoiserName(mix.denoisers[k]),
                                        100.0 * mix.weights[k] / total));
    }
    out.notes.push_back(absl::StrFormat(
        "%s; encoder %d, decoder %d tokens from raw chunks of %d; denoisers %s; S splits in "
        "[%d, %d]",
        T5ModelNote(c, ctx.sizes, sp.num_sentinels, "UL2"), spec.enc_length, spec.dec_length,
        lengths.raw, absl::StrJoin(mixture, ", "), lengths.min_split, lengths.max_split));
    if (ctx.layout.rank == 0 && out.train != nullptr) {
      out.notes.push_back(MostFrequentTargetNote(
          *out.train, Seq2SeqRow(spec.enc_length, spec.dec_length), ctx.sizes.vocab_size, *tok));
    }
    return out;
  }

 protected:
  std::vector<std::string> DataKeys() const override {
    return {"data.denoisers", "data.denoiser_weights"};
  }

  absl::Status CheckData(const Config& c) const override {
    if (c.model.seq_length < 8) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%smodel.seq_length: %d leaves no room for the denoisers. HINT: use 128 or more (UL2: "
          "512).",
          c.Where("model.seq_length"), c.model.seq_length));
    }
    BRAID_ASSIGN_OR_RETURN(const Ul2Mixture mix, Ul2MixtureOf(c));
    const int64_t dec = DecoderLength(c);
    const Ul2Lengths l = Ul2LengthsOf(mix.denoisers, c.model.seq_length, dec);
    if (l.max_targets > dec) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%smodel.decoder_seq_length: %d, but chunks of %d tokens make targets of up to %d. "
          "HINT: set it to %d or more, or 0 (then it is model.seq_length).",
          c.Where("model.decoder_seq_length"), dec, l.raw, l.max_targets, l.max_targets));
    }
    bool has_s = false;
    for (const Denoiser& d : mix.denoisers) has_s = has_s || d.kind == Denoiser::Kind::kS;
    if (has_s && l.min_split > l.max_split) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%smodel.decoder_seq_length: %d leaves the S-denoiser no split point of a chunk of %d "
          "tokens into an encoder of %d. HINT: set it to 0 (as long as the encoder).",
          c.Where("model.decoder_seq_length"), dec, l.raw, c.model.seq_length));
    }
    if (c.data.vocab_extra_ids < l.max_spans) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%sdata.vocab_extra_ids: %d sentinels, but a chunk of %d tokens has up to %d noise "
          "spans, each needing its own. HINT: set data.vocab_extra_ids: %d or more (T5: 100).",
          c.Where("data.vocab_extra_ids"), c.data.vocab_extra_ids, l.raw, l.max_spans,
          l.max_spans));
    }
    for (Denoiser::Kind kind : {Denoiser::Kind::kR, Denoiser::Kind::kX, Denoiser::Kind::kS}) {
      const std::string token = ParadigmToken(kind);
      if (std::find(c.data.added_tokens.begin(), c.data.added_tokens.end(), token) ==
          c.data.added_tokens.end()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%sdata.added_tokens: no %s, UL2's paradigm token of %s-denoisers. HINT: add "
            "['[NLU]', '[NLG]', '[S2S]'] (recipes/ul2/base.yaml does).",
            c.Where("data.added_tokens"), token,
            kind == Denoiser::Kind::kR ? "R" : (kind == Denoiser::Kind::kX ? "X" : "S")));
      }
    }
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<Ul2Mixture> Ul2MixtureOf(const Config& c) {
  Ul2Mixture m;
  if (c.data.denoisers.empty()) {
    m.denoisers = DefaultDenoisers();
  } else {
    for (const std::string& text : c.data.denoisers) {
      absl::StatusOr<Denoiser> d = ParseDenoiser(text);
      if (!d.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(c.Where("data.denoisers"), "data.denoisers: ", d.status().message()));
      }
      m.denoisers.push_back(*d);
    }
  }
  m.weights = c.data.denoiser_weights;
  if (m.weights.empty()) m.weights.assign(m.denoisers.size(), 1.0);
  if (m.weights.size() != m.denoisers.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%sdata.denoiser_weights: %d weights for %d denoisers%s. HINT: give one weight per "
        "denoiser, in the same order, or none for equal weights.",
        c.Where("data.denoiser_weights"), m.weights.size(), m.denoisers.size(),
        c.data.denoisers.empty() ? " (the default seven: R(3, 0.15), R(8, 0.15), X(3, 0.5), "
                                   "X(8, 0.5), X(64, 0.15), X(64, 0.5), S)"
                                 : ""));
  }
  double total = 0;
  for (double w : m.weights) total += w;
  if (total <= 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%sdata.denoiser_weights: every weight is 0. HINT: give at least one denoiser a positive "
        "weight.",
        c.Where("data.denoiser_weights")));
  }
  return m;
}

const Family& Ul2Family() {
  static const Ul2 kUl2;
  return kUl2;
}

}  // namespace braid
