#!/usr/bin/env bash
# The planner (recipes/plan.h):
#   1. its memory estimate against the peak of live tensors measured by bench_gpt (gradients,
#      AdamW state, activations, logits) on GPT model 1 with dropout, sequence 256 x micro 8, for
#      train.recompute none, selective and full: within 15% each;
#   2. `pretrain --plan` for LLaMA-2 7B at TP 8 x DP 8: the state parts equal their closed forms
#      from the published parameter count (6,738,415,616: weights and gradients 4 bytes and AdamW
#      8 bytes per parameter over TP 8; AdamW over DP 8 more with the distributed optimizer), and
#      the DP reduction crosses nodes; a usage error exits 2 (a cluster flag without --plan too).
set -euo pipefail
bin=$1
src=$2
cd "$src"
for r in none selective full; do
  line=$(OMP_NUM_THREADS=1 "$bin/bench_gpt" --threads 2 --steps 3 --dropout --seq 256 --micro 8 \
    --global 8 --recompute "$r" | sed -n 3p)
  /usr/bin/python3 - "$r" "$line" <<'PY'
import re, sys
m = re.search(r"live tensors in training (\d+) MB \(planner: (\d+) MB", sys.argv[2])
measured, planned = float(m.group(1)), float(m.group(2))
err = (planned - measured) / measured
assert abs(err) < 0.15, (sys.argv[1], measured, planned)
print("ok   planner, recompute %s: %.0f MB planned, %.0f MB measured (%+.1f%%)" % (sys.argv[1], planned, measured, 100 * err))
PY
done
out=$("$bin/pretrain" --recipe recipes/gpt/llama2-7b.yaml --set train.precision=bf16 \
  --set parallel.tensor_parallel_size=8 --set train.micro_batch_size=1 --plan --nodes 8)
/usr/bin/python3 - "$out" <<'PY'
import re, sys
t = sys.argv[1]
p = 6738415616
def gb(key):
    return float(re.search(key + r"\s+([0-9.]+)", t).group(1))
assert "TP 8 x DP 8" in t, t
assert abs(gb(r"weights \(fp32\)") - p / 8 * 4 / 1e9) < 0.006, t
assert abs(gb(r"gradients \(fp32\)") - p / 8 * 4 / 1e9) < 0.006, t
assert abs(gb(r"AdamW state \(fp32\)") - p / 8 * 8 / 1e9) < 0.006, t
assert abs(float(re.search(r"distributed optimizer: ([0-9.]+)", t).group(1)) - p / 64 * 8 / 1e9) < 0.006, t
assert "between nodes" in t and "fits (under 90%)" in t, t
print("ok   --plan: llama2-7b at TP 8 x DP 8 on 8 nodes: weights, gradients, AdamW (and sharded over DP) equal their closed forms")
PY
set +e
"$bin/pretrain" --recipe recipes/gpt/llama2-7b.yaml --plan --mfu 1.5 > /dev/null 2>&1
rc=$?
set -e
[[ $rc == 2 ]] || { echo "FAIL: --mfu 1.5 exited $rc, not 2"; exit 1; }
echo "ok   --plan --mfu 1.5 is a usage error (exit 2)"
set +e
out=$("$bin/pretrain" --recipe recipes/gpt/llama2-7b.yaml --gpus-per-node 4 2>&1)
rc=$?
set -e
[[ $rc == 2 && $out == *"--gpus-per-node goes with --plan"* ]] ||
  { echo "FAIL: --gpus-per-node without --plan: exit $rc: $out"; exit 1; }
echo "ok   --gpus-per-node without --plan is a usage error (exit 2)"
