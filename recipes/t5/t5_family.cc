// The T5 family (see t5_family.h): a T5Model from the model section, span-corrupted samples
// (t5_data.h) from the data section, the decoder's cross entropy as the objective (t5_task.h),
// T5ForConditionalGeneration's Hugging Face layout (t5_hf.cc), and generation that fills in
// sentinels.
#include "recipes/t5/t5_family.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/data/gpt_data.h"
#include "framework/models/t5.h"
#include "recipes/seq2seq_generator.h"
#include "recipes/t5/t5_batch.h"
#include "recipes/t5/t5_data.h"
#include "recipes/t5/t5_task.h"

namespace braid {
namespace {

// Random T5 rows (benchmarks).
class RandomT5Rows : public SampleSource {
 public:
  RandomT5Rows(int64_t enc, int64_t dec, int64_t vocab) : row_(enc, dec), vocab_(vocab) {}
  int64_t size() const override { return int64_t{1} << 40; }
  int64_t sample_length() const override { return row_.length(); }
  void Get(int64_t i, int64_t* out) const override { RandomSeq2SeqRow(i, row_, vocab_, out); }

 private:
  T5Row row_;
  int64_t vocab_;
};

absl::StatusOr<T5Config> T5ConfigFrom(const Config& c, const DerivedSizes& s) {
  T5Config t;
  t.encoder_layers = c.model.num_layers;
  t.decoder_layers =
      c.model.decoder_num_layers > 0 ? c.model.decoder_num_layers : c.model.num_layers;
  t.vocab_size = s.vocab_size;
  t.padded_vocab = s.padded_vocab_size;
  t.num_buckets = c.model.relative_attention_num_buckets;
  t.max_distance = c.model.relative_attention_max_distance;
  t.tie_embeddings = c.model.tie_embeddings;
  BRAID_ASSIGN_OR_RETURN(t.block, BlockConfigFrom(c, s));
  return t;
}

class T5 : public Family {
 public:
  std::string name() const override { return "t5"; }
  std::string summary() const override {
    return "encoder-decoder with span corruption (T5 v1.1; original T5 as options)";
  }

  absl::Status Check(const Config& c) const override {
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
    const int64_t tp = c.parallel.tensor_parallel_size, decoder = T5DecoderLength(c);
    if (c.parallel.sequence_parallel && decoder % tp != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%sparallel.sequence_parallel: the decoder's %d positions do not split over "
          "parallel.tensor_parallel_size = %d ranks. HINT: set model.decoder_seq_length to a "
          "multiple of %d (at least %d), or turn sequence parallelism off.",
          c.Where("parallel.sequence_parallel"), decoder, tp, tp, l.targets));
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

  int64_t ParameterCount(const Config& c, const DerivedSizes& s) const override {
    const int64_t h = c.model.hidden_size, f = s.ffn_hidden_size;
    const int64_t heads = c.model.num_attention_heads;
    const int64_t a = heads * (c.model.kv_channels > 0 ? c.model.kv_channels : h / heads);
    const bool gated = c.model.activation == "geglu" || c.model.activation == "geglu_tanh";
    const int64_t attention = 4 * h * a, mlp = (gated ? 3 : 2) * h * f;
    const int64_t enc = c.model.num_layers;
    const int64_t dec = c.model.decoder_num_layers > 0 ? c.model.decoder_num_layers : enc;
    const int64_t vocab = s.padded_vocab_size > 0 ? s.padded_vocab_size : s.vocab_size;
    return enc * (attention + mlp + 2 * h) + dec * (2 * attention + mlp + 3 * h) + 2 * h +
           2 * c.model.relative_attention_num_buckets * heads +
           vocab * h * (c.model.tie_embeddings ? 1 : 2);
  }
  int64_t LayerCount(const Config& c) const override {
    return c.model.num_layers +
           (c.model.decoder_num_layers > 0 ? c.model.decoder_num_layers : c.model.num_layers);
  }
  std::vector<Stack> Stacks(const Config& c) const override {
    const int64_t dec = LayerCount(c) - c.model.num_layers;
    return {{c.model.num_layers, c.model.seq_length, 0},
            {dec, T5DecoderLength(c), c.model.seq_length}};
  }
  int64_t OutputPositions(const Config& c) const override { return T5DecoderLength(c); }

  absl::StatusOr<std::shared_ptr<TpModule>> BuildModel(const TpEnv& env, const Config& c,
                                                       const DerivedSizes& s) const override {
    BRAID_ASSIGN_OR_RETURN(T5Config t, T5ConfigFrom(c, s));
    return std::static_pointer_cast<TpModule>(std::make_shared<T5Model>(env, t));
  }

  std::unique_ptr<TrainTask> MakeTask(std::shared_ptr<TpModule> model,
                                      const RunContext& ctx) const override {
    return std::make_unique<T5Task>(std::dynamic_pointer_cast<T5Model>(model),
                                    ctx.config.model.seq_length, T5DecoderLength(ctx.config),
                                    ctx.layout.tp, ctx.config.model.output_chunk_tokens);
  }

