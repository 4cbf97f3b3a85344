// The GPT family's batch and objective: mean next-token cross entropy (vocabulary-parallel,
// GptModel::Loss) over samples of seq + 1 tokens.
#pragma once
#include "absl/status/statusor.h"
#include "framework/core/config.h"
#include "framework/models/gpt.h"
#include "framework/nn/moe.h"
#include "framework/train/task.h"

namespace braid {

// A GPT micro-batch. A sample row is seq + 1 consecutive tokens (framework/data/gpt_dataset.h):
// the tokens are its first seq, the labels its last seq (each position's next token).
struct GptBatch {
  torch::Tensor tokens;  // [b, seq] int64
  torch::Tensor labels;  // [b, seq] int64
  static int64_t RowLength(int64_t seq) { return seq + 1; }
  static GptBatch FromRows(const torch::Tensor& rows);
};

// The GPT shape of a resolved config (layers, positions, vocabulary and its padding, block
// settings, tied or untied output).
absl::StatusOr<GptConfig> GptConfigFrom(const Config& config, const DerivedSizes& sizes);

class GptTask : public TrainTask {
 public:
  GptTask(std::shared_ptr<GptModel> model, int64_t seq) : model_(std::move(model)), seq_(seq) {}
  torch::nn::Module& model() override { return *model_; }
  torch::Tensor Loss(const Batch& batch, TpRng& rng,
                     std::map<std::string, double>* metrics) override {
    GptBatch b = GptBatch::FromRows(batch.rows);
    torch::Tensor loss = model_->Loss(b.tokens, b.labels, rng);
    if (metrics != nullptr && model_->is_training()) AddMoeMetrics(*model_, metrics);
    return loss;
  }
  double FlopsPerSample() const override { return model_->FlopsPerSample(seq_); }
  int64_t TokensPerSample() const override { return seq_; }

  const StagePlan* stage() const override { return &model_->stage(); }
  StageTensors StageForward(int chunk, const Batch& batch, const StageTensors& input, TpRng& rng,
                            std::map<std::string, double>* metrics) override {
    GptBatch b = GptBatch::FromRows(batch.rows);
    torch::Tensor out =
        model_->ChunkForward(chunk, b.tokens, input.empty() ? torch::Tensor() : input[0], rng);
    // Each chunk's own MoE layers (the others' last routing is another micro-batch's).
    if (metrics != nullptr && model_->is_training()) AddMoeMetrics(*model_->chunk(chunk), metrics);
    if (!model_->stage().chunks[chunk].output) return {out};
    return {model_->LossFromHidden(out, model_->LossLabels(b.tokens, b.labels))};
  }
  // Every boundary carries the residual stream [b, seq, hidden] in the parameters' dtype.
  StageTensors ActivationLike(const Batch& batch, int64_t) const override {
    const torch::Tensor any = model_->parameters().front();
    return {torch::empty({batch.rows.size(0), seq_, model_->config().block.hidden},
                         any.options().requires_grad(false))};
  }
  torch::Tensor TiedEmbeddingCopy() override {
    return model_->config().tie_embeddings ? model_->EmbeddingWeight() : torch::Tensor();
  }

 private:
  std::shared_ptr<GptModel> model_;
  int64_t seq_;
};

}  // namespace braid
