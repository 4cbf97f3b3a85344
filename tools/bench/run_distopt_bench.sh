#!/usr/bin/env bash
# The distributed optimizer (parallel.distributed_optimizer) against the replicated one, side by
# side in one run (prints figures; never fails on time), at DP 2 (2 ranks x 1 thread):
#  1. GPT-2 medium's shape (24 layers, width 1024, 16 heads, vocabulary 50304: 355M parameters),
#     sequence 256, micro batch 1: tokens/s and the peak of live tensors per rank (gradients,
#     AdamW state, activations);
#  2. GPT model 1 (4 layers, width 256, vocabulary 8192), sequence 256, micro batch 8: tokens/s.
# Rounds alternate replicated and distributed.
#   usage: tools/bench/run_distopt_bench.sh [rounds (2)]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [rounds (a positive integer, 2)]" >&2; exit 2; }
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
export OMP_NUM_THREADS=1
medium=(--layers 24 --hidden 1024 --heads 16 --seq 256 --vocab 50304 --micro 1 --global 2 --steps 4)
echo "== 1. gpt2-medium shape (355M), DP 2 x 1 thread, sequence 256, micro batch 1 =="
for round in $(seq 1 "$rounds"); do
  for d in false true; do
    out=$("${mpi[@]}" build/bin/bench_gpt "${medium[@]}" --threads 1 \
      $([[ $d == true ]] && echo --distributed-optimizer) 2>&1)
    echo "   round $round, distributed_optimizer=$d: $(grep -o '[0-9]* tokens/s' <<<"$out")," \
      "$(grep -o 'peak live tensors in training [0-9]* MB' <<<"$out")"
  done
done
echo "== 2. GPT model 1, DP 2 x 1 thread, sequence 256, micro batch 8 =="
for round in $(seq 1 "$rounds"); do
  for d in false true; do
    out=$("${mpi[@]}" build/bin/bench_gpt --threads 1 --steps 12 --global 16 \
      $([[ $d == true ]] && echo --distributed-optimizer) 2>&1)
    echo "   round $round, distributed_optimizer=$d: $(grep -o '[0-9]* tokens/s' <<<"$out")"
  done
done
