#!/usr/bin/env bash
# parallel.distributed_optimizer through pretrain on the tiny GPT (20 steps, global batch 8,
# micro batch 2, checkpoints every 10 steps), against the replicated optimizer's run at DP 2:
#  1. the same run with the distributed optimizer at DP 2: losses within 1e-5, and its checkpoint
#     holds the AdamW moments as each rank's pieces (tp0.dp{0,1}.optim.safetensors), which,
#     reassembled by the manifest's offsets, equal the replicated run's within 1e-4 of each
#     tensor's largest value (fp32: the gradient norm summed in another grouping moves the clipping factor
#     in its last bits, and 20 AdamW steps carry that to ~3e-5 in the biases' second moments);
#     Overlapping pieces and a missing rank's file are refused;
#  2. saved at DP 2, resumed at DP 4 and at DP 1 (with the distributed optimizer on, nothing to
#     shard at DP 1): losses of steps 11-20 within 1e-5; resumed at DP 2: bit-identical;
#  3. saved at TP 2 x DP 2 (pieces of TP-split moments), resumed at TP 1 x DP 2 with the
#     replicated optimizer: losses of steps 11-20 within 1e-5 of the uninterrupted TP 2 x DP 2 run;
#  4. the converter reshards its checkpoint to TP 2 and exports it to Hugging Face's layout.
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
/usr/bin/python3 - "$tmp/replicated/checkpoints/step_00000020" "$tmp/dist/checkpoints/step_00000020" <<'PY'
# Reads the sharded moments with the format as docs/formats.md states it (manifest.txt's shards:
# offset and length into the flattened slice, one file per DP rank), not with braid's reader.
import json, os, re, struct, sys, torch
sys.path.insert(0, "tests/lib")  # the scripts run from the repository root
from safetensors_f32 import read
def manifest(path):  # protobuf text format: the tensors, each with its global shape and shards
    tensors, stack = [], []
    for line in open(path):
        line = line.strip()
        if line.endswith("{"):
            stack.append({})
        elif line == "}":
            block = stack.pop()
            if stack: stack[-1].setdefault("shards", []).append(block)
            elif "name" in block: tensors.append(block)
        elif stack:
            key, value = line.split(":", 1)
            stack[-1].setdefault(key, []).append(value.strip().strip('"'))
    return [t for t in tensors]
ref_dir, dist_dir = sys.argv[1], sys.argv[2]
ref = read(ref_dir + "/tp0.safetensors")
files = sorted(f for f in os.listdir(dist_dir) if f.endswith(".safetensors"))
assert files == ["tp0.dp0.optim.safetensors", "tp0.dp1.optim.safetensors", "tp0.safetensors"], files
assert not [k for k in read(dist_dir + "/tp0.safetensors") if k.startswith("optim/")], \
    "tp0.safetensors holds moments"
payload = {f: read(dist_dir + "/" + f) for f in files}
got, per_rank = {}, [0, 0]
for t in manifest(dist_dir + "/manifest.txt"):
    name = t["name"][0]
    if not name.startswith("optim/"): continue
    shape = [int(d) for d in t["global_shape"]]
    flat = torch.full((torch.Size(shape).numel(),), float("nan"))
    for s in t["shards"]:
        off, n, d = int(s.get("offset", ["0"])[0]), int(s["length"][0]), int(s.get("dp_rank", ["0"])[0])
        assert s["file"][0] == "tp0.dp%d.optim.safetensors" % d, s
        flat[off:off + n] = payload[s["file"][0]][s["key"][0]]
        per_rank[d] += n
    assert not flat.isnan().any(), name + ": the pieces leave a gap"
    got[name] = flat.reshape(shape)
moments = [k for k in ref if k.startswith("optim/")]
assert moments and sorted(moments) == sorted(got), sorted(set(moments) ^ set(got))
worst = max(((got[k] - ref[k]).abs().max() / ref[k].abs().max().clamp_min(1e-30)).item() for k in moments)
assert worst < 1e-4, worst
share = per_rank[0] / sum(per_rank)
assert 0.4 < share < 0.6, per_rank
print("ok   its checkpoint holds the moments as each DP rank's pieces (%d and %d elements), which "
      "reassemble into %d tensors equal to the replicated run's (max relative %.1e)" %
      (per_rank[0], per_rank[1], len(moments), worst))
PY
# Bad input: pieces that overlap (one moved by an element, the manifest re-encoded with protoc)
# and a rank's missing moments file are refused before anything loads, naming what and where.
ck=$tmp/dist/checkpoints/step_00000020
cp -r "$ck" "$tmp/overlap"
/usr/bin/python3 - "$tmp/overlap/manifest.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"offset: (\d+)", text)
open(sys.argv[1], "w").write(text[:m.start()] + "offset: %d" % (int(m.group(1)) - 1) + text[m.end():])
PY
protoc --encode=braid.proto.Manifest -Iframework/proto framework/proto/checkpoint.proto \
  < "$tmp/overlap/manifest.txt" > "$tmp/overlap/manifest.pb"
refuse=("$bin/pretrain" "${common[@]}" "${dist[@]}" --set logging.run_dir="$tmp/refuse")
expect_error "do not tile" "${refuse[@]}" --resume "$tmp/overlap"
grep -q "overlap/manifest.pb: optim/exp_avg" "$tmp/out.txt" || { cat "$tmp/out.txt"; exit 1; }
cp -r "$ck" "$tmp/lost" && rm "$tmp/lost/tp0.dp1.optim.safetensors"
expect_error "tp0.dp1.optim.safetensors: missing payload" "${refuse[@]}" --resume "$tmp/lost"
echo "ok   refused: overlapping pieces, a missing rank's moments file"
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
# 3. TP 2 x DP 2 (the TP-split moments cut into pieces on both TP ranks, the replicated ones on
#    TP rank 0), resumed at TP 1 x DP 2 with the replicated optimizer
tp2=(--set parallel.tensor_parallel_size=2)
run 4 "$tmp/tp2" "${dist[@]}" "${tp2[@]}"
run 4 "$tmp/tp2to1" "${dist[@]}" "${tp2[@]}" --set train.exit_interval=10
for f in tp0 tp1 tp0.dp0.optim tp0.dp1.optim tp1.dp0.optim tp1.dp1.optim; do
  [[ -f $tmp/tp2to1/checkpoints/step_00000010/$f.safetensors ]] ||
    { echo "FAIL: no $f.safetensors at TP 2 x DP 2"; ls "$tmp/tp2to1/checkpoints/step_00000010"; exit 1; }
done
run 2 "$tmp/tp2to1"
grep -q "resumed from .*step_00000010" "$tmp/tp2to1.log"
compare "$tmp/tp2" "$tmp/tp2to1" 1e-5 "saved at TP 2 x DP 2, resumed at TP 1 x DP 2 (replicated optimizer)"
# 4. the converter
C=$bin/convert_checkpoint
$C reshard --input "$tmp/dist/checkpoints/step_00000020" --output "$tmp/dist-tp2" --tp 2 > /dev/null
$C export-hf --input "$tmp/dist-tp2" --output "$tmp/dist-hf" > /dev/null
[[ -f $tmp/dist-hf/config.json ]] || { echo "FAIL: no export"; exit 1; }
echo "ok   the converter resharded its checkpoint to TP 2 and exported it to Hugging Face's layout"
