#!/usr/bin/env bash
# The distributed optimizer (parallel.distributed_optimizer) against the replicated one, side by
# side in one run (prints figures; never fails on time), at DP 2 (2 ranks x 1 thread):
#  1. GPT-2 medium's shape (24 layers, width 1024, 16 heads, vocabulary 50304: 355M parameters),
#     sequence 256, micro batch 1: tokens/s and the peak of live tensors per rank (gradients,
#     AdamW state, activations);
#  2. GPT model 1 (4 layers, width 256, vocabulary 8192), sequence 256, micro batch 8: tokens/s;
#  3. a checkpoint save with the AdamW state (92M parameters): seconds, bytes each rank writes
#     (replicated: rank 0 writes it all; distributed: each rank its half of the moments), and
#     each rank's peak RSS.
# Rounds alternate replicated and distributed.
#   usage: tools/bench/run_distopt_bench.sh [rounds (2)]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [rounds (a positive integer, 2)]" >&2; exit 2; }
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
export OMP_NUM_THREADS=1
medium=(--layers 24 --hidden 1024 --heads 16 --seq 256 --vocab 50304 --micro 1 --global 2 --steps 4)
echo "== 1. gpt2-medium shape (355M), DP 2 x 1 thread, sequence 256, micro batch 1 =="
for round in $(seq 1 "$rounds"); do
  for d in false true; do
    out=$("${mpi[@]}" build/bin/bench_gpt "${medium[@]}" --threads 1 \
      $([[ $d == true ]] && echo --distributed-optimizer) 2>&1)
    echo "   round $round, distributed_optimizer=$d: $(grep -o '[0-9]* tokens/s' <<<"$out")," \
      "$(grep -o 'peak live tensors in training [0-9]* MB' <<<"$out")"
  done
done
echo "== 2. GPT model 1, DP 2 x 1 thread, sequence 256, micro batch 8 =="
for round in $(seq 1 "$rounds"); do
  for d in false true; do
    out=$("${mpi[@]}" build/bin/bench_gpt --threads 1 --steps 12 --global 16 \
      $([[ $d == true ]] && echo --distributed-optimizer) 2>&1)
    echo "   round $round, distributed_optimizer=$d: $(grep -o '[0-9]* tokens/s' <<<"$out")"
  done
done
echo "== 3. checkpoint save with AdamW state, DP 2 x 1 thread: 12 layers, width 768, sequence 128 =="
echo "   (the default corpus's 8k vocabulary: 92M parameters, 1.1 GB with the moments; saves after"
echo "   steps 2 and 4; 'saved in' from rank 0's log; bytes each rank wrote; each rank's peak RSS)"
tools/data/prepare_default_corpus.sh build/data/fortunes build/bin >/dev/null
for round in $(seq 1 "$rounds"); do
  for d in false true; do
    dir=$(mktemp -d)
    "${mpi[@]}" /usr/bin/time -f "peak RSS %M kB" build/bin/pretrain --recipe recipes/gpt/tiny.yaml \
      --set model.num_layers=12 --set model.hidden_size=768 --set model.num_attention_heads=12 \
      --set model.seq_length=128 --set train.micro_batch_size=1 --set train.global_batch_size=2 \
      --set train.train_steps=4 --set train.eval_interval=0 --set checkpoint.save_interval=2 \
      --set logging.interval=100 --set parallel.distributed_optimizer=$d \
      --set logging.run_dir="$dir/run" > "$dir/log" 2>&1 || { cat "$dir/log"; exit 1; }
    ck=$dir/run/checkpoints/step_00000004
    r0=$(( $(stat -c %s "$ck/tp0.safetensors") + $(stat -c %s "$ck/tp0.dp0.optim.safetensors" 2>/dev/null || echo 0) ))
    r1=$(stat -c %s "$ck/tp0.dp1.optim.safetensors" 2>/dev/null || echo 0)
    echo "   round $round, distributed_optimizer=$d: saved in $(grep 'saved step' "$dir/log" | grep -o '[0-9.]* s$' | tr '\n' ' ')" \
      "written rank 0 $((r0 / 1000000)) MB, rank 1 $((r1 / 1000000)) MB," \
      "$(grep -o 'peak RSS [0-9]* kB' "$dir/log" | awk '{printf "%s%d MB", (NR > 1 ? ", " : "peak RSS "), $3 / 1000}')"
    rm -rf "$dir"
  done
done
