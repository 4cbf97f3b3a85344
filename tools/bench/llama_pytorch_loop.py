#!/usr/bin/env python3
"""The plain PyTorch training loop braid's LLaMA-style benchmark is compared with: the same model
as recipes/gpt/llama-125m.yaml (RMSNorm, RoPE in the rotate-half convention applied to q and k,
causal attention, SwiGLU MLP, no biases, untied output; optionally grouped-query attention with
repeat_kv, as Hugging Face's eager Llama), the same sizes, AdamW, eager mode, F.cross_entropy, the
same thread count. Prints tokens/s (median step after two warm-up steps) and GFLOP/s with braid's
FLOPs count (every matmul: 2 per multiply-add, x3 for training; the attention's s^2 terms
unhalved).

usage: llama_pytorch_loop.py [--layers 12 --hidden 768 --heads 12 --groups 12 --ffn 2048
                              --seq 512 --vocab 32000 --micro 1 --steps 6 --threads 2]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, e, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(e))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Block(nn.Module):
    def __init__(self, e, h, g, f):
        super().__init__()
        self.h, self.g, self.d = h, g, e // h
        self.ln1 = RMSNorm(e)
        self.q = nn.Linear(e, h * self.d, bias=False)
        self.k = nn.Linear(e, g * self.d, bias=False)
        self.v = nn.Linear(e, g * self.d, bias=False)
        self.o = nn.Linear(h * self.d, e, bias=False)
        self.ln2 = RMSNorm(e)
        self.gate = nn.Linear(e, f, bias=False)
        self.up = nn.Linear(e, f, bias=False)
        self.down = nn.Linear(f, e, bias=False)

    def forward(self, x, cos, sin, mask):
        b, s, e = x.shape
        y = self.ln1(x)
        q = self.q(y).view(b, s, self.h, self.d).transpose(1, 2)
        k = self.k(y).view(b, s, self.g, self.d).transpose(1, 2)
        v = self.v(y).view(b, s, self.g, self.d).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.g != self.h:
            k = k.repeat_interleave(self.h // self.g, dim=1)
            v = v.repeat_interleave(self.h // self.g, dim=1)
        att = (q @ k.transpose(-2, -1)) / self.d ** 0.5
        ctx = att.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + self.o(ctx.transpose(1, 2).reshape(b, s, e))
        y = self.ln2(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


class Llama(nn.Module):
    def __init__(self, vocab, seq, e, h, g, f, layers, theta=10000.0):
        super().__init__()
        self.embed = nn.Embedding(vocab, e)
        self.blocks = nn.ModuleList(Block(e, h, g, f) for _ in range(layers))
        self.norm = RMSNorm(e)
        self.lm_head = nn.Linear(e, vocab, bias=False)
        d = e // h
        inv = 1.0 / theta ** (torch.arange(0, d, 2).float() / d)
        ang = torch.arange(seq).float()[:, None] * inv[None]
        emb = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", emb.cos())
        self.register_buffer("sin", emb.sin())
        self.register_buffer("mask", torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1))

    def forward(self, ids):
        s = ids.shape[1]
        x = self.embed(ids)
        for blk in self.blocks:
            x = blk(x, self.cos[:s], self.sin[:s], self.mask[:s, :s])
        return self.lm_head(self.norm(x))


def main():
    p = argparse.ArgumentParser()
    for k, v in dict(layers=12, hidden=768, heads=12, groups=0, ffn=2048, seq=512, vocab=32000,
                     micro=1, steps=6, threads=2).items():
        p.add_argument(f"--{k}", type=int, default=v)
    a = p.parse_args()
    g = a.groups or a.heads
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Llama(a.vocab, a.seq, a.hidden, a.heads, g, a.ffn, a.layers)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)
    times = []
    for _ in range(a.steps):
        ids = torch.randint(0, a.vocab, (a.micro, a.seq + 1))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times[2:])
    e, s, d = a.hidden, a.seq, a.hidden // a.heads
    q, kv = a.heads * d, g * d
    layer = 2 * s * e * (q + 2 * kv) + 2 * s * q * e + 4 * s * s * q + 2 * s * e * 2 * a.ffn + 2 * s * a.ffn * e
    flops = 3 * (a.layers * layer + 2 * s * e * a.vocab) * a.micro
    print(f"torch  step {med:.3f} s (median of {len(times) - 2}) | {a.micro * a.seq / med:.0f} "
          f"tokens/s | {flops / med / 1e9:.1f} GFLOP/s | torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")


main()
