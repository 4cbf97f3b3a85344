// Helpers of the libFuzzer harnesses: a per-process scratch directory for parsers that read files.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace braid::fuzz {

// A private directory under $TMPDIR (or /tmp), made once per process.
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/braid-fuzz.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    return tmpl;
  }();
  return dir;
}

// Writes `bytes` to ScratchDir()/name and returns the path.
inline std::string WriteScratch(const std::string& name, std::string_view bytes) {
  const std::string path = ScratchDir() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
  return path;
}

// Splits an input at the first occurrence of `marker` (the second part empty without one).
inline std::pair<std::string_view, std::string_view> Split(std::string_view in,
                                                           std::string_view marker) {
  const size_t at = in.find(marker);
  if (at == std::string_view::npos) return {in, {}};
  return {in.substr(0, at), in.substr(at + marker.size())};
}

}  // namespace braid::fuzz
