// GPT sample index: build, cache, read (see gpt_dataset.h).
#include "framework/data/gpt_dataset.h"

#include <cmath>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "framework/core/random.h"
#include "framework/core/status.h"

namespace braid {
namespace fs = std::filesystem;

absl::StatusOr<std::array<DocRange, 3>> SplitDocuments(int64_t n, const std::string& split) {
  std::vector<std::string> parts = absl::StrSplit(split, ',');
  std::vector<double> w;
  bool ok = parts.size() <= 3;
  for (const std::string& p : parts) {
    double v = 0;
    ok = ok && absl::SimpleAtod(p, &v) && v >= 0;
    w.push_back(v);
  }
  while (w.size() < 3) w.push_back(0);
  double total = 0;
  for (double v : w) total += v;
  if (!ok || total <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("data.split '", split,
                                                   "': expected three "
                                                   "non-negative proportions, e.g. 949,50,1"));
  }
  // Megatron: cumulative rounded boundaries, then shifted so the last one is exactly n.
  int64_t idx[4] = {0, 0, 0, 0};
  for (int k = 0; k < 3; ++k)
    idx[k + 1] = idx[k] + static_cast<int64_t>(std::llround(w[k] / total * n));
  int64_t diff = idx[3] - n;
  for (int k = 1; k < 4; ++k) idx[k] -= diff;
  std::array<DocRange, 3> out;
  for (int k = 0; k < 3; ++k)
    out[k] = DocRange{std::max<int64_t>(0, idx[k]), std::max<int64_t>(0, idx[k + 1])};
  return out;
}

namespace {

std::string Describe(const IndexedDataset& data, const GptIndexSpec& s) {
  std::error_code ec;
  std::string path = fs::weakly_canonical(data.prefix(), ec).string();
  return absl::StrFormat(
      "gpt v1 data=%s docs=%d seqs=%d tokens=%d split=%s[%d,%d) seq=%d "
      "samples=%d seed=%d",
      path, data.num_documents(), data.num_sequences(), data.num_tokens(), s.split_name,
      s.documents.begin, s.documents.end, s.seq_length, s.num_samples, s.seed);
}

}  // namespace

std::string GptDataset::CachePath(const IndexedDataset& data, const GptIndexSpec& spec) {
  return IndexCachePath(data.prefix(), spec.cache_dir, "gpt", spec.split_name,
                        Describe(data, spec));
}

int64_t GptDataset::DocLength(int64_t doc) const {
  int64_t n = 0;
  for (int64_t s = data_->document_index(doc); s < data_->document_index(doc + 1); ++s)
    n += data_->sequence_length(s);
  return n;
}

void GptDataset::ReadDoc(int64_t doc, int64_t offset, int64_t count, int64_t* out) const {
  for (int64_t s = data_->document_index(doc); s < data_->document_index(doc + 1) && count > 0;
       ++s) {
    int64_t len = data_->sequence_length(s);
    if (offset >= len) {
      offset -= len;
      continue;
    }
    int64_t take = std::min(count, len - offset);
    data_->Read(s, offset, take, out);
    out += take;
    count -= take;
    offset = 0;
  }
}

