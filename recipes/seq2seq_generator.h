// Generation for an encoder-decoder model (T5, BART): the encoder reads the prompt once, every
// new token runs only the decoder, which starts from the family's decoder start ids (T5: pad;
// BART: </s> then the forced <s>). `Model` has Encode, Decode and FullVocabulary as T5Model and
// BartModel do.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "recipes/family.h"

namespace braid {

template <class Model>
class Seq2SeqGenerator : public Generator {
 public:
  Seq2SeqGenerator(std::shared_ptr<Model> model, std::vector<int64_t> decoder_start)
      : model_(std::move(model)), start_(std::move(decoder_start)) {}
  bool encoder_decoder() const override { return true; }
  std::pair<torch::Tensor, double> Score(const std::vector<int64_t>& ids,
                                         const std::vector<int64_t>& decoder_ids,
                                         TpRng& rng) override {
    torch::Tensor in = torch::tensor(ids).unsqueeze(0);
    torch::Tensor dec = torch::tensor(decoder_ids).unsqueeze(0);
    torch::Tensor padding = torch::zeros_like(in, torch::kBool);
    torch::Tensor logits = model_->FullVocabulary(
        model_->Decode(model_->Encode(in, padding, rng), padding, dec, rng))[0];
    const int64_t n = dec.size(1);
    double loss = 0;
    if (n > 1) {
      loss = torch::nn::functional::cross_entropy(logits.narrow(0, 0, n - 1),
                                                  dec[0].narrow(0, 1, n - 1))
                 .item<double>();
    }
    return {logits, loss};
  }
  torch::Tensor Next(const std::vector<int64_t>& prompt, const std::vector<int64_t>& generated,
                     TpRng& rng) override {
    if (prompt != prompt_ || !memory_.defined()) {
      prompt_ = prompt;
      torch::Tensor in = torch::tensor(prompt).unsqueeze(0);
      padding_ = torch::zeros_like(in, torch::kBool);
      memory_ = model_->Encode(in, padding_, rng);
    }
    std::vector<int64_t> dec = start_;
    dec.insert(dec.end(), generated.begin(), generated.end());
    torch::Tensor logits =
        model_->Decode(memory_, padding_, torch::tensor(dec).unsqueeze(0), rng)[0][-1];
    return model_->FullVocabulary(logits);
  }
  int64_t StopId(const Tokenizer& tok) const override { return tok.special().eod; }

 private:
  std::shared_ptr<Model> model_;
  std::vector<int64_t> start_;
  std::vector<int64_t> prompt_;  // the prompt memory_ encodes
  torch::Tensor memory_, padding_;
};

}  // namespace braid
