#!/usr/bin/env bash
# model.output_chunk_tokens for T5, BART and BERT against the logits whole, side by side in one
# run (prints figures; never fails on time): bench_gpt's model of each family (4 layers, width
# 256, 4 heads, sequence 256, micro batch 8, vocabulary 32000, 1 rank x 2 threads, 12 steps),
# whole and in chunks of 512 tokens alternated: tokens/s and the peak of live tensors in training
# (gradients, AdamW state, activations, logits). BERT's chunked path scores only the masked rows.
#   usage: tools/bench/run_chunk_families_bench.sh [rounds (2)]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [rounds (a positive integer, 2)]" >&2; exit 2; }
export OMP_NUM_THREADS=1
for recipe in t5 bart bert; do
  echo "== $recipe: vocabulary 32000, sequence 256, micro batch 8, 2 threads =="
  for round in $(seq 1 "$rounds"); do
    for chunk in 0 512; do
      out=$(build/bin/bench_gpt --recipe "$recipe" --vocab 32000 --threads 2 --steps 12 \
        --chunk "$chunk" 2>&1)
      echo "   round $round, output_chunk_tokens=$chunk: $(grep -o '[0-9]* tokens/s' <<<"$out" | head -1)," \
        "$(grep -o 'peak live tensors in training [0-9]* MB' <<<"$out")"
    done
  done
done
