// The BART family (see bart_family.h): a BartModel from the model section, denoised samples
// (bart_data.h) from the data section, the decoder's cross entropy as the objective
// (bart_task.h), the Hugging Face layout (bart_hf.cc), and generation that reconstructs a
// noised prompt.
#include "recipes/bart/bart_family.h"

#include "framework/data/token_names.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "framework/core/status.h"
#include "framework/data/gpt_data.h"
#include "framework/models/bart.h"
#include "recipes/bart/bart_batch.h"
#include "recipes/bart/bart_data.h"
#include "recipes/bart/bart_task.h"
#include "recipes/seq2seq_generator.h"

namespace braid {
namespace {

// Random BART rows (benchmarks): T5's random rows, every target position counted as noised.
class RandomBartRows : public SampleSource {
 public:
  RandomBartRows(int64_t seq, int64_t vocab) : row_(seq, seq), vocab_(vocab) {}
  int64_t size() const override { return int64_t{1} << 40; }
  int64_t sample_length() const override { return row_.length(); }
  void Get(int64_t i, int64_t* out) const override {
    RandomSeq2SeqRow(i, row_, vocab_, out);
    for (int64_t k = 0; k < row_.dec; ++k) out[row_.noised() + k] = 1;
  }

 private:
  BartRow row_;
  int64_t vocab_;
};

absl::StatusOr<BartConfig> BartConfigFrom(const Config& c, const DerivedSizes& s) {
  BartConfig t;
  t.encoder_layers = c.model.num_layers;
  t.decoder_layers =
      c.model.decoder_num_layers > 0 ? c.model.decoder_num_layers : c.model.num_layers;
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

class Bart : public Family {
 public:
  std::string name() const override { return "bart"; }
  std::string summary() const override {
    return "encoder-decoder with denoising (BART; mBART as options)";
  }

  absl::Status Check(const Config& c) const override {
    if (c.model.seq_length < 8) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%smodel.seq_length: %d leaves no room for a sample. HINT: BART uses 1024.",
          c.Where("model.seq_length"), c.model.seq_length));
    }
    if (c.model.norm != "layernorm") {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%smodel.norm: %s, but BART and mBART use LayerNorm. HINT: set model.norm: layernorm.",
          c.Where("model.norm"), c.model.norm));
    }
    if (!c.data.languages.empty() && c.data.languages.size() != c.data.paths.size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%sdata.languages: %d language tokens for %d data.paths. HINT: give one per path, in "
          "the same order (mBART: en_XX, ro_RO, ...), or none.",
          c.Where("data.languages"), c.data.languages.size(), c.data.paths.size()));
    }
    return absl::OkStatus();
  }

  int64_t ParameterCount(const Config& c, const DerivedSizes& s) const override {
    const int64_t h = c.model.hidden_size, f = s.ffn_hidden_size;
    const int64_t attention = 4 * h * h + 4 * h, mlp = 2 * h * f + f + h, norm = 2 * h;
    const int64_t enc = c.model.num_layers;
    const int64_t dec = c.model.decoder_num_layers > 0 ? c.model.decoder_num_layers : enc;
    const int64_t vocab = s.padded_vocab_size > 0 ? s.padded_vocab_size : s.vocab_size;
    const int64_t positions =
        s.max_position_embeddings > 0 ? s.max_position_embeddings : c.model.seq_length;
    return enc * (attention + mlp + 2 * norm) + dec * (2 * attention + mlp + 3 * norm) +
           2 * (positions + BartModel::kPositionOffset) * h + 2 * norm +
           (c.model.pre_ln ? 2 * norm : 0) + vocab * h * (c.model.tie_embeddings ? 1 : 2) + vocab;
  }
  int64_t LayerCount(const Config& c) const override {
    return c.model.num_layers +
           (c.model.decoder_num_layers > 0 ? c.model.decoder_num_layers : c.model.num_layers);
  }
  std::vector<Stack> Stacks(const Config& c) const override {  // the decoder as long as the encoder
    const int64_t dec = LayerCount(c) - c.model.num_layers;
    return {{c.model.num_layers, c.model.seq_length, 0},
            {dec, c.model.seq_length, c.model.seq_length}};
  }

  absl::StatusOr<std::shared_ptr<TpModule>> BuildModel(const TpEnv& env, const Config& c,
                                                       const DerivedSizes& s) const override {
    BRAID_ASSIGN_OR_RETURN(BartConfig t, BartConfigFrom(c, s));
    return std::static_pointer_cast<TpModule>(std::make_shared<BartModel>(env, t));
  }

  std::unique_ptr<TrainTask> MakeTask(std::shared_ptr<TpModule> model,
                                      const RunContext& ctx) const override {
    return std::make_unique<BartTask>(std::dynamic_pointer_cast<BartModel>(model),
                                      ctx.config.model.seq_length, ctx.config.model.seq_length,
                                      ctx.layout.tp, ctx.config.model.output_chunk_tokens);
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
        GptSplits splits,
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
        c.model.num_layers, LayerCount(c) - c.model.num_layers, c.model.hidden_size,
        c.model.num_attention_heads, ctx.sizes.ffn_hidden_size,
        c.model.pre_ln ? "pre-LN (mBART)" : "post-LN", ctx.sizes.vocab_size,
        ctx.sizes.padded_vocab_size, spec.seq_length, n.mask_ratio, n.poisson_lambda,
        n.replace_length, n.mask_random, n.permute_sentences,
        languages.empty() ? ""
                          : absl::StrCat(", languages ", absl::StrJoin(c.data.languages, ","))));
    if (ctx.layout.rank == 0 && out.train != nullptr) {
      // Always guessing the most frequent token: the target_acc and masked_acc to beat.
      const BartRow r(spec.seq_length, spec.seq_length);
      std::vector<int64_t> row(r.length()), all(ctx.sizes.vocab_size, 0), hit(all);
      int64_t total = 0, noised = 0;
      const int64_t count = std::min<int64_t>(out.train->size(), 2000);
      for (int64_t i = 0; i < count; ++i) {
        out.train->Get(i, row.data());
        for (int64_t k = 0; k < r.dec; ++k) {
          const int64_t t = row[r.labels() + k];
          if (t < 0 || t >= ctx.sizes.vocab_size) continue;
          ++all[t], ++total;
          if (row[r.noised() + k]) ++hit[t], ++noised;
        }
      }
      auto top = std::max_element(all.begin(), all.end());
      auto top_hit = std::max_element(hit.begin(), hit.end());
      out.notes.push_back(absl::StrFormat(
          "most frequent token in the first %d training samples: '%s', %.2f%% of the targets "
          "(the target_acc to beat); of the noised targets '%s', %.2f%% (the masked_acc to beat; "
          "%.1f%% of the targets are noised)",
          count, tok->IdToToken(static_cast<int32_t>(top - all.begin())),
          100.0 * *top / std::max<int64_t>(1, total),
          tok->IdToToken(static_cast<int32_t>(top_hit - hit.begin())),
          100.0 * *top_hit / std::max<int64_t>(1, noised),
          100.0 * noised / std::max<int64_t>(1, total)));
    }
    return out;
  }

  std::shared_ptr<SampleSource> SyntheticData(const RunContext& ctx) const override {
    return std::make_shared<RandomBartRows>(ctx.config.model.seq_length, ctx.sizes.vocab_size);
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
