#!/usr/bin/env python3
"""The plain PyTorch training loop braid's GPT benchmark is compared with: the same GPT-2
architecture (pre-LN, fused QKV, GELU tanh, tied output), the same sizes, AdamW with the same
settings, eager mode, F.cross_entropy, the same thread count. Prints tokens/s (median step after
two warm-up steps) and MFU with the same FLOPs formula (PaLM: 6N + 12 L d T).

usage: gpt_pytorch_loop.py [--layers 4 --hidden 256 --heads 4 --seq 256 --vocab 8192 --micro 8
                            --steps 12 --threads 2 --device cpu --bf16 0 --sdpa 0]

On a GPU (--device cuda): --bf16 1 trains under torch.autocast(bfloat16) with fp32 weights (as
braid's train.precision: bf16), --sdpa 1 uses F.scaled_dot_product_attention (as braid does under
LibTorch 2.x); every step ends with torch.cuda.synchronize(), and MFU is printed against the bf16
(or fp32) matmul rate measured in the same process (8192^3 products).
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, e, h):
        super().__init__()
        self.h = h
        self.ln1 = nn.LayerNorm(e)
        self.qkv = nn.Linear(e, 3 * e)
        self.proj = nn.Linear(e, e)
        self.ln2 = nn.LayerNorm(e)
        self.fc1 = nn.Linear(e, 4 * e)
        self.fc2 = nn.Linear(4 * e, e)

    def forward(self, x, mask):
        b, s, e = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(e, dim=-1)
        q, k, v = (t.view(b, s, self.h, e // self.h).transpose(1, 2) for t in (q, k, v))
        if SDPA:
            ctx = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(e // self.h)
            ctx = att.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + self.proj(ctx.transpose(1, 2).reshape(b, s, e))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, vocab, seq, e, h, layers):
        super().__init__()
        self.wte = nn.Embedding(vocab, e)
        self.wpe = nn.Parameter(torch.randn(seq, e) * 0.01)
        self.blocks = nn.ModuleList(Block(e, h) for _ in range(layers))
        self.ln_f = nn.LayerNorm(e)
        self.register_buffer("mask", torch.triu(torch.ones(seq, seq, dtype=torch.bool), 1))

    def forward(self, ids):
        s = ids.shape[1]
        x = self.wte(ids) + self.wpe[:s]
        for blk in self.blocks:
            x = blk(x, self.mask[:s, :s])
        return self.ln_f(x) @ self.wte.weight.T


SDPA = False


def matmul_rate(device, dtype):
    """GFLOP/s of 8192^3 products on a GPU (the MFU ceiling), as braid measures it."""
    n = 8192
    x = torch.randn(n, n, device=device, dtype=dtype)
    y = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        x @ y
    torch.cuda.synchronize()
    t0, iters = time.perf_counter(), 0
    while time.perf_counter() - t0 < 1.0:
        for _ in range(10):
            x @ y
        torch.cuda.synchronize()
        iters += 10
    return 2 * n ** 3 * iters / (time.perf_counter() - t0) / 1e9


def main():
    global SDPA
    p = argparse.ArgumentParser()
    for k, v in dict(layers=4, hidden=256, heads=4, seq=256, vocab=8192, micro=8, steps=12,
                     threads=2, bf16=0, sdpa=0).items():
        p.add_argument(f"--{k}", type=int, default=v)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    SDPA = bool(a.sdpa)
    cuda = a.device.startswith("cuda")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Gpt(a.vocab, a.seq, a.hidden, a.heads, a.layers).to(a.device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)
    peak = matmul_rate(a.device, torch.bfloat16 if a.bf16 else torch.float32) if cuda else None
    times = []
    for step in range(a.steps):
        ids = torch.randint(0, a.vocab, (a.micro, a.seq + 1)).to(a.device)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=a.device.split(":")[0], dtype=torch.bfloat16,
                            enabled=bool(a.bf16)):
            logits = model(ids[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, a.vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times[2:])
    e, L = a.hidden, a.layers
    n = a.vocab * e + L * (12 * e * e + 13 * e) + 2 * e
    flops = (6 * n + 12 * L * e * a.seq) * a.micro * a.seq
    mfu = f" | MFU {100 * flops / med / 1e9 / peak:.1f}% of {peak:.0f} GFLOP/s" if peak else ""
    where = (f"{torch.cuda.get_device_name()}, {'bf16 autocast' if a.bf16 else 'fp32'}"
             f"{', sdpa' if SDPA else ''}" if cuda else f"{torch.get_num_threads()} threads")
    print(f"torch  step {med:.3f} s (median of {len(times) - 2}) | {a.micro * a.seq / med:.0f} "
          f"tokens/s | {flops / med / 1e9:.1f} GFLOP/s{mfu} | torch {torch.__version__}, {where}")


main()
