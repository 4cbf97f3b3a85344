// The splits every family's data is made of: one or more indexed datasets (blended by weight),
// each split into train/valid/test by documents, with sample indices cached on disk
// (BuildSplits; BuildDataSplits for GPT samples). In a multi-process job one process per node
// builds the missing index files (`is_builder`: local rank 0), every process waits at `barrier`,
// then the others memory-map what the builder wrote.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/data/gpt_dataset.h"
#include "framework/data/sample_source.h"

namespace braid {

// What every family's data must satisfy, checked when the datasets are opened.
struct DataChecks {
  int64_t vocab_size = 0;       // > 0: every token id must be below it (the model's vocabulary)
  bool valid_optional = false;  // an empty validation split means no validation (not an error)
};

struct GptDataSpec {
  std::vector<std::string> paths;  // dataset prefixes (without .bin/.idx)
  std::vector<double> weights;     // empty -> equal
  std::string split = "949,50,1";
  int64_t seq_length = 0;
  uint64_t seed = 1234;
  std::string cache_dir;
  int64_t num_samples[3] = {0, 0, 0};  // train, valid, test
  DataChecks checks;
};

inline constexpr const char* kSplitNames[3] = {"train", "valid", "test"};

struct DataSplits {
  std::shared_ptr<const SampleSource> split[3];  // train, valid, test (null when 0 samples)
};

absl::StatusOr<DataSplits> BuildDataSplits(const GptDataSpec& spec, bool is_builder,
                                           const std::function<absl::Status()>& barrier);

// The same machinery for any recipe's samples: open each dataset (checking its token ids against
// the vocabulary), split its documents ("949,50,1"), give each dataset its blend share of each
// split's samples, build the sample indices on the builder (then barrier) or open them after the
// barrier, and blend. A validation split without documents is an error, or, with
// checks.valid_optional, no validation (split[1] null).
//   make(dataset, its index in paths, documents, split 0..2, samples, may_build) -> one part
using SplitFactory = std::function<absl::StatusOr<std::unique_ptr<SampleSource>>(
    std::shared_ptr<IndexedDataset>, int, DocRange, int, int64_t, bool)>;
absl::StatusOr<DataSplits> BuildSplits(const std::vector<std::string>& paths,
                                       std::vector<double> weights, const std::string& split,
                                       const int64_t num_samples[3], bool is_builder,
                                       const std::function<absl::Status()>& barrier,
                                       const SplitFactory& make, const DataChecks& checks = {});

}  // namespace braid
