#!/usr/bin/env python3
"""Writes the seeds of fuzz_tokenizer_json (called by make_seeds.sh): small tokenizer.json files of
each model kind with the normalizers, pre-tokenizers, post-processors and decoders published files
use, and a small tiktoken rank file. The first byte picks the kind (see fuzz_tokenizer_json.cc).

Usage: tokenizer_json_seeds.py OUT_DIR
"""
import base64
import json
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def byte_chars():
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, n = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + n))
            n += 1
    return chars


def added(i, c, **kw):
    a = {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
    a.update(kw)
    return a


bl = byte_chars()
vocab = {c: i for i, c in enumerate(bl)}
merges = []
for a, b in [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a")]:
    vocab.setdefault(a + b, len(vocab))
    merges.append(f"{a} {b}")
seeds = {
    "bpe_bytelevel": {
        "added_tokens": [added(len(vocab), "<|endoftext|>"),
                         added(len(vocab) + 1, "<mask>", lstrip=True, rstrip=True)],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"(?i:'s|'t)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|\s+(?!\S)|\s+"},
             "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [len(vocab)],
                                                                "tokens": ["<|endoftext|>"]}}},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": True},
    },
    "bpe_metaspace": {
        "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "BertProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1]},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": True, "byte_fallback": True,
                  "vocab": dict({"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "a": 4, "b": 5, "▁a": 6},
                                **{f"<0x{b:02X}>": 7 + b for b in range(256)}),
                  "merges": [["▁", "a"]]},
    },
    "wordpiece": {
        "added_tokens": [added(0, "[PAD]"), added(1, "[UNK]"), added(2, "[CLS]"), added(3, "[SEP]")],
        "normalizer": {"type": "BertNormalizer", "lowercase": True},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "BertPreTokenizer"}, {"type": "Digits", "individual_digits": True},
            {"type": "Punctuation", "behavior": "Contiguous"}, {"type": "Whitespace"}]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "max_input_chars_per_word": 20,
                  "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "##lo": 5,
                            "hel": 6, ",": 7, "world": 8, "!": 9, "1": 10}},
    },
    "unigram": {
        "added_tokens": [added(0, "<unk>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFKD"}, {"type": "StripAccents"}, {"type": "Lowercase"},
            {"type": "Strip", "strip_left": True, "strip_right": True}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": True},
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"},
        "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": True,
                  "vocab": [["<unk>", 0.0], ["▁", -2.0], ["▁hello", -3.5], ["l", -4.0], ["o", -4.1],
                            ["<0xFF>", -9.0], ["<0xC3>", -9.0]]},
    },
    "wordlevel": {
        "added_tokens": [],
        "normalizer": {"type": "NFKC"},
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "model": {"type": "WordLevel", "unk_token": "<unk>", "vocab": {"<unk>": 0, "hello,": 1}},
    },
}
for name, spec in seeds.items():
    spec = dict({"version": "1.0", "truncation": None, "padding": None}, **spec)
    with open(os.path.join(out, name + ".json"), "wb") as f:
        f.write(b"\x00" + json.dumps(spec, ensure_ascii=False).encode("utf-8"))
with open(os.path.join(out, "tiktoken.model"), "wb") as f:
    f.write(b"\x01")
    ranks = [bytes([b]) for b in range(256)] + [b" t", b"he", b" the", b"in"]
    for r, t in enumerate(ranks):
        f.write(base64.b64encode(t) + f" {r}\n".encode())
