// Hugging Face tokenizer.json and tiktoken rank files (docs/tokenizers.md). The pipeline is the
// `tokenizers` library's, step by step, so that the ids are byte-exact with it:
//   1. added tokens that are not normalized are split out of the raw text (leftmost-longest,
//      with single_word / lstrip / rstrip);
//   2. each remaining piece is normalized, then the normalized added tokens are split out of it;
//   3. the pre-tokenizer cuts each piece into words;
//   4. the model (BPE, WordPiece, Unigram, WordLevel) turns each word into ids;
//   5. with --add-special-tokens, the post-processor adds its special tokens.
// Decoding maps ids to token strings and runs the decoder chain. Anything in a file this code
// does not implement is refused with its JSON path, never approximated.
#include <utf8proc.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "framework/core/files.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "framework/data/onig_regex.h"
#include "framework/data/tokenizer.h"
#include "framework/data/unicode.h"

namespace braid {
// Not anonymous: the unity build puts this file beside others with helpers of the same names.
namespace hf_json {

using Json = nlohmann::json;

// Ids are below 2^24 (the largest published vocabularies hold about 2^18 entries): a larger one is
// a damaged file, not a reason to allocate gigabytes.
constexpr int64_t kMaxId = int64_t{1} << 24;

// ---------------------------------------------------------------------------------------------
// Characters.

// The code point at byte `i` of valid UTF-8 and its length.
char32_t CodePointAt(std::string_view s, size_t i, size_t* len) {
  utf8proc_int32_t cp = 0;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                  static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
  *len = n > 0 ? static_cast<size_t>(n) : 1;
  return n > 0 ? static_cast<char32_t>(cp) : 0xFFFD;
}

void AppendCodePoint(char32_t c, std::string* out) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
  out->append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

template <typename F>
void ForEachChar(std::string_view s, F f) {
  for (size_t i = 0; i < s.size();) {
    size_t n;
    const char32_t c = CodePointAt(s, i, &n);
    f(c, i, n);
    i += n;
  }
}

// Rust's char::is_whitespace (the White_Space property).
bool IsWhitespace(char32_t c) { return unicode::IsWhiteSpace(c); }

utf8proc_category_t Category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

bool IsPunctuationChar(char32_t c) {
  if (c < 0x80)
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  const auto k = Category(c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

bool IsNumeric(char32_t c) {
  const auto k = Category(c);
  return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool IsAlphanumeric(char32_t c) {
  const auto k = Category(c);
  return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || IsNumeric(c);
}

bool IsMark(char32_t c) {
  const auto k = Category(c);
  return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}

// BERT's "control": categories C* but tab, newline and carriage return (those are whitespace).
bool IsBertControl(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  const auto k = Category(c);
  return k == UTF8PROC_CATEGORY_CN || k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF ||
         k == UTF8PROC_CATEGORY_CS || k == UTF8PROC_CATEGORY_CO;
}

bool IsChineseChar(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::string Utf8procMap(std::string_view s, int options) {
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                              static_cast<utf8proc_ssize_t>(s.size()), &out,
                              static_cast<utf8proc_option_t>(options));
  if (n < 0) return std::string(s);  // invalid UTF-8 cannot reach here (inputs are sanitized)
  std::string r(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  free(out);
  return r;
}

// GPT-2's bytes_to_unicode, both ways.
struct ByteAlphabet {
  std::string byte_to_char[256];
  absl::flat_hash_map<char32_t, uint8_t> char_to_byte;
  ByteAlphabet() {
    for (int b = 0; b < 256; ++b) {
      const char32_t c = unicode::ByteLevelChar(static_cast<unsigned char>(b));
      AppendCodePoint(c, &byte_to_char[b]);
      char_to_byte[c] = static_cast<uint8_t>(b);
    }
  }
};
const ByteAlphabet& Bytes() {
  static const ByteAlphabet* a = new ByteAlphabet();
  return *a;
}

std::string ToByteLevel(std::string_view s) {
  std::string out;
  for (unsigned char b : s) out += Bytes().byte_to_char[b];
  return out;
}

// Strings where invalid UTF-8 becomes U+FFFD (the library takes Unicode strings only).
std::string ValidUtf8(std::string_view s) {
  return unicode::IsValidUtf8(s) ? std::string(s) : unicode::SanitizeUtf8(s);
}

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  for (size_t f; (f = s->find(from, pos)) != std::string::npos; pos = f + from.size()) {
    out.append(*s, pos, f - pos);
    out.append(to);
  }
  out.append(*s, pos, std::string::npos);
  *s = std::move(out);
}

// ---------------------------------------------------------------------------------------------
// Errors: the file, the JSON path, what, and a hint.

struct Ctx {
  std::string file;
  absl::Status Error(const std::string& path, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": ", path, ": ", what,
        ". HINT: this reader implements the tokenizer.json components that published tokenizers "
        "use (docs/tokenizers.md); convert the file with Hugging Face's tokenizers or choose "
        "another --tokenizer-type."));
  }
  absl::Status Unsupported(const std::string& path, const std::string& type) const {
    return Error(path, absl::StrCat("'", type, "' is not supported"));
  }
};

absl::StatusOr<std::string> Str(const Ctx& c, const Json& j, const std::string& path,
                                const char* key, std::optional<std::string> def = std::nullopt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (def) return *def;
    return c.Error(absl::StrCat(path, ".", key), "missing");
  }
  if (!it->is_string()) return c.Error(absl::StrCat(path, ".", key), "not a string");
  return it->get<std::string>();
}

absl::StatusOr<bool> Bool(const Ctx& c, const Json& j, const std::string& path, const char* key,
                          bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) return c.Error(absl::StrCat(path, ".", key), "not true or false");
  return it->get<bool>();
}

absl::StatusOr<int64_t> Int(const Ctx& c, const Json& j, const std::string& path, const char* key,
                            int64_t def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number_integer() && !it->is_number_unsigned())
    return c.Error(absl::StrCat(path, ".", key), "not an integer");
  return it->get<int64_t>();
}

absl::StatusOr<const Json*> Array(const Ctx& c, const Json& j, const std::string& path,
                                  const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return c.Error(absl::StrCat(path, ".", key), "not a list");
  return &*it;
}

// ---------------------------------------------------------------------------------------------
// Patterns and splitting (the library's NormalizedString::split).

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

absl::StatusOr<Behavior> ParseBehavior(const Ctx& c, const Json& j, const std::string& path,
                                       const char* key, Behavior def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  const std::string s = it->is_string() ? it->get<std::string>() : "";
  if (s == "Removed") return Behavior::kRemoved;
  if (s == "Isolated") return Behavior::kIsolated;
  if (s == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::kMergedWithNext;
  if (s == "Contiguous") return Behavior::kContiguous;
  return c.Unsupported(absl::StrCat(path, ".", key), it->dump());
}

using Spans = std::vector<std::pair<size_t, size_t>>;

// A literal string or a regular expression ({"String": ...} or {"Regex": ...}).
struct Pattern {
  std::string literal;
  std::unique_ptr<OnigRegex> regex;
  void Find(std::string_view s, Spans* out) const {
    if (regex) return regex->FindAll(s, out);
    if (literal.empty()) return;
    for (size_t f, pos = 0; (f = s.find(literal, pos)) != std::string_view::npos;
         pos = f + literal.size())
      out->emplace_back(f, f + literal.size());
  }
};

absl::StatusOr<Pattern> ParsePattern(const Ctx& c, const Json& j, const std::string& path) {
  auto it = j.find("pattern");
  const std::string p = absl::StrCat(path, ".pattern");
  if (it == j.end() || !it->is_object()) return c.Error(p, "missing");
  Pattern out;
  if (it->contains("String") && (*it)["String"].is_string()) {
    out.literal = (*it)["String"].get<std::string>();
    return out;
  }
  if (it->contains("Regex") && (*it)["Regex"].is_string()) {
    auto r = OnigRegex::Compile((*it)["Regex"].get<std::string>());
    if (!r.ok()) return c.Error(p, std::string(r.status().message()));
    out.regex = *std::move(r);
    return out;
  }
  return c.Error(p, "neither {\"String\": ...} nor {\"Regex\": ...}");
}

// A word being pre-tokenized: its text and whether it starts the input (Metaspace's "first").
struct Piece {
  std::string text;
  bool first = false;
};

// Cuts `p` at the `matches` (sorted, disjoint) with the library's delimiter behaviours.
void SplitPiece(const Piece& p, const Spans& matches, Behavior behavior, bool invert,
                std::vector<Piece>* out) {
  std::vector<std::pair<std::pair<size_t, size_t>, bool>> all;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (prev < b) all.push_back({{prev, b}, false});
    all.push_back({{b, e}, true});
    prev = e;
  }
  if (prev < p.text.size()) all.push_back({{prev, p.text.size()}, false});
  if (invert)
    for (auto& a : all) a.second = !a.second;
  std::vector<std::pair<size_t, size_t>> keep;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::kRemoved:
      for (const auto& [o, m] : all)
        if (!m) keep.push_back(o);
      break;
    case Behavior::kIsolated:
      for (const auto& [o, m] : all) keep.push_back(o);
      break;
    case Behavior::kMergedWithPrevious:
      for (const auto& [o, m] : all) {
        if (m && !previous_match && !keep.empty()) {
          keep.back().second = o.second;
        } else {
          keep.push_back(o);
        }
        previous_match = m;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = all.rbegin(); it != all.rend(); ++it) {
        if (it->second && !previous_match && !keep.empty()) {
          keep.back().first = it->first.first;
        } else {
          keep.push_back(it->first);
        }
        previous_match = it->second;
      }
      std::reverse(keep.begin(), keep.end());
      break;
    case Behavior::kContiguous:
      for (size_t k = 0; k < all.size(); ++k) {
        if (k > 0 && all[k].second == previous_match) {
          keep.back().second = all[k].first.second;
        } else {
          keep.push_back(all[k].first);
        }
        previous_match = all[k].second;
      }
      break;
  }
  for (const auto& [b, e] : keep) {
    if (b == e) continue;
    out->push_back({p.text.substr(b, e - b), p.first && b == 0});
  }
}

