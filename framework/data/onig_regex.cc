// Oniguruma behind OnigRegex (see onig_regex.h).
#include "framework/data/onig_regex.h"

#include <oniguruma.h>

#include <mutex>

#include "absl/strings/str_cat.h"

namespace braid {
namespace {

void InitOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}

size_t Utf8Length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

}  // namespace

absl::StatusOr<std::unique_ptr<OnigRegex>> OnigRegex::Compile(std::string_view pattern) {
  InitOnce();
  std::unique_ptr<OnigRegex> r(new OnigRegex());
  regex_t* reg = nullptr;
  OnigErrorInfo info;
  const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
  const int rc = onig_new(&reg, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                          ONIG_SYNTAX_DEFAULT, &info);
  if (rc != ONIG_NORMAL) {
    OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(msg, rc, &info);
    return absl::InvalidArgumentError(
        absl::StrCat("the regular expression '", std::string(pattern),
                     "' does not compile: ", reinterpret_cast<const char*>(msg)));
  }
  r->regex_ = reg;
  return r;
}

OnigRegex::~OnigRegex() {
  if (regex_ != nullptr) onig_free(static_cast<regex_t*>(regex_));
}

void OnigRegex::FindAll(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const {
  auto* reg = static_cast<regex_t*>(regex_);
  OnigRegion* region = onig_region_new();
  const auto* s = reinterpret_cast<const OnigUChar*>(text.data());
  const auto* end = s + text.size();
  size_t pos = 0;
  while (pos <= text.size()) {
    const int at = onig_search(reg, s, end, s + pos, end, region, ONIG_OPTION_NONE);
    if (at < 0) break;
    const auto b = static_cast<size_t>(region->beg[0]);
    const auto e = static_cast<size_t>(region->end[0]);
    if (e == b) {  // empty: not a piece; go on from the next character
      if (b >= text.size()) break;
      pos = b + Utf8Length(static_cast<unsigned char>(text[b]));
      continue;
    }
    out->emplace_back(b, e);
    pos = e;
  }
  onig_region_free(region, 1);
}

}  // namespace braid
