// The dtype name table (see dtype.h).
#include "framework/train/dtype.h"

#include "absl/strings/str_cat.h"

namespace braid {
namespace {

struct DtypeNames {
  at::ScalarType type;
  const char* safetensors;
  const char* flag;   // "" when not a training dtype
  const char* torch;  // Hugging Face torch_dtype
};
constexpr DtypeNames kDtypes[] = {
    {at::kFloat, "F32", "fp32", "float32"}, {at::kBFloat16, "BF16", "bf16", "bfloat16"},
    {at::kHalf, "F16", "fp16", "float16"},  {at::kDouble, "F64", "", "float64"},
    {at::kLong, "I64", "", "int64"},        {at::kInt, "I32", "", "int32"},
    {at::kShort, "I16", "", "int16"},       {at::kChar, "I8", "", "int8"},
    {at::kByte, "U8", "", "uint8"},         {at::kBool, "BOOL", "", "bool"},
};

const DtypeNames* Find(at::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return &d;
  return nullptr;
}

}  // namespace

const char* SafetensorsDtypeName(at::ScalarType t) {
  const DtypeNames* d = Find(t);
  return d == nullptr ? nullptr : d->safetensors;
}

std::optional<at::ScalarType> DtypeFromSafetensors(std::string_view name) {
  for (const auto& d : kDtypes)
    if (name == d.safetensors) return d.type;
  return std::nullopt;
}

absl::StatusOr<at::ScalarType> DtypeFromFlag(std::string_view flag) {
  for (const auto& d : kDtypes)
    if (*d.flag != '\0' && flag == d.flag) return d.type;
  return absl::InvalidArgumentError(absl::StrCat(
      "--dtype: '", absl::string_view(flag.data(), flag.size()), "' is not fp32, bf16 or fp16"));
}

const char* FlagDtypeName(at::ScalarType t) {
  const DtypeNames* d = Find(t);
  return d == nullptr || *d->flag == '\0' ? "?" : d->flag;
}

const char* TorchDtypeName(at::ScalarType t) {
  const DtypeNames* d = Find(t);
  return d == nullptr ? "?" : d->torch;
}

}  // namespace braid
