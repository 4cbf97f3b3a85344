#!/usr/bin/env python3
"""Qwen2-MoE written here from the Hugging Face layout (Qwen2MoeForCausalLM) and the Qwen1.5-MoE
release notes, in plain PyTorch (float64), loading braid's export. Llama's attention
(llama_reference.py) with biases on q, k and v; each sparse layer (not in mlp_only_layers, and
(i + 1) % decoder_sparse_step == 0):
  - router logits l = x W^T (mlp.gate.weight); probabilities p = softmax(l) over all experts;
  - the top-k experts by p, weighted by p itself, or renormalised over the k when norm_topk_prob
    (mixtral_reference.py's token-by-token experts, named gate_proj / up_proj / down_proj);
  - plus the shared expert (mlp.shared_expert, a SwiGLU MLP) times sigmoid(x g^T)
    (mlp.shared_expert_gate.weight);
the other layers a dense SwiGLU MLP. The load-balancing and z-loss per layer as in
mixtral_reference.py. Checks braid's `generate --logits` output: logits and loss, and each layer's
losses, within 1e-5 relative.

usage: qwen_moe_reference.py HF_DIR LOGITS.json [LOGITS.json ...]
"""
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from mixtral_reference import Mixtral, check_moe  # noqa: E402


class Qwen2Moe(Mixtral):
    model_types = ("qwen2_moe",)

    def __init__(self, hf_dir):
        super().__init__(hf_dir)
        step = self.c.get("decoder_sparse_step", 1)
        only = set(self.c.get("mlp_only_layers", []))
        self.sparse = [i not in only and (i + 1) % step == 0
                       for i in range(self.c["num_hidden_layers"])]

    def route(self, logits, layer):
        probs = logits.softmax(-1)
        top = probs.topk(self.k, -1)
        weights = top.values
        if self.c.get("norm_topk_prob", False):
            weights = weights / weights.sum(-1, keepdim=True)
        self.record(logits, top.indices, layer)
        return top.indices, weights

    def mlp(self, x, p):  # p: model.layers.{i}.mlp.
        layer = int(p.split(".")[2])
        if not self.sparse[layer]:
            return super(Mixtral, self).mlp(x, p)  # Llama's dense SwiGLU MLP
        b, s, h = x.shape
        t = x.reshape(-1, h)
        names = ("gate_proj", "up_proj", "down_proj")
        out = self.moe(t, p, layer, names)
        shared = self.expert(t, p + "shared_expert.", names)
        gate = torch.sigmoid(t @ self.w[p + "shared_expert_gate.weight"].T)
        return (out + gate * shared).reshape(b, s, h)


def main():
    model = Qwen2Moe(sys.argv[1])
    assert model.w["model.embed_tokens.weight"].shape[0] == model.c["vocab_size"]
    check_moe(model, sys.argv[2:])
    print(f"ok   braid's Qwen2MoeForCausalLM ({model.experts} experts, top {model.k}, "
          f"norm_topk_prob {model.c.get('norm_topk_prob')}, sparse layers {model.sparse}) matches "
          "the PyTorch reference: logits, loss, load-balancing and z-loss per layer")


if __name__ == "__main__":
    main()
