#!/usr/bin/env bash
# Exact resume on the tiny GPT and the default corpus (losses from <run_dir>/losses.tsv):
#  1. same layout (DP=2): 20 steps straight == 10 steps, stop (train.exit_interval), resume, 10
#     more -- bit-identical losses;
#  2. TP=2 -> TP=1 and DP=2 -> DP=1 (same global batch): within 1e-5 of the straight run;
#  3. refusals, each with a clear message and nothing overwritten: a checkpoint of another model
#     shape, a truncated payload, a checksum mismatch, a newer format version, a directory without
#     a complete manifest.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
common=(--recipe recipes/gpt/tiny.yaml --set train.train_steps=20 --set train.eval_steps=0
        --set logging.interval=100)
# 1. same layout
run 2 "$tmp/straight"
run 2 "$tmp/resumed" --set train.exit_interval=10
grep -q "stopping after step 10" "$tmp/resumed.log"
run 2 "$tmp/resumed"
grep -q "resumed from .*step_00000010" "$tmp/resumed.log"
compare "$tmp/straight" "$tmp/resumed" 0 "DP=2 resume, same layout: bit-identical"
# TP=2, same layout: each rank reads only its own shard file (+ the replicated tensors' file)
run 2 "$tmp/tp2" --set parallel.tensor_parallel_size=2
run 2 "$tmp/tp2again" --set parallel.tensor_parallel_size=2 --set train.exit_interval=10
run 2 "$tmp/tp2again" --set parallel.tensor_parallel_size=2
compare "$tmp/tp2" "$tmp/tp2again" 0 "TP=2 resume, same layout: bit-identical"
# 2. other layouts (global batch 8 throughout)
run 2 "$tmp/tp2to1" --set parallel.tensor_parallel_size=2 --set train.exit_interval=10
run 1 "$tmp/tp2to1"
compare "$tmp/tp2" "$tmp/tp2to1" 1e-5 "TP=2 -> TP=1"
run 2 "$tmp/dp2" --set train.micro_batch_size=4 --set train.global_batch_size=8
run 2 "$tmp/dp2to1" --set train.micro_batch_size=4 --set train.global_batch_size=8 --set train.exit_interval=10
run 1 "$tmp/dp2to1" --set train.micro_batch_size=4 --set train.global_batch_size=8
compare "$tmp/dp2" "$tmp/dp2to1" 1e-5 "DP=2 -> DP=1"
# 3. refusals
ck=$tmp/straight/checkpoints
expect_refusal() {  # NAME PATTERN args...
  local name=$1 pattern=$2
  shift 2
  if "$bin/pretrain" "${common[@]}" --set logging.run_dir="$tmp/refuse" "$@" > "$tmp/refuse.log" 2>&1; then
    echo "FAIL $name: accepted"; exit 1
  fi
  grep -qF -- "$pattern" "$tmp/refuse.log" || { echo "FAIL $name: no '$pattern' in:"; cat "$tmp/refuse.log"; exit 1; }
  echo "ok   refused: $name"
}
cp -r "$ck/step_00000020" "$tmp/good"
expect_refusal "another model shape" "model/h.0.mlp.fc1.weight has shape [256, 64] in the checkpoint, [512, 64] in this model" \
  --resume "$tmp/good" --set model.ffn_hidden_size=512
cp -r "$tmp/good" "$tmp/trunc"; truncate -s -100 "$tmp/trunc/tp0.safetensors"
expect_refusal "truncated payload" "tp0.safetensors: " --resume "$tmp/trunc"
grep -q "truncated" "$tmp/refuse.log"
cp -r "$tmp/good" "$tmp/flip"
/usr/bin/python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(-9,2); b=f.read(1); f.seek(-9,2); f.write(bytes([b[0]^1]))' "$tmp/flip/tp0.safetensors"
expect_refusal "checksum mismatch" "checksum mismatch" --resume "$tmp/flip"
cp -r "$tmp/good" "$tmp/newer"
/usr/bin/python3 - "$tmp/newer/manifest.pb" <<'PY'
import sys
p = sys.argv[1]; b = open(p, "rb").read()
assert b[0] == 0x08  # field 1 (format_version), varint
open(p, "wb").write(bytes([0x08, 99]) + b[2:])
PY
expect_refusal "newer format version" "format version 99 is newer" --resume "$tmp/newer"
cp -r "$tmp/good" "$tmp/partial"; rm "$tmp/partial/manifest.pb"
expect_refusal "incomplete directory" "no complete manifest" --resume "$tmp/partial"
cmp "$ck/step_00000020/tp0.safetensors" "$tmp/good/tp0.safetensors"
echo "ok   nothing was overwritten"
