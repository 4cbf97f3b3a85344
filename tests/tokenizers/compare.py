#!/usr/bin/env python3
"""Compares braid's `tokenize --decode` output with the reference's, document by document.

Usage: compare.py CORPUS.jsonl REFERENCE.jsonl OURS.jsonl NAME [--no-decode]
Prints the number of documents whose ids differ (and whose decoded text differs), with the
first few differences; exits 1 on any mismatch or a line count that differs.
"""
import json
import sys

corpus_path, ref_path, ours_path, name = sys.argv[1:5]
check_text = "--no-decode" not in sys.argv
with open(corpus_path, "rb") as f:
    docs = [json.loads(l.decode("utf-8", "replace"))["text"] for l in f if l.strip()]
with open(ref_path, encoding="utf-8") as f:
    ref = [json.loads(l) for l in f if l.strip()]
with open(ours_path, encoding="utf-8") as f:
    ours = [json.loads(l) for l in f if l.strip()]
if not (len(docs) == len(ref) == len(ours)):
    sys.exit(f"{name}: {len(docs)} documents, {len(ref)} reference lines, {len(ours)} of ours")
bad_ids = bad_text = 0
shown = 0
tokens = 0
for k, (d, r, o) in enumerate(zip(docs, ref, ours)):
    tokens += len(r["ids"])
    if r["ids"] != o.get("ids"):
        bad_ids += 1
        if shown < 5:
            shown += 1
            i = next((i for i, (a, b) in enumerate(zip(r["ids"], o["ids"])) if a != b),
                     min(len(r["ids"]), len(o["ids"])))
            print(f"{name}: document {k + 1}: ids differ at {i}: reference {r['ids'][i:i + 8]}, "
                  f"ours {o['ids'][i:i + 8]} (tokens {o.get('tokens', [])[i:i + 8]})")
    elif check_text and r["text"] != o.get("text"):
        bad_text += 1
        if shown < 5:
            shown += 1
            t1, t2 = r["text"], o["text"]
            i = next((i for i, (a, b) in enumerate(zip(t1, t2)) if a != b), min(len(t1), len(t2)))
            print(f"{name}: document {k + 1}: decoded text differs at {i}: reference "
                  f"{t1[i:i + 20]!r}, ours {t2[i:i + 20]!r}")
print(f"{name}: {len(docs)} documents, {tokens} tokens: {bad_ids} with other ids, "
      f"{bad_text} with other decoded text")
sys.exit(1 if bad_ids or bad_text else 0)
