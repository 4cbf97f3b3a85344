// Tokenizers behind one interface: GPT-2 byte-level BPE (vocab.json + merges.txt), BERT
// WordPiece (vocab.txt, uncased or cased), SentencePiece (.model through libsentencepiece),
// Hugging Face tokenizer.json and tiktoken rank files (docs/tokenizers.md).
// The BPE and WordPiece code is ours and byte-exact to the reference implementations (openai's
// encoder.py, google-research/bert's tokenization.py); tests/data checks every fixture case.
// An instance is not thread-safe (BPE keeps a per-word cache): use one per thread.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace braid {

// The ids a recipe needs; -1 where the vocabulary has no such token.
struct SpecialIds {
  int32_t pad = -1;
  int32_t eod = -1;  // end of document (GPT-2 <|endoftext|>, SentencePiece </s>)
  int32_t bos = -1;
  int32_t cls = -1;
  int32_t sep = -1;
  int32_t mask = -1;
  int32_t unk = -1;
  std::vector<int32_t> sentinels;  // T5 <extra_id_0>, <extra_id_1>, ...
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  // Decodes ids; invalid UTF-8 that byte-level tokens may produce becomes U+FFFD.
  virtual std::string Decode(const std::vector<int32_t>& ids) const = 0;
  // The vocabulary entry of `id` as the tokenizer spells it ("Ġthe", "##ing", "▁the").
  virtual std::string IdToToken(int32_t id) const = 0;
  virtual int64_t VocabSize() const = 0;
  virtual const SpecialIds& special() const = 0;
  virtual std::string name() const = 0;  // "gpt2", "wordpiece", "sentencepiece"
  // Whether a text cut before a space between printable ASCII encodes to the ids of the whole
  // (EncodeInPieces). Not so for a tokenizer.json whose normalizer prepends to every piece.
  virtual bool CutsAtSpaces() const { return true; }
};

struct TokenizerOptions {
  std::string type;              // gpt2 | wordpiece | sentencepiece | huggingface | tiktoken
  std::string vocab_file;        // vocab.json, vocab.txt, .model, tokenizer.json or rank file
  std::string merges_file;       // gpt2 only
  bool lowercase = true;         // wordpiece: uncased (lower-case and strip accents)
  int max_chars_per_word = 200;  // wordpiece: Google's 200 (Hugging Face uses 100)
  bool parse_special = false;    // gpt2: split out literal "<|endoftext|>" as id 50256
  // T5's sentinels <extra_id_0> .. <extra_id_{n-1}> (data.vocab_extra_ids). A vocabulary that
  // has none of them gains them at its top, Hugging Face's numbering: <extra_id_k> is the id
  // VocabSize() - 1 - k of the extended vocabulary. One that has them all uses its own ids; one
  // that has some is an error naming the missing ones. Encode() then reads "<extra_id_k>" in
  // text as the sentinel, Decode() writes it back.
  int extra_ids = 0;
  // Tokens that must each be one id (data.added_tokens; BART's <s>, <pad>, </s>, <unk>, <mask> for
  // GPT-2's byte-level BPE, which has none of them): one the vocabulary has as a single entry keeps
  // its id; the others are appended after the vocabulary (below the sentinels), in the listed
  // order. Encode() reads each name in text as its id, Decode() and IdToToken() write the name.
  // Which role a token plays (start, end, pad, mask) is the recipe's business, by name.
  std::vector<std::string> added_tokens;
  // huggingface: apply the file's post-processor (LLaMA's leading <s>, BERT's [CLS] .. [SEP]).
  bool add_special_tokens = false;
  // tiktoken: the split pattern (empty: LLaMA 3's) and the special tokens appended after the
  // ranks, in id order (empty: LLaMA 3's 256, <|begin_of_text|> first).
  std::string tiktoken_pattern;
  std::vector<std::string> tiktoken_special_tokens;
};

// tok.Encode(text) of a long text, in pieces of about `piece_bytes`, so that the memory a
// tokenizer needs (20 to 50 bytes per byte of text here) stays bounded whatever the document's
// length. The text is cut before a space that has printable ASCII on both sides: there GPT-2's
// byte-level BPE, WordPiece and SentencePiece models that split at whitespace (spm_train's
// default) start a new token anyway, so the ids are those of the whole text (checked against the
// whole text's and spm_encode's). A stretch of 2 x piece_bytes without such a space is cut at a
// character boundary (its ids may then differ next to the cut). A tokenizer that does not cut at
// spaces (CutsAtSpaces) encodes the whole text.
std::vector<int32_t> EncodeInPieces(const Tokenizer& tok, std::string_view text,
                                    size_t piece_bytes = size_t{1} << 20);

// Sets o->type (and, for BERT's names, o->lowercase) from our name or Megatron-LM's:
// gpt2 (GPT2BPETokenizer), wordpiece (BertWordPieceLowerCase, BertWordPieceCase), sentencepiece
// (SentencePieceTokenizer, GPTSentencePieceTokenizer), huggingface (HuggingFaceTokenizer),
// tiktoken (TikTokenizer). An unknown name is an error listing them.
absl::Status SetTokenizerType(const std::string& name, TokenizerOptions* o);

// Loads a tokenizer; errors name the file and what is wrong with it.
absl::StatusOr<std::unique_ptr<Tokenizer>> MakeTokenizer(const TokenizerOptions& options);

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeGpt2Tokenizer(const TokenizerOptions& options);
absl::StatusOr<std::unique_ptr<Tokenizer>> MakeWordPieceTokenizer(const TokenizerOptions& options);
absl::StatusOr<std::unique_ptr<Tokenizer>> MakeSentencePieceTokenizer(
    const TokenizerOptions& options);
// A Hugging Face tokenizer.json (hf_tokenizer.cc), byte-exact with the tokenizers library.
absl::StatusOr<std::unique_ptr<Tokenizer>> MakeHuggingFaceTokenizer(
    const TokenizerOptions& options);
// A tiktoken rank file (LLaMA 3's original tokenizer.model).
absl::StatusOr<std::unique_ptr<Tokenizer>> MakeTiktokenTokenizer(const TokenizerOptions& options);

}  // namespace braid
