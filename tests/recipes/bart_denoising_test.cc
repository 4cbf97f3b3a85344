// BART's denoising (recipes/bart/denoising.h, bart_data.h) against fairseq's rules, over 100k
// tokens of real word pieces:
//  - span lengths: the truncated Poisson's mean and P(0) against the closed form;
//  - text infilling: the spans' lengths sum to the budget ceil(0.3 x words) (0.30 of the words),
//    their mean is 3.5 (zeros counted), 10% of the masks are random tokens, spans cover whole
//    words, <s> and </s> survive, kept tokens keep their order;
//  - sentence permutation: a permutation, exactly ceil(n x p) sentences eligible to move;
//  - insertion (ceil(len x p) tokens, ceil(n x 0.1) of them random) and rotation keep <s>, </s>
//    and the original tokens' order;
//  - samples: decoder inputs are the start token then the target shifted right; with no noise the
//    source equals the target; permuted, every sentence appears exactly once; mBART's language
//    token ends the source and the target and starts the decoder; every sample a pure function of
//    (seed, index), the same from a second reader of the cached index;
//  - special tokens: GPT-2's BPE refused without BART's specials, naming them; with
//    data.added_tokens they are appended after its vocabulary, read in text, written back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "braid/build_config.h"
#include "recipes/bart/bart_batch.h"
#include "recipes/bart/bart_data.h"
#include "recipes/bart/bart_family.h"
#include "recipes/bart/denoising.h"

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

DenoisingSpec Spec(const Tokenizer& tok) {
  DenoisingSpec s;
  s.mask = tok.special().mask;
  FillVocabulary(tok, &s);
  return s;
}

TEST(BartNoise, SpanLengthsArePoisson) {
  SpanLengthSampler sampler(3.5);
  Rng rng(11);
  const int n = 200000;
  double sum = 0;
  int zeros = 0;
  for (int i = 0; i < n; ++i) {
    const int64_t l = sampler.Draw(rng);
    sum += l;
    zeros += l == 0;
  }
  EXPECT_NEAR(sum / n, 3.5, 0.02);
  EXPECT_NEAR(static_cast<double>(zeros) / n, std::exp(-3.5), 0.002);
}

TEST(BartNoise, InfillingOverHundredThousandTokens) {
  auto tok = WordPiece();
  const DenoisingSpec spec = Spec(*tok);
  const int64_t bos = tok->special().cls, eos = tok->special().sep;
  SpanLengthSampler sampler(spec.poisson_lambda);
  std::vector<int64_t> text = Text(*tok, 60);
  int64_t tokens = 0, words = 0, budget = 0, spans = 0, nonzero = 0, random = 0, covered = 0,
          inserted = 0, zero = 0;
  double length_sum = 0;
  for (int64_t i = 0; tokens < 100000; ++i) {
    NoisedTokens t;
    t.ids = {bos};
    for (int k = 0; k < 1022; ++k) t.ids.push_back(text[(i * 101 + k) % text.size()]);
    t.ids.push_back(eos);
    for (size_t k = 0; k < t.ids.size(); ++k) t.origin.push_back(static_cast<int64_t>(k));
    const std::vector<int64_t> target = t.ids;
    tokens += static_cast<int64_t>(target.size());
    Rng rng = Rng::Keyed(5, i);
    InfillingStats st;
    AddWholeWordMask(t, spec, sampler, rng, &st);
    int64_t sum = 0;
    for (int64_t l : st.lengths) sum += l, nonzero += l > 0, zero += l == 0;
    ASSERT_EQ(sum, st.budget) << "the spans must sum to the budget";
    ASSERT_EQ(st.budget, static_cast<int64_t>(std::ceil(st.words * 0.3f)));
    words += st.words;
    budget += st.budget;
    spans += static_cast<int64_t>(st.lengths.size());
    length_sum += static_cast<double>(sum);
    random += st.random_spans;
    ASSERT_EQ(t.ids.front(), bos);
    ASSERT_EQ(t.ids.back(), eos);
    // Kept tokens in order; which target positions survived unchanged.
    std::vector<bool> copied(target.size(), false);
    int64_t last = -1;
    for (size_t k = 0; k < t.ids.size(); ++k) {
      const int64_t o = t.origin[k];
      if (o < 0) {   // an insertion (a zero-length span): <mask>, or a random token for
        ++inserted;  // ceil(n x mask_random) of them, as fairseq's add_insertion_noise
        ASSERT_TRUE(t.ids[k] == spec.mask || std::find(spec.randoms.begin(), spec.randoms.end(),
                                                       t.ids[k]) != spec.randoms.end());
        continue;
      }
      ASSERT_GT(o, last);
      last = o;
      if (t.ids[k] == target[o]) copied[o] = true;
    }
    // Whole words: a noised run ends where a word starts (or at </s>).
    for (size_t p = 1; p + 1 < target.size(); ++p) {
      if (!copied[p] && copied[p + 1]) {
        ASSERT_TRUE(p + 1 == target.size() - 1 || spec.word_start[target[p + 1]])
            << "a span ends inside a word at " << p;
      }
      if (spec.word_start[target[p]] && !copied[p]) ++covered;
    }
  }
  const double fraction = static_cast<double>(budget) / words;
  const double mean = length_sum / spans;
  const double random_share = static_cast<double>(random) / nonzero;
  std::printf(
      "%ld tokens, %ld words: span budget %.4f of the words, mean span %.3f words "
      "(%ld spans, zeros counted), %.4f of the masks random; %.4f of the words noised "
      "(spans may overlap, as in fairseq)\n",
      (long)tokens, (long)words, fraction, mean, (long)spans, random_share,
      static_cast<double>(covered) / words);
  EXPECT_NEAR(fraction, 0.30, 0.01);
  EXPECT_NEAR(mean, 3.5, 0.1);
  EXPECT_NEAR(random_share, 0.10, 0.015);
  // Overlapping spans cover fewer words than the budget: 1 - e^-0.3 = 0.26 if they were placed
  // independently.
  EXPECT_GT(static_cast<double>(covered) / words, 0.22);
  EXPECT_LE(covered, budget);
  EXPECT_EQ(inserted, zero) << "each zero-length span inserts one token";
}

