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

// Collapses each run of whitespace to one space (or, keeping newlines, to the run's newlines
// when it has any) and drops it at the start; at the end it is dropped unless it holds newlines
// that are kept.
std::string Normalize(std::string_view s, bool keep_newlines) {
  std::string out, run;
  bool space = false;
  auto flush = [&](bool at_end) {
    if (keep_newlines && !run.empty()) {
      out += run;
    } else if (space && !at_end) {
      out.push_back(' ');
    }
    run.clear();
    space = false;
  };
  for (char c : s) {
    if (IsSpace(c)) {
      space = space || !out.empty();
      if (c == '\n' && !out.empty()) run.push_back('\n');
      continue;
    }
    flush(false);
    out.push_back(c);
  }
  flush(true);
  return out;
}

}  // namespace

std::vector<std::string> SplitSentences(std::string_view text, bool keep_newlines) {
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
      // With keep_newlines the line breaks between two sentences stay with the first.
      std::string s =
          Normalize(text.substr(start, (keep_newlines ? next : end) - start), keep_newlines);
      if (!s.empty()) out.push_back(std::move(s));
      start = next;
    }
    i = end;
  }
  std::string s = Normalize(text.substr(start), keep_newlines);
  if (!s.empty()) out.push_back(std::move(s));
  return out;
}

}  // namespace braid
