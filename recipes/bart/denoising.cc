// BART's noising (see denoising.h).
#include "recipes/bart/denoising.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace braid {

void FillVocabulary(const Tokenizer& tok, DenoisingSpec* spec) {
  const int64_t v = tok.VocabSize();
  const SpecialIds& s = tok.special();
  std::vector<bool> special(v, false);
  for (int32_t id : {s.pad, s.eod, s.bos, s.cls, s.sep, s.mask, s.unk})
    if (id >= 0 && id < v) special[id] = true;
  for (int32_t id : s.sentinels)
    if (id >= 0 && id < v) special[id] = true;
  spec->word_start.assign(v, true);
  spec->randoms.clear();
  const std::string name = tok.name();
  for (int64_t id = 0; id < v; ++id) {
    const std::string piece = tok.IdToToken(static_cast<int32_t>(id));
    const bool bracketed = piece.size() > 2 && ((piece.front() == '<' && piece.back() == '>') ||
                                                (piece.front() == '[' && piece.back() == ']'));
    if (name == "sentencepiece" && bracketed) special[id] = true;
    if (special[id]) continue;
    if (name == "sentencepiece") {
      spec->word_start[id] = piece.rfind("\xE2\x96\x81", 0) == 0;  // "▁"
    } else if (name == "gpt2") {
      spec->word_start[id] = piece.rfind("\xC4\xA0", 0) == 0;  // "Ġ", the byte-level space
    } else if (name == "wordpiece") {
      spec->word_start[id] = piece.rfind("##", 0) != 0;
    }
    spec->randoms.push_back(id);
  }
}

SpanLengthSampler::SpanLengthSampler(double lambda) {
  // fairseq: lambda^k * e^-lambda / k! for k < 128, normalised.
  std::vector<double> p(128);
  double fact = 1, power = 1, total = 0;
  for (int k = 0; k < 128; ++k) {
    if (k > 0) fact *= k, power *= lambda;
    p[k] = power * std::exp(-lambda) / fact;
    total += p[k];
  }
  double run = 0;
  for (double x : p) cdf_.push_back(run += x / total);
}

int64_t SpanLengthSampler::Draw(Rng& rng) const {
  const double u = rng.Uniform();
  auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  return std::min<int64_t>(it - cdf_.begin(), static_cast<int64_t>(cdf_.size()) - 1);
}

namespace {
int64_t RandomToken(const DenoisingSpec& spec, Rng& rng) {
  return spec.randoms[rng.Below(spec.randoms.size())];
}

// The first `k` of a uniform random permutation of 0..n-1 (a partial Fisher-Yates shuffle).
std::vector<int64_t> RandomSubset(int64_t n, int64_t k, Rng& rng) {
  std::vector<int64_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = i;
  for (int64_t i = 0; i < k; ++i) {
    std::swap(all[i], all[i + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(n - i)))]);
  }
  all.resize(k);
  return all;
}

void Keep(NoisedTokens& t, const std::vector<bool>& keep) {
  size_t w = 0;
  for (size_t r = 0; r < t.ids.size(); ++r) {
    if (!keep[r]) continue;
    t.ids[w] = t.ids[r];
    t.origin[w] = t.origin[r];
    ++w;
  }
  t.ids.resize(w);
  t.origin.resize(w);
}
}  // namespace

std::vector<int64_t> PermutationOrder(int64_t n, double ratio, Rng& rng) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  // fairseq: ceil(((n * 2) * p) / 2.0) sentences, randperm(n)[:k], placed by randperm(k).
  const int64_t k = static_cast<int64_t>(std::ceil((n * 2) * ratio / 2.0));
  if (k <= 1) return order;
  const std::vector<int64_t> chosen = RandomSubset(n, k, rng);
  const std::vector<int64_t> places = RandomSubset(k, k, rng);
  for (int64_t j = 0; j < k; ++j) order[chosen[j]] = chosen[places[j]];
  return order;
}

