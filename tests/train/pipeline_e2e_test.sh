#!/usr/bin/env bash
# Pipeline parallelism through pretrain on the tiny GPT made 4 layers deep (20 steps, global
# batch 8, micro batch 2, checkpoints every 10 steps; fp32), against the same run at PP 1 x DP 2:
#  1. PP 2 (1F1B) and PP 2 x 2 virtual stages (interleaved): losses within 1e-5, evaluation on
#     the last stage reported; each stage wrote its own files (pp0.tp0, pp1.tp0);
#  2. saved at PP 2, resumed at PP 1 x DP 2: losses of steps 11-20 within 1e-5 of the
#     uninterrupted run;
#  3. the converter exports the PP checkpoint to Hugging Face's layout: every tensor equal to the
#     one the stages saved, read with the format as docs/formats.md states it (not braid's reader);
#  4. --plan shows the 3-D layout and the bubble; a split that does not divide is refused by name;
#  5. the last stage killed (SIGKILL) mid-step while the first waits on it: mpirun ends the job
#     non-zero within 30 s, naming the dead rank;
#  6. BERT, T5 and BART (tiny, dropout off, 20 steps) at PP 2 follow PP 1 x DP 2 within 1e-5 (the
#     encoder-decoder models split encoder | decoder); T5 at PP 4 (one layer a stage, the encoder
#     output sent on through the decoder stages) likewise, its target_acc (computed on the last
#     stage) reported as at PP 1; the T5 PP 2 checkpoint exports to
#     Hugging Face's layout with the same tensor names and shapes as the PP 1 one;
#  7. convert_checkpoint reshard: the T5 PP 2 checkpoint to PP 1 and the PP 1 one to PP 4 hold the
#     input's tensors bitwise (each once, in the stage files a run at that PP writes; read with an
#     independent reader), and a PP 4 run resumed from the latter follows the uninterrupted run
#     (steps 11-20 within 1e-5); --pp that does not divide the
#     layers is refused by name with nothing written, and --pp outside reshard is a usage error;
#  8. generate reads a PP checkpoint: greedy continuations from the T5 PP 2 checkpoint and from
#     its reshard to PP 1 are identical.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
common=(--recipe recipes/gpt/tiny.yaml --set model.num_layers=4 --set train.train_steps=20
        --set train.eval_interval=10 --set train.eval_steps=1 --set logging.interval=100
        --set train.micro_batch_size=2 --set train.global_batch_size=8
        --set checkpoint.save_interval=10)
run 2 "$tmp/dp2"
run 2 "$tmp/pp2" --set parallel.pipeline_parallel_size=2
grep -q "TP 1 x DP 1 x PP 2" "$tmp/pp2.log" || { echo "FAIL: no 3-D layout line"; cat "$tmp/pp2.log"; exit 1; }
grep -q "pipe wait" "$tmp/pp2.log" || { echo "FAIL: no pipeline wait in the log"; exit 1; }
grep -q "valid loss" "$tmp/pp2.log" || { echo "FAIL: no evaluation at PP 2"; cat "$tmp/pp2.log"; exit 1; }
compare "$tmp/dp2" "$tmp/pp2" 1e-5 "gpt at PP 2 (1F1B) vs PP 1 x DP 2"
run 2 "$tmp/vpp" --set parallel.pipeline_parallel_size=2 --set parallel.virtual_pipeline_size=2
compare "$tmp/dp2" "$tmp/vpp" 1e-5 "gpt at PP 2 x 2 virtual (interleaved 1F1B) vs PP 1 x DP 2"
for f in pp0.tp0.safetensors pp1.tp0.safetensors; do
  [[ -f $tmp/pp2/checkpoints/step_00000020/$f ]] ||
    { echo "FAIL: no $f"; ls "$tmp/pp2/checkpoints/step_00000020"; exit 1; }
done

# 2. PP 2 -> PP 1 x DP 2 at step 10.
mkdir -p "$tmp/resumed/checkpoints"
cp -r "$tmp/pp2/checkpoints/step_00000010" "$tmp/resumed/checkpoints/"
echo step_00000010 > "$tmp/resumed/checkpoints/latest"
cp "$tmp/pp2/run_id" "$tmp/resumed/run_id"
head -n 10 "$tmp/pp2/losses.tsv" > "$tmp/resumed/losses.tsv"  # steps 1-10, as run at PP 2
run 2 "$tmp/resumed"
grep -q "resumed from" "$tmp/resumed.log" || { echo "FAIL: did not resume"; cat "$tmp/resumed.log"; exit 1; }
compare "$tmp/dp2" "$tmp/resumed" 1e-5 "saved at PP 2, resumed at PP 1 x DP 2"

