// JSON values through simdjson (Debian's libsimdjson) and string quoting: JSON Lines corpora,
// vocab.json, safetensors headers and Hugging Face config files. Objects keep their key order.
// Errors give line:column. The text must be valid UTF-8 (invalid UTF-8 is an error): callers that
// accept it (corpora) replace it first (unicode::SanitizeUtf8) and count the line.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace braid {

struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;  // the string's value (kString) or the number as written (kNumber)
  std::vector<JsonValue> items;
  std::vector<std::pair<std::string, JsonValue>> members;

  // Member lookup (first match), or null when absent or not an object.
  const JsonValue* Find(std::string_view key) const;
  bool IsInteger() const;  // a number written without fraction or exponent, within int64
  int64_t AsInt() const;   // for IsInteger() numbers
};

// Parses one JSON value (surrounding whitespace allowed, nothing else).
absl::StatusOr<JsonValue> ParseJson(std::string_view text);

// `s` (UTF-8) as a JSON string literal: quotes, backslashes and control characters escaped,
// everything else raw (like Python's json.dumps(..., ensure_ascii=False)).
std::string JsonQuote(std::string_view s);

}  // namespace braid
