// Tokenizers against the reference fixtures (tests/fixtures/tokenizers, made by openai's
// encoder.py and google-research/bert's tokenization.py themselves): every case must give
// exactly the expected ids (and WordPiece tokens); BPE decode(encode(x)) == x.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "braid/build_config.h"
#include "framework/core/json.h"
#include "framework/data/tokenizer.h"

namespace braid {
namespace {

const std::string kDir = std::string(BRAID_SOURCE_DIR) + "/tests/fixtures/tokenizers/";

struct Case {
  int line;
  std::string text;
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;
};

// Lines split on '\n' only: some texts hold raw U+2028/U+0085 inside their JSON strings.
std::vector<Case> ReadCases(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  std::vector<Case> cases;
  size_t pos = 0;
  int line = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    if (nl == std::string::npos) nl = all.size();
    ++line;
    auto json = ParseJson(std::string_view(all).substr(pos, nl - pos));
    pos = nl + 1;
    EXPECT_TRUE(json.ok()) << path << ":" << line << ": " << json.status();
    if (!json.ok()) continue;
    Case c{line, json->Find("text")->text, {}, {}};
    for (const JsonValue& v : json->Find("ids")->items) c.ids.push_back(v.AsInt());
    if (const JsonValue* t = json->Find("tokens"))
      for (const JsonValue& v : t->items) c.tokens.push_back(v.text);
    cases.push_back(std::move(c));
  }
  return cases;
}

std::unique_ptr<Tokenizer> Load(TokenizerOptions o) {
  auto t = MakeTokenizer(o);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

std::string Show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

TEST(Gpt2Bpe, EveryReferenceCaseAndRoundTrip) {
  auto tok = Load({"gpt2", kDir + "gpt2/vocab.json", kDir + "gpt2/merges.txt"});
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->VocabSize(), 50257);
  EXPECT_EQ(tok->special().eod, 50256);
  auto cases = ReadCases(kDir + "gpt2/cases.jsonl");
  ASSERT_GE(cases.size(), 600u);
  int failures = 0;
  for (const Case& c : cases) {
    std::vector<int32_t> ids = tok->Encode(c.text);
    if (ids != c.ids && ++failures <= 10) {
      ADD_FAILURE() << "cases.jsonl:" << c.line << " text " << JsonQuote(c.text) << "\n  got  "
                    << Show(ids) << "\n  want " << Show(c.ids);
    }
    EXPECT_EQ(tok->Decode(c.ids), c.text) << "round trip, cases.jsonl:" << c.line;
  }
  EXPECT_EQ(failures, 0);
}

TEST(Gpt2Bpe, EndOfTextIsOrdinaryTextUnlessAsked) {
  auto plain = Load({"gpt2", kDir + "gpt2/vocab.json", kDir + "gpt2/merges.txt"});
  EXPECT_EQ(plain->Encode("<|endoftext|>"),
            (std::vector<int32_t>{27, 91, 437, 1659, 5239, 91, 29}));
  TokenizerOptions o{"gpt2", kDir + "gpt2/vocab.json", kDir + "gpt2/merges.txt"};
  o.parse_special = true;
  auto special = Load(o);
  std::vector<int32_t> ids = special->Encode("a<|endoftext|>b");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], 50256);
}

