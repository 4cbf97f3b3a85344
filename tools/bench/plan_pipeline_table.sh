#!/usr/bin/env bash
# The planner's pipeline sizes (pretrain --plan, recipes/plan.h: "pipeline sizes") for LLaMA-2 70B
# and a 175B GPT (GPT-3's shape: 96 layers, width 12288, 96 heads, sequence 2048, global batch
# 1536) on 64 and 512 H100 SXM GPUs (8 per node; the planner's defaults), TP 8 within a node,
# bf16, micro batch 1, the distributed optimizer, sequence parallelism and selective
# recomputation. Prints a markdown table; figures are estimates, not measurements.
#   usage: tools/bench/plan_pipeline_table.sh   (after tools/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
P=build/bin/pretrain
switches=(--set train.precision=bf16 --set train.micro_batch_size=1
          --set parallel.distributed_optimizer=true --set parallel.sequence_parallel=true
          --set train.recompute=selective --set parallel.tensor_parallel_size=8)
gpt175=(--set model.num_layers=96 --set model.hidden_size=12288 --set model.num_attention_heads=96
        --set model.seq_length=2048 --set model.max_position_embeddings=2048
        --set train.global_batch_size=1536)
echo "| model | GPUs | PP | DP | memory per GPU (fullest stage) | fits 80 GB | step | bubble | |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
table() {  # table NAME GPUS RECIPE [--set ...]
  local name=$1 gpus=$2 recipe=$3
  shift 3
  "$P" --recipe "$recipe" "${switches[@]}" "$@" --plan --nodes $(( gpus / 8 )) --gpus-per-node 8 |
    /usr/bin/python3 -c '
import re, sys
name, gpus = sys.argv[1], sys.argv[2]
for m in re.finditer(r"PP (\d+) +DP (\d+) +([0-9.]+) GB (fits|too big) +step +([0-9.]+) s, bubble +([0-9.]+)%(.*)", sys.stdin.read()):
    pp, dp, gb, fits, step, bubble, rec = m.groups()
    print("| %s | %s | %s | %s | %s GB | %s | %s s | %s%% | %s |" % (
        name, gpus, pp, dp, gb, "yes" if fits == "fits" else "no", step, bubble,
        "recommended" if "recommended" in rec else ""))
' "$name" "$gpus"
}
for gpus in 64 512; do table "llama2-70b, seq 4096" "$gpus" recipes/gpt/llama2-70b.yaml; done
for gpus in 64 512; do table "GPT 175B, seq 2048" "$gpus" recipes/gpt/gpt2-small.yaml "${gpt175[@]}"; done
