// GPT sample index, blending, the distributed sampler and the prefetching loader.
// Synthetic data: token = 1000 * document + position, so every token says where it came from.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include "framework/data/blend.h"
#include "framework/data/gpt_dataset.h"
#include "framework/data/loader.h"

namespace braid {
namespace {
namespace fs = std::filesystem;

class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("braid_loader_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `docs` documents with lengths 1 + (7 * d) % 23 (some as two sequences).
  std::shared_ptr<IndexedDataset> Make(const std::string& name, int docs, int base = 0) {
    std::string prefix = (dir_ / name).string();
    auto b = IndexedDatasetBuilder::Create(prefix, TokenDType::kI32);
    EXPECT_TRUE(b.ok());
    for (int d = 0; d < docs; ++d) {
      int len = 1 + (7 * d) % 23;
      std::vector<int32_t> t;
      for (int p = 0; p < len; ++p) t.push_back(1000 * (base + d) + p);
      if (d % 3 == 0 && len > 2) {  // two sequences (sentences) in one document
        EXPECT_TRUE((*b)->AddSequence(t.data(), 2).ok());
        EXPECT_TRUE((*b)->AddSequence(t.data() + 2, len - 2).ok());
      } else {
        EXPECT_TRUE((*b)->AddSequence(t.data(), len).ok());
      }
      (*b)->EndDocument();
    }
    EXPECT_TRUE((*b)->Finish().ok());
    auto ds = IndexedDataset::Open(prefix);
    EXPECT_TRUE(ds.ok()) << ds.status();
    return *ds;
  }

  std::unique_ptr<GptDataset> Gpt(std::shared_ptr<IndexedDataset> data, int64_t seq,
                                  int64_t samples, uint64_t seed = 1) {
    GptIndexSpec spec{{0, data->num_documents()}, seq, samples, seed, "train", ""};
    auto ds = GptDataset::Open(data, spec, true);
    EXPECT_TRUE(ds.ok()) << ds.status();
    return std::move(*ds);
  }

  static std::vector<int64_t> Sample(const SampleSource& s, int64_t i) {
    std::vector<int64_t> out(s.sample_length());
    s.Get(i, out.data());
    return out;
  }

  static int DocLen(int64_t d) { return 1 + (7 * d) % 23; }
  fs::path dir_;
};

TEST_F(DataTest, SplitIsMegatrons) {
  auto s = SplitDocuments(1000, "949,50,1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)[0].begin, 0);
  EXPECT_EQ((*s)[0].end, 949);
  EXPECT_EQ((*s)[1].end, 999);
  EXPECT_EQ((*s)[2].end, 1000);
  s = SplitDocuments(10, "98,2,0");  // rounding: 9.8 -> 10, then shifted back to end at 10
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)[0].end, 10);
  EXPECT_EQ((*s)[1].size(), 0);
  EXPECT_FALSE(SplitDocuments(10, "a,b").ok());
  EXPECT_FALSE(SplitDocuments(10, "0,0,0").ok());
}

// One epoch: the samples chain (each starts with the previous one's last token) into the
// concatenation of every document exactly once, in a shuffled order, crossing boundaries.
TEST_F(DataTest, GptSamplesTileShuffledDocuments) {
  auto data = Make("gpt", 60);
  const int64_t seq = 16;
  const int64_t total = data->num_tokens();
  const int64_t samples = (total - 1) / seq;
  auto ds = Gpt(data, seq, samples);
  EXPECT_EQ(ds->epochs(), 1);
  std::map<int64_t, int64_t> by_first;  // first token -> sample
  std::set<int64_t> lasts;
  std::vector<std::vector<int64_t>> all;
  for (int64_t i = 0; i < samples; ++i) {
    all.push_back(Sample(*ds, i));
    ASSERT_EQ(all.back().size(), static_cast<size_t>(seq + 1));
    for (size_t k = 1; k < all.back().size(); ++k) {
      int64_t a = all.back()[k - 1], b = all.back()[k];
      bool same_doc_next = b == a + 1 && b / 1000 == a / 1000;
      bool doc_change = b % 1000 == 0 && a % 1000 == DocLen(a / 1000) - 1;
      ASSERT_TRUE(same_doc_next || doc_change) << a << " -> " << b;
    }
    ASSERT_TRUE(by_first.emplace(all.back().front(), i).second) << "two samples start alike";
    lasts.insert(all.back().back());
  }
  int64_t head = -1;
  for (auto& [first, i] : by_first)
    if (!lasts.count(first)) head = i;
  ASSERT_GE(head, 0);
  std::vector<int64_t> stream(all[head]);
  std::vector<int64_t> chain_order = {head};
  for (int64_t n = 1; n < samples; ++n) {
    auto it = by_first.find(stream.back());
    ASSERT_NE(it, by_first.end()) << "chain broken after " << n << " samples";
    chain_order.push_back(it->second);
    stream.insert(stream.end(), all[it->second].begin() + 1, all[it->second].end());
  }
  EXPECT_EQ(static_cast<int64_t>(stream.size()), samples * seq + 1);
  // Whole documents in order, each at most once, starting at a document start.
  std::set<int64_t> seen;
  std::vector<int64_t> doc_order;
  for (size_t k = 0; k < stream.size(); ++k) {
    if (stream[k] % 1000 == 0) {
      ASSERT_TRUE(seen.insert(stream[k] / 1000).second) << "document twice in one epoch";
      doc_order.push_back(stream[k] / 1000);
    }
  }
  EXPECT_EQ(stream[0] % 1000, 0);
  EXPECT_GE(seen.size(), 58u);
  std::vector<int64_t> sorted = doc_order;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(doc_order, sorted) << "documents were not shuffled";
  std::vector<int64_t> identity(samples);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(chain_order, identity) << "samples were not shuffled";
}

TEST_F(DataTest, GptEpochsSeedsAndCache) {
  auto data = Make("gpt", 30);
  const int64_t samples = 3 * data->num_tokens() / 8 + 1;  // just over 3 epochs of tokens
  auto a = Gpt(data, 8, samples, 5);
  EXPECT_EQ(a->epochs(), 4);
  std::string path = GptDataset::CachePath(*data, {{0, 30}, 8, samples, 5, "train", ""});
  ASSERT_TRUE(fs::exists(path));
  auto mtime = fs::last_write_time(path);
  auto b = Gpt(data, 8, samples, 5);  // reuses the cache
  EXPECT_EQ(fs::last_write_time(path), mtime);
  auto c = Gpt(data, 8, samples, 6);
  int same_ab = 0, same_ac = 0;
  for (int64_t i = 0; i < 50; ++i) {
    same_ab += Sample(*a, i) == Sample(*b, i);
    same_ac += Sample(*a, i) == Sample(*c, i);
  }
  EXPECT_EQ(same_ab, 50);
  EXPECT_LT(same_ac, 10);
  // Without permission to build, a missing index is an error, not a silent rebuild.
  auto missing = GptDataset::Open(data, {{0, 30}, 8, samples, 7, "train", ""}, false);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  // A corrupt cache is refused with its path; with permission it is rebuilt.
  const std::vector<int64_t> before = Sample(*a, 3);
  a.reset();
  b.reset();
  { std::ofstream(path, std::ios::binary | std::ios::trunc) << "garbage!garbage!garbage!"; }
  auto corrupt = GptDataset::Open(data, {{0, 30}, 8, samples, 5, "train", ""}, false);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.status().message().find(path), std::string::npos) << corrupt.status();
  auto rebuilt = Gpt(data, 8, samples, 5);
  EXPECT_EQ(Sample(*rebuilt, 3), before);
}

