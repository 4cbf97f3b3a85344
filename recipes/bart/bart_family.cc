// The BART family (see bart_family.h): a BartModel from the model section, denoised samples
// (bart_data.h) from the data section, the decoder's cross entropy as the objective
// (bart_task.h), the Hugging Face layout (bart_hf.cc), and generation that reconstructs a
// noised prompt.
#include "recipes/bart/bart_family.h"

#include "recipes/registry.h"

#include "framework/data/token_names.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "framework/core/status.h"
#include "framework/data/splits.h"
#include "framework/models/bart.h"
#include "recipes/bart/bart_batch.h"
#include "recipes/bart/bart_data.h"
#include "recipes/seq2seq/seq2seq_family.h"
#include "recipes/seq2seq/seq2seq_generator.h"
#include "recipes/seq2seq/seq2seq_task.h"

namespace braid {
namespace {

absl::StatusOr<BartConfig> BartConfigFrom(const Config& c, const DerivedSizes& s) {
  BartConfig t;
  t.encoder_layers = c.model.num_layers;
  t.decoder_layers = s.decoder_num_layers;
  t.max_positions = s.max_position_embeddings;
  t.vocab_size = s.vocab_size;
  t.padded_vocab = s.padded_vocab_size;
  t.scale_embedding = c.model.scale_embedding;
  t.tie_embeddings = c.model.tie_embeddings;
  BRAID_ASSIGN_OR_RETURN(t.block, BlockConfigFrom(c, s));
  t.block.pre_ln = c.model.pre_ln;
  return t;
}

// Reconstructs a noised prompt: the encoder reads <s> prompt </s> (a literal "<mask>" in the
// text is the mask token, whatever the vocabulary calls it); the decoder starts from </s> <s>.
class BartGenerator : public Seq2SeqGenerator<BartModel> {
 public:
  BartGenerator(std::shared_ptr<BartModel> model, BartSpecials sp)
      : Seq2SeqGenerator<BartModel>(model, {sp.eos, sp.bos}, model->config().max_positions),
        sp_(sp) {}
  std::vector<int64_t> Prompt(const Tokenizer& tok, const std::string& text) const override {
    std::vector<int64_t> out = {sp_.bos};
    size_t pos = 0;
    while (pos <= text.size()) {
      const size_t at = text.find("<mask>", pos);
      const std::vector<int32_t> ids =
          tok.Encode(text.substr(pos, at == std::string::npos ? std::string::npos : at - pos));
      out.insert(out.end(), ids.begin(), ids.end());
      if (at == std::string::npos) break;
      out.push_back(sp_.mask);
      pos = at + 6;
    }
    out.push_back(sp_.eos);
    return out.size() > 2 ? out : std::vector<int64_t>{};
  }

 private:
  BartSpecials sp_;
};

class Bart : public Seq2SeqFamily {
 public:
  std::string name() const override { return "bart"; }
  std::vector<std::string> keys() const override {
    return {"model.decoder_num_layers", "model.pre_ln",           "model.scale_embedding",
            "data.mask_ratio",          "data.poisson_lambda",    "data.mask_random",
            "data.replace_length",      "data.permute_sentences", "data.insert_ratio",
            "data.rotate_ratio",        "data.languages"};
  }
  std::string summary() const override {
    return "encoder-decoder with denoising (BART; mBART as options)";
  }

