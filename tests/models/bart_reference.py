#!/usr/bin/env python3
"""A BART written here from the paper and the Hugging Face layout (docs/formats.md, "Hugging Face
name maps"), in plain PyTorch (float64), loading braid's Hugging Face export
(BartForConditionalGeneration or MBartForConditionalGeneration: config.json + model.safetensors):
  - one embedding (model.shared) for encoder and decoder inputs and the output layer, scaled by
    sqrt(d_model) when scale_embedding (mBART);
  - learned positions per stack, position p reading row p + 2 (BART's offset);
  - layernorm_embedding after the sum, in both stacks; LayerNorm eps 1e-5;
  - attention with biases, queries scaled by head_dim^-0.5; the encoder's padding masked in the
    encoder and in cross-attention; the decoder causal;
  - post-LN layers (BART): x = LN(x + f(x)); pre-LN (mBART): x = x + f(LN(x)), then a final
    layer_norm per stack;
  - FFN fc1, GELU (erf), fc2; logits = decoder output @ shared^T + final_logits_bias.
Checks braid's decoder logits and loss (tests/models/bart_logits.cc) within 1e-5 (relative).

usage: bart_reference.py HF_DIR LOGITS.json [LOGITS.json ...]
"""
import json
import math
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gpt2_reference import read_safetensors  # noqa: E402


class Bart:
    def __init__(self, hf_dir):
        self.c = json.load(open(f"{hf_dir}/config.json"))
        self.mbart = self.c["model_type"] == "mbart"
        assert self.c["architectures"] == [
            "MBartForConditionalGeneration" if self.mbart else "BartForConditionalGeneration"]
        self.w = read_safetensors(f"{hf_dir}/model.safetensors")
        self.d = self.c["d_model"]
        self.heads = self.c["encoder_attention_heads"]

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, (self.d,), self.w[name + ".weight"],
                                              self.w[name + ".bias"], 1e-5)

    def linear(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def attention(self, x, kv, p, mask):
        b, sq, _ = x.shape
        sk = kv.shape[1]
        h = self.heads
        hd = self.d // h
        q = (self.linear(x, p + "q_proj") * hd ** -0.5).view(b, sq, h, hd).transpose(1, 2)
        k = self.linear(kv, p + "k_proj").view(b, sk, h, hd).transpose(1, 2)
        v = self.linear(kv, p + "v_proj").view(b, sk, h, hd).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)).masked_fill(mask, float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, sq, self.d)
        return self.linear(y, p + "out_proj")

    def ffn(self, x, p):
        assert self.c["activation_function"] == "gelu"
        return self.linear(torch.nn.functional.gelu(self.linear(x, p + "fc1")), p + "fc2")

    def embed(self, ids, stack):
        scale = math.sqrt(self.d) if self.c["scale_embedding"] else 1.0
        pos = self.w[f"model.{stack}.embed_positions.weight"]
        assert pos.shape[0] == self.c["max_position_embeddings"] + 2
        x = self.w["model.shared.weight"][ids] * scale + pos[2:2 + ids.shape[1]]
        return self.ln(x, f"model.{stack}.layernorm_embedding")

    def sublayer(self, x, norm, f):
        if self.mbart:
            return x + f(self.ln(x, norm))
        return self.ln(x + f(x), norm)

    def forward(self, inputs, padding, decoder_inputs):
        pad_mask = padding[:, None, None, :]
        x = self.embed(inputs, "encoder")
        for i in range(self.c["encoder_layers"]):
            p = f"model.encoder.layers.{i}."
            x = self.sublayer(x, p + "self_attn_layer_norm",
                              lambda t: self.attention(t, t, p + "self_attn.", pad_mask))
            x = self.sublayer(x, p + "final_layer_norm", lambda t: self.ffn(t, p))
        if self.mbart:
            x = self.ln(x, "model.encoder.layer_norm")
        memory = x
        sd = decoder_inputs.shape[1]
        causal = torch.ones(sd, sd, dtype=torch.bool).triu(1)[None, None]
        y = self.embed(decoder_inputs, "decoder")
        for i in range(self.c["decoder_layers"]):
            p = f"model.decoder.layers.{i}."
            y = self.sublayer(y, p + "self_attn_layer_norm",
                              lambda t: self.attention(t, t, p + "self_attn.", causal))
            y = self.sublayer(y, p + "encoder_attn_layer_norm",
                              lambda t: self.attention(t, memory, p + "encoder_attn.", pad_mask))
            y = self.sublayer(y, p + "final_layer_norm", lambda t: self.ffn(t, p))
        if self.mbart:
            y = self.ln(y, "model.decoder.layer_norm")
        out = self.w["model.shared.weight"] if self.c["tie_word_embeddings"] else self.w["lm_head.weight"]
        return y @ out.T + self.w["final_logits_bias"]


def main():
    model = Bart(sys.argv[1])
    vocab = model.c["vocab_size"]
    assert model.w["model.shared.weight"].shape[0] == vocab, "padding was not removed"
    assert list(model.w["final_logits_bias"].shape) == [1, vocab]
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
        assert rel < 1e-5, f"logits differ from the reference BART: {rel}"
        assert rel_loss < 1e-5, f"loss differs from the reference BART: {rel_loss}"
    print(f"ok   braid's {'mBART' if model.mbart else 'BART'} matches the PyTorch reference")


main()
