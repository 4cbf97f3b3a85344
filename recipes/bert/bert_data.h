// The BERT recipe's data (Google's create_pretraining_data, with Megatron's sentence-order
// prediction; RoBERTa's FULL-SENTENCES): from sentence-split indexed data (preprocess_data
// --split-sentences), samples are packs of whole sentences up to the sequence length:
//   data.packing: document        sentences of one document (BERT)
//   data.packing: full_sentences  contiguous sentences that may cross documents, a [SEP] (</s>)
//                                 between the last sentence of one and the first of the next,
//                                 up to the sequence length (RoBERTa; single mode only)
//   pair mode:   [CLS] A [SEP] B [SEP], segment ids 0 for [CLS] A [SEP] and 1 for B [SEP];
//                A and B swapped with p = 0.5 (sentence-order label 1 when swapped)
//   single mode: [CLS] A [SEP] (no binary head)
// With probability short_seq_prob a document pack targets a random shorter length. Masking: 15%
// of the non-special tokens (at most max_predictions), chosen by words when whole-word masking is
// on (WordPiece "##" pieces, SentencePiece pieces without "▁", go with their word); of those 80%
// become [MASK], 10% a random non-special token, 10% stay. Everything random about sample i is
// drawn from Rng::Keyed(seed, i): the same on every TP rank, after a resume, at any DP size.
// Sample i of one epoch and sample i' of the next read the same pack, so each epoch masks a pack
// afresh (dynamic masking, RoBERTa's and Megatron's). data.dynamic_masking: false keys the draws
// by the pack instead: the same masks in every epoch (static, Google's BERT with dupe_factor 1).
//
// A sample is one int64 row (its fields: bert_batch.h), so it travels through the generic loader.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/core/random.h"
#include "framework/data/gpt_dataset.h"
#include "framework/data/index_cache.h"
#include "framework/data/indexed_dataset.h"
#include "framework/data/sample_source.h"
#include "framework/data/tokenizer.h"

namespace braid {

struct MaskingSpec {
  double mask_prob = 0.15;
  int64_t max_predictions = 20;
  bool whole_word = false;
  int32_t cls = -1, sep = -1, pad = -1, mask = -1;
  std::vector<bool> special;       // per vocabulary id: never selected, never a random pick
  std::vector<bool> continuation;  // per vocabulary id: continues the previous token's word
};

// Builds the masking spec from a tokenizer: [CLS], [SEP], [MASK] and the pad id by the tokenizer's
// roles, else RoBERTa's <s>, </s>, <mask>, <pad> by name (GPT-2's BPE with data.added_tokens);
// fails, naming the missing tokens, when the vocabulary has neither.
absl::StatusOr<MaskingSpec> MaskingSpecFor(const Tokenizer& tok, double mask_prob,
                                           int64_t max_predictions, bool whole_word);

// Masks `tokens` in place (positions [0, n)); returns the labels (-100 where not predicted).
std::vector<int64_t> ApplyMasking(std::vector<int64_t>& tokens, const MaskingSpec& m, Rng& rng);

struct BertDataSpec {
  DocRange documents;
  int64_t seq_length = 128;
  int64_t num_samples = 0;
  uint64_t seed = 1234;
  double short_seq_prob = 0.1;
  bool binary_head = true;  // pair mode with sentence-order prediction
  std::string split_name = "train";
  std::string cache_dir;
  bool full_sentences = false;  // data.packing: full_sentences
  bool dynamic_masking = true;  // masks drawn per sample (each epoch anew), not per pack
};

class BertDataset : public SampleSource {
 public:
  static absl::StatusOr<std::unique_ptr<BertDataset>> Open(std::shared_ptr<IndexedDataset> data,
                                                           const BertDataSpec& spec,
                                                           MaskingSpec masking, bool may_build);
  int64_t size() const override { return spec_.num_samples; }
  int64_t sample_length() const override;
  void Get(int64_t i, int64_t* out) const override;

 private:
  BertDataset() = default;
  std::shared_ptr<IndexedDataset> data_;
  BertDataSpec spec_;
  MaskingSpec masking_;
  std::unique_ptr<IndexCache> cache_;
  const int64_t* packs_ = nullptr;   // (first sentence, end sentence, target length) x packs
  const int64_t* order_ = nullptr;   // sample -> pack
  std::vector<int64_t> doc_starts_;  // full_sentences: first sentence of each document, sorted
};

}  // namespace braid
