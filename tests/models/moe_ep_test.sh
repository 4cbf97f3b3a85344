#!/usr/bin/env bash
# Expert parallelism (parallel.expert_parallel_size; docs/moe.md) through pretrain on
# recipes/gpt/mixtral-tiny.yaml (8 SwiGLU experts, top 2, load-balancing and z-losses), 20 steps
# with clipping, each run against the same data-parallel layout without EP (an independent
# reference: every expert on every rank, no all-to-all):
#   - EP 2 at DP 2; EP 4 and EP 2 (two blocks: the experts' gradients averaged over expert_dp) at
#     DP 4; TP 2 x EP 2 with and without sequence parallelism; PP 2 x EP 2; full recomputation;
#     gradient accumulation: losses within 1e-5, gradient norms within 1e-4;
#   - the checkpoint: DP replica 0's file holds every expert under the names (and within 1e-3 the
#     values) of the EP 1 run's; saved at EP 2, resumed at EP 1 and at EP 4: steps 11-20 within
#     1e-5; the converter exports it to Hugging Face's layout and reshards it to TP 2 (--ep checked
#     against the experts), which trains on at TP 2 x EP 2;
#   - the distributed optimizer with EP (and TP 2 x EP 2): the same losses; the dense moments in each DP rank's
#     pieces and the experts' whole; saved at EP 2, resumed at EP 1 without it and at EP 4 with it;
#   - refusals: an EP size that does not divide the experts or DP, EP on a dense model.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
P=$bin/pretrain
C=$bin/convert_checkpoint
mixtral=recipes/gpt/mixtral-tiny.yaml
common=(--recipe $mixtral --set train.train_steps=20 --set train.eval_steps=0
  --set train.clip_grad=0.5 --set model.moe_z_loss_coeff=0.001 --set train.global_batch_size=16
  --set checkpoint.save_interval=10)
# compare_norms A B NAME: the gradient norms (losses.tsv's third column) within 1e-4 relative. The
# experts' 1/EP gradient scale shows there, where AdamW, nearly blind to a gradient's scale, hides
# it from the losses.
compare_norms() {
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys
a, b = ([float(l.split()[2]) for l in open(p + "/losses.tsv")] for p in sys.argv[1:3])
assert len(a) == len(b) > 0, (len(a), len(b))
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
assert worst <= 1e-4, f"{sys.argv[3]}: gradient norms differ by {worst:.2e}"
print(f"ok   {sys.argv[3]}: {len(a)} gradient norms, max relative difference {worst:.1e}")
PY
}
ep2=(--set parallel.expert_parallel_size=2)
ep4=(--set parallel.expert_parallel_size=4)
tp2=(--set parallel.tensor_parallel_size=2)
run 2 "$tmp/dp2"
run 2 "$tmp/ep2" "${ep2[@]}"
grep -q "TP 1 x DP 2 x PP 1 (experts: EP 2 of DP)" "$tmp/ep2.log" ||
  { echo "FAIL: no EP in the log"; cat "$tmp/ep2.log"; exit 1; }
