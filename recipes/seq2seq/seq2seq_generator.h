// Generation for an encoder-decoder model (T5, BART): the encoder reads the prompt once, every
// new token runs only the decoder, which starts from the family's decoder start ids (T5: pad;
// BART: </s> then the forced <s>). The decoder keeps its keys and values between tokens (and
// the memory's, computed once): each new token costs one position's work, not the whole
// sequence's again. `Model` has Encode, Decode (with a StackCache) and FullVocabulary as T5Model
// and BartModel do. `max_positions` (0: none) bounds the encoder's input and the decoder's ids.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "recipes/family.h"

namespace braid {

template <class Model>
class Seq2SeqGenerator : public Generator {
 public:
  Seq2SeqGenerator(std::shared_ptr<Model> model, std::vector<int64_t> decoder_start,
                   int64_t max_positions = 0)
      : model_(std::move(model)), start_(std::move(decoder_start)), max_(max_positions) {}
  bool encoder_decoder() const override { return true; }
  int64_t MaxEncoderPositions() const override { return max_; }
  int64_t MaxDecoderPositions() const override { return max_; }
  int64_t DecoderStartLength() const override { return static_cast<int64_t>(start_.size()); }
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
    std::vector<int64_t> dec = start_;
    dec.insert(dec.end(), generated.begin(), generated.end());
    const bool extends =
        fed_.size() < dec.size() && std::equal(fed_.begin(), fed_.end(), dec.begin());
    if (prompt != prompt_ || !memory_.defined() || !extends) {  // a new prompt or sequence
      if (prompt != prompt_ || !memory_.defined()) {
        prompt_ = prompt;
        torch::Tensor in = torch::tensor(prompt).unsqueeze(0);
        padding_ = torch::zeros_like(in, torch::kBool);
        memory_ = model_->Encode(in, padding_, rng);
      }
      cache_.clear();
      fed_.clear();
    }
    // Only the ids the cache has not seen: all of them the first time, then the newest one.
    const std::vector<int64_t> fresh(dec.begin() + static_cast<int64_t>(fed_.size()), dec.end());
    torch::Tensor logits =
        model_->Decode(memory_, padding_, torch::tensor(fresh).unsqueeze(0), rng, &cache_)[0][-1];
    fed_ = dec;
    return model_->FullVocabulary(logits);
  }
  int64_t StopId(const Tokenizer& tok) const override { return tok.special().eod; }

 private:
  std::shared_ptr<Model> model_;
  std::vector<int64_t> start_;
  int64_t max_ = 0;
  std::vector<int64_t> prompt_;  // the prompt memory_ encodes
  torch::Tensor memory_, padding_;
  StackCache cache_;          // the decoder's keys and values of the ids in fed_
  std::vector<int64_t> fed_;  // the decoder ids run so far
};

}  // namespace braid
