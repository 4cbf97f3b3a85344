// The BERT family (see bert_family.h): a BertModel from the model section, BERT samples
// (bert_data.h) from sentence-split data, and the objective (bert_task.h): the
// vocabulary-parallel cross entropy on masked positions only, plus the binary head's loss.
#include "recipes/bert/bert_family.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/data/splits.h"
#include "framework/models/bert.h"
#include "recipes/bert/bert_batch.h"
#include "recipes/bert/bert_data.h"
#include "recipes/bert/bert_task.h"
#include "recipes/registry.h"

namespace braid {
namespace {

// Random BERT rows: random tokens, two segments, no padding, 15% of positions predicted
// (benchmarks).
class RandomBertRows : public SampleSource {
 public:
  RandomBertRows(int64_t seq, int64_t vocab) : row_(seq), vocab_(vocab) {}
  int64_t size() const override { return int64_t{1} << 40; }
  int64_t sample_length() const override { return row_.length(); }
  void Get(int64_t i, int64_t* out) const override {
    Rng rng = Rng::Keyed(kSyntheticSeed, static_cast<uint64_t>(i));
    auto next = [&](uint64_t n) { return static_cast<int64_t>(rng.Below(n)); };
    const int64_t seq = row_.seq;
    for (int64_t k = 0; k < seq; ++k) {
      out[row_.ids() + k] = next(vocab_);
      out[row_.types() + k] = k >= seq / 2;
      out[row_.padding() + k] = 0;
      out[row_.labels() + k] = next(100) < 15 ? next(vocab_) : -100;
    }
    out[row_.sop()] = next(2);
  }

 private:
  BertRow row_;
  int64_t vocab_;
};

int64_t MaxPredictions(const Config& c) {
  return c.data.max_predictions > 0
             ? c.data.max_predictions
             : std::max<int64_t>(1, std::llround(c.data.mask_prob * c.model.seq_length));
}

class Bert : public Family {
 public:
  explicit Bert(bool roberta) : roberta_(roberta) {}
  std::string name() const override { return roberta_ ? "roberta" : "bert"; }
  // RoBERTa reads model.binary_head too: to refuse it.
  std::vector<std::string> keys() const override {
    return {"model.binary_head",    "model.num_tokentypes",    "data.packing",
            "data.dynamic_masking", "data.mask_prob",          "data.max_predictions",
            "data.short_seq_prob",  "data.whole_word_masking", "data.reset_attention_mask"};
  }
  std::string summary() const override {
    return roberta_ ? "encoder-only masked LM, full sentences, dynamic masks (RoBERTa)"
                    : "encoder-only masked LM with sentence-order prediction (BERT)";
  }

