#!/usr/bin/env bash
# GPT training benchmark, side by side in one run (prints figures; never fails on time):
#  1. braid vs a plain PyTorch eager loop (Debian's python3-torch) on the same GPT (4 layers,
#     width 256, 4 heads, sequence 256, vocabulary 8192, batch 8), same 2 threads, alternated
#     twice; MFU against the matmul rate braid measures in the same process.
#     The same for BERT (post-LN, MLM on 15% of positions + sentence-order head) and T5 v1.1
#     (tools/bench/t5_pytorch_loop.py; tokens = encoder + decoder positions) and BART
#     (tools/bench/bart_pytorch_loop.py; encoder and decoder 256 tokens each).
#     The same for the ~125M LLaMA-style model (recipes/gpt/llama-125m.yaml: RoPE, RMSNorm,
#     SwiGLU 2048, no biases, untied; sequence 512, micro batch 2) against
#     tools/bench/llama_pytorch_loop.py (section 1f; LLAMA_ONLY=1 runs only that section).
#     Section 1g (CHUNK_ONLY=1 runs only it): model 1 with the output layer and loss in chunks
#     (bench_gpt --chunk, model.output_chunk_tokens; CHUNK=512 tokens) against whole, and PyTorch.
#     Section 1h (RECOMPUTE_ONLY=1 runs only it): train.recompute none / selective / full on
#     model 1 with dropout, at sequence 256 and 1024: speed and peak live tensors, side by side.
#  2. DP=2 with 1 thread per rank vs DP=1 with 2 threads, same global batch 8.
#  3. gpt2-small (124M, sequence 1024, micro batch 1) memory per rank at TP=1 and TP=2.
#  4. t5-v1.1-base (248M) memory per rank at TP=1 and TP=2.
set -euo pipefail
cd "$(dirname "$0")/../.."
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
export OMP_NUM_THREADS=1
llama=(--base recipes/gpt/llama-125m.yaml --layers 12 --hidden 768 --heads 12 --ffn 2048 --seq 512
       --vocab 32000 --untied --micro 2 --global 2 --steps 6)
llama_rounds() {
  echo "== 1f. LLaMA-style ~125M (12 layers, width 768, 12 heads, SwiGLU 2048, RoPE, RMSNorm, no"
  echo "       biases, untied, vocabulary 32000, sequence 512, micro batch 2): braid vs plain PyTorch, 2 threads =="
  for round in 1 2 3; do
    build/bin/bench_gpt "${llama[@]}" --threads 2 | sed -n 2p
    /usr/bin/python3 tools/bench/llama_pytorch_loop.py --seq 512 --micro 2 --steps 6 --threads 2
  done
}
chunk_rounds() {
  echo "== 1g. GPT model 1 (4 layers, width 256, vocabulary 8192, 8 x 256 tokens), output layer and"
  echo "       loss whole, then in chunks of ${CHUNK:-512} tokens (model.output_chunk_tokens), then"
  echo "       plain PyTorch; 2 threads, 3 alternated rounds =="
  for round in 1 2 3; do
    build/bin/bench_gpt --threads 2 --steps 20 | sed -n 2p
    build/bin/bench_gpt --threads 2 --steps 20 --chunk "${CHUNK:-512}" | sed -n 2p
    /usr/bin/python3 tools/bench/gpt_pytorch_loop.py --threads 2 --steps 20
  done
  echo "   the same with vocabulary 32000 (tokens/s, and the peak live tensors in training):"
  for round in 1 2 3; do
    for c in 0 "${CHUNK:-512}"; do
      echo "   chunk $c: $(build/bin/bench_gpt --threads 2 --steps 12 --vocab 32000 --chunk "$c" |
        sed -n 2,3p | grep -o '[0-9]* tokens/s\|live tensors in training [0-9]* MB' | tr '\n' ' ')"
    done
  done
}
recompute_rounds() {
  echo "== 1h. activation recomputation (train.recompute) on GPT model 1 with dropout 0.1, 2 threads:"
  echo "       tokens/s and peak live tensors in training (grads, AdamW state, activations; the"
  echo "       planner's estimate of the same in brackets), 2 alternated rounds per sequence length =="
  for seq in 256 1024; do
    local micro=$((2048 / seq))
    for round in 1 2; do
      for r in none selective full; do
        echo "   seq $seq x micro $micro, $r: $(build/bin/bench_gpt --threads 2 --steps 8 --dropout \
          --seq "$seq" --micro "$micro" --global "$micro" --recompute "$r" | sed -n 2,3p |
          grep -o '[0-9]* tokens/s\|live tensors in training [0-9]* MB (planner: [0-9]* MB = [0-9]* activations + [0-9]*' |
          tr '\n' ' ')"
      done
    done
  done
}
if [[ ${LLAMA_ONLY:-0} == 1 ]]; then llama_rounds; exit 0; fi
if [[ ${RECOMPUTE_ONLY:-0} == 1 ]]; then recompute_rounds; exit 0; fi
if [[ ${CHUNK_ONLY:-0} == 1 ]]; then chunk_rounds; exit 0; fi
echo "== 1. braid vs plain PyTorch, same model, 2 threads =="
for round in 1 2 3; do
  build/bin/bench_gpt --threads 2 --steps 20
  /usr/bin/python3 tools/bench/gpt_pytorch_loop.py --threads 2 --steps 20
