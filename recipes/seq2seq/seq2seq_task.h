// The encoder-decoder objective (T5, BART, UL2) over a Seq2SeqBatch (seq2seq_batch.h): the
// decoder's cross entropy (vocabulary-parallel) averaged over the non-padding target tokens
// (seq2seq_loss.h; chunked with model.output_chunk_tokens). Metrics: target_acc, the share of
// those tokens whose arg-max logit is the target; with rows that carry the `noised` field
// (BART's) also masked_acc, the same over the target positions the noise changed (the part that
// is not copying).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "framework/train/task.h"
#include "recipes/seq2seq/seq2seq_batch.h"
#include "recipes/seq2seq/seq2seq_loss.h"

namespace braid {

// Model: T5Model or BartModel.
template <class Model>
class Seq2SeqTask : public TrainTask {
 public:
  // Rows of `enc` encoder and `dec` decoder positions; `noised`: the rows carry the field.
  Seq2SeqTask(std::shared_ptr<Model> model, int64_t enc, int64_t dec,
              std::shared_ptr<Communicator> tp, int64_t chunk_tokens = 0, bool noised = false)
      : model_(std::move(model)),
        enc_(enc),
        dec_(dec),
        tp_(std::move(tp)),
        chunk_(chunk_tokens),
        noised_(noised) {}
  torch::nn::Module& model() override { return *model_; }
  torch::Tensor Loss(const Batch& batch, TpRng& rng,
                     std::map<std::string, double>* metrics) override {
    const Seq2SeqBatch b = Seq2SeqBatch::FromRows(batch.rows, enc_, dec_, noised_);
    const torch::Tensor memory = model_->Encode(b.inputs, b.input_padding, rng);
    return Objective(model_->DecoderHidden(memory, b.input_padding, b.decoder_inputs, rng), b,
                     metrics);
  }
  // Pipeline stages (TrainTask; the model's ChunkForward says what crosses each boundary).
  const StagePlan* stage() const override { return &model_->stage(); }
  StageTensors StageForward(int chunk, const Batch& batch, const StageTensors& input, TpRng& rng,
                            std::map<std::string, double>* metrics) override {
    const Seq2SeqBatch b = Seq2SeqBatch::FromRows(batch.rows, enc_, dec_, noised_);
    StageTensors out =
        model_->ChunkForward(chunk, b.inputs, b.input_padding, b.decoder_inputs, input, rng);
    if (!model_->stage().chunks[chunk].output) return out;
    return {Objective(out[0], b, metrics)};
  }
  StageTensors ActivationLike(const Batch& batch, int64_t virtual_stage) const override {
    return model_->BoundaryLike(batch.rows.size(0), enc_, dec_,
                                model_->stage().LayersBefore(virtual_stage));
  }
  torch::Tensor TiedEmbeddingCopy() override {
    return model_->config().tie_embeddings ? model_->EmbeddingWeight() : torch::Tensor();
  }
  double FlopsPerSample() const override { return model_->FlopsPerSample(enc_, dec_); }
  // Encoder and decoder positions.
  int64_t TokensPerSample() const override { return enc_ + dec_; }

 private:
  // The loss (and metrics) of the decoder's output `hidden` for batch `b`.
  torch::Tensor Objective(const torch::Tensor& hidden, const Seq2SeqBatch& b,
                          std::map<std::string, double>* metrics) {
    const torch::Tensor labels = b.labels.reshape({-1});
    const torch::Tensor real = labels.ne(-100);
    const double n = std::max<double>(1.0, real.sum().item<double>());
    const DecoderLossResult r =
        DecoderLossOfHidden(*model_, hidden, labels, n, *tp_, chunk_, metrics != nullptr);
    if (metrics != nullptr) {
      const torch::Tensor right = r.ids.eq(labels).logical_and(real).to(torch::kDouble);
      (*metrics)["target_acc"] += right.sum().item<double>() / n;
      if (noised_) {
        const torch::Tensor noised = b.noised.reshape({-1}).logical_and(real).to(torch::kDouble);
        // Averaged per micro-batch like the loss; a batch without noised positions adds nothing.
        (*metrics)["masked_acc"] +=
            (right * noised).sum().item<double>() / std::max(1.0, noised.sum().item<double>());
      }
    }
    return r.loss;
  }

  std::shared_ptr<Model> model_;
  int64_t enc_, dec_;
  std::shared_ptr<Communicator> tp_;
  int64_t chunk_ = 0;
  bool noised_ = false;
};

}  // namespace braid
