// libFuzzer harness: the JSON parser (JSON Lines corpora, vocab.json, safetensors headers,
// Hugging Face config.json), and quoting a string back.
#include <string_view>

#include "framework/core/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<braid::JsonValue> v = braid::ParseJson(in);
  if (v.ok()) {
    for (const auto& [k, m] : v->members) (void)braid::JsonQuote(k), (void)m.IsInteger();
    for (const auto& item : v->items) (void)item.AsInt();
  }
  (void)braid::JsonQuote(in);
  return 0;
}