  absl::Status Check(const Config& c) const override {
    if (c.model.seq_length < 8) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%smodel.seq_length: %d leaves no room for a sample. HINT: BART uses 1024.",
          c.Where("model.seq_length"), c.model.seq_length));
    }
    if (c.model.norm != NormType::kLayerNorm) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%smodel.norm: %s, but BART and mBART use LayerNorm. HINT: set model.norm: layernorm.",
          c.Where("model.norm"), Name(c.model.norm)));
    }
    if (!c.data.languages.empty() && c.data.languages.size() != c.data.paths.size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%sdata.languages: %d language tokens for %d data.paths. HINT: give one per path, in "
          "the same order (mBART: en_XX, ro_RO, ...), or none.",
          c.Where("data.languages"), c.data.languages.size(), c.data.paths.size()));
    }
    return absl::OkStatus();
  }

  // The decoder as long as the encoder.
  int64_t DecoderLength(const Config& c) const override { return c.model.seq_length; }

  int64_t ParameterCount(const Config& c, const DerivedSizes& s) const override {
    // Biases everywhere, LayerNorm (weight and bias); learned positions (with BART's offset) for
    // each stack, the embedding norms (and mBART's final norms), final_logits_bias.
    const int64_t h = c.model.hidden_size;
    LayerShape l;
    l.attention_bias = 4 * h;
    l.mlp_bias = s.ffn_hidden_size + h;
    l.norm_width = 2 * h;
    const int64_t vocab = s.padded_vocab_size > 0 ? s.padded_vocab_size : s.vocab_size;
    const int64_t positions =
        s.max_position_embeddings > 0 ? s.max_position_embeddings : c.model.seq_length;
    return Seq2SeqParameters(c, s, l,
                             2 * (positions + BartModel::kPositionOffset) * h + 2 * l.norm_width +
                                 (c.model.pre_ln ? 2 * l.norm_width : 0) + vocab);
  }

  absl::StatusOr<std::shared_ptr<TpModule>> BuildModel(const TpEnv& env, const Config& c,
                                                       const DerivedSizes& s) const override {
    BRAID_ASSIGN_OR_RETURN(BartConfig t, BartConfigFrom(c, s));
    if (env.pp_rank >= 0) {
      BRAID_ASSIGN_OR_RETURN(t.stage, StagePlanOf(*this, c, env.pp_rank));
    }
    return std::static_pointer_cast<TpModule>(std::make_shared<BartModel>(env, t));
  }

  std::unique_ptr<TrainTask> MakeTask(std::shared_ptr<TpModule> model,
                                      const RunContext& ctx) const override {
    return std::make_unique<Seq2SeqTask<BartModel>>(
        std::dynamic_pointer_cast<BartModel>(model), ctx.config.model.seq_length,
        ctx.config.model.seq_length, ctx.layout.tp, ctx.config.model.output_chunk_tokens, true);
  }

  absl::StatusOr<FamilyData> BuildData(const RunContext& ctx) const override {
    const Config& c = ctx.config;
    BRAID_ASSIGN_OR_RETURN(
        auto tok, RequiredTokenizerOf(c,
                                      "the BART recipe needs its tokenizer (for <s>, </s>, "
                                      "<pad>, <mask> and the word starts)"));
    BRAID_ASSIGN_OR_RETURN(BartSpecials sp, BartSpecialsOf(*tok, c.data.vocab_file));
    BartDataSpec spec;
    spec.seq_length = c.model.seq_length;
    spec.cache_dir = c.data.cache_dir;
    spec.bos = sp.bos, spec.eos = sp.eos, spec.pad = sp.pad;
    spec.document_end = tok->special().eod;
    DenoisingSpec& n = spec.noise;
    n.mask_ratio = c.data.mask_ratio;
    n.poisson_lambda = c.data.poisson_lambda;
    n.mask_random = c.data.mask_random;
    n.replace_length = c.data.replace_length;
    n.permute_sentences = c.data.permute_sentences;
    n.insert_ratio = c.data.insert_ratio;
    n.rotate_ratio = c.data.rotate_ratio;
    n.mask = sp.mask;
    FillVocabulary(*tok, &n);
    std::vector<int64_t> languages;
    for (const std::string& lang : c.data.languages) {
      const std::vector<int32_t> ids = tok->Encode(lang);
      if (ids.size() != 1 || tok->IdToToken(ids[0]) != lang) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%sdata.languages: '%s' is not one token of %s. HINT: mBART's language tokens are "
            "vocabulary entries: train the SentencePiece model with "
            "--user_defined_symbols=%s,... or drop data.languages.",
            c.Where("data.languages"), lang, c.data.vocab_file, lang));
      }
      languages.push_back(ids[0]);
    }
    BRAID_ASSIGN_OR_RETURN(
        DataSplits splits,
        BuildFamilySplits(
            ctx,
            [&](std::shared_ptr<IndexedDataset> data, int d, DocRange docs, int s, int64_t count,
                bool may_build) -> absl::StatusOr<std::unique_ptr<SampleSource>> {
              BartDataSpec part = spec;
              part.documents = docs;
              part.num_samples = count;
              part.seed = static_cast<uint64_t>(c.seed) * 1000003ULL + 7ULL * d + s;
              part.split_name = kSplitNames[s];
              part.language = languages.empty() ? -1 : languages[d];
              BRAID_ASSIGN_OR_RETURN(auto ds, BartDataset::Open(data, part, may_build));
              return std::unique_ptr<SampleSource>(std::move(ds));
            }));
    FamilyData out;
    out.train = splits.split[0];
    out.valid = splits.split[1];
    out.notes.push_back(absl::StrFormat(
        "BART: %d+%d layers, width %d, %d heads, FFN %d, %s, vocabulary %d (padded to %d); "
        "samples of %d tokens: mask %g of the words (Poisson %g spans, replace_length %d, %g "
        "random), permute %g of the sentences%s",
        c.model.num_layers, DecoderLayers(c.model), c.model.hidden_size,
        c.model.num_attention_heads, ctx.sizes.ffn_hidden_size,
        c.model.pre_ln ? "pre-LN (mBART)" : "post-LN", ctx.sizes.vocab_size,
        ctx.sizes.padded_vocab_size, spec.seq_length, n.mask_ratio, n.poisson_lambda,
        n.replace_length, n.mask_random, n.permute_sentences,
        languages.empty() ? ""
                          : absl::StrCat(", languages ", absl::StrJoin(c.data.languages, ","))));
    if (ctx.layout.rank == 0 && out.train != nullptr) {
      out.notes.push_back(MostFrequentTargetNote(
          *out.train, BartRow(spec.seq_length, spec.seq_length), ctx.sizes.vocab_size, *tok));
    }
    return out;
  }

  std::shared_ptr<SampleSource> SyntheticData(const RunContext& ctx) const override {
    return std::make_shared<RandomSeq2SeqRows>(
        BartRow(ctx.config.model.seq_length, ctx.config.model.seq_length), ctx.sizes.vocab_size);
  }

  const HfLayout* hf() const override { return &BartHfLayout(); }

  std::unique_ptr<Generator> MakeGenerator(std::shared_ptr<TpModule> model,
                                           const Config& config) const override {
    // Without a readable tokenizer (--logits only) fairseq's ids.
    return std::make_unique<BartGenerator>(std::dynamic_pointer_cast<BartModel>(model),
                                           BartSpecialsOrFairseq(config));
  }
};

}  // namespace

