// BERT data: masking statistics over 100k+ tokens against the 15% / 80-10-10 rule, specials never
// selected, whole-word masking never splitting a word; samples laid out as [CLS] A [SEP] B [SEP]
// with segment ids and padding, sentence order swapped about half the time, and every sample a
// pure function of (seed, index); dynamic masks differ between epochs of one pack while static
// ones repeat, with the masking rates kept; RoBERTa's full-sentence packs equal the packs of a
// greedy walk written here (sentences across documents, a [SEP] at each boundary, up to the
// length).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "braid/build_config.h"
#include "recipes/bert/bert_data.h"

namespace braid {
namespace {
namespace fs = std::filesystem;
const std::string kVocab =
    std::string(BRAID_SOURCE_DIR) + "/tests/fixtures/tokenizers/wordpiece/vocab.txt";

std::unique_ptr<Tokenizer> WordPiece() {
  auto t = MakeTokenizer({"wordpiece", kVocab});
  EXPECT_TRUE(t.ok());
  return std::move(*t);
}

// Word pieces of real English text, so that "##" continuations occur as they do in data.
std::vector<int64_t> Text(const Tokenizer& tok, int repeat) {
  const char* lines[] = {
      "The unbelievably quick brown foxes jumped over the lazy dogs' kennels.",
      "Tokenization of uncharacteristically long words produces several wordpieces.",
      "Supercalifragilisticexpialidocious is a word; antidisestablishmentarianism another.",
      "Reconstructing deconstructed misunderstandings requires patience and understanding.",
  };
  std::vector<int64_t> out;
  for (int r = 0; r < repeat; ++r)
    for (const char* l : lines)
      for (int32_t id : tok.Encode(l)) out.push_back(id);
  return out;
}

TEST(BertMasking, RatesOverHundredThousandTokens) {
  auto tok = WordPiece();
  for (bool whole_word : {false, true}) {
    auto spec = MaskingSpecFor(*tok, 0.15, 1000, whole_word);
    ASSERT_TRUE(spec.ok()) << spec.status();
    std::vector<int64_t> text = Text(*tok, 40);
    int64_t candidates = 0, selected = 0, as_mask = 0, unchanged = 0, random = 0, samples = 0;
    for (int64_t i = 0; candidates < 120000; ++i, ++samples) {
      // [CLS] 60 tokens [SEP] 60 tokens [SEP], from a moving window over the text.
      std::vector<int64_t> t = {spec->cls};
      for (int k = 0; k < 60; ++k) t.push_back(text[(i * 7 + k) % text.size()]);
      t.push_back(spec->sep);
      for (int k = 0; k < 60; ++k) t.push_back(text[(i * 13 + 500 + k) % text.size()]);
      t.push_back(spec->sep);
      std::vector<int64_t> original = t;
      Rng rng = Rng::Keyed(7, i);
      std::vector<int64_t> labels = ApplyMasking(t, *spec, rng);
      candidates += 120;
      for (size_t k = 0; k < t.size(); ++k) {
        if (labels[k] == -100) {
          ASSERT_EQ(t[k], original[k]) << "an unselected token changed";
          continue;
        }
        ASSERT_NE(original[k], spec->cls);
        ASSERT_NE(original[k], spec->sep);
        ASSERT_EQ(labels[k], original[k]);
        ++selected;
        if (t[k] == spec->mask)
          ++as_mask;
        else if (t[k] == original[k])
          ++unchanged;
        else {
          ++random;
          ASSERT_FALSE(spec->special[t[k]]) << "a random replacement is a special token";
        }
      }
      if (whole_word) {  // a word is selected whole or not at all
        for (size_t k = 1; k < t.size(); ++k) {
          if (spec->continuation[original[k]] && !spec->special[original[k - 1]]) {
            ASSERT_EQ(labels[k] == -100, labels[k - 1] == -100)
                << "word split at position " << k << " of sample " << i;
          }
        }
      }
    }
    double sel = static_cast<double>(selected) / candidates;
    EXPECT_NEAR(sel, 0.15, 0.005) << "whole_word " << whole_word;
    EXPECT_NEAR(static_cast<double>(as_mask) / selected, 0.80, 0.01);
    EXPECT_NEAR(static_cast<double>(unchanged) / selected, 0.10, 0.01);
    EXPECT_NEAR(static_cast<double>(random) / selected, 0.10, 0.01);
  }
}

TEST(BertMasking, MissingSpecialTokensAreNamed) {
  std::string vocab = (fs::temp_directory_path() / "braid_small_vocab.txt").string();
  { std::ofstream(vocab) << "[PAD]\n[UNK]\nhello\nworld\n"; }
  auto tok = MakeTokenizer({"wordpiece", vocab});
  ASSERT_TRUE(tok.ok());
  auto spec = MaskingSpecFor(**tok, 0.15, 20, false);
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(
      spec.status().message().find("lacks [CLS] (or <s>), [SEP] (or </s>), [MASK] (or <mask>)"),
      std::string::npos)
      << spec.status();
  fs::remove(vocab);
}

TEST(BertMasking, RobertasSpecialsByNameInGpt2Bpe) {
  // GPT-2's byte-level BPE with RoBERTa's specials added: <s> <pad> </s> <mask> after its 50257.
  const std::string dir = std::string(BRAID_SOURCE_DIR) + "/tests/fixtures/tokenizers/gpt2/";
  TokenizerOptions o{"gpt2", dir + "vocab.json", dir + "merges.txt"};
  o.added_tokens = {"<s>", "<pad>", "</s>", "<mask>"};
  auto tok = MakeTokenizer(o);
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto spec = MaskingSpecFor(**tok, 0.15, 20, false);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->cls, 50257);
  EXPECT_EQ(spec->pad, 50258);
  EXPECT_EQ(spec->sep, 50259);
  EXPECT_EQ(spec->mask, 50260);
  for (int32_t id : {50257, 50258, 50259, 50260}) EXPECT_TRUE(spec->special[id]) << id;
  // Without them the error names both spellings and the fix.
  auto plain = MakeTokenizer({"gpt2", dir + "vocab.json", dir + "merges.txt"});
  ASSERT_TRUE(plain.ok());
  auto missing = MaskingSpecFor(**plain, 0.15, 20, false);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("[MASK] (or <mask>)"), std::string::npos);
  EXPECT_NE(missing.status().message().find("data.added_tokens"), std::string::npos);
}

class BertDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("braid_bert_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    tok_ = WordPiece();
    auto b = IndexedDatasetBuilder::Create((dir_ / "s").string(), TokenDType::kU16);
    std::vector<int64_t> text = Text(*tok_, 3);
    size_t pos = 0;
    for (int d = 0; d < 50; ++d) {
      for (int s = 0; s < 2 + d % 4; ++s) {  // 2..5 sentences a document
        std::vector<int32_t> sent;
        for (int k = 0; k < 5 + (d * 3 + s) % 9; ++k) sent.push_back(text[pos++ % text.size()]);
        ASSERT_TRUE((*b)->AddSequence(sent.data(), sent.size()).ok());
      }
      (*b)->EndDocument();
    }
    ASSERT_TRUE((*b)->Finish().ok());
    data_ = *IndexedDataset::Open((dir_ / "s").string());
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::unique_ptr<Tokenizer> tok_;
  std::shared_ptr<IndexedDataset> data_;
};

TEST_F(BertDatasetTest, LayoutSegmentsPaddingAndDeterminism) {
  auto spec = MaskingSpecFor(*tok_, 0.15, 8, true);
  ASSERT_TRUE(spec.ok());
  const int64_t s = 48;
  BertDataSpec ds{{0, 50}, s, 400, 3, 0.1, true, "train", ""};
  auto a = BertDataset::Open(data_, ds, *spec, true);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = BertDataset::Open(data_, ds, *spec, false);  // the cache built above
  ASSERT_TRUE(b.ok()) << b.status();
  std::vector<int64_t> row((*a)->sample_length()), again(row.size());
  int swapped = 0;
  for (int64_t i = 0; i < 400; ++i) {
    (*a)->Get(i, row.data());
    (*b)->Get(i, again.data());
    ASSERT_EQ(row, again) << "sample " << i << " is not a pure function of (seed, index)";
    const int64_t* tokens = row.data();
    const int64_t* types = tokens + s;
    const int64_t* pad = tokens + 2 * s;
    const int64_t* labels = tokens + 3 * s;
    ASSERT_EQ(tokens[0], spec->cls);
    int64_t n = 0;
    while (n < s && pad[n] == 0) ++n;
    for (int64_t k = n; k < s; ++k) ASSERT_EQ(pad[k], 1) << "padding must be a suffix";
    // Exactly two [SEP] among the real tokens (masking never touches them), the last at n - 1.
    std::vector<int64_t> seps;
    for (int64_t k = 0; k < n; ++k)
      if (tokens[k] == spec->sep && labels[k] == -100) seps.push_back(k);
    ASSERT_GE(seps.size(), 2u);
    ASSERT_EQ(seps.back(), n - 1);
    const int64_t first_sep = seps[seps.size() - 2];
    for (int64_t k = 0; k < n; ++k) ASSERT_EQ(types[k], k <= first_sep ? 0 : 1) << "at " << k;
    for (int64_t k = 0; k < s; ++k) ASSERT_TRUE(labels[k] == -100 || k < n);
    int64_t masked = 0;
    for (int64_t k = 0; k < s; ++k) masked += labels[k] != -100;
    ASSERT_GE(masked, 1);
    ASSERT_LE(masked, 8);
    swapped += row[4 * s] == 1;
  }
  EXPECT_NEAR(swapped / 400.0, 0.5, 0.08);
}

