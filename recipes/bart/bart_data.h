// The BART recipe's data: fairseq's denoising (denoising.h) over sentence-split indexed data
// (preprocess_data --split-sentences, as BERT's). A sample is whole sentences of one document,
// packed greedily up to seq_length - 2 tokens (one sentence longer than that is cut; the
// document's end id dropped), wrapped as
// `<s> ... </s>` (mBART: `<s> ... </s> <lang>`, the language token of the sample's dataset). The
// target is that sample; the source is it with its sentences permuted, then text infilling,
// then (options) insertion and rotation, cut to the encoder's length keeping its </s> (and
// language token) when insertions made it longer. Decoder inputs: the decoder start (</s>; mBART:
// the language token) followed by the target shifted right. Packs and their order per epoch are
// cached on disk (one builder per node); everything random about sample i is drawn from
// Rng::Keyed(seed, i) over the global sample index, which runs on across epochs, so each epoch
// noises a sample afresh and the stream is the same at any DP size and after a resume.
#pragma once
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "framework/data/gpt_dataset.h"
#include "framework/data/index_cache.h"
#include "framework/data/indexed_dataset.h"
#include "framework/data/sample_source.h"
#include "recipes/bart/denoising.h"

namespace braid {

struct BartDataSpec {
  DocRange documents;
  int64_t seq_length = 128;  // encoder and decoder rows
  int64_t num_samples = 0;
  uint64_t seed = 1234;
  std::string split_name = "train";
  std::string cache_dir;
  int64_t bos = -1, eos = -1, pad = -1;
  int64_t document_end = -1;  // the end id preprocessing appended (GPT-2's <|endoftext|>)
  int64_t language = -1;      // mBART's language token; -1: none
  DenoisingSpec noise;
};

class BartDataset : public SampleSource {
 public:
  static absl::StatusOr<std::unique_ptr<BartDataset>> Open(std::shared_ptr<IndexedDataset> data,
                                                           const BartDataSpec& spec,
                                                           bool may_build);
  int64_t size() const override { return spec_.num_samples; }
  int64_t sample_length() const override;
  void Get(int64_t i, int64_t* out) const override;
  // The target sample of pack `order(i)`, before any noise (tests).
  std::vector<std::vector<int64_t>> Sentences(int64_t i) const;

 private:
  BartDataset() = default;
  std::shared_ptr<IndexedDataset> data_;
  BartDataSpec spec_;
  SpanLengthSampler sampler_{3.5};
  std::unique_ptr<IndexCache> cache_;
  const int64_t* packs_ = nullptr;  // (first sentence, end sentence) x packs
  const int64_t* order_ = nullptr;  // sample -> pack
};

}  // namespace braid
