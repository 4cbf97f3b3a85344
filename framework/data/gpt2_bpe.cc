// GPT-2 byte-level BPE (docs/formats.md, "Tokenizers"): the pre-tokenizer regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// as a hand-written scanner with the same leftmost-first semantics, then each pre-token's bytes
// mapped through bytes_to_unicode and merged by rank (lowest first, all non-overlapping
// occurrences left to right). Merge ranks live in a hash map keyed by the pair of symbol ids;
// finished words are cached.
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "framework/core/files.h"
#include "framework/core/json.h"
#include "framework/core/status.h"
#include "framework/core/strings.h"
#include "framework/data/tokenizer.h"
#include "framework/data/unicode.h"

namespace braid {
namespace {

constexpr char kEndOfText[] = "<|endoftext|>";

enum class Cls : uint8_t { kLetter, kNumber, kSpace, kOther };

Cls Classify(char32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return Cls::kLetter;
    if (c >= '0' && c <= '9') return Cls::kNumber;
    if ((c >= 0x09 && c <= 0x0D) || c == ' ') return Cls::kSpace;
    return Cls::kOther;
  }
  if (unicode::IsWhiteSpace(c)) return Cls::kSpace;  // Python regex's \s
  if (unicode::IsLetter(c)) return Cls::kLetter;
  if (unicode::IsNumber(c)) return Cls::kNumber;
  return Cls::kOther;
}

// Splits `text` into pre-tokens, returned as [begin, end) byte ranges.
std::vector<std::pair<size_t, size_t>> PreTokenize(std::string_view text) {
  std::u32string cps;
  unicode::DecodeUtf8(text, &cps);
  // Byte offset of each code point (input is valid UTF-8 here; see Encode).
  std::vector<size_t> off(cps.size() + 1);
  {
    size_t b = 0;
    for (size_t i = 0; i < cps.size(); ++i) {
      off[i] = b;
      char32_t c = cps[i];
      b += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    }
    off[cps.size()] = b;
  }
  std::vector<Cls> cls(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) cls[i] = Classify(cps[i]);

  std::vector<std::pair<size_t, size_t>> out;
  const size_t n = cps.size();
  size_t i = 0;
  auto run = [&](size_t j, Cls c) {
    while (j < n && cls[j] == c) ++j;
    return j;
  };
  while (i < n) {
    size_t end = i;
    char32_t c = cps[i];
    if (c == '\'' && i + 1 < n) {  // 's 't 're 've 'm 'll 'd (case-sensitive)
      char32_t a = cps[i + 1], b = i + 2 < n ? cps[i + 2] : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        end = i + 2;
      } else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        end = i + 3;
      }
    }
    if (end == i) {
      bool lead_space = c == ' ' && i + 1 < n && cls[i + 1] != Cls::kSpace;
      size_t start = lead_space ? i + 1 : i;
      Cls k = start < n ? cls[start] : Cls::kSpace;
      if (k != Cls::kSpace && (lead_space || cls[i] != Cls::kSpace)) {
        end = run(start, k);  // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
      } else {
        size_t j = run(i, Cls::kSpace);  // whitespace run [i, j)
        // `\s+(?!\S)`: all of it at the end of text, else all but the last one; `\s+` otherwise.
        end = (j == n || j - 1 == i) ? j : j - 1;
      }
    }
    out.emplace_back(off[i], off[end]);
    i = end;
  }
  return out;
}

