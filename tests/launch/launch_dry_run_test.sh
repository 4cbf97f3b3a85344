#!/usr/bin/env bash
# The launcher's dry run prints the exact mpirun command: asserted for 1 node x 4 ranks and
# 2 nodes x 8 ranks, with the placement it announces; a TP size that does not divide the ranks, or
# (on several nodes) the ranks per node, is refused: no TP group may span nodes.
set -u
src=$1
L=$src/launch/launch.sh
fail=0
expect() {  # NAME WANT -- args
  local name=$1 want=$2
  shift 3
  local got
  got=$("$L" "$@" 2>/dev/null)
  if [[ $got != "$want" ]]; then
    echo "FAIL $name"; echo "  want: $want"; echo "  got:  $got"; fail=1
  else
    echo "ok   $name"
  fi
}
expect "1 node x 4 ranks, TP 2, root, 2 cores" \
  "mpirun -np 4 --allow-run-as-root --oversubscribe --bind-to none --map-by ppr:4:node -x OMP_NUM_THREADS=1 $src/build/bin/pretrain --set parallel.tensor_parallel_size=2 --set train.threads=1 --recipe recipes/gpt/tiny.yaml" \
  -- --dry-run --nodes 1 --ranks-per-node 4 --tp 2 --as-root yes --cores 2 -- --recipe recipes/gpt/tiny.yaml
expect "2 nodes x 8 ranks, TP 4, 4 threads, 32 cores, not root" \
  "mpirun -np 16 --bind-to core --map-by ppr:8:node --host n1:8,n2:8 -x OMP_NUM_THREADS=4 $src/build/bin/pretrain --set parallel.tensor_parallel_size=4 --set train.threads=4 --recipe recipes/gpt/gpt2-small.yaml --set train.lr=3e-4" \
  -- --dry-run --nodes 2 --ranks-per-node 8 --hosts n1,n2 --tp 4 --threads 4 --bind core --as-root no --cores 32 -- --recipe recipes/gpt/gpt2-small.yaml --set train.lr=3e-4
out=$("$L" --dry-run --nodes 1 --ranks-per-node 4 --tp 3 --cores 4 -- 2>&1) && { echo "FAIL: tp 3 of 4 accepted"; fail=1; }
grep -q "does not divide the 4 ranks" <<<"$out" && echo "ok   TP 3 of 4 ranks refused" || { echo "FAIL: $out"; fail=1; }
out=$("$L" --dry-run --nodes 2 --ranks-per-node 8 --hosts n1,n2 --tp 4 --cores 32 -- 2>&1 >/dev/null)
[[ $out == "launch.sh: 2 nodes x 8 ranks, TP 4 within each node: n1 = ranks 0-7, n2 = ranks 8-15" ]] \
  && echo "ok   placement announced: $out" || { echo "FAIL placement: $out"; fail=1; }
out=$("$L" --dry-run --nodes 2 --ranks-per-node 6 --tp 4 --cores 32 -- 2>&1) && { echo "FAIL: tp 4 of 6 per node accepted"; fail=1; }
grep -q "a TP group would span nodes" <<<"$out" && echo "ok   TP 4 over 6 ranks per node refused" || { echo "FAIL: $out"; fail=1; }
"$L" --help | grep -q "ranks per" && echo "ok   --help prints the usage" || { echo "FAIL: --help"; fail=1; }
exit $fail
