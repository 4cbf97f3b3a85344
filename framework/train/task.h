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
#include "framework/parallel/pipeline_schedule.h"
#include "framework/parallel/rng.h"
#include "framework/train/batch.h"

namespace braid {

// What crosses one pipeline boundary: the tensors one virtual stage hands the next (the residual
// stream; an encoder-decoder model's encoder output and decoder stream besides).
using StageTensors = std::vector<torch::Tensor>;

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

  // Pipeline parallelism (framework/train/pipeline.h; docs/pipeline.md). A task whose model holds
  // one pp rank's stage returns its plan (null: the whole model, PP = 1) and runs a micro-batch
  // through one chunk at a time: `input` is the previous virtual stage's output (empty on the
  // first virtual stage, which embeds the batch); the result is the next virtual stage's input,
  // or on the last virtual stage the micro-batch's mean loss alone (like Loss). The gradients of
  // the floating-point inputs go back to the previous stage.
  virtual const StagePlan* stage() const { return nullptr; }
  virtual StageTensors StageForward(int chunk, const Batch& batch, const StageTensors& input,
                                    TpRng& rng, std::map<std::string, double>* metrics);
  // Uninitialised tensors of the shapes and dtypes that enter virtual stage `virtual_stage`
  // (>= 1) for this batch: what a stage receives, known without asking the sender.
  virtual StageTensors ActivationLike(const Batch& batch, int64_t virtual_stage) const;
  // With tied input/output embeddings split over stages: this rank's copy of the embedding
  // weight (the first stage's, or the last stage's copy of it), whose gradient is summed over the
  // embedding group; undefined otherwise.
  virtual torch::Tensor TiedEmbeddingCopy() { return {}; }
};

struct RecipeParts {
  std::unique_ptr<TrainTask> task;
  std::shared_ptr<const SampleSource> train, valid;
  std::vector<std::string> notes;  // logged at start (e.g. the data's unigram entropy)
  int64_t vocab_size = 0;          // the real vocabulary size (recorded in checkpoints)
};

}  // namespace braid
