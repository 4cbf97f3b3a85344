// GPT data: open, split, index (one builder per node), blend (see gpt_data.h).
#include "framework/data/gpt_data.h"

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/data/blend.h"
#include "framework/data/gpt_dataset.h"

namespace braid {

absl::StatusOr<GptSplits> BuildSplits(const std::vector<std::string>& paths,
                                      std::vector<double> weights, const std::string& split,
                                      const int64_t num_samples[3], bool is_builder,
                                      const std::function<absl::Status()>& barrier,
                                      const SplitFactory& make) {
  if (paths.empty()) {
    return absl::InvalidArgumentError(
        "data.paths is empty. HINT: point it at the prefix preprocess_data wrote, e.g. "
        "data/corpus_text_document (without .bin/.idx).");
  }
  if (weights.empty()) weights.assign(paths.size(), 1.0);
  std::vector<std::shared_ptr<IndexedDataset>> data;
  std::vector<std::array<DocRange, 3>> ranges;
  for (const std::string& p : paths) {
    BRAID_ASSIGN_OR_RETURN(std::shared_ptr<IndexedDataset> d, IndexedDataset::Open(p));
    BRAID_ASSIGN_OR_RETURN(auto r, SplitDocuments(d->num_documents(), split));
    data.push_back(d);
    ranges.push_back(r);
  }
  // Each dataset provides exactly its share of each split's samples.
  std::vector<std::vector<int64_t>> counts(3);
  for (int s = 0; s < 3; ++s) counts[s] = BlendCounts(weights, num_samples[s]);
  auto open_all = [&](bool may_build) -> absl::StatusOr<GptSplits> {
    GptSplits out;
    for (int s = 0; s < 3; ++s) {
      if (num_samples[s] == 0) continue;
      std::vector<std::unique_ptr<SampleSource>> sources;
      for (size_t d = 0; d < data.size(); ++d) {
        BRAID_ASSIGN_OR_RETURN(
            auto src, make(data[d], static_cast<int>(d), ranges[d][s], s, counts[s][d], may_build));
        sources.push_back(std::move(src));
      }
      if (sources.size() == 1) {
        out.split[s] = std::move(sources[0]);
      } else {
        BRAID_ASSIGN_OR_RETURN(auto b,
                               BlendedDataset::Create(std::move(sources), weights, num_samples[s]));
        out.split[s] = std::move(b);
      }
    }
    return out;
  };
  if (is_builder) {
    BRAID_ASSIGN_OR_RETURN(GptSplits built, open_all(true));
    BRAID_RETURN_IF_ERROR(barrier());
    return built;
  }
  BRAID_RETURN_IF_ERROR(barrier());
  return open_all(false);
}

absl::StatusOr<GptSplits> BuildGptSplits(const GptDataSpec& spec, bool is_builder,
                                         const std::function<absl::Status()>& barrier) {
  return BuildSplits(
      spec.paths, spec.weights, spec.split, spec.num_samples, is_builder, barrier,
      [&](std::shared_ptr<IndexedDataset> data, int d, DocRange docs, int s, int64_t samples,
          bool may_build) -> absl::StatusOr<std::unique_ptr<SampleSource>> {
        GptIndexSpec is{docs,          spec.seq_length, samples,
                        spec.seed + d, kSplitNames[s],  spec.cache_dir};
        BRAID_ASSIGN_OR_RETURN(auto ds, GptDataset::Open(data, is, may_build));
        return std::unique_ptr<SampleSource>(std::move(ds));
      });
}

}  // namespace braid
