# Sourced by the Hugging Face layout tests after tests/lib/e2e.sh: P (pretrain), C
# (convert_checkpoint), ids (the token ids scored) and hf_layout_check.
P=$bin/pretrain
C=$bin/convert_checkpoint
ids="5,17,42,7,7,300,2048,12,1,99,7999,3"
# hf_layout_check REFERENCE.py NAME RECIPE SETTINGS...: train 6 steps at TP 2 (2 ranks); score
# `ids` with `generate --logits` at TP 1 and 2; export-hf, and the plain-PyTorch REFERENCE loads
# the export and reproduces both; import-hf gives back the TP 1 tensors bit for bit; reshard
# 2 -> 1 -> 2 gives back the TP 2 checkpoint (weights and AdamW state) bit for bit.
hf_layout_check() {
  local reference=$1 name=$2 recipe=$3
  shift 3
  local run=$tmp/$name
  "${mpi[@]}" -np 2 "$P" --recipe "$recipe" --set train.train_steps=6 --set train.eval_steps=0 \
    --set parallel.tensor_parallel_size=2 --set logging.run_dir="$run" "$@" > "$tmp/$name.log" 2>&1 ||
    { cat "$tmp/$name.log"; exit 1; }
  "$bin/generate" --run-dir "$run" --logits "$ids" > "$tmp/$name-tp1.json"
  "${mpi[@]}" -np 2 "$bin/generate" --run-dir "$run" --logits "$ids" > "$tmp/$name-tp2.json"
  local ck=$run/checkpoints/step_00000006
  $C export-hf --input "$ck" --output "$tmp/$name-hf" > /dev/null
  /usr/bin/python3 "$reference" "$tmp/$name-hf" "$tmp/$name-tp1.json" "$tmp/$name-tp2.json"
  $C reshard --input "$ck" --output "$tmp/$name-tp1ck" --tp 1 > /dev/null
  $C import-hf --input "$tmp/$name-hf" --output "$tmp/$name-back" --recipe recipes/gpt/tiny.yaml \
    --tp 1 > /dev/null
  /usr/bin/python3 tests/lib/same_tensors.py "$tmp/$name-tp1ck/tp0.safetensors" \
    "$tmp/$name-back/tp0.safetensors" model/ "$name: ours -> Hugging Face -> ours"
  $C reshard --input "$tmp/$name-tp1ck" --output "$tmp/$name-tp2ck" --tp 2 > /dev/null
  for r in 0 1; do
    /usr/bin/python3 tests/lib/same_tensors.py "$ck/tp$r.safetensors" \
      "$tmp/$name-tp2ck/tp$r.safetensors" "" "$name: TP 2 -> 1 -> 2, rank $r (weights and AdamW state)"
  done
}