absl::StatusOr<std::unique_ptr<GptDataset>> GptDataset::Open(std::shared_ptr<IndexedDataset> data,
                                                             const GptIndexSpec& spec,
                                                             bool may_build) {
  std::unique_ptr<GptDataset> ds(new GptDataset());
  ds->data_ = data;
  ds->spec_ = spec;
  if (spec.documents.begin < 0 || spec.documents.end > data->num_documents() ||
      spec.seq_length < 1 || spec.num_samples < 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: bad GPT index request (documents [%d, %d) of %d, seq_length %d, samples %d)",
        data->prefix(), spec.documents.begin, spec.documents.end, data->num_documents(),
        spec.seq_length, spec.num_samples));
  }
  const std::string desc = Describe(*data, spec);
  const std::string path = CachePath(*data, spec);
  absl::StatusOr<std::unique_ptr<IndexCache>> cache = IndexCache::Open(path, desc);
  if (!cache.ok() && may_build) {
    int64_t tokens_per_epoch = 0;
    for (int64_t d = spec.documents.begin; d < spec.documents.end; ++d)
      tokens_per_epoch += ds->DocLength(d);
    if (tokens_per_epoch < spec.seq_length + 1 && spec.num_samples > 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s: the %s split holds %d tokens (documents [%d, %d)), fewer than one sample of %d "
          "(seq_length + 1): every sample would repeat the same tokens. HINT: adjust data.split, "
          "use more data or a shorter model.seq_length.",
          data->prefix(), spec.split_name, tokens_per_epoch, spec.documents.begin,
          spec.documents.end, spec.seq_length + 1));
    }
    const int64_t needed = spec.num_samples * spec.seq_length + 1;
    const int64_t epochs =
        spec.num_samples == 0 ? 0 : (needed + tokens_per_epoch - 1) / tokens_per_epoch;
    std::map<std::string, std::vector<int64_t>> arrays;
    std::vector<int64_t>& order = arrays["doc_order"];
    for (int64_t e = 0; e < epochs; ++e) {
      std::vector<int64_t> docs;
      for (int64_t d = spec.documents.begin; d < spec.documents.end; ++d) docs.push_back(d);
      Rng::Keyed(spec.seed, 0x6e706f6368ULL, e).Shuffle(docs);  // per-epoch document order
      order.insert(order.end(), docs.begin(), docs.end());
    }
    // Sample starts: walk seq_length + 1 tokens, then step back one token (the overlap).
    std::vector<int64_t>& starts = arrays["sample_starts"];
    starts.reserve(2 * (spec.num_samples + 1));
    int64_t pos = 0, offset = 0;
    starts.push_back(0);
    starts.push_back(0);
    for (int64_t i = 1; i <= spec.num_samples; ++i) {
      int64_t remaining = spec.seq_length + 1;
      while (remaining != 0) {
        int64_t doc_len = ds->DocLength(order[pos]) - offset;
        remaining -= doc_len;
        if (remaining <= 0) {
          offset += remaining + doc_len - 1;
          remaining = 0;
        } else {
          ++pos;
          offset = 0;
        }
      }
      starts.push_back(pos);
      starts.push_back(offset);
    }
    std::vector<int64_t>& shuffle = arrays["shuffle"];
    for (int64_t i = 0; i < spec.num_samples; ++i) shuffle.push_back(i);
    Rng::Keyed(spec.seed, 0x73616d706c65ULL).Shuffle(shuffle);
    arrays["epochs"] = {epochs};
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    BRAID_RETURN_IF_ERROR(IndexCache::Write(path, desc, arrays));
    cache = IndexCache::Open(path, desc);
  }
  if (!cache.ok()) {
    return absl::Status(cache.status().code(),
                        absl::StrCat(cache.status().message(), " (GPT sample index for the ",
                                     spec.split_name, " split of ", data->prefix(), ")"));
  }
  ds->cache_ = std::move(*cache);
  ds->doc_order_ = ds->cache_->array("doc_order");
  ds->sample_starts_ = ds->cache_->array("sample_starts");
  ds->shuffle_ = ds->cache_->array("shuffle");
  const int64_t* epochs = ds->cache_->array("epochs");
  if (ds->sample_starts_ == nullptr || ds->shuffle_ == nullptr || epochs == nullptr ||
      ds->cache_->size("sample_starts") != 2 * (spec.num_samples + 1) ||
      ds->cache_->size("shuffle") != spec.num_samples) {
    return absl::DataLossError(absl::StrCat(path,
                                            ": index arrays have the wrong sizes. HINT: "
                                            "delete the file; it is rebuilt."));
  }
  ds->epochs_ = epochs[0];
  return ds;
}

void GptDataset::Get(int64_t i, int64_t* out) const {
  int64_t j = shuffle_[i];
  int64_t p0 = sample_starts_[2 * j], o0 = sample_starts_[2 * j + 1];
  int64_t p1 = sample_starts_[2 * j + 2], o1 = sample_starts_[2 * j + 3];
  if (p0 == p1) {
    ReadDoc(doc_order_[p0], o0, o1 - o0 + 1, out);
    return;
  }
  int64_t first = DocLength(doc_order_[p0]) - o0;
  ReadDoc(doc_order_[p0], o0, first, out);
  out += first;
  for (int64_t p = p0 + 1; p < p1; ++p) {
    int64_t len = DocLength(doc_order_[p]);
    ReadDoc(doc_order_[p], 0, len, out);
    out += len;
  }
  ReadDoc(doc_order_[p1], 0, o1 + 1, out);
}

}  // namespace braid
