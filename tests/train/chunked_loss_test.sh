#!/usr/bin/env bash
# model.output_chunk_tokens through pretrain for the families beside GPT (GPT's: the LLaMA
# reference test), each at TP 2 on the default corpus for 6 steps with evaluations after steps 3
# and 6, against the same run with the logits whole: every training loss within 1e-5 (relative)
# and every validation loss as printed (4 decimals) equal.
#   T5 (original: tied and scaled), 50-token chunks of 8 x 29 decoder tokens per rank;
#   BART (final_logits_bias), 100-token chunks of 8 x 128;
#   BERT (only the masked rows, with the MLM bias), 64-row chunks of the ~15% of 32 x 64 tokens.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
check() {  # NAME RECIPE CHUNK --set ...
  local name=$1 recipe=$2 chunk=$3
  shift 3
  for c in 0 "$chunk"; do
    "${mpi[@]}" -np 2 "$bin/pretrain" --recipe "$recipe" --set train.train_steps=6 \
      --set train.eval_interval=3 --set train.eval_steps=1 --set parallel.tensor_parallel_size=2 \
      --set model.output_chunk_tokens="$c" --set logging.run_dir="$tmp/$name$c" "$@" \
      > "$tmp/$name$c.log" 2>&1 || { cat "$tmp/$name$c.log"; exit 1; }
  done
  /usr/bin/python3 tests/lib/same_run_losses.py "$tmp/${name}0" "$tmp/$name$chunk" 6 1e-5 \
    "$name, output_chunk_tokens $chunk through the trainer, against the logits whole"
}
check t5 recipes/t5/tiny.yaml 50 --set model.activation=relu --set model.tie_embeddings=true
check bart recipes/bart/tiny.yaml 100
check bert recipes/bert/tiny.yaml 64
