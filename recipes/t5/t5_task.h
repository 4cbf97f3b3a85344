// The T5 objective over a T5Batch (t5_batch.h): the decoder's cross entropy (vocabulary-parallel)
// averaged over the non-padding target tokens. Metrics: target_acc, the share of those tokens
// whose arg-max logit is the target. With `chunk_tokens` > 0 (model.output_chunk_tokens) the
// output layer and the loss run over chunks of that many decoder tokens
// (ChunkedVocabParallelLoss), and the metric's arg-max chunk by chunk without gradients: the
// [tokens, vocab/TP] logits are never held whole.
#pragma once
#include "framework/models/t5.h"
#include "framework/train/task.h"

namespace braid {

class T5Task : public TrainTask {
 public:
  T5Task(std::shared_ptr<T5Model> model, int64_t enc, int64_t dec, std::shared_ptr<Communicator> tp,
         int64_t chunk_tokens = 0)
      : model_(std::move(model)), enc_(enc), dec_(dec), tp_(std::move(tp)), chunk_(chunk_tokens) {}
  torch::nn::Module& model() override { return *model_; }
  torch::Tensor Loss(const Batch& batch, TpRng& rng,
                     std::map<std::string, double>* metrics) override;
  double FlopsPerSample() const override { return model_->FlopsPerSample(enc_, dec_); }
  // Encoder and decoder positions.
  int64_t TokensPerSample() const override { return enc_ + dec_; }

 private:
  std::shared_ptr<T5Model> model_;
  int64_t enc_, dec_;
  std::shared_ptr<Communicator> tp_;
  int64_t chunk_ = 0;
};

}  // namespace braid
