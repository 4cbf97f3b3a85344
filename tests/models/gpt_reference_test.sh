#!/usr/bin/env bash
# End to end against an independent reference: train the tiny GPT for a few steps on the default
# corpus (2 ranks, TP=2), then `generate --logits` at TP=1 and at TP=2 (a different TP size than
# training: weights reshard on load), and compare both with a GPT-2 written in plain PyTorch
# (tests/models/gpt2_reference.py) loaded with the saved weights: logits and loss within 1e-5.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
"${mpi[@]}" -np 2 "$bin/pretrain" --recipe recipes/gpt/tiny.yaml \
  --set parallel.tensor_parallel_size=2 --set train.train_steps=8 --set train.eval_steps=1 \
  --set logging.run_dir="$tmp/run" > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
# The saved config holds the resolved sizes: the vocabulary from the tokenizer, padded for TP 2.
grep -q "vocab_size: 8000 .*# derived" "$tmp/run/final/config.yaml" &&
  grep -q "padded_vocab_size=8192" "$tmp/run/final/config.yaml" ||
  { echo "FAIL: final/config.yaml lacks the resolved sizes"; cat "$tmp/run/final/config.yaml"; exit 1; }
echo "ok   final/config.yaml records the resolved vocabulary (8000, padded to 8192 at TP 2)"
ids="5,17,42,7,7,300,2048,12,1,99,7999,3"
"$bin/generate" --run-dir "$tmp/run" --logits "$ids" > "$tmp/tp1.json"
"${mpi[@]}" -np 2 "$bin/generate" --run-dir "$tmp/run" --logits "$ids" > "$tmp/tp2.json"
/usr/bin/python3 tests/models/gpt2_reference.py "$tmp/run" "$tmp/tp1.json" "$tmp/tp2.json"
# Sampling works and is the same at any TP size.
a=$("$bin/generate" --run-dir "$tmp/run" --prompt "The meaning of life" --max-new-tokens 12 --seed 3)
b=$("${mpi[@]}" -np 2 "$bin/generate" --run-dir "$tmp/run" --prompt "The meaning of life" --max-new-tokens 12 --seed 3)
[[ "$a" == "$b" && "$a" == "The meaning of life"* ]] || { echo "FAIL: samples differ: '$a' vs '$b'"; exit 1; }
echo "ok   generate: the same 12 sampled tokens at TP=1 and TP=2: $a"
# A prompt that tokenizes to nothing is refused, not a crash.
if "$bin/generate" --run-dir "$tmp/run" --prompt " " > "$tmp/empty.out" 2>&1; then echo "FAIL: an empty prompt was accepted"; exit 1; fi
grep -q "empty after tokenization" "$tmp/empty.out" || { echo "FAIL: $(cat "$tmp/empty.out")"; exit 1; }
echo "ok   generate: a prompt that tokenizes to nothing is refused by name"
