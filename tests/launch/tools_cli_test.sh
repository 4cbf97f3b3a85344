#!/usr/bin/env bash
# Every tool answers --help with its usage (exit 0) and an unknown flag or a missing argument
# with a message naming it (exit 2), before touching anything.
set -u
bin=$1
fail=0
for tool in pretrain generate convert_checkpoint preprocess_data tokenize inspect_dataset \
            bench_gpt bench_data bench_runtime bench_checkpoint; do
  out=$("$bin/$tool" --help 2>&1); rc=$?
  [[ $rc == 0 ]] && grep -q "^usage: " <<<"$out" || { echo "FAIL $tool --help: exit $rc"; echo "$out" | head -3; fail=1; continue; }
  out=$("$bin/$tool" --no-such-flag 2>&1); rc=$?
  [[ $rc == 2 ]] && grep -q "unknown flag '--no-such-flag'" <<<"$out" || { echo "FAIL $tool --no-such-flag: exit $rc: $out"; fail=1; continue; }
  echo "ok   $tool: --help exits 0, an unknown flag exits 2 naming it"
done
# Values out of range are usage errors too.
"$bin/generate" --run-dir x --prompt y --temperature nan >/dev/null 2>&1; [[ $? == 2 ]] || { echo "FAIL generate --temperature nan"; fail=1; }
"$bin/generate" --run-dir x --prompt y --max-new-tokens -1 >/dev/null 2>&1; [[ $? == 2 ]] || { echo "FAIL generate --max-new-tokens -1"; fail=1; }
"$bin/generate" --run-dir x --prompt y --top-k -5 >/dev/null 2>&1; [[ $? == 2 ]] || { echo "FAIL generate --top-k -5"; fail=1; }
"$bin/tokenize" --type wordpiece --vocab x --max-chars-per-word 0 >/dev/null 2>&1; [[ $? == 2 ]] || { echo "FAIL tokenize --max-chars-per-word 0"; fail=1; }
"$bin/convert_checkpoint" reshard --input x >/dev/null 2>&1; [[ $? == 2 ]] || { echo "FAIL convert_checkpoint reshard without --output"; fail=1; }
"$bin/inspect_dataset" >/dev/null 2>&1; [[ $? == 2 ]] || { echo "FAIL inspect_dataset without PREFIX"; fail=1; }
((fail)) || echo "ok   out-of-range values (temperature nan, negative counts, --max-chars-per-word 0) exit 2"
exit $fail
