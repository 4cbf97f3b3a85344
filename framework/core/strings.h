// Small string helpers shared by config and command-line parsing.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

namespace braid {

// Debian's Abseil has its own string_view type (not std::string_view): convert at the boundary.
inline absl::string_view AsAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// Levenshtein distance between two ASCII strings.
int EditDistance(const std::string& a, const std::string& b);
// The candidate closest to `word`, or "" when none is close enough to be a likely typo.
std::string ClosestMatch(const std::string& word, const std::vector<std::string>& candidates);
// Appends code point `cp` to `out` as UTF-8.
void AppendUtf8(char32_t cp, std::string* out);
// Shortest decimal text that reads back as exactly `value`.
std::string ShortestDouble(double value);
// The first line of `text` (LibTorch's exception messages carry a backtrace after it).
std::string FirstLine(std::string_view text);

}  // namespace braid
