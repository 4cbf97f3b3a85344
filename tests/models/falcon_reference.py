#!/usr/bin/env python3
"""Falcon (Almazrouei et al. 2023, "The Falcon Series of Open Language Models"; RefinedWeb,
Penedo et al. 2023), written here from the paper and the Hugging Face layout (FalconForCausalLM;
docs/formats.md, "Hugging Face name maps") in plain PyTorch (float64), loading braid's export:
  - word embeddings, no positions table; RoPE (rotate-half: cos/sin of p * theta^(-2j/d) for
    j < d/2, each repeated over both halves) on every query and key dimension;
  - self_attention.query_key_value fuses the projection per key/value group: its output is
    [group][the group's query heads, k, v][d], with
      new_decoder_architecture: num_kv_heads groups (Falcon-40B);
      multi_query: one group, q of every head then one k and one v (Falcon-7B);
      otherwise: one head a group, [head][q, k, v];
    every query head of a group attends with the group's key and value; scores / sqrt(d), causal;
  - layers: x + attn(ln_attn(x)) + mlp(ln_mlp(x)) (new architecture, num_ln_in_parallel_attn 2);
    x + attn(ln(x)) + mlp(ln(x)) with one input_layernorm (parallel_attn, Falcon-7B; or the new
    architecture with num_ln_in_parallel_attn 1); or sequential pre-LN (input_layernorm,
    post_attention_layernorm) when parallel_attn is false;
  - MLP dense_h_to_4h -> activation (GELU) -> dense_4h_to_h; biases on every linear when `bias`;
  - ln_f, logits through the tied word embeddings (lm_head when untied).
Checks braid's `generate --logits` output (logits and the mean next-token loss) within 1e-5.

usage: falcon_reference.py HF_DIR LOGITS.json [LOGITS.json ...]
"""
import json
import math
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gpt2_reference import check_logits, layer_norm, read_safetensors, rope  # noqa: E402


class Falcon:
    def __init__(self, hf_dir):
        self.c = json.load(open(f"{hf_dir}/config.json"))
        assert self.c["model_type"] == "falcon", self.c["model_type"]
        self.w = read_safetensors(f"{hf_dir}/model.safetensors")
        self.h = self.c["hidden_size"]
        self.heads = self.c["num_attention_heads"]
        self.d = self.h // self.heads
        self.new_arch = self.c.get("new_decoder_architecture", False)
        if self.new_arch:
            self.groups = self.c.get("num_kv_heads") or self.heads
        else:
            self.groups = 1 if self.c.get("multi_query", True) else self.heads
        self.parallel = self.new_arch or self.c.get("parallel_attn", True)
        norms = self.c.get("num_ln_in_parallel_attn") or 2
        self.two_norms = self.new_arch and norms == 2
        self.eps = self.c.get("layer_norm_epsilon", 1e-5)
        self.act = {"gelu": torch.nn.functional.gelu,
                    "gelu_new": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
                    "relu": torch.relu}[self.c.get("activation", "gelu")]

    def ln(self, x, name):
        return layer_norm(x, self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def linear(self, x, name):
        y = x @ self.w[name + ".weight"].T
        return y + self.w[name + ".bias"] if self.c.get("bias", False) else y

    def attention(self, x, p):
        b, s, _ = x.shape
        per = self.heads // self.groups
        qkv = self.linear(x, p + "query_key_value").view(b, s, self.groups, per + 2, self.d)
        q = qkv[:, :, :, :per].reshape(b, s, self.heads, self.d).transpose(1, 2)
        # each query head of group g reads the group's key and value
        k = qkv[:, :, :, per].repeat_interleave(per, dim=2).transpose(1, 2)
        v = qkv[:, :, :, per + 1].repeat_interleave(per, dim=2).transpose(1, 2)
        theta = self.c.get("rope_theta", 10000)
        q, k = rope(q, theta, self.d), rope(k, theta, self.d)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d)
        i = torch.arange(s)[:, None]
        j = torch.arange(s)[None, :]
        scores = scores.masked_fill(j > i, float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, self.h)
        return self.linear(y, p + "dense")

    def mlp(self, x, p):
        return self.linear(self.act(self.linear(x, p + "dense_h_to_4h")), p + "dense_4h_to_h")

    def forward(self, ids):
        x = self.w["transformer.word_embeddings.weight"][ids]
        for i in range(self.c["num_hidden_layers"]):
            p = f"transformer.h.{i}."
            if self.two_norms:
                x = x + self.attention(self.ln(x, p + "ln_attn"), p + "self_attention.") + \
                    self.mlp(self.ln(x, p + "ln_mlp"), p + "mlp.")
            elif self.parallel:
                n = self.ln(x, p + "input_layernorm")
                x = x + self.attention(n, p + "self_attention.") + self.mlp(n, p + "mlp.")
            else:
                x = x + self.attention(self.ln(x, p + "input_layernorm"), p + "self_attention.")
                x = x + self.mlp(self.ln(x, p + "post_attention_layernorm"), p + "mlp.")
        x = self.ln(x, "transformer.ln_f")
        out = (self.w["transformer.word_embeddings.weight"] if self.c.get("tie_word_embeddings", True)
               else self.w["lm_head.weight"])
        return x @ out.T


def main():
    model = Falcon(sys.argv[1])
    check_logits(model.forward, sys.argv[2:])
    kind = ("new decoder architecture" if model.new_arch else
            "multi-query" if model.groups == 1 else "one head a group")
    print(f"ok   braid's FalconForCausalLM ({model.heads} heads, {model.groups} key/value groups, "
          f"{kind}, {'parallel' if model.parallel else 'sequential'}) matches the PyTorch reference")


main()
