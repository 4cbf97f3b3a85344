// The BERT objective over a BertBatch (bert_batch.h): masked-LM cross entropy on the masked
// positions (vocabulary-parallel, averaged over them) plus the binary head's sentence-order loss.
// Metrics: mlm_loss, mlm_acc, sop_loss, sop_acc. With `chunk_tokens` > 0
// (model.output_chunk_tokens) only the masked rows of the MLM head's output go through the output
// layer, its bias and the loss, in chunks of that many (ChunkedVocabParallelLoss; mlm_acc's arg-max
// likewise): neither the [tokens, vocab/TP] logits nor those of the masked rows are held whole.
#pragma once
#include "framework/models/bert.h"
#include "framework/train/task.h"
#include "recipes/bert/bert_batch.h"

namespace braid {

class BertTask : public TrainTask {
 public:
  BertTask(std::shared_ptr<BertModel> model, int64_t seq, std::shared_ptr<Communicator> tp,
           int64_t chunk_tokens = 0)
      : model_(std::move(model)), seq_(seq), tp_(std::move(tp)), chunk_(chunk_tokens) {}
  torch::nn::Module& model() override { return *model_; }
  torch::Tensor Loss(const Batch& batch, TpRng& rng,
                     std::map<std::string, double>* metrics) override;
  double FlopsPerSample() const override { return model_->FlopsPerSample(seq_); }
  int64_t TokensPerSample() const override { return seq_; }

  // Pipeline stages (TrainTask): every boundary carries the residual stream [b, seq, hidden].
  const StagePlan* stage() const override { return &model_->stage(); }
  StageTensors StageForward(int chunk, const Batch& batch, const StageTensors& input, TpRng& rng,
                            std::map<std::string, double>* metrics) override;
  StageTensors ActivationLike(const Batch& batch, int64_t virtual_stage) const override;
  torch::Tensor TiedEmbeddingCopy() override {
    return model_->config().tie_embeddings ? model_->EmbeddingWeight() : torch::Tensor();
  }

 private:
  // The loss (and metrics) of the heads' output for batch `b`.
  torch::Tensor Objective(const BertOutput& out, const BertBatch& b,
                          std::map<std::string, double>* metrics);
  std::shared_ptr<BertModel> model_;
  int64_t seq_;
  std::shared_ptr<Communicator> tp_;
  int64_t chunk_ = 0;
};

}  // namespace braid
