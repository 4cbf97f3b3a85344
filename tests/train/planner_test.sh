#!/usr/bin/env bash
# The planner (recipes/plan.h):
#   1. its memory estimate against the peak of live tensors measured by bench_gpt (gradients,
#      AdamW state, activations, logits) on GPT model 1 with dropout, sequence 256 x micro 8, for
#      train.recompute none, selective and full: within 15% each;
#   2. `pretrain --plan` for LLaMA-2 7B at TP 8 x DP 8: the state parts equal their closed forms
#      from the published parameter count (6,738,415,616: weights and gradients 4 bytes and AdamW
#      8 bytes per parameter over TP 8; AdamW over DP 8 more with the distributed optimizer), and
#      the DP reduction crosses nodes; a usage error exits 2 (a cluster flag without --plan too);
#   3. `pretrain --plan` for Mixtral-8x7B at TP 2 x EP 8 on 64 GPUs: the parameters on each rank
#      (the experts 1/EP, everything 1/TP), the experts per EP rank, the active parameters (the
#      published 12.9B) and the all-to-all volume equal their closed forms.
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
out=$("$bin/pretrain" --recipe recipes/gpt/mixtral-8x7b.yaml --set train.precision=bf16 \
  --set parallel.tensor_parallel_size=2 --set parallel.expert_parallel_size=8 \
  --set train.micro_batch_size=1 --plan --nodes 8)
/usr/bin/python3 - "$out" <<'PY'
import re, sys
t = sys.argv[1]
total, h, f, layers, experts, k = 46702792704, 4096, 14336, 32, 8, 2
expert = 3 * h * f * experts * layers  # SwiGLU: gate, up and down
local = (total - expert * (1 - 1 / 8)) / 2
got = float(re.search(r"([0-9.]+)M on each rank", t).group(1)) * 1e6
assert abs(got - local) < 1e4, (got, local, t)
assert "1 of 8 per EP rank in each of 32 MoE layers (EP 8 of DP 32)" in t, t
active = float(re.search(r"active per token: ([0-9.]+)M", t).group(1)) * 1e6
assert abs(active - (total - expert * (1 - k / experts))) < 1e5 and 12.8e9 < active < 13.0e9, t
tokens = 1 * 4096 * 1024 // 32  # micro 1 x sequence x global batch over DP
volume = 4 * tokens * k * h * 2 * layers * 7 / 8
got = float(re.search(r"forward and backward\): ([0-9.]+) MB", t).group(1)) * 1e6
assert abs(got - volume) < 1e6, (got, volume)
print(f"ok   --plan: mixtral-8x7b at TP 2 x EP 8: {local / 1e6:.1f}M parameters per rank, "
      f"{active / 1e9:.2f}B active, all-to-all {volume / 1e9:.1f} GB per rank per step (closed forms)")
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
