// Special tokens found by their text: "<s>", "</s>", "<pad>", "<mask>" (RoBERTa's and BART's) in a
// vocabulary that has them as entries or through data.added_tokens.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "framework/data/tokenizer.h"

namespace braid {

// The id of the vocabulary entry spelled `name` (one token when encoded, or an entry whose text
// never encodes to itself, e.g. a byte-level BPE's "<s>"); -1 when there is none.
int64_t TokenIdByName(const Tokenizer& tok, std::string_view name);

// The first id that is not -1, or -1.
inline int64_t FirstId(std::initializer_list<int64_t> ids) {
  for (int64_t id : ids)
    if (id >= 0) return id;
  return -1;
}

}  // namespace braid
