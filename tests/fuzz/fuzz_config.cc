// libFuzzer harness: the config loader. The input is a recipe YAML, optionally followed by lines
// "--set key=value" after a line "#--set": loaded, bound, validated, its sizes derived and
// printed. Every input must end in a Config or an error, never a crash or a runaway.
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "framework/core/config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto [yaml, sets] = braid::fuzz::Split(in, "\n#--set\n");
  std::vector<std::string> overrides;
  for (absl::string_view line : absl::StrSplit(absl::string_view(sets.data(), sets.size()), '\n')) {
    if (!line.empty()) overrides.emplace_back(line);
  }
  absl::StatusOr<braid::Config> c =
      braid::LoadConfigFromString(std::string(yaml), "fuzz.yaml", overrides);
  if (c.ok()) {
    for (int world : {1, 2, 8}) {
      absl::StatusOr<braid::DerivedSizes> s = braid::DeriveSizes(*c, world, 50257);
      if (s.ok()) (void)braid::ConfigToYaml(braid::ResolvedConfig(*c, *s), &*s);
    }
  }
  return 0;
}