void AddWholeWordMask(NoisedTokens& t, const DenoisingSpec& spec, const SpanLengthSampler& sampler,
                      Rng& rng, InfillingStats* stats) {
  const int64_t n = static_cast<int64_t>(t.ids.size());
  if (n < 3) return;
  std::vector<int64_t> is_start(n, 0), starts;
  for (int64_t k = 1; k + 1 < n; ++k) {
    const int64_t id = t.ids[k];
    is_start[k] =
        id >= 0 && id < static_cast<int64_t>(spec.word_start.size()) && spec.word_start[id];
    if (is_start[k]) starts.push_back(k);
  }
  const int64_t words = static_cast<int64_t>(starts.size());
  // fairseq computes this in float32: ceil(float(words) * p).
  int64_t budget = static_cast<int64_t>(
      std::ceil(static_cast<float>(words) * static_cast<float>(spec.mask_ratio)));
  if (stats != nullptr) stats->words = words, stats->budget = budget;
  if (budget == 0) return;
  // Draw lengths, `budget` at a time, until they sum to the budget; trim the last.
  std::vector<int64_t> lengths;
  int64_t sum = 0;
  while (sum < budget) {
    for (int64_t j = 0; j < budget; ++j) lengths.push_back(sampler.Draw(rng));
    sum = 0;
    for (int64_t l : lengths) sum += l;
  }
  int64_t run = 0, i = 0;
  while (run + lengths[i] < budget) run += lengths[i++];
  lengths[i] = budget - run;
  lengths.resize(i + 1);
  if (stats != nullptr) stats->lengths = lengths;
  std::vector<int64_t> spans;
  for (int64_t l : lengths)
    if (l > 0) spans.push_back(l);
  const int64_t inserts = static_cast<int64_t>(lengths.size() - spans.size());
  const int64_t num = static_cast<int64_t>(spans.size());
  if (num == 0) {
    AddInsertionNoise(t, static_cast<double>(inserts) / n, spec, rng);
    return;
  }
  std::vector<int64_t> chosen = RandomSubset(words, num, rng);
  std::vector<bool> random(num), keep(n, true);
  for (int64_t j = 0; j < num; ++j) random[j] = rng.Uniform() < spec.mask_random;
  auto noise = [&](int64_t pos, bool rnd) {
    t.ids[pos] = rnd ? RandomToken(spec, rng) : spec.mask;
  };
  for (int64_t j = 0; j < num; ++j) {
    const int64_t first = starts[chosen[j]];
    if (spec.replace_length == 0) {
      keep[first] = false;
    } else {
      noise(first, random[j]);
    }
    if (stats != nullptr && random[j]) ++stats->random_spans;
    // Extend over whole words: the span ends before its (length+1)-th word start or </s>.
    int64_t left = spans[j] - 1, pos = first;
    while (true) {
      left -= pos + 1 == n - 1 ? 255 : is_start[pos + 1];
      if (left < 0) break;
      ++pos;
      if (spec.replace_length != -1) {
        keep[pos] = false;
      } else {
        noise(pos, random[j]);
      }
    }
  }
  Keep(t, keep);
  if (inserts > 0) {
    AddInsertionNoise(t, static_cast<double>(inserts) / static_cast<double>(t.ids.size()), spec,
                      rng);
  }
}

void AddInsertionNoise(NoisedTokens& t, double ratio, const DenoisingSpec& spec, Rng& rng) {
  if (ratio == 0.0) return;
  const int64_t len = static_cast<int64_t>(t.ids.size());
  const int64_t n = static_cast<int64_t>(std::ceil(len * ratio));
  if (n <= 0 || len < 2) return;
  // Inserted at positions 1 .. len + n - 2 of the result (never before <s> or after </s>).
  std::vector<int64_t> at = RandomSubset(len + n - 2, n, rng);
  const int64_t num_random = static_cast<int64_t>(std::ceil(n * spec.mask_random));
  std::vector<int64_t> fill(len + n, -1);
  for (int64_t j = 0; j < n; ++j) {
    fill[at[j] + 1] = j < num_random ? RandomToken(spec, rng) : spec.mask;
  }
  NoisedTokens out;
  out.ids.reserve(len + n);
  int64_t r = 0;
  for (int64_t k = 0; k < len + n; ++k) {
    if (fill[k] >= 0) {
      out.ids.push_back(fill[k]);
      out.origin.push_back(-1);
    } else {
      out.ids.push_back(t.ids[r]);
      out.origin.push_back(t.origin[r]);
      ++r;
    }
  }
  t = std::move(out);
}

void AddRollingNoise(NoisedTokens& t, Rng& rng) {
  const int64_t len = static_cast<int64_t>(t.ids.size());
  // fairseq: offset = randint(1, max(1, len - 1) + 1); <s>, [offset, -1), [1, offset), </s>.
  const int64_t offset =
      1 + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(std::max<int64_t>(1, len - 1))));
  if (len < 3 || offset >= len - 1) return;
  NoisedTokens out;
  auto take = [&](int64_t a, int64_t b) {
    for (int64_t k = a; k < b; ++k) out.ids.push_back(t.ids[k]), out.origin.push_back(t.origin[k]);
  };
  take(0, 1);
  take(offset, len - 1);
  take(1, offset);
  take(len - 1, len);
  t = std::move(out);
}

}  // namespace braid
