#!/usr/bin/env bash
# The UL2 recipe end to end on the default corpus (tiny model):
#   TP 2 equals TP 1 and DP 2 equals DP 1 (the same global batch of 16): 6 steps with evaluations
#   after steps 3 and 6, every training loss within 1e-5 (relative), validation losses equal as
#   printed; also with sequence parallelism, full recomputation and the distributed optimizer;
#   it learns: 300 steps at DP 2, the validation loss falls at each evaluation (by 0.3 in all)
#   and target_acc at the end
#   beats twice the accuracy of always guessing the most frequent target token (the log's note);
#   the export is T5ForConditionalGeneration; and a UL2 key on the T5 recipe is refused by name.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
R=recipes/ul2/tiny.yaml
short=(--set train.train_steps=6 --set train.eval_interval=3 --set train.eval_steps=1
       --set train.global_batch_size=16)
go() {  # NAME NP ARGS...
  local name=$1 np=$2
  shift 2
  "${mpi[@]}" -np "$np" "$bin/pretrain" --recipe $R "${short[@]}" \
    --set logging.run_dir="$tmp/$name" "$@" > "$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; exit 1; }
}
go serial 1
go tp2 2 --set parallel.tensor_parallel_size=2
go dp2 2
go tp2_sp_full 2 --set parallel.tensor_parallel_size=2 --set parallel.sequence_parallel=true \
  --set train.recompute=full
go dp2_distopt 2 --set parallel.distributed_optimizer=true
same() { /usr/bin/python3 tests/lib/same_run_losses.py "$tmp/serial" "$tmp/$1" 6 1e-5 "$2"; }
same tp2 "UL2 at TP 2 against TP 1"
same dp2 "UL2 at DP 2 against DP 1 (accumulating two micro-batches)"
same tp2_sp_full "UL2 at TP 2 with sequence parallelism and full recomputation against TP 1"
same dp2_distopt "UL2 at DP 2 with the distributed optimizer against DP 1"
grep -q "denoisers R(3, 0.15) 14.3%, R(8, 0.15) 14.3%, X(3, 0.5) 14.3%, X(8, 0.5) 14.3%, X(64, 0.15) 14.3%, X(64, 0.5) 14.3%, S 14.3%" \
  "$tmp/serial/logs/rank0.log" || { echo "FAIL: the mixture note"; grep UL2 "$tmp/serial/logs/rank0.log"; exit 1; }
echo "ok   the default mixture: the paper's seven denoisers at equal weights"

# It learns.
"${mpi[@]}" -np 2 "$bin/pretrain" --recipe $R --set train.train_steps=300 \
  --set train.eval_interval=100 --set train.eval_steps=4 --set train.lr_warmup_steps=30 \
  --set logging.run_dir="$tmp/learn" > "$tmp/learn.log" 2>&1 || { cat "$tmp/learn.log"; exit 1; }
/usr/bin/python3 - "$tmp/learn/logs/rank0.log" <<'PY'
import re, sys
log = open(sys.argv[1]).read()
evals = re.findall(r"step \d+ \| valid loss ([0-9.]+) .*\| target_acc ([0-9.]+)", log)
valid, acc = [float(v) for v, _ in evals], [float(a) for _, a in evals]
base = float(re.search(r"most frequent target token .*?, ([0-9.]+)% of the targets", log).group(1)) / 100
assert len(valid) == 3, evals
assert all(b < a for a, b in zip(valid, valid[1:])) and valid[-1] < valid[0] - 0.3, \
    f"validation loss {valid} did not fall at each evaluation, by 0.3 in all"
assert acc[-1] > 2 * base, f"target_acc {acc[-1]:.4f} does not beat twice the baseline {base:.4f}"
print(f"ok   UL2 tiny learns: valid loss {valid[0]:.3f} -> {valid[-1]:.3f}, target_acc "
      f"{acc[-1]:.4f} > 2 x {base:.4f} (the most frequent target token)")
PY

# The export is T5's layout.
"$bin/convert_checkpoint" export-hf --input "$tmp/learn/checkpoints/step_00000300" --output "$tmp/hf" > "$tmp/export.log" 2>&1 \
  || { cat "$tmp/export.log"; exit 1; }
grep -q '"T5ForConditionalGeneration"' "$tmp/hf/config.json" || { cat "$tmp/hf/config.json"; exit 1; }
echo "ok   export-hf of a UL2 checkpoint: T5ForConditionalGeneration"

# Refusals.
P=$bin/pretrain
expect_error "data.denoisers: read by ul2; this recipe is t5" \
  "$P" --recipe recipes/t5/tiny.yaml --set 'data.denoisers=[S]' --print-config
expect_error "data.denoiser_weights: 2 weights for 7 denoisers" \
  "$P" --recipe $R --set 'data.denoiser_weights=[1,2]' --print-config
expect_error "data.denoisers: 'Q 3 0.15' is not a denoiser" \
  "$P" --recipe $R --set 'data.denoisers=[Q 3 0.15]' --print-config
expect_error "data.added_tokens: no \[S2S\]" \
  "$P" --recipe $R --set 'data.added_tokens=["[NLU]", "[NLG]"]' --print-config
expect_error "data.vocab_extra_ids: 3 sentinels" \
  "$P" --recipe $R --set data.vocab_extra_ids=3 --print-config
echo "ok   refused: UL2's keys on T5, weights that do not match, an unknown denoiser, a missing paradigm token, too few sentinels"
