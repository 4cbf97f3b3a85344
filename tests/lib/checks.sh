# Sourced by the refusal tests: `ok NAME` and `bad NAME` print a result line (bad counts a failure
# in $fail: the script ends with `exit $fail`), and
#   expect_fail NAME PATTERN -- COMMAND...
# runs COMMAND (a program under a 120 s timeout, or a shell function) and counts a failure unless
# it exits non-zero without crashing or timing out and its output contains PATTERN (fixed text).
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
expect_fail() {
  local name=$1 pattern=$2
  shift 3
  local out rc
  if [[ $(type -t "$1") == function ]]; then out=$("$@" 2>&1); else out=$(timeout 120 "$@" 2>&1); fi
  rc=$?
  if [[ $rc == 0 ]]; then bad "$name: exit 0"; tail -5 <<<"$out"; return 1; fi
  if ((rc >= 124)) || grep -q "terminate called\|Aborted\|FATAL" <<<"$out"; then
    bad "$name: crashed or timed out (exit $rc)"; tail -5 <<<"$out"; return 1
  fi
  if ! grep -qF -- "$pattern" <<<"$out"; then bad "$name: no '$pattern' in:"; tail -8 <<<"$out"; return 1; fi
  return 0
}