template <typename Pred>
Spans CharMatches(std::string_view s, Pred pred) {
  Spans m;
  ForEachChar(s, [&](char32_t c, size_t i, size_t n) {
    if (pred(c)) m.emplace_back(i, i + n);
  });
  return m;
}

// ---------------------------------------------------------------------------------------------
// Normalizers.

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void Apply(std::string* s) const = 0;
};

class FnNormalizer : public Normalizer {
 public:
  explicit FnNormalizer(std::function<void(std::string*)> f) : f_(std::move(f)) {}
  void Apply(std::string* s) const override { f_(s); }

 private:
  std::function<void(std::string*)> f_;
};

void Lowercase(std::string* s) {
  std::string out;
  ForEachChar(*s, [&](char32_t c, size_t, size_t) {
    if (c == 0x130) {
      out += "i\xCC\x87";  // the one unconditional multi-character lowercase mapping
    } else {
      AppendCodePoint(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))),
                      &out);
    }
  });
  *s = std::move(out);
}

template <typename Pred>
void Filter(std::string* s, Pred drop) {
  std::string out;
  ForEachChar(*s, [&](char32_t c, size_t i, size_t n) {
    if (!drop(c)) out.append(*s, i, n);
  });
  *s = std::move(out);
}

void StripWhitespace(std::string* s, bool left, bool right) {
  size_t b = 0, e = s->size();
  if (left) {
    while (b < e) {
      size_t n;
      if (!IsWhitespace(CodePointAt(*s, b, &n))) break;
      b += n;
    }
  }
  if (right) {
    while (e > b) {
      size_t start = e - 1;
      while (start > b && (static_cast<unsigned char>((*s)[start]) & 0xC0) == 0x80) --start;
      size_t n;
      if (!IsWhitespace(CodePointAt(*s, start, &n))) break;
      e = start;
    }
  }
  *s = s->substr(b, e - b);
}

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Ctx& c, const Json& j,
                                                            const std::string& path) {
  BRAID_ASSIGN_OR_RETURN(std::string type, Str(c, j, path, "type"));
  using F = std::function<void(std::string*)>;
  auto make = [](F f) -> std::unique_ptr<Normalizer> {
    return std::make_unique<FnNormalizer>(std::move(f));
  };
  if (type == "NFC")
    return make([](std::string* s) { *s = Utf8procMap(*s, UTF8PROC_STABLE | UTF8PROC_COMPOSE); });
  if (type == "NFD")
    return make([](std::string* s) { *s = Utf8procMap(*s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE); });
  if (type == "NFKC")
    return make([](std::string* s) {
      *s = Utf8procMap(*s, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    });
  if (type == "NFKD")
    return make([](std::string* s) {
      *s = Utf8procMap(*s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
    });
  if (type == "Lowercase") return make(Lowercase);
  if (type == "StripAccents") return make([](std::string* s) { Filter(s, IsMark); });
  if (type == "Strip") {
    BRAID_ASSIGN_OR_RETURN(bool left, Bool(c, j, path, "strip_left", true));
    BRAID_ASSIGN_OR_RETURN(bool right, Bool(c, j, path, "strip_right", true));
    return make([left, right](std::string* s) { StripWhitespace(s, left, right); });
  }
  if (type == "Prepend") {
    BRAID_ASSIGN_OR_RETURN(std::string pre, Str(c, j, path, "prepend"));
    return make([pre](std::string* s) {
      if (!s->empty()) s->insert(0, pre);
    });
  }
  if (type == "Replace") {
    BRAID_ASSIGN_OR_RETURN(Pattern p, ParsePattern(c, j, path));
    BRAID_ASSIGN_OR_RETURN(std::string content, Str(c, j, path, "content"));
    auto shared = std::make_shared<Pattern>(std::move(p));
    return make([shared, content](std::string* s) {
      Spans m;
      shared->Find(*s, &m);
      if (m.empty()) return;
      std::string out;
      size_t prev = 0;
      for (const auto& [b, e] : m) {
        out.append(*s, prev, b - prev);
        out += content;
        prev = e;
      }
      out.append(*s, prev, std::string::npos);
      *s = std::move(out);
    });
  }
  if (type == "BertNormalizer") {
    BRAID_ASSIGN_OR_RETURN(bool clean, Bool(c, j, path, "clean_text", true));
    BRAID_ASSIGN_OR_RETURN(bool chinese, Bool(c, j, path, "handle_chinese_chars", true));
    BRAID_ASSIGN_OR_RETURN(bool lower, Bool(c, j, path, "lowercase", true));
    BRAID_ASSIGN_OR_RETURN(bool strip, Bool(c, j, path, "strip_accents", lower));
    return make([=](std::string* s) {
      if (clean) {
        std::string out;
        ForEachChar(*s, [&](char32_t ch, size_t i, size_t n) {
          if (ch == 0 || ch == 0xFFFD || IsBertControl(ch)) return;
          if (ch == '\t' || ch == '\n' || ch == '\r' || IsWhitespace(ch)) {
            out += ' ';
          } else {
            out.append(*s, i, n);
          }
        });
        *s = std::move(out);
      }
      if (chinese) {
        std::string out;
        ForEachChar(*s, [&](char32_t ch, size_t i, size_t n) {
          if (IsChineseChar(ch)) out += ' ';
          out.append(*s, i, n);
          if (IsChineseChar(ch)) out += ' ';
        });
        *s = std::move(out);
      }
      if (strip) {
        *s = Utf8procMap(*s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
        Filter(s, [](char32_t ch) { return Category(ch) == UTF8PROC_CATEGORY_MN; });
      }
      if (lower) Lowercase(s);
    });
  }
  if (type == "Sequence") {
    BRAID_ASSIGN_OR_RETURN(const Json* list, Array(c, j, path, "normalizers"));
    std::vector<std::shared_ptr<Normalizer>> parts;
    for (size_t k = 0; k < list->size(); ++k) {
      BRAID_ASSIGN_OR_RETURN(
          auto n, ParseNormalizer(c, (*list)[k], absl::StrCat(path, ".normalizers[", k, "]")));
      parts.push_back(std::move(n));
    }
    return make([parts](std::string* s) {
      for (const auto& n : parts) n->Apply(s);
    });
  }
  return c.Unsupported(absl::StrCat(path, ".type"), type);
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers: each rewrites the list of pieces.

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void Apply(std::vector<Piece>* pieces) const = 0;
};

class FnPreTokenizer : public PreTokenizer {
 public:
  explicit FnPreTokenizer(std::function<void(const Piece&, std::vector<Piece>*)> f)
      : f_(std::move(f)) {}
  void Apply(std::vector<Piece>* pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces->size());
    for (const Piece& p : *pieces) f_(p, &out);
    *pieces = std::move(out);
  }

 private:
  std::function<void(const Piece&, std::vector<Piece>*)> f_;
};

constexpr const char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Ctx& c, const Json& j,
                                                                const std::string& path) {
  BRAID_ASSIGN_OR_RETURN(std::string type, Str(c, j, path, "type"));
  using F = std::function<void(const Piece&, std::vector<Piece>*)>;
  auto make = [](F f) -> std::unique_ptr<PreTokenizer> {
    return std::make_unique<FnPreTokenizer>(std::move(f));
  };
  if (type == "ByteLevel") {
    BRAID_ASSIGN_OR_RETURN(bool prefix, Bool(c, j, path, "add_prefix_space", true));
    BRAID_ASSIGN_OR_RETURN(bool use_regex, Bool(c, j, path, "use_regex", true));
    std::shared_ptr<OnigRegex> re;
    if (use_regex) {
      BRAID_ASSIGN_OR_RETURN(auto r, OnigRegex::Compile(kGpt2Pattern));
      re = std::move(r);
    }
    return make([prefix, re](const Piece& p, std::vector<Piece>* out) {
      Piece q = p;
      if (prefix && (q.text.empty() || q.text[0] != ' ')) q.text.insert(0, " ");
      std::vector<Piece> parts;
      if (re) {
        Spans m;
        re->FindAll(q.text, &m);
        SplitPiece(q, m, Behavior::kIsolated, false, &parts);
      } else if (!q.text.empty()) {
        parts.push_back(q);
      }
      for (Piece& part : parts) {
        part.text = ToByteLevel(part.text);
        out->push_back(std::move(part));
      }
    });
  }
  if (type == "Split") {
    BRAID_ASSIGN_OR_RETURN(Pattern p, ParsePattern(c, j, path));
    BRAID_ASSIGN_OR_RETURN(Behavior b, ParseBehavior(c, j, path, "behavior", Behavior::kRemoved));
    BRAID_ASSIGN_OR_RETURN(bool invert, Bool(c, j, path, "invert", false));
    auto shared = std::make_shared<Pattern>(std::move(p));
    return make([shared, b, invert](const Piece& piece, std::vector<Piece>* out) {
      Spans m;
      shared->Find(piece.text, &m);
      SplitPiece(piece, m, b, invert, out);
    });
  }
  if (type == "Metaspace") {
    BRAID_ASSIGN_OR_RETURN(std::string rep, Str(c, j, path, "replacement", "\xE2\x96\x81"));
    BRAID_ASSIGN_OR_RETURN(bool split, Bool(c, j, path, "split", true));
    std::string scheme = "always";
    if (j.contains("prepend_scheme") && !j["prepend_scheme"].is_null()) {
      BRAID_ASSIGN_OR_RETURN(scheme, Str(c, j, path, "prepend_scheme"));
    } else {
      BRAID_ASSIGN_OR_RETURN(bool add, Bool(c, j, path, "add_prefix_space", true));
      scheme = add ? "always" : "never";
    }
    if (scheme != "always" && scheme != "first" && scheme != "never") {
      return c.Unsupported(absl::StrCat(path, ".prepend_scheme"), scheme);
    }
    return make([rep, split, scheme](const Piece& p, std::vector<Piece>* out) {
      Piece q = p;
      ReplaceAll(&q.text, " ", rep);
      const bool starts = q.text.compare(0, rep.size(), rep) == 0;
      if (!starts && (scheme == "always" || (scheme == "first" && q.first))) q.text.insert(0, rep);
      if (!split) {
        if (!q.text.empty()) out->push_back(std::move(q));
        return;
      }
      Spans m;
      for (size_t f, pos = 0; (f = q.text.find(rep, pos)) != std::string::npos;
           pos = f + rep.size())
        m.emplace_back(f, f + rep.size());
      SplitPiece(q, m, Behavior::kMergedWithNext, false, out);
    });
  }
  if (type == "Whitespace") {
    // \w+|[^\w\s]+ with \w as the library's regex engine has it (Unicode's "word" characters:
    // Alphabetic, marks, decimal digits, connectors, and the joiners U+200C/U+200D).
    BRAID_ASSIGN_OR_RETURN(
        auto r, OnigRegex::Compile(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+|)"
                                   R"([^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\s]+)"));
    std::shared_ptr<OnigRegex> re = std::move(r);
    return make([re](const Piece& p, std::vector<Piece>* out) {
      Spans m;
      re->FindAll(p.text, &m);
      SplitPiece(p, m, Behavior::kRemoved, true, out);
    });
  }
  if (type == "WhitespaceSplit") {
    return make([](const Piece& p, std::vector<Piece>* out) {
      SplitPiece(p, CharMatches(p.text, IsWhitespace), Behavior::kRemoved, false, out);
    });
  }
  if (type == "CharDelimiterSplit") {
    BRAID_ASSIGN_OR_RETURN(std::string d, Str(c, j, path, "delimiter"));
    size_t n = 0;
    const char32_t delim = d.empty() ? 0 : CodePointAt(d, 0, &n);
    if (d.empty() || n != d.size()) return c.Error(path + ".delimiter", "not one character");
    return make([delim](const Piece& p, std::vector<Piece>* out) {
      SplitPiece(p, CharMatches(p.text, [delim](char32_t ch) { return ch == delim; }),
                 Behavior::kRemoved, false, out);
    });
  }
  if (type == "Punctuation") {
    BRAID_ASSIGN_OR_RETURN(Behavior b, ParseBehavior(c, j, path, "behavior", Behavior::kIsolated));
    return make([b](const Piece& p, std::vector<Piece>* out) {
      SplitPiece(p, CharMatches(p.text, IsPunctuationChar), b, false, out);
    });
  }
  if (type == "Digits") {
    BRAID_ASSIGN_OR_RETURN(bool individual, Bool(c, j, path, "individual_digits", false));
    return make([individual](const Piece& p, std::vector<Piece>* out) {
      SplitPiece(p, CharMatches(p.text, IsNumeric),
                 individual ? Behavior::kIsolated : Behavior::kContiguous, false, out);
    });
  }
  if (type == "BertPreTokenizer") {
    return make([](const Piece& p, std::vector<Piece>* out) {
      std::vector<Piece> words;
      SplitPiece(p, CharMatches(p.text, IsWhitespace), Behavior::kRemoved, false, &words);
      for (const Piece& w : words)
        SplitPiece(w, CharMatches(w.text, IsPunctuationChar), Behavior::kIsolated, false, out);
    });
  }
  if (type == "Sequence") {
    BRAID_ASSIGN_OR_RETURN(const Json* list, Array(c, j, path, "pretokenizers"));
    std::vector<std::shared_ptr<PreTokenizer>> parts;
    for (size_t k = 0; k < list->size(); ++k) {
      BRAID_ASSIGN_OR_RETURN(
          auto p, ParsePreTokenizer(c, (*list)[k], absl::StrCat(path, ".pretokenizers[", k, "]")));
      parts.push_back(std::move(p));
    }
    return make([parts](const Piece& p, std::vector<Piece>* out) {
      std::vector<Piece> v{p};
      for (const auto& part : parts) part->Apply(&v);
      for (Piece& q : v) out->push_back(std::move(q));
    });
  }
  return c.Unsupported(absl::StrCat(path, ".type"), type);
}

