#!/usr/bin/env bash
# The conversion tool on a trained tiny GPT checkpoint (saved at TP=2):
#  1. reshard 2 -> 1 -> 4 -> 2 is bit-identical (every tensor, optimizer state included) and the
#     logits are the same at every size (generate --checkpoint at TP 1, 2, 4);
#  2. ours -> Hugging Face -> ours is bit-identical (model weights);
#  3. the exported GPT2LMHeadModel files, read by the plain-PyTorch GPT-2 in
#     tests/models/gpt2_reference.py with Hugging Face names, reproduce our logits within 1e-5;
#  4. release: weights only, bf16, loadable; bad inputs are refused by name, leaving no output;
#  4b. nothing a user has is destroyed: an --output holding other files is refused (and replaced
#     whole with --force); --output equal to --input is refused for export-hf, release and
#     reshard, the input untouched;
#  5. the same for a GPT with a gated MLP (model.activation: geglu, whose fc1 holds two halves
#     split by TP separately) and for an untied output layer (model.tie_embeddings: false):
#     reshard 2 -> 1 -> 2 byte-identical, equal logits at TP 1 and 2, the Hugging Face export
#     run by the PyTorch reference within 1e-5, and import back bit-identical.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
"${mpi[@]}" -np 2 "$bin/pretrain" --recipe recipes/gpt/tiny.yaml --set train.train_steps=6 \
  --set train.eval_steps=0 --set parallel.tensor_parallel_size=2 --set logging.run_dir="$tmp/run" \
  > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
C=$bin/convert_checkpoint
ck=$tmp/run/checkpoints/step_00000006
$C reshard --input "$ck" --output "$tmp/tp1" --tp 1
$C reshard --input "$tmp/tp1" --output "$tmp/tp4" --tp 4
$C reshard --input "$tmp/tp4" --output "$tmp/tp2" --tp 2
cmp "$ck/tp0.safetensors" "$tmp/tp2/tp0.safetensors" && cmp "$ck/tp1.safetensors" "$tmp/tp2/tp1.safetensors" \
  || { echo "FAIL: reshard 2 -> 1 -> 4 -> 2 is not bit-identical"; exit 1; }
echo "ok   reshard 2 -> 1 -> 4 -> 2: shard files byte-identical to the original"
ids="5,17,42,7,7,300,2048,12,1,99,7999,3"
"$bin/generate" --checkpoint "$tmp/tp1" --logits "$ids" > "$tmp/l1.json"
"${mpi[@]}" -np 2 "$bin/generate" --checkpoint "$tmp/tp2" --logits "$ids" > "$tmp/l2.json"
"${mpi[@]}" -np 4 "$bin/generate" --checkpoint "$tmp/tp4" --logits "$ids" > "$tmp/l4.json"
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
t = sys.argv[1]
l = [json.load(open(f"{t}/l{n}.json"))["logits"] for n in (1, 2, 4)]
worst = max(abs(a - b) for other in l[1:] for ra, rb in zip(l[0], other) for a, b in zip(ra, rb))
assert worst < 1e-5, worst
print(f"ok   logits at TP 1, 2, 4 agree (max abs difference {worst:.1e})")
PY
$C export-hf --input "$ck" --output "$tmp/hf"
$C import-hf --input "$tmp/hf" --output "$tmp/back" --recipe recipes/gpt/tiny.yaml --tp 1
/usr/bin/python3 tests/lib/same_tensors.py "$tmp/tp1/tp0.safetensors" "$tmp/back/tp0.safetensors" model/ "ours -> Hugging Face -> ours"
/usr/bin/python3 tests/models/gpt2_reference.py --hf "$tmp/hf" "$tmp/l1.json"
$C release --input "$ck" --output "$tmp/rel"
grep -q 'dtype: "BF16"' "$tmp/rel/manifest.txt" && ! grep -q 'optim/' "$tmp/rel/manifest.txt"
"$bin/generate" --checkpoint "$tmp/rel" --logits "$ids" > /dev/null
echo "ok   release: bf16 weights only, loadable"
if $C reshard --input "$ck" --output "$tmp/bad" --tp 3 2> "$tmp/err"; then echo "FAIL: tp 3 accepted"; exit 1; fi
grep -q "does not divide the 4 attention heads" "$tmp/err" && [[ ! -e $tmp/bad ]]
rm "$tmp/hf/model.safetensors"
if $C import-hf --input "$tmp/hf" --output "$tmp/bad2" --recipe recipes/gpt/tiny.yaml 2> "$tmp/err"; then echo "FAIL"; exit 1; fi
grep -q "model.safetensors" "$tmp/err" && [[ ! -e $tmp/bad2 ]]
echo "ok   bad requests refused by name; no output left behind"