TEST(BartNoise, PermutationMovesCeilNP) {
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Rng rng(seed);
    std::vector<int64_t> all = PermutationOrder(10, 1.0, rng);
    std::vector<int64_t> sorted = all;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t k = 0; k < 10; ++k) ASSERT_EQ(sorted[k], k);
    std::vector<int64_t> some = PermutationOrder(10, 0.3, rng);
    int moved = 0;
    for (int64_t k = 0; k < 10; ++k) moved += some[k] != k;
    ASSERT_LE(moved, 3);  // ceil(10 x 0.3) chosen
    std::vector<int64_t> none = PermutationOrder(10, 0.0, rng);
    for (int64_t k = 0; k < 10; ++k) ASSERT_EQ(none[k], k);
  }
}

TEST(BartSpecials, Gpt2GainsThemAfterItsVocabulary) {
  const std::string dir = std::string(BRAID_SOURCE_DIR) + "/tests/fixtures/tokenizers/gpt2/";
  TokenizerOptions o{"gpt2", dir + "vocab.json", dir + "merges.txt"};
  auto plain = MakeTokenizer(o);
  ASSERT_TRUE(plain.ok()) << plain.status();
  auto refused = BartSpecialsOf(**plain, "vocab.json");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("lacks <pad>, <mask>, which BART needs"),
            std::string::npos)
      << refused.status();
  const int64_t base = (*plain)->VocabSize();
  o.added_tokens = {"<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|endoftext|>"};
  auto tok = MakeTokenizer(o);
  ASSERT_TRUE(tok.ok()) << tok.status();
  // Five new ids after the vocabulary; <|endoftext|>, which it has, keeps its own.
  EXPECT_EQ((*tok)->VocabSize(), base + 5);
  auto sp = BartSpecialsOf(**tok, "vocab.json");
  ASSERT_TRUE(sp.ok()) << sp.status();
  EXPECT_EQ(sp->bos, base);
  EXPECT_EQ(sp->pad, base + 1);
  EXPECT_EQ(sp->eos, base + 2);
  EXPECT_EQ(sp->mask, base + 4);
  const std::string text = "<s>The cat<mask> on the mat.</s><|endoftext|>";
  const std::vector<int32_t> ids = (*tok)->Encode(text);
  EXPECT_EQ(ids.front(), base);
  EXPECT_EQ(ids.back(), (*plain)->special().eod);
  EXPECT_NE(std::find(ids.begin(), ids.end(), base + 4), ids.end());
  EXPECT_EQ((*tok)->Decode(ids), text);
  EXPECT_EQ((*tok)->IdToToken(static_cast<int32_t>(base + 4)), "<mask>");

  // A vocabulary that has an entry of that name keeps its id (Hugging Face's BART vocab.json
  // holds <s> 0 ... <mask> 50264): here <mask> as one more entry of vocab.json.
  const fs::path own =
      fs::temp_directory_path() / ("braid_bart_vocab_" + std::to_string(::getpid()));
  fs::create_directories(own);
  {
    std::ifstream in(dir + "vocab.json");
    std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    json.insert(json.rfind('}'), ", \"<mask>\": " + std::to_string(base));
    std::ofstream(own / "vocab.json") << json;
  }
  TokenizerOptions o2{"gpt2", (own / "vocab.json").string(), dir + "merges.txt"};
  o2.added_tokens = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
  auto with_mask = MakeTokenizer(o2);
  ASSERT_TRUE(with_mask.ok()) << with_mask.status();
  EXPECT_EQ((*with_mask)->VocabSize(), base + 1 + 4);
  auto sp2 = BartSpecialsOf(**with_mask, "vocab.json");
  ASSERT_TRUE(sp2.ok()) << sp2.status();
  EXPECT_EQ(sp2->mask, base) << "the vocabulary's own <mask>";
  EXPECT_EQ(sp2->bos, base + 1);
  fs::remove_all(own);
}

