// The BART objective over a BartBatch (bart_batch.h): the decoder's cross entropy
// (vocabulary-parallel) averaged over the non-padding target tokens. Metrics: target_acc (the
// share of those whose arg-max logit is the target) and masked_acc (the same over the target
// positions the noise masked, deleted or replaced: the part that is not copying).
#pragma once
#include "framework/models/bart.h"
#include "framework/train/task.h"

namespace braid {

class BartTask : public TrainTask {
 public:
  // Rows of `enc` encoder and `dec` decoder positions (training: both model.seq_length).
  // chunk_tokens > 0 (model.output_chunk_tokens): the output layer, final_logits_bias and the
  // loss over chunks of that many decoder tokens (ChunkedVocabParallelLoss), the metrics' arg-max
  // chunk by chunk: the [tokens, vocab/TP] logits are never held whole.
  BartTask(std::shared_ptr<BartModel> model, int64_t enc, int64_t dec,
           std::shared_ptr<Communicator> tp, int64_t chunk_tokens = 0)
      : model_(std::move(model)), enc_(enc), dec_(dec), tp_(std::move(tp)), chunk_(chunk_tokens) {}
  torch::nn::Module& model() override { return *model_; }
  torch::Tensor Loss(const Batch& batch, TpRng& rng,
                     std::map<std::string, double>* metrics) override;
  double FlopsPerSample() const override { return model_->FlopsPerSample(enc_, dec_); }
  // Encoder and decoder positions.
  int64_t TokensPerSample() const override { return enc_ + dec_; }

 private:
  std::shared_ptr<BartModel> model_;
  int64_t enc_, dec_;
  std::shared_ptr<Communicator> tp_;
  int64_t chunk_ = 0;
};

}  // namespace braid
