// safetensors header parsing (see safetensors_header.h).
#include "framework/core/safetensors_header.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/core/json.h"

namespace braid {

int SafetensorsElementSize(std::string_view dtype) {
  static const std::pair<const char*, int> kSizes[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  for (const auto& [name, size] : kSizes)
    if (dtype == name) return size;
  return 0;
}

absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view bytes,
                                                         const std::string& path) {
  auto bad = [&](const std::string& what) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", what, ". HINT: the file is truncated or not safetensors."));
  };
  if (bytes.size() < 8) return bad("shorter than the 8-byte header length");
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  if (n > bytes.size() - 8) return bad(absl::StrFormat("header length %d past the end", n));
  absl::StatusOr<JsonValue> header = ParseJson(bytes.substr(8, n));
  if (!header.ok()) return bad(std::string(header.status().message()));
  if (header->kind != JsonValue::Kind::kObject) return bad("the header is not a JSON object");
  SafetensorsHeader out;
  out.data_offset = static_cast<int64_t>(8 + n);
  const int64_t data_size = static_cast<int64_t>(bytes.size() - 8 - n);
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (const auto& [name, entry] : header->members) {
    if (name == "__metadata__") {
      if (entry.kind != JsonValue::Kind::kObject) return bad("__metadata__ is not an object");
      for (const auto& [k, v] : entry.members) out.metadata[k] = v.text;
      continue;
    }
    const JsonValue* dtype = entry.Find("dtype");
    const JsonValue* shape = entry.Find("shape");
    const JsonValue* offs = entry.Find("data_offsets");
    if (dtype == nullptr || shape == nullptr || offs == nullptr ||
        dtype->kind != JsonValue::Kind::kString || shape->kind != JsonValue::Kind::kArray ||
        offs->kind != JsonValue::Kind::kArray || offs->items.size() != 2) {
      return bad(absl::StrCat("tensor '", name, "' lacks dtype, shape or data_offsets"));
    }
    SafetensorsEntry e;
    e.name = name;
    e.dtype = dtype->text;
    const int elem = SafetensorsElementSize(e.dtype);
    if (elem == 0) return bad(absl::StrCat("tensor '", name, "' has unsupported dtype ", e.dtype));
    // The byte size, refusing negative dimensions and overflow on the way.
    int64_t need = elem;
    for (const JsonValue& d : shape->items) {
      if (!d.IsInteger() || d.AsInt() < 0 || __builtin_mul_overflow(need, d.AsInt(), &need)) {
        return bad(absl::StrCat("tensor '", name, "' has an impossible shape [", d.text,
                                " ...]: dimensions must be non-negative and the size must fit"));
      }
      e.shape.push_back(d.AsInt());
    }
    if (!offs->items[0].IsInteger() || !offs->items[1].IsInteger()) {
      return bad(absl::StrCat("tensor '", name, "': data_offsets are not integers"));
    }
    e.begin = offs->items[0].AsInt();
    e.end = offs->items[1].AsInt();
    int64_t span = 0;
    if (e.begin < 0 || e.end < e.begin || e.end > data_size ||
        __builtin_sub_overflow(e.end, e.begin, &span) || span != need) {
      std::vector<std::string> dims;
      for (int64_t d : e.shape) dims.push_back(absl::StrCat(d));
      return bad(absl::StrFormat(
          "tensor '%s': bytes [%d, %d) do not hold %s of shape [%s] in a %d-byte data section",
          name, e.begin, e.end, e.dtype, absl::StrJoin(dims, ", "), data_size));
    }
    ranges.emplace_back(e.begin, e.end);
    out.tensors.push_back(std::move(e));
  }
  std::sort(ranges.begin(), ranges.end());
  int64_t expect = 0;
  for (auto [b, e] : ranges) {
    if (b != expect)
      return bad(absl::StrFormat("data byte %d: tensors overlap or leave a hole", b));
    expect = e;
  }
  if (expect != data_size) {
    return bad(absl::StrFormat("%d bytes after the last tensor", data_size - expect));
  }
  return out;
}

}  // namespace braid
