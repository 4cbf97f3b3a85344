#!/usr/bin/env python3
"""A GPT-2 written here from the architecture (docs/formats.md, "Hugging Face name maps": pre-LN,
learned positions, causal attention with scores / sqrt(head_dim), GELU tanh, final LayerNorm,
output tied to the token embedding), in plain PyTorch (Debian's python3-torch), loaded with the
weights braid saved. It checks braid's logits and loss (from `generate --logits`) within 1e-5.
Options braid adds: the MLP activation (gelu, relu, and geglu: c_fc's output columns are
[gate | up], gelu(gate) * up) and an untied output layer (lm_head.weight).

usage: gpt2_reference.py RUN_DIR LOGITS.json [LOGITS.json ...]
       gpt2_reference.py --hf HF_DIR LOGITS.json [...]   (weights exported by convert_checkpoint
                                                          in the Hugging Face GPT-2 layout)
"""
import json
import math
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    """A small safetensors parser: u64 header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])  # the tests export fp32
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy()).double()
    return out


def layer_norm(x, weight, bias, eps):
    mu = x.mean(-1, keepdim=True)
    var = (x - mu).pow(2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * weight + bias


def rope(x, base, r):
    """RoPE (rotate-half) on the first r dimensions of x [b, heads, s, d], the rest as they are:
    cos/sin of p * base^(-2j/r) for j < r/2, each repeated over both halves."""
    s = x.shape[2]
    inv = 1.0 / (base ** (torch.arange(0, r, 2, dtype=torch.float64) / r))
    ang = torch.arange(s, dtype=torch.float64)[:, None] * inv[None, :]
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)
    rot, rest = x[..., :r], x[..., r:]
    x1, x2 = rot[..., : r // 2], rot[..., r // 2:]
    return torch.cat([rot * cos + torch.cat([-x2, x1], -1) * sin, rest], -1)


def check_logits(forward, paths):
    """braid's `generate --logits` files (ids, full-vocabulary logits, mean next-token loss)
    against forward(ids [1, n]) -> logits [1, n, vocab]: both within 1e-5 relative."""
    for path in paths:
        got = json.load(open(path))
        ids = torch.tensor(got["ids"], dtype=torch.long)[None]
        theirs = torch.tensor(got["logits"], dtype=torch.float64)
        logits = forward(ids)[0]
        rel = ((logits - theirs).abs().max() / logits.abs().max()).item()
        loss = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:]).item()
        rel_loss = abs(loss - got["loss"]) / abs(loss)
        print(f"{path}: logits {tuple(logits.shape)}: max relative difference {rel:.2e}; "
              f"loss {got['loss']:.6f} vs {loss:.6f} ({rel_loss:.1e})")
        assert rel < 1e-5, f"logits differ from the reference: {rel}"
        assert rel_loss < 1e-5, f"loss differs from the reference: {rel_loss}"


def read_config(path):
    """The few keys needed, from braid's printed config (YAML, one key per line)."""
    cfg, section = {}, None
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        key, _, rest = line.partition(":")
        value = rest.split(" #")[0].strip()
        if not line.startswith(" "):
            section = key.strip()
            continue
        cfg[f"{section}.{key.strip()}"] = value
    return cfg


