#!/usr/bin/env bash
# Sequence parallelism (parallel.sequence_parallel) against TP without it, side by side in one run
# (prints figures; never fails on time), at TP 2 (2 ranks x 1 thread):
#  1. GPT-2 small's shape (12 layers, width 768, 12 heads, vocabulary 50304: 124M parameters),
#     sequence 1024, micro batch 1: tokens/s and the peak of live tensors per rank, with the
#     planner's estimate of the same;
#  2. GPT model 1 (4 layers, width 256, vocabulary 8192), sequence 256, micro batch 8: tokens/s;
#  3. the activations of one layer of 1., from runs at 12 and 6 layers, at TP 1, TP 2 and TP 2
#     with sequence parallelism (the goal: TP 2 with it holds close to half of TP 1's).
# Rounds alternate off and on.
#   usage: tools/bench/run_sp_bench.sh [rounds (2)]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [rounds (a positive integer, 2)]" >&2; exit 2; }
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
echo "== 3. activations per layer (gpt2-small shape, sequence 1024, micro batch 1): the peak of live"
echo "   tensors at 12 layers minus that at 6, less the 6 layers' gradients and AdamW state, / 6;"
echo "   as configured above, and with dropout 0.1 and selective recomputation (no attention core kept) =="
for extra in "" "--dropout --recompute selective"; do
  for setting in "1 off" "2 off" "2 on"; do
    read -r tp s <<<"$setting"
    declare -A peak state
    for layers in 6 12; do
      # shellcheck disable=SC2086
      out=$(mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$tp" build/bin/bench_gpt \
        "${small[@]}" --layers "$layers" --steps 3 --tp "$tp" --threads 1 $extra \
        $([[ $s == on ]] && echo --sequence-parallel) 2>&1)
      peak[$layers]=$(grep -o 'peak live tensors in training [0-9]*' <<<"$out" | grep -o '[0-9]*$')
      state[$layers]=$(grep -o '[0-9.]* MB grads + [0-9.]* MB AdamW' <<<"$out" |
        awk '{print $1 + $4}')
    done
    awk -v tp="$tp" -v s="$s" -v x="${extra:-none}" -v p6="${peak[6]}" -v p12="${peak[12]}" \
      -v s6="${state[6]}" -v s12="${state[12]}" \
      'BEGIN { printf "   %s: TP %s, sequence parallel %s: %.1f MB per layer\n", x, tp, s, (p12 - p6 - (s12 - s6)) / 6 }'
  done
done