// ---------------------------------------------------------------------------------------------
// Models.

class Model {
 public:
  virtual ~Model() = default;
  virtual void Tokenize(std::string_view word, std::vector<int32_t>* ids) const = 0;
  int32_t TokenToId(std::string_view t) const {
    auto it = vocab_.find(AsAbsl(t));
    return it == vocab_.end() ? -1 : it->second;
  }
  const std::string* IdToToken(int32_t id) const {
    return id >= 0 && id < static_cast<int32_t>(tokens_.size()) && has_[id] ? &tokens_[id]
                                                                            : nullptr;
  }
  int64_t Size() const { return static_cast<int64_t>(tokens_.size()); }

 protected:
  // Byte fallback: the ids of <0x00>..<0xFF> for each byte of `s`, appended to `ids`, when the
  // vocabulary has every one of them (else nothing is appended and false returned).
  bool ByteFallback(std::string_view s, std::vector<int32_t>* ids) const {
    const size_t start = ids->size();
    for (unsigned char b : s) {
      char hex[8];
      snprintf(hex, sizeof hex, "<0x%02X>", b);
      const int32_t id = TokenToId(hex);
      if (id < 0) {
        ids->resize(start);
        return false;
      }
      ids->push_back(id);
    }
    return true;
  }
  void Add(const std::string& token, int32_t id) {
    if (id >= static_cast<int32_t>(tokens_.size())) {
      tokens_.resize(id + 1);
      has_.resize(id + 1, false);
    }
    tokens_[id] = token;
    has_[id] = true;
    vocab_[token] = id;
  }
  absl::Status ReadVocabObject(const Ctx& c, const Json& j, const std::string& path) {
    auto it = j.find("vocab");
    if (it == j.end() || !it->is_object()) return c.Error(path + ".vocab", "not an object");
    for (auto e = it->begin(); e != it->end(); ++e) {
      if (!e.value().is_number_integer() || e.value().get<int64_t>() < 0 ||
          e.value().get<int64_t>() >= kMaxId)
        return c.Error(absl::StrCat(path, ".vocab[\"", e.key(), "\"]"), "not an id");
      Add(e.key(), static_cast<int32_t>(e.value().get<int64_t>()));
    }
    return absl::OkStatus();
  }

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> tokens_;
  std::vector<bool> has_;
};

