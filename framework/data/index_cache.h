// Index files cached on disk (GPT sample indices, blending indices): named int64 arrays behind a
// header with a magic, a version, a description of what was indexed and the array sizes, all
// validated on open. Written to a temporary file and renamed, so concurrent builders (one per
// node) and crashes never leave a half-written file under the final name. Memory-mapped on read.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace braid {

class IndexCache {
 public:
  // Writes `arrays` (in name order) with `description` to `path` atomically.
  static absl::Status Write(const std::string& path, const std::string& description,
                            const std::map<std::string, std::vector<int64_t>>& arrays);
  // Maps `path`; fails (NotFound when absent, DataLoss when corrupt, FailedPrecondition when the
  // description differs) without side effects.
  static absl::StatusOr<std::unique_ptr<IndexCache>> Open(const std::string& path,
                                                          const std::string& description);
  // Open(), or, when the file is absent or stale and `may_build` (the node's index builder),
  // build()'s arrays written there first (its folder made) and then opened.
  using Arrays = std::map<std::string, std::vector<int64_t>>;
  static absl::StatusOr<std::unique_ptr<IndexCache>> OpenOrBuild(
      const std::string& path, const std::string& description, bool may_build,
      const std::function<absl::StatusOr<Arrays>()>& build);
  ~IndexCache();

  const int64_t* array(const std::string& name) const;  // null when absent
  int64_t size(const std::string& name) const;

 private:
  IndexCache() = default;
  void* map_ = nullptr;
  size_t bytes_ = 0;
  std::map<std::string, std::pair<const int64_t*, int64_t>> arrays_;
};

// The order of `count` samples over `items` packs: epoch e is a permutation of 0..items-1 drawn
// from Rng::Keyed(seed, "epoch", e), epochs back to back, the last cut at `count` (BERT's and
// BART's sample order).
std::vector<int64_t> EpochOrder(int64_t items, int64_t count, uint64_t seed);

// The cache file of a dataset index: <cache_dir, or the data's folder>/<data file name>_<kind>_
// <split>_<hash of the description>.idx (kind: gpt, bert, bart).
std::string IndexCachePath(const std::string& data_prefix, const std::string& cache_dir,
                           const std::string& kind, const std::string& split,
                           const std::string& description);

// FNV-1a 64 of a string, as 16 hex digits (cache file names).
std::string HashHex(const std::string& s);

}  // namespace braid
