#!/usr/bin/env bash
# parallel.sequence_parallel through pretrain, against the same run without it:
#  1. the tiny GPT at TP 2 x DP 2 (dropout off), 20 steps: losses within 1e-5;
#  2. BERT (post-LN, padding masks; dropout off), T5 (decoder of 30 positions) and BART
#     (cross-attention over a whole encoder output) at TP 2, 6 steps: losses within 1e-5;
#  3. with dropout on, the distributed optimizer and full recomputation at TP 2 x DP 2: saved at
#     step 10 and resumed, bit-identical to the uninterrupted run (the sharded generator, which
#     draws the dropout of each rank's positions, is restored);
#  4. refusals: a sequence TP does not divide (the encoder's, and T5's decoder's), by name.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
sp=(--set parallel.sequence_parallel=true)
# 1. GPT
common=(--recipe recipes/gpt/tiny.yaml --set train.train_steps=20 --set train.eval_steps=0
        --set logging.interval=100 --set train.micro_batch_size=2 --set train.global_batch_size=8
        --set parallel.tensor_parallel_size=2)
run 4 "$tmp/gpt-off"
run 4 "$tmp/gpt-on" "${sp[@]}"
grep -q "parallel.sequence_parallel: norms, dropout and residual adds on 1/2 of each sequence" \
  "$tmp/gpt-on.log" || { echo "FAIL: no sequence parallelism in the log"; cat "$tmp/gpt-on.log"; exit 1; }
compare "$tmp/gpt-off" "$tmp/gpt-on" 1e-5 "gpt at TP 2 x DP 2: sequence parallel vs off"
# 2. the other families
for recipe in bert/tiny t5/tiny bart/tiny; do
  fam=${recipe%%/*}
  common=(--recipe "recipes/$recipe.yaml" --set train.train_steps=6 --set train.eval_interval=0
          --set model.hidden_dropout=0 --set model.attention_dropout=0
          --set parallel.tensor_parallel_size=2)
  [[ $fam == t5 ]] && common+=(--set model.decoder_seq_length=30)
  run 2 "$tmp/$fam-off"
  run 2 "$tmp/$fam-on" "${sp[@]}"
  grep -q "of each sequence per rank" "$tmp/$fam-on.log"
  compare "$tmp/$fam-off" "$tmp/$fam-on" 1e-5 "$fam at TP 2: sequence parallel vs off"
done
# 3. resumed with dropout on
common=(--recipe recipes/gpt/tiny.yaml --set train.train_steps=20 --set train.eval_steps=0
        --set logging.interval=100 --set train.micro_batch_size=2 --set train.global_batch_size=8
        --set parallel.tensor_parallel_size=2 --set checkpoint.save_interval=10
        --set model.hidden_dropout=0.1 --set model.attention_dropout=0.1
        --set parallel.distributed_optimizer=true --set train.recompute=full "${sp[@]}")
run 4 "$tmp/whole"
run 4 "$tmp/resumed" --set train.exit_interval=10
run 4 "$tmp/resumed"
grep -q "resumed from .*step_00000010" "$tmp/resumed.log"
compare "$tmp/whole" "$tmp/resumed" 0 "sequence parallel with dropout, saved at step 10 and resumed"
# 4. refusals
expect_error "parallel.sequence_parallel: model.seq_length = 63 does not split over" \
  "$bin/pretrain" --recipe recipes/gpt/tiny.yaml "${sp[@]}" --set parallel.tensor_parallel_size=2 \
  --set model.seq_length=63 --print-config
expect_error "parallel.sequence_parallel: the decoder's 29 positions do not split" \
  "$bin/pretrain" --recipe recipes/t5/tiny.yaml "${sp[@]}" --set parallel.tensor_parallel_size=2 \
  --print-config --world-size 2
echo "ok   refused: sequences that TP 2 does not divide (GPT's 63, T5's decoder of 29)"