absl::StatusOr<BartSpecials> BartSpecialsOf(const Tokenizer& tok, const std::string& vocab_file) {
  const SpecialIds& s = tok.special();
  // A token of that name first (data.added_tokens, or a vocabulary with BART's specials), then
  // the tokenizer's role, then BERT's name for it.
  auto named = [&](const char* name) { return TokenIdByName(tok, name); };
  auto first = FirstId;
  BartSpecials sp;
  sp.bos = first({named("<s>"), s.bos, s.cls});
  sp.eos = first({named("</s>"), s.eod});
  sp.pad = first({named("<pad>"), s.pad});
  sp.mask = first({named("<mask>"), s.mask});
  if (sp.pad == sp.eos) sp.pad = -1;  // GPT-2's one <|endoftext|> cannot be both
  std::vector<std::string> missing;
  if (sp.bos < 0) missing.push_back("<s>");
  if (sp.eos < 0) missing.push_back("</s>");
  if (sp.pad < 0) missing.push_back("<pad>");
  if (sp.mask < 0) missing.push_back("<mask>");
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        vocab_file, ": the ", tok.name(), " vocabulary lacks ", absl::StrJoin(missing, ", "),
        ", which BART needs. HINT: for GPT-2's BPE set data.added_tokens: [<s>, <pad>, </s>, "
        "<unk>, <mask>] (appended after its vocabulary); train a SentencePiece model with a pad "
        "id, an eos id and --user_defined_symbols='<s>,<mask>' (or BERT's [CLS] and [MASK], which "
        "stand for them)."));
  }
  return sp;
}

BartSpecials BartSpecialsOrFairseq(const Config& c) {
  if (!c.data.vocab_file.empty()) {
    auto tok = TokenizerOf(c);
    if (tok.ok()) {
      auto found = BartSpecialsOf(**tok, c.data.vocab_file);
      if (found.ok()) return *found;
    }
  }
  return BartSpecials{0, 2, 1, -1};
}

const Family& BartFamily() {
  static const Bart kBart;
  return kBart;
}

}  // namespace braid