// For DP in {1, 2, 4} the ranks' micro-batches of each global batch together are the same set,
// the global batch [b*G, (b+1)*G).
TEST_F(DataTest, SamplerUnionIsIndependentOfDp) {
  const int64_t G = 16;
  for (int dp : {1, 2, 4}) {
    for (int64_t micro : {1, 2, 4}) {
      if (G % (micro * dp) != 0) continue;
      std::vector<DistributedBatchSampler> ranks;
      for (int r = 0; r < dp; ++r)
        ranks.push_back(*DistributedBatchSampler::Create(G, micro, r, dp, 0));
      for (int64_t step = 0; step < 5; ++step) {
        std::set<int64_t> got;
        for (auto& s : ranks)
          for (int64_t m = 0; m < s.micro_batches_per_step(); ++m)
            for (int64_t i : s.Next()) got.insert(i);
        std::set<int64_t> want;
        for (int64_t i = step * G; i < (step + 1) * G; ++i) want.insert(i);
        EXPECT_EQ(got, want) << "dp " << dp << " micro " << micro << " step " << step;
        EXPECT_EQ(ranks[0].consumed(), (step + 1) * G);
      }
    }
  }
  EXPECT_FALSE(DistributedBatchSampler::Create(16, 3, 0, 2, 0).ok());
  auto bad = DistributedBatchSampler::Create(16, 2, 0, 2, 24);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not a multiple of the global batch"), std::string::npos);
}

