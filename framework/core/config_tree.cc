// YAML -> located tree, includes and overrides (see config_tree.h).
#include "framework/core/config_tree.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "framework/core/status.h"

namespace braid::config_internal {
namespace fs = std::filesystem;

std::string Location::ToString() const {
  if (line <= 0) return file;
  return absl::StrCat(file, ":", line, ":", column);
}

const Node* Node::Find(const std::string& key) const {
  for (const Entry& e : entries)
    if (e.key == key) return &e.value;
  return nullptr;
}
Node* Node::Find(const std::string& key) {
  for (Entry& e : entries)
    if (e.key == key) return &e.value;
  return nullptr;
}
const char* Node::KindName() const {
  switch (kind) {
    case Kind::kNull:
      return "nothing (null)";
    case Kind::kScalar:
      return "a scalar";
    case Kind::kSequence:
      return "a list";
    case Kind::kMap:
      return "a mapping";
  }
  return "?";
}

namespace {

Location LocOf(const YAML::Mark& mark, const std::string& file) {
  return Location{file, mark.line + 1, mark.column + 1};
}

// A recipe is a few hundred nodes. YAML aliases let a 1 KB file stand for billions of them (an
// "alias bomb"), and deep nesting for a deep recursion: both are refused.
constexpr int64_t kMaxNodes = 100000;
constexpr int kMaxDepth = 64;
constexpr size_t kMaxFileBytes = 1 << 20;

struct Budget {
  int64_t nodes = 0;
  int depth = 0;
};

absl::StatusOr<Node> Convert(const YAML::Node& y, const std::string& file, Budget& budget) {
  if (++budget.nodes > kMaxNodes || budget.depth >= kMaxDepth) {
    return absl::InvalidArgumentError(absl::StrCat(
        LocOf(y.Mark(), file).ToString(), ": the YAML expands to more than ", kMaxNodes,
        " values or nests deeper than ", kMaxDepth,
        " levels (aliases?). HINT: a recipe is a few sections of keys; write it out plainly."));
  }
  ++budget.depth;
  struct Leave {
    Budget& b;
    ~Leave() { --b.depth; }
  } leave{budget};
  Node n;
  n.loc = LocOf(y.Mark(), file);
  switch (y.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      n.kind = Node::Kind::kNull;
      break;
    case YAML::NodeType::Scalar:
      n.kind = Node::Kind::kScalar;
      n.scalar = y.Scalar();
      break;
    case YAML::NodeType::Sequence:
      n.kind = Node::Kind::kSequence;
      for (const YAML::Node& item : y) {
        BRAID_ASSIGN_OR_RETURN(Node child, Convert(item, file, budget));
        n.items.push_back(std::move(child));
      }
      break;
    case YAML::NodeType::Map:
      n.kind = Node::Kind::kMap;
      for (auto it = y.begin(); it != y.end(); ++it) {
        Location key_loc = LocOf(it->first.Mark(), file);
        if (!it->first.IsScalar()) {
          return absl::InvalidArgumentError(absl::StrCat(
              key_loc.ToString(), ": a key must be a plain name. HINT: write `name: value`."));
        }
        std::string key = it->first.Scalar();
        if (const Node* prev = n.Find(key); prev != nullptr) {
          const Location& first = [&]() -> const Location& {
            for (const auto& e : n.entries)
              if (e.key == key) return e.key_loc;
            return key_loc;
          }();
          return absl::InvalidArgumentError(
              absl::StrCat(key_loc.ToString(), ": ", key, ": duplicate key (first set at ",
                           first.ToString(), "). HINT: keep one of them."));
        }
        BRAID_ASSIGN_OR_RETURN(Node value, Convert(it->second, file, budget));
        n.entries.push_back(Node::Entry{key, key_loc, std::move(value)});
      }
      break;
  }
  return n;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& context) {
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, "config file '", path, "' is not a regular file."));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(context, "cannot open config file '", path,
                                            "'. HINT: check the path (relative includes resolve "
                                            "from the including file's folder)."));
  }
  // Read at most one byte past the limit: a recipe is small, whatever the file is.
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(context, "config file '", path, "' is over ",
                                                   kMaxFileBytes, " bytes: not a recipe."));
  }
  return text;
}

