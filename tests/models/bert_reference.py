#!/usr/bin/env python3
"""A BERT written here from the architecture (docs/formats.md, "Hugging Face name maps": word + position + token-type
embeddings with LayerNorm; post-LN layers of bidirectional attention with a padding mask and a
GELU (erf) MLP; MLM head dense -> GELU -> LayerNorm -> decoder tied to the word embeddings + bias;
pooler tanh(dense([CLS])) -> binary head), in plain PyTorch, loaded with the weights braid saved.
Checks braid's MLM and binary logits (tests/models/bert_logits.cc) within 1e-5 on the real tokens.

RoBERTa (RobertaForMaskedLM export, model_type roberta): the same encoder under "roberta.", the
MLM head as lm_head.{dense, layer_norm, bias}, no pooler or binary head, and position ids as
Hugging Face computes them from the input: padding_idx + cumsum(ids != padding_idx) for real
tokens (so token k reads row pad_token_id + 1 + k of the exported table).

usage: bert_reference.py RUN_DIR LOGITS.json [LOGITS.json ...]
       bert_reference.py --hf HF_DIR RUN_DIR LOGITS.json   (weights from the Hugging Face
                                                           BertForPreTraining or
                                                           RobertaForMaskedLM export)
"""
import json
import math
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gpt2_reference import read_config, read_safetensors  # noqa: E402


def bert(w, cfg, ids, types, padding, vocab, positions=None):
    e = int(cfg["model.hidden_size"])
    heads = int(cfg["model.num_attention_heads"])
    layers = int(cfg["model.num_layers"])
    eps = float(cfg["model.layernorm_epsilon"])
    d = e // heads
    b, s = ids.shape
    ln = lambda t, p: torch.nn.functional.layer_norm(t, (e,), w[p + ".weight"], w[p + ".bias"], eps)
    lin = lambda t, p: t @ w[p + ".weight"].T + w[p + ".bias"]
    word = w["word_embeddings.weight"][:vocab]
    pos = w["position_embeddings"][:s] if positions is None else w["position_embeddings"][positions]
    x = word[ids] + pos + w["token_type_embeddings"][types]
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
    if "pooler.weight" not in w:
        return mlm, None
    pooled = torch.tanh(lin(x[:, 0], "pooler"))
    return mlm, lin(pooled, "binary_head")


def from_hf(hf_dir):
    """BertForPreTraining / RobertaForMaskedLM names -> the names used above (query/key/value
    fused into qkv); and the config.json."""
    hf = read_safetensors(f"{hf_dir}/model.safetensors")
    c = json.load(open(f"{hf_dir}/config.json"))
    roberta = c["model_type"] == "roberta"
    assert c["architectures"] == (["RobertaForMaskedLM"] if roberta else ["BertForPreTraining"])
    top = "roberta." if roberta else "bert."
    e = top + "embeddings."
    w = {"word_embeddings.weight": hf[e + "word_embeddings.weight"],
         "position_embeddings": hf[e + "position_embeddings.weight"],
         "token_type_embeddings": hf[e + "token_type_embeddings.weight"],
         "lm_bias": hf["lm_head.bias" if roberta else "cls.predictions.bias"]}
    if roberta:
        assert w["position_embeddings"].shape[0] == c["max_position_embeddings"]
        pairs = {"embeddings_ln": e + "LayerNorm", "lm_dense": "lm_head.dense",
                 "lm_ln": "lm_head.layer_norm"}
    else:
        pairs = {"embeddings_ln": e + "LayerNorm", "lm_dense": "cls.predictions.transform.dense",
                 "lm_ln": "cls.predictions.transform.LayerNorm", "pooler": "bert.pooler.dense",
                 "binary_head": "cls.seq_relationship"}
    for i in range(c["num_hidden_layers"]):
        h = f"{top}encoder.layer.{i}."
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
    return w, c


def main():
    hf_config = None
    if sys.argv[1] == "--hf":
        w, hf_config = from_hf(sys.argv[2])
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
        positions = None
        if hf_config is not None and hf_config["model_type"] == "roberta":
            pad = hf_config["pad_token_id"]
            real_ids = (ids != pad) & ~padding
            positions = torch.cumsum(real_ids.long(), 1) * real_ids.long() + pad
        mlm, binary = bert(w, cfg, ids, types, padding, vocab, positions)
        real = ~padding
        rel = ((mlm - theirs)[real].abs().max() / mlm[real].abs().max()).item()
        if binary is None:
            assert got["binary_logits"] == [], "a binary head the reference does not have"
            rel_b = 0.0
        else:
            tb = torch.tensor(got["binary_logits"], dtype=torch.float64).view(-1, 2)
            rel_b = ((binary - tb).abs().max() / binary.abs().max()).item()
        print(f"{path}: MLM logits of {int(real.sum())} real positions x {vocab}: max relative "
              f"difference {rel:.2e}; binary head {rel_b:.2e}")
        assert rel < 1e-5, f"MLM logits differ from the reference BERT: {rel}"
        assert rel_b < 1e-5, f"binary logits differ from the reference BERT: {rel_b}"
    kind = hf_config["model_type"] if hf_config else "bert"
    print(f"ok   braid's {kind} matches the PyTorch {kind} reference")


main()
