// The T5 family (see t5_family.h): the shared T5 model (recipes/seq2seq/t5_model.h) trained on
// span-corrupted samples (t5_data.h) of the data section.
#include "recipes/t5/t5_family.h"

#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/data/splits.h"
#include "recipes/seq2seq/t5_model.h"
#include "recipes/t5/t5_data.h"

namespace braid {
namespace {

class T5 : public T5ModelFamily {
 public:
  std::string name() const override { return "t5"; }
  std::string summary() const override {
    return "encoder-decoder with span corruption (T5 v1.1; original T5 as options)";
  }
  int64_t DecoderLength(const Config& c) const override { return T5DecoderLength(c); }

  absl::StatusOr<FamilyData> BuildData(const RunContext& ctx) const override {
    const Config& c = ctx.config;
    BRAID_ASSIGN_OR_RETURN(
        auto tok, RequiredTokenizerOf(
                      c, "the T5 recipe needs its tokenizer (for EOS, pad and the sentinels)"));
    BRAID_ASSIGN_OR_RETURN(const T5Specials sp, T5SpecialsOf(c, *tok, "T5"));
    const SpanLengths lengths = T5LengthsOf(c);
    T5DataSpec spec;
    spec.enc_length = c.model.seq_length;
    spec.dec_length = T5DecoderLength(c);
    spec.noise_density = c.data.noise_density;
    spec.mean_noise_span_length = c.data.mean_noise_span_length;
    spec.first_sentinel = sp.first_sentinel;
    spec.num_sentinels = sp.num_sentinels;
    spec.eos = sp.eos;
    spec.pad = sp.pad;
    BRAID_ASSIGN_OR_RETURN(
        DataSplits splits,
        BuildChunkSplits(ctx, lengths.raw,
                         [&](std::shared_ptr<const SampleSource> raw, uint64_t seed) {
                           T5DataSpec part = spec;
                           part.seed = seed;
                           return std::unique_ptr<SampleSource>(
                               std::make_unique<T5Samples>(std::move(raw), part));
                         }));
    FamilyData out;
    out.train = splits.split[0];
    out.valid = splits.split[1];
    out.notes.push_back(absl::StrFormat(
        "%s; encoder %d, decoder %d tokens from raw chunks of %d (noise %g, mean span %g)",
        T5ModelNote(c, ctx.sizes, spec.num_sentinels, "T5"), spec.enc_length, spec.dec_length,
        lengths.raw, c.data.noise_density, c.data.mean_noise_span_length));
    if (ctx.layout.rank == 0 && out.train != nullptr) {
      out.notes.push_back(MostFrequentTargetNote(
          *out.train, Seq2SeqRow(spec.enc_length, spec.dec_length), ctx.sizes.vocab_size, *tok));
    }
    return out;
  }

 protected:
  std::vector<std::string> DataKeys() const override {
    return {"data.noise_density", "data.mean_noise_span_length"};
  }

  absl::Status CheckData(const Config& c) const override {
    const SpanLengths l = T5LengthsOf(c);
    if (c.model.seq_length < 8) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%smodel.seq_length: %d leaves no room for span corruption. HINT: use a longer encoder "
          "(128 and up as T5 does).",
          c.Where("model.seq_length"), c.model.seq_length));
    }
    if (c.model.decoder_seq_length > 0 && c.model.decoder_seq_length < l.targets) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%smodel.decoder_seq_length: %d, but an encoder of %d tokens makes targets of %d "
          "(T5's span arithmetic). HINT: set it to %d or more, or 0 (then it is %d).",
          c.Where("model.decoder_seq_length"), c.model.decoder_seq_length, c.model.seq_length,
          l.targets, l.targets, l.targets));
    }
    const int64_t spans =
        CountNoise(l.raw, c.data.noise_density, c.data.mean_noise_span_length).spans;
    if (c.data.vocab_extra_ids < spans) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%sdata.vocab_extra_ids: %d sentinels, but a chunk of %d tokens has %d noise spans, "
          "each needing its own. HINT: set data.vocab_extra_ids: 100 (T5's).",
          c.Where("data.vocab_extra_ids"), c.data.vocab_extra_ids, l.raw, spans));
    }
    return absl::OkStatus();
  }
};

}  // namespace

SpanLengths T5LengthsOf(const Config& c) {
  return T5SpanLengths(c.model.seq_length, c.data.noise_density, c.data.mean_noise_span_length);
}

int64_t T5DecoderLength(const Config& c) {
  return c.model.decoder_seq_length > 0 ? c.model.decoder_seq_length : T5LengthsOf(c).targets;
}

const Family& T5Family() {
  static const T5 kT5;
  return kT5;
}

}  // namespace braid
