#!/usr/bin/env python3
"""An independent reader and writer of Megatron's indexed dataset, written from docs/formats.md with
numpy (Debian's python3-numpy), to check braid's C++ reader and writer against.

  read  PREFIX          -> JSON Lines {"document": d, "sequences": [[ids], ...]} on stdout, after
                           asserting the header bytes and every size
  write PREFIX DTYPE    <- the same JSON Lines on stdin; DTYPE uint16 or int32
  header PREFIX         -> one JSON object: magic, version, dtype code, N, D, file sizes
"""
import json
import os
import sys

import numpy as np

MAGIC = b"MMIDIDX\x00\x00"
CODES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64,
         7: np.float32, 8: np.uint16}
NAMES = {"uint16": 8, "int32": 4}


def header(prefix):
    with open(prefix + ".idx", "rb") as f:
        raw = f.read()
    assert raw[:9] == MAGIC, f"magic {raw[:9]!r}"
    version = int(np.frombuffer(raw, np.uint64, 1, 9)[0])
    code = raw[17]
    n = int(np.frombuffer(raw, np.uint64, 1, 18)[0])
    d = int(np.frombuffer(raw, np.uint64, 1, 26)[0])
    return raw, {"magic": raw[:9].hex(), "version": version, "dtype_code": code, "sequences": n,
                 "doc_indices": d, "idx_bytes": len(raw),
                 "bin_bytes": os.path.getsize(prefix + ".bin")}


def read(prefix):
    raw, h = header(prefix)
    n, d = h["sequences"], h["doc_indices"]
    assert h["version"] == 1
    assert len(raw) == 34 + 12 * n + 8 * d, (len(raw), n, d)
    lengths = np.frombuffer(raw, np.int32, n, 34)
    pointers = np.frombuffer(raw, np.int64, n, 34 + 4 * n)
    docs = np.frombuffer(raw, np.int64, d, 34 + 12 * n)
    dtype = np.dtype(CODES[h["dtype_code"]])
    data = np.fromfile(prefix + ".bin", dtype=dtype)
    assert data.nbytes == h["bin_bytes"]
    expected = np.concatenate([[0], np.cumsum(lengths.astype(np.int64) * dtype.itemsize)[:-1]])
    assert (pointers == expected[:n]).all(), "pointers are not cumulative"
    assert docs[0] == 0 and docs[-1] == n and (np.diff(docs) >= 0).all()
    for k in range(d - 1):
        seqs = []
        for s in range(docs[k], docs[k + 1]):
            start = pointers[s] // dtype.itemsize
            seqs.append([int(x) for x in data[start:start + lengths[s]]])
        print(json.dumps({"document": k, "sequences": seqs}))


def write(prefix, dtype_name):
    code = NAMES[dtype_name]
    dtype = np.dtype(CODES[code])
    lengths, pointers, docs, chunks = [], [], [0], []
    offset = 0
    for line in sys.stdin:
        obj = json.loads(line)
        for seq in obj["sequences"]:
            arr = np.asarray(seq, dtype=dtype)
            chunks.append(arr.tobytes())
            lengths.append(len(seq))
            pointers.append(offset)
            offset += arr.nbytes
        docs.append(len(lengths))
    with open(prefix + ".bin", "wb") as f:
        f.write(b"".join(chunks))
    with open(prefix + ".idx", "wb") as f:
        f.write(MAGIC)
        f.write(np.uint64(1).tobytes())
        f.write(np.uint8(code).tobytes())
        f.write(np.uint64(len(lengths)).tobytes())
        f.write(np.uint64(len(docs)).tobytes())
        f.write(np.asarray(lengths, np.int32).tobytes())
        f.write(np.asarray(pointers, np.int64).tobytes())
        f.write(np.asarray(docs, np.int64).tobytes())


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "read":
        read(sys.argv[2])
    elif cmd == "write":
        write(sys.argv[2], sys.argv[3])
    elif cmd == "header":
        print(json.dumps(header(sys.argv[2])[1]))
