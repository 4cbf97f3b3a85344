#!/usr/bin/env python3
"""Reads TensorBoard event files without TensorFlow or TensorBoard: TFRecord framing with both
masked CRC-32C checks, and just enough protobuf decoding for Event {wall_time 1, step 2,
file_version 3, summary 5 {value 1 {tag 1, simple_value 2}}}. Written from the format, not from
braid's writer: the tests use it as an independent reader.

  tensorboard_events.py FILE   -> one line per scalar: step<TAB>tag<TAB>value
"""
import struct
import sys


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ _TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    raw = open(path, "rb").read()
    pos = 0
    while pos < len(raw):
        header = raw[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (len_crc,) = struct.unpack("<I", raw[pos + 8:pos + 12])
        assert len_crc == masked(header), f"bad length CRC at byte {pos}"
        data = raw[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack("<I", raw[pos + 12 + length:pos + 16 + length])
        assert data_crc == masked(data), f"bad data CRC at byte {pos}"
        yield data
        pos += 16 + length


def fields(buf):
    """Yields (field number, wire type, value) of a protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield num, wire, val


def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def scalars(path):
    """[(step, tag, value)] of every scalar summary; asserts the file_version record first."""
    out = []
    for k, rec in enumerate(records(path)):
        event = {num: val for num, _, val in fields(rec)}
        if k == 0:
            assert event.get(3) == b"brain.Event:2", "first record is not the file version"
            continue
        step = event.get(2, 0)
        for num, _, value in fields(event.get(5, b"")):
            if num != 1:
                continue
            v = {n: x for n, _, x in fields(value)}
            out.append((step, v[1].decode(), struct.unpack("<f", v[2])[0]))
    return out


if __name__ == "__main__":
    for step, tag, value in scalars(sys.argv[1]):
        print(f"{step}\t{tag}\t{value:.9g}")
