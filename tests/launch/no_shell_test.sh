#!/usr/bin/env bash
# "Shell injection through a path" (hardening, second round): the source check
# (tests/check_no_shell.sh) passes on the repository and fails, naming file and line, on each way
# a value could reach a shell: the corpus preparer's old std::system(cmd.c_str()), popen of a
# variable, os.system and subprocess with shell=True in Python.
set -u
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
"$src/tests/check_no_shell.sh" > "$tmp/repo.out" 2>&1 && echo "ok   the repository: $(cat "$tmp/repo.out")" ||
  { echo "FAIL the repository:"; cat "$tmp/repo.out"; fail=1; }
cat > "$tmp/a.cc" <<'CC'
const std::string cmd = absl::StrCat("bash '", script.string(), "' '", folder, "' >&2");
failed = std::system(cmd.c_str()) == 0 ? 0 : 1;
FILE* f = popen(command, "r");
int ok = std::system("true");  // a constant: allowed
CC
printf 'import os, subprocess\nos.system("ls " + path)\nsubprocess.run(cmd, shell=True)\nsubprocess.run(["ls", path])\n' > "$tmp/b.py"
out=$("$src/tests/check_no_shell.sh" "$tmp/a.cc" "$tmp/b.py" 2>&1) && { echo "FAIL: the planted calls passed"; fail=1; }
for want in "a.cc:2: system()" "a.cc:3: popen()" "b.py:2: os.system(" "b.py:3: shell=True"; do
  grep -qF "$want" <<<"$out" && echo "ok   caught $want" || { echo "FAIL: $want not caught"; echo "$out"; fail=1; }
done
for allowed in "a.cc:4" "b.py:4"; do
  grep -qF "$allowed" <<<"$out" && { echo "FAIL: $allowed (no shell) was flagged"; fail=1; } || echo "ok   $allowed allowed (a constant; an argument vector)"
done
exit $fail
