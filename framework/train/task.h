// What a model family hands the trainer (framework/train/trainer.h): the objective around its
// model (TrainTask), and its training and validation data. The trainer knows nothing else of a
// family; recipes/<family>/ builds these (docs/architecture.md).
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framework/data/sample_source.h"
#include "framework/parallel/rng.h"
#include "framework/train/batch.h"

namespace braid {

class TrainTask {
 public:
  virtual ~TrainTask() = default;
  virtual torch::nn::Module& model() = 0;
  // Mean loss over one micro-batch; may add metrics (summed over micro-batches and averaged).
  virtual torch::Tensor Loss(const Batch& batch, TpRng& rng,
                             std::map<std::string, double>* metrics) = 0;
  // Training FLOPs (forward + backward matmuls) per sample, for MFU; tokens per sample, for
  // tokens/s. Both from the model's own dimensions and the sample lengths.
  virtual double FlopsPerSample() const = 0;
  virtual int64_t TokensPerSample() const = 0;
};

struct RecipeParts {
  std::unique_ptr<TrainTask> task;
  std::shared_ptr<const SampleSource> train, valid;
  std::vector<std::string> notes;  // logged at start (e.g. the data's unigram entropy)
  int64_t vocab_size = 0;          // the real vocabulary size (recorded in checkpoints)
};

}  // namespace braid
