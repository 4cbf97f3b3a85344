// Fill-in-the-middle (Bavarian et al., 2022, "Efficient Training of Language Models to Fill in
// the Middle"; the transformation of Megatron-LM's fim_dataset, docs/fim.md). A decoder sample
// of L tokens is cut into documents at its end-of-document tokens (kept, each where it was); each
// document is, with probability `rate`, decoded to text, cut at two character positions drawn
// uniformly (prefix | middle | suffix), the three parts encoded again, and written
//   PSM:  <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle
//   SPM:  <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle   (probability spm_rate;
//         the paper's "variant 2", Megatron-LM's and StarCoder's)
// With a split token (data.fim_split_sample: files of a repository, say), a document that holds
// it is transformed with probability `rate`, then each of its fragments with `fragment_rate`.
// The result is cut or padded (<fim_pad>) back to L. Every draw comes from a stream keyed by
// (seed, split, sample index): a sample is the same whichever rank reads it and after a resume.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/random.h"
#include "framework/data/sample_source.h"
#include "framework/data/tokenizer.h"

namespace braid {

struct FimOptions {
  double rate = 0.0;      // data.fim_rate: probability a document is transformed
  double spm_rate = 0.0;  // data.fim_spm_rate: probability a transformed one is SPM
  int32_t prefix = -1, middle = -1, suffix = -1, pad = -1;  // the sentinels' ids
  int32_t eod = -1;                                         // documents end here
  int32_t split = -1;                                       // data.fim_split_sample's id; -1: none
  double fragment_rate = 0.0;                               // data.fim_fragment_rate
};

// The sentinels' names (StarCoder's spelling by default; data.fim_tokens) in the order
// prefix, middle, suffix, pad.
inline const std::vector<std::string>& DefaultFimTokens() {
  static const auto* names =
      new std::vector<std::string>{"<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"};
  return *names;
}

// Resolves the sentinel, end-of-document and split ids in `tok`; a name the vocabulary lacks is
// an error naming it, with a hint (data.added_tokens).
absl::Status ResolveFimIds(const Tokenizer& tok, const std::vector<std::string>& fim_tokens,
                           const std::string& split_sample, FimOptions* o);

// What one transformation did (tests and the run log).
struct FimStats {
  int64_t documents = 0;  // non-empty documents (or fragments) seen
  int64_t psm = 0, spm = 0;
  int64_t truncated = 0;  // tokens cut to keep the length
  int64_t padded = 0;     // <fim_pad> tokens added
};

// The transformation of one sample (any length), drawing from `rng`.
std::vector<int64_t> FimTransform(const std::vector<int64_t>& sample, const FimOptions& o,
                                  const Tokenizer& tok, Rng& rng, FimStats* stats = nullptr);

// A SampleSource whose samples are another's after FimTransform, keyed by (seed, split, i). Each
// thread that calls Get borrows its own tokenizer (tokenizers are not thread-safe), made from
// `tokenizer` on first need.
class FimSource : public SampleSource {
 public:
  FimSource(std::shared_ptr<const SampleSource> inner, FimOptions o, TokenizerOptions tokenizer,
            uint64_t seed, int split);
  int64_t size() const override { return inner_->size(); }
  int64_t sample_length() const override { return inner_->sample_length(); }
  void Get(int64_t i, int64_t* out) const override;

 private:
  std::shared_ptr<const SampleSource> inner_;
  FimOptions o_;
  TokenizerOptions tokenizer_;
  uint64_t seed_;
  int split_;
  mutable std::mutex mu_;
  mutable std::vector<std::unique_ptr<Tokenizer>> idle_;  // tokenizers no call is using
};

}  // namespace braid
