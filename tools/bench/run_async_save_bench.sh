#!/usr/bin/env bash
# Training stall of a checkpoint save, synchronous against checkpoint.async_save, side by side in
# one run (prints figures; never fails on time). The model is GPT-2 small's (12 layers, width
# 768, 12 heads, vocabulary padded to 50304 as Megatron pads GPT-2's: 124M parameters, 1.5 GB of weights and AdamW moments per
# save) on the embedded corpus, sequence 128, micro batch 1, one rank with 2 threads; saves at
# steps 3 and 6 of 9 (the save of the last step is synchronous in both runs), in alternated
# rounds. The stall of a synchronous save is the time it took; of an async one, the copy to host
# memory plus any wait for the previous background write; also printed, how long after its
# step boundary each background write was complete (training ran on meanwhile).
#   usage: tools/bench/run_async_save_bench.sh [rounds (2)]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(--recipe recipes/gpt/tiny.yaml --set model.num_layers=12 --set model.hidden_size=768
      --set model.num_attention_heads=12 --set model.seq_length=128 --set model.make_vocab_size_divisible_by=50304
      --set model.hidden_dropout=0.1 --set model.attention_dropout=0.1
      --set train.micro_batch_size=1 --set train.train_steps=9 --set train.eval_interval=0
      --set train.threads=2 --set checkpoint.save_interval=3 --set logging.interval=1)
echo "== checkpoint save stall: GPT-2 small shape (124M), AdamW state, sequence 128, 1 rank x 2 threads =="
for round in $(seq 1 "$rounds"); do
  for mode in false true; do
    dir=$tmp/run-$mode-$round
    build/bin/pretrain "${args[@]}" --set checkpoint.async_save=$mode --set logging.run_dir="$dir" \
      > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
    /usr/bin/python3 - "$dir.log" "$mode" "$round" <<'PY'
import re, statistics, sys
log, mode, rnd = open(sys.argv[1]).read(), sys.argv[2] == "true", sys.argv[3]
if not mode:
    saves = [float(s) for st, s in re.findall(r"saved step (\d+) to \S+ in ([0-9.]+) s", log) if st in ("3", "6")]
    print("round %s  synchronous: stalls %s s (mean %.2f s)" % (rnd, " ".join("%.2f" % s for s in saves), statistics.mean(saves)))
else:
    copies = [float(s) for s in re.findall(r"state copied to host memory in ([0-9.]+) s", log)]
    waits = [float(s) for s in re.findall(r"in the background \(complete [0-9.]+ s after its step boundary; waited ([0-9.]+) s", log)]
    done = [float(s) for s in re.findall(r"in the background \(complete ([0-9.]+) s after", log)]
    stall = (sum(copies) + sum(waits)) / max(1, len(copies))
    print("round %s  async:       copies %s s, waits %s s: stall %.2f s per save; writes complete %s s after their step"
          % (rnd, " ".join("%.2f" % c for c in copies), " ".join("%.2f" % w for w in waits) or "none",
             stall, " ".join("%.1f" % d for d in done)))
PY
  done
done
