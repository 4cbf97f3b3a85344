#!/usr/bin/env bash
# Mixture of experts (MixtralForCausalLM, Qwen2MoeForCausalLM) end to end against independent
# references:
#   - recipes/gpt/mixtral-tiny.yaml (8 SwiGLU experts, top 2, aux and z-loss on) trained at TP 2
#     (tests/lib/hf_layout_check.sh): `generate --logits` at TP 1 and 2, export-hf, and Mixtral in
#     plain PyTorch (tests/models/mixtral_reference.py, token by token) reproduces the logits, the
#     loss and each layer's load-balancing and z-loss within 1e-5; import-hf bit for bit; reshard
#     2 -> 1 -> 2 bit for bit (weights and AdamW state);
#   - recipes/gpt/qwen-moe-tiny.yaml the same way against Qwen2-MoE in plain PyTorch
#     (tests/models/qwen_moe_reference.py): q/k/v biases, top-4 probabilities as they are, a shared
#     expert behind its sigmoid gate, a dense second layer;
#   - through the trainer, 20 steps with clipping against TP 1 x DP 2 (every run's loss includes the
#     auxiliary losses' gradients): TP 2 x DP 2 with the distributed optimizer, TP 2 with sequence
#     parallelism, PP 2 x DP 2 (1F1B), full recomputation, gradient accumulation;
#   - the run log's MoE metrics; the capacity factor drops tokens and still trains;
#   - config.json's keys, Mixtral-8x7B's published parameter count, and the refusals.
set -euo pipefail
build=$1
src=$2
bin=$build/bin
source "$src/tests/lib/e2e.sh"
source "$src/tests/lib/hf_layout_check.sh"
mixtral=recipes/gpt/mixtral-tiny.yaml
hf_layout_check tests/models/mixtral_reference.py mixtral $mixtral --set model.moe_z_loss_coeff=0.001
# Qwen2-MoE: biases on q, k and v, the top 4 of 8 by probability without renormalising, a shared
# expert behind its gate, the second layer dense (mlp_only_layers).
hf_layout_check tests/models/qwen_moe_reference.py qwen recipes/gpt/qwen-moe-tiny.yaml
j=$tmp/qwen-hf/config.json
grep -q '"architectures": \["Qwen2MoeForCausalLM"\]' "$j" && grep -q '"num_experts": 8' "$j" &&
  grep -q '"num_experts_per_tok": 4' "$j" && grep -q '"norm_topk_prob": false' "$j" &&
  grep -q '"moe_intermediate_size": 48' "$j" && grep -q '"shared_expert_intermediate_size": 96' "$j" &&
  grep -q '"mlp_only_layers": \[1\]' "$j" && grep -q '"intermediate_size": 192' "$j" ||
  { echo "FAIL: Qwen2-MoE config.json"; cat "$j"; exit 1; }
echo "ok   config.json: Qwen2MoeForCausalLM, num_experts, norm_topk_prob, moe_intermediate_size, shared_expert_intermediate_size, mlp_only_layers"
# transformers' decoder_sparse_step (layer i sparse when (i + 1) % step == 0) is read as a pattern.
cp -r "$tmp/qwen-hf" "$tmp/qwen-step"
/usr/bin/python3 - "$tmp/qwen-step/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["num_hidden_layers"] = 2
c["decoder_sparse_step"] = 2
c["mlp_only_layers"] = []
json.dump(c, open(sys.argv[1], "w"))
PY
expect_error "model.layers.0.mlp.gate_proj.weight" \
  $C import-hf --input "$tmp/qwen-step" --output "$tmp/qwen-step-back" --recipe recipes/gpt/tiny.yaml
echo "ok   decoder_sparse_step 2 makes layer 0 dense (its dense MLP is looked for)"
j=$tmp/mixtral-hf/config.json
grep -q '"architectures": \["MixtralForCausalLM"\]' "$j" && grep -q '"num_local_experts": 8' "$j" &&
  grep -q '"num_experts_per_tok": 2' "$j" && grep -q '"router_aux_loss_coef": 0.02' "$j" &&
  grep -q '"intermediate_size": 96' "$j" ||
  { echo "FAIL: Mixtral config.json"; cat "$j"; exit 1; }
echo "ok   config.json: MixtralForCausalLM, num_local_experts, num_experts_per_tok, router_aux_loss_coef"
# Through the trainer: the parallel layouts against TP 1 x DP 2, 20 steps. The global batch is 16
# (DP 2 x micro 8; PP 2 x DP 2: 2 micro-batches of 4 each per rank).
common=(--recipe $mixtral --set train.train_steps=20 --set train.eval_steps=0
  --set train.clip_grad=0.5 --set model.moe_z_loss_coeff=0.001 --set train.global_batch_size=16)
