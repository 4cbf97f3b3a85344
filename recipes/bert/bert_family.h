// The BERT family (encoder-only masked LM with sentence-order prediction): recipe `bert`; and
// RoBERTa, the same family without the sentence-order head, written in RoBERTa's Hugging Face
// layout: recipe `roberta` (recipes/roberta/).
#pragma once
#include "recipes/family.h"

namespace braid {

const Family& BertFamily();
// Its Hugging Face layout: BertForPreTraining (bert_hf.cc).
const HfLayout& BertHfLayout();
const Family& RobertaFamily();
// RobertaForMaskedLM (bert_hf.cc).
const HfLayout& RobertaHfLayout();

}  // namespace braid
