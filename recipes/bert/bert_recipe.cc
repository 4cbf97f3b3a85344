// The BERT recipe (masked LM, optionally with sentence-order prediction): a BertModel from the
// model section, BERT samples (bert_data.h) from sentence-split data, and the objective: the
// vocabulary-parallel cross entropy on masked positions only, plus the binary head's loss.
// Logged: mlm_loss, mlm_acc (masked-token accuracy), sop_loss, sop_acc.
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/data/gpt_data.h"
#include "framework/models/bert.h"
#include "framework/parallel/mappings.h"
#include "recipes/bert/bert_data.h"
#include "recipes/bert/bert_task.h"
#include "recipes/registry.h"

namespace braid {
absl::StatusOr<RecipeParts> BuildBertRecipe(const RunContext& ctx) {
  const Config& c = ctx.config;
  if (c.data.vocab_file.empty()) {
    return absl::InvalidArgumentError(
        "the BERT recipe needs its tokenizer: set data.vocab_file "
        "(vocab.txt or a SentencePiece .model).");
  }
  TokenizerOptions to{c.data.tokenizer, c.data.vocab_file, c.data.merges_file, c.data.lowercase};
  BRAID_ASSIGN_OR_RETURN(auto tok, MakeTokenizer(to));
  const int64_t vocab = tok->VocabSize();
  const int64_t seq = c.model.seq_length;
  const int64_t max_pred = c.data.max_predictions > 0
                               ? c.data.max_predictions
                               : std::max<int64_t>(1, std::llround(c.data.mask_prob * seq));
  BRAID_ASSIGN_OR_RETURN(MaskingSpec masking, MaskingSpecFor(*tok, c.data.mask_prob, max_pred,
                                                             c.data.whole_word_masking));
  BRAID_ASSIGN_OR_RETURN(DerivedSizes sizes, DeriveSizes(c, ctx.layout.world_size, vocab));

  BertConfig b;
  b.layers = c.model.num_layers;
  b.max_positions = sizes.max_position_embeddings;
  b.vocab_size = vocab;
  b.padded_vocab = sizes.padded_vocab_size;
  b.num_token_types = c.model.num_tokentypes;
  b.binary_head = c.model.binary_head;
  b.block = BlockConfigFrom(c, sizes);
  auto model = std::make_shared<BertModel>(TpEnv{ctx.layout.tp, static_cast<uint64_t>(c.seed)}, b);

  int64_t samples[3] = {c.train.train_steps * sizes.global_batch_size,
                        c.train.eval_steps * sizes.global_batch_size, 0};
  auto world = ctx.layout.world;
  BRAID_ASSIGN_OR_RETURN(
      GptSplits splits,
      BuildSplits(
          c.data.paths, c.data.weights, c.data.split, samples, ctx.local_rank == 0,
          [world] { return world->Barrier(); },
          [&](std::shared_ptr<IndexedDataset> data, int d, DocRange docs, int s, int64_t n,
              bool may_build) -> absl::StatusOr<std::unique_ptr<SampleSource>> {
            BertDataSpec spec{docs,
                              seq,
                              n,
                              static_cast<uint64_t>(c.seed) + d,
                              c.data.short_seq_prob,
                              c.model.binary_head,
                              kSplitNames[s],
                              c.data.cache_dir};
            BRAID_ASSIGN_OR_RETURN(auto ds, BertDataset::Open(data, spec, masking, may_build));
            return std::unique_ptr<SampleSource>(std::move(ds));
          }));
  RecipeParts parts;
  parts.task = std::make_unique<BertTask>(model, seq, ctx.layout.tp);
  parts.train = splits.split[0];
  parts.valid = splits.split[1];
  parts.vocab_size = vocab;
  parts.notes.push_back(absl::StrFormat(
      "BERT: %d layers, width %d, %d heads, vocabulary %d (padded to %d), sequence %d, %s; "
      "masking %.0f%% (at most %d a sample)%s",
      b.layers, b.block.hidden, b.block.heads, vocab, b.padded_vocab, seq,
      b.binary_head ? "sentence-order prediction" : "single segments", 100 * c.data.mask_prob,
      max_pred, c.data.whole_word_masking ? ", whole words" : ""));
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
    parts.notes.push_back(absl::StrFormat(
        "most frequent token of %s: '%s', %.2f%% of the tokens (the MLM accuracy to beat)",
        c.data.paths[0], tok->IdToToken(static_cast<int32_t>(top - counts.begin())),
        100.0 * *top / std::max<int64_t>(1, total)));
  }
  return parts;
}

}  // namespace braid
