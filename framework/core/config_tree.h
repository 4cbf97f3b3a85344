// A YAML document as a plain tree that remembers, for every node, the file, line and column it
// came from. Built from yaml-cpp, merged across `include:` files and `--set` overrides, then bound
// to typed structs by config.cc. Internal to framework/core.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace braid::config_internal {

struct Location {
  std::string file;  // a path, or "--set 'key=value'" for overrides
  int line = 0;      // 1-based; 0 -> no line (overrides)
  int column = 0;
  std::string ToString() const;  // "file:line:col"
};

struct Node {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  struct Entry;
  Kind kind = Kind::kNull;
  std::string scalar;
  std::vector<Node> items;     // kSequence
  std::vector<Entry> entries;  // kMap, in file order
  Location loc;

  const Node* Find(const std::string& key) const;
  Node* Find(const std::string& key);
  const char* KindName() const;
};

struct Node::Entry {
  std::string key;
  Location key_loc;
  Node value;
};

// Parses YAML text; `file` names it in messages. Rejects syntax errors and duplicate keys.
absl::StatusOr<Node> ParseYaml(const std::string& text, const std::string& file);

// Loads `path`, resolving a top-level `include:` (a path or a list of paths, relative to the
// including file): the included files are merged in order, then this file over them.
absl::StatusOr<Node> LoadWithIncludes(const std::string& path);
// The same for text that stands for a file named `name` (includes resolve from the cwd).
absl::StatusOr<Node> LoadWithIncludesFromString(const std::string& text, const std::string& name);

// Deep merge: maps merge key by key, anything else in `over` replaces what `base` had.
void MergeInto(Node& base, const Node& over);

// Applies one "a.b.c=value" override (value parsed as YAML) to the tree.
absl::Status ApplyOverride(Node& root, const std::string& assignment);

}  // namespace braid::config_internal
