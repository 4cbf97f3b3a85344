#!/usr/bin/env bash
# Sequence parallelism (parallel.sequence_parallel) against TP without it, side by side in one run
# (prints figures; never fails on time), at TP 2 (2 ranks x 1 thread):
#  1. GPT-2 small's shape (12 layers, width 768, 12 heads, vocabulary 50304: 124M parameters),
#     sequence 1024, micro batch 1: tokens/s and the peak of live tensors per rank, with the
#     planner's estimate of the same;
#  2. GPT model 1 (4 layers, width 256, vocabulary 8192), sequence 256, micro batch 8: tokens/s.
# Rounds alternate off and on.
#   usage: tools/bench/run_sp_bench.sh [rounds (2)]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
export OMP_NUM_THREADS=1
small=(--layers 12 --hidden 768 --heads 12 --seq 1024 --vocab 50304 --micro 1 --global 1 --steps 4)
echo "== 1. gpt2-small shape (124M), TP 2 x 1 thread, sequence 1024, micro batch 1 =="
for round in $(seq 1 "$rounds"); do
  for s in false true; do
    out=$("${mpi[@]}" build/bin/bench_gpt "${small[@]}" --tp 2 --threads 1 \
      $([[ $s == true ]] && echo --sequence-parallel) 2>&1)
    echo "   round $round, sequence_parallel=$s: $(grep -o '[0-9]* tokens/s' <<<"$out")," \
      "$(grep -o 'peak live tensors in training [0-9]* MB' <<<"$out");" \
      "$(grep -o 'planner: [0-9]* MB = [0-9]* activations' <<<"$out")"
  done
done
echo "== 2. GPT model 1, TP 2 x 1 thread, sequence 256, micro batch 8 =="
for round in $(seq 1 "$rounds"); do
  for s in false true; do
    out=$("${mpi[@]}" build/bin/bench_gpt --tp 2 --threads 1 --steps 12 --global 8 \
      $([[ $s == true ]] && echo --sequence-parallel) 2>&1)
    echo "   round $round, sequence_parallel=$s: $(grep -o '[0-9]* tokens/s' <<<"$out")"
  done
done