// A word cache: the same words recur all through a corpus.
class WordCache {
 public:
  const std::vector<int32_t>* Find(std::string_view w) const {
    auto it = map_.find(AsAbsl(w));
    return it == map_.end() ? nullptr : &it->second;
  }
  void Put(std::string_view w, const std::vector<int32_t>& ids) const {
    if (w.size() > 64) return;
    if (map_.size() >= 200000) map_.clear();
    map_.emplace(std::string(w), ids);
  }

 private:
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> map_;
};

// Merges the symbols of a word: the lowest-ranked adjacent pair first, the leftmost among equals
// (a heap of (rank, position) with stale entries skipped, as the library does).
template <typename PairRank>
void MergeSymbols(std::vector<int32_t>* syms, PairRank rank_of) {
  const int n = static_cast<int>(syms->size());
  if (n < 2) return;
  std::vector<int> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Item {
    int64_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Item& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
  auto push = [&](int a) {
    if (a < 0 || next[a] < 0) return;
    int32_t new_id;
    const int64_t r = rank_of((*syms)[a], (*syms)[next[a]], &new_id);
    if (r >= 0) heap.push({r, a, new_id});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Item top = heap.top();
    heap.pop();
    const int a = top.pos;
    if (!alive[a] || next[a] < 0) continue;
    const int b = next[a];
    int32_t new_id;
    if (rank_of((*syms)[a], (*syms)[b], &new_id) != top.rank || new_id != top.new_id) continue;
    (*syms)[a] = new_id;
    alive[b] = false;
    next[a] = next[b];
    if (next[a] >= 0) prev[next[a]] = a;
    push(prev[a]);
    push(a);
  }
  int w = 0;
  for (int i = 0; i < n; ++i)
    if (alive[i]) (*syms)[w++] = (*syms)[i];
  syms->resize(w);
}

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

class BpeModel : public Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Parse(const Ctx& c, const Json& j,
                                                      const std::string& path) {
    auto m = std::make_unique<BpeModel>();
    BRAID_RETURN_IF_ERROR(m->ReadVocabObject(c, j, path));
    if (j.contains("dropout") && !j["dropout"].is_null() &&
        (!j["dropout"].is_number() || j["dropout"].get<double>() != 0.0))
      return c.Error(path + ".dropout", "BPE dropout is for training tokenizers, not supported");
    BRAID_ASSIGN_OR_RETURN(m->unk_, Str(c, j, path, "unk_token", ""));
    BRAID_ASSIGN_OR_RETURN(m->prefix_, Str(c, j, path, "continuing_subword_prefix", ""));
    BRAID_ASSIGN_OR_RETURN(m->suffix_, Str(c, j, path, "end_of_word_suffix", ""));
    BRAID_ASSIGN_OR_RETURN(m->fuse_unk_, Bool(c, j, path, "fuse_unk", false));
    BRAID_ASSIGN_OR_RETURN(m->byte_fallback_, Bool(c, j, path, "byte_fallback", false));
    BRAID_ASSIGN_OR_RETURN(m->ignore_merges_, Bool(c, j, path, "ignore_merges", false));
    BRAID_ASSIGN_OR_RETURN(const Json* merges, Array(c, j, path, "merges"));
    m->merges_.reserve(merges->size());
    for (size_t k = 0; k < merges->size(); ++k) {
      const Json& e = (*merges)[k];
      std::string a, b;
      if (e.is_string()) {
        const std::string s = e.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos)
          return c.Error(absl::StrCat(path, ".merges[", k, "]"), "not 'a b'");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        a = e[0].get<std::string>();
        b = e[1].get<std::string>();
      } else {
        return c.Error(absl::StrCat(path, ".merges[", k, "]"), "neither 'a b' nor [a, b]");
      }
      const int32_t ia = m->TokenToId(a), ib = m->TokenToId(b);
      const std::string merged =
          a + (!m->prefix_.empty() && b.compare(0, m->prefix_.size(), m->prefix_) == 0
                   ? b.substr(m->prefix_.size())
                   : b);
      const int32_t im = m->TokenToId(merged);
      if (ia < 0 || ib < 0 || im < 0) {
        return c.Error(absl::StrCat(path, ".merges[", k, "]"),
                       absl::StrCat("'",
                                    ia < 0   ? a
                                    : ib < 0 ? b
                                             : merged,
                                    "' is not in the vocabulary"));
      }
      m->merges_[PairKey(ia, ib)] = {static_cast<int32_t>(k), im};
    }
    return std::unique_ptr<Model>(std::move(m));
  }

  void Tokenize(std::string_view w, std::vector<int32_t>* ids) const override {
    if (w.empty()) return;
    if (ignore_merges_) {
      const int32_t id = TokenToId(w);
      if (id >= 0) return ids->push_back(id);
    }
    if (const auto* hit = cache_.Find(w)) {
      ids->insert(ids->end(), hit->begin(), hit->end());
      return;
    }
    std::vector<int32_t> syms;
    int32_t unk_id = -1;  // a pending unknown (fused when fuse_unk)
    const int32_t unk = unk_.empty() ? -1 : TokenToId(unk_);
    std::string s;
    for (size_t i = 0; i < w.size();) {
      size_t n;
      CodePointAt(w, i, &n);
      s.assign(w.substr(i, n));
      if (i > 0 && !prefix_.empty()) s.insert(0, prefix_);
      if (i + n == w.size() && !suffix_.empty()) s += suffix_;
      i += n;
      const int32_t id = TokenToId(s);
      if (id >= 0) {
        if (unk_id >= 0) syms.push_back(unk_id);
        unk_id = -1;
        syms.push_back(id);
        continue;
      }
      if (byte_fallback_ && ByteFallback(s, &syms)) continue;
      if (unk >= 0) {
        if (unk_id >= 0 && !fuse_unk_) syms.push_back(unk_id);
        unk_id = unk;
      }
    }
    if (unk_id >= 0) syms.push_back(unk_id);
    MergeSymbols(&syms, [this](int32_t a, int32_t b, int32_t* new_id) -> int64_t {
      auto it = merges_.find(PairKey(a, b));
      if (it == merges_.end()) return -1;
      *new_id = it->second.second;
      return it->second.first;
    });
    cache_.Put(w, syms);
    ids->insert(ids->end(), syms.begin(), syms.end());
  }

 private:
  std::string unk_, prefix_, suffix_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  absl::flat_hash_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // -> (rank, merged id)
  WordCache cache_;
};

class WordPieceModel : public Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Parse(const Ctx& c, const Json& j,
                                                      const std::string& path) {
    auto m = std::make_unique<WordPieceModel>();
    BRAID_RETURN_IF_ERROR(m->ReadVocabObject(c, j, path));
    BRAID_ASSIGN_OR_RETURN(std::string unk, Str(c, j, path, "unk_token", "[UNK]"));
    BRAID_ASSIGN_OR_RETURN(m->prefix_, Str(c, j, path, "continuing_subword_prefix", "##"));
    BRAID_ASSIGN_OR_RETURN(m->max_chars_, Int(c, j, path, "max_input_chars_per_word", 100));
    m->unk_ = m->TokenToId(unk);
    if (m->unk_ < 0)
      return c.Error(path + ".unk_token", absl::StrCat("'", unk, "' is not in the vocabulary"));
    return std::unique_ptr<Model>(std::move(m));
  }
  void Tokenize(std::string_view w, std::vector<int32_t>* ids) const override {
    if (w.empty()) return;
    int64_t chars = 0;
    ForEachChar(w, [&](char32_t, size_t, size_t) { ++chars; });
    if (chars > max_chars_) return ids->push_back(unk_);
    std::vector<int32_t> sub;
    std::string s;
    for (size_t start = 0; start < w.size();) {
      size_t end = w.size();
      int32_t found = -1;
      while (start < end) {
        s.assign(start > 0 ? prefix_ : "");
        s.append(w.substr(start, end - start));
        found = TokenToId(s);
        if (found >= 0) break;
        --end;
        while (end > start && (static_cast<unsigned char>(w[end]) & 0xC0) == 0x80) --end;
      }
      if (found < 0) return ids->push_back(unk_);
      sub.push_back(found);
      start = end;
    }
    ids->insert(ids->end(), sub.begin(), sub.end());
  }

 private:
  std::string prefix_;
  int64_t max_chars_ = 100;
  int32_t unk_ = -1;
};

