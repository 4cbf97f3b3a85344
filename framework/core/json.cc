// JSON reader (simdjson) and quoting (see json.h).
#include "framework/core/json.h"

#include <simdjson.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "framework/core/strings.h"

namespace braid {
namespace {

namespace od = simdjson::ondemand;

// A scalar (number, string, true/false, null) from an on-demand value or a scalar document (the
// two types share these calls).
template <typename V>
simdjson::error_code BuildJsonScalar(V& v, od::json_type type, JsonValue* out) {
  switch (type) {
    case od::json_type::number: {
      out->kind = JsonValue::Kind::kNumber;
      std::string_view raw;
      if (auto e = simdjson::simdjson_result<std::string_view>(v.raw_json_token()).get(raw))
        return e;
      while (!raw.empty() &&
             (raw.back() == ' ' || raw.back() == '\t' || raw.back() == '\n' || raw.back() == '\r'))
        raw.remove_suffix(1);  // the number as written, without the whitespace after it
      out->text = std::string(raw);
      return v.get_double().get(out->number);
    }
    case od::json_type::string: {
      out->kind = JsonValue::Kind::kString;
      std::string_view s;
      if (auto e = v.get_string().get(s)) return e;
      out->text = std::string(s);
      return simdjson::SUCCESS;
    }
    case od::json_type::boolean:
      out->kind = JsonValue::Kind::kBool;
      return v.get_bool().get(out->boolean);
    default: {
      out->kind = JsonValue::Kind::kNull;
      bool is_null = false;
      if (auto e = v.is_null().get(is_null)) return e;
      return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
}

// Builds a JsonValue from simdjson's on-demand value (depth is bounded by simdjson's 1024).
simdjson::error_code BuildJsonValue(od::value v, JsonValue* out) {
  od::json_type type;
  if (auto e = v.type().get(type)) return e;
  if (type == od::json_type::object) {
    out->kind = JsonValue::Kind::kObject;
    od::object obj;
    if (auto e = v.get_object().get(obj)) return e;
    for (auto field : obj) {
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return e;
      od::value fv;
      if (auto e = field.value().get(fv)) return e;
      out->members.emplace_back(std::string(key), JsonValue());
      if (auto e = BuildJsonValue(fv, &out->members.back().second)) return e;
    }
    return simdjson::SUCCESS;
  }
  if (type == od::json_type::array) {
    out->kind = JsonValue::Kind::kArray;
    od::array arr;
    if (auto e = v.get_array().get(arr)) return e;
    for (auto el : arr) {
      od::value ev;
      if (auto e = el.get(ev)) return e;
      out->items.emplace_back();
      if (auto e = BuildJsonValue(ev, &out->items.back())) return e;
    }
    return simdjson::SUCCESS;
  }
  return BuildJsonScalar(v, type, out);
}

absl::Status JsonErrorAt(std::string_view text, size_t pos, const char* message) {
  int line = 1, col = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("JSON error at line %d, column %d (byte %d): %s", line, col, pos, message));
}

}  // namespace

const JsonValue* JsonValue::Find(std::string_view key) const {
  for (const auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

bool JsonValue::IsInteger() const {
  if (kind != Kind::kNumber || text.find_first_of(".eE") != std::string::npos) return false;
  errno = 0;
  std::strtoll(text.c_str(), nullptr, 10);
  return errno != ERANGE;  // and it fits int64
}

int64_t JsonValue::AsInt() const { return std::strtoll(text.c_str(), nullptr, 10); }

absl::StatusOr<JsonValue> ParseJson(std::string_view text) {
  // simdjson (Debian's libsimdjson): 3-4x the speed of the hand-written parser it replaced on the
  // corpora (BENCHMARKS.md, "JSON"). It reads a padded copy; one parser per thread.
  thread_local od::parser parser;
  const simdjson::padded_string padded(text);
  const auto at = [&](od::document& doc) -> size_t {
    const char* loc = nullptr;
    if (doc.current_location().get(loc) || loc == nullptr) return text.size();
    return static_cast<size_t>(loc - padded.data());
  };
  od::document doc;
  if (auto e = parser.iterate(padded).get(doc))
    return JsonErrorAt(text, 0, simdjson::error_message(e));
  JsonValue v;
  od::json_type type;
  simdjson::error_code e = doc.type().get(type);
  if (!e) {
    if (type == od::json_type::object || type == od::json_type::array) {
      od::value root;
      e = doc.get_value().get(root);
      if (!e) e = BuildJsonValue(root, &v);
    } else {
      e = BuildJsonScalar(doc, type, &v);
    }
  }
  if (e == simdjson::STRING_ERROR) {  // simdjson's words say less than ours did
    return JsonErrorAt(text, at(doc),
                       "bad string: an invalid escape, a control character, or a lone "
                       "surrogate (\\ud800-\\udfff without its pair)");
  }
  if (e) return JsonErrorAt(text, at(doc), simdjson::error_message(e));
  // A location left means text after the value (simdjson 3.0 has no document::at_end).
  const char* rest = nullptr;
  if (!doc.current_location().get(rest) && rest != nullptr) {
    return JsonErrorAt(text, static_cast<size_t>(rest - padded.data()),
                       "unexpected text after the value");
  }
  return v;
}

std::string JsonQuote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (u < 0x20) {
          out += absl::StrFormat("\\u%04x", u);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace braid
