#!/usr/bin/env bash
# Expert parallelism benchmarks (prints figures; never fails on time), on the MoE shape of
# tools/bench/run_moe_bench.sh part 2 (4 layers, width 512, 8 heads in 4 key/value groups,
# sequence 256; 8 SwiGLU experts of width 1024, top 2), fp32, global batch 16 of micro-batches of 8:
#  1. pretrain on the default corpus: EP 2 (2 ranks x 1 thread, DP 2) against EP 1 on 1 rank x 2
#     threads (2 micro-batches per step) and EP 1 on 2 ranks x 1 thread (DP 2), the same cores and
#     the same samples per step, alternating rounds: tokens/s of the last interval, and EP 2's
#     all-to-all share of the step (the run log's moe_a2a_share);
#  2. per-rank memory at EP 1, 2 and 4, all on 4 ranks x 1 thread (DP 4), bench_gpt on random
#     samples: the expert parameters on each rank, the peak of live tensors (gradients, AdamW state,
#     activations: the caching allocator's count) and the peak RSS, with the median step.
#   usage: tools/bench/run_moe_ep_bench.sh [rounds (2)] [steps (30)]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
steps=${2:-30}
[[ $rounds =~ ^[1-9][0-9]*$ && $steps =~ ^[1-9][0-9]*$ ]] ||
  { echo "usage: $0 [rounds (2)] [steps (30)]" >&2; exit 2; }
tools/data/prepare_default_corpus.sh build/data/fortunes build/bin >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
shape=(--recipe recipes/gpt/mixtral-tiny.yaml --set model.ffn_hidden_size=1024
  --set model.num_layers=4 --set model.hidden_size=512 --set model.num_attention_heads=8
  --set model.num_query_groups=4 --set model.seq_length=256 --set train.micro_batch_size=8
  --set train.global_batch_size=16 --set train.eval_steps=0)
last() { grep "\[train\] step" "$1" | tail -1; }
echo "== 1. EP 2 x 1 thread against EP 1 x 2 threads, $steps steps, global batch 16 x 256 tokens =="
for round in $(seq 1 "$rounds"); do
  for kind in ep1-1x2 ep1-2x1 ep2-2x1; do
    dir=$tmp/$kind
    case $kind in
      ep1-1x2) launch=(env OMP_NUM_THREADS=2 build/bin/pretrain --set train.threads=2) ;;
      ep1-2x1) launch=("${mpi[@]}" -np 2 -x OMP_NUM_THREADS=1 build/bin/pretrain --set train.threads=1) ;;
      ep2-2x1) launch=("${mpi[@]}" -np 2 -x OMP_NUM_THREADS=1 build/bin/pretrain --set train.threads=1
        --set parallel.expert_parallel_size=2) ;;
    esac
    "${launch[@]}" "${shape[@]}" --set train.train_steps="$steps" --set logging.interval="$steps" \
      --set logging.run_dir="$dir" > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
    line=$(last "$dir.log")
    echo "   round $round, $kind: $(grep -oE '[0-9]+ tok/s' <<< "$line")" \
      "$(grep -oE 'moe_a2a_share [0-9.]+' <<< "$line" || true)"
    rm -rf "${dir:?}"
  done
done
echo "== 2. per-rank memory at EP 1, 2, 4 (4 ranks x 1 thread, bench_gpt, micro batch 8) =="
for ep in 1 2 4; do
  out=$("${mpi[@]}" -np 4 -x OMP_NUM_THREADS=1 build/bin/bench_gpt \
    --base recipes/gpt/mixtral-tiny.yaml --layers 4 --hidden 512 --heads 8 --ffn 1024 --seq 256 \
    --micro 8 --global 32 --steps 8 --threads 1 --ep $ep 2>&1) || { echo "$out"; exit 1; }
  echo "   EP $ep: $(grep -oE 'per rank: [0-9]+ parameters \([0-9]+ of them experts' <<< "$out")" \
    "| $(grep -oE 'peak RSS [0-9]+ MB; peak live tensors in training [0-9]+ MB' <<< "$out")" \
    "| $(grep -oE 'step [0-9.]+ s' <<< "$out")"
done