def gpt2_logits(w, cfg, ids, vocab):
    e = int(cfg["model.hidden_size"])
    heads = int(cfg["model.num_attention_heads"])
    layers = int(cfg["model.num_layers"])
    eps = float(cfg["model.layernorm_epsilon"])
    act = cfg.get("model.activation", "gelu_tanh")
    d = e // heads
    s = len(ids)
    wte = w["wte.weight"][:vocab]
    x = wte[ids] + w["wpe"][:s]
    ln = lambda t, p: torch.nn.functional.layer_norm(t, (e,), w[p + ".weight"], w[p + ".bias"], eps)
    causal = torch.triu(torch.ones(s, s, dtype=torch.bool), 1)
    for i in range(layers):
        p = f"h.{i}."
        a = ln(x, p + "ln_self")
        qkv = a @ w[p + "self_attention.qkv.weight"].T + w[p + "self_attention.qkv.bias"]
        q, k, v = qkv.split(e, dim=-1)
        q, k, v = (t.reshape(s, heads, d).transpose(0, 1) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        att = att.masked_fill(causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(0, 1).reshape(s, e)
        x = x + y @ w[p + "self_attention.out.weight"].T + w[p + "self_attention.out.bias"]
        m = ln(x, p + "ln_mlp")
        h = m @ w[p + "mlp.fc1.weight"].T + w[p + "mlp.fc1.bias"]
        if act == "gelu_tanh":
            h = torch.nn.functional.gelu(h, approximate="tanh")
        elif act == "gelu":
            h = torch.nn.functional.gelu(h)
        elif act == "relu":
            h = torch.relu(h)
        elif act == "geglu":
            gate, up = h.chunk(2, dim=-1)
            h = torch.nn.functional.gelu(gate) * up
        else:
            raise SystemExit(f"unknown activation {act}")
        x = x + h @ w[p + "mlp.fc2.weight"].T + w[p + "mlp.fc2.bias"]
    x = ln(x, "ln_f")
    out = w["lm_head.weight"][:vocab] if "lm_head.weight" in w else wte  # untied / tied
    return x @ out.T


def from_hf(hf_dir):
    """Hugging Face GPT2LMHeadModel names and Conv1D layout -> the names used above."""
    hf = read_safetensors(f"{hf_dir}/model.safetensors")
    c = json.load(open(f"{hf_dir}/config.json"))
    assert c["model_type"] == "gpt2" and c["architectures"] == ["GPT2LMHeadModel"]
    acts = {"gelu_new": "gelu_tanh", "gelu": "gelu", "relu": "relu", "geglu": "geglu"}
    w = {"wte.weight": hf["transformer.wte.weight"], "wpe": hf["transformer.wpe.weight"],
         "ln_f.weight": hf["transformer.ln_f.weight"], "ln_f.bias": hf["transformer.ln_f.bias"]}
    if not c.get("tie_word_embeddings", True):
        w["lm_head.weight"] = hf["lm_head.weight"]
    else:
        assert "lm_head.weight" not in hf, "a tied model exported an lm_head"
    for i in range(c["n_layer"]):
        h, o = f"transformer.h.{i}.", f"h.{i}."
        for ours, theirs, conv in [("ln_self", "ln_1", False), ("self_attention.qkv", "attn.c_attn", True),
                                   ("self_attention.out", "attn.c_proj", True), ("ln_mlp", "ln_2", False),
                                   ("mlp.fc1", "mlp.c_fc", True), ("mlp.fc2", "mlp.c_proj", True)]:
            wt = hf[h + theirs + ".weight"]
            w[o + ours + ".weight"] = wt.T if conv else wt   # Conv1D stores [in, out]
            w[o + ours + ".bias"] = hf[h + theirs + ".bias"]
    cfg = {"model.hidden_size": c["n_embd"], "model.num_attention_heads": c["n_head"],
           "model.num_layers": c["n_layer"], "model.layernorm_epsilon": c["layer_norm_epsilon"],
           "model.activation": acts[c["activation_function"]]}
    assert w["wte.weight"].shape[0] == c["vocab_size"], "vocabulary padding was not removed"
    return w, cfg


def main():
    if sys.argv[1] == "--hf":  # noqa
        w, cfg = from_hf(sys.argv[2])
        sys.argv = sys.argv[1:]
    else:
        run_dir = sys.argv[1]
        w = read_safetensors(f"{run_dir}/final/model.safetensors")
        cfg = read_config(f"{run_dir}/final/config.yaml")
    worst = 0.0
    for path in sys.argv[2:]:
        got = json.load(open(path))
        ids = torch.tensor(got["ids"])
        theirs = torch.tensor(got["logits"], dtype=torch.float64)
        vocab = theirs.shape[1]
        ours = gpt2_logits(w, cfg, ids, vocab)
        rel = ((ours - theirs).abs().max() / ours.abs().max()).item()
        loss = torch.nn.functional.cross_entropy(ours[:-1], ids[1:]).item()
        rel_loss = abs(loss - got["loss"]) / abs(loss)
        print(f"{path}: {len(ids)} positions x {vocab} logits, max relative difference "
              f"{rel:.2e}; loss {got['loss']:.6f} vs reference {loss:.6f} (rel {rel_loss:.1e})")
        assert rel < 1e-5, f"logits differ from the reference GPT-2: {rel}"
        assert rel_loss < 1e-5, f"loss differs from the reference GPT-2: {rel_loss}"
        worst = max(worst, rel)
    print(f"ok   braid's GPT matches the PyTorch GPT-2 reference (worst {worst:.1e})")


if __name__ == "__main__":
    main()
