// The data splits: open, split, index (one builder per node), blend (see splits.h).
#include "framework/data/splits.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/data/blend.h"
#include "framework/data/gpt_dataset.h"

namespace braid {

absl::StatusOr<DataSplits> BuildSplits(const std::vector<std::string>& paths,
                                       std::vector<double> weights, const std::string& split,
                                       const int64_t num_samples[3], bool is_builder,
                                       const std::function<absl::Status()>& barrier,
                                       const SplitFactory& make, const DataChecks& checks) {
  if (paths.empty()) {
    return absl::InvalidArgumentError(
        "data.paths is empty. HINT: point it at the prefix preprocess_data wrote, e.g. "
        "data/corpus_text_document (without .bin/.idx).");
  }
  if (weights.empty()) weights.assign(paths.size(), 1.0);
  std::vector<std::shared_ptr<IndexedDataset>> data;
  std::vector<std::array<DocRange, 3>> ranges;
  for (size_t i = 0; i < paths.size(); ++i) {
    BRAID_ASSIGN_OR_RETURN(std::shared_ptr<IndexedDataset> d, IndexedDataset::Open(paths[i]));
    // The node's builder scans the data once (cached beside it); the others share its verdict:
    // a refusal ends the whole job.
    if (checks.vocab_size > 0 && is_builder) {
      const int64_t max = d->MaxTokenId();
      if (max >= checks.vocab_size) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "data.paths[%d] %s: token id %d is outside the model's vocabulary of %d ids. HINT: "
            "the data was preprocessed with another tokenizer; preprocess it with the recipe's "
            "(data.tokenizer, data.vocab_file), or point data.vocab_file at the one it was made "
            "with.",
            i, paths[i], max, checks.vocab_size));
      }
    }
    BRAID_ASSIGN_OR_RETURN(auto r, SplitDocuments(d->num_documents(), split));
    data.push_back(d);
    ranges.push_back(r);
  }
  int64_t samples[3] = {num_samples[0], num_samples[1], num_samples[2]};
  bool valid_empty = true;
  for (const auto& r : ranges) valid_empty = valid_empty && r[1].size() == 0;
  if (samples[1] > 0 && valid_empty) {
    if (!checks.valid_optional) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "data.split '%s' leaves the validation split without documents. HINT: give it a "
          "share (e.g. \"949,50,1\"), or set train.eval_interval=0 to train without validation.",
          split));
    }
    samples[1] = 0;  // no validation
  }
  // Each dataset provides exactly its share of each split's samples.
  std::vector<std::vector<int64_t>> counts(3);
  for (int s = 0; s < 3; ++s) counts[s] = BlendCounts(weights, samples[s]);
  auto open_all = [&](bool may_build) -> absl::StatusOr<DataSplits> {
    DataSplits out;
    for (int s = 0; s < 3; ++s) {
      if (samples[s] == 0) continue;
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
                               BlendedDataset::Create(std::move(sources), weights, samples[s]));
        out.split[s] = std::move(b);
      }
    }
    return out;
  };
  if (is_builder) {
    BRAID_ASSIGN_OR_RETURN(DataSplits built, open_all(true));
    BRAID_RETURN_IF_ERROR(barrier());
    return built;
  }
  BRAID_RETURN_IF_ERROR(barrier());
  return open_all(false);
}

absl::StatusOr<DataSplits> BuildDataSplits(const GptDataSpec& spec, bool is_builder,
                                           const std::function<absl::Status()>& barrier) {
  return BuildSplits(
      spec.paths, spec.weights, spec.split, spec.num_samples, is_builder, barrier,
      [&](std::shared_ptr<IndexedDataset> data, int d, DocRange docs, int s, int64_t samples,
          bool may_build) -> absl::StatusOr<std::unique_ptr<SampleSource>> {
        GptIndexSpec is{docs,          spec.seq_length, samples,
                        spec.seed + d, kSplitNames[s],  spec.cache_dir};
        BRAID_ASSIGN_OR_RETURN(auto ds, GptDataset::Open(data, is, may_build));
        return std::unique_ptr<SampleSource>(std::move(ds));
      },
      spec.checks);
}

}  // namespace braid