compare "$tmp/dp2" "$tmp/ep2" 1e-5 "EP 2 x DP 2 against EP 1"
compare_norms "$tmp/dp2" "$tmp/ep2" "EP 2 x DP 2 against EP 1"
m4=(--set train.micro_batch_size=4)  # DP 4: one micro-batch of 4 per rank
run 4 "$tmp/dp4" "${m4[@]}"
run 4 "$tmp/ep4" "${ep4[@]}" "${m4[@]}"
compare "$tmp/dp4" "$tmp/ep4" 1e-5 "EP 4 x DP 4 against EP 1"
compare_norms "$tmp/dp4" "$tmp/ep4" "EP 4 x DP 4 against EP 1"
run 4 "$tmp/ep2dp4" "${ep2[@]}" "${m4[@]}"
compare "$tmp/dp4" "$tmp/ep2dp4" 1e-5 "EP 2 at DP 4 (two expert-data-parallel copies) against EP 1"
compare_norms "$tmp/dp4" "$tmp/ep2dp4" "EP 2 at DP 4 against EP 1"
run 4 "$tmp/tp2ep2" "${tp2[@]}" "${ep2[@]}"
compare "$tmp/dp2" "$tmp/tp2ep2" 1e-5 "TP 2 x EP 2 against TP 1 x DP 2"
run 4 "$tmp/tp2" "${tp2[@]}"  # fp32 under TP moves the norms by ~1e-4: EP against the same TP
compare "$tmp/tp2" "$tmp/tp2ep2" 1e-5 "TP 2 x EP 2 against TP 2 x DP 2"
compare_norms "$tmp/tp2" "$tmp/tp2ep2" "TP 2 x EP 2 against TP 2 x DP 2"
run 4 "$tmp/tp2ep2sp" "${tp2[@]}" "${ep2[@]}" --set parallel.sequence_parallel=true
compare "$tmp/dp2" "$tmp/tp2ep2sp" 1e-5 "TP 2 x EP 2 with sequence parallelism against TP 1 x DP 2"
# The auxiliary losses are per micro-batch: the pipeline's and accumulation's runs against
# micro-batches of the same size (4: two per step on each DP rank).
run 2 "$tmp/dp2-m4" "${m4[@]}"
run 2 "$tmp/ep2-m4" "${ep2[@]}" "${m4[@]}"
compare "$tmp/dp2-m4" "$tmp/ep2-m4" 1e-5 "EP 2 with 2 micro-batches per step against EP 1"
run 4 "$tmp/pp2ep2" "${ep2[@]}" --set parallel.pipeline_parallel_size=2 "${m4[@]}"
compare "$tmp/dp2-m4" "$tmp/pp2ep2" 1e-5 "PP 2 x EP 2 against TP 1 x DP 2 (2 micro-batches of 4)"
compare_norms "$tmp/dp2-m4" "$tmp/pp2ep2" "PP 2 x EP 2 against TP 1 x DP 2"
run 2 "$tmp/full" "${ep2[@]}" --set train.recompute=full
compare "$tmp/dp2" "$tmp/full" 1e-5 "EP 2 with full recomputation against EP 1"
# The checkpoint does not depend on EP: DP replica 0 writes every expert.
/usr/bin/python3 - "$tmp/dp2/checkpoints/step_00000020" "$tmp/ep2/checkpoints/step_00000020" <<'PY'
import sys
sys.path.insert(0, "tests/lib")  # the scripts run from the repository root
from safetensors_f32 import read
a, b = (read(d + "/tp0.safetensors") for d in sys.argv[1:])
assert sorted(a) == sorted(b), sorted(set(a) ^ set(b))
experts = [k for k in a if ".experts." in k]
assert len(experts) == 3 * 2 * 2 * 8, len(experts)  # weight + 2 moments, fc1/fc2, 2 layers, 8
worst = max(((a[k] - b[k]).abs().max() / a[k].abs().max().clamp_min(1e-30)).item() for k in a)
assert worst < 1e-3, worst
print(f"ok   EP 2's checkpoint: {len(a)} tensors named as EP 1's ({len(experts)} of the 8 experts, "
      f"AdamW moments included), max relative difference {worst:.1e}")
PY
run 2 "$tmp/to1" "${ep2[@]}" --set train.exit_interval=10
run 2 "$tmp/to1"
grep -q "resumed from .*step_00000010" "$tmp/to1.log"
compare "$tmp/ep2" "$tmp/to1" 1e-5 "saved at EP 2, resumed at EP 1"
# Micro-batches of 4 on both sides (the auxiliary losses are per micro-batch).
run 2 "$tmp/to4" "${ep2[@]}" "${m4[@]}" --set train.exit_interval=10
run 4 "$tmp/to4" "${ep4[@]}" "${m4[@]}"
grep -q "resumed from .*step_00000010" "$tmp/to4.log"
compare "$tmp/ep2-m4" "$tmp/to4" 1e-5 "saved at EP 2 x DP 2, resumed at EP 4 x DP 4"
# The distributed optimizer: the dense parameters' AdamW state in pieces over DP, the experts'
# whole (1/EP of them on each rank); saved with it at EP 2, resumed without it at EP 1, and with
# it at EP 4.
dist=(--set parallel.distributed_optimizer=true)
run 2 "$tmp/ep2dist" "${ep2[@]}" "${dist[@]}"
compare "$tmp/dp2" "$tmp/ep2dist" 1e-5 "EP 2 with the distributed optimizer against EP 1 without"
compare_norms "$tmp/dp2" "$tmp/ep2dist" "EP 2 with the distributed optimizer against EP 1 without"
/usr/bin/python3 - "$tmp/ep2/checkpoints/step_00000020" "$tmp/ep2dist/checkpoints/step_00000020" <<'PY'
import os, sys
sys.path.insert(0, "tests/lib")
from safetensors_f32 import read
plain, dist = sys.argv[1:]
files = sorted(f for f in os.listdir(dist) if f.endswith(".safetensors"))
assert files == ["tp0.dp0.optim.safetensors", "tp0.dp1.optim.safetensors", "tp0.safetensors"], files
whole = read(dist + "/tp0.safetensors")
moments = [k for k in whole if k.startswith("optim/")]
assert moments and all(".experts." in k for k in moments), moments  # only the experts' whole
assert len(moments) == 2 * 2 * 2 * 8, len(moments)
ref = read(plain + "/tp0.safetensors")
worst = max(((whole[k] - ref[k]).abs().max() / ref[k].abs().max().clamp_min(1e-30)).item()
            for k in moments)
