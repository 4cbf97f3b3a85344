#!/usr/bin/env bash
# One failing rank brings the whole 2-rank job down while rank 0 is inside the collectives:
# mpirun must exit non-zero within 30 seconds, for each way a rank can fail:
#   error: rank 1 returns an error (MPI_Abort with its message)
#   crash: rank 1 dies of SIGSEGV
#   hang:  rank 1 stops answering; rank 0's collective times out (--comm-timeout 5) and aborts
set -u
pretrain=$1
fail=0
for mode in error crash hang; do
  out=$(mktemp)
  start=$(date +%s)
  timeout 90 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 \
    "$pretrain" --self-check --fail-rank 1 --fail-mode $mode --comm-timeout 5 >"$out" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  sed "s/^/  [$mode] /" "$out"
  bad=""
  [[ $rc -eq 0 ]] && bad+=" mpirun exited 0;"
  [[ $rc -eq 124 ]] && bad+=" the job hung (killed by timeout);"
  (( elapsed > 30 )) && bad+=" took ${elapsed}s (> 30 s);"
  grep -q "rank 1 fails on purpose" "$out" || bad+=" rank 1's message missing;"
  if [[ $mode == hang ]] && ! grep -q "did not complete within 5 s" "$out"; then
    bad+=" rank 0 did not report the timed-out collective;"
  fi
  if [[ -n $bad ]]; then echo "FAIL $mode:$bad"; fail=1; else echo "ok   $mode: exit $rc after ${elapsed}s"; fi
  rm -f "$out"
done
exit $fail
