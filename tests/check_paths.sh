#!/usr/bin/env bash
# Fails, naming them, when a source file, script or document of the repository mentions a path
# under one of its top-level folders that does not exist (a comment pointing at a moved or
# missing file). Paths with placeholders (<family>, {i}, *, xy) are patterns, not files.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS=: read -r file path; do
  [[ $path =~ ^[a-z] ]] || path=${path#?}  # the character before the path
  path=${path%.}
  path=${path%,}
  path=${path%:}
  path=${path%)}
  case $path in *'<'*|*'{'*|*'*'*|*/xy/*|*/xy_*|*xy.h|*xy.cc) continue ;; esac
  # CMake files name paths relative to their own folder.
  if [[ ! -e $path && ! -e $(dirname "$file")/$path ]]; then
    echo "check_paths: $file names $path, which is not in the repository" >&2
    bad=1
  fi
done < <(git ls-files '*.cc' '*.h' '*.sh' '*.py' '*.proto' '*.md' '*.yaml' 'CMakeLists.txt' '*/CMakeLists.txt' \
           | xargs grep -oE '(^|[^A-Za-z0-9_/.$}-])(framework|recipes|tools|tests|launch|docs)/[A-Za-z0-9_./<>{}*-]*[A-Za-z0-9_>}*]' \
           | sort -u)
if ((bad)); then
  echo "HINT: fix the reference, or add the file." >&2
  exit 1
fi
echo "check_paths: every path the sources and documents name exists"
