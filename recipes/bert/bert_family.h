// The BERT family (encoder-only masked LM with sentence-order prediction): recipe `bert`.
#pragma once
#include "recipes/family.h"

namespace braid {

const Family& BertFamily();
// Its Hugging Face layout: BertForPreTraining (bert_hf.cc).
const HfLayout& BertHfLayout();

}  // namespace braid
