// The GPT objective: mean next-token cross entropy over samples of seq + 1 tokens
// (vocabulary-parallel, GptModel::Loss). Used by the GPT recipe, the benchmarks and the tests.
#pragma once
#include "framework/core/config.h"
#include "framework/models/gpt.h"
#include "framework/train/trainer.h"

namespace braid {

// The GPT shape of the model section (layers, positions, vocabulary and its padding, block
// settings): what the recipe trains and what generate rebuilds from a saved config.
GptConfig GptConfigFrom(const Config& config, const DerivedSizes& sizes, int64_t vocab_size);

class GptTask : public TrainTask {
 public:
  GptTask(std::shared_ptr<GptModel> model, int64_t seq) : model_(std::move(model)), seq_(seq) {}
  torch::nn::Module& model() override { return *model_; }
  torch::Tensor Loss(const Batch& batch, TpRng& rng, std::map<std::string, double>*) override {
    return model_->Loss(batch.tokens, rng);
  }
  double FlopsPerSample() const override { return model_->FlopsPerToken(seq_) * seq_; }
  int64_t TokensPerSample() const override { return seq_; }

 private:
  std::shared_ptr<GptModel> model_;
  int64_t seq_;
};

}  // namespace braid
