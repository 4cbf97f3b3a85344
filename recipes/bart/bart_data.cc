// BART samples (see bart_data.h).
#include "recipes/bart/bart_data.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/check.h"
#include "framework/core/status.h"
#include "recipes/bart/bart_batch.h"

namespace braid {
namespace fs = std::filesystem;

namespace {
int64_t MaxTokens(const BartDataSpec& s) { return s.seq_length - 2 - (s.language >= 0 ? 1 : 0); }

std::string Describe(const IndexedDataset& data, const BartDataSpec& s) {
  std::error_code ec;
  return absl::StrFormat(
      "bart v1 data=%s seqs=%d tokens=%d split=%s[%d,%d) max=%d samples=%d "
      "seed=%d",
      fs::weakly_canonical(data.prefix(), ec).string(), data.num_sequences(), data.num_tokens(),
      s.split_name, s.documents.begin, s.documents.end, MaxTokens(s), s.num_samples, s.seed);
}
}  // namespace

absl::StatusOr<std::unique_ptr<BartDataset>> BartDataset::Open(std::shared_ptr<IndexedDataset> data,
                                                               const BartDataSpec& spec,
                                                               bool may_build) {
  std::unique_ptr<BartDataset> ds(new BartDataset());
  ds->data_ = data;
  ds->spec_ = spec;
  ds->sampler_ = SpanLengthSampler(spec.noise.poisson_lambda);
  const std::string desc = Describe(*data, spec);
  const std::string path =
      IndexCachePath(data->prefix(), spec.cache_dir, "bart", spec.split_name, desc);
  auto cache =
      IndexCache::OpenOrBuild(path, desc, may_build, [&]() -> absl::StatusOr<IndexCache::Arrays> {
        const int64_t max_tokens = MaxTokens(spec);
        std::vector<int64_t> packs;
        for (int64_t d = spec.documents.begin; d < spec.documents.end; ++d) {
          const int64_t first = data->document_index(d), end = data->document_index(d + 1);
          int64_t start = first, len = 0;
          for (int64_t s = first; s < end; ++s) {
            const int64_t n = data->sequence_length(s);
            if (len > 0 && len + n > max_tokens) {  // close the pack before this sentence
              packs.insert(packs.end(), {start, s});
              start = s, len = 0;
            }
            len += n;
          }
          if (len > 0) packs.insert(packs.end(), {start, end});
        }
        const int64_t n_packs = static_cast<int64_t>(packs.size() / 2);
        if (n_packs == 0 && spec.num_samples > 0) {
          return absl::FailedPreconditionError(
              absl::StrFormat("%s: the %s split has no tokens. HINT: check data.split, and "
                              "preprocess BART data with --split-sentences.",
                              data->prefix(), spec.split_name));
        }
        const std::vector<int64_t> order = EpochOrder(n_packs, spec.num_samples, spec.seed);
        return IndexCache::Arrays{{"packs", packs}, {"order", order}};
      });
  if (!cache.ok()) return cache.status();
  ds->cache_ = std::move(*cache);
  ds->packs_ = ds->cache_->array("packs");
  ds->order_ = ds->cache_->array("order");
  if (ds->order_ == nullptr || ds->cache_->size("order") != spec.num_samples) {
    return absl::DataLossError(absl::StrCat(path, ": wrong index sizes. HINT: delete it."));
  }
  return ds;
}

int64_t BartDataset::sample_length() const {
  return BartRow(spec_.seq_length, spec_.seq_length).length();
}

std::vector<std::vector<int64_t>> BartDataset::Sentences(int64_t i) const {
  const int64_t* pack = packs_ + 2 * order_[i];
  std::vector<std::vector<int64_t>> out;
  int64_t left = MaxTokens(spec_);
  for (int64_t s = pack[0]; s < pack[1] && left > 0; ++s) {
    std::vector<int64_t> seq = data_->Sequence(s);
    while (!seq.empty() && (seq.back() == spec_.eos || seq.back() == spec_.document_end)) {
      seq.pop_back();  // the document's end (BART writes its own </s>)
    }
    if (static_cast<int64_t>(seq.size()) > left) seq.resize(left);
    left -= static_cast<int64_t>(seq.size());
    if (!seq.empty()) out.push_back(std::move(seq));
  }
  return out;
}

void BartDataset::Get(int64_t i, int64_t* out) const {
  const std::vector<std::vector<int64_t>> sentences = Sentences(i);
  Rng rng = Rng::Keyed(spec_.seed, static_cast<uint64_t>(i));
  // The target: <s> sentences </s> [<lang>]; each sentence's start in it.
  std::vector<int64_t> target = {spec_.bos}, at;
  for (const auto& s : sentences) {
    at.push_back(static_cast<int64_t>(target.size()));
    target.insert(target.end(), s.begin(), s.end());
  }
  target.push_back(spec_.eos);
  // The source, sentences permuted.
  NoisedTokens src;
  src.ids = {spec_.bos};
  src.origin = {0};
  const DenoisingSpec& noise = spec_.noise;
  const std::vector<int64_t> order =
      PermutationOrder(static_cast<int64_t>(sentences.size()), noise.permute_sentences, rng);
  for (int64_t k : order) {
    for (size_t j = 0; j < sentences[k].size(); ++j) {
      src.ids.push_back(sentences[k][j]);
      src.origin.push_back(at[k] + static_cast<int64_t>(j));
    }
  }
  src.ids.push_back(spec_.eos);
  src.origin.push_back(static_cast<int64_t>(target.size()) - 1);
  if (noise.mask_ratio > 0) AddWholeWordMask(src, noise, sampler_, rng);
  if (noise.insert_ratio > 0) AddInsertionNoise(src, noise.insert_ratio, noise, rng);
  if (noise.rotate_ratio > 0 && rng.Uniform() < noise.rotate_ratio) AddRollingNoise(src, rng);
  if (spec_.language >= 0) {
    target.push_back(spec_.language);
    src.ids.push_back(spec_.language);
    src.origin.push_back(static_cast<int64_t>(target.size()) - 1);
  }
  const BartRow r(spec_.seq_length, spec_.seq_length);
  // Insertions may have made the source longer than the encoder: keep its tail (</s>, <lang>).
  const int64_t tail = spec_.language >= 0 ? 2 : 1;
  while (static_cast<int64_t>(src.ids.size()) > r.enc) {
    const auto cut = static_cast<std::ptrdiff_t>(src.ids.size()) - tail - 1;
    src.ids.erase(src.ids.begin() + cut);
    src.origin.erase(src.origin.begin() + cut);
  }
  BRAID_CHECK(static_cast<int64_t>(target.size()) <= r.dec);
  std::vector<bool> copied(target.size(), false);
  for (size_t k = 0; k < src.ids.size(); ++k) {
    const int64_t o = src.origin[k];
    if (o >= 0 && src.ids[k] == target[o]) copied[o] = true;
  }
  const int64_t n_in = static_cast<int64_t>(src.ids.size());
  const int64_t n_tg = static_cast<int64_t>(target.size());
  for (int64_t k = 0; k < r.enc; ++k) {
    out[r.inputs() + k] = k < n_in ? src.ids[k] : spec_.pad;
    out[r.input_padding() + k] = k >= n_in;
  }
  const int64_t start = spec_.language >= 0 ? spec_.language : spec_.eos;
  for (int64_t k = 0; k < r.dec; ++k) {
    out[r.decoder_inputs() + k] = k == 0 ? start : (k - 1 < n_tg ? target[k - 1] : spec_.pad);
    out[r.labels() + k] = k < n_tg ? target[k] : -100;
    out[r.noised() + k] = k < n_tg && !copied[k];
  }
}

}  // namespace braid
