// libFuzzer harness: the safetensors header parser (shapes, dtypes, byte ranges).
#include <string_view>

#include "framework/core/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)braid::ParseSafetensorsHeader(std::string_view(reinterpret_cast<const char*>(data), size),
                                      "fuzz.safetensors");
  return 0;
}
