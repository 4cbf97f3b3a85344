// Fill-in-the-middle (framework/data/fim.h) with GPT-2's byte-level BPE (the fixture vocabulary,
// <fim_prefix> <fim_middle> <fim_suffix> <fim_pad> <file_sep> appended as added tokens), each
// check against a property that holds independently of the code:
//  - over 20,000 documents the share transformed is within 0.01 of fim_rate, and the share of
//    those in SPM within 0.01 of fim_spm_rate;
//  - every transformed document parses as PSM or SPM with the sentinels in order, and its
//    prefix + middle + suffix decode to the original document's text (byte-level BPE is lossless);
//  - end-of-document tokens stay where they were; the length is kept (cut, or <fim_pad> added);
//  - with a split token each fragment is transformed on its own and the split tokens stay;
//  - FimSource: sample i is the same on every call and for every reader thread, and differs
//    between the train and valid streams; rate 0 is the identity;
//  - a vocabulary without the sentinels is refused by name with a hint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "braid/build_config.h"
#include "framework/core/json.h"
#include "framework/data/fim.h"
#include "framework/data/token_names.h"
#include "framework/data/tokenizer.h"

namespace braid {
namespace {

const std::string kGpt2 = std::string(BRAID_SOURCE_DIR) + "/tests/fixtures/tokenizers/gpt2/";

TokenizerOptions Gpt2Options(bool with_sentinels = true) {
  TokenizerOptions o;
  o.type = "gpt2";
  o.vocab_file = kGpt2 + "vocab.json";
  o.merges_file = kGpt2 + "merges.txt";
  if (with_sentinels) {
    o.added_tokens = {"<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<file_sep>"};
  }
  return o;
}

// The material documents are cut from: the fixture's texts (several scripts, emoji, odd
// whitespace) and some of the project's own code, which is what FIM is trained on.
std::string Corpus() {
  std::ifstream in(kGpt2 + "cases.jsonl");
  std::string line, all;
  while (std::getline(in, line)) {
    auto j = ParseJson(line);
    if (j.ok() && j->Find("text") != nullptr) all += j->Find("text")->text + "\n";
  }
  for (const char* f : {"/framework/data/fim.cc", "/framework/nn/blocks.cc"}) {
    std::ifstream code(std::string(BRAID_SOURCE_DIR) + f);
    all.append(std::istreambuf_iterator<char>(code), std::istreambuf_iterator<char>());
  }
  return all;
}

// A document: `chars` characters of the corpus from a random code-point boundary.
std::string Slice(const std::string& corpus, Rng& rng, size_t chars) {
  size_t at = rng.Below(corpus.size() - 4 * chars);
  while ((static_cast<unsigned char>(corpus[at]) & 0xC0) == 0x80) ++at;
  size_t end = at;
  for (size_t n = 0; n < chars && end < corpus.size(); ++n) {
    ++end;
    while (end < corpus.size() && (static_cast<unsigned char>(corpus[end]) & 0xC0) == 0x80) ++end;
  }
  return corpus.substr(at, end - at);
}

struct Fixture {
  std::unique_ptr<Tokenizer> tok;
  FimOptions o;
};

Fixture Make(double rate, double spm_rate, const std::string& split = "") {
  Fixture f;
  auto tok = MakeTokenizer(Gpt2Options());
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  f.tok = *std::move(tok);
  f.o.rate = rate;
  f.o.spm_rate = spm_rate;
  f.o.fragment_rate = 1.0;
  absl::Status s = ResolveFimIds(*f.tok, DefaultFimTokens(), split, &f.o);
  EXPECT_TRUE(s.ok()) << s.message();
  return f;
}

std::vector<int64_t> Ids(const Tokenizer& tok, const std::string& text) {
  std::vector<int32_t> e = tok.Encode(text);
  return {e.begin(), e.end()};
}

std::string Text(const Tokenizer& tok, const std::vector<int64_t>& ids) {
  return tok.Decode(std::vector<int32_t>(ids.begin(), ids.end()));
}

// Parses one transformed document; returns "psm", "spm" or "" (not a FIM document), and the
// decoded prefix + middle + suffix in *text. PSM with an empty prefix reads as SPM (both are
// <pre> <suf> suffix <mid> ..., and mean the same text).
std::string Parse(const Fixture& f, const std::vector<int64_t>& d, std::string* text) {
  if (d.empty() || d[0] != f.o.prefix) {
    *text = Text(*f.tok, d);
    return "";
  }
  auto find = [&](int64_t id, size_t from) {
    return static_cast<size_t>(std::find(d.begin() + from, d.end(), id) - d.begin());
  };
  auto part = [&](size_t a, size_t b) {
    return std::vector<int64_t>(d.begin() + a, d.begin() + b);
  };
  const bool spm = d.size() > 1 && d[1] == f.o.suffix;
  const size_t mid = find(f.o.middle, 1);
  EXPECT_LT(mid, d.size()) << "no <fim_middle>";
  if (spm) {  // <pre> <suf> suffix <mid> prefix+middle
    *text = Text(*f.tok, part(mid + 1, d.size())) + Text(*f.tok, part(2, mid));
    return "spm";
  }
  const size_t suf = find(f.o.suffix, 1);  // <pre> prefix <suf> suffix <mid> middle
  EXPECT_LT(suf, mid) << "<fim_suffix> after <fim_middle>";
  *text = Text(*f.tok, part(1, suf)) + Text(*f.tok, part(mid + 1, d.size())) +
          Text(*f.tok, part(suf + 1, mid));
  return "psm";
}

TEST(Fim, RatesAndLosslessSplitsOver20kDocuments) {
  const double rate = 0.5, spm_rate = 0.3;
  Fixture f = Make(rate, spm_rate);
  const std::string corpus = Corpus();
  ASSERT_GT(corpus.size(), 40000u);
  Rng pick(3);
  int64_t n = 0, fim = 0, spm = 0;
  for (int k = 0; k < 20000; ++k) {
    const std::string doc = Slice(corpus, pick, 20 + pick.Below(200));
    std::vector<int64_t> sample = Ids(*f.tok, doc);
    const size_t len = sample.size();
    // Room after the document: the transformed one is 3 sentinels longer, and re-encoding its
    // parts apart may take a few more tokens.
    sample.insert(sample.end(), 12 + len / 4, f.o.eod);
    Rng rng = Rng::Keyed(11, static_cast<uint64_t>(k));
    FimStats stats;
    const std::vector<int64_t> out = FimTransform(sample, f.o, *f.tok, rng, &stats);
    ASSERT_EQ(out.size(), sample.size());
    const size_t end =
        static_cast<size_t>(std::find(out.begin(), out.end(), f.o.eod) - out.begin());
    ASSERT_LT(end, out.size()) << "document " << k << " was cut: give it more room";
    EXPECT_TRUE(std::all_of(out.begin() + end, out.end(), [&](int64_t t) { return t == f.o.eod; }));
    std::string text;
    const std::string kind = Parse(f, std::vector<int64_t>(out.begin(), out.begin() + end), &text);
    ASSERT_EQ(text, doc) << "document " << k << " (" << kind << ")";
    EXPECT_EQ(kind.empty(), stats.psm + stats.spm == 0);
    // An SPM document always parses as SPM (a PSM one with an empty prefix looks the same).
    if (stats.spm) EXPECT_EQ(kind, "spm");
    if (kind.empty())
      EXPECT_EQ(std::vector<int64_t>(out.begin(), out.begin() + len),
                std::vector<int64_t>(sample.begin(), sample.begin() + len));
    ++n;
    fim += !kind.empty();
    spm += stats.spm;
  }
  const double got = static_cast<double>(fim) / n, got_spm = static_cast<double>(spm) / fim;
  EXPECT_NEAR(got, rate, 0.01);
  EXPECT_NEAR(got_spm, spm_rate, 0.01);
  std::printf("FIM share %.4f (rate %.2f), SPM share %.4f (rate %.2f) over %ld documents\n", got,
              rate, got_spm, spm_rate, static_cast<long>(n));
}

TEST(Fim, DocumentsOfASampleEachTheirOwnAndLengthKept) {
  Fixture f = Make(1.0, 0.0);
  const std::string a = "def add(a, b):\n    return a + b\n", b = "int main() { return 0; }\n";
  std::vector<int64_t> sample = Ids(*f.tok, a);
  sample.push_back(f.o.eod);
  std::vector<int64_t> second = Ids(*f.tok, b);
  sample.insert(sample.end(), second.begin(), second.end());
  sample.push_back(f.o.eod);
  sample.push_back(f.o.eod);  // an empty document: its end token stays too
  Rng rng(5);
  FimStats stats;
  std::vector<int64_t> out = FimTransform(sample, f.o, *f.tok, rng, &stats);
  ASSERT_EQ(out.size(), sample.size());
  EXPECT_EQ(stats.documents, 2);
  EXPECT_EQ(stats.psm, 2);
  // Every transformed document gains 3 sentinels: the tail is cut to keep the length.
  EXPECT_GE(stats.truncated, 1);
  // A document written one character a token re-encodes to far fewer: padded with <fim_pad>.
  std::vector<int64_t> spelled;
  for (char ch : std::string("thequickbrownfoxjumpsoverthelazydog")) {
    spelled.push_back(Ids(*f.tok, std::string(1, ch))[0]);
  }
  FimStats shrunk;
  std::vector<int64_t> padded = FimTransform(spelled, f.o, *f.tok, rng, &shrunk);
  ASSERT_EQ(padded.size(), spelled.size());
  ASSERT_GT(shrunk.padded, 0);
  EXPECT_TRUE(std::all_of(padded.end() - shrunk.padded, padded.end(),
                          [&](int64_t t) { return t == f.o.pad; }));
  std::string whole;
  EXPECT_NE(Parse(f, std::vector<int64_t>(padded.begin(), padded.end() - shrunk.padded), &whole),
            "");
  EXPECT_EQ(whole, "thequickbrownfoxjumpsoverthelazydog");
  // Only end-of-document tokens: nothing to transform.
  std::vector<int64_t> tiny = {f.o.eod, f.o.eod};
  EXPECT_EQ(FimTransform(tiny, f.o, *f.tok, rng), tiny);
  std::string text;
  const size_t cut = static_cast<size_t>(std::find(out.begin(), out.end(), f.o.eod) - out.begin());
  EXPECT_NE(Parse(f, std::vector<int64_t>(out.begin(), out.begin() + cut), &text), "");
  EXPECT_EQ(text, a);
}

TEST(Fim, FragmentsAtTheSplitToken) {
  Fixture f = Make(1.0, 0.0, "<file_sep>");
  ASSERT_GE(f.o.split, 0);
  const std::vector<std::string> files = {"alpha beta gamma\n", "delta epsilon\n", "zeta eta\n"};
  std::vector<int64_t> sample;
  for (size_t k = 0; k < files.size(); ++k) {
    if (k) sample.push_back(f.o.split);
    std::vector<int64_t> ids = Ids(*f.tok, files[k]);
    sample.insert(sample.end(), ids.begin(), ids.end());
  }
  const size_t len = sample.size();
  sample.insert(sample.end(), 12, f.o.eod);
  Rng rng(9);
  FimStats stats;
  std::vector<int64_t> out = FimTransform(sample, f.o, *f.tok, rng, &stats);
  EXPECT_EQ(stats.psm, 3);  // each fragment, fragment_rate 1 (spm_rate 0)
  const size_t end = static_cast<size_t>(std::find(out.begin(), out.end(), f.o.eod) - out.begin());
  EXPECT_GE(end, len + 9);  // 3 sentinels a fragment (re-encoding may add tokens)
  std::vector<std::vector<int64_t>> parts(1);
  for (size_t j = 0; j < end; ++j) {
    if (out[j] == f.o.split) {
      parts.emplace_back();
    } else {
      parts.back().push_back(out[j]);
    }
  }
  ASSERT_EQ(parts.size(), files.size());
  for (size_t k = 0; k < files.size(); ++k) {
    std::string text;
    EXPECT_NE(Parse(f, parts[k], &text), "");
    EXPECT_EQ(text, files[k]);
  }
}

// A fixed source of samples: sample i is the same text with i's number in it.
class Texts : public SampleSource {
 public:
  Texts(const Tokenizer& tok, int64_t len) : len_(len) {
    for (int k = 0; k < 50; ++k) {
      std::vector<int32_t> ids = tok.Encode("sample " + std::to_string(k) +
                                            " of a fill in the middle source, long enough");
      ids.resize(static_cast<size_t>(len), ids.back());
      rows_.emplace_back(ids.begin(), ids.end());
    }
  }
  int64_t size() const override { return 50; }
  int64_t sample_length() const override { return len_; }
  void Get(int64_t i, int64_t* out) const override {
    std::copy(rows_[i].begin(), rows_[i].end(), out);
  }

