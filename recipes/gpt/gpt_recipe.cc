// The GPT recipe (causal LM): a GptModel from the model section, GPT samples (gpt_data.h) from the
// data section, and the next-token cross entropy as the objective.
#include <cmath>

#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/data/gpt_data.h"
#include "framework/data/indexed_dataset.h"
#include "framework/data/tokenizer.h"
#include "framework/models/gpt.h"
#include "recipes/gpt/gpt_task.h"
#include "recipes/registry.h"

namespace braid {
namespace {

// Entropy (nats) of the token distribution of a dataset: the loss of a model that knows only
// token frequencies; a trained model must go well below it.
double UnigramEntropy(const IndexedDataset& d) {
  std::vector<double> counts;
  std::vector<int64_t> seq;
  for (int64_t s = 0; s < d.num_sequences(); ++s) {
    seq = d.Sequence(s);
    for (int64_t t : seq) {
      if (t >= static_cast<int64_t>(counts.size())) counts.resize(t + 1, 0);
      counts[t] += 1;
    }
  }
  double total = static_cast<double>(d.num_tokens()), h = 0;
  for (double c : counts)
    if (c > 0) h -= c / total * std::log(c / total);
  return h;
}

}  // namespace

GptConfig GptConfigFrom(const Config& c, const DerivedSizes& sizes, int64_t vocab_size) {
  GptConfig g;
  g.layers = c.model.num_layers;
  g.max_positions = sizes.max_position_embeddings;
  g.vocab_size = vocab_size;
  g.padded_vocab = sizes.padded_vocab_size;
  g.block = BlockConfigFrom(c, sizes);
  return g;
}

absl::StatusOr<RecipeParts> BuildGptRecipe(const RunContext& ctx) {
  const Config& c = ctx.config;
  int64_t vocab = c.model.vocab_size;
  if (!c.data.vocab_file.empty()) {
    TokenizerOptions to{c.data.tokenizer, c.data.vocab_file, c.data.merges_file, c.data.lowercase};
    BRAID_ASSIGN_OR_RETURN(auto tok, MakeTokenizer(to));
    if (vocab > 0 && vocab != tok->VocabSize()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%smodel.vocab_size: %d, but the tokenizer %s has %d entries. HINT: drop "
                          "model.vocab_size (it then comes from the tokenizer) or fix it.",
                          c.Where("model.vocab_size"), vocab, c.data.vocab_file, tok->VocabSize()));
    }
    vocab = tok->VocabSize();
  }
  if (vocab <= 0) {
    return absl::InvalidArgumentError(
        "the GPT recipe needs the vocabulary size: set "
        "data.vocab_file (the tokenizer) or model.vocab_size.");
  }
  BRAID_ASSIGN_OR_RETURN(DerivedSizes sizes, DeriveSizes(c, ctx.layout.world_size, vocab));

  GptConfig g = GptConfigFrom(c, sizes, vocab);
  TpEnv env{ctx.layout.tp, static_cast<uint64_t>(c.seed)};
  auto model = std::make_shared<GptModel>(env, g);

  GptDataSpec spec;
  spec.paths = c.data.paths;
  spec.weights = c.data.weights;
  spec.split = c.data.split;
  spec.seq_length = c.model.seq_length;
  spec.seed = static_cast<uint64_t>(c.seed);
  spec.cache_dir = c.data.cache_dir;
  spec.num_samples[0] = c.train.train_steps * sizes.global_batch_size;
  spec.num_samples[1] = c.train.eval_steps * sizes.global_batch_size;
  auto world = ctx.layout.world;
  BRAID_ASSIGN_OR_RETURN(GptSplits splits, BuildGptSplits(spec, ctx.local_rank == 0,
                                                          [world] { return world->Barrier(); }));
  RecipeParts parts;
  parts.task = std::make_unique<GptTask>(model, c.model.seq_length);
  parts.train = splits.split[0];
  parts.valid = splits.split[1];
  parts.vocab_size = vocab;
  parts.notes.push_back(absl::StrFormat(
      "GPT: %d layers, width %d, %d heads, vocabulary %d "
      "(padded to %d), sequence %d",
      g.layers, g.block.hidden, g.block.heads, vocab, g.padded_vocab, c.model.seq_length));
  if (ctx.layout.rank == 0 && !c.data.paths.empty()) {
    BRAID_ASSIGN_OR_RETURN(auto first, IndexedDataset::Open(c.data.paths[0]));
    parts.notes.push_back(absl::StrFormat(
        "unigram entropy of %s: %.4f nats (a model that beats token frequencies goes below it)",
        c.data.paths[0], UnigramEntropy(*first)));
  }
  return parts;
}

}  // namespace braid