class Gpt2Tokenizer : public Tokenizer {
 public:
  std::vector<int32_t> Encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    if (!parse_special_) {
      EncodeOrdinary(text, &ids);
      return ids;
    }
    for (absl::string_view piece : absl::StrSplit(AsAbsl(text), kEndOfText)) {
      if (piece.data() != text.data()) ids.push_back(special_.eod);
      EncodeOrdinary(std::string_view(piece.data(), piece.size()), &ids);
    }
    return ids;
  }

  std::string Decode(const std::vector<int32_t>& ids) const override {
    std::string mapped;
    for (int32_t id : ids) mapped += IdToToken(id);
    std::u32string cps;
    unicode::DecodeUtf8(mapped, &cps);
    std::string bytes;
    bytes.reserve(cps.size());
    for (char32_t c : cps) {
      auto it = char_to_byte_.find(c);
      if (it != char_to_byte_.end()) bytes.push_back(static_cast<char>(it->second));
    }
    return unicode::SanitizeUtf8(bytes);
  }

  std::string IdToToken(int32_t id) const override {
    return id >= 0 && id < static_cast<int32_t>(id_to_token_.size()) ? id_to_token_[id] : "";
  }
  int64_t VocabSize() const override { return static_cast<int64_t>(id_to_token_.size()); }
  const SpecialIds& special() const override { return special_; }
  std::string name() const override { return "gpt2"; }

  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const TokenizerOptions& o) {
    auto t = std::unique_ptr<Gpt2Tokenizer>(new Gpt2Tokenizer());
    t->parse_special_ = o.parse_special;
    BRAID_RETURN_IF_ERROR(t->LoadVocab(o.vocab_file));
    if (o.merges_file.empty()) {
      return absl::InvalidArgumentError(
          "the gpt2 tokenizer needs merges.txt as well as "
          "vocab.json. HINT: set data.merges_file (or --merges).");
    }
    BRAID_RETURN_IF_ERROR(t->LoadMerges(o.merges_file));
    return std::unique_ptr<Tokenizer>(std::move(t));
  }

 private:
  static absl::StatusOr<std::string> Slurp(const std::string& path) {
    return ReadFileContents(path);
  }

  absl::Status LoadVocab(const std::string& path) {
    BRAID_ASSIGN_OR_RETURN(std::string text, Slurp(path));
    absl::StatusOr<JsonValue> json = ParseJson(text);
    if (!json.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": not a GPT-2 vocab.json: ", json.status().message(),
          ". HINT: --vocab takes vocab.json (encoder.json); merges.txt goes to --merges."));
    }
    if (json->kind != JsonValue::Kind::kObject || json->members.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": not a GPT-2 vocab.json (expected an object mapping tokens to ids)."));
    }
    id_to_token_.assign(json->members.size(), "");
    for (const auto& [token, id] : json->members) {
      if (!id.IsInteger() || id.AsInt() < 0 ||
          id.AsInt() >= static_cast<int64_t>(json->members.size())) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: token %s has id %s; ids must be integers 0..%d.", path,
                            JsonQuote(token), id.text, json->members.size() - 1));
      }
      vocab_[token] = static_cast<int32_t>(id.AsInt());
      id_to_token_[id.AsInt()] = token;
    }
    for (int b = 0; b < 256; ++b) {
      const char32_t c = unicode::ByteLevelChar(static_cast<unsigned char>(b));
      char_to_byte_[c] = static_cast<uint8_t>(b);
      std::string s;
      AppendUtf8(c, &s);
      auto it = vocab_.find(s);
      if (it == vocab_.end()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: byte 0x%02x (token %s) is missing: not a byte-level BPE vocabulary.", path, b,
            JsonQuote(s)));
      }
      byte_id_[b] = it->second;
    }
    auto eod = vocab_.find(kEndOfText);
    if (eod != vocab_.end()) special_.eod = special_.bos = special_.pad = eod->second;
    return absl::OkStatus();
  }

  absl::Status LoadMerges(const std::string& path) {
    BRAID_ASSIGN_OR_RETURN(std::string text, Slurp(path));
    int rank = 0;
    int line_no = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
      size_t sp = line.find(' ');
      if (sp == absl::string_view::npos || line.find(' ', sp + 1) != absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s:%d: expected two space-separated symbols, got '%s'. HINT: is this merges.txt "
            "(vocab.bpe)?",
            path, line_no, std::string(line.substr(0, 80))));
      }
      std::string a(line.substr(0, sp)), b(line.substr(sp + 1));
      auto ia = vocab_.find(a), ib = vocab_.find(b), im = vocab_.find(a + b);
      if (ia == vocab_.end() || ib == vocab_.end() || im == vocab_.end()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s:%d: merge '%s %s' uses a symbol that is not in the vocabulary. HINT: vocab.json "
            "and merges.txt must come from the same tokenizer.",
            path, line_no, a, b));
      }
      merges_.emplace(Key(ia->second, ib->second), Merge{rank++, im->second});
    }
    if (merges_.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": no merges found."));
    }
    return absl::OkStatus();
  }

  static uint64_t Key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  void EncodeOrdinary(std::string_view text, std::vector<int32_t>* ids) const {
    std::string clean;
    if (!unicode::DecodeUtf8(text, &scratch_)) {  // invalid input: encode U+FFFD instead
      clean = unicode::EncodeUtf8(scratch_);
      text = clean;
    }
    for (auto [b, e] : PreTokenize(text)) EncodeWord(text.substr(b, e - b), ids);
  }

  void EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
    auto hit = cache_.find(AsAbsl(word));
    if (hit != cache_.end()) {
      ids->insert(ids->end(), hit->second.begin(), hit->second.end());
      return;
    }
    std::vector<int32_t> sym;
    sym.reserve(word.size());
    for (unsigned char c : word) sym.push_back(byte_id_[c]);
    std::vector<int32_t> next;
    while (sym.size() > 1) {
      int best = INT32_MAX;
      uint64_t best_key = 0;
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        auto it = merges_.find(Key(sym[i], sym[i + 1]));
        if (it != merges_.end() && it->second.rank < best) {
          best = it->second.rank;
          best_key = it->first;
        }
      }
      if (best == INT32_MAX) break;
      const Merge& m = merges_.at(best_key);
      next.clear();
      for (size_t i = 0; i < sym.size();) {
        if (i + 1 < sym.size() && Key(sym[i], sym[i + 1]) == best_key) {
          next.push_back(m.merged);
          i += 2;
        } else {
          next.push_back(sym[i++]);
        }
      }
      sym.swap(next);
    }
    ids->insert(ids->end(), sym.begin(), sym.end());
    if (cache_.size() > (1 << 20)) cache_.clear();  // bound the memory of the cache
    cache_.emplace(std::string(word), std::move(sym));
  }

  struct Merge {
    int rank;
    int32_t merged;
  };
  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  absl::flat_hash_map<char32_t, uint8_t> char_to_byte_;
  int32_t byte_id_[256] = {};
  SpecialIds special_;
  bool parse_special_ = false;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_;
  mutable std::u32string scratch_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeGpt2Tokenizer(const TokenizerOptions& options) {
  return Gpt2Tokenizer::Load(options);
}

}  // namespace braid
