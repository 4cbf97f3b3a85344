// The indexed-dataset reader refuses every way of breaking a .bin/.idx pair, naming the file and
// the byte offset; a good pair round-trips through the builder.
#include "framework/data/indexed_dataset.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace braid {
namespace {
namespace fs = std::filesystem;

class IndexedDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("braid_idx_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    prefix_ = (dir_ / "ds").string();
    auto b = IndexedDatasetBuilder::Create(prefix_, TokenDType::kU16);
    ASSERT_TRUE(b.ok()) << b.status();
    // 3 documents: {[1,2,3]}, {[4], [5,6]}, {[7,8,9,10]}
    std::vector<std::vector<std::vector<int32_t>>> docs = {
        {{1, 2, 3}}, {{4}, {5, 6}}, {{7, 8, 9, 10}}};
    for (const auto& d : docs) {
      for (const auto& s : d) ASSERT_TRUE((*b)->AddSequence(s.data(), s.size()).ok());
      (*b)->EndDocument();
    }
    ASSERT_TRUE((*b)->Finish().ok());
    pristine_idx_ = Read(prefix_ + ".idx");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void Write(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  // Patches `bytes` into the .idx at `offset`, opens, and returns the error message.
  std::string OpenError() {
    auto ds = IndexedDataset::Open(prefix_);
    EXPECT_FALSE(ds.ok());
    return ds.ok() ? "" : std::string(ds.status().message());
  }
  std::string PatchIdx(size_t offset, const std::string& bytes) {
    std::string idx = pristine_idx_;
    idx.replace(offset, bytes.size(), bytes);
    Write(prefix_ + ".idx", idx);
    return OpenError();
  }
  template <typename T>
  static std::string Bytes(T v) {
    return std::string(reinterpret_cast<const char*>(&v), sizeof(v));
  }

  fs::path dir_;
  std::string prefix_;
  std::string pristine_idx_;
};

TEST_F(IndexedDatasetTest, RoundTrip) {
  auto ds = IndexedDataset::Open(prefix_);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->num_documents(), 3);
  EXPECT_EQ((*ds)->num_sequences(), 4);
  EXPECT_EQ((*ds)->num_tokens(), 10);
  EXPECT_EQ((*ds)->document_index(2), 3);
  EXPECT_EQ((*ds)->Sequence(2), (std::vector<int64_t>{5, 6}));
  std::string idx = Read(prefix_ + ".idx");
  EXPECT_EQ(idx.substr(0, 9), std::string("MMIDIDX\0\0", 9));
  EXPECT_EQ(idx[17], 8);  // uint16
  EXPECT_EQ(idx.size(), 34u + 12 * 4 + 8 * 4);
  EXPECT_EQ(Read(prefix_ + ".bin").size(), 20u);
}

TEST_F(IndexedDatasetTest, BadMagic) {
  std::string msg = PatchIdx(0, "XXIDIDX");
  EXPECT_NE(msg.find(prefix_ + ".idx: at byte 0: bad magic"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos);
}

TEST_F(IndexedDatasetTest, BadVersion) {
  std::string msg = PatchIdx(9, Bytes<uint64_t>(2));
  EXPECT_NE(msg.find("at byte 9: version 2"), std::string::npos) << msg;
}

TEST_F(IndexedDatasetTest, BadDtype) {
  std::string msg = PatchIdx(17, std::string(1, '\x09'));
  EXPECT_NE(msg.find("at byte 17: unknown dtype code 9"), std::string::npos) << msg;
  msg = PatchIdx(17, std::string(1, '\x07'));
  EXPECT_NE(msg.find("float32 is not a token dtype"), std::string::npos) << msg;
}

TEST_F(IndexedDatasetTest, SizesThatDoNotAddUp) {
  std::string msg = PatchIdx(18, Bytes<uint64_t>(5));
  EXPECT_NE(msg.find("at byte 18: header says 5 sequences"), std::string::npos) << msg;
}

TEST_F(IndexedDatasetTest, TruncatedIndex) {
  std::string idx = Read(prefix_ + ".idx");
  Write(prefix_ + ".idx", idx.substr(0, idx.size() - 3));
  EXPECT_NE(OpenError().find("but the file has"), std::string::npos);
  Write(prefix_ + ".idx", idx.substr(0, 20));
  std::string msg = OpenError();
  EXPECT_NE(msg.find("inside the 34-byte header"), std::string::npos) << msg;
}

TEST_F(IndexedDatasetTest, TruncatedData) {
  std::string bin = Read(prefix_ + ".bin");
  Write(prefix_ + ".bin", bin.substr(0, bin.size() - 4));
  std::string msg = OpenError();
  EXPECT_NE(msg.find(prefix_ + ".bin: has 16 bytes but"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(IndexedDatasetTest, OffsetPastTheEnd) {
  // Pointer of sequence 3 (the last) moved past the end of .bin.
  std::string msg = PatchIdx(34 + 4 * 4 + 8 * 3, Bytes<int64_t>(4096));
  EXPECT_NE(msg.find("at byte 74: sequence 3 starts at .bin byte 4096"), std::string::npos) << msg;
}

TEST_F(IndexedDatasetTest, DocumentIndicesOutOfOrder) {
  size_t docs = 34 + 12 * 4;
  std::string msg = PatchIdx(docs + 8 * 2, Bytes<int64_t>(0));  // [0, 1, 0, 4]
  EXPECT_NE(msg.find("document index 2 is 0"), std::string::npos) << msg;
  msg = PatchIdx(docs + 8 * 3, Bytes<int64_t>(9));
  EXPECT_NE(msg.find("document index 3 is 9"), std::string::npos) << msg;
}

TEST_F(IndexedDatasetTest, MissingFiles) {
  fs::remove(prefix_ + ".bin");
  std::string msg = OpenError();
  EXPECT_NE(msg.find(prefix_ + ".bin: cannot open"), std::string::npos) << msg;
}

TEST_F(IndexedDatasetTest, TokenTooLargeForUint16) {
  auto b = IndexedDatasetBuilder::Create((dir_ / "big").string(), TokenDType::kU16);
  ASSERT_TRUE(b.ok());
  int32_t t = 70000;
  absl::Status s = (*b)->AddSequence(&t, 1);
  EXPECT_NE(s.message().find("does not fit uint16"), std::string::npos) << s;
}

}  // namespace
}  // namespace braid
