// GPT samples over one indexed dataset (docs/formats.md, "GPT samples"; Megatron's GPTDataset):
// documents of a split are shuffled per epoch (seeded) and concatenated; sample i is the
// seq_len + 1 tokens that start where sample i - 1 ended minus one (so tokens = x[:-1],
// labels = x[1:]), crossing document boundaries; the samples are then visited in a seeded
// permutation. Three index arrays (document order, sample starts, sample permutation) are built
// once and cached on disk (index_cache.h), by one process per node, then memory-mapped.
#pragma once
#include <array>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "framework/data/index_cache.h"
#include "framework/data/indexed_dataset.h"
#include "framework/data/sample_source.h"

namespace braid {

struct DocRange {
  int64_t begin = 0, end = 0;  // documents [begin, end)
  int64_t size() const { return end - begin; }
};

// Megatron's split of N documents by proportions "949,50,1": train, valid, test ranges.
absl::StatusOr<std::array<DocRange, 3>> SplitDocuments(int64_t num_documents,
                                                       const std::string& split);

struct GptIndexSpec {
  DocRange documents;
  int64_t seq_length = 0;
  int64_t num_samples = 0;
  uint64_t seed = 0;
  std::string split_name;  // "train", "valid", "test": part of the cache key
  std::string cache_dir;   // empty -> next to the dataset
};

class GptDataset : public SampleSource {
 public:
  // Opens the cached index for `spec`, building it first when `may_build` and it is missing or
  // stale. Without `may_build` a missing index is an error (the caller waits for the builder).
  static absl::StatusOr<std::unique_ptr<GptDataset>> Open(std::shared_ptr<IndexedDataset> data,
                                                          const GptIndexSpec& spec, bool may_build);
  // Where the index of `spec` is cached.
  static std::string CachePath(const IndexedDataset& data, const GptIndexSpec& spec);

  int64_t size() const override { return spec_.num_samples; }
  int64_t sample_length() const override { return spec_.seq_length + 1; }
  void Get(int64_t i, int64_t* out) const override;
  int64_t epochs() const { return epochs_; }

 private:
  GptDataset() = default;
  int64_t DocLength(int64_t doc) const;
  // Copies `count` tokens of document `doc` from token `offset` on.
  void ReadDoc(int64_t doc, int64_t offset, int64_t count, int64_t* out) const;

  std::shared_ptr<IndexedDataset> data_;
  GptIndexSpec spec_;
  std::unique_ptr<IndexCache> cache_;
  const int64_t* doc_order_ = nullptr;      // document ids, epoch after epoch
  const int64_t* sample_starts_ = nullptr;  // (position in doc_order_, offset) x (num_samples + 1)
  const int64_t* shuffle_ = nullptr;        // permutation of the samples
  int64_t epochs_ = 0;
};

}  // namespace braid
