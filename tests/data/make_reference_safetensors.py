#!/usr/bin/env python3
"""Writes reference.safetensors with numpy alone (no dalle code, no safetensors package), so the
C++ reader is tested against an independent writer. Run with Debian's python3-numpy:
    /usr/bin/python3 tests/data/make_reference_safetensors.py tests/data/reference.safetensors
"""
import json
import struct
import sys

import numpy as np


def bf16_bytes(values):
    # bfloat16 = the high 16 bits of float32 (these values are exact in bf16).
    f = np.asarray(values, dtype="<f4").view("<u4")
    return (f >> 16).astype("<u2").tobytes()


tensors = [
    ("f32", "F32", [3, 4], (np.arange(12, dtype="<f4") / 4).tobytes()),
    ("f16", "F16", [3], np.asarray([0.5, -1.25, 1024.0], dtype="<f2").tobytes()),
    ("bf16", "BF16", [3], bf16_bytes([1.0, -2.5, 0.15625])),
    ("i64", "I64", [2], np.asarray([-1, 1 << 50], dtype="<i8").tobytes()),
    ("i32", "I32", [3, 1], np.asarray([7, -8, 9], dtype="<i4").tobytes()),
    ("u16", "U16", [3], np.asarray([0, 40000, 65535], dtype="<u2").tobytes()),
    ("u8", "U8", [3], np.asarray([1, 2, 250], dtype="u1").tobytes()),
]

header = {"__metadata__": {"writer": "numpy"}}
data = b""
# Deliberately not in sorted order, to test offsets rather than order.
for name, dtype, shape, raw in reversed(tensors):
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
text = json.dumps(header).encode()
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    f.write(data)