assert worst < 1e-3, worst
print(f"ok   EP 2 with the distributed optimizer: the dense moments in each DP rank's pieces, the "
      f"{len(moments)} expert moments whole in tp0.safetensors (within {worst:.1e} of EP 2's without)")
PY
run 4 "$tmp/tp2ep2dist" "${tp2[@]}" "${ep2[@]}" "${dist[@]}"
compare "$tmp/tp2" "$tmp/tp2ep2dist" 1e-5 "TP 2 x EP 2 with the distributed optimizer against TP 2 x DP 2 without"
run 2 "$tmp/distto1" "${ep2[@]}" "${dist[@]}" --set train.exit_interval=10
run 2 "$tmp/distto1"
grep -q "resumed from .*step_00000010" "$tmp/distto1.log"
compare "$tmp/ep2dist" "$tmp/distto1" 1e-5 "saved at EP 2 with the distributed optimizer, resumed at EP 1 without"
run 2 "$tmp/distto4" "${ep2[@]}" "${dist[@]}" "${m4[@]}" --set train.exit_interval=10
run 4 "$tmp/distto4" "${ep4[@]}" "${dist[@]}" "${m4[@]}"
grep -q "resumed from .*step_00000010" "$tmp/distto4.log"
compare "$tmp/ep2-m4" "$tmp/distto4" 1e-5 "saved at EP 2 x DP 2 with the distributed optimizer, resumed at EP 4 x DP 4 with it"
$C export-hf --input "$tmp/ep2/checkpoints/step_00000020" --output "$tmp/ep2-hf" > /dev/null
grep -q '"num_local_experts": 8' "$tmp/ep2-hf/config.json" ||
  { echo "FAIL: the export of EP 2's checkpoint"; exit 1; }
echo "ok   the converter exports EP 2's checkpoint as MixtralForCausalLM (8 experts)"
# reshard --ep (Megatron's --target-expert-parallel-size): no file depends on EP; the size is
# checked against the experts. The TP 2 output trains on at TP 2 x EP 2.
$C reshard --input "$tmp/ep2/checkpoints/step_00000020" --output "$tmp/ep2-tp2" --tp 2 \
  --target-expert-parallel-size 4 > "$tmp/reshard.txt"
grep -q "every expert whole: loads at any EP dividing 8 (EP 4: 2 a rank)" "$tmp/reshard.txt" ||
  { cat "$tmp/reshard.txt"; exit 1; }
run 4 "$tmp/from-tp2" "${tp2[@]}" "${ep2[@]}" --set train.train_steps=22 --resume "$tmp/ep2-tp2"
grep -q "resumed from .*ep2-tp2" "$tmp/from-tp2.log" && grep -q "step 22/22" "$tmp/from-tp2.log" ||
  { echo "FAIL: no resume of the resharded checkpoint"; cat "$tmp/from-tp2.log"; exit 1; }
expect_error "\-\-ep 3: 8 experts do not divide over 3 ranks" \
  $C reshard --input "$tmp/ep2/checkpoints/step_00000020" --output "$tmp/ep3" --tp 1 --ep 3
[[ ! -e $tmp/ep3 ]] || { echo "FAIL: a refused reshard left $tmp/ep3"; exit 1; }
echo "ok   reshard --tp 2 --target-expert-parallel-size 4 (nothing EP-specific to rewrite), resumed at TP 2 x EP 2; --ep 3 refused"
# Refusals.
expect_error "parallel.expert_parallel_size: 3 does not divide model.num_experts = 8" \
  "$P" --recipe $mixtral --set parallel.expert_parallel_size=3 --print-config
expect_error "parallel.expert_parallel_size: 2, but the model has no experts" \
  "$P" --recipe recipes/gpt/llama-tiny.yaml --set parallel.expert_parallel_size=2 --print-config
expect_error "parallel.expert_parallel_size: 4 does not divide the data-parallel size 2" \
  "${mpi[@]}" -np 2 "$P" "${common[@]}" "${ep4[@]}" --set logging.run_dir="$tmp/refused"
[[ ! -e $tmp/refused/checkpoints ]] || { echo "FAIL: a refused run wrote checkpoints"; exit 1; }
echo "ok   refusals: EP 3 of 8 experts, EP on a dense model, EP 4 of DP 2"