void CheckWordPiece(bool lowercase, const std::string& file) {
  TokenizerOptions o{"wordpiece", kDir + "wordpiece/vocab.txt"};
  o.lowercase = lowercase;
  auto tok = Load(o);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->VocabSize(), 30522);
  EXPECT_EQ(tok->special().mask, 103);
  EXPECT_EQ(tok->special().cls, 101);
  auto cases = ReadCases(kDir + "wordpiece/" + file);
  ASSERT_GE(cases.size(), 600u);
  int failures = 0;
  for (const Case& c : cases) {
    std::vector<int32_t> ids = tok->Encode(c.text);
    std::vector<std::string> tokens;
    for (int32_t id : ids) tokens.push_back(tok->IdToToken(id));
    if ((ids != c.ids || tokens != c.tokens) && ++failures <= 10) {
      ADD_FAILURE() << file << ":" << c.line << " text " << JsonQuote(c.text) << "\n  got  "
                    << Show(ids) << "\n  want " << Show(c.ids);
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(WordPiece, EveryUncasedReferenceCase) { CheckWordPiece(true, "cases-uncased.jsonl"); }
TEST(WordPiece, EveryCasedReferenceCase) { CheckWordPiece(false, "cases-cased.jsonl"); }

TEST(Tokenizers, WrongFilesGiveClearErrors) {
  auto t = MakeTokenizer({"gpt2", kDir + "wordpiece/vocab.txt", kDir + "gpt2/merges.txt"});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("not a GPT-2 vocab.json"), std::string::npos) << t.status();
  t = MakeTokenizer({"wordpiece", kDir + "gpt2/vocab.json"});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("looks like JSON"), std::string::npos) << t.status();
  t = MakeTokenizer({"gpt2", kDir + "gpt2/vocab.json", kDir + "wordpiece/vocab.txt"});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("vocab.txt:1: expected two space-separated symbols"),
            std::string::npos)
      << t.status();
  t = MakeTokenizer({"sentencepiece", kDir + "gpt2/merges.txt"});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("not a SentencePiece model"), std::string::npos);
  t = MakeTokenizer({"gpt2", kDir + "gpt2/missing.json", kDir + "gpt2/merges.txt"});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("cannot open"), std::string::npos);
}

// A long document is tokenized in pieces (EncodeInPieces, preprocess_data and tokenize): with
// GPT-2's BPE and WordPiece (cased and uncased) the ids are those of the whole text, for pieces
// from the shortest that never needs a cut inside a word up to 4096 bytes, over a text made of
// every reference case (letters, digits, punctuation, contractions, runs of spaces, tabs and
// newlines, accents, CJK, emoji) joined by words of ASCII, hundreds of cuts each.
TEST(Tokenizers, EncodingInPiecesEqualsTheWholeText) {
  std::string text;
  for (const char* file : {"gpt2/cases.jsonl", "wordpiece/cases-uncased.jsonl"}) {
    for (const Case& c : ReadCases(kDir + file)) {
      text += c.text + (c.line % 3 ? " it is " : "  \n\t so it is ");
    }
  }
  ASSERT_GT(text.size(), 20000u);
  // The longest stretch between two places EncodeInPieces may cut (a space with printable ASCII
  // on both sides): pieces at least that long never cut inside a word.
  size_t longest = 0, last = 0;
  for (size_t p = 1; p + 1 < text.size(); ++p) {
    auto printable = [&](size_t i) { return text[i] > ' ' && text[i] < 0x7F; };
    if (text[p] == ' ' && printable(p - 1) && printable(p + 1)) {
      longest = std::max(longest, p - last);
      last = p;
    }
  }
  std::vector<std::unique_ptr<Tokenizer>> toks;
  toks.push_back(Load({"gpt2", kDir + "gpt2/vocab.json", kDir + "gpt2/merges.txt"}));
  TokenizerOptions wp{"wordpiece", kDir + "wordpiece/vocab.txt"};
  toks.push_back(Load(wp));
  wp.lowercase = false;
  toks.push_back(Load(wp));
  for (const auto& tok : toks) {
    ASSERT_NE(tok, nullptr);
    const std::vector<int32_t> whole = tok->Encode(text);
    for (size_t piece : {longest, longest + 7, size_t{4096}}) {
      EXPECT_EQ(EncodeInPieces(*tok, text, piece), whole) << tok->name() << ", pieces of " << piece;
    }
  }
}

