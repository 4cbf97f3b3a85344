// Megatron indexed dataset writer and memory-mapped reader (see indexed_dataset.h).
#include "framework/data/indexed_dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/files.h"
#include "framework/core/status.h"

namespace braid {

int TokenDTypeSize(TokenDType t) {
  switch (t) {
    case TokenDType::kU8:
    case TokenDType::kI8:
      return 1;
    case TokenDType::kI16:
    case TokenDType::kU16:
      return 2;
    case TokenDType::kI32:
    case TokenDType::kF32:
      return 4;
    case TokenDType::kI64:
    case TokenDType::kF64:
      return 8;
  }
  return 0;
}

const char* TokenDTypeName(TokenDType t) {
  switch (t) {
    case TokenDType::kU8:
      return "uint8";
    case TokenDType::kI8:
      return "int8";
    case TokenDType::kI16:
      return "int16";
    case TokenDType::kI32:
      return "int32";
    case TokenDType::kI64:
      return "int64";
    case TokenDType::kF64:
      return "float64";
    case TokenDType::kF32:
      return "float32";
    case TokenDType::kU16:
      return "uint16";
  }
  return "?";
}

TokenDType TokenDTypeForVocab(int64_t vocab_size) {
  return vocab_size < 65500 ? TokenDType::kU16 : TokenDType::kI32;
}

namespace {

absl::Status WriteAll(std::FILE* f, const void* data, size_t bytes, const std::string& path) {
  if (bytes > 0 && std::fwrite(data, 1, bytes, f) != bytes) {
    return absl::InternalError(absl::StrFormat("%s: write failed: %s. HINT: is the disk full?",
                                               path, std::strerror(errno)));
  }
  return absl::OkStatus();
}

// ---- memory-mapped files and SIGBUS ----
// A read from a mapped page past the end of a file that was truncated after it was mapped raises
// SIGBUS. The handler looks the address up in a fixed table of the mapped dataset files
// (async-signal-safe: atomics and plain arrays, no allocation) and ends the process with a line
// naming the file; addresses it does not know get the default action.
struct MappedRegion {
  std::atomic<const char*> begin{nullptr};
  size_t size = 0;
  char path[480] = {};
};
constexpr int kMaxRegions = 512;
MappedRegion g_regions[kMaxRegions];
std::mutex g_regions_mu;

void WriteStderr(const char* s) {
  ssize_t unused = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)unused;
}

void OnSigbus(int sig, siginfo_t* info, void*) {
  const char* addr = static_cast<const char*>(info->si_addr);
  for (const MappedRegion& r : g_regions) {
    const char* b = r.begin.load();
    if (b != nullptr && addr >= b && addr < b + r.size) {
      WriteStderr("\nerror: ");
      WriteStderr(r.path);
      WriteStderr(
          ": read past the end of the file: it was truncated or replaced while this job "
          "was reading it. HINT: never rewrite a dataset under a running job; rebuild "
          "it and resume from the last checkpoint.\n");
      ::_exit(1);
    }
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void RegisterRegion(const void* data, size_t size, const std::string& path) {
  if (data == nullptr) return;
  std::lock_guard<std::mutex> lock(g_regions_mu);
  static bool installed = [] {
    struct sigaction sa {};
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return ::sigaction(SIGBUS, &sa, nullptr) == 0;
  }();
  (void)installed;
  for (MappedRegion& r : g_regions) {
    if (r.begin.load() != nullptr) continue;
    r.size = size;
    std::snprintf(r.path, sizeof(r.path), "%s", path.c_str());
    r.begin.store(static_cast<const char*>(data));
    return;
  }
}

void UnregisterRegion(const void* data) {
  if (data == nullptr) return;
  std::lock_guard<std::mutex> lock(g_regions_mu);
  for (MappedRegion& r : g_regions) {
    if (r.begin.load() == data) r.begin.store(nullptr);
  }
}

struct Mapping {
  void* data = nullptr;
  size_t size = 0;
};

absl::StatusOr<Mapping> MapFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrFormat("%s: cannot open: %s", path, std::strerror(errno)));
  }
  struct stat st;
  ::fstat(fd, &st);
  Mapping m;
  m.size = static_cast<size_t>(st.st_size);
  if (m.size > 0) {
    m.data = ::mmap(nullptr, m.size, PROT_READ, MAP_SHARED, fd, 0);
    if (m.data == MAP_FAILED) {
      ::close(fd);
      return absl::InternalError(
          absl::StrFormat("%s: mmap failed: %s", path, std::strerror(errno)));
    }
  }
  ::close(fd);
  RegisterRegion(m.data, m.size, path);
  return m;
}

}  // namespace