done
echo "== 1b. BERT (same sizes): braid vs plain PyTorch, 2 threads =="
for round in 1 2 3; do
  build/bin/bench_gpt --recipe bert --threads 2 --steps 20 | sed -n 2p
  /usr/bin/python3 tools/bench/bert_pytorch_loop.py --threads 2 --steps 20
done
echo "== 1d. T5 v1.1 (4+4 layers, width 256, 4 heads of 64, gated-GELU FFN 1024, encoder 256 /"
echo "       decoder 58 tokens, vocabulary 8192, untied): braid vs plain PyTorch, 2 threads =="
for round in 1 2 3; do
  build/bin/bench_gpt --recipe t5 --threads 2 --steps 20 | sed -n 2p
  /usr/bin/python3 tools/bench/t5_pytorch_loop.py --threads 2 --steps 20
done
echo "== 1e. BART (4+4 layers, width 256, 4 heads, post-LN, GELU FFN 1024, encoder and decoder"
echo "       256 tokens, vocabulary 8192, tied): braid vs plain PyTorch, 2 threads =="
for round in 1 2 3; do
  build/bin/bench_gpt --recipe bart --threads 2 --steps 20 | sed -n 2p
  /usr/bin/python3 tools/bench/bart_pytorch_loop.py --threads 2 --steps 20
done
llama_rounds
chunk_rounds
recompute_rounds
echo "== 1c. GPT in bf16 autocast on this CPU: braid vs plain PyTorch, 2 threads =="
for round in 1 2; do
  build/bin/bench_gpt --threads 2 --steps 20 --bf16 1 | sed -n 2p
  /usr/bin/python3 tools/bench/gpt_pytorch_loop.py --threads 2 --steps 20 --bf16 1
done
echo "== 2. DP=2 x 1 thread vs DP=1 x 2 threads (global batch 8) =="
build/bin/bench_gpt --threads 2 --micro 8 --global 8
"${mpi[@]}" -np 2 build/bin/bench_gpt --threads 1 --micro 4 --global 8
echo "== 3. gpt2-small (124M), sequence 1024, micro batch 1, 3 steps: memory per rank =="
build/bin/bench_gpt --layers 12 --hidden 768 --heads 12 --seq 1024 --vocab 50257 --micro 1 --global 1 --steps 3 --threads 2
"${mpi[@]}" -np 2 build/bin/bench_gpt --layers 12 --hidden 768 --heads 12 --seq 1024 --vocab 50257 --micro 1 --global 1 --steps 3 --threads 1 --tp 2
echo "== 4. t5-v1.1-base (encoder 512, decoder 114, micro batch 1, 3 steps): memory per rank =="
t5base=(--recipe t5 --base recipes/t5/t5-v1.1-base.yaml --layers 12 --hidden 768 --heads 12 --ffn 2048
        --seq 512 --vocab 32128 --untied --micro 1 --global 1 --steps 3)
build/bin/bench_gpt "${t5base[@]}" --threads 2 | tail -1
"${mpi[@]}" -np 2 build/bin/bench_gpt "${t5base[@]}" --threads 1 --tp 2 | tail -1
