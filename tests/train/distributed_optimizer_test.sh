#!/usr/bin/env bash
# parallel.distributed_optimizer through pretrain on the tiny GPT (20 steps, global batch 8,
# micro batch 2, checkpoints every 10 steps), against the replicated optimizer's run at DP 2:
#  1. the same run with the distributed optimizer at DP 2: losses within 1e-5, and its checkpoint
#     holds whole AdamW moments equal to the replicated run's within 1e-4 of each tensor's
#     largest value (fp32: the gradient norm summed in another grouping moves the clipping factor
#     in its last bits, and 20 AdamW steps carry that to ~3e-5 in the biases' second moments);
#  2. saved at DP 2, resumed at DP 4 and at DP 1 (with the distributed optimizer on, nothing to
#     shard at DP 1): losses of steps 11-20 within 1e-5; resumed at DP 2: bit-identical;
#  3. the converter reshards its checkpoint to TP 2 and exports it to Hugging Face's layout.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
common=(--recipe recipes/gpt/tiny.yaml --set train.train_steps=20 --set train.eval_steps=0
        --set logging.interval=100 --set train.micro_batch_size=2 --set train.global_batch_size=8
        --set checkpoint.save_interval=10)
dist=(--set parallel.distributed_optimizer=true)
run 2 "$tmp/replicated"
run 2 "$tmp/dist" "${dist[@]}"
grep -q "distributed optimizer: AdamW state for" "$tmp/dist.log" ||
  { echo "FAIL: no distributed optimizer in the log"; cat "$tmp/dist.log"; exit 1; }
compare "$tmp/replicated" "$tmp/dist" 1e-5 "distributed optimizer at DP 2 vs replicated"
/usr/bin/python3 - "$tmp/replicated/checkpoints/step_00000020/tp0.safetensors" \
  "$tmp/dist/checkpoints/step_00000020/tp0.safetensors" <<'PY'
import json, struct, sys, torch
def read(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__": continue
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).reshape(v["shape"])
    return out
ref, got = read(sys.argv[1]), read(sys.argv[2])
moments = [k for k in ref if k.startswith("optim/")]
assert moments and sorted(ref) == sorted(got), (len(moments), sorted(set(ref) ^ set(got)))
worst = max(((got[k] - ref[k]).abs().max() / ref[k].abs().max().clamp_min(1e-30)).item() for k in moments)
assert worst < 1e-4, worst
print("ok   its checkpoint holds %d whole moment tensors equal to the replicated run's (max relative %.1e)" % (len(moments), worst))
PY
# 2. other DP sizes, and the same one
run 2 "$tmp/to4" "${dist[@]}" --set train.exit_interval=10
run 4 "$tmp/to4" "${dist[@]}"
grep -q "resumed from .*step_00000010" "$tmp/to4.log"
compare "$tmp/replicated" "$tmp/to4" 1e-5 "saved at DP 2, resumed at DP 4"
run 2 "$tmp/to1" "${dist[@]}" --set train.exit_interval=10
run 1 "$tmp/to1" "${dist[@]}"
grep -q "nothing to shard" "$tmp/to1.log"
compare "$tmp/replicated" "$tmp/to1" 1e-5 "saved at DP 2, resumed at DP 1"
run 2 "$tmp/again" "${dist[@]}" --set train.exit_interval=10
run 2 "$tmp/again" "${dist[@]}"
compare "$tmp/dist" "$tmp/again" 0 "saved and resumed at DP 2: bit-identical"
# 3. the converter
C=$bin/convert_checkpoint
$C reshard --input "$tmp/dist/checkpoints/step_00000020" --output "$tmp/dist-tp2" --tp 2 > /dev/null
$C export-hf --input "$tmp/dist-tp2" --output "$tmp/dist-hf" > /dev/null
[[ -f $tmp/dist-hf/config.json ]] || { echo "FAIL: no export"; exit 1; }
echo "ok   the converter resharded its checkpoint to TP 2 and exported it to Hugging Face's layout"
