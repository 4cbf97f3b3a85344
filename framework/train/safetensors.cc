// safetensors reader and writer (see safetensors.h).
#include "framework/train/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/json.h"
#include "framework/core/safetensors_header.h"
#include "framework/core/status.h"
#include "framework/train/dtype.h"

namespace braid {

absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      absl::StrAppend(&header, first ? "" : ",", JsonQuote(k), ":", JsonQuote(v));
      first = false;
    }
    header += "}";
  }
  std::vector<torch::Tensor> data;
  int64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const char* dtype = SafetensorsDtypeName(t.scalar_type());
    if (dtype == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", name, "' has a dtype safetensors cannot hold here"));
    }
    torch::Tensor c = t.to(torch::kCPU).contiguous();  // GPU tensors are copied to the host
    int64_t bytes = c.numel() * c.element_size();
    std::string shape;
    for (int64_t s : c.sizes()) absl::StrAppend(&shape, shape.empty() ? "" : ",", s);
    absl::StrAppend(&header, header.size() > 1 ? "," : "", JsonQuote(name), ":{\"dtype\":\"", dtype,
                    "\",\"shape\":[", shape, "],\"data_offsets\":[", offset, ",", offset + bytes,
                    "]}");
    offset += bytes;
    data.push_back(c);
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return absl::InternalError(absl::StrCat(tmp, ": cannot create"));
  uint64_t n = header.size();
  bool ok = std::fwrite(&n, 8, 1, f) == 1 &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (const torch::Tensor& t : data) {
    size_t bytes = t.numel() * t.element_size();
    ok = ok && std::fwrite(t.data_ptr(), 1, bytes, f) == bytes;
  }
  ok = std::fflush(f) == 0 && ok;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": write failed. HINT: is the disk full?"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path) {
  // Memory-mapped: the tensors are copied straight out of the page cache.
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  struct stat st;
  ::fstat(fd, &st);
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = size > 0 ? ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
  ::close(fd);
  if (map == MAP_FAILED) return absl::InternalError(absl::StrCat(path, ": mmap failed"));
  std::unique_ptr<void, std::function<void(void*)>> unmap(map, [size](void* m) {
    if (m != nullptr) ::munmap(m, size);
  });
  const std::string_view bytes(static_cast<const char*>(map), size);
  BRAID_ASSIGN_OR_RETURN(SafetensorsHeader header, ParseSafetensorsHeader(bytes, path));
  const char* data = bytes.data() + header.data_offset;
  SafetensorsFile out;
  out.metadata = header.metadata;
  for (const SafetensorsEntry& e : header.tensors) {
    std::optional<at::ScalarType> type = DtypeFromSafetensors(e.dtype);
    if (!type) {
      return absl::DataLossError(
          absl::StrCat(path, ": tensor '", e.name, "' has unsupported dtype ", e.dtype));
    }
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(*type));
    std::memcpy(t.data_ptr(), data + e.begin, static_cast<size_t>(e.end - e.begin));
    out.tensors[e.name] = t;
  }
  return out;
}

}  // namespace braid
