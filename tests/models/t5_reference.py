#!/usr/bin/env python3
"""A T5 written here from the paper and the Hugging Face layout (docs/formats.md, "Hugging Face
name maps"), in plain PyTorch (float64), loading braid's Hugging Face export
(T5ForConditionalGeneration: config.json + model.safetensors):
  - shared embedding for encoder and decoder inputs; no biases anywhere;
  - pre-norm RMSNorm (weight only, no mean subtraction), eps from config.json;
  - attention without 1/sqrt(d) scaling, d_kv per head; relative position buckets (32, max
    distance 128): bidirectional in the encoder, causal in the decoder, the bias table in block 0
    of each stack and added in every self-attention of that stack; none in cross-attention;
  - FFN: gated-gelu (gelu_new(wi_0 x) * wi_1 x) or relu (wi); wo;
  - a final RMSNorm per stack; lm_head, or with tie_word_embeddings the shared embedding after
    scaling the decoder output by d_model^-0.5.
Checks braid's decoder logits and loss (tests/models/t5_logits.cc) within 1e-5 (relative).

usage: t5_reference.py HF_DIR LOGITS.json [LOGITS.json ...]
"""
import json
import math
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gpt2_reference import read_safetensors  # noqa: E402


def buckets(q_len, k_len, bidirectional, num_buckets, max_distance):
    """T5's relative position bucket of (key - query)."""
    rel = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None]
    out = torch.zeros_like(rel)
    n = num_buckets
    if bidirectional:
        n //= 2
        out += (rel > 0).long() * n
        rel = rel.abs()
    else:
        rel = -torch.clamp(rel, max=0)
    exact = n // 2
    large = exact + (torch.log(rel.float() / exact) / math.log(max_distance / exact)
                     * (n - exact)).long()
    large = torch.clamp(large, max=n - 1)
    return out + torch.where(rel < exact, rel, large)


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x.pow(3))))


class T5:
    def __init__(self, hf_dir):
        self.c = json.load(open(f"{hf_dir}/config.json"))
        assert self.c["model_type"] == "t5"
        assert self.c["architectures"] == ["T5ForConditionalGeneration"]
        self.w = read_safetensors(f"{hf_dir}/model.safetensors")
        self.heads, self.d_kv = self.c["num_heads"], self.c["d_kv"]
        self.eps = self.c["layer_norm_epsilon"]

    def norm(self, x, name):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w[name]

    def attention(self, x, kv, p, bias, mask):
        b, sq, _ = x.shape
        sk = kv.shape[1]
        h, d = self.heads, self.d_kv
        q = (x @ self.w[p + "q.weight"].T).view(b, sq, h, d).transpose(1, 2)
        k = (kv @ self.w[p + "k.weight"].T).view(b, sk, h, d).transpose(1, 2)
        v = (kv @ self.w[p + "v.weight"].T).view(b, sk, h, d).transpose(1, 2)
        scores = q @ k.transpose(-1, -2)  # no 1/sqrt(d)
        if bias is not None:
            scores = scores + bias
        scores = scores.masked_fill(mask, float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, sq, h * d)
        return y @ self.w[p + "o.weight"].T

    def ffn(self, x, p):
        w = self.w
        if self.c["feed_forward_proj"] == "gated-gelu":
            h = gelu_new(x @ w[p + "wi_0.weight"].T) * (x @ w[p + "wi_1.weight"].T)
        else:
            assert self.c["feed_forward_proj"] == "relu"
            h = torch.relu(x @ w[p + "wi.weight"].T)
        return h @ w[p + "wo.weight"].T

    def position_bias(self, stack, q_len, k_len, bidirectional):
        table = self.w[f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
        bk = buckets(q_len, k_len, bidirectional, self.c["relative_attention_num_buckets"],
                     self.c["relative_attention_max_distance"])
        return table[bk].permute(2, 0, 1)[None]  # [1, heads, q, k]

    def forward(self, inputs, padding, decoder_inputs):
        w, c = self.w, self.c
        emb = w["shared.weight"]
        b, se = inputs.shape
        sd = decoder_inputs.shape[1]
        pad_mask = padding[:, None, None, :]
        x = emb[inputs]
        bias = self.position_bias("encoder", se, se, True)
        for i in range(c["num_layers"]):
            p = f"encoder.block.{i}.layer."
            x = x + self.attention(self.norm(x, p + "0.layer_norm.weight"),
                                   self.norm(x, p + "0.layer_norm.weight"),
                                   p + "0.SelfAttention.", bias, pad_mask)
            x = x + self.ffn(self.norm(x, p + "1.layer_norm.weight"), p + "1.DenseReluDense.")
        memory = self.norm(x, "encoder.final_layer_norm.weight")
        y = emb[decoder_inputs]
        bias = self.position_bias("decoder", sd, sd, False)
        causal = torch.ones(sd, sd, dtype=torch.bool).triu(1)[None, None]
        for i in range(c.get("num_decoder_layers", c["num_layers"])):
            p = f"decoder.block.{i}.layer."
            n = self.norm(y, p + "0.layer_norm.weight")
            y = y + self.attention(n, n, p + "0.SelfAttention.", bias, causal)
            y = y + self.attention(self.norm(y, p + "1.layer_norm.weight"), memory,
                                   p + "1.EncDecAttention.", None, pad_mask)
            y = y + self.ffn(self.norm(y, p + "2.layer_norm.weight"), p + "2.DenseReluDense.")
        y = self.norm(y, "decoder.final_layer_norm.weight")
        if c["tie_word_embeddings"]:
            return (y * c["d_model"] ** -0.5) @ emb.T
        return y @ w["lm_head.weight"].T


def main():
    model = T5(sys.argv[1])
    vocab = model.c["vocab_size"]
    assert model.w["shared.weight"].shape[0] == vocab, "padding was not removed"
    for path in sys.argv[2:]:
        got = json.load(open(path))
        enc, dec = got["enc"], got["dec"]
        assert got["vocab"] == vocab
        inputs = torch.tensor(got["inputs"], dtype=torch.long).view(-1, enc)
        padding = torch.tensor(got["padding"]).view(-1, enc) > 0.5
        dec_in = torch.tensor(got["decoder_inputs"], dtype=torch.long).view(-1, dec)
        labels = torch.tensor(got["labels"], dtype=torch.long).view(-1, dec)
        theirs = torch.tensor(got["logits"], dtype=torch.float64).view(-1, dec, vocab)
        logits = model.forward(inputs, padding, dec_in)
        real = labels != -100
        rel = ((logits - theirs)[real].abs().max() / logits[real].abs().max()).item()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1),
                                                 ignore_index=-100).item()
        rel_loss = abs(loss - got["loss"]) / abs(loss)
        print(f"{path}: decoder logits of {int(real.sum())} target positions x {vocab}: max "
              f"relative difference {rel:.2e}; loss {got['loss']:.6f} vs {loss:.6f} "
              f"({rel_loss:.1e})")
        assert rel < 1e-5, f"logits differ from the reference T5: {rel}"
        assert rel_loss < 1e-5, f"loss differs from the reference T5: {rel_loss}"
    print(f"ok   braid's T5 ({model.c['feed_forward_proj']}, "
          f"{'tied' if model.c['tie_word_embeddings'] else 'untied'}) matches the PyTorch T5 "
          "reference")


main()
