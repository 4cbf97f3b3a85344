// On-disk index cache (see index_cache.h). Layout, little-endian:
//   "BRAIDIDX" | u32 version=1 | u32 description bytes | description | u32 array count |
//   per array: u32 name bytes, name, u64 element count | zero padding to 8 bytes | int64 data of
//   every array in the same order.
#include "framework/data/index_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/files.h"
#include "framework/core/log.h"
#include "framework/core/random.h"
#include "framework/core/status.h"

namespace braid {
namespace {
constexpr char kMagic[8] = {'B', 'R', 'A', 'I', 'D', 'I', 'D', 'X'};
constexpr uint32_t kVersion = 1;

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}
}  // namespace

std::string HashHex(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return absl::StrFormat("%016x", h);
}

absl::Status IndexCache::Write(const std::string& path, const std::string& description,
                               const std::map<std::string, std::vector<int64_t>>& arrays) {
  std::string header(kMagic, 8);
  Put<uint32_t>(&header, kVersion);
  Put<uint32_t>(&header, static_cast<uint32_t>(description.size()));
  header += description;
  Put<uint32_t>(&header, static_cast<uint32_t>(arrays.size()));
  for (const auto& [name, data] : arrays) {
    Put<uint32_t>(&header, static_cast<uint32_t>(name.size()));
    header += name;
    Put<uint64_t>(&header, data.size());
  }
  header.resize((header.size() + 7) / 8 * 8, '\0');
  // Each writer its own temporary file (host and pid: builders on several nodes may share the
  // folder), renamed into place whole.
  const std::string tmp = TemporarySibling(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return absl::InternalError(
        absl::StrFormat("%s: cannot create: %s. HINT: check that "
                        "data.cache_dir is writable.",
                        tmp, std::strerror(errno)));
  }
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (const auto& [name, data] : arrays) {
    ok = ok && std::fwrite(data.data(), 8, data.size(), f) == data.size();
  }
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrFormat("%s: write failed: %s", path, std::strerror(errno)));
  }
  // Every rank's log file shows whether it built an index (one builder per node: its local rank 0).
  BLOG(INFO, "data") << "built the index " << path;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<IndexCache>> IndexCache::Open(const std::string& path,
                                                             const std::string& description) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return absl::NotFoundError(absl::StrFormat("%s: no index cache", path));
  struct stat st;
  ::fstat(fd, &st);
  std::unique_ptr<IndexCache> c(new IndexCache());
  c->bytes_ = static_cast<size_t>(st.st_size);
  if (c->bytes_ > 0) c->map_ = ::mmap(nullptr, c->bytes_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (c->map_ == MAP_FAILED) {
    c->map_ = nullptr;
    return absl::InternalError(absl::StrFormat("%s: mmap failed", path));
  }
  const char* p = static_cast<const char*>(c->map_);
  size_t pos = 0;
  auto bad = [&](const std::string& what) {
    return absl::DataLossError(
        absl::StrFormat("%s: at byte %d: %s. HINT: delete the file; it is "
                        "rebuilt on the next run.",
                        path, pos, what));
  };
  auto get32 = [&](uint32_t* v) {
    if (pos + 4 > c->bytes_) return false;
    std::memcpy(v, p + pos, 4);
    pos += 4;
    return true;
  };
  if (c->bytes_ < 16 || std::memcmp(p, kMagic, 8) != 0) return bad("bad magic");
  pos = 8;
  uint32_t version, dlen, count;
  get32(&version);
  if (version != kVersion)
    return bad(absl::StrFormat("version %d, expected %d", version, kVersion));
  if (!get32(&dlen) || pos + dlen > c->bytes_) return bad("truncated description");
  if (std::string(p + pos, dlen) != description) {
    return absl::FailedPreconditionError(absl::StrFormat("%s: indexes something else", path));
  }
  pos += dlen;
  if (!get32(&count)) return bad("truncated header");
  std::vector<std::pair<std::string, uint64_t>> entries;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t nlen;
    if (!get32(&nlen) || pos + nlen + 8 > c->bytes_) return bad("truncated array table");
    std::string name(p + pos, nlen);
    pos += nlen;
    uint64_t n;
    std::memcpy(&n, p + pos, 8);
    pos += 8;
    entries.emplace_back(name, n);
  }
  pos = (pos + 7) / 8 * 8;
  for (const auto& [name, n] : entries) {
    if (n > (c->bytes_ - pos) / 8)
      return bad(absl::StrFormat("array '%s' runs past the end", name));
    c->arrays_[name] = {reinterpret_cast<const int64_t*>(p + pos), static_cast<int64_t>(n)};
    pos += n * 8;
  }
  if (pos != c->bytes_) return bad("extra bytes after the arrays");
  return c;
}

IndexCache::~IndexCache() {
  if (map_ != nullptr) ::munmap(map_, bytes_);
}

const int64_t* IndexCache::array(const std::string& name) const {
  auto it = arrays_.find(name);
  return it == arrays_.end() ? nullptr : it->second.first;
}

int64_t IndexCache::size(const std::string& name) const {
  auto it = arrays_.find(name);
  return it == arrays_.end() ? 0 : it->second.second;
}

std::vector<int64_t> EpochOrder(int64_t items, int64_t count, uint64_t seed) {
  std::vector<int64_t> order;
  if (items <= 0) return order;
  order.reserve(count);
  for (int64_t e = 0; static_cast<int64_t>(order.size()) < count; ++e) {
    std::vector<int64_t> perm(items);
    for (int64_t k = 0; k < items; ++k) perm[k] = k;
    Rng::Keyed(seed, 0x65706f6368ULL, e).Shuffle(perm);
    for (int64_t k = 0; k < items && static_cast<int64_t>(order.size()) < count; ++k)
      order.push_back(perm[k]);
  }
  return order;
}

absl::StatusOr<std::unique_ptr<IndexCache>> IndexCache::OpenOrBuild(
    const std::string& path, const std::string& description, bool may_build,
    const std::function<absl::StatusOr<Arrays>()>& build) {
  auto cache = Open(path, description);
  if (cache.ok() || !may_build) return cache;
  BRAID_ASSIGN_OR_RETURN(Arrays arrays, build());
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  BRAID_RETURN_IF_ERROR(Write(path, description, arrays));
  return Open(path, description);
}

std::string IndexCachePath(const std::string& data_prefix, const std::string& cache_dir,
                           const std::string& kind, const std::string& split,
                           const std::string& description) {
  namespace fs = std::filesystem;
  std::string dir = cache_dir.empty() ? fs::path(data_prefix).parent_path().string() : cache_dir;
  if (dir.empty()) dir = ".";
  return absl::StrCat(dir, "/", fs::path(data_prefix).filename().string(), "_", kind, "_", split,
                      "_", HashHex(description), ".idx");
}

}  // namespace braid
