#!/usr/bin/env python3
"""GPT-NeoX (Black et al. 2022; Pythia, Biderman et al. 2023), BLOOM (BigScience 2022) and
StarCoder (Li et al. 2023; GPTBigCode), written here from the papers and the Hugging Face layouts
(docs/formats.md, "Hugging Face name maps") in plain PyTorch (float64), loading braid's Hugging
Face export (GPTNeoXForCausalLM, BloomForCausalLM, GPTBigCodeForCausalLM):
  - StarCoder: learned positions added to the token embeddings; multi-query attention (Shazeer
    2019): c_attn's output is q (all heads) | k | v (one head each, shared by every query head);
    sequential pre-LN layers (ln_1, ln_2); tanh GELU; ln_f; logits through the tied wte;
  - both fuse the attention projection per head: query_key_value's output is [head][q, k, v][d];
  - GPT-NeoX: RoPE on the first rotary_pct x d dimensions of each head (rotate-half: cos/sin of
    p * base^(-2j/r) for j < r/2, each repeated for both halves), the rest passed through;
    x + attn(ln1(x)) + mlp(ln2(x)) when use_parallel_residual, else sequential pre-LN; GELU;
    final_layer_norm; logits = x @ embed_out^T;
  - BLOOM: word embeddings, then word_embeddings_layernorm; ALiBi (Press et al.): scores
    - m_h (i - j), slopes 2^(-8k/n) (n not a power of two: those of the largest power of two p
    below n, then every other one of 2p); sequential pre-LN layers; tanh GELU; ln_f; logits
    through the tied word embeddings (or lm_head when untied);
  - scores / sqrt(d), causal softmax; LayerNorm with weight and bias.
Checks braid's `generate --logits` output (logits and the mean next-token loss) within 1e-5.

usage: neox_bloom_reference.py HF_DIR LOGITS.json [LOGITS.json ...]
"""
import json
import math
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from alibi import alibi_slopes  # noqa: E402
from gpt2_reference import check_logits, layer_norm, read_safetensors, rope  # noqa: E402


class Model:
    def __init__(self, hf_dir):
        self.c = json.load(open(f"{hf_dir}/config.json"))
        self.kind = self.c["model_type"]
        assert self.kind in ("gpt_neox", "bloom", "gpt_bigcode"), self.kind
        self.w = read_safetensors(f"{hf_dir}/model.safetensors")
        self.h = self.c.get("hidden_size")
        if self.kind == "gpt_bigcode":
            self.h = self.c["n_embd"]
        self.heads = self.c["num_attention_heads"] if self.kind == "gpt_neox" else self.c["n_head"]
        self.d = self.h // self.heads
        self.eps = self.c["layer_norm_eps"] if self.kind == "gpt_neox" else self.c["layer_norm_epsilon"]

    def ln(self, x, name):
        return layer_norm(x, self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def linear(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def rope(self, x):  # x [b, heads, s, d]: the first rotary_pct x d dimensions turned
        r = int(self.d * self.c.get("rotary_pct", 1.0))
        return rope(x, self.c.get("rotary_emb_base", 10000), r)

    def attention(self, x, p):
        b, s, _ = x.shape
        qkv = self.linear(x, p + "query_key_value").view(b, s, self.heads, 3, self.d)
        q, k, v = (qkv[:, :, :, n].transpose(1, 2) for n in range(3))  # [b, heads, s, d]
        if self.kind == "gpt_neox":
            q, k = self.rope(q), self.rope(k)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d)
        i = torch.arange(s)[:, None]
        j = torch.arange(s)[None, :]
        if self.kind == "bloom":
            m = torch.tensor(alibi_slopes(self.heads), dtype=torch.float64)[None, :, None, None]
            scores = scores - m * (i - j).double()
        scores = scores.masked_fill(j > i, float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, self.h)
        return self.linear(y, p + "dense")

    def mqa(self, x, p):  # multi-query attention: one key/value head for every query head
        b, s, _ = x.shape
        y = self.linear(x, p + "c_attn")
        q = y[..., : self.h].view(b, s, self.heads, self.d).transpose(1, 2)
        k = y[..., self.h: self.h + self.d][:, None]  # [b, 1, s, d]
        v = y[..., self.h + self.d:][:, None]
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d)
        i = torch.arange(s)[:, None]
        j = torch.arange(s)[None, :]
        scores = scores.masked_fill(j > i, float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, self.h)
        return self.linear(out, p + "c_proj")

    def mlp(self, x, p):
        if self.kind == "gpt_bigcode":
            act = {"gelu_pytorch_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
                   "gelu": torch.nn.functional.gelu, "relu": torch.relu}[self.c["activation_function"]]
            return self.linear(act(self.linear(x, p + "c_fc")), p + "c_proj")
        if self.kind == "bloom":
            act = lambda t: torch.nn.functional.gelu(t, approximate="tanh")  # noqa: E731
        else:
            act = {"gelu": torch.nn.functional.gelu,
                   "gelu_new": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
                   "relu": torch.relu}[self.c["hidden_act"]]
        return self.linear(act(self.linear(x, p + "dense_h_to_4h")), p + "dense_4h_to_h")

    def forward(self, ids):
        if self.kind == "gpt_bigcode":
            s = ids.shape[1]
            x = self.w["transformer.wte.weight"][ids] + self.w["transformer.wpe.weight"][:s]
            for i in range(self.c["n_layer"]):
                p = f"transformer.h.{i}."
                x = x + self.mqa(self.ln(x, p + "ln_1"), p + "attn.")
                x = x + self.mlp(self.ln(x, p + "ln_2"), p + "mlp.")
            x = self.ln(x, "transformer.ln_f")
            out = (self.w["transformer.wte.weight"] if self.c.get("tie_word_embeddings", True)
                   else self.w["lm_head.weight"])
            return x @ out.T
        if self.kind == "gpt_neox":
            x = self.w["gpt_neox.embed_in.weight"][ids]
            for i in range(self.c["num_hidden_layers"]):
                p = f"gpt_neox.layers.{i}."
                a = self.attention(self.ln(x, p + "input_layernorm"), p + "attention.")
                if self.c.get("use_parallel_residual", True):
                    x = x + a + self.mlp(self.ln(x, p + "post_attention_layernorm"), p + "mlp.")
                else:
                    x = x + a
                    x = x + self.mlp(self.ln(x, p + "post_attention_layernorm"), p + "mlp.")
            x = self.ln(x, "gpt_neox.final_layer_norm")
            out = (self.w["gpt_neox.embed_in.weight"] if self.c.get("tie_word_embeddings")
                   else self.w["embed_out.weight"])
            return x @ out.T
        x = self.w["transformer.word_embeddings.weight"][ids]
        x = self.ln(x, "transformer.word_embeddings_layernorm")
        for i in range(self.c["n_layer"]):
            p = f"transformer.h.{i}."
            x = x + self.attention(self.ln(x, p + "input_layernorm"), p + "self_attention.")
            x = x + self.mlp(self.ln(x, p + "post_attention_layernorm"), p + "mlp.")
        x = self.ln(x, "transformer.ln_f")
        out = (self.w["transformer.word_embeddings.weight"] if self.c.get("tie_word_embeddings", True)
               else self.w["lm_head.weight"])
        return x @ out.T


def main():
    model = Model(sys.argv[1])
    check_logits(model.forward, sys.argv[2:])
    print(f"ok   braid's {model.c['architectures'][0]} ({model.heads} heads) matches the PyTorch "
          "reference")


main()
