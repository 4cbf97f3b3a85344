#!/usr/bin/env bash
# Resume across layouts for a recipe other than GPT's (resume_test.sh covers GPT): 20 steps at
# DP=2 straight against 10 steps at DP=2, a stop (train.exit_interval), and 10 more at DP=1 with
# two accumulated micro-batches (same global batch 8); then the same from TP=2 to TP=1. The
# loader hands every sample to the same step at any DP size, so the losses agree within 1e-5
# (summation order alone differs).
#   usage: resume_layout_test.sh BIN SRC RECIPE
set -euo pipefail
bin=$1
src=$2
recipe=$3
source "$src/tests/lib/e2e.sh"
common=(--recipe "$recipe" --set train.train_steps=20 --set train.eval_steps=0
        --set logging.interval=100 --set train.micro_batch_size=4 --set train.global_batch_size=8)
run 2 "$tmp/dp2"
run 2 "$tmp/dp2to1" --set train.exit_interval=10
run 1 "$tmp/dp2to1"
grep -q "resumed from .*step_00000010" "$tmp/dp2to1.log" || { cat "$tmp/dp2to1.log"; exit 1; }
compare "$tmp/dp2" "$tmp/dp2to1" 1e-5 "$recipe: DP=2 -> DP=1"
run 2 "$tmp/tp2" --set parallel.tensor_parallel_size=2
run 2 "$tmp/tp2to1" --set parallel.tensor_parallel_size=2 --set train.exit_interval=10
run 1 "$tmp/tp2to1"
compare "$tmp/tp2" "$tmp/tp2to1" 1e-5 "$recipe: TP=2 -> TP=1"
