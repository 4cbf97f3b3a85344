// Tokenizer factory (see tokenizer.h).
#include "framework/data/tokenizer.h"
#include "framework/data/token_names.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace braid {
namespace {

constexpr const char kSentinelPrefix[] = "<extra_id_";

// A tokenizer with literal tokens around another: TokenizerOptions::added_tokens, and T5's
// sentinels (TokenizerOptions::extra_ids), whose ids it then also lists in special().
class WithAddedTokens : public Tokenizer {
 public:
  // `ids[k]`: the id of `names[k]` (its own, or appended at the top: `appended` of them).
  WithAddedTokens(std::unique_ptr<Tokenizer> base, std::vector<std::string> names,
                  std::vector<int32_t> ids, int appended, bool sentinels = false)
      : base_(std::move(base)),
        names_(std::move(names)),
        ids_(std::move(ids)),
        appended_(appended),
        special_(base_->special()) {
    if (sentinels) special_.sentinels = ids_;
  }
  std::vector<int32_t> Encode(std::string_view text) const override {
    std::vector<int32_t> out;
    size_t pos = 0;
    while (pos <= text.size()) {
      // The earliest name in the rest of the text; the longest one where several start there.
      size_t at = std::string_view::npos;
      int which = -1;
      for (size_t k = 0; k < names_.size(); ++k) {
        const size_t f = text.find(names_[k], pos);
        if (f == std::string_view::npos) continue;
        if (f < at || (f == at && names_[k].size() > names_[which].size())) {
          at = f;
          which = static_cast<int>(k);
        }
      }
      std::string_view piece = text.substr(pos, at == std::string_view::npos ? at : at - pos);
      if (!piece.empty()) {
        std::vector<int32_t> ids = base_->Encode(piece);
        out.insert(out.end(), ids.begin(), ids.end());
      }
      if (which < 0) break;
      out.push_back(ids_[which]);
      pos = at + names_[which].size();
    }
    return out;
  }
  std::string Decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    std::vector<int32_t> run;
    for (int32_t id : ids) {
      const int k = Index(id);
      if (k < 0) {
        run.push_back(id);
        continue;
      }
      absl::StrAppend(&out, base_->Decode(run), names_[k]);
      run.clear();
    }
    return out + base_->Decode(run);
  }
  std::string IdToToken(int32_t id) const override {
    const int k = Index(id);
    return k >= 0 ? names_[k] : base_->IdToToken(id);
  }
  int64_t VocabSize() const override { return base_->VocabSize() + appended_; }
  const SpecialIds& special() const override { return special_; }
  std::string name() const override { return base_->name(); }
  bool CutsAtSpaces() const override { return base_->CutsAtSpaces(); }

 private:
  int Index(int32_t id) const {
    for (size_t k = 0; k < ids_.size(); ++k)
      if (ids_[k] == id) return static_cast<int>(k);
    return -1;
  }
  std::unique_ptr<Tokenizer> base_;
  std::vector<std::string> names_;
  std::vector<int32_t> ids_;
  int appended_;
  SpecialIds special_;
};

