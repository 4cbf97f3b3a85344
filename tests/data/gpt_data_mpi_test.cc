// Multi-rank: local rank 0 builds the GPT sample indices, the other ranks wait and memory-map
// them; every rank then sees identical samples (compared by all-reducing a checksum), and the
// non-builders never wrote an index file.
#include <gtest/gtest.h>

#include <filesystem>

#include "framework/data/indexed_dataset.h"
#include "framework/data/splits.h"
#include "tests/mpi_test_env.h"

namespace braid {
namespace {
namespace fs = std::filesystem;
using testing::g_runtime;

TEST(GptDataMpi, OneBuilderOthersMap) {
  auto world = g_runtime->world();
  fs::path dir = fs::temp_directory_path() / "braid_gpt_data_mpi";
  std::string prefix = (dir / "corpus").string();
  if (world->rank() == 0) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto b = IndexedDatasetBuilder::Create(prefix, TokenDType::kU16);
    ASSERT_TRUE(b.ok());
    for (int d = 0; d < 200; ++d) {
      std::vector<int32_t> t(5 + d % 17, d);
      ASSERT_TRUE((*b)->AddSequence(t.data(), t.size()).ok());
      (*b)->EndDocument();
    }
    ASSERT_TRUE((*b)->Finish().ok());
  }
  ASSERT_TRUE(world->Barrier().ok());
  GptDataSpec spec;
  spec.paths = {prefix, prefix};
  spec.weights = {0.7, 0.3};
  spec.seq_length = 32;
  spec.cache_dir = (dir / "cache").string();
  spec.num_samples[0] = 300;
  spec.num_samples[1] = 20;
  bool builder = g_runtime->local_rank() == 0;
  auto splits = BuildDataSplits(spec, builder, [&] { return world->Barrier(); });
  ASSERT_TRUE(splits.ok()) << splits.status();
  ASSERT_NE(splits->split[0], nullptr);
  ASSERT_NE(splits->split[1], nullptr);
  EXPECT_EQ(splits->split[2], nullptr);
  EXPECT_EQ(splits->split[0]->size(), 300);
  // Checksum of every sample: the same on every rank.
  double sum = 0;
  std::vector<int64_t> buf(33);
  for (int s = 0; s < 2; ++s) {
    for (int64_t i = 0; i < splits->split[s]->size(); ++i) {
      splits->split[s]->Get(i, buf.data());
      for (size_t k = 0; k < buf.size(); ++k) sum += (i + 1.0) * (k + 1.0) * buf[k];
    }
  }
  at::Tensor mine = torch::full({1}, sum, torch::kDouble);
  at::Tensor biggest = mine.clone();
  ASSERT_TRUE(world->AllReduce(biggest, ReduceOp::kMax).ok());
  EXPECT_EQ(mine.item<double>(), biggest.item<double>());
  ASSERT_TRUE(world->Barrier().ok());
  int files = 0;
  for (auto& e : fs::directory_iterator(spec.cache_dir)) files += e.path().extension() == ".idx";
  EXPECT_EQ(files, 4);  // 2 datasets x (train, valid); no temporary leftovers
  ASSERT_TRUE(world->Barrier().ok());
  if (world->rank() == 0) fs::remove_all(dir);
}

}  // namespace
}  // namespace braid