TEST(BartNoise, InsertionAndRotation) {
  auto tok = WordPiece();
  const DenoisingSpec spec = Spec(*tok);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    NoisedTokens t;
    for (int64_t k = 0; k < 40; ++k) t.ids.push_back(1000 + k), t.origin.push_back(k);
    Rng rng(seed);
    NoisedTokens in = t;
    AddInsertionNoise(in, 0.1, spec, rng);  // ceil(40 x 0.1) = 4 tokens, ceil(4 x 0.1) = 1 random
    ASSERT_EQ(in.ids.size(), 44u);
    ASSERT_EQ(in.ids.front(), 1000);
    ASSERT_EQ(in.ids.back(), 1039);
    std::vector<int64_t> kept;
    int masks = 0;
    for (size_t k = 0; k < in.ids.size(); ++k) {
      if (in.origin[k] >= 0) {
        kept.push_back(in.ids[k]);
      } else {
        masks += in.ids[k] == spec.mask;
      }
    }
    ASSERT_EQ(kept, t.ids) << "the original tokens, in order";
    ASSERT_EQ(masks, 3);
    NoisedTokens rot = t;
    AddRollingNoise(rot, rng);
    ASSERT_EQ(rot.ids.size(), 40u);
    ASSERT_EQ(rot.ids.front(), 1000);
    ASSERT_EQ(rot.ids.back(), 1039);
    // The inner tokens are a rotation of 1001..1038.
    const int64_t shift = rot.ids[1] - 1001;
    for (int64_t k = 1; k < 39; ++k) ASSERT_EQ(rot.ids[k], 1001 + (k - 1 + shift) % 38);
  }
}

class BartDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("braid_bart_" + std::to_string(::getpid()));
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
  BartDataSpec Spec(double mask, double permute, int64_t language = -1) {
    BartDataSpec s;
    s.documents = {0, 50};
    s.seq_length = 40;
    s.num_samples = 300;
    s.seed = 3;
    s.bos = tok_->special().cls;
    s.eos = tok_->special().sep;
    s.pad = tok_->special().pad;
    s.language = language;
    s.noise = braid::Spec(*tok_);
    s.noise.mask_ratio = mask;
    s.noise.permute_sentences = permute;
    s.cache_dir = dir_.string();
    return s;
  }
  fs::path dir_;
  std::unique_ptr<Tokenizer> tok_;
  std::shared_ptr<IndexedDataset> data_;
};

