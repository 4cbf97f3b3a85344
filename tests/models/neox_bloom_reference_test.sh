#!/usr/bin/env bash
# GPT-NeoX (Pythia) and BLOOM end to end against an independent reference:
#   pythia  recipes/gpt/pythia-tiny.yaml: RoPE on 25% of each head, parallel attention + MLP,
#           LayerNorm and biases, GELU, untied output                    -> GPTNeoXForCausalLM
#   neox-s  the same with sequential sub-blocks and 50% rotary            -> GPTNeoXForCausalLM
#   bloom   recipes/gpt/bloom-tiny.yaml: ALiBi, a LayerNorm after the embeddings, tanh GELU,
#           biases, tied output                                           -> BloomForCausalLM
#   starcoder  recipes/gpt/starcoder-tiny.yaml: learned positions, multi-query attention, tanh
#           GELU, tied output (the key/value rows on every TP rank)      -> GPTBigCodeForCausalLM
# Each (tests/lib/hf_layout_check.sh): train a few steps on the default corpus at TP=2 (2 ranks);
# `generate --logits` at TP=1 and TP=2; export-hf; the model written in plain PyTorch
# (tests/models/neox_bloom_reference.py) loads the export and reproduces both within 1e-5;
# import-hf gives back bit-identical tensors; reshard 2 -> 1 -> 2 gives back the TP 2
# checkpoint's tensors bit for bit (the per-head fused QKV split by heads). Then config.json's
# keys, the published sizes' parameter counts and the refusals.
set -euo pipefail
build=$1
src=$2
bin=$build/bin
source "$src/tests/lib/e2e.sh"
source "$src/tests/lib/hf_layout_check.sh"
ref=tests/models/neox_bloom_reference.py
hf_layout_check $ref pythia recipes/gpt/pythia-tiny.yaml
hf_layout_check $ref neox-s recipes/gpt/pythia-tiny.yaml --set model.parallel_residual=false \
  --set model.rotary_percent=0.5 --set model.activation=gelu_tanh
hf_layout_check $ref bloom recipes/gpt/bloom-tiny.yaml
# StarCoder (GPTBigCode): multi-query attention, its key and value rows on both TP ranks.
hf_layout_check $ref starcoder recipes/gpt/starcoder-tiny.yaml
j=$tmp/starcoder-hf/config.json
grep -q '"architectures": \["GPTBigCodeForCausalLM"\]' "$j" && grep -q '"multi_query": true' "$j" ||
  { echo "FAIL: gpt_bigcode config.json"; cat "$j"; exit 1; }
j=$tmp/pythia-hf/config.json
grep -q '"architectures": \["GPTNeoXForCausalLM"\]' "$j" && grep -q '"rotary_pct": 0.25' "$j" &&
  grep -q '"use_parallel_residual": true' "$j" && grep -q '"hidden_act": "gelu"' "$j" &&
  grep -q '"tie_word_embeddings": false' "$j" || { echo "FAIL: gpt_neox config.json"; cat "$j"; exit 1; }
grep -q '"hidden_act": "gelu_new"' "$tmp/neox-s-hf/config.json" &&
  grep -q '"use_parallel_residual": false' "$tmp/neox-s-hf/config.json" ||
  { echo "FAIL: neox-s config.json"; cat "$tmp/neox-s-hf/config.json"; exit 1; }
j=$tmp/bloom-hf/config.json
grep -q '"architectures": \["BloomForCausalLM"\]' "$j" && grep -q '"n_head": 4' "$j" &&
  grep -q '"tie_word_embeddings": true' "$j" || { echo "FAIL: bloom config.json"; cat "$j"; exit 1; }
echo "ok   config.json: GPTNeoXForCausalLM (rotary_pct, use_parallel_residual, hidden_act, untied), BloomForCausalLM"
# The published sizes' parameter counts from the configs: Pythia-160M 162,322,944, Pythia-1.4B
# 1,414,647,808 and BLOOM-560M 559,214,592 (the estimate prints millions to one decimal; the
# exact counts are checked in neox_bloom_test).
"$P" --recipe recipes/gpt/pythia-160m.yaml --print-config | grep -q "# estimate: 162.3M parameters" &&
  "$P" --recipe recipes/gpt/starcoderbase-1b.yaml --print-config | grep -q "# estimate: 1137.2M parameters" &&
  "$P" --recipe recipes/gpt/pythia-1.4b.yaml --print-config | grep -q "# estimate: 1414.6M parameters" &&
  "$P" --recipe recipes/gpt/bloom-560m.yaml --print-config | grep -q "# estimate: 559.2M parameters" ||
  { echo "FAIL: the published parameter counts"; exit 1; }
echo "ok   --print-config: pythia-160m 162.3M, pythia-1.4b 1414.6M, bloom-560m 559.2M, starcoderbase-1b 1137.2M parameters"
# Refusals: settings the layouts cannot hold, named.
bad() {  # NAME RECIPE SETTINGS...: a one-step run with the settings
  local name=$1 recipe=$2
  shift 2
  "$P" --recipe "$recipe" --set train.train_steps=1 --set train.eval_steps=0 \
    --set logging.run_dir="$tmp/$name" "$@" > "$tmp/$name.log" 2>&1 || { cat "$tmp/$name.log"; exit 1; }
}
bad grouped recipes/gpt/pythia-tiny.yaml --set model.num_query_groups=2
expect_error "GPT-NeoX fuses q, k and v per head: model.num_query_groups must equal" \
  $C export-hf --input "$tmp/grouped/checkpoints/step_00000001" --output "$tmp/bad1"
[[ ! -e $tmp/bad1 ]] || { echo "FAIL: a refused export left its output"; exit 1; }
bad llama-layout recipes/gpt/llama-tiny.yaml --set model.rotary_percent=0.5
expect_error "HINT: model.hf_layout: bloom (an embedding LayerNorm) or gpt_neox (partial rotary)" \
  $C export-hf --input "$tmp/llama-layout/checkpoints/step_00000001" --output "$tmp/bad2"
expect_error "--recipe and --set are import-hf options" \
  $C export-hf --input "$tmp/pythia-tp1ck" --output "$tmp/bad3" --set model.num_query_groups=2
expect_error "model.rotary_percent: 0.3 of the head size 16 is 4.8 dimensions" \
  "$P" --recipe recipes/gpt/pythia-tiny.yaml --set model.rotary_percent=0.3 --print-config
echo "ok   refused: a grouped QKV in GPT-NeoX's layout, partial rotary in Llama's, a rotary share that is no even number of dimensions, --set on export-hf"
