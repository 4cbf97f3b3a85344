#!/usr/bin/env bash
# Mixture of experts against the dense model with the same active parameters, side by side in one
# run (prints figures; never fails on time), 1 rank x 2 threads, alternating rounds:
#  1. learning and speed on the default corpus: recipes/gpt/mixtral-tiny.yaml (8 SwiGLU experts of
#     width 96, top 2: 2 x 96 active) against recipes/gpt/llama-tiny.yaml (one SwiGLU MLP of width
#     192), the same steps, batches and seed: valid loss at each evaluation (equal tokens), tokens/s
#     and MFU of the last interval;
#  2. speed at a larger width (4 layers, width 512, 8 heads, sequence 256, micro batch 8): 8 experts
#     of width 1024, top 2, against a dense MLP of width 2048.
#   usage: tools/bench/run_moe_bench.sh [rounds (2)] [steps (600)]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
steps=${2:-600}
[[ $rounds =~ ^[1-9][0-9]*$ && $steps =~ ^[1-9][0-9]*$ ]] ||
  { echo "usage: $0 [rounds (2)] [steps (600)]" >&2; exit 2; }
tools/data/prepare_default_corpus.sh build/data/fortunes build/bin >/dev/null
export OMP_NUM_THREADS=2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
last() { grep "\[train\] step" "$1" | tail -1 | grep -oE "[0-9]+ tok/s \| MFU [0-9.]+%"; }
evals() { grep -oE "valid loss [0-9.]+" "$1" | awk '{printf "%s ", $3}'; }
echo "== 1. default corpus, $steps steps, evaluations every $((steps / 4)) =="
for round in $(seq 1 "$rounds"); do
  for recipe in mixtral-tiny llama-tiny; do
    build/bin/pretrain --recipe recipes/gpt/$recipe.yaml --set train.train_steps="$steps" \
      --set train.eval_interval=$((steps / 4)) --set logging.interval="$steps" \
      --set logging.run_dir="$tmp/$recipe" > "$tmp/$recipe.log" 2>&1
    echo "   round $round, $recipe: valid loss $(evals "$tmp/$recipe.log")| $(last "$tmp/$recipe.log")" \
      "| $(grep -oE 'moe_load_cv [0-9.]+|moe_aux [0-9.]+' "$tmp/$recipe.log" | tail -2 | tr '\n' ' ')"
    rm -rf "${tmp:?}/$recipe"
  done
done
echo "== 2. width 512, 4 layers, sequence 256, micro batch 8, 30 steps: 8 x 1024 top 2 against dense 2048 =="
wide=(--set model.num_layers=4 --set model.hidden_size=512 --set model.num_attention_heads=8
  --set model.num_query_groups=4 --set model.seq_length=256 --set train.train_steps=30
  --set train.eval_steps=0 --set logging.interval=30)
for round in $(seq 1 "$rounds"); do
  for kind in moe dense; do
    if [[ $kind == moe ]]; then
      extra=(--recipe recipes/gpt/mixtral-tiny.yaml --set model.ffn_hidden_size=1024)
    else
      extra=(--recipe recipes/gpt/llama-tiny.yaml --set model.ffn_hidden_size=2048)
    fi
    build/bin/pretrain "${extra[@]}" "${wide[@]}" --set logging.run_dir="$tmp/$kind" \
      > "$tmp/$kind.log" 2>&1
    echo "   round $round, $kind: $(last "$tmp/$kind.log")"
    rm -rf "${tmp:?}/$kind"
  done
done
