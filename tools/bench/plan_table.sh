#!/usr/bin/env bash
# The planner's table (pretrain --plan, recipes/plan.h) for GPT-2 medium, LLaMA-2 7B and 13B and
# T5 v1.1 large on 1, 8 and 64 H100 SXM GPUs (8 per node; the planner's defaults: 80 GB,
# 989 TFLOP/s bf16 at 40%, 450 GB/s NVLink, 50 GB/s InfiniBand per GPU), bf16, the recipes' global
# batches. Prints a markdown table; figures are estimates, not measurements.
#   usage: tools/bench/plan_table.sh   (after tools/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
P=build/bin/pretrain
echo "| model | GPUs | layout | micro batch | weights+grads+AdamW | activations+logits | total / 80 GB | fits | largest micro batch: as is / full recompute / every switch | step | tokens/s per GPU |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
row() {  # row NAME GPUS TP MICRO RECIPE [--set ...]
  local name=$1 gpus=$2 tp=$3 micro=$4 recipe=$5
  shift 5
  local nodes=$(( gpus >= 8 ? gpus / 8 : 1 )) per=$(( gpus >= 8 ? 8 : gpus ))
  "$P" --recipe "$recipe" "$@" --set train.precision=bf16 --set parallel.tensor_parallel_size="$tp" \
    --set train.micro_batch_size="$micro" --plan --nodes "$nodes" --gpus-per-node "$per" |
    /usr/bin/python3 -c '
import re, sys
t = sys.stdin.read()
name, gpus = sys.argv[1], sys.argv[2]
lay = re.search(r"layout: (TP \d+ x DP \d+)", t).group(1)
g = lambda k: float(re.search(k + r"\s+([0-9.]+)", t).group(1))
state = g("weights \\(fp32\\)") + g("gradients \\(fp32\\)") + g("AdamW state \\(fp32\\)")
act = g("    activations") + g("logits and loss")
total = g("    total")
fits = "yes" if "fits (under" in t else "no"
lm = re.search(r"under 90%: (\d+) as configured; (\d+) with full recomputation; (\d+) with every", t)
step = re.search(r"step time estimate: ([0-9.]+) s", t).group(1)
tps = re.search(r"tokens/s in all, (\d+) per GPU", t).group(1)
micro = re.search(r"micro batch (\d+) x", t).group(1)
print("| %s | %s | %s | %s | %.1f GB | %.1f GB | %.1f GB | %s | %s / %s / %s | %s s | %s |" % (
    name, gpus, lay, micro, state, act, total, fits, lm.group(1), lm.group(2), lm.group(3), step, tps))
' "$name" "$gpus"
}
llama13=(--set model.num_layers=40 --set model.hidden_size=5120 --set model.num_attention_heads=40
         --set model.ffn_hidden_size=13824)
for gpus in 1 8 64; do row "gpt2-medium (355M), seq 1024" "$gpus" 1 4 recipes/gpt/gpt2-medium.yaml; done
for gpus in 1 8 64; do
  tp=$(( gpus >= 8 ? 8 : 1 ))
  row "llama2-7b, seq 4096" "$gpus" "$tp" 1 recipes/gpt/llama2-7b.yaml
done
for gpus in 1 8 64; do
  tp=$(( gpus >= 8 ? 8 : 1 ))
  row "llama2-13b, seq 4096" "$gpus" "$tp" 1 recipes/gpt/llama2-7b.yaml "${llama13[@]}"
done
for gpus in 1 8 64; do
  row "t5-v1.1-large (783M), seq 512" "$gpus" 1 8 recipes/t5/t5-v1.1-large.yaml --set model.vocab_size=32128
done