# 4b. Outputs never destroy what is there.
mkdir -p "$tmp/busy" && echo "keep me" > "$tmp/busy/notes.txt"
for cmd in export-hf reshard; do
  extra=(); [[ $cmd == reshard ]] && extra=(--tp 1)
  if $C $cmd --input "$ck" --output "$tmp/busy" "${extra[@]}" 2> "$tmp/err"; then echo "FAIL: $cmd into a non-empty dir"; exit 1; fi
  grep -q "is not empty" "$tmp/err" && grep -q "keep me" "$tmp/busy/notes.txt" \
    || { echo "FAIL: $cmd: $(cat "$tmp/err")"; exit 1; }
done
$C export-hf --input "$ck" --output "$tmp/busy" --force > /dev/null
[[ -f $tmp/busy/config.json && ! -e $tmp/busy/notes.txt ]] || { echo "FAIL: --force did not replace"; exit 1; }
before=$(md5sum "$ck/manifest.pb" "$ck/tp0.safetensors" "$ck/tp1.safetensors")
for cmd in export-hf release reshard; do
  extra=(); [[ $cmd == reshard ]] && extra=(--tp 1)
  if $C $cmd --input "$ck" --output "$ck" --force "${extra[@]}" 2> "$tmp/err"; then echo "FAIL: $cmd in place accepted"; exit 1; fi
  grep -q "is the input" "$tmp/err" || { echo "FAIL: $cmd in place: $(cat "$tmp/err")"; exit 1; }
done
[[ $(md5sum "$ck/manifest.pb" "$ck/tp0.safetensors" "$ck/tp1.safetensors") == "$before" ]] \
  || { echo "FAIL: the input checkpoint changed"; exit 1; }
$C --help | grep -q "usage: convert_checkpoint" && ! $C reshard --input "$ck" 2> /dev/null
[[ $($C reshard --input "$ck" > /dev/null 2>&1; echo $?) == 2 ]] || { echo "FAIL: usage error exit code"; exit 1; }
# Crafted inputs: an empty manifest, safetensors shapes that overflow or are negative.
mkdir -p "$tmp/emptyck" && : > "$tmp/emptyck/manifest.pb"
if $C inspect "$tmp/emptyck" 2> "$tmp/err"; then echo "FAIL: an empty manifest passed inspect"; exit 1; fi
grep -q "empty or incomplete" "$tmp/err" || { echo "FAIL: $(cat "$tmp/err")"; exit 1; }
for shape in "[4611686018427388096]" "[-1, -192]"; do
  mkdir -p "$tmp/crafted" && cp "$tmp/hf/config.json" "$tmp/crafted/"
  /usr/bin/python3 - "$tmp/crafted/model.safetensors" "$shape" <<'PY'
