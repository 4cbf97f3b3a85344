#!/usr/bin/env bash
# The second hardening round's cases for convert_checkpoint and generate (each named as the issue
# named it), on tiny models trained for two steps:
#  - "import-hf coerces wrong JSON types and values": the string "false" for tie_word_embeddings,
#    a string window, an unknown position type, a fractional size, integer and boolean weight
#    tensors, a tensor present in two shards: each refused by name, no output written;
#  - "import-hf of a config with an absurd hidden_size": refused before the model is built;
#  - "an export whose config contradicts its own tensors" (GPT-2 and BART with kv_channels other
#    than hidden / heads): refused, no output written;
#  - "BART/mBART generate past the position table" (a 600-word prompt, --max-new-tokens 1000, 201
#    --decoder-ids): the prompt and the ids refused, the generation capped, never a crash.
set -u
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
source "$src/tests/lib/checks.sh"
C=$bin/convert_checkpoint
two=(--set train.train_steps=2 --set train.eval_steps=0 --set logging.interval=1)
train() {  # train NAME RECIPE [--set ...]
  local name=$1 recipe=$2
  shift 2
  "$bin/pretrain" --recipe "$recipe" "${two[@]}" --set logging.run_dir="$tmp/$name" "$@" \
    > "$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; exit 1; }
}
expect_refused() {  # expect_refused NAME PATTERN OUTPUT -- command...: refused, OUTPUT not written
  local name=$1 pattern=$2 output=$3
  shift 4
  expect_fail "$name" "$pattern" -- "$@" || return 1
  [[ -e $output ]] && { bad "$name: $output was written"; return 1; }
  ok "$name: refused ('$pattern'), nothing written"
}
train gpt recipes/gpt/tiny.yaml
train llama recipes/gpt/llama-tiny.yaml
$C export-hf --input "$tmp/gpt/checkpoints/step_00000002" --output "$tmp/gpt_hf" > /dev/null
$C export-hf --input "$tmp/llama/checkpoints/step_00000002" --output "$tmp/llama_hf" > /dev/null
$C export-hf --input "$tmp/gpt/checkpoints/step_00000002" --output "$tmp/gpt_sharded" --max-shard-mb 1 > /dev/null

# variant NAME BASE: a copy of an export whose config.json the caller edits with a Python statement
variant() {
  rm -rf "$tmp/$1"
  cp -r "$tmp/$2" "$tmp/$1"
  /usr/bin/python3 - "$tmp/$1/config.json" "$3" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
}
imp() { $C import-hf --input "$tmp/$1" --output "$tmp/out_$1" --recipe "$2"; }
variant tie_string gpt_hf 'c["tie_word_embeddings"] = "false"'
expect_refused "import-hf: tie_word_embeddings the string \"false\"" "'tie_word_embeddings' is the string \"false\"" \
  "$tmp/out_tie_string" -- imp tie_string recipes/gpt/tiny.yaml
variant window_string llama_hf 'c["sliding_window"] = "4096"'
expect_refused "import-hf: a string sliding_window" "'sliding_window' is the string \"4096\"" \
  "$tmp/out_window_string" -- imp window_string recipes/gpt/llama-tiny.yaml
variant position llama_hf 'c["position_embedding_type"] = "xpos"'
expect_refused "import-hf: an unknown position type" "'position_embedding_type' is \"xpos\", which braid does not have" \
  "$tmp/out_position" -- imp position recipes/gpt/llama-tiny.yaml
variant fraction gpt_hf 'c["n_head"] = 4.5'
expect_refused "import-hf: a fractional size" "'n_head' is 4.5; a positive integer is needed" \
  "$tmp/out_fraction" -- imp fraction recipes/gpt/tiny.yaml
variant absurd gpt_hf 'c["n_embd"] = 1000000; c["n_head"] = 1000'
expect_refused "import-hf: an absurd hidden_size" "but the weight files hold" \
  "$tmp/out_absurd" -- imp absurd recipes/gpt/tiny.yaml
