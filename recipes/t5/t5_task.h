// The T5 objective over a T5Batch (t5_batch.h): the decoder's cross entropy (vocabulary-parallel)
// averaged over the non-padding target tokens. Metrics: target_acc, the share of those tokens
// whose arg-max logit is the target.
#pragma once
#include "framework/models/t5.h"
#include "framework/train/task.h"

namespace braid {

class T5Task : public TrainTask {
 public:
  T5Task(std::shared_ptr<T5Model> model, int64_t enc, int64_t dec, std::shared_ptr<Communicator> tp)
      : model_(std::move(model)), enc_(enc), dec_(dec), tp_(std::move(tp)) {}
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
};

}  // namespace braid
