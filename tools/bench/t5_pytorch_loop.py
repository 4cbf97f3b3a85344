#!/usr/bin/env python3
"""The plain PyTorch T5 training loop braid's T5 benchmark is compared with: the same
architecture (T5 v1.1: shared embedding, pre-norm RMSNorm, no biases, unscaled attention with
relative position buckets per stack, gated-GELU FFN, untied output), the same sizes, AdamW,
eager mode, F.cross_entropy over the targets, the same thread count. Prints tokens/s (encoder +
decoder positions; median step after two warm-up steps).

usage: t5_pytorch_loop.py [--layers 4 --hidden 256 --heads 4 --kv 64 --ffn 1024 --enc 256
                           --dec 58 --vocab 8192 --micro 8 --steps 12 --threads 2]
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def buckets(q, k, bidirectional, n=32, max_distance=128):
    rel = torch.arange(k)[None, :] - torch.arange(q)[:, None]
    out = torch.zeros_like(rel)
    if bidirectional:
        n //= 2
        out += (rel > 0).long() * n
        rel = rel.abs()
    else:
        rel = -torch.clamp(rel, max=0)
    exact = n // 2
    large = exact + (torch.log(rel.float() / exact) / math.log(max_distance / exact) * (n - exact)).long()
    return out + torch.where(rel < exact, rel, torch.clamp(large, max=n - 1))


class RMSNorm(nn.Module):
    def __init__(self, e):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(e))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Attention(nn.Module):
    def __init__(self, e, h, d):
        super().__init__()
        self.h, self.d = h, d
        self.q, self.k, self.v = (nn.Linear(e, h * d, bias=False) for _ in range(3))
        self.o = nn.Linear(h * d, e, bias=False)

    def forward(self, x, kv, bias=None, causal=False):
        b, s, _ = x.shape
        t = kv.shape[1]
        q = self.q(x).view(b, s, self.h, self.d).transpose(1, 2)
        k = self.k(kv).view(b, t, self.h, self.d).transpose(1, 2)
        v = self.v(kv).view(b, t, self.h, self.d).transpose(1, 2)
        scores = q @ k.transpose(-2, -1)
        if bias is not None:
            scores = scores + bias
        if causal:
            scores = scores.masked_fill(torch.ones(s, t, dtype=torch.bool).triu(1), float("-inf"))
        return self.o((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, self.h * self.d))


class Ffn(nn.Module):
    def __init__(self, e, f):
        super().__init__()
        self.wi_0, self.wi_1 = nn.Linear(e, f, bias=False), nn.Linear(e, f, bias=False)
        self.wo = nn.Linear(f, e, bias=False)

    def forward(self, x):
        return self.wo(F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x))


class Block(nn.Module):
    def __init__(self, e, h, d, f, cross):
        super().__init__()
        self.ln1, self.att = RMSNorm(e), Attention(e, h, d)
        self.cross = cross
        if cross:
            self.ln2, self.xatt = RMSNorm(e), Attention(e, h, d)
        self.ln3, self.ffn = RMSNorm(e), Ffn(e, f)

    def forward(self, x, bias, memory=None):
        n = self.ln1(x)
        x = x + self.att(n, n, bias, causal=self.cross)
        if self.cross:
            x = x + self.xatt(self.ln2(x), memory)
        return x + self.ffn(self.ln3(x))


class T5(nn.Module):
    def __init__(self, vocab, e, h, d, f, layers):
        super().__init__()
        self.h = h
        self.shared = nn.Embedding(vocab, e)
        self.enc = nn.ModuleList(Block(e, h, d, f, False) for _ in range(layers))
        self.dec = nn.ModuleList(Block(e, h, d, f, True) for _ in range(layers))
        self.enc_bias, self.dec_bias = nn.Embedding(32, h), nn.Embedding(32, h)
        self.enc_ln, self.dec_ln = RMSNorm(e), RMSNorm(e)
        self.lm_head = nn.Linear(e, vocab, bias=False)

    def forward(self, inputs, decoder_inputs):
        s, t = inputs.shape[1], decoder_inputs.shape[1]
        x = self.shared(inputs)
        bias = self.enc_bias(buckets(s, s, True)).permute(2, 0, 1)[None]
        for block in self.enc:
            x = block(x, bias)
        memory = self.enc_ln(x)
        y = self.shared(decoder_inputs)
        bias = self.dec_bias(buckets(t, t, False)).permute(2, 0, 1)[None]
        for block in self.dec:
            y = block(y, bias, memory)
        return self.lm_head(self.dec_ln(y))


def main():
    p = argparse.ArgumentParser()
    for k, v in dict(layers=4, hidden=256, heads=4, kv=64, ffn=1024, enc=256, dec=58, vocab=8192,
                     micro=8, steps=12, threads=2).items():
        p.add_argument(f"--{k}", type=int, default=v)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = T5(a.vocab, a.hidden, a.heads, a.kv, a.ffn, a.layers)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(a.steps):
        inputs = torch.randint(0, a.vocab, (a.micro, a.enc))
        labels = torch.randint(0, a.vocab, (a.micro, a.dec))
        dec_in = torch.cat([torch.zeros(a.micro, 1, dtype=torch.long), labels[:, :-1]], 1)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(inputs, dec_in)
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times[2:])
    print(f"torch  T5 step {med:.3f} s (median of {len(times) - 2}) | "
          f"{a.micro * (a.enc + a.dec) / med:.0f} tokens/s | torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")


main()
