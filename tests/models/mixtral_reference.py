#!/usr/bin/env python3
"""Mixtral written here from the paper (Jiang et al. 2024, "Mixtral of Experts") and the Hugging Face
layout (MixtralForCausalLM), in plain PyTorch (float64), loading braid's export. The attention is
llama_reference.py's (Mistral's: RoPE, grouped-query attention, RMSNorm); each layer's MLP is a
sparse mixture of experts:
  - router logits l = x W_g^T (block_sparse_moe.gate.weight [experts, hidden]);
  - the token's top-k experts by logit, weighted by the softmax over those k logits
    (y = sum_{i in TopK(l)} softmax(TopK(l))_i SwiGLU_i(x));
  - expert i: w2 (silu(x w1^T) * (x w3^T)) (experts.{i}.w1 / w3 / w2.weight);
computed token by token, expert by expert (no sorting, no batching: nothing shared with braid's
dispatch). Per layer it also computes the load-balancing loss in braid's (Megatron-LM's)
normalisation, E/k sum_e P_e c_e/T (P_e the mean softmax probability of expert e over the T tokens,
c_e the number of tokens that chose e among their k), transformers' own per-layer value
(load_balancing_loss_func: E sum_e mean_t[top-k one-hot] P_e, which is k times ours), and the router
z-loss mean_t logsumexp(l_t)^2.

Checks braid's `generate --logits` output: logits and loss within 1e-5 relative, and each layer's
load-balancing and z-loss ("moe_aux", "moe_z") within 1e-5 relative.

usage: mixtral_reference.py HF_DIR LOGITS.json [LOGITS.json ...]
"""
import json
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gpt2_reference import check_logits  # noqa: E402
from llama_reference import Llama  # noqa: E402


class Mixtral(Llama):
    model_types = ("mixtral",)

    def __init__(self, hf_dir):
        super().__init__(hf_dir)
        self.experts = self.c.get("num_local_experts", self.c.get("num_experts"))
        self.k = self.c["num_experts_per_tok"]
        self.aux, self.z = {}, {}

    def expert(self, x, p, names=("w1", "w3", "w2")):
        gate, up, down = names
        silu = torch.nn.functional.silu
        return (silu(x @ self.w[f"{p}{gate}.weight"].T) * (x @ self.w[f"{p}{up}.weight"].T)) @ self.w[
            f"{p}{down}.weight"].T

    def route(self, logits, layer):
        """Top-k experts and their weights (Mixtral: the softmax over the top-k logits); records the
        layer's load-balancing and z-loss."""
        top = logits.topk(self.k, -1)
        self.record(logits, top.indices, layer)
        return top.indices, top.values.softmax(-1)

    def record(self, logits, chosen, layer):
        tokens = logits.shape[0]
        probs = logits.softmax(-1)
        counts = torch.zeros(self.experts, dtype=torch.float64)
        for e in chosen.flatten().tolist():
            counts[e] += 1
        ours = self.experts / self.k * (probs.mean(0) * counts / tokens).sum()
        mask = torch.nn.functional.one_hot(chosen, self.experts).double()  # [T, k, E]
        theirs = self.experts * (mask.mean(0) * probs.mean(0)[None]).sum()
        assert abs(theirs - self.k * ours) < 1e-12 * self.k * ours
        self.aux[f"h.{layer}"] = ours.item()
        self.z[f"h.{layer}"] = torch.logsumexp(logits, -1).pow(2).mean().item()

    def moe(self, t, q, layer, names=("w1", "w3", "w2")):
        """The routed experts of tokens t [T, h], token by token (q: the MoE's name prefix)."""
        indices, weights = self.route(t @ self.w[q + "gate.weight"].T, layer)
        out = torch.zeros_like(t)
        for n in range(t.shape[0]):
            for j in range(self.k):
                e = int(indices[n, j])
                out[n] += weights[n, j] * self.expert(t[n], f"{q}experts.{e}.", names)
        return out

    def mlp(self, x, p):  # p: model.layers.{i}.mlp.
        layer = int(p.split(".")[2])
        b, s, h = x.shape
        out = self.moe(x.reshape(-1, h), p[: -len("mlp.")] + "block_sparse_moe.", layer)
        return out.reshape(b, s, h)


def check_moe(model, paths):
    """braid's `generate --logits` files: logits and loss (check_logits), and each MoE layer's
    load-balancing and z-loss within 1e-5 relative."""
    for path in paths:
        check_logits(model.forward, [path])
        got = json.load(open(path))
        for kind, mine in (("moe_aux", model.aux), ("moe_z", model.z)):
            assert set(got[kind]) == set(mine), (kind, got[kind], mine)
            for layer, v in mine.items():
                rel = abs(got[kind][layer] - v) / abs(v)
                print(f"{path}: {kind} {layer}: {got[kind][layer]:.7f} vs {v:.7f} ({rel:.1e})")
                assert rel < 1e-5, f"{kind} of {layer} differs from the reference: {rel}"


def main():
    model = Mixtral(sys.argv[1])
    assert model.w["model.embed_tokens.weight"].shape[0] == model.c["vocab_size"]
    check_moe(model, sys.argv[2:])
    print(f"ok   braid's MixtralForCausalLM ({model.experts} experts, top {model.k}, "
          f"{model.c['num_hidden_layers']} layers) matches the PyTorch reference: logits, loss, "
          "load-balancing and z-loss per layer")


if __name__ == "__main__":
    main()
