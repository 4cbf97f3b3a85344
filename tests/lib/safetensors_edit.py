#!/usr/bin/env python3
"""Edits safetensors files for the refusal tests, written from the format (an 8-byte little-endian
header length, a JSON header of name -> dtype, shape, data_offsets, then the data), with nothing
but the standard library:

  safetensors_edit.py dtype FILE NAME I32|BOOL   NAME's values become zeros of that dtype
  safetensors_edit.py copy SRC DST NAME          DST also holds SRC's tensor NAME
"""
import json
import struct
import sys

SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
         "BOOL": 1}


def read(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__", None)
    data = raw[8 + n:]
    tensors = {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
               for k, v in head.items()}
    return tensors, meta


def write(path, tensors, meta):
    head, blobs, at = {}, [], 0
    if meta is not None:
        head["__metadata__"] = meta
    for k, (dtype, shape, blob) in tensors.items():
        head[k] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(blob)]}
        blobs.append(blob)
        at += len(blob)
    h = json.dumps(head).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    cmd = sys.argv[1]
    if cmd == "dtype":
        path, name, dtype = sys.argv[2:5]
        tensors, meta = read(path)
        _, shape, _ = tensors[name]
        count = 1
        for d in shape:
            count *= d
        tensors[name] = (dtype, shape, bytes(count * SIZES[dtype]))
        write(path, tensors, meta)
    elif cmd == "copy":
        src, dst, name = sys.argv[2:5]
        a, _ = read(src)
        b, meta = read(dst)
        b[name] = a[name]
        write(dst, b, meta)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
