"""Reads an fp32 safetensors file into torch tensors, from the format alone (an 8-byte
little-endian header length, a JSON header of name -> dtype, shape, data_offsets, then the data),
not with braid's reader: the script tests' independent check of what braid wrote."""
import json
import struct

import torch


def read(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", f"{path}: {k} is {v['dtype']}, not F32"
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]),
                                  dtype=torch.float32).reshape(v["shape"])
    return out