class WordLevelModel : public Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Parse(const Ctx& c, const Json& j,
                                                      const std::string& path) {
    auto m = std::make_unique<WordLevelModel>();
    BRAID_RETURN_IF_ERROR(m->ReadVocabObject(c, j, path));
    BRAID_ASSIGN_OR_RETURN(std::string unk, Str(c, j, path, "unk_token", "<unk>"));
    m->unk_ = m->TokenToId(unk);
    return std::unique_ptr<Model>(std::move(m));
  }
  void Tokenize(std::string_view w, std::vector<int32_t>* ids) const override {
    const int32_t id = TokenToId(w);
    if (id >= 0 || unk_ >= 0) ids->push_back(id >= 0 ? id : unk_);
  }

 private:
  int32_t unk_ = -1;
};

class UnigramModel : public Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Parse(const Ctx& c, const Json& j,
                                                      const std::string& path) {
    auto m = std::make_unique<UnigramModel>();
    BRAID_ASSIGN_OR_RETURN(const Json* vocab, Array(c, j, path, "vocab"));
    m->min_score_ = 0;
    for (size_t k = 0; k < vocab->size(); ++k) {
      const Json& e = (*vocab)[k];
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
        return c.Error(absl::StrCat(path, ".vocab[", k, "]"), "not [piece, score]");
      const std::string piece = e[0].get<std::string>();
      const double score = e[1].get<double>();
      m->Add(piece, static_cast<int32_t>(k));
      m->scores_.push_back(score);
      m->max_len_ = std::max(m->max_len_, piece.size());
      if (k == 0 || score < m->min_score_) m->min_score_ = score;
    }
    BRAID_ASSIGN_OR_RETURN(int64_t unk, Int(c, j, path, "unk_id", -1));
    if (unk >= static_cast<int64_t>(vocab->size()))
      return c.Error(path + ".unk_id", "outside the vocabulary");
    m->unk_ = static_cast<int32_t>(unk);
    BRAID_ASSIGN_OR_RETURN(m->byte_fallback_, Bool(c, j, path, "byte_fallback", false));
    return std::unique_ptr<Model>(std::move(m));
  }

  // The best-scoring segmentation (Viterbi); a character no piece covers is the unknown piece,
  // scored min_score - 10, and runs of unknowns fuse (SentencePiece's rules).
  void Tokenize(std::string_view w, std::vector<int32_t>* ids) const override {
    if (w.empty()) return;
    if (const auto* hit = cache_.Find(w)) {
      ids->insert(ids->end(), hit->begin(), hit->end());
      return;
    }
    const size_t n = w.size();
    struct Node {
      double score = 0;
      int64_t start = -1;
      int32_t id = -1;
    };
    std::vector<Node> best(n + 1);
    const double unk_score = min_score_ - 10.0;
    for (size_t start = 0; start < n;) {
      size_t mblen;
      CodePointAt(w, start, &mblen);
      const double here = best[start].score;
      bool single = false;
      for (size_t len = 1; len <= max_len_ && start + len <= n; ++len) {
        const int32_t id = TokenToId(w.substr(start, len));
        if (id < 0) continue;
        Node& t = best[start + len];
        const double cand = scores_[id] + here;
        if (t.start < 0 || cand > t.score) t = {cand, static_cast<int64_t>(start), id};
        if (len == mblen) single = true;
      }
      if (!single) {
        Node& t = best[start + mblen];
        const double cand = unk_score + here;
        if (t.start < 0 || cand > t.score) t = {cand, static_cast<int64_t>(start), unk_};
      }
      start += mblen;
    }
    // Back from the end: the pieces, unknown runs fused into one.
    std::vector<std::pair<size_t, size_t>> spans;
    std::vector<bool> unknown;
    for (size_t end = n; end > 0;) {
      const Node& node = best[end];
      const auto s = static_cast<size_t>(node.start);
      const bool is_unk = unk_ >= 0 && node.id == unk_;
      if (is_unk && !unknown.empty() && unknown.back()) {
        spans.back().first = s;
      } else {
        spans.emplace_back(s, end);
        unknown.push_back(is_unk);
      }
      end = s;
    }
    std::vector<int32_t> out;
    for (size_t k = spans.size(); k-- > 0;) {
      const std::string_view piece = w.substr(spans[k].first, spans[k].second - spans[k].first);
      int32_t id = TokenToId(piece);
      if (id >= 0) {
        out.push_back(id);
        continue;
      }
      if (byte_fallback_ && ByteFallback(piece, &out)) continue;
      out.push_back(unk_);
    }
    cache_.Put(w, out);
    ids->insert(ids->end(), out.begin(), out.end());
  }

 private:
  std::vector<double> scores_;
  double min_score_ = 0;
  size_t max_len_ = 0;
  int32_t unk_ = -1;
  bool byte_fallback_ = false;
  WordCache cache_;
};

// tiktoken: byte strings with ranks (the rank is the id); a word's bytes merge by the rank of
// the merged string, lowest first.
class TiktokenModel : public Model {
 public:
  static absl::StatusOr<std::unique_ptr<TiktokenModel>> Load(const std::string& file) {
    BRAID_ASSIGN_OR_RETURN(std::string text, ReadFileContents(file));
    auto m = std::make_unique<TiktokenModel>();
    int64_t line_no = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      const std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
      std::string bytes;
      int64_t rank = -1;
      if (f.size() != 2 || !absl::Base64Unescape(f[0], &bytes) || bytes.empty() ||
          !absl::SimpleAtoi(f[1], &rank) || rank < 0 || rank >= kMaxId) {
        return absl::InvalidArgumentError(absl::StrCat(
            file, ":", line_no,
            ": not a tiktoken rank line ('<base64 bytes> <rank>'). HINT: "
            "--tokenizer-type tiktoken takes a rank file such as LLaMA 3's "
            "original/tokenizer.model; a tokenizer.json goes with --tokenizer-type huggingface."));
      }
      m->bytes_.emplace(bytes, static_cast<int32_t>(rank));
      m->Add(ToByteLevel(bytes), static_cast<int32_t>(rank));
      m->raw_.resize(std::max<size_t>(m->raw_.size(), rank + 1));
      m->raw_[rank] = bytes;
    }
    for (int b = 0; b < 256; ++b) {
      if (!m->bytes_.contains(std::string(1, static_cast<char>(b)))) {
        return absl::InvalidArgumentError(absl::StrCat(
            file, ": byte ", b,
            " has no rank: not a byte-level tiktoken file. HINT: check that the file is whole."));
      }
    }
    return m;
  }
  // `w` is a raw byte string (no byte-level characters).
  void Tokenize(std::string_view w, std::vector<int32_t>* ids) const override {
    if (w.empty()) return;
    if (auto it = bytes_.find(AsAbsl(w)); it != bytes_.end()) return ids->push_back(it->second);
    if (const auto* hit = cache_.Find(w)) {
      ids->insert(ids->end(), hit->begin(), hit->end());
      return;
    }
    std::vector<int32_t> syms;
    for (unsigned char b : w)
      syms.push_back(bytes_.find(std::string(1, static_cast<char>(b)))->second);
    std::string joined;
    MergeSymbols(&syms, [&](int32_t a, int32_t b, int32_t* new_id) -> int64_t {
      joined.assign(raw_[a]);
      joined += raw_[b];
      auto it = bytes_.find(joined);
      if (it == bytes_.end()) return -1;
      *new_id = it->second;
      return it->second;
    });
    cache_.Put(w, syms);
    ids->insert(ids->end(), syms.begin(), syms.end());
  }
  const std::string& Raw(int32_t id) const { return raw_[id]; }
  int64_t RankCount() const { return static_cast<int64_t>(raw_.size()); }

 private:
  absl::flat_hash_map<std::string, int32_t> bytes_;
  std::vector<std::string> raw_;
  WordCache cache_;
};

