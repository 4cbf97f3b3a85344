#!/usr/bin/env bash
# BERT end to end against an independent reference: train the tiny BERT a few steps on the
# default corpus at TP=2 (2 ranks), load the final weights at TP=1 and TP=2, and compare the MLM
# and binary-head logits (on a padded batch) with a BERT written in plain PyTorch
# (tests/models/bert_reference.py): within 1e-5.
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$src"
tools/data/prepare_default_corpus.sh build/data/fortunes "$build/bin" >/dev/null
export OMP_NUM_THREADS=1
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
"${mpi[@]}" -np 2 "$build/bin/pretrain" --recipe recipes/bert/tiny.yaml --set train.train_steps=6 \
  --set train.eval_steps=0 --set parallel.tensor_parallel_size=2 --set logging.run_dir="$tmp/run" \
  > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
"$build/tests/bert_logits" "$tmp/run" > "$tmp/tp1.json"
"${mpi[@]}" -np 2 "$build/tests/bert_logits" "$tmp/run" > "$tmp/tp2.json"
/usr/bin/python3 tests/models/bert_reference.py "$tmp/run" "$tmp/tp1.json" "$tmp/tp2.json"
