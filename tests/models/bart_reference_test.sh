#!/usr/bin/env bash
# BART end to end against an independent reference, for BART (post-LN) and mBART (pre-LN, final
# LayerNorms, scaled embeddings): train the tiny model a few steps on the default corpus at TP=2
# (2 ranks); export it as Hugging Face Bart/MBartForConditionalGeneration; the BART written in
# plain PyTorch (tests/models/bart_reference.py) loads that export and reproduces braid's decoder
# logits and loss (tests/models/bart_logits.cc, on a batch with padding) within 1e-5, with
# braid's model loaded at TP=1 and at TP=2. Then: import-hf gives back bit-identical tensors,
# reshard 2 -> 1 -> 2 gives back bit-identical shards, release loads, `generate` reconstructs a
# prompt with <mask> and prints --logits. Last, the refusals of bad BART settings.
set -euo pipefail
build=$1
src=$2
bin=$build/bin
source "$src/tests/lib/e2e.sh"
C=$bin/convert_checkpoint
check() {  # NAME RECIPE: one variant
  local name=$1 recipe=$2
  local run=$tmp/$name
  "${mpi[@]}" -np 2 "$bin/pretrain" --recipe "$recipe" --set train.train_steps=6 \
    --set train.eval_steps=0 --set parallel.tensor_parallel_size=2 --set logging.run_dir="$run" \
    > "$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; exit 1; }
  "$build/tests/bart_logits" "$run" > "$tmp/$name-tp1.json"
  "${mpi[@]}" -np 2 "$build/tests/bart_logits" "$run" > "$tmp/$name-tp2.json"
  local ck=$run/checkpoints/step_00000006
  $C export-hf --input "$ck" --output "$tmp/$name-hf" > /dev/null
  /usr/bin/python3 tests/models/bart_reference.py "$tmp/$name-hf" "$tmp/$name-tp1.json" \
    "$tmp/$name-tp2.json"
  $C reshard --input "$ck" --output "$tmp/$name-tp1ck" --tp 1 > /dev/null
  $C import-hf --input "$tmp/$name-hf" --output "$tmp/$name-back" --recipe recipes/bart/tiny.yaml \
    --tp 1 > /dev/null
  /usr/bin/python3 tests/lib/same_tensors.py "$tmp/$name-tp1ck/tp0.safetensors" \
    "$tmp/$name-back/tp0.safetensors" model/ "$name: ours -> Hugging Face -> ours"
  $C reshard --input "$tmp/$name-tp1ck" --output "$tmp/$name-tp2again" --tp 2 > /dev/null
  for r in 0 1; do
    /usr/bin/python3 tests/lib/same_tensors.py "$ck/tp$r.safetensors" \
      "$tmp/$name-tp2again/tp$r.safetensors" "" "$name: TP 2 -> 1 -> 2, shard $r (model and optimizer)"
  done
}
check bart recipes/bart/tiny.yaml
check mbart recipes/bart/mbart-tiny.yaml
grep -q '"model_type": "mbart"' "$tmp/mbart-hf/config.json"
grep -q '"decoder_start_token_id": 1' "$tmp/bart-hf/config.json"  # </s> of the default corpus
echo "ok   config.json: model_type mbart for the pre-LN model; decoder start </s>"

# generate: "<mask>" in the prompt reads as the mask token; the decoder writes from </s> <s>.
"$bin/generate" --run-dir "$tmp/bart" --prompt "The <mask> sat on the mat." \
  --max-new-tokens 8 --temperature 0 > "$tmp/gen.txt"
echo "generate (6 steps of training): $(cat "$tmp/gen.txt")"
"$bin/generate" --run-dir "$tmp/bart" --logits 3,17,5,1 --decoder-ids 1,3,17 > "$tmp/logits.json"
/usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ids"] == [3, 17, 5, 1] and j["decoder_ids"] == [1, 3, 17], j.keys()
assert len(j["logits"]) == 3 and len(j["logits"][0]) == 8000, (len(j["logits"]), len(j["logits"][0]))
print("ok   generate --logits: 3 decoder positions x 8000, loss", round(j["loss"], 4))' "$tmp/logits.json"
$C release --input "$tmp/bart/checkpoints/step_00000006" --output "$tmp/bart-rel" --dtype fp32 > /dev/null
"$bin/generate" --checkpoint "$tmp/bart-rel" --logits 3,17,5,1 --decoder-ids 1,3,17 > "$tmp/rel.json"
cmp "$tmp/logits.json" "$tmp/rel.json" || { echo "FAIL: the released BART gives other logits"; exit 1; }
echo "ok   release: the weights-only BART checkpoint gives the same logits in generate"
# Refusals, each naming the key or file.
P=$bin/pretrain
expect_error "model.max_position_embeddings: 64 is smaller than model.seq_length = 128" \
  "$P" --recipe recipes/bart/tiny.yaml --set model.max_position_embeddings=64 --print-config
expect_error "model.norm: rmsnorm, but BART and mBART use LayerNorm" \
  "$P" --recipe recipes/bart/tiny.yaml --set model.norm=rmsnorm --print-config
expect_error "data.languages: 2 language tokens for 1 data.paths" \
  "$P" --recipe recipes/bart/tiny.yaml --set 'data.languages=[en_XX,ro_RO]' --print-config
expect_error "data.languages: 'en_XX' is not one token of" \
  "$P" --recipe recipes/bart/tiny.yaml --set 'data.languages=[en_XX]' --set train.train_steps=1 \
  --set logging.run_dir="$tmp/lang-run"
printf 'the cat sat on the mat\nhello world, the dog ran\nsome more words here and there\n' > "$tmp/small.txt"
spm_train --input="$tmp/small.txt" --model_prefix="$tmp/plain" --vocab_size=40 --hard_vocab_limit=false \
  --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 --minloglevel=2 > /dev/null 2>&1
expect_error "vocabulary lacks <s>, <mask>, which BART needs" \
  "$P" --recipe recipes/bart/tiny.yaml --set data.vocab_file="$tmp/plain.model" \
  --set train.train_steps=1 --set logging.run_dir="$tmp/plain-run"
echo "ok   refused: short positions, RMSNorm, languages not one per path or not in the vocabulary, a vocabulary without <s> and <mask>"
echo "ok   BART reference, conversion and generation"
