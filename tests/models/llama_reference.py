#!/usr/bin/env python3
"""A LLaMA written here from the papers and the Hugging Face layout (docs/formats.md, "Hugging Face
name maps"), in plain PyTorch (float64), loading braid's Hugging Face export (LlamaForCausalLM,
MistralForCausalLM, or braid's BraidLlamaForCausalLM for ALiBi / parallel residual):
  - RMSNorm (Zhang & Sennrich): x / sqrt(mean(x^2) + eps) * weight;
  - RoPE (Su et al.) in the rotate-half convention of Hugging Face's Llama: cos/sin of
    p * theta^(-2j/d) for j < d/2, each repeated for both halves; x*cos + rotate_half(x)*sin;
  - grouped-query attention (Ainslie et al.): num_key_value_heads key/value heads, head h of
    num_attention_heads reading key/value head h // (heads / kv_heads) (repeat_kv);
  - scores / sqrt(head_dim), causal; Mistral's sliding window: key j visible from query i when
    i - window < j <= i; ALiBi (Press et al.): scores - m_h (i - j), slopes 2^(-8k/n) (for n not a
    power of two: those of the largest power of two p below n, then every other one of 2p);
  - SwiGLU MLP (Shazeer): down(act(gate(x)) * up(x)), act from hidden_act;
  - pre-norm layers, x + attn(norm(x)) then + mlp(norm(.)); or parallel: x + attn(n1(x)) + mlp(n2(x));
  - final norm, logits = x @ lm_head^T (or the embedding when tied).
Checks braid's `generate --logits` output (logits and the mean next-token loss) within 1e-5.

usage: llama_reference.py HF_DIR LOGITS.json [LOGITS.json ...]
"""
import json
import math
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from alibi import alibi_slopes  # noqa: E402
from gpt2_reference import check_logits, read_safetensors  # noqa: E402


class Llama:
    model_types = ("llama", "mistral", "braid_llama")

    def __init__(self, hf_dir):
        self.c = json.load(open(f"{hf_dir}/config.json"))
        assert self.c["model_type"] in self.model_types, self.c["model_type"]
        self.w = read_safetensors(f"{hf_dir}/model.safetensors")
        self.h = self.c["hidden_size"]
        self.heads = self.c["num_attention_heads"]
        self.kv_heads = self.c.get("num_key_value_heads", self.heads)
        self.d = self.c.get("head_dim", self.h // self.heads)
        self.eps = self.c["rms_norm_eps"]
        self.alibi = self.c.get("position_embedding_type") == "alibi"
        self.window = self.c.get("sliding_window") or 0
        self.bias = self.c.get("attention_bias", False)

    def norm(self, x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w[name + ".weight"]

    def linear(self, x, name):
        y = x @ self.w[name + ".weight"].T
        if name + ".bias" in self.w:
            y = y + self.w[name + ".bias"]
        return y

    def rope(self, x):  # x [b, heads, s, d]
        s = x.shape[2]
        inv = 1.0 / (self.c["rope_theta"] ** (torch.arange(0, self.d, 2, dtype=torch.float64) / self.d))
        ang = torch.arange(s, dtype=torch.float64)[:, None] * inv[None, :]
        cos = torch.cat([ang.cos(), ang.cos()], -1)
        sin = torch.cat([ang.sin(), ang.sin()], -1)
        x1, x2 = x[..., : self.d // 2], x[..., self.d // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def attention(self, x, p):
        b, s, _ = x.shape
        q = self.linear(x, p + "q_proj").view(b, s, self.heads, self.d).transpose(1, 2)
        k = self.linear(x, p + "k_proj").view(b, s, self.kv_heads, self.d).transpose(1, 2)
        v = self.linear(x, p + "v_proj").view(b, s, self.kv_heads, self.d).transpose(1, 2)
        if not self.alibi:
            q, k = self.rope(q), self.rope(k)
        rep = self.heads // self.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d)
        i = torch.arange(s)[:, None]
        j = torch.arange(s)[None, :]
        if self.alibi:
            m = torch.tensor(alibi_slopes(self.heads), dtype=torch.float64)[None, :, None, None]
            scores = scores - m * (i - j).double()
        hidden = j > i
        if self.window:
            hidden = hidden | (j <= i - self.window)
        scores = scores.masked_fill(hidden, float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, self.heads * self.d)
        return self.linear(y, p + "o_proj")

    def mlp(self, x, p):
        act = {"silu": torch.nn.functional.silu,
               "gelu": torch.nn.functional.gelu,
               "gelu_pytorch_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh")}[
            self.c["hidden_act"]]
        return self.linear(act(self.linear(x, p + "gate_proj")) * self.linear(x, p + "up_proj"),
                           p + "down_proj")

    def forward(self, ids):
        x = self.w["model.embed_tokens.weight"][ids]
        for i in range(self.c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            if self.c.get("parallel_residual"):
                x = (x + self.attention(self.norm(x, p + "input_layernorm"), p + "self_attn.")
                     + self.mlp(self.norm(x, p + "post_attention_layernorm"), p + "mlp."))
            else:
                x = x + self.attention(self.norm(x, p + "input_layernorm"), p + "self_attn.")
                x = x + self.mlp(self.norm(x, p + "post_attention_layernorm"), p + "mlp.")
        x = self.norm(x, "model.norm")
        out = self.w["model.embed_tokens.weight"] if self.c["tie_word_embeddings"] else self.w["lm_head.weight"]
        return x @ out.T


def main():
    model = Llama(sys.argv[1])
    vocab = model.c["vocab_size"]
    assert model.w["model.embed_tokens.weight"].shape[0] == vocab, "padding was not removed"
    check_logits(model.forward, sys.argv[2:])
    print(f"ok   braid's {model.c['architectures'][0]} ({model.c['model_type']}; "
          f"{model.heads} heads, {model.kv_heads} key/value heads, "
          f"{'ALiBi' if model.alibi else 'RoPE'}, window {model.window}, "
          f"{'parallel' if model.c.get('parallel_residual') else 'sequential'} residual) "
          "matches the PyTorch reference")


if __name__ == "__main__":
    main()
