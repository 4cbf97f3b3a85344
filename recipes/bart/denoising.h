// BART's noising functions, fairseq's DenoisingDataset step by step (docs/formats.md, "BART
// samples"), over one sample `<s> tokens </s>` held as ids:
//   sentence permutation: ceil(n x p) of the n sentences, chosen at random, trade places at
//     random (p = 1: a uniform shuffle of all of them);
//   text infilling (add_whole_word_mask): the budget is ceil(words x mask_ratio) words (a word
//     starts at a piece that begins one: "▁" for SentencePiece, the byte-level space "Ġ" for
//     GPT-2 BPE, any piece but "##" for WordPiece; special tokens count as starts; the sample's
//     <s> and </s> never do). Span lengths are drawn from Poisson(lambda) truncated at 127 until
//     their sum reaches the budget, the last trimmed to fit. Zero-length spans become insertions
//     of <mask>; the others start at distinct word starts chosen uniformly and cover that many
//     whole words (they may overlap, and stop before </s>). replace_length 1: the span's first
//     token becomes <mask> (or, for mask_random of the spans, a random token) and the rest are
//     deleted; 0: all deleted; -1: every token replaced;
//   insertion noise (add_insertion_noise): ceil(len x ratio) tokens inserted at random inner
//     positions, ceil(n x mask_random) of them random tokens, the rest <mask>;
//   rotation (add_rolling_noise): the tokens between <s> and </s> rotated by a random offset.
// One deliberate difference: a random token is drawn uniformly from the non-special ids
// (fairseq's randint(1, V) may pick <pad>, </s> or <mask>).
// Each token carries its origin (its position in the target, -1 for an insertion): a target
// position is "noised" (masked_acc counts it) unless some source token comes from it unchanged.
#pragma once
#include <cstdint>
#include <vector>

#include "framework/core/random.h"
#include "framework/data/tokenizer.h"

namespace braid {

struct DenoisingSpec {
  double mask_ratio = 0.3;
  double poisson_lambda = 3.5;
  double mask_random = 0.1;
  int64_t replace_length = 1;
  double permute_sentences = 1.0;
  double insert_ratio = 0.0;
  double rotate_ratio = 0.0;
  int64_t mask = -1;
  std::vector<bool> word_start;  // per vocabulary id
  std::vector<int64_t> randoms;  // the ids a random replacement draws from (non-special)
};

// The per-id word starts and random-token pool of a tokenizer (specials: every id SpecialIds
// names, and SentencePiece's <...> / [...] control and user pieces).
void FillVocabulary(const Tokenizer& tok, DenoisingSpec* spec);

// fairseq's truncated Poisson: P(k) proportional to lambda^k e^-lambda / k!, k = 0..127.
class SpanLengthSampler {
 public:
  explicit SpanLengthSampler(double lambda);
  int64_t Draw(Rng& rng) const;

 private:
  std::vector<double> cdf_;
};

// A sample on its way through the noising: ids and, per id, its target position (-1: inserted).
struct NoisedTokens {
  std::vector<int64_t> ids, origin;
};

// What text infilling did to one sample (tests and statistics).
struct InfillingStats {
  int64_t words = 0;             // word starts eligible
  int64_t budget = 0;            // ceil(words x mask_ratio)
  std::vector<int64_t> lengths;  // the span lengths after trimming, zeros included
  int64_t random_spans = 0;      // spans whose <mask> became a random token
};

// The order in which sentences 0..n-1 appear after permutation.
std::vector<int64_t> PermutationOrder(int64_t n, double ratio, Rng& rng);
// Text infilling on t (t.ids[0] = <s>, t.ids.back() = </s>).
void AddWholeWordMask(NoisedTokens& t, const DenoisingSpec& spec, const SpanLengthSampler& lengths,
                      Rng& rng, InfillingStats* stats = nullptr);
void AddInsertionNoise(NoisedTokens& t, double ratio, const DenoisingSpec& spec, Rng& rng);
void AddRollingNoise(NoisedTokens& t, Rng& rng);

}  // namespace braid
