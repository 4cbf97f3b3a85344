// `tokenize`: JSON Lines {"text": ...} on stdin -> {"ids": [...], "tokens": [...]} per line.
//   tokenize --type gpt2|wordpiece|sentencepiece --vocab FILE [--merges FILE]
//            [--lowercase|--cased] [--max-chars-per-word N] [--parse-special] [--key text]
// A bad input line is reported on stderr with its line number and answered with an
// {"error": ...} line, so outputs stay aligned with inputs.
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "framework/core/json.h"
#include "framework/data/tokenizer.h"

namespace {
constexpr char kUsage[] =
    "usage: tokenize --type gpt2|wordpiece|sentencepiece --vocab FILE [--merges FILE]\n"
    "                [--lowercase|--cased] [--max-chars-per-word N] [--parse-special]\n"
    "                [--key text]  < input.jsonl > output.jsonl\n";

int Fail(const std::string& message) {
  std::cerr << "tokenize: " << message << "\n" << kUsage;
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  braid::TokenizerOptions o;
  std::string key = "text";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--type" && (v = value())) {
      o.type = v;
    } else if (a == "--vocab" && (v = value())) {
      o.vocab_file = v;
    } else if (a == "--merges" && (v = value())) {
      o.merges_file = v;
    } else if (a == "--key" && (v = value())) {
      key = v;
    } else if (a == "--max-chars-per-word" && (v = value())) {
      if (!absl::SimpleAtoi(v, &o.max_chars_per_word)) return Fail("bad --max-chars-per-word");
    } else if (a == "--lowercase") {
      o.lowercase = true;
    } else if (a == "--cased") {
      o.lowercase = false;
    } else if (a == "--parse-special") {
      o.parse_special = true;
    } else if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      return Fail(absl::StrCat("unknown or incomplete argument '", a, "'"));
    }
  }
  auto tok = braid::MakeTokenizer(o);
  if (!tok.ok()) return Fail(std::string(tok.status().message()));
  std::ios::sync_with_stdio(false);
  std::string line;
  int64_t line_no = 0, bad = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
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
    std::vector<int32_t> ids = (*tok)->Encode(text->text);
    std::string out = "{\"ids\": [";
    for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&out, i ? ", " : "", ids[i]);
    out += "], \"tokens\": [";
    for (size_t i = 0; i < ids.size(); ++i) {
      absl::StrAppend(&out, i ? ", " : "", braid::JsonQuote((*tok)->IdToToken(ids[i])));
    }
    out += "]}\n";
    std::cout << out;
  }
  return bad == 0 ? 0 : 1;
}