  absl::Status Check(const Config& c) const override {
    if (roberta_ && c.model.binary_head) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.Where("model.binary_head"),
                       "model.binary_head: RoBERTa has no sentence-order "
                       "head. HINT: set model.binary_head: false, or use recipe: bert."));
    }
    if (c.data.reset_attention_mask && c.data.packing != Packing::kFullSentences) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.Where("data.reset_attention_mask"),
          "data.reset_attention_mask: only full-sentence packs hold several documents; this "
          "recipe packs one document a sample (data.packing: document). HINT: set data.packing: "
          "full_sentences (RoBERTa), or leave reset_attention_mask false."));
    }
    if (c.data.packing == Packing::kFullSentences && c.model.binary_head) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.Where("data.packing"),
          "data.packing: full_sentences packs sentences across "
          "documents, which leaves no sentence pair to order; model.binary_head is true. HINT: "
          "set model.binary_head: false (RoBERTa has no sentence-order head)."));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<TpModule>> BuildModel(const TpEnv& env, const Config& c,
                                                       const DerivedSizes& s) const override {
    BertConfig b;
    b.layers = c.model.num_layers;
    b.max_positions = s.max_position_embeddings;
    b.vocab_size = s.vocab_size;
    b.padded_vocab = s.padded_vocab_size;
    b.num_token_types = c.model.num_tokentypes;
    b.binary_head = c.model.binary_head;
    b.tie_embeddings = c.model.tie_embeddings;
    BRAID_ASSIGN_OR_RETURN(b.block, BlockConfigFrom(c, s));
    if (env.pp_rank >= 0) {
      BRAID_ASSIGN_OR_RETURN(b.stage, StagePlanOf(*this, c, env.pp_rank));
    }
    if (c.data.reset_attention_mask) {  // documents end with the [SEP] the packs put between them
      BRAID_ASSIGN_OR_RETURN(auto tok, RequiredTokenizerOf(c, "data.reset_attention_mask"));
      BRAID_ASSIGN_OR_RETURN(
          MaskingSpec masking,
          MaskingSpecFor(*tok, c.data.mask_prob, MaxPredictions(c), c.data.whole_word_masking));
      b.document_sep = masking.sep;
    }
    return std::static_pointer_cast<TpModule>(std::make_shared<BertModel>(env, b));
  }

  std::unique_ptr<TrainTask> MakeTask(std::shared_ptr<TpModule> model,
                                      const RunContext& ctx) const override {
    return std::make_unique<BertTask>(std::dynamic_pointer_cast<BertModel>(model),
                                      ctx.config.model.seq_length, ctx.layout.tp,
                                      ctx.config.model.output_chunk_tokens);
  }

  absl::StatusOr<FamilyData> BuildData(const RunContext& ctx) const override {
    const Config& c = ctx.config;
    BRAID_ASSIGN_OR_RETURN(
        auto tok, RequiredTokenizerOf(c,
                                      "the BERT recipe needs its tokenizer (for [CLS], [SEP], "
                                      "[MASK] and the word pieces)"));
    const int64_t vocab = ctx.sizes.vocab_size;
    const int64_t seq = c.model.seq_length;
    const int64_t max_pred = MaxPredictions(c);
    BRAID_ASSIGN_OR_RETURN(MaskingSpec masking, MaskingSpecFor(*tok, c.data.mask_prob, max_pred,
                                                               c.data.whole_word_masking));
    BRAID_ASSIGN_OR_RETURN(
        DataSplits splits,
        BuildFamilySplits(
            ctx,
            [&](std::shared_ptr<IndexedDataset> data, int d, DocRange docs, int s, int64_t n,
                bool may_build) -> absl::StatusOr<std::unique_ptr<SampleSource>> {
              BertDataSpec spec{docs,
                                seq,
                                n,
                                static_cast<uint64_t>(c.seed) + d,
                                c.data.short_seq_prob,
                                c.model.binary_head,
                                kSplitNames[s],
                                c.data.cache_dir,
                                c.data.packing == Packing::kFullSentences,
                                c.data.dynamic_masking};
              BRAID_ASSIGN_OR_RETURN(auto ds, BertDataset::Open(data, spec, masking, may_build));
              return std::unique_ptr<SampleSource>(std::move(ds));
            }));
    FamilyData out;
    out.train = splits.split[0];
    out.valid = splits.split[1];
    out.notes.push_back(absl::StrFormat(
        "%s: %d layers, width %d, %d heads, vocabulary %d (padded to %d), sequence %d, %s; "
        "masking %.0f%% (at most %d a sample)%s, %s masks, %s packs",
        roberta_ ? "RoBERTa" : "BERT", c.model.num_layers, c.model.hidden_size,
        c.model.num_attention_heads, vocab, ctx.sizes.padded_vocab_size, seq,
        c.model.binary_head ? "sentence-order prediction" : "single segments",
        100 * c.data.mask_prob, max_pred, c.data.whole_word_masking ? ", whole words" : "",
        c.data.dynamic_masking ? "dynamic" : "static",
        c.data.packing == Packing::kFullSentences
            ? (c.data.reset_attention_mask ? "full-sentences (attention within each document)"
                                           : "full-sentences")
            : "document"));
    if (ctx.layout.rank == 0) {
      // The accuracy of always predicting the most frequent token: the MLM accuracy to beat.
      BRAID_ASSIGN_OR_RETURN(auto first, IndexedDataset::Open(c.data.paths[0]));
      std::vector<int64_t> counts(vocab, 0);
      int64_t total = 0;
      for (int64_t s = 0; s < first->num_sequences(); ++s) {
        for (int64_t t : first->Sequence(s)) {
          if (t >= 0 && t < vocab && !masking.special[t]) ++counts[t], ++total;
        }
      }
      auto top = std::max_element(counts.begin(), counts.end());
      out.notes.push_back(absl::StrFormat(
          "most frequent token of %s: '%s', %.2f%% of the tokens (the MLM accuracy to beat)",
          c.data.paths[0], tok->IdToToken(static_cast<int32_t>(top - counts.begin())),
          100.0 * *top / std::max<int64_t>(1, total)));
    }
    return out;
  }

  std::shared_ptr<SampleSource> SyntheticData(const RunContext& ctx) const override {
    return std::make_shared<RandomBertRows>(ctx.config.model.seq_length, ctx.sizes.vocab_size);
  }

  const HfLayout* hf() const override { return roberta_ ? &RobertaHfLayout() : &BertHfLayout(); }

 private:
  bool roberta_;
};

}  // namespace

const Family& BertFamily() {
  static const Bert kBert(false);
  return kBert;
}

const Family& RobertaFamily() {
  static const Bert kRoberta(true);
  return kRoberta;
}

}  // namespace braid
