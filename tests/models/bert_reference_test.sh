#!/usr/bin/env bash
# BERT end to end against an independent reference: train the tiny BERT a few steps on the
# default corpus at TP=2 (2 ranks), load the final weights at TP=1 and TP=2, and compare the MLM
# and binary-head logits (on a padded batch) with a BERT written in plain PyTorch
# (tests/models/bert_reference.py): within 1e-5. Then export the checkpoint as Hugging Face
# BertForPreTraining, check the reference on those files (HF names) gives the same logits, and
# import it back: bit-identical model tensors.
set -euo pipefail
build=$1
src=$2
bin=$build/bin
source "$src/tests/lib/e2e.sh"
"${mpi[@]}" -np 2 "$build/bin/pretrain" --recipe recipes/bert/tiny.yaml --set train.train_steps=6 \
  --set train.eval_steps=0 --set parallel.tensor_parallel_size=2 --set logging.run_dir="$tmp/run" \
  > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
"$build/tests/bert_logits" "$tmp/run" > "$tmp/tp1.json"
"${mpi[@]}" -np 2 "$build/tests/bert_logits" "$tmp/run" > "$tmp/tp2.json"
/usr/bin/python3 tests/models/bert_reference.py "$tmp/run" "$tmp/tp1.json" "$tmp/tp2.json"
C=$build/bin/convert_checkpoint
ck=$tmp/run/checkpoints/step_00000006
$C export-hf --input "$ck" --output "$tmp/hf"
/usr/bin/python3 tests/models/bert_reference.py --hf "$tmp/hf" "$tmp/run" "$tmp/tp1.json"
$C reshard --input "$ck" --output "$tmp/tp1ck" --tp 1
$C import-hf --input "$tmp/hf" --output "$tmp/back" --recipe recipes/bert/tiny.yaml --tp 1
/usr/bin/python3 tests/lib/same_tensors.py "$tmp/tp1ck/tp0.safetensors" "$tmp/back/tp0.safetensors" model/ "BERT ours -> Hugging Face -> ours"
