#!/usr/bin/env bash
# train.recompute through the trainer for every family, with dropout on (0.1 hidden and
# attention) and at DP 2 (the gradient reducer's hooks fire inside the recomputing backward):
# the LLaMA-style GPT (RoPE, SwiGLU, RMSNorm), BERT (post-LN, padding masks), T5 (relative position
# bias shared by a stack and trained through every layer, cross-attention) and BART
# (cross-attention, learned positions), 4 steps each: the losses of selective and full equal
# none's, bit for bit (losses.tsv prints 17 digits). And the refusal of a layer count without
# full recomputation.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
for recipe in gpt/llama-tiny bert/tiny t5/tiny bart/tiny; do
  fam=${recipe%%/*}
  for r in none selective full; do
    "${mpi[@]}" -np 2 "$bin/pretrain" --recipe "recipes/$recipe.yaml" --set train.train_steps=4 \
      --set train.eval_interval=0 --set model.hidden_dropout=0.1 --set model.attention_dropout=0.1 \
      --set train.recompute=$r --set logging.run_dir="$tmp/$fam-$r" > "$tmp/$fam-$r.log" 2>&1 ||
      { cat "$tmp/$fam-$r.log"; exit 1; }
  done
  for r in selective full; do
    cmp <(cut -f1-2 "$tmp/$fam-none/losses.tsv") <(cut -f1-2 "$tmp/$fam-$r/losses.tsv") ||
      { echo "FAIL: $fam with train.recompute=$r: the losses differ from none's"; exit 1; }
  done
  echo "ok   $fam: train.recompute selective and full, 4 losses at DP 2 with dropout bit-identical to none's"
done
expect_error "train.recompute_num_layers: 1, but train.recompute is 'selective'" \
  "$bin/pretrain" --recipe recipes/gpt/llama-tiny.yaml --set train.recompute=selective \
  --set train.recompute_num_layers=1 --print-config
echo "ok   refused: train.recompute_num_layers without train.recompute: full"