import json, struct, sys
h = json.dumps({"transformer.wte.weight": {"dtype": "F32", "shape": json.loads(sys.argv[2]), "data_offsets": [0, 768]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"\0" * 768)
PY
  rc=0; $C import-hf --input "$tmp/crafted" --output "$tmp/crafted_out" --recipe recipes/gpt/tiny.yaml 2> "$tmp/err" || rc=$?
  [[ $rc == 1 ]] && grep -q "impossible shape" "$tmp/err" || { echo "FAIL: shape $shape: rc $rc: $(cat "$tmp/err")"; exit 1; }
done
echo "ok   crafted inputs refused by name: an empty manifest.pb, safetensors shapes that overflow or are negative"
# config.json's activation_function is honoured, and one braid does not have is refused.
mkdir -p "$tmp/act"
$C export-hf --input "$ck" --output "$tmp/act/hf" > /dev/null
sed -i 's/"gelu_new"/"relu"/' "$tmp/act/hf/config.json"
$C import-hf --input "$tmp/act/hf" --output "$tmp/act/relu" --recipe recipes/gpt/tiny.yaml > /dev/null
grep -q "activation: relu" "$tmp/act/relu/manifest.txt" || { echo "FAIL: relu imported as something else"; exit 1; }
sed -i 's/"relu"/"swish"/' "$tmp/act/hf/config.json"
if $C import-hf --input "$tmp/act/hf" --output "$tmp/act/swish" --recipe recipes/gpt/tiny.yaml 2> "$tmp/err"; then
  echo "FAIL: activation_function swish accepted"; exit 1; fi
grep -q "activation_function 'swish' is not one braid has" "$tmp/err" || { echo "FAIL: $(cat "$tmp/err")"; exit 1; }
echo "ok   import-hf: activation_function relu imported as relu, swish refused by name"
echo "ok   outputs: a non-empty --output refused (replaced with --force), in-place export/release/reshard refused, input untouched; --help 0, usage errors 2"

for variant in geglu untied; do
  case $variant in
    geglu) sets=(--set model.activation=geglu) ;;
    untied) sets=(--set model.tie_embeddings=false) ;;
  esac
  v=$tmp/$variant
  "${mpi[@]}" -np 2 "$bin/pretrain" --recipe recipes/gpt/tiny.yaml --set train.train_steps=4 \
    --set train.eval_steps=0 --set parallel.tensor_parallel_size=2 "${sets[@]}" \
    --set logging.run_dir="$v/run" > "$v.log" 2>&1 || { cat "$v.log"; exit 1; }
  ck=$v/run/checkpoints/step_00000004
  $C reshard --input "$ck" --output "$v/tp1" --tp 1 > /dev/null
  $C reshard --input "$v/tp1" --output "$v/tp2" --tp 2 > /dev/null
  cmp "$ck/tp0.safetensors" "$v/tp2/tp0.safetensors" && cmp "$ck/tp1.safetensors" "$v/tp2/tp1.safetensors" \
    || { echo "FAIL: $variant: reshard 2 -> 1 -> 2 is not bit-identical"; exit 1; }
  "$bin/generate" --checkpoint "$v/tp1" --logits "$ids" > "$v/l1.json"
  "${mpi[@]}" -np 2 "$bin/generate" --checkpoint "$ck" --logits "$ids" > "$v/l2.json"
  /usr/bin/python3 - "$v" <<'PY'
import json, sys
v = sys.argv[1]
a, b = (json.load(open(f"{v}/l{n}.json"))["logits"] for n in (1, 2))
worst = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
assert worst < 1e-5, worst
PY
  $C export-hf --input "$ck" --output "$v/hf" > /dev/null
  /usr/bin/python3 tests/models/gpt2_reference.py --hf "$v/hf" "$v/l1.json" | tail -1
  $C import-hf --input "$v/hf" --output "$v/back" --recipe recipes/gpt/tiny.yaml > /dev/null
  /usr/bin/python3 tests/lib/same_tensors.py "$v/tp1/tp0.safetensors" "$v/back/tp0.safetensors" model/ \
    "$variant: ours -> Hugging Face -> ours"
  # Imported straight at TP 2, every shard equals the training run's (fc1's gate and up halves
  # are split separately: the layout comes from the model, not from the tensor's name).
  $C import-hf --input "$v/hf" --output "$v/back2" --recipe recipes/gpt/tiny.yaml --tp 2 > /dev/null
  for r in 0 1; do
    /usr/bin/python3 tests/lib/same_tensors.py "$ck/tp$r.safetensors" "$v/back2/tp$r.safetensors" \
      model/ "$variant: Hugging Face -> ours at TP 2, shard $r"
  done
  echo "ok   $variant: reshard 2 -> 1 -> 2 byte-identical, logits equal at TP 1 and 2, HF export = reference"
done
