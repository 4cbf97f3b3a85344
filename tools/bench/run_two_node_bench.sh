#!/usr/bin/env bash
# Two hosts against one, side by side in one run (prints figures; never fails on time). The hosts
# are network namespaces n1 and n2 on a veth link (tests/lib/netns_cluster.sh; root needed), so
# "across nodes" is TCP through the kernel, and "one node" is Open MPI's shared memory.
#  1. MPI all-reduce (bench_runtime): 2 ranks on one node, then 1 rank on each of n1 and n2.
#  2. The tiny GPT at DP=2 (TP 1, 1 thread per rank, global batch 16), 3 alternated rounds: both
#     ranks on one node, then one on each host; tokens/s and the trainer's communication share
#     (its "comm" column: step time spent waiting for the gradient all-reduce), median over the
#     logged intervals.
#  3. The same at TP 2 x DP 2 on 4 ranks: one node, then TP 2 within each of n1 and n2 (DP across).
#   tools/setup.sh && tools/bench/run_two_node_bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/netns_cluster.sh
tmp=$(mktemp -d /tmp/braid-2node-bench.XXXXXX)
chmod 755 "$tmp"
trap 'cluster_down; rm -rf "$tmp"' EXIT
cluster_up "$tmp" || { echo "no network namespaces here: nothing measured"; exit 1; }
read -r -a mpi_env <<< "$(cluster_mpi_env)"
tools/data/prepare_default_corpus.sh build/data/fortunes build/bin >/dev/null
export OMP_NUM_THREADS=1
one=(mpirun --allow-run-as-root --bind-to none -np 2)
two=(on n1 env "${mpi_env[@]}" mpirun --allow-run-as-root --bind-to none -np 2 --host n1:1,n2:1)

echo "== 1. MPI all-reduce, 2 ranks: one node (shared memory), then across n1 and n2 (TCP, veth) =="
"${one[@]}" build/bin/bench_runtime
"${two[@]}" build/bin/bench_runtime

echo "== 2. tiny GPT, DP=2, TP 1, 1 thread per rank, 300 steps, 3 alternated rounds (median of the logged intervals) =="
mkdir -p "$tmp/nodes/n1/cache" "$tmp/nodes/n2/cache"
gpt=(build/bin/pretrain --recipe recipes/gpt/tiny.yaml --set train.train_steps=300
     --set train.eval_steps=0 --set logging.interval=20 --set train.threads=1
     --set checkpoint.save_interval=0)
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
summary() {  # the log's "tok/s" and "comm" columns, median over the intervals after the first
  local lines
  lines=$(grep -o "[0-9]* tok/s .* comm [0-9.]*%" "$1" | tail -n +2)
  echo "$(awk '{ print $1 }' <<< "$lines" | median) tokens/s, comm $(awk '{ print $NF + 0 }' <<< "$lines" | median)% of step time ($(wc -l <<< "$lines") intervals)"
}
for round in 1 2 3; do
  "${one[@]}" "${gpt[@]}" --set logging.run_dir="$tmp/one$round" \
    --set data.cache_dir="$tmp/one-cache" > "$tmp/one$round.log" 2>&1
  echo "round $round, one node:    $(summary "$tmp/one$round.log")"
  "${two[@]}" "${gpt[@]}" --set logging.run_dir="$tmp/two$round" \
    --set data.cache_dir="$tmp/local/cache" > "$tmp/two$round.log" 2>&1
  echo "round $round, n1 + n2:     $(summary "$tmp/two$round.log")"
done

echo "== 3. tiny GPT, TP 2 x DP 2, 1 thread per rank, 300 steps, 2 alternated rounds =="
one4=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 4)
two4=(on n1 env "${mpi_env[@]}" mpirun --allow-run-as-root --bind-to none -np 4 --map-by ppr:2:node
      --host n1:2,n2:2)
for round in 1 2; do
  "${one4[@]}" "${gpt[@]}" --set parallel.tensor_parallel_size=2 --set logging.run_dir="$tmp/tp-one$round" \
    --set data.cache_dir="$tmp/one-cache" > "$tmp/tp-one$round.log" 2>&1
  echo "round $round, one node:    $(summary "$tmp/tp-one$round.log")"
  "${two4[@]}" "${gpt[@]}" --set parallel.tensor_parallel_size=2 --set logging.run_dir="$tmp/tp-two$round" \
    --set data.cache_dir="$tmp/local/cache" > "$tmp/tp-two$round.log" 2>&1
  echo "round $round, n1 + n2:     $(summary "$tmp/tp-two$round.log")"
done
