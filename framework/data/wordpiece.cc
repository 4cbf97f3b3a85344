// BERT WordPiece, as google-research/bert's FullTokenizer does it (docs/formats.md, "Tokenizers"):
// clean (drop NUL, U+FFFD, Cc/Cf except \t\n\r; whitespace -> space), pad CJK ideographs, split
// on whitespace (Python's str.split, so U+2028/U+2029 too), for uncased models lowercase with
// Python's str.lower() then NFD and drop Mn, split off punctuation, then greedy longest-match
// with "##" continuations; no match, or more than max_chars_per_word code points -> [UNK].
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "framework/core/files.h"
#include "framework/core/status.h"
#include "framework/data/tokenizer.h"
#include "framework/data/unicode.h"

namespace braid {
namespace {

bool IsControl(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  const char* cat = unicode::Category(c);
  return cat[0] == 'C' && (cat[1] == 'c' || cat[1] == 'f');
}

bool IsWhitespace(char32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
  const char* cat = unicode::Category(c);
  return cat[0] == 'Z' && cat[1] == 's';
}

// Python's str.isspace(), which str.split() splits on.
bool IsPySpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

bool IsPunctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return true;
  return unicode::IsPunctuation(c);
}

bool IsCjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::vector<std::u32string> SplitPySpace(const std::u32string& s) {
  std::vector<std::u32string> out;
  std::u32string cur;
  for (char32_t c : s) {
    if (IsPySpace(c)) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

class WordPieceTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> Encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    for (const std::u32string& word : BasicTokenize(text)) WordPiece(word, &ids);
    return ids;
  }

  std::string Decode(const std::vector<int32_t>& ids) const override {
    std::vector<std::string> tokens;
    for (int32_t id : ids) tokens.push_back(IdToToken(id));
    return absl::StrReplaceAll(absl::StrJoin(tokens, " "), {{" ##", ""}});
  }

  std::string IdToToken(int32_t id) const override {
    return id >= 0 && id < static_cast<int32_t>(id_to_token_.size()) ? id_to_token_[id] : "";
  }
  int64_t VocabSize() const override { return static_cast<int64_t>(id_to_token_.size()); }
  const SpecialIds& special() const override { return special_; }
  std::string name() const override { return "wordpiece"; }

  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const TokenizerOptions& o) {
    auto t = std::unique_ptr<WordPieceTokenizer>(new WordPieceTokenizer());
    t->lowercase_ = o.lowercase;
    t->max_chars_ = o.max_chars_per_word;
    BRAID_ASSIGN_OR_RETURN(std::string text, ReadFileContents(o.vocab_file));
    if (text.size() >= 2 && text[0] == '{') {
      return absl::InvalidArgumentError(
          absl::StrCat(o.vocab_file,
                       ": looks like JSON, not a WordPiece vocab.txt (one token per line). "
                       "HINT: a vocab.json belongs to --type gpt2."));
    }
    std::vector<std::string> lines = absl::StrSplit(text, '\n');
    if (!lines.empty() && lines.back().empty()) lines.pop_back();
    for (size_t i = 0; i < lines.size(); ++i) {
      std::string token(absl::StripAsciiWhitespace(lines[i]));
      t->vocab_[token] = static_cast<int32_t>(i);  // a repeated line: the last one wins
      t->id_to_token_.push_back(token);
    }
    auto id = [&](const char* name) {
      auto it = t->vocab_.find(name);
      return it == t->vocab_.end() ? -1 : it->second;
    };
    t->special_.pad = id("[PAD]");
    t->special_.unk = id("[UNK]");
    t->special_.cls = t->special_.bos = id("[CLS]");
    t->special_.sep = t->special_.eod = id("[SEP]");
    t->special_.mask = id("[MASK]");
    if (t->special_.unk < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          o.vocab_file, ": no [UNK] token in ", lines.size(), " lines: not a BERT vocab.txt."));
    }
    return std::unique_ptr<Tokenizer>(std::move(t));
  }

 private:
  std::vector<std::u32string> BasicTokenize(std::string_view text) const {
    std::u32string cps, clean;
    unicode::DecodeUtf8(text, &cps);
    clean.reserve(cps.size());
    for (char32_t c : cps) {
      if (c == 0 || c == 0xFFFD || IsControl(c)) continue;
      if (IsWhitespace(c)) {
        clean.push_back(' ');
      } else if (IsCjk(c)) {
        clean.push_back(' ');
        clean.push_back(c);
        clean.push_back(' ');
      } else {
        clean.push_back(c);
      }
    }
    std::vector<std::u32string> out;
    for (std::u32string token : SplitPySpace(clean)) {
      if (lowercase_) {
        std::u32string decomposed = unicode::Nfd(unicode::ToLower(token));
        token.clear();
        for (char32_t c : decomposed)
          if (!unicode::IsMark(c, 'n')) token.push_back(c);
      }
      std::u32string cur;
      for (char32_t c : token) {
        if (IsPunctuation(c)) {
          if (!cur.empty()) out.push_back(std::move(cur));
          cur.clear();
          out.push_back(std::u32string(1, c));
        } else {
          cur.push_back(c);
        }
      }
      if (!cur.empty()) out.push_back(std::move(cur));
    }
    return out;
  }

  void WordPiece(const std::u32string& word, std::vector<int32_t>* ids) const {
    if (static_cast<int>(word.size()) > max_chars_) {
      ids->push_back(special_.unk);
      return;
    }
    std::vector<int32_t> pieces;
    size_t start = 0;
    std::string candidate;
    while (start < word.size()) {
      size_t end = word.size();
      int32_t found = -1;
      while (start < end) {
        candidate = start > 0 ? "##" : "";
        candidate += unicode::EncodeUtf8(word.substr(start, end - start));
        auto it = vocab_.find(candidate);
        if (it != vocab_.end()) {
          found = it->second;
          break;
        }
        --end;
      }
      if (found < 0) {
        ids->push_back(special_.unk);
        return;
      }
      pieces.push_back(found);
      start = end;
    }
    ids->insert(ids->end(), pieces.begin(), pieces.end());
  }

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  SpecialIds special_;
  bool lowercase_ = true;
  int max_chars_ = 200;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeWordPieceTokenizer(const TokenizerOptions& o) {
  return WordPieceTokenizer::Load(o);
}

}  // namespace braid
