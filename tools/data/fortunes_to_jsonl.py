#!/usr/bin/env python3
"""Debian's `fortunes` package -> JSON Lines, one fortune a document: the embedded default corpus.

Reads every fortune file in /usr/share/games/fortunes (skipping ascii-art: pictures, not prose),
splits on the '%' separator lines, drops overstriking backspaces, and writes {"text": ...} per
fortune in a fixed order (file name, then position), so the corpus is the same on every machine
with the same package version.

usage: fortunes_to_jsonl.py OUT.jsonl [FORTUNES_DIR]
"""
import json
import os
import re
import sys

SKIP = {"ascii-art"}


def main():
    out_path = sys.argv[1]
    root = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/games/fortunes"
    names = sorted(n for n in os.listdir(root)
                   if "." not in n and n not in SKIP and os.path.isfile(os.path.join(root, n)))
    if not names:
        sys.exit(f"no fortune files in {root}. HINT: apt-get install fortunes")
    count = 0
    with open(out_path, "w", encoding="utf-8") as out:
        for name in names:
            with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                text = f.read()
            for fortune in re.split(r"\n%\n", text):
                fortune = re.sub(r".\x08", "", fortune).strip("\n% ")
                if fortune.strip():
                    out.write(json.dumps({"text": fortune}, ensure_ascii=False) + "\n")
                    count += 1
    print(f"[corpus] {count} fortunes from {len(names)} files -> {out_path}", file=sys.stderr)


main()
