#!/usr/bin/env bash
# Falcon (FalconForCausalLM) end to end against an independent reference, in its three layouts:
#   falcon7b   recipes/gpt/falcon-tiny.yaml: RoPE, multi-query attention (the key and value rows
#              on every TP rank), parallel attention + MLP reading one LayerNorm, GELU, no
#              biases, tied output
#   falcon40b  the new decoder architecture: 2 key/value groups, ln_attn and ln_mlp
#   falcon-1n  the new decoder architecture with one shared norm (num_ln_in_parallel_attn 1)
#   falcon-seq one head a group ([head][q, k, v]), sequential layers, biases, untied
# Each (tests/lib/hf_layout_check.sh): trained a few steps on the default corpus at TP 2;
# `generate --logits` at TP 1 and 2; export-hf; Falcon written in plain PyTorch from the paper
# (tests/models/falcon_reference.py) loads the export and reproduces the logits within 1e-5;
# import-hf gives back bit-identical tensors; reshard 2 -> 1 -> 2 bit for bit. Then 20 steps of
# the multi-query model at TP 2 x DP 2 with the distributed optimizer against TP 1 x DP 2,
# config.json's keys, a RefinedWebModel-era config.json (n_layer, n_head, model_type
# RefinedWebModel) read as the same model, Falcon-7B's published parameter count and the
# refusals.
set -euo pipefail
build=$1
src=$2
bin=$build/bin
source "$src/tests/lib/e2e.sh"
source "$src/tests/lib/hf_layout_check.sh"
ref=tests/models/falcon_reference.py
hf_layout_check $ref falcon7b recipes/gpt/falcon-tiny.yaml
hf_layout_check $ref falcon40b recipes/gpt/falcon-tiny.yaml --set model.num_query_groups=2 \
  --set model.shared_input_norm=false
hf_layout_check $ref falcon-1n recipes/gpt/falcon-tiny.yaml --set model.num_query_groups=2
hf_layout_check $ref falcon-seq recipes/gpt/falcon-tiny.yaml --set model.num_query_groups=4 \
  --set model.parallel_residual=false --set model.shared_input_norm=false --set model.bias=true \
  --set model.tie_embeddings=false --set model.activation=gelu_tanh
# Multi-query attention through the trainer: TP 2 x DP 2 with the distributed optimizer (the
# gradient norm counts the replicated rows once) against TP 1 x DP 2.
common=(--recipe recipes/gpt/falcon-tiny.yaml --set train.train_steps=20 --set train.eval_steps=0
  --set train.clip_grad=0.5)
run 2 "$tmp/mqa-tp1"
run 4 "$tmp/mqa-tp2" --set parallel.tensor_parallel_size=2 --set parallel.distributed_optimizer=true
compare "$tmp/mqa-tp1" "$tmp/mqa-tp2" 1e-5 "multi-query attention: TP 2 x DP 2 (distributed optimizer) against TP 1 x DP 2"
j=$tmp/falcon7b-hf/config.json
grep -q '"architectures": \["FalconForCausalLM"\]' "$j" && grep -q '"multi_query": true' "$j" &&
  grep -q '"new_decoder_architecture": false' "$j" && grep -q '"parallel_attn": true' "$j" &&
  grep -q '"bias": false' "$j" && grep -q '"tie_word_embeddings": true' "$j" ||
  { echo "FAIL: falcon7b config.json"; cat "$j"; exit 1; }
j=$tmp/falcon40b-hf/config.json
grep -q '"new_decoder_architecture": true' "$j" && grep -q '"num_kv_heads": 2' "$j" &&
  grep -q '"num_ln_in_parallel_attn": 2' "$j" || { echo "FAIL: falcon40b config.json"; cat "$j"; exit 1; }
grep -q '"num_ln_in_parallel_attn": 1' "$tmp/falcon-1n-hf/config.json" ||
  { echo "FAIL: falcon-1n config.json"; cat "$tmp/falcon-1n-hf/config.json"; exit 1; }
j=$tmp/falcon-seq-hf/config.json
grep -q '"multi_query": false' "$j" && grep -q '"parallel_attn": false' "$j" &&
  grep -q '"bias": true' "$j" && grep -q '"activation": "gelu_new"' "$j" ||
  { echo "FAIL: falcon-seq config.json"; cat "$j"; exit 1; }
echo "ok   config.json: multi_query, new_decoder_architecture, num_kv_heads, num_ln_in_parallel_attn, parallel_attn, bias, activation"
# Falcon-7B's first config.json (model_type RefinedWebModel, n_layer, n_head, no
# new_decoder_architecture): the same model.
old=$tmp/refinedweb
cp -r "$tmp/falcon7b-hf" "$old"
/usr/bin/python3 - "$old/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["model_type"] = "RefinedWebModel"
c["n_layer"], c["n_head"] = c.pop("num_hidden_layers"), c.pop("num_attention_heads")
for k in ("new_decoder_architecture", "num_kv_heads", "num_ln_in_parallel_attn", "activation",
          "ffn_hidden_size", "rope_theta", "max_position_embeddings"):
    c.pop(k)
json.dump(c, open(sys.argv[1], "w"))
PY
$C import-hf --input "$old" --output "$tmp/refinedweb-back" --recipe recipes/gpt/tiny.yaml --tp 1 \
  > /dev/null
/usr/bin/python3 tests/lib/same_tensors.py "$tmp/falcon7b-back/tp0.safetensors" \
  "$tmp/refinedweb-back/tp0.safetensors" model/ "a RefinedWebModel config.json: the same model"
# Falcon-7B's published parameter count: 6,921,720,704 (exact in neox_bloom_test).
"$P" --recipe recipes/gpt/falcon-7b.yaml --print-config | grep -q "# estimate: 6921.7M parameters" ||
  { echo "FAIL: Falcon-7B's parameter count"; "$P" --recipe recipes/gpt/falcon-7b.yaml --print-config | grep estimate; exit 1; }
echo "ok   --print-config: falcon-7b 6921.7M parameters"
# Refusals, named.
expect_error "key/value groups cannot be split across parallel.tensor_parallel_size = 4" \
  "$P" --recipe recipes/gpt/falcon-tiny.yaml --set model.num_query_groups=2 \
  --set parallel.tensor_parallel_size=4 --print-config
expect_error "model.shared_input_norm: one norm shared by attention and MLP needs parallel" \
  "$P" --recipe recipes/gpt/falcon-tiny.yaml --set model.parallel_residual=false --print-config
"$P" --recipe recipes/gpt/falcon-tiny.yaml --set model.position=alibi --set train.train_steps=1 \
  --set train.eval_steps=0 --set logging.run_dir="$tmp/alibi" > "$tmp/alibi.log" 2>&1 ||
  { cat "$tmp/alibi.log"; exit 1; }
expect_error "Falcon's own ALiBi divides the slopes by sqrt(head_dim)" \
  $C export-hf --input "$tmp/alibi/checkpoints/step_00000001" --output "$tmp/bad1"
[[ ! -e $tmp/bad1 ]] || { echo "FAIL: a refused export left its output"; exit 1; }
/usr/bin/python3 - "$old/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["alibi"] = True
json.dump(c, open(sys.argv[1], "w"))
PY
expect_error "config.json: alibi is true (Falcon-RW)" \
  $C import-hf --input "$old" --output "$tmp/bad2" --recipe recipes/gpt/tiny.yaml
[[ ! -e $tmp/bad2 ]] || { echo "FAIL: a refused import left its output"; exit 1; }
echo "ok   refused: 2 key/value groups over TP 4, a shared norm without parallel sub-blocks, ALiBi either way"
