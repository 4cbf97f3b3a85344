// Fill-in-the-middle samples (see fim.h).
#include "framework/data/fim.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/check.h"
#include "framework/data/token_names.h"

namespace braid {
namespace {

// The stream of FIM draws, apart from every other use of the run's seed.
constexpr uint64_t kFimSalt = 0xF11A1DD1E5ULL;

// Byte offsets of the code points of `text` (and its size at the end): a cut between characters,
// as Python's str slicing cuts.
std::vector<size_t> CharacterOffsets(const std::string& text) {
  std::vector<size_t> at;
  at.reserve(text.size() + 1);
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) at.push_back(i);
  }
  at.push_back(text.size());
  return at;
}

class Transformer {
 public:
  Transformer(const FimOptions& o, const Tokenizer& tok, Rng& rng, FimStats* stats)
      : o_(o), tok_(tok), rng_(rng), stats_(stats) {}

  // One document (or fragment) [begin, end) of `s`, with probability `rate`.
  void Permute(const std::vector<int64_t>& s, size_t begin, size_t end, double rate) {
    if (begin == end) return;
    if (stats_) ++stats_->documents;
    if (!(rng_.Uniform() < rate)) {
      out_.insert(out_.end(), s.begin() + begin, s.begin() + end);
      return;
    }
    const std::string text = tok_.Decode(std::vector<int32_t>(s.begin() + begin, s.begin() + end));
    const std::vector<size_t> at = CharacterOffsets(text);
    const uint64_t chars = at.size() - 1;
    uint64_t a = rng_.Below(chars + 1), b = rng_.Below(chars + 1);
    if (a > b) std::swap(a, b);
    const std::string_view whole(text);
    auto ids = [&](uint64_t from, uint64_t to) {
      const std::vector<int32_t> e = tok_.Encode(whole.substr(at[from], at[to] - at[from]));
      return std::vector<int64_t>(e.begin(), e.end());
    };
    const std::vector<int64_t> prefix = ids(0, a), middle = ids(a, b), suffix = ids(b, chars);
    auto put = [&](const std::vector<int64_t>& v) { out_.insert(out_.end(), v.begin(), v.end()); };
    if (rng_.Uniform() < o_.spm_rate) {
      if (stats_) ++stats_->spm;
      out_.push_back(o_.prefix);
      out_.push_back(o_.suffix);
      put(suffix);
      out_.push_back(o_.middle);
      put(prefix);
      put(middle);
    } else {
      if (stats_) ++stats_->psm;
      out_.push_back(o_.prefix);
      put(prefix);
      out_.push_back(o_.suffix);
      put(suffix);
      out_.push_back(o_.middle);
      put(middle);
    }
  }

  // A document [begin, end): split into fragments at the split token when it holds one.
  void Document(const std::vector<int64_t>& s, size_t begin, size_t end) {
    if (o_.split < 0 ||
        std::find(s.begin() + begin, s.begin() + end, o_.split) == s.begin() + end) {
      Permute(s, begin, end, o_.rate);
      return;
    }
    if (!(rng_.Uniform() < o_.rate)) {
      out_.insert(out_.end(), s.begin() + begin, s.begin() + end);
      return;
    }
    size_t from = begin;
    for (size_t j = begin; j < end; ++j) {
      if (s[j] != o_.split) continue;
      Permute(s, from, j, o_.fragment_rate);
      out_.push_back(o_.split);
      from = j + 1;
    }
    Permute(s, from, end, o_.fragment_rate);
  }

  std::vector<int64_t> Run(const std::vector<int64_t>& s) {
    out_.reserve(s.size() + 16);
    size_t from = 0;
    for (size_t j = 0; j < s.size(); ++j) {
      if (s[j] != o_.eod) continue;
      Document(s, from, j);
      out_.push_back(o_.eod);  // each end-of-document token stays (Megatron drops it after an
      from = j + 1;            // empty document; here none is lost)
    }
    Document(s, from, s.size());
    if (out_.size() > s.size()) {
      if (stats_) stats_->truncated += static_cast<int64_t>(out_.size() - s.size());
      out_.resize(s.size());
    } else if (out_.size() < s.size()) {
      if (stats_) stats_->padded += static_cast<int64_t>(s.size() - out_.size());
      out_.resize(s.size(), o_.pad);
    }
    return std::move(out_);
  }

 private:
  const FimOptions& o_;
  const Tokenizer& tok_;
  Rng& rng_;
  FimStats* stats_;
  std::vector<int64_t> out_;
};

}  // namespace

absl::Status ResolveFimIds(const Tokenizer& tok, const std::vector<std::string>& fim_tokens,
                           const std::string& split_sample, FimOptions* o) {
  if (fim_tokens.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("data.fim_tokens: ", fim_tokens.size(),
                     " names; expected 4 (prefix, middle, suffix, pad), e.g. [",
                     absl::StrJoin(DefaultFimTokens(), ", "), "]."));
  }
  std::vector<std::string> missing;
  int32_t* ids[4] = {&o->prefix, &o->middle, &o->suffix, &o->pad};
  for (size_t k = 0; k < 4; ++k) {
    *ids[k] = static_cast<int32_t>(TokenIdByName(tok, fim_tokens[k]));
    if (*ids[k] < 0) missing.push_back(fim_tokens[k]);
  }
  o->split = -1;
  if (!split_sample.empty()) {
    o->split = static_cast<int32_t>(TokenIdByName(tok, split_sample));
    if (o->split < 0) missing.push_back(split_sample);
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", tok.name(), " vocabulary has no token ", absl::StrJoin(missing, ", "),
        ". HINT: add them with data.added_tokens (each becomes one id after the vocabulary), or "
        "name the vocabulary's own sentinels in data.fim_tokens."));
  }
  o->eod = tok.special().eod;
  if (o->eod < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", tok.name(),
        " vocabulary has no end-of-document token to split the samples into documents."));
  }
  return absl::OkStatus();
}

std::vector<int64_t> FimTransform(const std::vector<int64_t>& sample, const FimOptions& o,
                                  const Tokenizer& tok, Rng& rng, FimStats* stats) {
  return Transformer(o, tok, rng, stats).Run(sample);
}

FimSource::FimSource(std::shared_ptr<const SampleSource> inner, FimOptions o,
                     TokenizerOptions tokenizer, uint64_t seed, int split)
    : inner_(std::move(inner)),
      o_(o),
      tokenizer_(std::move(tokenizer)),
      seed_(seed),
      split_(split) {}

void FimSource::Get(int64_t i, int64_t* out) const {
  const int64_t len = inner_->sample_length();
  std::vector<int64_t> s(static_cast<size_t>(len));
  inner_->Get(i, s.data());
  std::unique_ptr<Tokenizer> tok;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      tok = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!tok) {
    auto made = MakeTokenizer(tokenizer_);
    // The recipe loaded this tokenizer before any sample was read (ResolveFimIds).
    BRAID_CHECK(made.ok()) << made.status().message();
    tok = *std::move(made);
  }
  Rng rng = Rng::Keyed(seed_ ^ kFimSalt, static_cast<uint64_t>(split_), static_cast<uint64_t>(i));
  const std::vector<int64_t> t = FimTransform(s, o_, *tok, rng);
  std::copy(t.begin(), t.end(), out);
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(tok));
}

}  // namespace braid
