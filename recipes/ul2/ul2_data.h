// UL2's mixture of denoisers (Tay et al., 2022, "UL2: Unifying Language Learning Paradigms") over
// raw chunks of concatenated documents, for the T5 model. Each sample draws one denoiser by the
// mixture's weights, then:
//   R (regular) and X (extreme) denoisers: T5's span corruption (recipes/seq2seq/span_corruption.h)
//     with the denoiser's mean span length and corruption rate;
//   the S (sequential) denoiser: a prefix LM, the chunk cut at a split point drawn uniformly from
//     [MinSplit, MaxSplit]: the prefix to the encoder, the rest as the target;
// and the paradigm token of its kind ([NLU] for R, [NLG] for X, [S2S] for S; added tokens of the
// tokenizer) is prepended to the encoder's input. Sentinels are T5's (<extra_id_k>).
//   raw chunk:  t0 t1 t2 t3 t4 t5     R, noise at t2 t3:  [NLU] t0 t1 <s0> t4 t5 EOS -> <s0> t2 t3
//   EOS
//                                     S, split at 4:      [S2S] t0 t1 t2 t3 EOS -> t4 t5 EOS
// Every denoiser reads chunks of the same length (Ul2Lengths::raw): the longest whose corrupted
// inputs fit the encoder for every span denoiser. Everything random about sample i is drawn from
// Rng::Keyed(seed, i): the same on every TP rank, after a resume, at any DP size. Rows are the
// encoder-decoder rows of recipes/seq2seq/seq2seq_batch.h.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/random.h"
#include "framework/data/sample_source.h"

namespace braid {

struct Denoiser {
  enum class Kind { kR, kX, kS };
  Kind kind = Kind::kR;
  double mean_span = 3.0;  // R and X
  double rate = 0.15;      // R and X: the corruption rate (noise density)
};

// The paper's seven: R (mean 3, rate 0.15), R (8, 0.15), X (3, 0.5), X (8, 0.5), X (64, 0.15),
// X (64, 0.5), S.
std::vector<Denoiser> DefaultDenoisers();
// "R 3 0.15", "X 64 0.5", "S" -> a denoiser; an error naming the text otherwise.
absl::StatusOr<Denoiser> ParseDenoiser(const std::string& text);
std::string DenoiserName(const Denoiser& d);  // "R(3, 0.15)", "S"
// The paradigm token of a kind: [NLU], [NLG], [S2S].
const char* ParadigmToken(Denoiser::Kind kind);

// The lengths of a mixture on an encoder of `enc` and a decoder of `dec` positions.
struct Ul2Lengths {
  int64_t raw = 0;          // tokens of a raw chunk
  int64_t max_targets = 0;  // the longest target of a span denoiser (with sentinels and EOS)
  int64_t max_spans = 0;    // the most noise spans of a span denoiser (sentinels needed)
  int64_t min_split = 0, max_split = 0;  // the S-denoiser's split points (prefix lengths)
};
Ul2Lengths Ul2LengthsOf(const std::vector<Denoiser>& denoisers, int64_t enc, int64_t dec);

struct Ul2DataSpec {
  int64_t enc_length = 0, dec_length = 0;
  std::vector<Denoiser> denoisers;
  std::vector<double> weights;             // one per denoiser, not all 0
  int64_t paradigm_ids[3] = {-1, -1, -1};  // [NLU], [NLG], [S2S] (Denoiser::Kind order)
  int64_t first_sentinel = -1;             // <extra_id_0>; sentinel k is first_sentinel - k
  int64_t eos = 1, pad = 0;
  uint64_t seed = 1234;
};

class Ul2Samples : public SampleSource {
 public:
  // `raw`: chunks of Ul2LengthsOf(...).raw tokens.
  Ul2Samples(std::shared_ptr<const SampleSource> raw, const Ul2DataSpec& spec);
  int64_t size() const override { return raw_->size(); }
  int64_t sample_length() const override;
  void Get(int64_t i, int64_t* out) const override;
  // The denoiser sample i draws (an index into spec.denoisers), and, for the S-denoiser, its
  // split point (else -1).
  int64_t DenoiserOf(int64_t i) const;
  int64_t SplitOf(int64_t i) const;

 private:
  struct Draw {
    int64_t denoiser = 0, split = -1;
  };
  Draw DrawOf(Rng& rng) const;
  std::shared_ptr<const SampleSource> raw_;
  Ul2DataSpec spec_;
  Ul2Lengths lengths_;
  std::vector<double> cumulative_;
};

}  // namespace braid
