// Megatron's indexed dataset: `.idx` (index) + `.bin` (token arrays back to back), layout in
// docs/formats.md. IndexedDatasetBuilder streams sequences to `.bin` and writes `.idx` at the end;
// IndexedDataset memory-maps both and validates every size and offset on open, refusing a
// corrupt or truncated pair with the file name and byte offset.
#pragma once
#include <cstdint>
#include <cstdio>
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

class IndexedDatasetBuilder {
 public:
  // Opens `{prefix}.bin` for writing; `.idx` is written by Finish().
  static absl::StatusOr<std::unique_ptr<IndexedDatasetBuilder>> Create(const std::string& prefix,
                                                                       TokenDType dtype);
  ~IndexedDatasetBuilder();
  // Appends one sequence (a sentence, or a whole document for GPT data). Ids must fit the dtype.
  absl::Status AddSequence(const int32_t* tokens, int64_t count);
  // Closes the current document (the sequences added since the last call).
  void EndDocument();
  // Appends every sequence and document of an existing dataset (merging).
  absl::Status AddDataset(const std::string& prefix);
  // Writes `.idx` (to a temporary name, then renamed) and closes `.bin`.
  absl::Status Finish();

  int64_t num_sequences() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t num_documents() const { return static_cast<int64_t>(doc_index_.size()) - 1; }
  int64_t num_tokens() const { return tokens_; }

 private:
  IndexedDatasetBuilder() = default;
  std::string prefix_;
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
  int32_t sequence_length(int64_t i) const { return lengths_[i]; }
  // Sequences [document_index(d), document_index(d + 1)) make up document d.
  int64_t document_index(int64_t d) const { return doc_index_[d]; }
  // Copies tokens [offset, offset + count) of sequence `seq` into `out` as int64.
  void Read(int64_t seq, int64_t offset, int64_t count, int64_t* out) const;
  std::vector<int64_t> Sequence(int64_t seq) const;

 private:
  IndexedDataset() = default;
  std::string prefix_;
  TokenDType dtype_ = TokenDType::kU16;
  int64_t num_sequences_ = 0, num_doc_index_ = 0, num_tokens_ = 0;
  const int32_t* lengths_ = nullptr;
  const int64_t* pointers_ = nullptr;
  const int64_t* doc_index_ = nullptr;
  const char* bin_ = nullptr;
  void* idx_map_ = nullptr;
  size_t idx_size_ = 0;
  void* bin_map_ = nullptr;
  size_t bin_size_ = 0;
};

}  // namespace braid
