#!/usr/bin/env python3
"""Writes a tiktoken rank file (`<base64 bytes> <rank>` per line, as LLaMA 3's original
tokenizer.model) from a byte-level BPE tokenizer.json: each vocabulary entry's characters mapped
back to bytes through GPT-2's byte alphabet, its id the rank. Added tokens are left out (tiktoken
keeps its special tokens outside the file).

Usage: tiktoken_from_json.py TOKENIZER_JSON OUT
"""
import base64
import json
import sys


def byte_alphabet():
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, n = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + n)] = b
            n += 1
    return chars


tok = json.load(open(sys.argv[1], encoding="utf-8"))
to_byte = byte_alphabet()
added = {t["id"] for t in tok.get("added_tokens", [])}
with open(sys.argv[2], "w") as out:
    for token, rank in sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1]):
        if rank in added:
            continue
        raw = bytes(to_byte[c] for c in token)
        out.write(f"{base64.b64encode(raw).decode()} {rank}\n")