// ---- builder ----

absl::StatusOr<std::unique_ptr<IndexedDatasetBuilder>> IndexedDatasetBuilder::Create(
    const std::string& prefix, TokenDType dtype) {
  std::unique_ptr<IndexedDatasetBuilder> b(new IndexedDatasetBuilder());
  b->prefix_ = prefix;
  b->dtype_ = dtype;
  const std::string suffix = absl::StrFormat(".tmp.%d", ::getpid());
  b->bin_tmp_ = prefix + ".bin" + suffix;
  b->idx_tmp_ = prefix + ".idx" + suffix;
  b->bin_ = std::fopen(b->bin_tmp_.c_str(), "wb");
  if (b->bin_ == nullptr) {
    return absl::InternalError(
        absl::StrFormat("%s: cannot create: %s. HINT: does the folder exist and is it writable?",
                        b->bin_tmp_, std::strerror(errno)));
  }
  return b;
}

IndexedDatasetBuilder::~IndexedDatasetBuilder() {
  if (bin_ != nullptr) std::fclose(bin_);
  if (!bin_tmp_.empty()) std::remove(bin_tmp_.c_str());  // unfinished: the old files stay
  if (!idx_tmp_.empty()) std::remove(idx_tmp_.c_str());
}

absl::Status IndexedDatasetBuilder::AddSequence(const int32_t* tokens, int64_t count) {
  const int size = TokenDTypeSize(dtype_);
  buffer_.resize(count * size);
  for (int64_t i = 0; i < count; ++i) {
    int32_t t = tokens[i];
    if (dtype_ == TokenDType::kU16) {
      if (t < 0 || t > 65535) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: token id %d does not fit uint16. HINT: vocabularies of 65500+ ids use int32.",
            prefix_, t));
      }
      uint16_t v = static_cast<uint16_t>(t);
      std::memcpy(&buffer_[i * 2], &v, 2);
    } else if (dtype_ == TokenDType::kI32) {
      std::memcpy(&buffer_[i * 4], &t, 4);
    } else if (dtype_ == TokenDType::kI64) {
      int64_t v = t;
      std::memcpy(&buffer_[i * 8], &v, 8);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write tokens as ", TokenDTypeName(dtype_)));
    }
  }
  BRAID_RETURN_IF_ERROR(WriteAll(bin_, buffer_.data(), buffer_.size(), bin_tmp_));
  lengths_.push_back(static_cast<int32_t>(count));
  pointers_.push_back(bytes_);
  bytes_ += count * size;
  tokens_ += count;
  return absl::OkStatus();
}

void IndexedDatasetBuilder::EndDocument() { doc_index_.push_back(num_sequences()); }

absl::Status IndexedDatasetBuilder::AddDataset(const std::string& prefix) {
  BRAID_ASSIGN_OR_RETURN(std::shared_ptr<IndexedDataset> other, IndexedDataset::Open(prefix));
  if (other->dtype() != dtype_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: token dtype %s differs from %s of the output. HINT: merge datasets made with the "
        "same tokenizer.",
        prefix, TokenDTypeName(other->dtype()), TokenDTypeName(dtype_)));
  }
  std::vector<int64_t> tokens;
  std::vector<int32_t> narrow;
  for (int64_t d = 0; d < other->num_documents(); ++d) {
    for (int64_t s = other->document_index(d); s < other->document_index(d + 1); ++s) {
      tokens = other->Sequence(s);
      narrow.assign(tokens.begin(), tokens.end());
      BRAID_RETURN_IF_ERROR(AddSequence(narrow.data(), static_cast<int64_t>(narrow.size())));
    }
    EndDocument();
  }
  return absl::OkStatus();
}