// tokenizer.json: BERT's WordPiece as Hugging Face's tokenizers library writes it, on 250 documents
// of the multilingual corpus with the library's own ids and decoded text (tests/fixtures/
// tokenizers/hf/README.md). The full comparison against the library is
// tests/tokenizers/reference_test.sh (needs npm).
TEST(HuggingFaceTokenizer, BertWordPieceFixture) {
  TokenizerOptions o;
  ASSERT_TRUE(SetTokenizerType("HuggingFaceTokenizer", &o).ok());
  o.vocab_file = kDir + "hf/bert-wordpiece.json";
  auto tok = Load(o);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->VocabSize(), 30522);
  EXPECT_EQ(tok->special().cls, 101);
  EXPECT_EQ(tok->special().mask, 103);
  std::ifstream in(kDir + "hf/bert-wordpiece-cases.jsonl");
  std::string line;
  int n = 0, failures = 0;
  while (std::getline(in, line)) {
    ++n;
    auto j = ParseJson(line);
    ASSERT_TRUE(j.ok()) << j.status();
    std::vector<int32_t> want;
    for (const JsonValue& v : j->Find("ids")->items) want.push_back(v.AsInt());
    const std::vector<int32_t> got = tok->Encode(j->Find("text")->text);
    if (got != want && ++failures <= 5) {
      ADD_FAILURE() << "case " << n << "\n  got  " << Show(got) << "\n  want " << Show(want);
    }
    EXPECT_EQ(tok->Decode(want), j->Find("decoded")->text) << "case " << n;
  }
  EXPECT_EQ(n, 250);
  EXPECT_EQ(failures, 0);
}

// Writes `text` to a scratch file and loads it as `type`; the error message (empty when it loads).
std::string LoadError(const std::string& type, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/tok_" + type + ".json";
  std::ofstream(path) << text;
  TokenizerOptions o;
  o.type = type;
  o.vocab_file = path;
  auto t = MakeTokenizer(o);
  return t.ok() ? "" : std::string(t.status().message());
}

TEST(HuggingFaceTokenizer, RefusesWhatItDoesNotImplementByJsonPath) {
  const std::string model =
      R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
  EXPECT_EQ(LoadError("huggingface", "{" + model + "}"), "");
  std::string e = LoadError("huggingface",
                            R"({"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"},
        {"type": "Precompiled", "precompiled_charsmap": "AAAA"}]}, )" +
                                model + "}");
  EXPECT_NE(e.find("normalizer.normalizers[1].type: 'Precompiled' is not supported"),
            std::string::npos)
      << e;
  e = LoadError("huggingface", R"({"pre_tokenizer": {"type": "UnicodeScripts"}, )" + model + "}");
  EXPECT_NE(e.find("pre_tokenizer.type: 'UnicodeScripts' is not supported"), std::string::npos)
      << e;
  e = LoadError("huggingface", R"({"decoder": {"type": "CTC"}, )" + model + "}");
  EXPECT_NE(e.find("decoder.type: 'CTC' is not supported"), std::string::npos) << e;
  e = LoadError("huggingface",
                R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a c"]}})");
  EXPECT_NE(e.find("model.merges[0]: 'c' is not in the vocabulary"), std::string::npos) << e;
  e = LoadError("huggingface", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [)");
  EXPECT_NE(e.find("not a Hugging Face tokenizer.json"), std::string::npos) << e;
  e = LoadError("huggingface", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
        "added_tokens": [{"id": "x", "content": "<s>"}]})");
  EXPECT_NE(e.find("added_tokens[0].id"), std::string::npos) << e;
  e = LoadError("huggingface",
                R"({"model": {"type": "BPE", "vocab": {"a": 99999999}, "merges": []}})");
  EXPECT_NE(e.find("not an id"), std::string::npos) << e;
  e = LoadError("huggingface", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [],
        "dropout": "x"}})");
  EXPECT_NE(e.find("model.dropout"), std::string::npos) << e;
  // A vocab.json handed over as a tokenizer.json.
  e = LoadError("huggingface", R"({"a": 0, "b": 1})");
  EXPECT_NE(e.find("model: missing"), std::string::npos) << e;
  // tiktoken: a line that is not "<base64> <rank>" is named by its line number.
  e = LoadError("tiktoken", "IQ== 0\nnot base64!! x\n");
  EXPECT_NE(e.find(":2: not a tiktoken rank line"), std::string::npos) << e;
}

}  // namespace
}  // namespace braid
