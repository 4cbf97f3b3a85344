#!/usr/bin/env python3
"""The plain PyTorch BART training loop braid's BART benchmark is compared with: the same
architecture (shared tied embedding, learned positions with BART's offset of 2,
layernorm_embedding, post-LN layers with biases, attention scaled by 1/sqrt(head_dim), GELU (erf),
final_logits_bias), the same sizes, the encoder's padding mask applied in the encoder and in
cross-attention as a real loop does, AdamW, eager mode, F.cross_entropy over the targets, the
same thread count. Prints tokens/s (encoder + decoder positions; median step after two warm-up
steps).

usage: bart_pytorch_loop.py [--layers 4 --hidden 256 --heads 4 --ffn 1024 --seq 256
                             --vocab 8192 --micro 8 --steps 12 --threads 2]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, e, h):
        super().__init__()
        self.h, self.d = h, e // h
        self.q, self.k, self.v, self.o = (nn.Linear(e, e) for _ in range(4))

    def forward(self, x, kv, mask):
        b, s, e = x.shape
        t = kv.shape[1]
        q = (self.q(x) * self.d ** -0.5).view(b, s, self.h, self.d).transpose(1, 2)
        k = self.k(kv).view(b, t, self.h, self.d).transpose(1, 2)
        v = self.v(kv).view(b, t, self.h, self.d).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)).masked_fill(mask, float("-inf"))
        return self.o((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, s, e))


class Layer(nn.Module):
    def __init__(self, e, h, f, cross):
        super().__init__()
        self.att, self.ln1 = Attention(e, h), nn.LayerNorm(e)
        self.cross = cross
        if cross:
            self.xatt, self.ln2 = Attention(e, h), nn.LayerNorm(e)
        self.fc1, self.fc2, self.ln3 = nn.Linear(e, f), nn.Linear(f, e), nn.LayerNorm(e)

    def forward(self, x, mask, memory=None, memory_mask=None):
        x = self.ln1(x + self.att(x, x, mask))
        if self.cross:
            x = self.ln2(x + self.xatt(x, memory, memory_mask))
        return self.ln3(x + self.fc2(F.gelu(self.fc1(x))))


class Bart(nn.Module):
    def __init__(self, vocab, e, h, f, layers, positions):
        super().__init__()
        self.shared = nn.Embedding(vocab, e)
        self.enc_pos, self.dec_pos = nn.Embedding(positions + 2, e), nn.Embedding(positions + 2, e)
        self.enc_ln, self.dec_ln = nn.LayerNorm(e), nn.LayerNorm(e)
        self.enc = nn.ModuleList(Layer(e, h, f, False) for _ in range(layers))
        self.dec = nn.ModuleList(Layer(e, h, f, True) for _ in range(layers))
        self.register_buffer("final_logits_bias", torch.zeros(1, vocab))

    def forward(self, inputs, padding, decoder_inputs):
        s, t = inputs.shape[1], decoder_inputs.shape[1]
        pad = padding[:, None, None, :]
        x = self.enc_ln(self.shared(inputs) + self.enc_pos(torch.arange(2, s + 2)))
        for layer in self.enc:
            x = layer(x, pad)
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)
        y = self.dec_ln(self.shared(decoder_inputs) + self.dec_pos(torch.arange(2, t + 2)))
        for layer in self.dec:
            y = layer(y, causal, x, pad)
        return y @ self.shared.weight.T + self.final_logits_bias


def main():
    p = argparse.ArgumentParser()
    for k, v in dict(layers=4, hidden=256, heads=4, ffn=1024, seq=256, vocab=8192, micro=8,
                     steps=12, threads=2).items():
        p.add_argument(f"--{k}", type=int, default=v)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Bart(a.vocab, a.hidden, a.heads, a.ffn, a.layers, a.seq)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(a.steps):
        inputs = torch.randint(0, a.vocab, (a.micro, a.seq))
        padding = torch.zeros(a.micro, a.seq, dtype=torch.bool)
        labels = torch.randint(0, a.vocab, (a.micro, a.seq))
        dec_in = torch.cat([torch.zeros(a.micro, 1, dtype=torch.long), labels[:, :-1]], 1)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(inputs, padding, dec_in)
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times[2:])
    print(f"torch  BART step {med:.3f} s (median of {len(times) - 2}) | "
          f"{a.micro * 2 * a.seq / med:.0f} tokens/s | torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")


main()