run 2 "$tmp/dp2"
run 4 "$tmp/tp2dp2" --set parallel.tensor_parallel_size=2 --set parallel.distributed_optimizer=true
compare "$tmp/dp2" "$tmp/tp2dp2" 1e-5 "MoE: TP 2 x DP 2 (distributed optimizer) against TP 1 x DP 2"
run 4 "$tmp/sp" --set parallel.tensor_parallel_size=2 --set parallel.sequence_parallel=true
compare "$tmp/dp2" "$tmp/sp" 1e-5 "MoE: TP 2 x DP 2 with sequence parallelism against TP 1 x DP 2"
# The auxiliary losses are taken per micro-batch (like Megatron-LM's), so the pipeline's runs are
# compared with micro-batches of the same size: 4, two per step on each DP rank.
run 2 "$tmp/dp2-m4" --set train.micro_batch_size=4
run 4 "$tmp/pp2" --set parallel.pipeline_parallel_size=2 --set train.micro_batch_size=4
compare "$tmp/dp2-m4" "$tmp/pp2" 1e-5 "MoE: PP 2 x DP 2 against TP 1 x DP 2 (2 micro-batches of 4)"
run 2 "$tmp/full" --set train.recompute=full
compare "$tmp/dp2" "$tmp/full" 1e-5 "MoE: full recomputation against none"
# The metrics: every layer's mean in the progress line; the load-balancing loss near 1 (its value
# for a balanced router) and the z-loss positive.
/usr/bin/python3 - "$tmp/dp2.log" "$tmp/pp2.log" <<'PY'
import re, sys
for path in sys.argv[1:]:
    lines = [l for l in open(path) if "[train] step 20/20" in l]
    assert lines, path
    m = dict(re.findall(r"\| (moe_\w+) ([-\d.]+)", lines[-1]))
    for k in ("moe_aux", "moe_z", "moe_load_cv", "moe_load_max", "moe_load_min", "moe_dropped"):
        assert k in m, (path, k, lines[-1])
    aux, z = float(m["moe_aux"]), float(m["moe_z"])
    assert 0.95 < aux < 2.0 and z > 0 and float(m["moe_dropped"]) == 0, (path, m)
    assert float(m["moe_load_min"]) <= 1 <= float(m["moe_load_max"]), (path, m)
    print(f"ok   {path.rsplit('/', 1)[1]}: {' '.join(f'{k} {v}' for k, v in sorted(m.items()))}")
PY
# The pipeline's stages each report their own layers' metrics, summed over the stages: PP 2's
# equal PP 1's.
/usr/bin/python3 - "$tmp/dp2-m4.log" "$tmp/pp2.log" <<'PY'
import re, sys
a, b = ([dict(re.findall(r"\| (moe_\w+) ([-\d.]+)", l)) for l in open(p) if "[train] step " in l]
        for p in sys.argv[1:])
assert len(a) == len(b) > 0
for x, y in zip(a, b):
    for k in x:
        assert abs(float(x[k]) - float(y[k])) <= 2e-4 * max(1.0, abs(float(x[k]))), (k, x, y)
print(f"ok   PP 2's MoE metrics (each stage its own layers) equal PP 1's: {len(a)} intervals")
PY
# Capacity: a factor of 1 drops assignments past each expert's capacity and still learns.
run 2 "$tmp/cap" --set model.moe_capacity_factor=1.0
/usr/bin/python3 - "$tmp/cap.log" <<'PY'
import re, sys
lines = [l for l in open(sys.argv[1]) if "[train] step " in l]
first = float(re.search(r"\| loss ([\d.]+)", lines[0]).group(1))
last = float(re.search(r"\| loss ([\d.]+)", lines[-1]).group(1))
dropped = [float(re.search(r"moe_dropped ([\d.]+)", l).group(1)) for l in lines]
assert all(0 < d < 0.5 for d in dropped), dropped
assert last < first, (first, last)
print(f"ok   capacity factor 1: {100 * max(dropped):.1f}% of assignments dropped at most, loss {first} -> {last}")
PY
# Mixtral-8x7B's published size.
"$P" --recipe recipes/gpt/mixtral-8x7b.yaml --print-config 2>&1 | grep -q "estimate: 46702.8M parameters" ||
  { echo "FAIL: mixtral-8x7b is not 46702.8M parameters"; exit 1; }
echo "ok   mixtral-8x7b: 46702.8M parameters (46,702,792,704 published)"
# Refusals.
expect_error "model.moe_top_k: 9 experts per token, but model.num_experts is 8" \
  "$P" --recipe $mixtral --set model.moe_top_k=9 --print-config
expect_error "model.moe_layer_pattern: 3 entries for model.num_layers = 2" \
  "$P" --recipe $mixtral --set "model.moe_layer_pattern=[1,0,1]" --print-config
expect_error "model.moe_capacity_factor: is set, but model.num_experts is 0" \
  "$P" --recipe recipes/gpt/llama-tiny.yaml --set model.moe_capacity_factor=1.25 --print-config
expect_error "model.num_experts: read by gpt" \
  "$P" --recipe recipes/bert/tiny.yaml --set model.num_experts=4 --print-config
expect_error "the experts' FFN width 95 is not divisible by parallel.tensor_parallel_size = 2" \
  "${mpi[@]}" -np 2 "$P" --recipe $mixtral --set model.moe_ffn_hidden_size=95 \
  --set parallel.tensor_parallel_size=2 --print-config
run 2 "$tmp/dense1" --set "model.moe_layer_pattern=[1,0]" --set train.train_steps=2
expect_error "Mixtral's layout has an MoE MLP in every layer" \
  $C export-hf --input "$tmp/dense1/checkpoints/step_00000002" --output "$tmp/dense1-hf"
[[ ! -e $tmp/dense1-hf ]] || { echo "FAIL: a refused export left $tmp/dense1-hf"; exit 1; }
run 2 "$tmp/shared" --set model.moe_shared_experts=1 --set train.train_steps=2
expect_error "Qwen2-MoE's layout has a shared expert with its gate" \
  $C export-hf --input "$tmp/shared/checkpoints/step_00000002" --output "$tmp/shared-hf"
[[ ! -e $tmp/shared-hf ]] || { echo "FAIL: a refused export left $tmp/shared-hf"; exit 1; }
expect_error "model.add_qkv_bias: q, k and v have biases already" \
  "$P" --recipe recipes/gpt/qwen-moe-tiny.yaml --set model.bias=true --print-config
echo "ok   refusals: top-k above the experts, a pattern of the wrong length, MoE keys on a dense model or another family, an FFN width TP does not divide, a dense layer in Mixtral's layout, a shared expert without its gate in Qwen2-MoE's, q/k/v biases on top of model.bias"
