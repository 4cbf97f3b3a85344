// The BART family (encoder-decoder, fairseq's denoising; BART and mBART): recipe `bart`.
#pragma once
#include "recipes/family.h"

namespace braid {

const Family& BartFamily();
// Its Hugging Face layout: BartForConditionalGeneration / MBartForConditionalGeneration
// (bart_hf.cc).
const HfLayout& BartHfLayout();

// The ids BART's data and generation use, from the tokenizer: a single token named <s>, </s>,
// <pad>, <mask> where it has one (data.added_tokens appends them to GPT-2's BPE), else its bos
// (or [CLS] in a vocabulary trained with BERT's names, as the default corpus's), its end of
// document, its pad, its mask ([MASK]). An error naming every one it lacks.
struct BartSpecials {
  int64_t bos = -1, eos = -1, pad = -1, mask = -1;
};
absl::StatusOr<BartSpecials> BartSpecialsOf(const Tokenizer& tok, const std::string& vocab_file);
// The same from a config's tokenizer where it can be read, else fairseq's ids (<s> 0, </s> 2,
// <pad> 1, no mask): config.json and scoring need ids, not a tokenizer.
BartSpecials BartSpecialsOrFairseq(const Config& c);

}  // namespace braid
