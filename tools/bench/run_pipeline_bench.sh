#!/usr/bin/env bash
# Pipeline parallelism on this machine (prints figures, never fails on time), through pretrain on
# the tiny GPT made 8 layers x 256 wide (sequence 128, micro batch 4, the default corpus), 12
# steps, the figures of steps 7-12. The output layer and loss over the 8000-token vocabulary cost
# about three such layers, so the stages are balanced by hand: parallel.pipeline_layers [6, 2]
# (V = 2: [3, 1, 3, 1]).
#   1. the measured bubble: the stages' mean share of the step spent waiting for each other
#      ("pipe wait" in the log: the bubble, transfers and what imbalance remains), against
#      (PP - 1) / V / (m + (PP - 1) / V), at PP 2 (1 thread per rank, the 2 cores) for m = 4, 8,
#      16 and interleaved V = 2;
#   2. tokens/s of PP 2 x 1 thread against PP 1 x 2 threads (one rank) at m = 8.
# First bench_pipeline at PP 2 and 4: the schedules on stages of exactly equal cost (sleeping, so
# 4 ranks on 2 cores do not slow each other), measured bubble against the closed form. PP 4 of
# real compute needs 4 cores to mean anything; this machine has 2.
#   tools/bench/run_pipeline_bench.sh [BUILD_DIR=build]
set -u
cd "$(dirname "$0")/../.."
bin=${1:-build}/bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tools/data/prepare_default_corpus.sh build/data/fortunes "$bin" >/dev/null
export OMP_NUM_THREADS=1
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
common=(--recipe recipes/gpt/tiny.yaml --set model.num_layers=8 --set model.hidden_size=256
        --set model.seq_length=128 --set train.micro_batch_size=4 --set train.train_steps=12
        --set train.eval_steps=0 --set train.eval_interval=0 --set logging.interval=6
        --set checkpoint.save_interval=0 --set train.lr_warmup_steps=2)
echo "== bench_pipeline: balanced stages of fixed cost =="
for np in 2 4; do "${mpi[@]}" -np $np "$bin/bench_pipeline" 2>&1 | grep -v '^\['; done
# The second interval line: steps 7-12.
line() { grep "step 12/12" "$1" | tail -1; }
field() { sed -E "s/.*\| $2 ([0-9.]+)%?.*/\1/" <<<"$1"; }
echo "== measured bubble (the stages' mean pipe wait) against (PP-1)/V/(m+(PP-1)/V), PP 2 =="
for v in 1 2; do
  for m in 4 8 16; do
    "${mpi[@]}" -np 2 "$bin/pretrain" "${common[@]}" --set logging.run_dir="$tmp/pp2v$v-m$m" \
      --set parallel.pipeline_parallel_size=2 --set parallel.virtual_pipeline_size=$v \
      --set "parallel.pipeline_layers=$([[ $v == 1 ]] && echo '[6, 2]' || echo '[3, 1, 3, 1]')" \
      --set train.global_batch_size=$((4 * m)) --set train.threads=1 > "$tmp/log" 2>&1 ||
      { tail -5 "$tmp/log"; continue; }
    l=$(line "$tmp/log")
    theory=$(python3 -c "p,v,m=2,$v,$m; print(f'{100*(p-1)/v/(m+(p-1)/v):.1f}')")
    echo "PP 2 V $v m $m: pipe wait $(field "$l" "pipe wait")% (theory $theory%), $(field "$l" "loss" | head -c 6) loss, $(grep -oE '[0-9]+ tok/s' <<<"$l")"
  done
done
echo "== PP 2 x 1 thread against PP 1 x 2 threads, m = 8 (global batch 32) =="
for round in 1 2 3; do
  "${mpi[@]}" -np 2 "$bin/pretrain" "${common[@]}" --set logging.run_dir="$tmp/pp2-$round" \
    --set parallel.pipeline_parallel_size=2 --set train.global_batch_size=32 \
    --set "parallel.pipeline_layers=[6, 2]" \
    --set train.threads=1 > "$tmp/pp2.log" 2>&1
  "${mpi[@]}" -np 1 "$bin/pretrain" "${common[@]}" --set logging.run_dir="$tmp/pp1-$round" \
    --set train.global_batch_size=32 --set train.threads=2 > "$tmp/pp1.log" 2>&1
  a=$(grep -oE '[0-9]+ tok/s' <<<"$(line "$tmp/pp2.log")" | cut -d' ' -f1)
  b=$(grep -oE '[0-9]+ tok/s' <<<"$(line "$tmp/pp1.log")" | cut -d' ' -f1)
  echo "round $round: PP 2 x 1 thread $a tok/s, PP 1 x 2 threads $b tok/s: ratio $(python3 -c "print(f'{$a/$b:.2f}')")"
done