absl::StatusOr<Node> ResolveIncludes(Node root, const fs::path& base_dir,
                                     std::vector<std::string>& stack) {
  if (root.kind == Node::Kind::kNull) {
    root.kind = Node::Kind::kMap;
    return root;
  }
  if (root.kind != Node::Kind::kMap) {
    return absl::InvalidArgumentError(
        absl::StrCat(root.loc.ToString(),
                     ": the top level of a recipe must be a mapping of "
                     "sections (model:, train:, ...), not ",
                     root.KindName(), "."));
  }
  const Node* inc = root.Find("include");
  if (inc == nullptr) return root;

  std::vector<const Node*> names;
  if (inc->kind == Node::Kind::kScalar) {
    names.push_back(inc);
  } else if (inc->kind == Node::Kind::kSequence) {
    for (const Node& item : inc->items) names.push_back(&item);
  }
  if (names.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        inc->loc.ToString(), ": include: expected a file name or a list of file names, got ",
        inc->KindName(), ". HINT: `include: base.yaml`."));
  }
  Node merged;
  merged.kind = Node::Kind::kMap;
  merged.loc = root.loc;
  for (const Node* name : names) {
    if (name->kind != Node::Kind::kScalar) {
      return absl::InvalidArgumentError(absl::StrCat(
          name->loc.ToString(), ": include: expected a file name, got ", name->KindName(), "."));
    }
    fs::path p = fs::path(name->scalar);
    if (p.is_relative()) p = base_dir / p;
    std::string where = absl::StrCat(name->loc.ToString(), ": include: ");
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(p, ec);
    std::string key = ec ? p.string() : canonical.string();
    if (std::find(stack.begin(), stack.end(), key) != stack.end()) {
      stack.push_back(key);
      return absl::InvalidArgumentError(
          absl::StrCat(where, "include cycle: ", absl::StrJoin(stack, " -> "),
                       ". HINT: a file may not include itself, directly or through others."));
    }
    BRAID_ASSIGN_OR_RETURN(std::string text, ReadFile(p.string(), where));
    BRAID_ASSIGN_OR_RETURN(Node child, ParseYaml(text, p.string()));
    stack.push_back(key);
    BRAID_ASSIGN_OR_RETURN(Node resolved,
                           ResolveIncludes(std::move(child), p.parent_path(), stack));
    stack.pop_back();
    MergeInto(merged, resolved);
  }
  Node self = std::move(root);
  self.entries.erase(std::remove_if(self.entries.begin(), self.entries.end(),
                                    [](const Node::Entry& e) { return e.key == "include"; }),
                     self.entries.end());
  MergeInto(merged, self);
  return merged;
}

}  // namespace

absl::StatusOr<Node> ParseYaml(const std::string& text, const std::string& file) {
  YAML::Node y;
  try {
    y = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        LocOf(e.mark, file).ToString(), ": YAML syntax error: ", e.msg,
        ". HINT: check indentation, colons and brackets on this line and the one before."));
  }
  Budget budget;
  return Convert(y, file, budget);
}

absl::StatusOr<Node> LoadWithIncludes(const std::string& path) {
  BRAID_ASSIGN_OR_RETURN(std::string text, ReadFile(path, ""));
  BRAID_ASSIGN_OR_RETURN(Node root, ParseYaml(text, path));
  std::error_code ec;
  std::vector<std::string> stack = {fs::weakly_canonical(path, ec).string()};
  return ResolveIncludes(std::move(root), fs::path(path).parent_path(), stack);
}

absl::StatusOr<Node> LoadWithIncludesFromString(const std::string& text, const std::string& name) {
  BRAID_ASSIGN_OR_RETURN(Node root, ParseYaml(text, name));
  std::vector<std::string> stack = {name};
  return ResolveIncludes(std::move(root), fs::current_path(), stack);
}

void MergeInto(Node& base, const Node& over) {
  if (base.kind != Node::Kind::kMap || over.kind != Node::Kind::kMap) {
    base = over;
    return;
  }
  for (const Node::Entry& e : over.entries) {
    Node* existing = base.Find(e.key);
    if (existing == nullptr) {
      base.entries.push_back(e);
    } else {
      for (Node::Entry& be : base.entries)
        if (be.key == e.key) be.key_loc = e.key_loc;
      MergeInto(*existing, e.value);
    }
  }
}

absl::Status ApplyOverride(Node& root, const std::string& assignment) {
  Location loc{absl::StrCat("--set '", assignment, "'"), 0, 0};
  size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        loc.ToString(), ": expected section.key=value. HINT: e.g. --set train.lr=3e-4"));
  }
  std::string path = assignment.substr(0, eq);
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  for (const std::string& part : parts) {
    if (part.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          loc.ToString(), ": '", path, "' has an empty key. HINT: e.g. --set model.num_layers=4"));
    }
  }
  BRAID_ASSIGN_OR_RETURN(Node value, ParseYaml(assignment.substr(eq + 1), loc.file));
  // Overrides carry the override's own location on every node, not a line of a file.
  std::function<void(Node&)> relocate = [&](Node& n) {
    n.loc = loc;
    for (Node& c : n.items) relocate(c);
    for (Node::Entry& e : n.entries) {
      e.key_loc = loc;
      relocate(e.value);
    }
  };
  relocate(value);
  if (value.kind == Node::Kind::kNull) {  // "--set data.vocab_file=" means an empty string
    value.kind = Node::Kind::kScalar;
  }
  Node over;
  over.kind = Node::Kind::kMap;
  over.loc = loc;
  Node* cursor = &over;
  for (size_t i = 0; i < parts.size(); ++i) {
    Node child;
    child.loc = loc;
    if (i + 1 == parts.size()) {
      child = value;
    } else {
      child.kind = Node::Kind::kMap;
    }
    cursor->entries.push_back(Node::Entry{parts[i], loc, std::move(child)});
    cursor = &cursor->entries.back().value;
  }
  MergeInto(root, over);
  return absl::OkStatus();
}

}  // namespace braid::config_internal