# 3. Export of the PP checkpoint.
"$bin/convert_checkpoint" export-hf --input "$tmp/pp2/checkpoints/step_00000020" \
  --output "$tmp/hf" > "$tmp/export.log" 2>&1 || { cat "$tmp/export.log"; exit 1; }
/usr/bin/python3 - "$tmp/pp2/checkpoints/step_00000020" "$tmp/hf/model.safetensors" <<'PY'
import json, struct, sys, torch
sys.path.insert(0, "tests/lib")  # the scripts run from the repository root
from safetensors_f32 import read
stages = {}
for f in ("pp0.tp0.safetensors", "pp1.tp0.safetensors"):
    part = {k[len("model/"):]: v for k, v in read(sys.argv[1] + "/" + f).items() if k.startswith("model/")}
    assert not set(part) & set(stages), f"{f} repeats {set(part) & set(stages)}"
    stages.update(part)
hf = read(sys.argv[2])
assert any(k.startswith("h.3.") for k in stages) and any(k.startswith("h.0.") for k in stages), sorted(stages)
# Hugging Face's GPT-2 names and Conv1D layout differ from ours (transposed, renamed), so each
# exported tensor is matched to a saved one by its values: the same multiset of numbers.
pool = [torch.sort(v.flatten()).values for v in stages.values()]
for k, t in hf.items():
    if k in ("transformer.wte.weight", "lm_head.weight"): continue
    s = torch.sort(t.flatten()).values
    assert any(p.numel() == s.numel() and torch.equal(p, s) for p in pool), f"{k} is no saved tensor"
vocab = hf["transformer.wte.weight"]
assert torch.equal(vocab, stages["wte.weight"][: vocab.shape[0]]), "wte differs"
print(f"ok   export of a PP 2 checkpoint: {len(hf)} Hugging Face tensors from the two stages' {len(stages)}")
PY

# 4. --plan and a refused split.
"$bin/pretrain" --recipe recipes/gpt/llama2-7b.yaml --plan --nodes 8 --gpus-per-node 8 \
  --set parallel.tensor_parallel_size=8 --set parallel.pipeline_parallel_size=4 \
  --set train.global_batch_size=64 > "$tmp/plan.txt" 2>&1 || { cat "$tmp/plan.txt"; exit 1; }
grep -q "TP 8 x DP 2 x PP 4" "$tmp/plan.txt" || { echo "FAIL: plan layout"; cat "$tmp/plan.txt"; exit 1; }
grep -q "bubble" "$tmp/plan.txt" || { echo "FAIL: no bubble in the plan"; cat "$tmp/plan.txt"; exit 1; }
echo "ok   --plan: $(grep -o 'pipeline: [^;]*; [^;]*' "$tmp/plan.txt" | head -1)"
expect_error "parallel.pipeline_parallel_size x virtual_pipeline_size = 3 x 1 = 3 stages do not divide the 4 layers" \
  "${mpi[@]}" -np 3 "$bin/pretrain" "${common[@]}" --set logging.run_dir="$tmp/bad" \
  --set parallel.pipeline_parallel_size=3 --set train.global_batch_size=6
echo "ok   a split that does not divide is refused by name"

# 5. A stage dies mid-run.
"${mpi[@]}" -np 2 "$bin/pretrain" "${common[@]}" --set logging.run_dir="$tmp/dead" \
  --set parallel.pipeline_parallel_size=2 --set train.train_steps=100000 > "$tmp/dead.log" 2>&1 &
job=$!
victim=""
for _ in $(seq 1 300); do
  for pid in $(pgrep -f "$tmp/dead" || true); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then
      victim=$pid
    fi
  done
  [[ -n $victim ]] && grep -q "layout: world" "$tmp/dead/logs/rank0.log" 2>/dev/null && break
  sleep 0.2
