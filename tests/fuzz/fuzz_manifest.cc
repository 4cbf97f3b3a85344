// libFuzzer harness: the checkpoint manifest (protobuf) and its checks.
#include <string_view>

#include "framework/proto/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)braid::ParseManifest(std::string_view(reinterpret_cast<const char*>(data), size),
                             "fuzz/manifest.pb");
  return 0;
}
