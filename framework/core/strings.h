// Small string helpers shared by config and command-line parsing.
#pragma once
#include <string>
#include <vector>

namespace braid {

// Levenshtein distance between two ASCII strings.
int EditDistance(const std::string& a, const std::string& b);
// The candidate closest to `word`, or "" when none is close enough to be a likely typo.
std::string ClosestMatch(const std::string& word, const std::vector<std::string>& candidates);
// Shortest decimal text that reads back as exactly `value`.
std::string ShortestDouble(double value);

}  // namespace braid