absl::StatusOr<std::unique_ptr<Tokenizer>> AddSentinels(std::unique_ptr<Tokenizer> base,
                                                        const TokenizerOptions& o) {
  const int n = o.extra_ids;
  std::vector<int> have, missing;
  std::vector<int32_t> own;
  for (int k = 0; k < n; ++k) {
    const std::string name = absl::StrCat(kSentinelPrefix, k, ">");
    // The tokenizer's own record (SentencePiece looks its pieces up), else one piece of that name.
    const auto& known = base->special().sentinels;
    int32_t id = k < static_cast<int>(known.size()) ? known[k] : -1;
    if (id < 0) {
      const std::vector<int32_t> ids = base->Encode(name);
      if (ids.size() == 1 && base->IdToToken(ids[0]) == name) id = ids[0];
    }
    (id >= 0 ? have : missing).push_back(k);
    if (id >= 0) own.push_back(id);
  }
  if (!have.empty() && !missing.empty()) {  // none: appended below
    std::vector<std::string> names;
    for (size_t i = 0; i < missing.size() && i < 8; ++i)
      names.push_back(absl::StrCat(kSentinelPrefix, missing[i], ">"));
    return absl::InvalidArgumentError(absl::StrCat(
        o.vocab_file, ": has ", have.size(), " of the ", n,
        " sentinels data.vocab_extra_ids asks "
        "for; missing ",
        missing.size(), ": ", absl::StrJoin(names, ", "),
        missing.size() > names.size() ? " and more" : "",
        ". HINT: a vocabulary with none of them gains them at its top; train it with all of them "
        "(spm_train --user_defined_symbols) or none, or lower data.vocab_extra_ids."));
  }
  // Their own ids, in order; or appended at the top counting down (<extra_id_k> is the id
  // VocabSize() - 1 - k of the extended vocabulary).
  std::vector<std::string> names;
  for (int k = 0; k < n; ++k) names.push_back(absl::StrCat(kSentinelPrefix, k, ">"));
  const int appended = have.empty() ? n : 0;
  if (have.empty()) {
    for (int k = 0; k < n; ++k) own.push_back(static_cast<int32_t>(base->VocabSize() + n - 1 - k));
  }
  return std::unique_ptr<Tokenizer>(
      new WithAddedTokens(std::move(base), std::move(names), std::move(own), appended, true));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> AddTokens(std::unique_ptr<Tokenizer> base,
                                                     const std::vector<std::string>& names) {
  std::vector<int32_t> ids;
  int appended = 0;
  for (size_t k = 0; k < names.size(); ++k) {
    const std::string& name = names[k];
    if (name.empty()) {
      return absl::InvalidArgumentError("data.added_tokens: an empty token. HINT: remove it.");
    }
    // One token, one id: a repeated name would get a second id that no text ever encodes to.
    if (std::find(names.begin(), names.begin() + static_cast<int64_t>(k), name) !=
        names.begin() + static_cast<int64_t>(k)) {
      return absl::InvalidArgumentError(
          absl::StrCat("data.added_tokens: '", name, "' is listed twice. HINT: list each once."));
    }
    // The vocabulary's own: one of its special ids by that name (GPT-2's <|endoftext|>, which its
    // text encoding reads as characters), text that encodes to that one entry, or any entry of
    // that name.
    int32_t id = -1;
    const SpecialIds& sp = base->special();
    for (int32_t k : {sp.pad, sp.eod, sp.bos, sp.cls, sp.sep, sp.mask, sp.unk})
      if (id < 0 && k >= 0 && base->IdToToken(k) == name) id = k;
    const std::vector<int32_t> own = base->Encode(name);
    if (id < 0 && own.size() == 1 && base->IdToToken(own[0]) == name) id = own[0];
    // An entry text never encodes to (Hugging Face's BART vocab.json holds <s> as id 0).
    for (int64_t k = 0; id < 0 && k < base->VocabSize(); ++k)
      if (base->IdToToken(static_cast<int32_t>(k)) == name) id = static_cast<int32_t>(k);
    ids.push_back(id >= 0 ? id : static_cast<int32_t>(base->VocabSize() + appended++));
  }
  return std::unique_ptr<Tokenizer>(
      new WithAddedTokens(std::move(base), names, std::move(ids), appended));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeTokenizer(const TokenizerOptions& o) {
  if (!o.added_tokens.empty() && o.extra_ids == 0) {
    TokenizerOptions plain = o;
    plain.added_tokens.clear();
    auto base = MakeTokenizer(plain);
    if (!base.ok()) return base.status();
    return AddTokens(*std::move(base), o.added_tokens);
  }
  if (o.extra_ids > 0) {  // the sentinels on top of everything else (the added tokens included)
    TokenizerOptions plain = o;
    plain.extra_ids = 0;
    auto base = MakeTokenizer(plain);
    if (!base.ok()) return base.status();
    return AddSentinels(*std::move(base), o);
  }
  if (o.vocab_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer '", o.type,
                     "' needs a vocabulary file. HINT: set data.vocab_file (or "
                     "--vocab)."));
  }
  if (o.type == "gpt2") return MakeGpt2Tokenizer(o);
  if (o.type == "wordpiece") return MakeWordPieceTokenizer(o);
  if (o.type == "sentencepiece") return MakeSentencePieceTokenizer(o);
  if (o.type == "huggingface") return MakeHuggingFaceTokenizer(o);
  if (o.type == "tiktoken") return MakeTiktokenTokenizer(o);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown tokenizer type '", o.type,
                   "'. HINT: use gpt2, wordpiece, sentencepiece, huggingface or tiktoken."));
}

absl::Status SetTokenizerType(const std::string& type, TokenizerOptions* t) {
  if (type == "gpt2" || type == "GPT2BPETokenizer") {
    t->type = "gpt2";
  } else if (type == "wordpiece" || type == "BertWordPieceLowerCase") {
    t->type = "wordpiece";
    t->lowercase = true;
  } else if (type == "BertWordPieceCase") {
    t->type = "wordpiece";
    t->lowercase = false;
  } else if (type == "sentencepiece" || type == "SentencePieceTokenizer" ||
             type == "GPTSentencePieceTokenizer") {
    t->type = "sentencepiece";
  } else if (type == "huggingface" || type == "HuggingFaceTokenizer") {
    t->type = "huggingface";
  } else if (type == "tiktoken" || type == "TikTokenizer") {
    t->type = "tiktoken";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer type '", type,
                     "' is not one of gpt2 (GPT2BPETokenizer), wordpiece (BertWordPieceLowerCase, "
                     "BertWordPieceCase), sentencepiece (SentencePieceTokenizer), huggingface "
                     "(HuggingFaceTokenizer), tiktoken (TikTokenizer)."));
  }
  return absl::OkStatus();
}

std::vector<int32_t> EncodeInPieces(const Tokenizer& tok, std::string_view text,
                                    size_t piece_bytes) {
  const size_t n = text.size();
  if (piece_bytes == 0 || n <= 2 * piece_bytes || !tok.CutsAtSpaces()) return tok.Encode(text);
  auto printable = [&](size_t i) { return text[i] > ' ' && text[i] < 0x7F; };
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos < n) {
    if (n - pos <= 2 * piece_bytes) {
      const std::vector<int32_t> last = tok.Encode(text.substr(pos));
      ids.insert(ids.end(), last.begin(), last.end());
      break;
    }
    const size_t end = pos + 2 * piece_bytes;
    size_t cut = 0;
    for (size_t p = pos + piece_bytes; p < end && cut == 0; ++p) {
      if (text[p] == ' ' && printable(p - 1) && printable(p + 1)) cut = p;
    }
    if (cut == 0) {  // no word boundary: a character boundary
      cut = end;
      while (cut > pos + 1 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    }
    const std::vector<int32_t> part = tok.Encode(text.substr(pos, cut - pos));
    ids.insert(ids.end(), part.begin(), part.end());
    pos = cut;
  }
  return ids;
}

int64_t TokenIdByName(const Tokenizer& tok, std::string_view name) {
  const std::vector<int32_t> ids = tok.Encode(name);
  if (ids.size() == 1 && tok.IdToToken(ids[0]) == name) return ids[0];
  for (int64_t k = 0; k < tok.VocabSize(); ++k)  // an entry its own text never encodes to
    if (tok.IdToToken(static_cast<int32_t>(k)) == name) return k;
  return -1;
}

}  // namespace braid
