// `tokenize`: JSON Lines {"text": ...} on stdin -> {"ids": [...], "tokens": [...]} per line.
//   tokenize --type gpt2|wordpiece|sentencepiece --vocab FILE [--merges FILE]
//            [--lowercase|--cased] [--max-chars-per-word N] [--parse-special] [--key text]
//            [--vocab-extra-ids N]   (T5's sentinels <extra_id_k>, as data.vocab_extra_ids)
//   tokenize --type huggingface --tokenizer-file tokenizer.json [--add-special-tokens] [--decode]
//   tokenize --type tiktoken --tokenizer-file tokenizer.model [--tiktoken-pattern RE]
// A bad input line is reported on stderr with its line number and answered with an
// {"error": ...} line, so outputs stay aligned with inputs; a line with invalid UTF-8 is reported
// too and tokenized with U+FFFD in place of each invalid sequence (as preprocess_data does). Any
// such line makes the exit status 1.
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "framework/core/flags.h"
#include "framework/core/json.h"
#include "framework/data/tokenizer.h"
#include "framework/data/unicode.h"

ABSL_FLAG(std::string, type, "", "gpt2 | wordpiece | sentencepiece | huggingface | tiktoken");
ABSL_FLAG(std::string, vocab, "",
          "vocab.json (gpt2), vocab.txt (wordpiece), a SentencePiece .model, a tokenizer.json "
          "(huggingface) or a tiktoken rank file");
ABSL_FLAG(std::string, tokenizer_file, "", "the tokenizer.json or tiktoken file (as --vocab)");
ABSL_FLAG(bool, add_special_tokens, false,
          "huggingface: apply the file's post-processor (e.g. LLaMA's leading <s>)");
ABSL_FLAG(std::string, tiktoken_pattern, "", "tiktoken: the split regex (default: LLaMA 3's)");
ABSL_FLAG(bool, decode, false, "also write \"text\": the ids decoded back to text");
ABSL_FLAG(std::string, merges, "", "GPT-2 merges.txt");
ABSL_FLAG(std::string, key, "text", "the JSON key holding the text");
ABSL_FLAG(int32_t, max_chars_per_word, 200,
          "WordPiece: longer words become [UNK] (Google: 200, Hugging Face: 100)");
ABSL_FLAG(bool, lowercase, false, "WordPiece: lowercase and strip accents (the default)");
ABSL_FLAG(bool, cased, false, "WordPiece: keep case and accents");
ABSL_FLAG(
    int32_t, vocab_extra_ids, 0,
    "T5 sentinels <extra_id_0..N-1>: added at the top of the vocabulary (or the model's own)");
ABSL_FLAG(bool, parse_special, false, "GPT-2: encode <|endoftext|> in the text as its id");

namespace {
constexpr char kUsage[] =
    "usage: tokenize --type gpt2|wordpiece|sentencepiece|huggingface|tiktoken --vocab FILE\n"
    "                [--merges FILE] [--lowercase|--cased] [--max-chars-per-word N]\n"
    "                [--parse-special] [--add-special-tokens] [--tiktoken-pattern RE]\n"
    "                [--decode] [--key text]  < input.jsonl > output.jsonl\n"
    "--tokenizer-file is --vocab's other name; Megatron's HuggingFaceTokenizer and TikTokenizer\n"
    "are accepted for huggingface and tiktoken.\n";
}  // namespace

int main(int argc, char** argv) {
  braid::CommandLine cl;
  cl.main_file = __FILE__;
  cl.usage = kUsage;
  braid::ParseCommandLineOrExit(argc, argv, cl);
  braid::TokenizerOptions o;
  if (!absl::GetFlag(FLAGS_type).empty()) {
    const absl::Status type = braid::SetTokenizerType(absl::GetFlag(FLAGS_type), &o);
    if (!type.ok()) braid::UsageError(std::string(type.message()));
  }
  o.vocab_file = absl::GetFlag(FLAGS_vocab);
  if (!absl::GetFlag(FLAGS_tokenizer_file).empty())
    o.vocab_file = absl::GetFlag(FLAGS_tokenizer_file);
  o.add_special_tokens = absl::GetFlag(FLAGS_add_special_tokens);
  o.tiktoken_pattern = absl::GetFlag(FLAGS_tiktoken_pattern);
  o.merges_file = absl::GetFlag(FLAGS_merges);
  o.max_chars_per_word = absl::GetFlag(FLAGS_max_chars_per_word);
  if (absl::GetFlag(FLAGS_cased)) o.lowercase = false;
  if (absl::GetFlag(FLAGS_lowercase)) o.lowercase = true;
  o.parse_special = absl::GetFlag(FLAGS_parse_special);
  o.extra_ids = absl::GetFlag(FLAGS_vocab_extra_ids);
  if (o.extra_ids < 0) braid::UsageError("--vocab-extra-ids must not be negative.");
  const std::string key = absl::GetFlag(FLAGS_key);
  if (o.type.empty()) braid::UsageError("--type is required.");
  if (!o.tiktoken_pattern.empty() && o.type != "tiktoken") {
    braid::UsageError("--tiktoken-pattern applies to --type tiktoken only.");
  }
  if (o.max_chars_per_word < 1) {
    braid::UsageError("--max-chars-per-word must be 1 or more (0 would make every word [UNK]).");
  }
  auto tok = braid::MakeTokenizer(o);
  if (!tok.ok()) {
    std::cerr << "tokenize: " << tok.status().message() << "\n";
    return 1;
  }
  std::ios::sync_with_stdio(false);
  std::string line;
  int64_t line_no = 0, bad = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    // Invalid UTF-8 is reported as preprocess_data reports it, and tokenized as it does: each
    // invalid sequence replaced with U+FFFD (Python's errors="replace"), before the JSON reader
    // (which takes valid UTF-8) sees the line.
    const bool bad_utf8 = !braid::unicode::IsValidUtf8(line);
    if (bad_utf8) line = braid::unicode::SanitizeUtf8(line);
    auto json = braid::ParseJson(line);
    const braid::JsonValue* text = json.ok() ? json->Find(key) : nullptr;
    if (text == nullptr || text->kind != braid::JsonValue::Kind::kString) {
      std::string why = !json.ok() ? std::string(json.status().message())
                                   : absl::StrCat("no string \"", key, "\" member");
      std::cerr << "tokenize: stdin:" << line_no << ": " << why << "\n";
      std::cout << "{\"error\": " << braid::JsonQuote(why) << "}\n";
      ++bad;
      continue;
    }
    if (bad_utf8) {
      std::cerr << "tokenize: stdin:" << line_no << ": invalid UTF-8 in \"" << key
                << "\" (replaced with U+FFFD)\n";
      ++bad;
    }
    const std::string& input = text->text;
    std::vector<int32_t> ids = braid::EncodeInPieces(**tok, input);
    std::string out = "{\"ids\": [";
    for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&out, i ? ", " : "", ids[i]);
    out += "], \"tokens\": [";
    for (size_t i = 0; i < ids.size(); ++i) {
      absl::StrAppend(&out, i ? ", " : "", braid::JsonQuote((*tok)->IdToToken(ids[i])));
    }
    out += "]";
    if (absl::GetFlag(FLAGS_decode)) {
      absl::StrAppend(&out, ", \"text\": ", braid::JsonQuote((*tok)->Decode(ids)));
    }
    out += "}\n";
    std::cout << out;
  }
  return bad == 0 ? 0 : 1;
}