done
[[ -n $victim ]] || { echo "FAIL: no rank 1 to kill"; cat "$tmp/dead.log"; kill $job; exit 1; }
sleep 2  # well into the steps
start=$(date +%s)
kill -9 "$victim"
rc=0
timeout 60 tail --pid=$job -f /dev/null || { echo "FAIL: the job hung after its last stage died"; kill -9 $job; exit 1; }
wait $job || rc=$?
elapsed=$(( $(date +%s) - start ))
(( rc != 0 && elapsed <= 30 )) || { echo "FAIL: exit $rc after ${elapsed}s"; cat "$tmp/dead.log"; exit 1; }
grep -qi "rank 1" "$tmp/dead.log" || { echo "FAIL: the dead rank is not named"; cat "$tmp/dead.log"; exit 1; }
echo "ok   the last stage killed mid-run: the job ended (exit $rc) in ${elapsed}s, naming rank 1"

# 6. The other families.
for recipe in bart bert t5; do  # t5 last: its arguments stay in `common` for PP 4 below
  common=(--recipe recipes/$recipe/tiny.yaml --set train.train_steps=20 --set train.eval_steps=0
          --set logging.interval=100 --set train.micro_batch_size=2 --set train.global_batch_size=8
          --set model.hidden_dropout=0 --set model.attention_dropout=0
          --set checkpoint.save_interval=10)
  run 2 "$tmp/${recipe}_dp2"
  run 2 "$tmp/${recipe}_pp2" --set parallel.pipeline_parallel_size=2
  compare "$tmp/${recipe}_dp2" "$tmp/${recipe}_pp2" 1e-5 "$recipe at PP 2 vs PP 1 x DP 2"
done
run 4 "$tmp/t5_pp4" --set parallel.pipeline_parallel_size=4
compare "$tmp/t5_dp2" "$tmp/t5_pp4" 1e-5 "t5 at PP 4 (a layer a stage) vs PP 1 x DP 2"
# The family's metric, computed on the last stage, reported by rank 0 as at PP 1.
acc() { grep -o "step 20/20 .*target_acc [0-9.]*" "$1" | grep -o "target_acc [0-9.]*"; }
[[ -n $(acc "$tmp/t5_pp4.log") && $(acc "$tmp/t5_pp4.log") == $(acc "$tmp/t5_dp2.log") ]] ||
  { echo "FAIL: target_acc at PP 4 '$(acc "$tmp/t5_pp4.log")' vs '$(acc "$tmp/t5_dp2.log")'"; exit 1; }
echo "ok   t5 at PP 4 reports the last stage's $(acc "$tmp/t5_pp4.log") as PP 1 does"
for layout in dp2 pp2; do
  "$bin/convert_checkpoint" export-hf --input "$tmp/t5_$layout/checkpoints/step_00000010" \
    --output "$tmp/t5_hf_$layout" > "$tmp/export.log" 2>&1 || { cat "$tmp/export.log"; exit 1; }
done
/usr/bin/python3 - "$tmp/t5_hf_dp2/model.safetensors" "$tmp/t5_hf_pp2/model.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/lib")
from safetensors_f32 import read
a, b = read(sys.argv[1]), read(sys.argv[2])
assert sorted(a) == sorted(b), sorted(set(a) ^ set(b))
assert all(a[k].shape == b[k].shape for k in a), [k for k in a if a[k].shape != b[k].shape]
print(f"ok   t5 export of a PP 2 checkpoint: the PP 1 export's {len(a)} tensors, names and shapes")
PY

# 7. Reshard between pipeline sizes.
"$bin/convert_checkpoint" reshard --input "$tmp/t5_pp2/checkpoints/step_00000010" --tp 1 \
  --output "$tmp/t5_to_pp1" > "$tmp/reshard.log" 2>&1 || { cat "$tmp/reshard.log"; exit 1; }
"$bin/convert_checkpoint" reshard --input "$tmp/t5_dp2/checkpoints/step_00000010" --tp 1 --pp 4 \
  --output "$tmp/t5_to_pp4/checkpoints/step_00000010" > "$tmp/reshard.log" 2>&1 ||
  { cat "$tmp/reshard.log"; exit 1; }