absl::StatusOr<std::unique_ptr<Model>> ParseModel(const Ctx& c, const Json& j,
                                                  const std::string& path) {
  if (!j.is_object()) return c.Error(path, "missing");
  BRAID_ASSIGN_OR_RETURN(std::string type, Str(c, j, path, "type", ""));
  if (type.empty()) {  // files from before the model was tagged
    if (j.contains("merges"))
      type = "BPE";
    else if (j.contains("vocab") && j["vocab"].is_array())
      type = "Unigram";
    else if (j.contains("max_input_chars_per_word"))
      type = "WordPiece";
  }
  if (type == "BPE") return BpeModel::Parse(c, j, path);
  if (type == "WordPiece") return WordPieceModel::Parse(c, j, path);
  if (type == "Unigram") return UnigramModel::Parse(c, j, path);
  if (type == "WordLevel") return WordLevelModel::Parse(c, j, path);
  return c.Unsupported(path + ".type", type);
}

// ---------------------------------------------------------------------------------------------
// Decoders: each rewrites the list of token strings; the result is their concatenation.

using Decoder = std::function<void(std::vector<std::string>*)>;

std::string FromByteLevel(const std::string& token) {
  std::string out;
  bool ok = true;
  ForEachChar(token, [&](char32_t ch, size_t, size_t) {
    auto it = Bytes().char_to_byte.find(ch);
    if (it == Bytes().char_to_byte.end())
      ok = false;
    else
      out += static_cast<char>(it->second);
  });
  return ok ? out : token;
}

absl::StatusOr<Decoder> ParseDecoder(const Ctx& c, const Json& j, const std::string& path) {
  BRAID_ASSIGN_OR_RETURN(std::string type, Str(c, j, path, "type"));
  if (type == "ByteLevel") {
    return Decoder([](std::vector<std::string>* t) {
      std::string bytes;
      for (const auto& s : *t) bytes += FromByteLevel(s);
      *t = {ValidUtf8(bytes)};
    });
  }
  if (type == "Metaspace") {
    BRAID_ASSIGN_OR_RETURN(std::string rep, Str(c, j, path, "replacement", "\xE2\x96\x81"));
    std::string scheme = "always";
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
      scheme = j["prepend_scheme"].get<std::string>();
    } else {
      BRAID_ASSIGN_OR_RETURN(bool add, Bool(c, j, path, "add_prefix_space", true));
      scheme = add ? "always" : "never";
    }
    return Decoder([rep, scheme](std::vector<std::string>* t) {
      for (size_t i = 0; i < t->size(); ++i)
        ReplaceAll(&(*t)[i], rep, i == 0 && scheme != "never" ? "" : " ");
    });
  }
  if (type == "ByteFallback") {
    return Decoder([](std::vector<std::string>* t) {
      std::vector<std::string> out;
      std::string bytes;
      auto flush = [&] {
        if (bytes.empty()) return;
        if (unicode::IsValidUtf8(bytes)) {
          out.push_back(bytes);
        } else {
          for (size_t k = 0; k < bytes.size(); ++k) out.push_back("\xEF\xBF\xBD");
        }
        bytes.clear();
      };
      for (const auto& s : *t) {
        int v = -1;
        if (s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>' &&
            std::isxdigit(static_cast<unsigned char>(s[3])) &&
            std::isxdigit(static_cast<unsigned char>(s[4])))
          v = std::stoi(s.substr(3, 2), nullptr, 16);
        if (v >= 0) {
          bytes += static_cast<char>(v);
        } else {
          flush();
          out.push_back(s);
        }
      }
      flush();
      *t = std::move(out);
    });
  }
  if (type == "Fuse") {
    return Decoder([](std::vector<std::string>* t) { *t = {absl::StrJoin(*t, "")}; });
  }
  if (type == "Strip") {
    BRAID_ASSIGN_OR_RETURN(std::string content, Str(c, j, path, "content"));
    BRAID_ASSIGN_OR_RETURN(int64_t start, Int(c, j, path, "start", 0));
    BRAID_ASSIGN_OR_RETURN(int64_t stop, Int(c, j, path, "stop", 0));
    return Decoder([content, start, stop](std::vector<std::string>* t) {
      for (auto& s : *t) {
        size_t b = 0, e = s.size();
        for (int64_t k = 0; k < start && s.compare(b, content.size(), content) == 0 && b < e; ++k)
          b += content.size();
        for (int64_t k = 0; k < stop && e >= b + content.size() &&
                            s.compare(e - content.size(), content.size(), content) == 0;
             ++k)
          e -= content.size();
        s = s.substr(b, e - b);
      }
    });
  }
  if (type == "Replace") {
    BRAID_ASSIGN_OR_RETURN(Pattern p, ParsePattern(c, j, path));
    BRAID_ASSIGN_OR_RETURN(std::string content, Str(c, j, path, "content"));
    auto shared = std::make_shared<Pattern>(std::move(p));
    return Decoder([shared, content](std::vector<std::string>* t) {
      for (auto& s : *t) {
        Spans m;
        shared->Find(s, &m);
        std::string out;
        size_t prev = 0;
        for (const auto& [b, e] : m) {
          out.append(s, prev, b - prev);
          out += content;
          prev = e;
        }
        out.append(s, prev, std::string::npos);
        s = std::move(out);
      }
    });
  }
  if (type == "WordPiece") {
    BRAID_ASSIGN_OR_RETURN(std::string prefix, Str(c, j, path, "prefix", "##"));
    BRAID_ASSIGN_OR_RETURN(bool cleanup, Bool(c, j, path, "cleanup", true));
    return Decoder([prefix, cleanup](std::vector<std::string>* t) {
      for (size_t i = 0; i < t->size(); ++i) {
        std::string& s = (*t)[i];
        if (i > 0) {
          if (s.compare(0, prefix.size(), prefix) == 0)
            s = s.substr(prefix.size());
          else
            s.insert(0, " ");
        }
        if (cleanup) {
          for (const auto& [from, to] :
               std::vector<std::pair<const char*, const char*>>{{" .", "."},
                                                                {" ?", "?"},
                                                                {" !", "!"},
                                                                {" ,", ","},
                                                                {" ' ", "'"},
                                                                {" n't", "n't"},
                                                                {" 'm", "'m"},
                                                                {" do not", " don't"},
                                                                {" 's", "'s"},
                                                                {" 've", "'ve"},
                                                                {" 're", "'re"}})
            ReplaceAll(&s, from, to);
        }
      }
    });
  }
  if (type == "BPEDecoder") {
    BRAID_ASSIGN_OR_RETURN(std::string suffix, Str(c, j, path, "suffix", "</w>"));
    return Decoder([suffix](std::vector<std::string>* t) {
      for (size_t i = 0; i < t->size(); ++i)
        ReplaceAll(&(*t)[i], suffix, i + 1 == t->size() ? "" : " ");
    });
  }
  if (type == "Sequence") {
    BRAID_ASSIGN_OR_RETURN(const Json* list, Array(c, j, path, "decoders"));
    std::vector<Decoder> parts;
    for (size_t k = 0; k < list->size(); ++k) {
      BRAID_ASSIGN_OR_RETURN(Decoder d,
                             ParseDecoder(c, (*list)[k], absl::StrCat(path, ".decoders[", k, "]")));
      parts.push_back(std::move(d));
    }
    return Decoder([parts](std::vector<std::string>* t) {
      for (const auto& d : parts) d(t);
    });
  }
  return c.Unsupported(path + ".type", type);
}

// ---------------------------------------------------------------------------------------------
// The tokenizer.