absl::Status IndexedDatasetBuilder::Finish() {
  if (std::fclose(bin_) != 0) {
    bin_ = nullptr;
    return absl::InternalError(
        absl::StrFormat("%s: close failed: %s", bin_tmp_, std::strerror(errno)));
  }
  bin_ = nullptr;
  if (doc_index_.back() != num_sequences()) EndDocument();  // close a trailing open document
  std::FILE* f = std::fopen(idx_tmp_.c_str(), "wb");
  if (f == nullptr) {
    return absl::InternalError(
        absl::StrFormat("%s: cannot create: %s", idx_tmp_, std::strerror(errno)));
  }
  uint64_t version = kIndexVersion;
  uint8_t code = static_cast<uint8_t>(dtype_);
  uint64_t n = lengths_.size(), d = doc_index_.size();
  absl::Status s = WriteAll(f, kIndexMagic, 9, idx_tmp_);
  if (s.ok()) s = WriteAll(f, &version, 8, idx_tmp_);
  if (s.ok()) s = WriteAll(f, &code, 1, idx_tmp_);
  if (s.ok()) s = WriteAll(f, &n, 8, idx_tmp_);
  if (s.ok()) s = WriteAll(f, &d, 8, idx_tmp_);
  if (s.ok()) s = WriteAll(f, lengths_.data(), 4 * n, idx_tmp_);
  if (s.ok()) s = WriteAll(f, pointers_.data(), 8 * n, idx_tmp_);
  if (s.ok()) s = WriteAll(f, doc_index_.data(), 8 * d, idx_tmp_);
  if (std::fclose(f) != 0 && s.ok()) s = absl::InternalError(idx_tmp_ + ": close failed");
  BRAID_RETURN_IF_ERROR(s);
  // Both complete: rename them into place (the .bin first; a reader checks they agree).
  for (const auto& [tmp, final_path] :
       {std::pair<std::string, std::string>{bin_tmp_, prefix_ + ".bin"},
        {idx_tmp_, prefix_ + ".idx"}}) {
    if (std::rename(tmp.c_str(), final_path.c_str()) != 0) {
      return absl::InternalError(
          absl::StrFormat("rename %s -> %s failed: %s", tmp, final_path, std::strerror(errno)));
    }
  }
  bin_tmp_.clear();
  idx_tmp_.clear();
  return absl::OkStatus();
}

// ---- reader ----

