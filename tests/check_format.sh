#!/usr/bin/env bash
# Fails, naming the files, when a tracked C++ file is not formatted as .clang-format says
# (Debian's clang-format 14). Fix with: git ls-files '*.cc' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-14 || command -v clang-format || true)
if [[ -z $fmt ]]; then
  echo "check_format: clang-format not found. HINT: tools/setup.sh installs it." >&2
  exit 1
fi
bad=$(git ls-files '*.cc' '*.h' | grep -v '\.inc$' | xargs "$fmt" --dry-run 2>&1 \
        | grep -oE '^[^ :]+\.(cc|h):[0-9]+:[0-9]+: (warning|error)' | cut -d: -f1 | sort -u || true)
if [[ -n $bad ]]; then
  echo "check_format: not formatted as .clang-format says:" >&2
  echo "$bad" | sed 's/^/  /' >&2
  echo "HINT: clang-format -i <file> (or: git ls-files '*.cc' '*.h' | xargs clang-format -i)" >&2
  exit 1
fi
echo "check_format: $(git ls-files '*.cc' '*.h' | wc -l) files formatted"
