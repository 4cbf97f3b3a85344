// Megatron's indexed dataset: `.idx` (index) + `.bin` (token arrays back to back), layout in
// docs/formats.md. IndexedDatasetBuilder streams sequences to `.bin` and writes `.idx` at the end;
// IndexedDataset memory-maps both and validates every size and offset on open, refusing a
// corrupt or truncated pair with the file name and byte offset. A file truncated under a running
// job (a read past its new end raises SIGBUS) ends the process with a message naming the file.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace braid {

// Megatron's dtype codes.
enum class TokenDType : uint8_t {
  kU8 = 1,
  kI8 = 2,
  kI16 = 3,
  kI32 = 4,
  kI64 = 5,
  kF64 = 6,
  kF32 = 7,
  kU16 = 8
};
int TokenDTypeSize(TokenDType t);
const char* TokenDTypeName(TokenDType t);
// u16 when the vocabulary has fewer than 65500 entries, else i32 (Megatron's rule).
TokenDType TokenDTypeForVocab(int64_t vocab_size);

inline constexpr char kIndexMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
inline constexpr uint64_t kIndexVersion = 1;
inline constexpr int64_t kIndexHeaderBytes = 34;

// Writes a dataset to temporary names next to `{prefix}.bin`/`.idx` and renames both into place
// in Finish(): a builder that fails or is destroyed unfinished leaves whatever was there before.
class IndexedDatasetBuilder {
 public:
  // Opens a temporary `.bin` for writing; Finish() writes `.idx` and renames both.
  static absl::StatusOr<std::unique_ptr<IndexedDatasetBuilder>> Create(const std::string& prefix,
                                                                       TokenDType dtype);
  ~IndexedDatasetBuilder();
  // Appends one sequence (a sentence, or a whole document for GPT data). Ids must fit the dtype.
  absl::Status AddSequence(const int32_t* tokens, int64_t count);
  // Closes the current document (the sequences added since the last call).
  void EndDocument();
  // Appends every sequence and document of an existing dataset (merging).
  absl::Status AddDataset(const std::string& prefix);
  // Closes `.bin`, writes `.idx`, and renames both to their final names.
  absl::Status Finish();

  int64_t num_sequences() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t num_documents() const { return static_cast<int64_t>(doc_index_.size()) - 1; }
  int64_t num_tokens() const { return tokens_; }

 private:
  IndexedDatasetBuilder() = default;
  std::string prefix_;
  std::string bin_tmp_, idx_tmp_;  // removed by the destructor unless Finish() renamed them
  TokenDType dtype_ = TokenDType::kU16;
  std::FILE* bin_ = nullptr;
  std::vector<int32_t> lengths_;
  std::vector<int64_t> pointers_;
  std::vector<int64_t> doc_index_{0};
  int64_t bytes_ = 0;
  int64_t tokens_ = 0;
  std::vector<char> buffer_;
};

class IndexedDataset {
 public:
  // Memory-maps `{prefix}.idx` and `{prefix}.bin`, validating the header, the sizes and every
  // offset.
  static absl::StatusOr<std::shared_ptr<IndexedDataset>> Open(const std::string& prefix);
  ~IndexedDataset();

  const std::string& prefix() const { return prefix_; }
  TokenDType dtype() const { return dtype_; }
  int64_t num_sequences() const { return num_sequences_; }
  int64_t num_documents() const { return num_doc_index_ - 1; }
  int64_t num_tokens() const { return num_tokens_; }
  int32_t sequence_length(int64_t i) const { return Load<int32_t>(lengths_, i); }
  // Sequences [document_index(d), document_index(d + 1)) make up document d.
  int64_t document_index(int64_t d) const { return Load<int64_t>(doc_index_, d); }
  // The largest token id in the dataset (scanning `.bin` once; the result is cached in
  // `{prefix}.maxid` when the folder is writable, keyed by the size and time of `.bin`).
  int64_t MaxTokenId() const;
  // Copies tokens [offset, offset + count) of sequence `seq` into `out` as int64.
  void Read(int64_t seq, int64_t offset, int64_t count, int64_t* out) const;
  std::vector<int64_t> Sequence(int64_t seq) const;

 private:
  IndexedDataset() = default;
  std::string prefix_;
  TokenDType dtype_ = TokenDType::kU16;
  // The arrays follow the 34-byte header unaligned: values are copied out, never dereferenced
  // through a cast pointer.
  template <typename T>
  static T Load(const char* array, int64_t i) {
    T v;
    std::memcpy(&v, array + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    return v;
  }
  int64_t pointer(int64_t i) const { return Load<int64_t>(pointers_, i); }
  int64_t num_sequences_ = 0, num_doc_index_ = 0, num_tokens_ = 0;
  const char* lengths_ = nullptr;    // int32 x N
  const char* pointers_ = nullptr;   // int64 x N
  const char* doc_index_ = nullptr;  // int64 x D
  const char* bin_ = nullptr;
  void* idx_map_ = nullptr;
  size_t idx_size_ = 0;
  void* bin_map_ = nullptr;
  size_t bin_size_ = 0;
};

}  // namespace braid