struct AddedToken {
  std::string content;  // as matched (normalized ones: after the normalizer)
  std::string name;     // as written in the file
  int32_t id = -1;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// Leftmost-longest matching of a set of added tokens.
class AddedMatcher {
 public:
  void Add(const AddedToken* t) {
    if (t->content.empty()) return;
    by_byte_[static_cast<unsigned char>(t->content[0])].push_back(t);
  }
  void Finish() {
    for (auto& v : by_byte_)
      std::stable_sort(v.begin(), v.end(), [](const AddedToken* a, const AddedToken* b) {
        return a->content.size() > b->content.size();
      });
  }
  bool empty() const {
    for (const auto& v : by_byte_)
      if (!v.empty()) return false;
    return true;
  }
  // The splits of `s`: (token or null, [begin, end)).
  void Split(std::string_view s,
             std::vector<std::pair<const AddedToken*, std::pair<size_t, size_t>>>* out) const {
    size_t start_offset = 0;
    size_t pos = 0;
    while (pos < s.size()) {
      const AddedToken* hit = nullptr;
      for (const AddedToken* t : by_byte_[static_cast<unsigned char>(s[pos])]) {
        if (s.compare(pos, t->content.size(), t->content) == 0) {
          hit = t;
          break;
        }
      }
      if (hit == nullptr) {
        ++pos;
        continue;
      }
      size_t start = pos, stop = pos + hit->content.size();
      pos = stop;
      if (hit->single_word) {
        const bool start_space = start == 0 || !EndsWithWord(s.substr(0, start));
        const bool stop_space = stop == s.size() || !StartsWithWord(s.substr(stop));
        if (!start_space || !stop_space) continue;
      }
      if (hit->lstrip) {
        size_t b = start;
        while (b > start_offset) {
          size_t k = b - 1;
          while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
          size_t n;
          if (!IsWhitespace(CodePointAt(s, k, &n))) break;
          b = k;
        }
        start = b;
      }
      if (hit->rstrip) {
        while (stop < s.size()) {
          size_t n;
          if (!IsWhitespace(CodePointAt(s, stop, &n))) break;
          stop += n;
        }
        pos = stop;
      }
      if (start_offset < start) out->push_back({nullptr, {start_offset, start}});
      out->push_back({hit, {start, stop}});
      start_offset = stop;
    }
    if (start_offset < s.size() || s.empty()) out->push_back({nullptr, {start_offset, s.size()}});
  }

 private:
  static bool IsWord(char32_t c) { return c == '_' || IsAlphanumeric(c) || IsMark(c); }
  static bool StartsWithWord(std::string_view s) {
    size_t n;
    return !s.empty() && IsWord(CodePointAt(s, 0, &n));
  }
  static bool EndsWithWord(std::string_view s) {
    size_t k = s.size() - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
    size_t n;
    return IsWord(CodePointAt(s, k, &n));
  }
  std::vector<const AddedToken*> by_byte_[256];
};

class HfTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> Encode(std::string_view raw) const override {
    const std::string text = ValidUtf8(raw);
    std::vector<int32_t> ids;
    std::vector<std::pair<const AddedToken*, std::pair<size_t, size_t>>> outer, inner;
    raw_added_.Split(text, &outer);
    for (const auto& [tok, span] : outer) {
      if (tok != nullptr) {
        ids.push_back(tok->id);
        continue;
      }
      std::string piece = text.substr(span.first, span.second - span.first);
      if (piece.empty()) continue;
      if (normalizer_) normalizer_->Apply(&piece);
      inner.clear();
      norm_added_.Split(piece, &inner);
      for (const auto& [t2, s2] : inner) {
        if (t2 != nullptr) {
          ids.push_back(t2->id);
          continue;
        }
        std::vector<Piece> words{
            {piece.substr(s2.first, s2.second - s2.first), span.first == 0 && s2.first == 0}};
        if (words[0].text.empty()) continue;
        if (pre_) pre_->Apply(&words);
        for (const Piece& w : words) model_->Tokenize(w.text, &ids);
      }
    }
    if (add_special_) post_(&ids);
    return ids;
  }

  std::string Decode(const std::vector<int32_t>& ids) const override {
    std::vector<std::string> tokens;
    for (int32_t id : ids) {
      auto it = added_by_id_.find(id);
      if (it != added_by_id_.end()) {
        tokens.push_back(it->second->name);
      } else if (const std::string* t = model_->IdToToken(id)) {
        tokens.push_back(tiktoken_ ? tiktoken_->Raw(id) : *t);
      }
    }
    if (tiktoken_) return ValidUtf8(absl::StrJoin(tokens, ""));
    if (!decoder_) return absl::StrJoin(tokens, " ");
    decoder_(&tokens);
    return absl::StrJoin(tokens, "");
  }