// The original tokens of a row (labels put back), from [CLS] to the last [SEP].
std::vector<int64_t> Original(const std::vector<int64_t>& row, int64_t s) {
  std::vector<int64_t> out;
  for (int64_t k = 0; k < s && row[2 * s + k] == 0; ++k)
    out.push_back(row[3 * s + k] != -100 ? row[3 * s + k] : row[k]);
  return out;
}

TEST_F(BertDatasetTest, DynamicMasksDifferBetweenEpochsStaticOnesRepeat) {
  auto spec = MaskingSpecFor(*tok_, 0.15, 40, false);
  ASSERT_TRUE(spec.ok());
  const int64_t s = 64, n = 600;  // 50 documents, one pack each mostly: ~12 epochs
  for (bool dynamic : {true, false}) {
    BertDataSpec ds{{0, 50}, s, n, 5, 0.0, false, "train", "", false, dynamic};
    auto d = BertDataset::Open(data_, ds, *spec, true);
    ASSERT_TRUE(d.ok()) << d.status();
    std::map<std::vector<int64_t>, std::vector<std::vector<int64_t>>> by_pack;  // -> rows
    int64_t candidates = 0, masked = 0, as_mask = 0;
    std::vector<int64_t> row((*d)->sample_length());
    for (int64_t i = 0; i < n; ++i) {
      (*d)->Get(i, row.data());
      std::vector<int64_t> orig = Original(row, s);
      candidates += static_cast<int64_t>(orig.size()) - 2;
      for (int64_t k = 0; k < s; ++k) {
        masked += row[3 * s + k] != -100;
        as_mask += row[3 * s + k] != -100 && row[k] == spec->mask;
      }
      by_pack[orig].push_back(std::vector<int64_t>(row.begin(), row.begin() + s));
    }
    int64_t pairs = 0, same = 0;
    for (const auto& [orig, rows] : by_pack) {
      for (size_t a = 1; a < rows.size(); ++a) ++pairs, same += rows[a] == rows[0];
    }
    ASSERT_GT(pairs, 300) << "the packs must recur over the epochs";
    if (dynamic) {
      EXPECT_LT(same, pairs / 20) << "dynamic masks repeat between epochs";
    } else {
      EXPECT_EQ(same, pairs) << "static masks change between epochs";
    }
    EXPECT_NEAR(static_cast<double>(masked) / candidates, 0.15, 0.02);
    EXPECT_NEAR(static_cast<double>(as_mask) / masked, 0.8, 0.04);
  }
}

TEST_F(BertDatasetTest, FullSentencePacksCrossDocumentsWithSeparators) {
  auto spec = MaskingSpecFor(*tok_, 0.15, 20, false);
  ASSERT_TRUE(spec.ok());
  const int64_t s = 40, max_tokens = s - 2;
  // The packs by a greedy walk: whole sentences while they fit, [SEP] before each new document's
  // first sentence inside a pack.
  std::set<std::vector<int64_t>> expected;
  std::vector<int64_t> cur;
  for (int64_t d = 0; d < 50; ++d) {
    for (int64_t q = data_->document_index(d); q < data_->document_index(d + 1); ++q) {
      std::vector<int64_t> sent = data_->Sequence(q);
      const bool boundary = q == data_->document_index(d) && !cur.empty();
      if (!cur.empty() && cur.size() + sent.size() + boundary > static_cast<size_t>(max_tokens)) {
        expected.insert(cur);
        cur.clear();
      } else if (boundary) {
        cur.push_back(spec->sep);
      }
      cur.insert(cur.end(), sent.begin(), sent.end());
    }
  }
  if (!cur.empty()) expected.insert(cur);
  const int64_t packs = static_cast<int64_t>(expected.size());
  BertDataSpec ds{{0, 50}, s, packs, 5, 0.0, false, "train", "", true, true};
  auto d = BertDataset::Open(data_, ds, *spec, true);
  ASSERT_TRUE(d.ok()) << d.status();
  std::set<std::vector<int64_t>> seen;
  int crossing = 0;
  std::vector<int64_t> row((*d)->sample_length());
  for (int64_t i = 0; i < packs; ++i) {  // one epoch: every pack once
    (*d)->Get(i, row.data());
    std::vector<int64_t> orig = Original(row, s);
    ASSERT_EQ(orig.front(), spec->cls);
    ASSERT_EQ(orig.back(), spec->sep);
    std::vector<int64_t> inner(orig.begin() + 1, orig.end() - 1);
    ASSERT_TRUE(expected.count(inner)) << "sample " << i << " is no pack of the greedy walk";
    seen.insert(inner);
    crossing += std::count(inner.begin(), inner.end(), spec->sep) > 0;
  }
  EXPECT_EQ(static_cast<int64_t>(seen.size()), packs);
  EXPECT_GT(crossing, packs / 2) << "packs of up to 38 tokens should mostly cross documents";
}

}  // namespace
}  // namespace braid