absl::StatusOr<std::shared_ptr<IndexedDataset>> IndexedDataset::Open(const std::string& prefix) {
  std::shared_ptr<IndexedDataset> ds(new IndexedDataset());
  ds->prefix_ = prefix;
  const std::string idx = prefix + ".idx", bin = prefix + ".bin";
  const std::string hint =
      " HINT: the file is corrupt, truncated or not a Megatron indexed dataset; rebuild it with "
      "preprocess_data.";
  BRAID_ASSIGN_OR_RETURN(Mapping im, MapFile(idx));
  ds->idx_map_ = im.data;
  ds->idx_size_ = im.size;
  auto bad = [&](int64_t offset, const std::string& what) {
    return absl::DataLossError(absl::StrFormat("%s: at byte %d: %s.%s", idx, offset, what, hint));
  };
  const char* p = static_cast<const char*>(im.data);
  if (im.size < static_cast<size_t>(kIndexHeaderBytes)) {
    return bad(im.size, absl::StrFormat("file ends after %d bytes, inside the %d-byte header",
                                        im.size, kIndexHeaderBytes));
  }
  if (std::memcmp(p, kIndexMagic, 9) != 0) return bad(0, "bad magic (expected MMIDIDX\\0\\0)");
  uint64_t version, n, d;
  std::memcpy(&version, p + 9, 8);
  if (version != kIndexVersion) {
    return bad(9,
               absl::StrFormat("version %d, this reader knows version %d", version, kIndexVersion));
  }
  uint8_t code = static_cast<uint8_t>(p[17]);
  if (code < 1 || code > 8) return bad(17, absl::StrFormat("unknown dtype code %d", code));
  ds->dtype_ = static_cast<TokenDType>(code);
  if (code == 6 || code == 7) {
    return bad(17, absl::StrFormat("dtype %s is not a token dtype", TokenDTypeName(ds->dtype_)));
  }
  std::memcpy(&n, p + 18, 8);
  std::memcpy(&d, p + 26, 8);
  // The arrays must fill the file exactly (modes, one byte per sequence, may follow).
  unsigned __int128 expect = kIndexHeaderBytes + static_cast<unsigned __int128>(n) * 12 +
                             static_cast<unsigned __int128>(d) * 8;
  if (expect != im.size && expect + n != im.size) {
    return bad(18, absl::StrFormat("header says %d sequences and %d document indices (%s bytes "
                                   "in all) but the file has %d bytes",
                                   n, d, absl::StrCat(static_cast<uint64_t>(expect)), im.size));
  }
  if (d < 1) return bad(26, "no document indices (there must be at least one, 0)");
  ds->num_sequences_ = static_cast<int64_t>(n);
  ds->num_doc_index_ = static_cast<int64_t>(d);
  ds->lengths_ = p + kIndexHeaderBytes;
  ds->pointers_ = p + kIndexHeaderBytes + 4 * n;
  ds->doc_index_ = p + kIndexHeaderBytes + 12 * n;

  BRAID_ASSIGN_OR_RETURN(Mapping bm, MapFile(bin));
  ds->bin_map_ = bm.data;
  ds->bin_size_ = bm.size;
  ds->bin_ = static_cast<const char*>(bm.data);
  const int size = TokenDTypeSize(ds->dtype_);
  int64_t expected_pointer = 0;
  for (int64_t i = 0; i < ds->num_sequences_; ++i) {
    int64_t len = ds->sequence_length(i), ptr = ds->pointer(i);
    if (len < 0)
      return bad(kIndexHeaderBytes + 4 * i,
                 absl::StrFormat("sequence %d has negative length %d", i, len));
    if (ptr != expected_pointer) {
      return bad(kIndexHeaderBytes + 4 * n + 8 * i,
                 absl::StrFormat("sequence %d starts at .bin byte %d, expected %d (after the "
                                 "sequences before it)",
                                 i, ptr, expected_pointer));
    }
    expected_pointer += len * size;
    ds->num_tokens_ += len;
  }
  if (static_cast<size_t>(expected_pointer) != bm.size) {
    return absl::DataLossError(absl::StrFormat(
        "%s: has %d bytes but %s describes %d (%d tokens of %s); the %s.%s", bin, bm.size, idx,
        expected_pointer, ds->num_tokens_, TokenDTypeName(ds->dtype_),
        static_cast<size_t>(expected_pointer) > bm.size ? "data file is truncated"
                                                        : "data file has extra bytes",
        hint));
  }
  int64_t doc_off = kIndexHeaderBytes + 12 * n;
  auto doc = [&](int64_t k) { return ds->document_index(k); };
  if (doc(0) != 0) return bad(doc_off, "the first document index is not 0");
  for (int64_t k = 1; k < ds->num_doc_index_; ++k) {
    if (doc(k) < doc(k - 1) || doc(k) > ds->num_sequences_) {
      return bad(doc_off + 8 * k, absl::StrFormat("document index %d is %d: not in [%d, %d]", k,
                                                  doc(k), doc(k - 1), ds->num_sequences_));
    }
  }
  if (doc(ds->num_doc_index_ - 1) != ds->num_sequences_) {
    return bad(doc_off + 8 * (ds->num_doc_index_ - 1),
               absl::StrFormat("the last document index is %d, expected the sequence count %d",
                               doc(ds->num_doc_index_ - 1), ds->num_sequences_));
  }
  return ds;
}

