#!/usr/bin/env python3
"""Asserts that two safetensors files hold byte-identical tensors (optionally only the names
starting with a prefix in the first file), independent of their order in the file.

usage: same_tensors.py A.safetensors B.safetensors [PREFIX] [LABEL]
"""
import json
import struct
import sys


def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


a = tensors(sys.argv[1])
b = tensors(sys.argv[2])
prefix = sys.argv[3] if len(sys.argv) > 3 else ""
label = sys.argv[4] if len(sys.argv) > 4 else "tensors"
a = {k: v for k, v in a.items() if k.startswith(prefix)}
assert set(a) == set(b), f"different names: {sorted(set(a) ^ set(b))[:5]}"
diff = [k for k in a if a[k] != b[k]]
assert not diff, f"not bit-identical: {diff[:5]}"
print(f"ok   {label}: {len(a)} tensors bit-identical")
