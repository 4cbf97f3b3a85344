#!/usr/bin/env python3
"""The plain PyTorch BERT training loop braid's BERT benchmark is compared with: the same
architecture (post-LN, GELU erf, MLM head tied to the word embeddings, pooler + binary head), the
same sizes, AdamW, eager mode, F.cross_entropy on 15% of positions plus the binary loss, the same
thread count. Prints tokens/s (median step after two warm-up steps).

usage: bert_pytorch_loop.py [--layers 4 --hidden 256 --heads 4 --seq 256 --vocab 8192 --micro 8
                             --steps 12 --threads 2]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    def __init__(self, e, h):
        super().__init__()
        self.h = h
        self.qkv, self.out = nn.Linear(e, 3 * e), nn.Linear(e, e)
        self.ln1, self.ln2 = nn.LayerNorm(e, eps=1e-12), nn.LayerNorm(e, eps=1e-12)
        self.fc1, self.fc2 = nn.Linear(e, 4 * e), nn.Linear(4 * e, e)

    def forward(self, x):
        b, s, e = x.shape
        q, k, v = (t.view(b, s, self.h, e // self.h).transpose(1, 2) for t in self.qkv(x).split(e, -1))
        att = ((q @ k.transpose(-2, -1)) / (e // self.h) ** 0.5).softmax(-1)
        x = self.ln1(x + self.out((att @ v).transpose(1, 2).reshape(b, s, e)))
        return self.ln2(x + self.fc2(F.gelu(self.fc1(x))))


class Bert(nn.Module):
    def __init__(self, vocab, seq, e, h, layers):
        super().__init__()
        self.word, self.pos, self.types = nn.Embedding(vocab, e), nn.Embedding(seq, e), nn.Embedding(2, e)
        self.ln = nn.LayerNorm(e, eps=1e-12)
        self.layers = nn.ModuleList(Layer(e, h) for _ in range(layers))
        self.lm_dense, self.lm_ln = nn.Linear(e, e), nn.LayerNorm(e, eps=1e-12)
        self.lm_bias = nn.Parameter(torch.zeros(vocab))
        self.pooler, self.binary = nn.Linear(e, e), nn.Linear(e, 2)

    def forward(self, ids, types):
        x = self.ln(self.word(ids) + self.pos.weight[: ids.shape[1]] + self.types(types))
        for layer in self.layers:
            x = layer(x)
        mlm = self.lm_ln(F.gelu(self.lm_dense(x))) @ self.word.weight.T + self.lm_bias
        return mlm, self.binary(torch.tanh(self.pooler(x[:, 0])))


def main():
    p = argparse.ArgumentParser()
    for k, v in dict(layers=4, hidden=256, heads=4, seq=256, vocab=8192, micro=8, steps=12,
                     threads=2).items():
        p.add_argument(f"--{k}", type=int, default=v)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Bert(a.vocab, a.seq, a.hidden, a.heads, a.layers)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(a.steps):
        ids = torch.randint(0, a.vocab, (a.micro, a.seq))
        types = (torch.arange(a.seq) >= a.seq // 2).long().expand(a.micro, -1)
        labels = torch.where(torch.rand(a.micro, a.seq) < 0.15, torch.randint(0, a.vocab, ids.shape), -100)
        sop = torch.randint(0, 2, (a.micro,))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        mlm, binary = model(ids, types)
        loss = F.cross_entropy(mlm.reshape(-1, a.vocab), labels.reshape(-1)) + F.cross_entropy(binary, sop)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times[2:])
    print(f"torch  BERT step {med:.3f} s (median of {len(times) - 2}) | {a.micro * a.seq / med:.0f} "
          f"tokens/s | torch {torch.__version__}, {torch.get_num_threads()} threads")


main()
