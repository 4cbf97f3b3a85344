// GPT data: open, split, index (one builder per node), blend (see gpt_data.h).
#include "framework/data/gpt_data.h"

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/data/blend.h"
#include "framework/data/gpt_dataset.h"

namespace braid {

absl::StatusOr<GptSplits> BuildGptSplits(const GptDataSpec& spec, bool is_builder,
                                         const std::function<absl::Status()>& barrier) {
  static const char* kNames[3] = {"train", "valid", "test"};
  if (spec.paths.empty()) {
    return absl::InvalidArgumentError(
        "data.paths is empty. HINT: point it at the prefix preprocess_data wrote, e.g. "
        "data/corpus_text_document (without .bin/.idx).");
  }
  std::vector<double> weights = spec.weights;
  if (weights.empty()) weights.assign(spec.paths.size(), 1.0);
  std::vector<std::shared_ptr<IndexedDataset>> data;
  std::vector<std::array<DocRange, 3>> ranges;
  for (const std::string& p : spec.paths) {
    BRAID_ASSIGN_OR_RETURN(std::shared_ptr<IndexedDataset> d, IndexedDataset::Open(p));
    BRAID_ASSIGN_OR_RETURN(auto r, SplitDocuments(d->num_documents(), spec.split));
    data.push_back(d);
    ranges.push_back(r);
  }
  // Each dataset provides exactly its share of each split's samples.
  std::vector<std::vector<int64_t>> counts(3);
  for (int s = 0; s < 3; ++s) counts[s] = BlendCounts(weights, spec.num_samples[s]);
  auto open_all = [&](bool may_build) -> absl::StatusOr<GptSplits> {
    GptSplits out;
    for (int s = 0; s < 3; ++s) {
      if (spec.num_samples[s] == 0) continue;
      std::vector<std::unique_ptr<SampleSource>> sources;
      for (size_t d = 0; d < data.size(); ++d) {
        GptIndexSpec is{ranges[d][s], spec.seq_length, counts[s][d], spec.seed + d, kNames[s],
                        spec.cache_dir};
        BRAID_ASSIGN_OR_RETURN(auto ds, GptDataset::Open(data[d], is, may_build));
        sources.push_back(std::move(ds));
      }
      if (sources.size() == 1) {
        out.split[s] = std::move(sources[0]);
      } else {
        BRAID_ASSIGN_OR_RETURN(auto b, BlendedDataset::Create(std::move(sources), weights,
                                                              spec.num_samples[s]));
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

}  // namespace braid
