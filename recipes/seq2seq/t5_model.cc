// The T5 model as its families share it (see t5_model.h).
#include "recipes/seq2seq/t5_model.h"

#include "recipes/registry.h"

#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "recipes/seq2seq/seq2seq_generator.h"

namespace braid {
namespace {

absl::StatusOr<T5Config> T5ConfigFrom(const Config& c, const DerivedSizes& s) {
  T5Config t;
  t.encoder_layers = c.model.num_layers;
  t.decoder_layers = s.decoder_num_layers;
  t.vocab_size = s.vocab_size;
  t.padded_vocab = s.padded_vocab_size;
  t.num_buckets = c.model.relative_attention_num_buckets;
  t.max_distance = c.model.relative_attention_max_distance;
  t.tie_embeddings = c.model.tie_embeddings;
  BRAID_ASSIGN_OR_RETURN(t.block, BlockConfigFrom(c, s));
  return t;
}

}  // namespace

std::vector<std::string> T5ModelFamily::keys() const {
  std::vector<std::string> k = {"model.decoder_num_layers", "model.decoder_seq_length",
                                "model.relative_attention_num_buckets",
                                "model.relative_attention_max_distance", "data.vocab_extra_ids"};
  for (const std::string& d : DataKeys()) k.push_back(d);
  return k;
}

absl::Status T5ModelFamily::Check(const Config& c) const {
  BRAID_RETURN_IF_ERROR(CheckData(c));
  const int64_t tp = c.parallel.tensor_parallel_size, decoder = DecoderLength(c);
  if (c.parallel.sequence_parallel && decoder % tp != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%sparallel.sequence_parallel: the decoder's %d positions do not split over "
        "parallel.tensor_parallel_size = %d ranks. HINT: set model.decoder_seq_length to a "
        "multiple of %d, or turn sequence parallelism off.",
        c.Where("parallel.sequence_parallel"), decoder, tp, tp));
  }
  return absl::OkStatus();
}

int64_t T5ModelFamily::ParameterCount(const Config& c, const DerivedSizes& s) const {
  // No biases; RMSNorm weights (hidden); the final norm of each stack and the relative position
  // bias tables of both stacks.
  const int64_t h = c.model.hidden_size;
  LayerShape l;
  l.norm_width = h;
  return Seq2SeqParameters(
      c, s, l, 2 * h + 2 * c.model.relative_attention_num_buckets * c.model.num_attention_heads);
}

absl::StatusOr<std::shared_ptr<TpModule>> T5ModelFamily::BuildModel(const TpEnv& env,
                                                                    const Config& c,
                                                                    const DerivedSizes& s) const {
  BRAID_ASSIGN_OR_RETURN(T5Config t, T5ConfigFrom(c, s));
  if (env.pp_rank >= 0) {
    BRAID_ASSIGN_OR_RETURN(t.stage, StagePlanOf(*this, c, env.pp_rank));
  }
  return std::static_pointer_cast<TpModule>(std::make_shared<T5Model>(env, t));
}

std::unique_ptr<TrainTask> T5ModelFamily::MakeTask(std::shared_ptr<TpModule> model,
                                                   const RunContext& ctx) const {
  return std::make_unique<T5Task>(std::dynamic_pointer_cast<T5Model>(model),
                                  ctx.config.model.seq_length, DecoderLength(ctx.config),
                                  ctx.layout.tp, ctx.config.model.output_chunk_tokens);
}

std::shared_ptr<SampleSource> T5ModelFamily::SyntheticData(const RunContext& ctx) const {
  return std::make_shared<RandomSeq2SeqRows>(
      Seq2SeqRow(ctx.config.model.seq_length, DecoderLength(ctx.config)), ctx.sizes.vocab_size);
}

const HfLayout* T5ModelFamily::hf() const { return &T5HfLayout(); }

std::unique_ptr<Generator> T5ModelFamily::MakeGenerator(std::shared_ptr<TpModule> model,
                                                        const Config& config) const {
  // Fills in sentinels; the decoder starts from pad.
  return std::make_unique<Seq2SeqGenerator<T5Model>>(std::dynamic_pointer_cast<T5Model>(model),
                                                     std::vector<int64_t>{0});
}

absl::StatusOr<T5Specials> T5SpecialsOf(const Config& c, const Tokenizer& tok,
                                        const std::string& recipe) {
  const SpecialIds& sp = tok.special();
  if (sp.eod < 0 || sp.pad < 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s needs an EOS and a pad id, and this tokenizer has %s. HINT: train the "
        "SentencePiece model with --pad_id=0 --eos_id=1 (T5's ids).",
        c.data.vocab_file, recipe, sp.eod < 0 ? "no EOS" : "no pad id"));
  }
  T5Specials out;
  out.eos = sp.eod;
  out.pad = sp.pad;
  out.first_sentinel = sp.sentinels.empty() ? -1 : sp.sentinels[0];
  out.num_sentinels = static_cast<int64_t>(sp.sentinels.size());
  // Sentinel k must be first_sentinel - k (Hugging Face's numbering).
  for (size_t k = 0; k < sp.sentinels.size(); ++k) {
    if (sp.sentinels[k] != out.first_sentinel - static_cast<int64_t>(k)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: <extra_id_%d> is id %d, not %d: T5's sentinels count down from <extra_id_0>. "
          "HINT: train the model without them (they are then added at the top).",
          c.data.vocab_file, k, sp.sentinels[k], out.first_sentinel - k));
    }
  }
  return out;
}

std::string T5ModelNote(const Config& c, const DerivedSizes& s, int64_t sentinels,
                        const std::string& recipe) {
  return absl::StrFormat(
      "%s: %d+%d layers, width %d, %d heads of %d, FFN %d (%s), vocabulary %d with %d "
      "sentinels (padded to %d), %s output",
      recipe, c.model.num_layers, s.decoder_num_layers, c.model.hidden_size,
      c.model.num_attention_heads, s.head_size, s.ffn_hidden_size, Name(c.model.activation),
      s.vocab_size, sentinels, s.padded_vocab_size,
      c.model.tie_embeddings ? "tied (scaled)" : "untied");
}

}  // namespace braid