  std::string IdToToken(int32_t id) const override {
    auto it = added_by_id_.find(id);
    if (it != added_by_id_.end()) return it->second->name;
    const std::string* t = model_->IdToToken(id);
    return t ? *t : "";
  }
  int64_t VocabSize() const override { return vocab_size_; }
  const SpecialIds& special() const override { return special_; }
  std::string name() const override { return tiktoken_ ? "tiktoken" : "huggingface"; }
  // The library encodes a document whole, and a normalizer or Metaspace may prepend to a piece.
  bool CutsAtSpaces() const override { return false; }

  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const TokenizerOptions& o) {
    const std::string file = InFolder(o.vocab_file, {"tokenizer.json"});
    const Ctx c{file};
    BRAID_ASSIGN_OR_RETURN(std::string text, ReadFileContents(file));
    Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          file,
          ": not a Hugging Face tokenizer.json (not a JSON object). HINT: --tokenizer-file takes "
          "the tokenizer.json that ships with a model; vocab.json + merges.txt go with "
          "--tokenizer-type gpt2, a SentencePiece .model with sentencepiece, a tiktoken rank "
          "file with tiktoken."));
    }
    auto t = std::unique_ptr<HfTokenizer>(new HfTokenizer());
    t->add_special_ = o.add_special_tokens;
    if (!j.contains("model")) return c.Error("model", "missing (not a tokenizer.json?)");
    BRAID_ASSIGN_OR_RETURN(t->model_, ParseModel(c, j["model"], "model"));
    if (j.contains("normalizer") && !j["normalizer"].is_null()) {
      BRAID_ASSIGN_OR_RETURN(t->normalizer_, ParseNormalizer(c, j["normalizer"], "normalizer"));
    }
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
      BRAID_ASSIGN_OR_RETURN(t->pre_, ParsePreTokenizer(c, j["pre_tokenizer"], "pre_tokenizer"));
    }
    if (j.contains("decoder") && !j["decoder"].is_null()) {
      BRAID_ASSIGN_OR_RETURN(t->decoder_, ParseDecoder(c, j["decoder"], "decoder"));
    }
    BRAID_RETURN_IF_ERROR(t->ParseAdded(c, j));
    t->post_ = [](std::vector<int32_t>*) {};
    if (j.contains("post_processor") && !j["post_processor"].is_null()) {
      BRAID_ASSIGN_OR_RETURN(t->post_, t->ParsePost(c, j["post_processor"], "post_processor"));
    }
    t->FindSpecial();
    return std::unique_ptr<Tokenizer>(std::move(t));
  }

  static absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTiktoken(const TokenizerOptions& o) {
    BRAID_ASSIGN_OR_RETURN(std::unique_ptr<TiktokenModel> m,
                           TiktokenModel::Load(InFolder(
                               o.vocab_file, {"original/tokenizer.model", "tokenizer.model"})));
    auto t = std::unique_ptr<HfTokenizer>(new HfTokenizer());
    t->tiktoken_ = m.get();
    const int64_t base = m->RankCount();
    t->model_ = std::move(m);
    const std::string pattern = o.tiktoken_pattern.empty() ? kLlama3Pattern : o.tiktoken_pattern;
    auto re = OnigRegex::Compile(pattern);
    if (!re.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--tiktoken-pattern: ", re.status().message(),
                                                     ". HINT: quote the pattern for the shell."));
    }
    std::shared_ptr<OnigRegex> shared = *std::move(re);
    t->pre_ = std::make_unique<FnPreTokenizer>([shared](const Piece& p, std::vector<Piece>* out) {
      Spans m;
      shared->FindAll(p.text, &m);
      for (const auto& [b, e] : m) out->push_back({p.text.substr(b, e - b), false});
    });
    std::vector<std::string> names = o.tiktoken_special_tokens;
    if (names.empty()) names = Llama3SpecialTokens();
    for (size_t k = 0; k < names.size(); ++k) {
      AddedToken a;
      a.content = a.name = names[k];
      a.id = static_cast<int32_t>(base + static_cast<int64_t>(k));
      a.special = true;
      t->added_.push_back(a);
    }
    t->IndexAdded();
    t->post_ = [](std::vector<int32_t>*) {};
    t->FindSpecial();
    return std::unique_ptr<Tokenizer>(std::move(t));
  }

 private:
  static constexpr const char* kLlama3Pattern =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

  // A model's folder (Megatron's --tokenizer-model names one, as transformers' from_pretrained
  // takes it): the first of `names` inside it; a file: itself.
  static std::string InFolder(const std::string& path, std::initializer_list<const char*> names) {
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) return path;
    for (const char* n : names) {
      const std::filesystem::path f = std::filesystem::path(path) / n;
      if (std::filesystem::is_regular_file(f, ec)) return f.string();
    }
    return (std::filesystem::path(path) / *names.begin()).string();  // named in the error
  }

  static std::vector<std::string> Llama3SpecialTokens() {
    std::vector<std::string> n = {"<|begin_of_text|>",
                                  "<|end_of_text|>",
                                  "<|reserved_special_token_0|>",
                                  "<|reserved_special_token_1|>",
                                  "<|reserved_special_token_2|>",
                                  "<|reserved_special_token_3|>",
                                  "<|start_header_id|>",
                                  "<|end_header_id|>",
                                  "<|reserved_special_token_4|>",
                                  "<|eot_id|>"};
    for (int k = 5; n.size() < 256; ++k)
      n.push_back(absl::StrCat("<|reserved_special_token_", k, "|>"));
    return n;
  }

  absl::Status ParseAdded(const Ctx& c, const Json& j) {
    if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
      BRAID_ASSIGN_OR_RETURN(const Json* list, Array(c, j, "", "added_tokens"));
      for (size_t k = 0; k < list->size(); ++k) {
        const Json& e = (*list)[k];
        const std::string p = absl::StrCat("added_tokens[", k, "]");
        if (!e.is_object()) return c.Error(p, "not an object");
        AddedToken a;
        BRAID_ASSIGN_OR_RETURN(a.name, Str(c, e, p, "content"));
        BRAID_ASSIGN_OR_RETURN(int64_t id, Int(c, e, p, "id", -1));
        if (id < 0 || id >= kMaxId) return c.Error(p + ".id", "missing, negative or above 2^24");
        a.id = static_cast<int32_t>(id);
        BRAID_ASSIGN_OR_RETURN(a.special, Bool(c, e, p, "special", false));
        BRAID_ASSIGN_OR_RETURN(a.single_word, Bool(c, e, p, "single_word", false));
        BRAID_ASSIGN_OR_RETURN(a.lstrip, Bool(c, e, p, "lstrip", false));
        BRAID_ASSIGN_OR_RETURN(a.rstrip, Bool(c, e, p, "rstrip", false));
        BRAID_ASSIGN_OR_RETURN(a.normalized, Bool(c, e, p, "normalized", !a.special));
        a.content = a.name;
        if (a.normalized && normalizer_) normalizer_->Apply(&a.content);
        added_.push_back(std::move(a));
      }
    }
    IndexAdded();
    return absl::OkStatus();
  }

  void IndexAdded() {
    vocab_size_ = model_->Size();
    for (const AddedToken& a : added_) {
      (a.normalized ? norm_added_ : raw_added_).Add(&a);
      added_by_id_[a.id] = &a;
      vocab_size_ = std::max<int64_t>(vocab_size_, a.id + 1);
    }
    raw_added_.Finish();
    norm_added_.Finish();
  }

  int32_t IdOf(const std::string& name) const {
    for (const auto& a : added_)
      if (a.name == name) return a.id;
    return model_->TokenToId(name);
  }

  absl::StatusOr<std::function<void(std::vector<int32_t>*)>> ParsePost(const Ctx& c, const Json& j,
                                                                       const std::string& path) {
    using P = std::function<void(std::vector<int32_t>*)>;
    BRAID_ASSIGN_OR_RETURN(std::string type, Str(c, j, path, "type"));
    if (type == "ByteLevel") return P([](std::vector<int32_t>*) {});
    if (type == "BertProcessing" || type == "RobertaProcessing") {
      auto id_of = [&](const char* key) -> absl::StatusOr<int32_t> {
        if (!j.contains(key) || !j[key].is_array() || j[key].size() != 2 ||
            !j[key][1].is_number_integer())
          return c.Error(absl::StrCat(path, ".", key), "not [token, id]");
        return j[key][1].get<int32_t>();
      };
      BRAID_ASSIGN_OR_RETURN(int32_t cls, id_of("cls"));
      BRAID_ASSIGN_OR_RETURN(int32_t sep, id_of("sep"));
      return P([cls, sep](std::vector<int32_t>* ids) {
        ids->insert(ids->begin(), cls);
        ids->push_back(sep);
      });
    }
    if (type == "TemplateProcessing") {
      BRAID_ASSIGN_OR_RETURN(const Json* single, Array(c, j, path, "single"));
      // Each item: the special token's ids, or empty for the sequence itself.
      std::vector<std::optional<std::vector<int32_t>>> items;
      for (size_t k = 0; k < single->size(); ++k) {
        const Json& e = (*single)[k];
        const std::string p = absl::StrCat(path, ".single[", k, "]");
        if (e.contains("Sequence")) {
          items.push_back(std::nullopt);
        } else if (e.contains("SpecialToken") && e["SpecialToken"].contains("id")) {
          const std::string name = e["SpecialToken"]["id"].get<std::string>();
          const Json* st = nullptr;
          if (j.contains("special_tokens") && j["special_tokens"].contains(name))
            st = &j["special_tokens"][name];
          if (st == nullptr || !st->contains("ids") || !(*st)["ids"].is_array())
            return c.Error(p, absl::StrCat("special token '", name, "' has no ids"));
          items.push_back((*st)["ids"].get<std::vector<int32_t>>());
        } else {
          return c.Error(p, "neither a Sequence nor a SpecialToken");
        }
      }
      return P([items](std::vector<int32_t>* ids) {
        std::vector<int32_t> out;
        for (const auto& it : items) {
          if (it) {
            out.insert(out.end(), it->begin(), it->end());
          } else {
            out.insert(out.end(), ids->begin(), ids->end());
          }
        }
        *ids = std::move(out);
      });
    }
    if (type == "Sequence") {
      BRAID_ASSIGN_OR_RETURN(const Json* list, Array(c, j, path, "processors"));
      std::vector<P> parts;
      for (size_t k = 0; k < list->size(); ++k) {
        BRAID_ASSIGN_OR_RETURN(
            P p, ParsePost(c, (*list)[k], absl::StrCat(path, ".processors[", k, "]")));
        parts.push_back(std::move(p));
      }
      return P([parts](std::vector<int32_t>* ids) {
        for (const auto& p : parts) p(ids);
      });
    }
    return c.Unsupported(path + ".type", type);
  }

  // The recipe's ids by the names published tokenizers use.
  void FindSpecial() {
    auto first = [&](std::initializer_list<const char*> names) -> int32_t {
      for (const char* n : names) {
        const int32_t id = IdOf(n);
        if (id >= 0) return id;
      }
      return -1;
    };
    special_.eod = first(
        {"<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", "<|im_end|>", "[SEP]", "<|end|>"});
    special_.bos = first({"<|begin_of_text|>", "<s>", "<bos>", "[CLS]", "<|endoftext|>"});
    special_.pad = first({"<pad>", "[PAD]", "<|finetune_right_pad_id|>", "<|endoftext|>"});
    special_.cls = first({"[CLS]", "<s>", "<cls>"});
    special_.sep = first({"[SEP]", "</s>", "<sep>"});
    special_.mask = first({"[MASK]", "<mask>"});
    special_.unk = first({"[UNK]", "<unk>"});
  }

  std::unique_ptr<Model> model_;
  const TiktokenModel* tiktoken_ = nullptr;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_;
  Decoder decoder_;
  std::function<void(std::vector<int32_t>*)> post_;
  std::vector<AddedToken> added_;  // not resized after IndexAdded (the matchers point into it)
  absl::flat_hash_map<int32_t, const AddedToken*> added_by_id_;
  AddedMatcher raw_added_, norm_added_;
  int64_t vocab_size_ = 0;  // the model's ids and the added tokens'
  bool add_special_ = false;
  SpecialIds special_;
};

}  // namespace hf_json

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeHuggingFaceTokenizer(const TokenizerOptions& o) {
  try {
    return hf_json::HfTokenizer::Load(o);
  } catch (const nlohmann::json::exception& e) {  // a value of an unexpected JSON type
    return absl::InvalidArgumentError(
        absl::StrCat(o.vocab_file, ": not a tokenizer.json this reader understands: ", e.what(),
                     ". HINT: a file that Hugging Face's tokenizers library loads should load "
                     "here; report the file if it does."));
  }
}

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeTiktokenTokenizer(const TokenizerOptions& o) {
  return hf_json::HfTokenizer::LoadTiktoken(o);
}

}  // namespace braid