IndexedDataset::~IndexedDataset() {
  UnregisterRegion(idx_map_);
  UnregisterRegion(bin_map_);
  if (idx_map_ != nullptr) ::munmap(idx_map_, idx_size_);
  if (bin_map_ != nullptr) ::munmap(bin_map_, bin_size_);
}

int64_t IndexedDataset::MaxTokenId() const {
  // The cache: "<.bin bytes> <.bin mtime in ns> <max id>".
  const std::string cache = prefix_ + ".maxid";
  struct stat st;
  const bool have_stat = ::stat((prefix_ + ".bin").c_str(), &st) == 0;
  const int64_t mtime = have_stat ? st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec : -1;
  if (have_stat) {
    if (std::FILE* f = std::fopen(cache.c_str(), "r")) {
      long long bytes = -1, when = -1, max = -1;
      const bool ok = std::fscanf(f, "%lld %lld %lld", &bytes, &when, &max) == 3;
      std::fclose(f);
      if (ok && bytes == st.st_size && when == mtime && max >= -1) return max;
    }
  }
  int64_t max = -1;
  std::vector<int64_t> buf;
  for (int64_t i = 0; i < num_sequences_; ++i) {
    buf.resize(sequence_length(i));
    Read(i, 0, sequence_length(i), buf.data());
    for (int64_t t : buf) max = std::max(max, t);
  }
  if (have_stat) {  // best effort: a read-only data folder just means scanning again next time
    const std::string tmp = TemporarySibling(cache);
    if (std::FILE* f = std::fopen(tmp.c_str(), "w")) {
      const bool ok = std::fprintf(f, "%lld %lld %lld\n", static_cast<long long>(st.st_size),
                                   static_cast<long long>(mtime), static_cast<long long>(max)) > 0;
      if (std::fclose(f) == 0 && ok) std::rename(tmp.c_str(), cache.c_str());
      std::remove(tmp.c_str());
    }
  }
  return max;
}

void IndexedDataset::Read(int64_t seq, int64_t offset, int64_t count, int64_t* out) const {
  const char* base = bin_ + pointer(seq);
  switch (dtype_) {
    case TokenDType::kU16: {
      const auto* t = reinterpret_cast<const uint16_t*>(base) + offset;
      for (int64_t i = 0; i < count; ++i) out[i] = t[i];
      break;
    }
    case TokenDType::kI32: {
      const auto* t = reinterpret_cast<const int32_t*>(base) + offset;
      for (int64_t i = 0; i < count; ++i) out[i] = t[i];
      break;
    }
    case TokenDType::kI64: {
      std::memcpy(out, reinterpret_cast<const int64_t*>(base) + offset, count * 8);
      break;
    }
    case TokenDType::kU8: {
      const auto* t = reinterpret_cast<const uint8_t*>(base) + offset;
      for (int64_t i = 0; i < count; ++i) out[i] = t[i];
      break;
    }
    case TokenDType::kI8: {
      const auto* t = reinterpret_cast<const int8_t*>(base) + offset;
      for (int64_t i = 0; i < count; ++i) out[i] = t[i];
      break;
    }
    case TokenDType::kI16: {
      const auto* t = reinterpret_cast<const int16_t*>(base) + offset;
      for (int64_t i = 0; i < count; ++i) out[i] = t[i];
      break;
    }
    default:
      break;
  }
}

std::vector<int64_t> IndexedDataset::Sequence(int64_t seq) const {
  std::vector<int64_t> out(sequence_length(seq));
  Read(seq, 0, sequence_length(seq), out.data());
  return out;
}

}  // namespace braid
