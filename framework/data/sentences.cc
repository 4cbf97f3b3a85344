// Rule-based sentence splitter (see sentences.h).
#include "framework/data/sentences.h"

#include <algorithm>
#include <cctype>

namespace braid {
namespace {

bool IsAbbreviation(std::string_view word) {
  static const char* kAbbrev[] = {
      "mr",   "mrs", "ms",  "dr",  "st",  "jr",  "sr",  "prof",   "inc",  "ltd", "co",
      "vs",   "etc", "e.g", "i.e", "no",  "vol", "fig", "mt",     "gen",  "col", "sgt",
      "capt", "lt",  "rev", "jan", "feb", "mar", "apr", "jun",    "jul",  "aug", "sep",
      "sept", "oct", "nov", "dec", "a.m", "p.m", "u.s", "approx", "dept", "est"};
  std::string w;
  for (char c : word) w.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (w.size() == 1 && std::isalpha(static_cast<unsigned char>(w[0]))) return true;  // initials
  return std::find_if(std::begin(kAbbrev), std::end(kAbbrev),
                      [&](const char* a) { return w == a; }) != std::end(kAbbrev);
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string Normalize(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (IsSpace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::vector<std::string> SplitSentences(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  const size_t n = text.size();
  while (i < n) {
    char c = text[i];
    if (c != '.' && c != '!' && c != '?') {
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < n && (text[end] == '.' || text[end] == '!' || text[end] == '?')) ++end;
    while (end < n &&
           (text[end] == '"' || text[end] == '\'' || text[end] == ')' || text[end] == ']'))
      ++end;
    size_t next = end;
    while (next < n && IsSpace(text[next])) ++next;
    bool boundary = next > end && next < n &&
                    (std::isupper(static_cast<unsigned char>(text[next])) ||
                     std::isdigit(static_cast<unsigned char>(text[next])) || text[next] == '"' ||
                     text[next] == '\'' || text[next] == '(' || text[next] == '[');
    if (boundary && c == '.') {
      size_t w = i;
      while (w > start && !IsSpace(text[w - 1])) --w;
      std::string_view word = text.substr(w, i - w);
      while (!word.empty() && (word.front() == '(' || word.front() == '"')) word.remove_prefix(1);
      if (IsAbbreviation(word)) boundary = false;
    }
    if (boundary) {
      std::string s = Normalize(text.substr(start, end - start));
      if (!s.empty()) out.push_back(std::move(s));
      start = next;
    }
    i = end;
  }
  std::string s = Normalize(text.substr(start));
  if (!s.empty()) out.push_back(std::move(s));
  return out;
}

}  // namespace braid
