// Tokenizer factory (see tokenizer.h).
#include "framework/data/tokenizer.h"

#include "absl/strings/str_cat.h"

namespace braid {

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeTokenizer(const TokenizerOptions& o) {
  if (o.vocab_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer '", o.type,
                     "' needs a vocabulary file. HINT: set data.vocab_file (or "
                     "--vocab)."));
  }
  if (o.type == "gpt2") return MakeGpt2Tokenizer(o);
  if (o.type == "wordpiece") return MakeWordPieceTokenizer(o);
  if (o.type == "sentencepiece") return MakeSentencePieceTokenizer(o);
  return absl::InvalidArgumentError(absl::StrCat("unknown tokenizer type '", o.type,
                                                 "'. HINT: use gpt2, wordpiece or sentencepiece."));
}

}  // namespace braid