 private:
  int64_t len_;
  std::vector<std::vector<int64_t>> rows_;
};

TEST(Fim, SourceIsKeyedBySeedSplitAndSample) {
  Fixture f = Make(0.9, 0.5);
  auto inner = std::make_shared<Texts>(*f.tok, 24);
  FimSource train(inner, f.o, Gpt2Options(), 1234, 0), again(inner, f.o, Gpt2Options(), 1234, 0),
      valid(inner, f.o, Gpt2Options(), 1234, 1);
  std::vector<int64_t> a(24), b(24), c(24), raw(24);
  int differ = 0, transformed = 0;
  for (int64_t i = 0; i < 50; ++i) {
    train.Get(i, a.data());
    again.Get(i, b.data());
    valid.Get(i, c.data());
    inner->Get(i, raw.data());
    EXPECT_EQ(a, b) << "sample " << i;
    differ += a != c;
    transformed += a != raw;
  }
  EXPECT_GT(differ, 10);
  EXPECT_GT(transformed, 30);
  // Threads reading at once (each borrows its own tokenizer) see the same samples.
  std::vector<std::vector<int64_t>> seen(4, std::vector<int64_t>(50 * 24));
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int64_t i = 0; i < 50; ++i) train.Get(i, seen[t].data() + i * 24);
    });
  }
  for (auto& r : readers) r.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(seen[t], seen[0]);
  for (int64_t i = 0; i < 50; ++i) {
    train.Get(i, a.data());
    EXPECT_TRUE(std::equal(a.begin(), a.end(), seen[0].begin() + i * 24));
  }
  // Rate 0: the identity.
  FimOptions off = f.o;
  off.rate = 0;
  FimSource none(inner, off, Gpt2Options(), 1234, 0);
  for (int64_t i = 0; i < 50; ++i) {
    none.Get(i, a.data());
    inner->Get(i, raw.data());
    EXPECT_EQ(a, raw);
  }
}

TEST(Fim, MissingSentinelsAreRefusedByName) {
  auto tok = MakeTokenizer(Gpt2Options(false));
  ASSERT_TRUE(tok.ok());
  FimOptions o;
  absl::Status s = ResolveFimIds(**tok, DefaultFimTokens(), "", &o);
  ASSERT_FALSE(s.ok());
  const std::string m(s.message());
  EXPECT_NE(m.find("<fim_prefix>"), std::string::npos) << m;
  EXPECT_NE(m.find("<fim_pad>"), std::string::npos) << m;
  EXPECT_NE(m.find("data.added_tokens"), std::string::npos) << m;
  s = ResolveFimIds(**tok, {"<a>", "<b>"}, "", &o);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("expected 4"), std::string::npos);
}

}  // namespace
}  // namespace braid