# Weight files: a tensor stored as integers or booleans, one present in two shards.
E=(/usr/bin/python3 tests/lib/safetensors_edit.py)
for dt in I32 BOOL; do
  cp -r "$tmp/gpt_hf" "$tmp/dtype_$dt"
  "${E[@]}" dtype "$tmp/dtype_$dt/model.safetensors" transformer.ln_f.bias $dt
  expect_refused "import-hf: a weight tensor of $dt" "transformer.ln_f.bias in model.safetensors holds" \
    "$tmp/out_dtype_$dt" -- imp "dtype_$dt" recipes/gpt/tiny.yaml
done
cp -r "$tmp/gpt_sharded" "$tmp/twice"
shards=("$tmp"/twice/model-0000*-of-*.safetensors)
name=$(/usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["weight_map"]; print(next(k for k, f in m.items() if f == sys.argv[2]))' \
  "$tmp/twice/model.safetensors.index.json" "$(basename "${shards[0]}")")
"${E[@]}" copy "${shards[0]}" "${shards[1]}" "$name"
expect_refused "import-hf: a tensor present in two shards" "$name is in both" "$tmp/out_twice" -- \
  imp twice recipes/gpt/tiny.yaml

# ---- an export whose config contradicts its own tensors ----
train gpt_kv recipes/gpt/tiny.yaml --set model.kv_channels=32
expect_refused "export-hf of GPT-2 with kv_channels 32 != 64 / 4" "model.kv_channels = 32 wide" "$tmp/gpt_kv_hf" -- \
  $C export-hf --input "$tmp/gpt_kv/checkpoints/step_00000002" --output "$tmp/gpt_kv_hf"
train bart_kv recipes/bart/tiny.yaml --set model.kv_channels=32
expect_refused "export-hf of BART with kv_channels 32 != 64 / 4" "model.kv_channels = 32 wide" "$tmp/bart_kv_hf" -- \
  $C export-hf --input "$tmp/bart_kv/checkpoints/step_00000002" --output "$tmp/bart_kv_hf"

# ---- BART/mBART generate past the position table ----
long=$(/usr/bin/python3 -c 'print(" ".join(["fortune"] * 600))')
ids201=$(/usr/bin/python3 -c 'print(",".join(["5"] * 201))')
for recipe in bart/tiny mbart-tiny; do
  r=recipes/${recipe/mbart-tiny/bart/mbart-tiny}.yaml
  name=${recipe//\//_}
  train "g_$name" "$r"
  G=("$bin/generate" --checkpoint "$tmp/g_$name/checkpoints/step_00000002")
  out=$("${G[@]}" --prompt "$long" 2>&1); rc=$?
  [[ $rc == 1 ]] && grep -q "encoder reads at most 128" <<<"$out" &&
    ok "$recipe generate, a 600-word prompt: refused ('encoder reads at most 128'), exit 1" ||
    { bad "$recipe long prompt: exit $rc"; tail -3 <<<"$out"; }
  out=$("${G[@]}" --prompt "A fool and his <mask>" --max-new-tokens 1000 --temperature 1 2>&1); rc=$?
  [[ $rc == 0 ]] && grep -q "generating at most 126 tokens" <<<"$out" &&
    ok "$recipe generate --max-new-tokens 1000: capped at the decoder's 128 positions, exit 0" ||
    { bad "$recipe --max-new-tokens 1000: exit $rc"; tail -3 <<<"$out"; }
  out=$("${G[@]}" --logits 5,6,7 --decoder-ids "$ids201" 2>&1); rc=$?
  [[ $rc == 1 ]] && grep -q "more ids than the model's 128 positions" <<<"$out" &&
    ok "$recipe generate --decoder-ids with 201 ids: refused, exit 1" ||
    { bad "$recipe 201 decoder ids: exit $rc"; tail -3 <<<"$out"; }
done
exit $fail
