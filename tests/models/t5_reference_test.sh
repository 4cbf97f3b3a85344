#!/usr/bin/env bash
# T5 end to end against an independent reference, for T5 v1.1 (gated-GELU, untied) and the
# original T5 (ReLU, tied and scaled): train the tiny T5 a few steps on the default corpus at
# TP=2 (2 ranks); export it as Hugging Face T5ForConditionalGeneration; the T5 written in plain
# PyTorch (tests/models/t5_reference.py) loads that export and reproduces braid's decoder logits
# and loss (tests/models/t5_logits.cc, on a batch with padding) within 1e-5, with braid's model
# loaded at TP=1 and at TP=2. Then: import-hf gives back bit-identical tensors, reshard 2 -> 1 ->
# 2 gives back bit-identical shards, release loads, and `generate` fills in sentinels and prints
# --logits. Last, the refusals of bad T5 settings.
set -euo pipefail
build=$1
src=$2
bin=$build/bin
source "$src/tests/lib/e2e.sh"
C=$bin/convert_checkpoint
check() {  # NAME --set ... : one variant
  local name=$1
  shift
  local run=$tmp/$name
  "${mpi[@]}" -np 2 "$bin/pretrain" --recipe recipes/t5/tiny.yaml --set train.train_steps=6 \
    --set train.eval_steps=0 --set parallel.tensor_parallel_size=2 --set logging.run_dir="$run" \
    "$@" > "$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; exit 1; }
  "$build/tests/t5_logits" "$run" > "$tmp/$name-tp1.json"
  "${mpi[@]}" -np 2 "$build/tests/t5_logits" "$run" > "$tmp/$name-tp2.json"
  local ck=$run/checkpoints/step_00000006
  $C export-hf --input "$ck" --output "$tmp/$name-hf" > /dev/null
  /usr/bin/python3 tests/models/t5_reference.py "$tmp/$name-hf" "$tmp/$name-tp1.json" \
    "$tmp/$name-tp2.json"
  $C reshard --input "$ck" --output "$tmp/$name-tp1ck" --tp 1 > /dev/null
  $C import-hf --input "$tmp/$name-hf" --output "$tmp/$name-back" --recipe recipes/t5/tiny.yaml \
    --tp 1 > /dev/null
  /usr/bin/python3 tests/lib/same_tensors.py "$tmp/$name-tp1ck/tp0.safetensors" \
    "$tmp/$name-back/tp0.safetensors" model/ "T5 $name: ours -> Hugging Face -> ours"
  $C reshard --input "$tmp/$name-tp1ck" --output "$tmp/$name-tp2again" --tp 2 > /dev/null
  for r in 0 1; do
    /usr/bin/python3 tests/lib/same_tensors.py "$ck/tp$r.safetensors" \
      "$tmp/$name-tp2again/tp$r.safetensors" "" "T5 $name: TP 2 -> 1 -> 2, shard $r (model and optimizer)"
  done
}
check v1.1
check original --set model.activation=relu --set model.tie_embeddings=true

# generate: the prompt's sentinels read as sentinels (tokenize shows the ids); the decoder
# writes from the decoder start (after 6 steps, whatever it writes).
"$bin/generate" --run-dir "$tmp/v1.1" --prompt "The <extra_id_0> walks in <extra_id_1> park" \
  --max-new-tokens 8 --temperature 0 > "$tmp/gen.txt"
echo "generate (6 steps of training): $(cat "$tmp/gen.txt")"
ids=$(echo '{"text": "The <extra_id_0> walks in <extra_id_1> park"}' | "$bin/tokenize" \
  --type sentencepiece --vocab build/data/fortunes/spm.model --vocab-extra-ids 100)
/usr/bin/python3 -c '
import json, sys
j = json.loads(sys.argv[1])
assert 8099 in j["ids"] and 8098 in j["ids"], j
assert j["ids"].index(8099) < j["ids"].index(8098), j
assert "<extra_id_0>" in j["tokens"], j
print("ok   tokenize reads <extra_id_0> as 8099, <extra_id_1> as 8098")' "$ids"
"$bin/generate" --run-dir "$tmp/v1.1" --logits 5,17,1 --decoder-ids 0,8099,5 > "$tmp/logits.json"
/usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ids"] == [5, 17, 1] and j["decoder_ids"] == [0, 8099, 5], j.keys()
assert len(j["logits"]) == 3 and len(j["logits"][0]) == 8100, (len(j["logits"]), len(j["logits"][0]))
print("ok   generate --logits: 3 decoder positions x 8100, loss", round(j["loss"], 4))' "$tmp/logits.json"
# release (weights only, fp32 here) loads in generate and gives the same logits, bit for bit.
$C release --input "$tmp/v1.1/checkpoints/step_00000006" --output "$tmp/v1.1-rel" --dtype fp32 > /dev/null
"$bin/generate" --checkpoint "$tmp/v1.1-rel" --logits 5,17,1 --decoder-ids 0,8099,5 > "$tmp/rel.json"
cmp "$tmp/logits.json" "$tmp/rel.json" || { echo "FAIL: the released T5 gives other logits"; exit 1; }
echo "ok   release: the weights-only T5 checkpoint gives the same logits in generate"
if "$bin/generate" --run-dir "$tmp/v1.1" --logits 5,17,1 2> "$tmp/err.txt"; then
  echo "FAIL: --logits without --decoder-ids accepted for T5"; exit 1
fi
grep -q "decoder-ids" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
# Refusals, each naming the key or file: a decoder shorter than the targets, fewer sentinels than
# spans, a SentencePiece model with some sentinels but not all.
P=$bin/pretrain
expect_error "decoder_seq_length: 10, but an encoder of 128 tokens makes targets of 29" \
  "$P" --recipe recipes/t5/tiny.yaml --set model.decoder_seq_length=10 --print-config
expect_error "vocab_extra_ids: 3 sentinels, but a chunk of 141 tokens has 7 noise spans" \
  "$P" --recipe recipes/t5/tiny.yaml --set data.vocab_extra_ids=3 --print-config
printf 'the cat sat on the mat\nhello world, the dog ran\nsome more words here and there\n' > "$tmp/small.txt"
spm_train --input="$tmp/small.txt" --model_prefix="$tmp/part" --vocab_size=40 --hard_vocab_limit=false \
  --user_defined_symbols='<extra_id_0>,<extra_id_1>' --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 \
  --minloglevel=2 > /dev/null 2>&1
expect_error "has 2 of the 100 sentinels data.vocab_extra_ids asks for; missing 98: <extra_id_2>" \
  "$P" --recipe recipes/t5/tiny.yaml --set data.vocab_file="$tmp/part.model" \
  --set train.train_steps=1 --set logging.run_dir="$tmp/part-run"
echo "ok   refused: a short decoder, too few sentinels, a model with 2 of 100 sentinels"
echo "ok   T5 reference, conversion and generation"
