// A rule-based English sentence splitter for `preprocess_data --split-sentences` (Megatron uses
// NLTK's punkt model, which Debian does not ship). A sentence ends at '.', '!' or '?' (plus any
// closing quotes or brackets) followed by whitespace and then an upper-case letter, a digit, or
// an opening quote/bracket -- except after common abbreviations ("Mr.", "e.g.", "etc.") and
// single-letter initials. Line breaks count as spaces, unless `keep_newlines` (Megatron's
// --keep-newlines): then the line breaks inside a sentence and those that follow it stay in its
// text.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace braid {

std::vector<std::string> SplitSentences(std::string_view text, bool keep_newlines = false);

}  // namespace braid
