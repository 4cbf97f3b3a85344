#!/usr/bin/env bash
# The TensorBoard event file round-trips through an independent reader (tools/tensorboard_events.py:
# TFRecord framing with both CRCs checked, protobuf decoded by hand): the train/loss scalars equal
# the run's losses.tsv (averaged over each logging interval), eval/loss is present, and
# tools/plot_run.py renders the curves to SVG.
set -euo pipefail
bin=$1
src=$2
source "$src/tests/lib/e2e.sh"
"${mpi[@]}" -np 2 "$bin/pretrain" \
  --recipe recipes/gpt/tiny.yaml --set train.train_steps=30 --set logging.interval=5 \
  --set train.eval_interval=10 --set train.eval_steps=2 --set logging.run_dir="$tmp/run" \
  > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
/usr/bin/python3 - "$tmp/run" "$src/tools" <<'PY'
import glob, sys
sys.path.insert(0, sys.argv[2])
from tensorboard_events import scalars
run = sys.argv[1]
files = glob.glob(f"{run}/events.out.tfevents.*")
assert len(files) == 1, files
s = scalars(files[0])
loss = {step: v for step, tag, v in s if tag == "train/loss"}
evals = {step: v for step, tag, v in s if tag == "eval/loss"}
tags = {tag for _, tag, _ in s}
for t in ("train/lr", "train/grad_norm", "train/tokens_per_s", "train/mfu", "train/data_wait"):
    assert t in tags, f"no {t} in {sorted(tags)}"
per_step = [float(l.split()[1]) for l in open(f"{run}/losses.tsv")]
assert sorted(loss) == [5, 10, 15, 20, 25, 30], sorted(loss)
for step, v in loss.items():
    want = sum(per_step[step - 5:step]) / 5
    assert abs(v - want) <= 1e-6 * abs(want), (step, v, want)  # float32 in the event file
assert sorted(evals) == [10, 20, 30], sorted(evals)
print(f"ok   {len(s)} scalars read back with valid CRCs; train/loss matches losses.tsv; eval/loss at 10, 20, 30")
PY
/usr/bin/python3 tools/plot_run.py "$tmp/run" "$tmp/curves.svg" > /dev/null
/usr/bin/python3 - "$tmp/curves.svg" <<'PY'
import re, sys
svg = open(sys.argv[1]).read()
titles = re.findall(r'font-size="14"[^>]*>([^<]*)<', svg)
for want in ("loss", "learning rate", "gradient norm", "tokens/s"):
    assert any(t.startswith(want) for t in titles), (want, titles)
assert svg.count("<polyline") == 5, svg.count("<polyline")      # train, valid, lr, grad, tok/s
labels = re.findall(r'font-size="11"[^>]*>([^<]*)<', svg)
assert len([l for l in labels if l != "step"]) >= 4 * 6, labels  # ticks on both axes
assert not any("e+" in l for l in labels), labels               # 12.2k, not 1.22e+04
assert any(l.endswith("k") for l in labels), labels             # tokens/s in thousands
assert svg.count('stroke="#e5e5e5"') >= 4 * 6                    # grid lines
print(f"ok   plot_run.py: 4 panels (loss, lr, grad norm, tokens/s), 5 curves, {len(labels)} tick labels, grid")
PY
