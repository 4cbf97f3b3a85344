#!/usr/bin/env bash
# LLaMA-style GPT models end to end against an independent reference, for three variants:
#   llama    recipes/gpt/llama-tiny.yaml: RoPE, 4 heads in 2 key/value groups, SwiGLU, RMSNorm,
#            no biases, untied output                               -> LlamaForCausalLM
#   mistral  the same with a sliding window of 5 positions          -> MistralForCausalLM
#   alibi    ALiBi, a window of 6, biases, parallel attention + MLP, gated tanh-GELU
#                                                                   -> BraidLlamaForCausalLM
# Each: train a few steps on the default corpus at TP=2 (2 ranks); `generate --logits` at TP=1
# and TP=2; export-hf; the LLaMA written in plain PyTorch (tests/models/llama_reference.py) loads
# the export and reproduces both within 1e-5. import-hf gives back bit-identical tensors. Then
# config.json's keys, and the refusals of bad decoder settings.
set -euo pipefail
build=$1
src=$2
bin=$build/bin
source "$src/tests/lib/e2e.sh"
C=$bin/convert_checkpoint
ids="5,17,42,7,7,300,2048,12,1,99,7999,3"
check() {  # NAME SETTINGS...
  local name=$1
  shift
  local run=$tmp/$name
  "${mpi[@]}" -np 2 "$bin/pretrain" --recipe recipes/gpt/llama-tiny.yaml --set train.train_steps=6 \
    --set train.eval_steps=0 --set parallel.tensor_parallel_size=2 --set logging.run_dir="$run" \
    "$@" > "$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; exit 1; }
  "$bin/generate" --run-dir "$run" --logits "$ids" > "$tmp/$name-tp1.json"
  "${mpi[@]}" -np 2 "$bin/generate" --run-dir "$run" --logits "$ids" > "$tmp/$name-tp2.json"
  local ck=$run/checkpoints/step_00000006
  $C export-hf --input "$ck" --output "$tmp/$name-hf" > /dev/null
  /usr/bin/python3 tests/models/llama_reference.py "$tmp/$name-hf" "$tmp/$name-tp1.json" \
    "$tmp/$name-tp2.json"
  $C reshard --input "$ck" --output "$tmp/$name-tp1ck" --tp 1 > /dev/null
  $C import-hf --input "$tmp/$name-hf" --output "$tmp/$name-back" --recipe recipes/gpt/tiny.yaml \
    --tp 1 > /dev/null
  /usr/bin/python3 tests/lib/same_tensors.py "$tmp/$name-tp1ck/tp0.safetensors" \
    "$tmp/$name-back/tp0.safetensors" model/ "$name: ours -> Hugging Face -> ours"
}
check llama
check mistral --set model.sliding_window=5
check alibi --set model.position=alibi --set model.sliding_window=6 --set model.bias=true \
  --set model.parallel_residual=true --set model.activation=geglu_tanh --set model.num_query_groups=0
j=$tmp/llama-hf/config.json
grep -q '"architectures": \["LlamaForCausalLM"\]' "$j" && grep -q '"num_key_value_heads": 2' "$j" &&
  grep -q '"rope_theta": 10000' "$j" && grep -q '"rms_norm_eps": 1e-05' "$j" &&
  grep -q '"tie_word_embeddings": false' "$j" && grep -q '"hidden_act": "silu"' "$j" ||
  { echo "FAIL: llama config.json"; cat "$j"; exit 1; }
j=$tmp/mistral-hf/config.json
grep -q '"model_type": "mistral"' "$j" && grep -q '"sliding_window": 5' "$j" ||
  { echo "FAIL: mistral config.json"; cat "$j"; exit 1; }
grep -q '"model_type": "braid_llama"' "$tmp/alibi-hf/config.json" ||
  { echo "FAIL: alibi config.json"; cat "$tmp/alibi-hf/config.json"; exit 1; }
echo "ok   config.json: LlamaForCausalLM (num_key_value_heads, rope_theta, rms_norm_eps, untied), MistralForCausalLM (sliding_window), braid_llama for ALiBi"

P=$bin/pretrain
expect_error "model.num_query_groups: 3 key/value groups do not divide model.num_attention_heads = 4" \
  "$P" --recipe recipes/gpt/llama-tiny.yaml --set model.num_query_groups=3 --print-config
expect_error "model.num_query_groups: 2 key/value groups cannot be split across parallel.tensor_parallel_size = 4" \
  "$P" --recipe recipes/gpt/llama-tiny.yaml --set parallel.tensor_parallel_size=4 --print-config
expect_error "model.position: read by gpt; this recipe is bert" \
  "$P" --recipe recipes/bert/tiny.yaml --set model.position=rope --print-config
# The chunked output layer and loss through the trainer (untied output at TP 2, 12 steps with two
# evaluations, 200-token chunks of 8 x 64 tokens per rank): every training and validation loss
# within 1e-5 of the run with the logits whole (validation: as printed, to 4 decimals).
for c in 0 200; do
  "${mpi[@]}" -np 2 "$bin/pretrain" --recipe recipes/gpt/llama-tiny.yaml --set train.train_steps=12 \
    --set train.eval_interval=6 --set train.eval_steps=2 --set parallel.tensor_parallel_size=2 \
    --set model.output_chunk_tokens=$c --set logging.run_dir="$tmp/chunk$c" > "$tmp/chunk$c.log" 2>&1 \
    || { cat "$tmp/chunk$c.log"; exit 1; }
done
/usr/bin/python3 tests/lib/same_run_losses.py "$tmp/chunk0" "$tmp/chunk200" 12 1e-5 \
  "output_chunk_tokens 200 through the trainer, against the logits whole"
expect_error "model.num_query_groups: 2 key/value groups cannot be split across a TP size of 4" \
  $C reshard --input "$tmp/llama/checkpoints/step_00000006" --output "$tmp/llama-tp4" --tp 4
[[ ! -e $tmp/llama-tp4 ]] || { echo "FAIL: a refused reshard left its output"; exit 1; }
cp -r "$tmp/llama-hf" "$tmp/scaled-hf"
/usr/bin/python3 -c '
import json, sys
p = sys.argv[1] + "/config.json"
c = json.load(open(p))
c["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0}
json.dump(c, open(p, "w"))' "$tmp/scaled-hf"
expect_error "config.json: rope_scaling is set" \
  $C import-hf --input "$tmp/scaled-hf" --output "$tmp/scaled-back" --recipe recipes/gpt/tiny.yaml --tp 1
echo "ok   refused: groups that do not divide the heads or the TP size (pretrain, reshard), decoder options on BERT, a Llama with rope_scaling"
# The 7B configs' parameter counts from the config alone: LLaMA-2 7B's published 6,738,415,616
# and Mistral 7B's 7,241,732,096 (the estimate prints millions to one decimal).
"$P" --recipe recipes/gpt/llama2-7b.yaml --print-config | grep -q "# estimate: 6738.4M parameters" &&
  "$P" --recipe recipes/gpt/mistral-7b.yaml --print-config --world-size 8 \
    --set parallel.tensor_parallel_size=8 | grep -q "# estimate: 7241.7M parameters; per rank about 14.48 GB" ||
  { echo "FAIL: the 7B parameter counts"; exit 1; }
echo "ok   --print-config: llama2-7b 6738.4M and mistral-7b 7241.7M parameters (the published counts), per rank at TP 8"