// Stop after 3 steps at DP=2, resume at DP=4 (and at DP=2) from the consumed count: the tokens
// of every later global batch equal the uninterrupted run's.
TEST_F(DataTest, LoaderResumesExactlyAcrossDpSizes) {
  auto data = Make("gpt", 60);
  std::shared_ptr<const SampleSource> ds = Gpt(data, 8, 200);
  const int64_t G = 8, micro = 2;
  auto run = [&](int dp, int64_t consumed, int steps) {
    std::vector<std::unique_ptr<Loader>> loaders;
    for (int r = 0; r < dp; ++r) {
      loaders.push_back(std::make_unique<Loader>(
          ds, *DistributedBatchSampler::Create(G, micro, r, dp, consumed), 2));
    }
    std::vector<std::multiset<std::vector<int64_t>>> per_step;
    for (int s = 0; s < steps; ++s) {
      std::multiset<std::vector<int64_t>> rows;
      for (auto& l : loaders) {
        for (int m = 0; m < G / dp / micro; ++m) {
          SampleBatch b = l->Next();
          for (int64_t row = 0; row < b.size(); ++row) {
            const int64_t* t = b.rows.data() + row * b.row_length;
            rows.insert(std::vector<int64_t>(t, t + b.row_length));
          }
        }
      }
      per_step.push_back(rows);
    }
    EXPECT_EQ(loaders[0]->consumed(), consumed + steps * G);
    EXPECT_GE(loaders[0]->TakeWaitSeconds(), 0.0);
    return per_step;
  };
  auto straight = run(2, 0, 7);
  auto first = run(2, 0, 3);
  for (int s = 0; s < 3; ++s) EXPECT_EQ(first[s], straight[s]);
  for (int dp : {4, 2, 1}) {
    auto resumed = run(dp, 3 * G, 4);
    for (int s = 0; s < 4; ++s)
      EXPECT_EQ(resumed[s], straight[3 + s]) << "dp " << dp << " step " << s;
  }
}

TEST_F(DataTest, BlendProportionsWithinOnePercent) {
  std::vector<double> w = {0.2, 0.3, 0.5};
  const int64_t total = 10000;
  std::vector<int64_t> counts = BlendCounts(w, total);
  std::vector<std::unique_ptr<SampleSource>> sources;
  for (int d = 0; d < 3; ++d) {
    sources.push_back(Gpt(Make("blend" + std::to_string(d), 40, 100 * d), 8, counts[d], d));
  }
  auto blend = BlendedDataset::Create(std::move(sources), w, total);
  ASSERT_TRUE(blend.ok()) << blend.status();
  std::vector<int64_t> seen(3, 0);
  for (int64_t i = 0; i < total; ++i) {
    std::vector<int64_t> s = Sample(**blend, i);
    int from = static_cast<int>(s[0] / 1000 / 100);  // documents of source d are 100*d + ...
    ASSERT_EQ(from, (*blend)->source_of(i));
    ++seen[from];
  }
  for (int d = 0; d < 3; ++d) {
    EXPECT_NEAR(seen[d] / static_cast<double>(total), w[d], 0.01) << "source " << d;
    EXPECT_EQ(seen[d], counts[d]);
  }
  // Every prefix is balanced too: after 1000 samples each source is within 1% of its weight.
  std::vector<int64_t> prefix(3, 0);
  for (int64_t i = 0; i < 1000; ++i) ++prefix[(*blend)->source_of(i)];
  for (int d = 0; d < 3; ++d) EXPECT_NEAR(prefix[d] / 1000.0, w[d], 0.01);
}

}  // namespace
}  // namespace braid