TEST_F(BartDatasetTest, LayoutNoiseFreePermutationLanguageAndDeterminism) {
  const BartRow r(40, 40);
  auto field = [&](const std::vector<int64_t>& row, int64_t at, int64_t n) {
    return std::vector<int64_t>(row.begin() + at, row.begin() + at + n);
  };
  auto real = [&](const std::vector<int64_t>& row) {  // the source's and target's real tokens
    std::vector<int64_t> in, tg;
    for (int64_t k = 0; k < r.enc; ++k)
      if (!row[r.input_padding() + k]) in.push_back(row[r.inputs() + k]);
    for (int64_t k = 0; k < r.dec; ++k)
      if (row[r.labels() + k] != -100) tg.push_back(row[r.labels() + k]);
    return std::make_pair(in, tg);
  };
  const int64_t bos = tok_->special().cls, eos = tok_->special().sep;
  // No noise: the source is the target.
  {
    auto ds = BartDataset::Open(data_, Spec(0.0, 0.0), true);
    ASSERT_TRUE(ds.ok()) << ds.status();
    std::vector<int64_t> row((*ds)->sample_length());
    for (int64_t i = 0; i < 300; ++i) {
      (*ds)->Get(i, row.data());
      auto [in, tg] = real(row);
      ASSERT_EQ(in, tg) << "sample " << i;
      ASSERT_EQ(tg.front(), bos);
      ASSERT_EQ(tg.back(), eos);
      ASSERT_LE(static_cast<int64_t>(tg.size()), 40);
      ASSERT_EQ(row[r.decoder_inputs()], eos);
      for (int64_t k = 1; k < static_cast<int64_t>(tg.size()); ++k)
        ASSERT_EQ(row[r.decoder_inputs() + k], tg[k - 1]);
      for (int64_t k = 0; k < r.dec; ++k) ASSERT_EQ(row[r.noised() + k], 0);
    }
  }
  // Permuted, not masked: the source is the target's sentences, each exactly once.
  {
    auto ds = BartDataset::Open(data_, Spec(0.0, 1.0), true);
    ASSERT_TRUE(ds.ok()) << ds.status();
    std::vector<int64_t> row((*ds)->sample_length());
    int reordered = 0;
    for (int64_t i = 0; i < 300; ++i) {
      (*ds)->Get(i, row.data());
      auto [in, tg] = real(row);
      ASSERT_EQ(in.size(), tg.size());
      std::vector<std::vector<int64_t>> sentences = (*ds)->Sentences(i);
      // Read the source back sentence by sentence: each must be one not used yet.
      std::vector<bool> used(sentences.size(), false);
      size_t at = 1;
      while (at + 1 < in.size()) {
        bool found = false;
        for (size_t s = 0; s < sentences.size() && !found; ++s) {
          if (used[s] || at + sentences[s].size() > in.size() - 1) continue;
          if (std::equal(sentences[s].begin(), sentences[s].end(), in.begin() + at)) {
            used[s] = found = true;
            at += sentences[s].size();
          }
        }
        ASSERT_TRUE(found) << "sample " << i << ": the source is not the target's sentences";
      }
      for (bool u : used) ASSERT_TRUE(u);
      reordered += in != tg;
    }
    EXPECT_GT(reordered, 100);
  }
  // Fully noised, mBART's language token: determinism, a second reader, the layout.
  const int64_t lang = 42;
  auto a = BartDataset::Open(data_, Spec(0.3, 1.0, lang), true);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = BartDataset::Open(data_, Spec(0.3, 1.0, lang), false);  // the cache built above
  ASSERT_TRUE(b.ok()) << b.status();
  std::vector<int64_t> row((*a)->sample_length()), again(row.size());
  int64_t noised = 0, targets = 0, shorter = 0;
  for (int64_t i = 0; i < 300; ++i) {
    (*a)->Get(i, row.data());
    (*b)->Get(i, again.data());
    ASSERT_EQ(row, again) << "sample " << i << " is not a pure function of (seed, index)";
    auto [in, tg] = real(row);
    ASSERT_EQ(tg.front(), bos);
    ASSERT_EQ(tg[tg.size() - 2], eos);
    ASSERT_EQ(tg.back(), lang);
    ASSERT_EQ(in.back(), lang);
    ASSERT_EQ(in[in.size() - 2], eos);
    ASSERT_EQ(row[r.decoder_inputs()], lang) << "mBART's decoder starts with the language";
    shorter += in.size() < tg.size();
    for (int64_t k = 0; k < r.dec; ++k) {
      noised += row[r.noised() + k];
      targets += row[r.labels() + k] != -100;
    }
    ASSERT_EQ(field(row, r.labels(), r.dec), field(row, r.labels(), r.dec));
  }
  EXPECT_GT(shorter, 200) << "spans of several tokens become one <mask>";
  EXPECT_GT(noised, targets / 10);
  EXPECT_LT(noised, targets / 2);
}

}  // namespace
}  // namespace braid
