// Regular expressions through Oniguruma (the engine Hugging Face's tokenizers library uses), for
// the tokenizer.json pre-tokenizers and normalizers and tiktoken's split patterns: Unicode
// property classes (\p{L}, \p{N}) and look-ahead ((?!\S)) as published patterns need them.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace braid {

class OnigRegex {
 public:
  // A UTF-8 pattern in Oniguruma's default syntax; an error names the pattern and the reason.
  static absl::StatusOr<std::unique_ptr<OnigRegex>> Compile(std::string_view pattern);
  ~OnigRegex();
  OnigRegex(const OnigRegex&) = delete;
  OnigRegex& operator=(const OnigRegex&) = delete;

  // The non-empty matches in `text` (valid UTF-8), leftmost first and not overlapping, as
  // [begin, end) byte offsets; an empty match moves the search on by one character.
  void FindAll(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const;

 private:
  OnigRegex() = default;
  void* regex_ = nullptr;  // regex_t*
};

}  // namespace braid
