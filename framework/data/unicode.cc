// Unicode tables and algorithms for the tokenizers (see unicode.h).
#include "framework/data/unicode.h"

#include "framework/core/strings.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

namespace braid::unicode {
namespace {

struct CategoryRun {
  uint32_t start;
  uint8_t category;
};
struct CombiningClass {
  uint32_t cp;
  uint8_t ccc;
};
struct Mapping {
  uint32_t cp;
  std::initializer_list<uint32_t> to;
};
struct Range {
  uint32_t first, last;
};

#include "framework/data/unicode_tables.inc"

template <typename T, size_t N>
const T* FindByCp(const T (&table)[N], char32_t cp) {
  const T* it =
      std::lower_bound(table, table + N, cp, [](const T& e, char32_t c) { return e.cp < c; });
  return it != table + N && it->cp == cp ? it : nullptr;
}

template <size_t N>
bool InRanges(const Range (&table)[N], char32_t cp) {
  const Range* it = std::upper_bound(table, table + N, cp,
                                     [](char32_t c, const Range& r) { return c < r.first; });
  return it != table && cp <= (it - 1)->last;
}

int CategoryIndex(char32_t cp) {
  if (cp >= 0x110000) return 0;
  constexpr size_t n = sizeof(kCategoryRuns) / sizeof(kCategoryRuns[0]);
  const CategoryRun* it =
      std::upper_bound(kCategoryRuns, kCategoryRuns + n, cp,
                       [](char32_t c, const CategoryRun& r) { return c < r.start; });
  return (it - 1)->category;
}

int Ccc(char32_t cp) {
  const CombiningClass* e = FindByCp(kCombiningClasses, cp);
  return e == nullptr ? 0 : e->ccc;
}

bool Cased(char32_t cp) { return InRanges(kCasedRanges, cp); }
bool CaseIgnorable(char32_t cp) { return InRanges(kCaseIgnorableRanges, cp); }

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr int kSCount = kLCount * kNCount;

void Decompose(char32_t cp, std::u32string* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    int s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  const Mapping* m = FindByCp(kDecomposition, cp);
  if (m == nullptr) {
    out->push_back(cp);
    return;
  }
  for (uint32_t c : m->to) out->push_back(c);  // the table holds full (recursive) NFD
}

}  // namespace

const char* Category(char32_t cp) { return kCategoryNames[CategoryIndex(cp)]; }

bool IsLetter(char32_t cp) { return Category(cp)[0] == 'L'; }
bool IsNumber(char32_t cp) { return Category(cp)[0] == 'N'; }
bool IsPunctuation(char32_t cp) { return Category(cp)[0] == 'P'; }
bool IsMark(char32_t cp, char kind) {
  const char* c = Category(cp);
  return c[0] == 'M' && c[1] == kind;
}

std::u32string ToLower(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t cp = s[i];
    if (cp == 0x03A3) {
      // CPython's final sigma: a cased letter before (skipping case-ignorables), none after.
      size_t j = i;
      while (j > 0 && CaseIgnorable(s[j - 1])) --j;
      bool final_sigma = j > 0 && Cased(s[j - 1]);
      if (final_sigma) {
        size_t k = i + 1;
        while (k < s.size() && CaseIgnorable(s[k])) ++k;
        final_sigma = k == s.size() || !Cased(s[k]);
      }
      out.push_back(final_sigma ? 0x03C2 : 0x03C3);
      continue;
    }
    const Mapping* m = FindByCp(kLowercase, cp);
    if (m == nullptr) {
      out.push_back(cp);
    } else {
      for (uint32_t c : m->to) out.push_back(c);
    }
  }
  return out;
}

std::u32string Nfd(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t cp : s) Decompose(cp, &out);
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < out.size();) {
    if (Ccc(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && Ccc(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + i, out.begin() + j,
                     [](char32_t a, char32_t b) { return Ccc(a) < Ccc(b); });
    i = j;
  }
  return out;
}

namespace {
// The decoder, writing each code point (U+FFFD for each maximal invalid subpart) to `emit`.
template <class Emit>
bool DecodeUtf8Into(std::string_view text, Emit emit) {
  bool ok = true;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  for (size_t i = 0; i < n;) {
    unsigned char b = p[i];
    if (b < 0x80) {
      emit(b);
      ++i;
      continue;
    }
    int len = 0;
    char32_t cp = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2, cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3, cp = b & 0x0F;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;  // no surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4, cp = b & 0x07;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    }
    if (len == 0) {
      emit(0xFFFD);
      ok = false;
      ++i;
      continue;
    }
    int k = 1;
    for (; k < len && i + k < n; ++k) {
      unsigned char c = p[i + k];
      if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (k < len) {  // a maximal invalid subpart of k bytes
      emit(0xFFFD);
      ok = false;
      i += k;
      continue;
    }
    emit(cp);
    i += len;
  }
  return ok;
}

}  // namespace

bool DecodeUtf8(std::string_view text, std::u32string* out) {
  out->clear();
  out->reserve(text.size());
  return DecodeUtf8Into(text, [out](char32_t cp) { out->push_back(cp); });
}

bool IsValidUtf8(std::string_view text) {
  return DecodeUtf8Into(text, [](char32_t) {});
}

std::string EncodeUtf8(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) AppendUtf8(cp, &out);
  return out;
}

std::string SanitizeUtf8(std::string_view bytes) {
  std::u32string cps;
  if (DecodeUtf8(bytes, &cps)) return std::string(bytes);
  return EncodeUtf8(cps);
}

bool IsWhiteSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

char32_t ByteLevelChar(unsigned char b) {
  static const auto* table = [] {
    auto* t = new std::array<char32_t, 256>();
    char32_t next = 256;
    for (int k = 0; k < 256; ++k) {
      const bool printable = (k >= 33 && k <= 126) || (k >= 161 && k <= 172) || k >= 174;
      (*t)[k] = printable ? static_cast<char32_t>(k) : next++;
    }
    return t;
  }();
  return (*table)[b];
}

}  // namespace braid::unicode