/usr/bin/python3 - "$tmp" <<'PY'
import os, sys
sys.path.insert(0, "tests/lib")
from safetensors_f32 import read
tmp = sys.argv[1]
def files(d, names):
    out = {}
    for f in names:
        part = read(os.path.join(d, f))
        assert not set(part) & set(out), f"{f} repeats {sorted(set(part) & set(out))[:3]}"
        out.update(part)
    return out
def same(a, b, what):
    assert sorted(a) == sorted(b), f"{what}: {sorted(set(a) ^ set(b))[:5]}"
    bad = [k for k in a if not (a[k].shape == b[k].shape and bool((a[k] == b[k]).all()))]
    assert not bad, f"{what}: {bad[:5]} differ"
pp2 = files(tmp + "/t5_pp2/checkpoints/step_00000010", ["pp0.tp0.safetensors", "pp1.tp0.safetensors"])
same(files(tmp + "/t5_to_pp1", ["tp0.safetensors"]), pp2, "PP 2 -> PP 1")
pp4_dir = tmp + "/t5_to_pp4/checkpoints/step_00000010"
stages = [f"pp{p}.tp0.safetensors" for p in range(4)]
assert sorted(f for f in os.listdir(pp4_dir) if f.endswith(".safetensors")) == stages, os.listdir(pp4_dir)
same(files(pp4_dir, stages), files(tmp + "/t5_dp2/checkpoints/step_00000010", ["tp0.safetensors"]), "PP 1 -> PP 4")
print(f"ok   reshard PP 2 -> PP 1 and PP 1 -> PP 4: {len(pp2)} tensors bitwise, each in one stage file")
PY
expect_error "\-\-pp 3: .*3 x 1 = 3 stages do not divide the 4 layers" "$bin/convert_checkpoint" \
  reshard --input "$tmp/t5_dp2/checkpoints/step_00000010" --tp 1 --pp 3 --output "$tmp/bad_pp3"
[[ ! -e $tmp/bad_pp3 ]] || { echo "FAIL: a refused reshard left $tmp/bad_pp3"; exit 1; }
rc=0; "$bin/convert_checkpoint" export-hf --input "$tmp/t5_dp2/checkpoints/step_00000010" --pp 2 \
  --output "$tmp/bad_hf" > /dev/null 2>&1 || rc=$?
(( rc == 2 )) || { echo "FAIL: export-hf --pp exited $rc, not 2 (usage)"; exit 1; }
rc=0; "$bin/convert_checkpoint" reshard --input "$tmp/t5_dp2/checkpoints/step_00000010" --tp 1 \
  --pp -1 --output "$tmp/bad_neg" > /dev/null 2>&1 || rc=$?
(( rc == 2 )) && [[ ! -e $tmp/bad_neg ]] || { echo "FAIL: reshard --pp -1 exited $rc"; exit 1; }
echo "ok   reshard --pp 3 over 4 layers refused by name, nothing written; --pp -1 and --pp off reshard: usage errors"
echo step_00000010 > "$tmp/t5_to_pp4/checkpoints/latest"
cp "$tmp/t5_dp2/run_id" "$tmp/t5_to_pp4/run_id"
head -n 10 "$tmp/t5_dp2/losses.tsv" > "$tmp/t5_to_pp4/losses.tsv"
run 4 "$tmp/t5_to_pp4" --set parallel.pipeline_parallel_size=4
grep -q "resumed from" "$tmp/t5_to_pp4.log" || { echo "FAIL: did not resume"; cat "$tmp/t5_to_pp4.log"; exit 1; }
compare "$tmp/t5_dp2" "$tmp/t5_to_pp4" 1e-5 "t5 saved at PP 1 x DP 2, resharded to PP 4, resumed at PP 4"

# 8. Generation from a PP checkpoint.
gen() {
  "$bin/generate" --checkpoint "$1" --prompt "The quick brown fox" --max-new-tokens 12 \
    --temperature 0 2> "$tmp/gen.err" || { cat "$tmp/gen.err"; exit 1; }
}
a=$(gen "$tmp/t5_pp2/checkpoints/step_00000010")
b=$(gen "$tmp/t5_to_pp1")
[[ -n $a && $a == "$b" ]] || { echo "FAIL: generate from PP 2 '$a' vs PP 1 '$b'"; exit 1; }
echo "ok   generate from the T5 PP 2 checkpoint equals that from its PP 1 reshard: '$a'"
