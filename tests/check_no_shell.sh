#!/usr/bin/env bash
# Fails, naming file and line, where a program of the repository hands a string to a shell that
# is not a constant: C/C++ std::system / system / popen whose argument is anything but one string
# literal, and Python os.system, os.popen, or subprocess with shell=True. A path or value that
# reaches a shell can run commands (a data.paths entry with '$(...)' in it did): run programs
# with an argument vector instead (RunProgram in framework/core/system.h, subprocess.run([...])).
#   tests/check_no_shell.sh              checks the repository's tracked sources
#   tests/check_no_shell.sh FILE...      checks these files (the test plants bad ones)
set -euo pipefail
cd "$(dirname "$0")/.."
if (($#)); then
  files=("$@")
else
  mapfile -t files < <(git ls-files '*.cc' '*.h' '*.cpp' '*.py')
fi
/usr/bin/python3 - "${files[@]}" <<'PY'
import re, sys
bad = []
c_call = re.compile(r'(?<![A-Za-z0-9_.>])(?:std::|::)?(system|popen)\s*\(')
literal = re.compile(r'\s*"(?:[^"\\]|\\.)*"\s*[,)]')
py_bad = re.compile(r'\bos\.(system|popen)\s*\(|shell\s*=\s*True')
for path in sys.argv[1:]:
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError as e:
        bad.append(f"{path}: cannot read: {e}")
        continue
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("//")[0] if not path.endswith(".py") else line.split("#")[0]
        if path.endswith(".py"):
            m = py_bad.search(code)
            if m:
                bad.append(f"{path}:{n}: {m.group(0).strip()} hands a string to a shell")
            continue
        for m in c_call.finditer(code):
            rest = code[m.end():]
            if not literal.match(rest):
                bad.append(f"{path}:{n}: {m.group(1)}() with a non-constant command: {line.strip()}")
if bad:
    print("\n".join("check_no_shell: " + b for b in bad), file=sys.stderr)
    print("HINT: run the program with an argument vector (braid::RunProgram, "
          "subprocess.run([...])): no shell parses paths or values.", file=sys.stderr)
    sys.exit(1)
print(f"check_no_shell: no shell command built from a value in {len(sys.argv) - 1} files")
PY
