// The tensor dtypes braid reads and writes, and the name each place gives them: safetensors
// ("BF16"), command-line flags ("bf16"), Hugging Face config.json's torch_dtype ("bfloat16").
// One table (dtype.cc) that every file format and tool asks.
#pragma once
#include <torch/torch.h>

#include <optional>
#include <string_view>

#include "absl/status/statusor.h"

namespace braid {

// "F32", "BF16", ...; nullptr when safetensors cannot hold the dtype.
const char* SafetensorsDtypeName(at::ScalarType t);
std::optional<at::ScalarType> DtypeFromSafetensors(std::string_view name);
// A floating-point dtype named on a command line: fp32 | bf16 | fp16.
absl::StatusOr<at::ScalarType> DtypeFromFlag(std::string_view flag);
const char* FlagDtypeName(at::ScalarType t);  // "fp32", ...; "?" for others
// Hugging Face's torch_dtype: "float32", "bfloat16", "float16"; "?" for others.
const char* TorchDtypeName(at::ScalarType t);

}  // namespace braid
