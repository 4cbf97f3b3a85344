#!/usr/bin/env python3
"""A BERT written here from the architecture (docs/formats.md, "Hugging Face name maps": word + position + token-type
embeddings with LayerNorm; post-LN layers of bidirectional attention with a padding mask and a
GELU (erf) MLP; MLM head dense -> GELU -> LayerNorm -> decoder tied to the word embeddings + bias;
pooler tanh(dense([CLS])) -> binary head), in plain PyTorch, loaded with the weights braid saved.
Checks braid's MLM and binary logits (tests/models/bert_logits.cc) within 1e-5 on the real tokens.

usage: bert_reference.py RUN_DIR LOGITS.json [LOGITS.json ...]
       bert_reference.py --hf HF_DIR RUN_DIR LOGITS.json   (weights from the Hugging Face
                                                           BertForPreTraining export)
"""
import json
import math
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gpt2_reference import read_config, read_safetensors  # noqa: E402


def bert(w, cfg, ids, types, padding, vocab):
    e = int(cfg["model.hidden_size"])
    heads = int(cfg["model.num_attention_heads"])
    layers = int(cfg["model.num_layers"])
    eps = float(cfg["model.layernorm_epsilon"])
    d = e // heads
    b, s = ids.shape
    ln = lambda t, p: torch.nn.functional.layer_norm(t, (e,), w[p + ".weight"], w[p + ".bias"], eps)
    lin = lambda t, p: t @ w[p + ".weight"].T + w[p + ".bias"]
    word = w["word_embeddings.weight"][:vocab]
    x = word[ids] + w["position_embeddings"][:s] + w["token_type_embeddings"][types]
    x = ln(x, "embeddings_ln")
    mask = padding[:, None, None, :]
    for i in range(layers):
        p = f"layers.{i}."
        q, k, v = lin(x, p + "self_attention.qkv").split(e, dim=-1)
        q, k, v = (t.reshape(b, s, heads, d).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, s, e)
        x = ln(x + lin(y, p + "self_attention.out"), p + "ln_self")
        h = torch.nn.functional.gelu(lin(x, p + "mlp.fc1"))
        x = ln(x + lin(h, p + "mlp.fc2"), p + "ln_mlp")
    h = ln(torch.nn.functional.gelu(lin(x, "lm_dense")), "lm_ln")
    mlm = h @ word.T + w["lm_bias"][:vocab]
    pooled = torch.tanh(lin(x[:, 0], "pooler"))
    return mlm, lin(pooled, "binary_head")


def from_hf(hf_dir):
    """BertForPreTraining names -> the names used above (query/key/value fused into qkv)."""
    hf = read_safetensors(f"{hf_dir}/model.safetensors")
    c = json.load(open(f"{hf_dir}/config.json"))
    assert c["model_type"] == "bert" and c["architectures"] == ["BertForPreTraining"]
    e = "bert.embeddings."
    w = {"word_embeddings.weight": hf[e + "word_embeddings.weight"],
         "position_embeddings": hf[e + "position_embeddings.weight"],
         "token_type_embeddings": hf[e + "token_type_embeddings.weight"],
         "lm_bias": hf["cls.predictions.bias"]}
    pairs = {"embeddings_ln": e + "LayerNorm", "lm_dense": "cls.predictions.transform.dense",
             "lm_ln": "cls.predictions.transform.LayerNorm", "pooler": "bert.pooler.dense",
             "binary_head": "cls.seq_relationship"}
    for i in range(c["num_hidden_layers"]):
        h = f"bert.encoder.layer.{i}."
        pairs.update({f"layers.{i}.self_attention.out": h + "attention.output.dense",
                      f"layers.{i}.ln_self": h + "attention.output.LayerNorm",
                      f"layers.{i}.mlp.fc1": h + "intermediate.dense",
                      f"layers.{i}.mlp.fc2": h + "output.dense",
                      f"layers.{i}.ln_mlp": h + "output.LayerNorm"})
        for wb in ("weight", "bias"):
            w[f"layers.{i}.self_attention.qkv.{wb}"] = torch.cat(
                [hf[f"{h}attention.self.{n}.{wb}"] for n in ("query", "key", "value")])
    for ours, theirs in pairs.items():
        for wb in ("weight", "bias"):
            w[f"{ours}.{wb}"] = hf[f"{theirs}.{wb}"]
    assert w["word_embeddings.weight"].shape[0] == c["vocab_size"], "padding was not removed"
    return w


def main():
    if sys.argv[1] == "--hf":
        w = from_hf(sys.argv[2])
        sys.argv = sys.argv[2:]
        cfg = read_config(f"{sys.argv[1]}/final/config.yaml")
    else:
        run_dir = sys.argv[1]
        w = read_safetensors(f"{run_dir}/final/model.safetensors")
        cfg = read_config(f"{run_dir}/final/config.yaml")
    for path in sys.argv[2:]:
        got = json.load(open(path))
        s = got["seq"]
        ids = torch.tensor(got["ids"], dtype=torch.long).view(-1, s)
        types = torch.tensor(got["types"], dtype=torch.long).view(-1, s)
        padding = torch.tensor(got["padding"]).view(-1, s) > 0.5
        theirs = torch.tensor(got["mlm_logits"], dtype=torch.float64)
        vocab = theirs.numel() // ids.numel()
        theirs = theirs.view(-1, s, vocab)
        mlm, binary = bert(w, cfg, ids, types, padding, vocab)
        real = ~padding
        rel = ((mlm - theirs)[real].abs().max() / mlm[real].abs().max()).item()
        tb = torch.tensor(got["binary_logits"], dtype=torch.float64).view(-1, 2)
        rel_b = ((binary - tb).abs().max() / binary.abs().max()).item()
        print(f"{path}: MLM logits of {int(real.sum())} real positions x {vocab}: max relative "
              f"difference {rel:.2e}; binary head {rel_b:.2e}")
        assert rel < 1e-5, f"MLM logits differ from the reference BERT: {rel}"
        assert rel_b < 1e-5, f"binary logits differ from the reference BERT: {rel_b}"
    print("ok   braid's BERT matches the PyTorch BERT reference")


main()