  absl::StatusOr<FamilyData> BuildData(const RunContext& ctx) const override {
    const Config& c = ctx.config;
    BRAID_ASSIGN_OR_RETURN(
        auto tok, RequiredTokenizerOf(
                      c, "the T5 recipe needs its tokenizer (for EOS, pad and the sentinels)"));
    const SpecialIds& sp = tok->special();
    if (sp.eod < 0 || sp.pad < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: T5 needs an EOS and a pad id, and this tokenizer has %s. HINT: train the "
          "SentencePiece model with --pad_id=0 --eos_id=1 (T5's ids).",
          c.data.vocab_file, sp.eod < 0 ? "no EOS" : "no pad id"));
    }
    const SpanLengths lengths = T5LengthsOf(c);
    T5DataSpec spec;
    spec.enc_length = c.model.seq_length;
    spec.dec_length = T5DecoderLength(c);
    spec.noise_density = c.data.noise_density;
    spec.mean_noise_span_length = c.data.mean_noise_span_length;
    spec.first_sentinel = sp.sentinels.empty() ? -1 : sp.sentinels[0];
    spec.num_sentinels = static_cast<int64_t>(sp.sentinels.size());
    spec.eos = sp.eod;
    spec.pad = sp.pad;
    // Sentinel k must be first_sentinel - k (Hugging Face's numbering).
    for (size_t k = 0; k < sp.sentinels.size(); ++k) {
      if (sp.sentinels[k] != spec.first_sentinel - static_cast<int64_t>(k)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: <extra_id_%d> is id %d, not %d: T5's sentinels count down from <extra_id_0>. "
            "HINT: train the model without them (they are then added at the top).",
            c.data.vocab_file, k, sp.sentinels[k], spec.first_sentinel - k));
      }
    }
    BRAID_ASSIGN_OR_RETURN(
        GptSplits splits,
        BuildFamilySplits(
            ctx,
            [&](std::shared_ptr<IndexedDataset> data, int d, DocRange docs, int s, int64_t n,
                bool may_build) -> absl::StatusOr<std::unique_ptr<SampleSource>> {
              GptIndexSpec raw_spec;
              raw_spec.documents = docs;
              raw_spec.seq_length = lengths.raw - 1;  // GPT samples are seq_length + 1 tokens
              raw_spec.num_samples = n;
              raw_spec.seed = static_cast<uint64_t>(c.seed) + d;
              raw_spec.split_name = kSplitNames[s];
              raw_spec.cache_dir = c.data.cache_dir;
              BRAID_ASSIGN_OR_RETURN(auto raw, GptDataset::Open(data, raw_spec, may_build));
              T5DataSpec part = spec;
              part.seed = static_cast<uint64_t>(c.seed) * 1000003ULL + 7ULL * d + s;
              return std::unique_ptr<SampleSource>(std::make_unique<T5Samples>(
                  std::shared_ptr<const SampleSource>(std::move(raw)), part));
            }));
    FamilyData out;
    out.train = splits.split[0];
    out.valid = splits.split[1];
    out.notes.push_back(absl::StrFormat(
        "T5: %d+%d layers, width %d, %d heads of %d, FFN %d (%s), vocabulary %d with %d "
        "sentinels (padded to %d), %s output; encoder %d, decoder %d tokens from raw chunks of "
        "%d (noise %g, mean span %g)",
        c.model.num_layers, LayerCount(c) - c.model.num_layers, c.model.hidden_size,
        c.model.num_attention_heads,
        c.model.kv_channels > 0 ? c.model.kv_channels
                                : c.model.hidden_size / c.model.num_attention_heads,
        ctx.sizes.ffn_hidden_size, c.model.activation, ctx.sizes.vocab_size, spec.num_sentinels,
        ctx.sizes.padded_vocab_size, c.model.tie_embeddings ? "tied (scaled)" : "untied",
        spec.enc_length, spec.dec_length, lengths.raw, c.data.noise_density,
        c.data.mean_noise_span_length));
    if (ctx.layout.rank == 0 && out.train != nullptr) {
      // The accuracy of always guessing the most frequent target token: target_acc to beat.
      const T5Row r(spec.enc_length, spec.dec_length);
      std::vector<int64_t> row(r.length()), counts(ctx.sizes.vocab_size, 0);
      int64_t total = 0;
      const int64_t n = std::min<int64_t>(out.train->size(), 2000);
      for (int64_t i = 0; i < n; ++i) {
        out.train->Get(i, row.data());
        for (int64_t k = 0; k < r.dec; ++k) {
          const int64_t t = row[r.labels() + k];
          if (t >= 0 && t < ctx.sizes.vocab_size) ++counts[t], ++total;
        }
      }
      auto top = std::max_element(counts.begin(), counts.end());
      out.notes.push_back(absl::StrFormat(
          "most frequent target token in the first %d training samples: '%s', %.2f%% of the "
          "targets (the target_acc to beat)",
          n, tok->IdToToken(static_cast<int32_t>(top - counts.begin())),
          100.0 * *top / std::max<int64_t>(1, total)));
    }
    return out;
  }

  std::shared_ptr<SampleSource> SyntheticData(const RunContext& ctx) const override {
    return std::make_shared<RandomT5Rows>(ctx.config.model.seq_length, T5DecoderLength(ctx.config),
                                          ctx.sizes.vocab_size);
  }

  const HfLayout* hf() const override { return &T5HfLayout(); }

  std::unique_ptr<Generator> MakeGenerator(std::shared_ptr<TpModule> model,
                                           const Config& config) const override {
    // Fills in sentinels; the decoder starts from pad.
    return std::make_unique<Seq2SeqGenerator<T5Model>>(std::dynamic_pointer_cast<T5Model>(model),
                                                       std::vector<int64_t>{0});
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
