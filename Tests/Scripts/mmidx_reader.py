#!/usr/bin/env python3
"""An independent reader of Megatron's MMIDIDX format, written from the specification
(magic, version, dtype code, counts, lengths, pointers, document indices; tokens in .bin).
Usage: mmidx_reader.py PREFIX  — prints JSON {"dtype": ..., "documents": [[[tokens of each
sequence] ...] ...]} for the tests to compare with what they wrote."""
import json
import struct
import sys

import numpy as np

DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}


def read(prefix):
    with open(prefix + ".idx", "rb") as f:
        idx = f.read()
    assert idx[:9] == b"MMIDIDX\x00\x00", "bad magic"
    (version,) = struct.unpack_from("<Q", idx, 9)
    assert version == 1, version
    (code,) = struct.unpack_from("<B", idx, 17)
    n, docs = struct.unpack_from("<QQ", idx, 18)
    lengths = np.frombuffer(idx, dtype="<i4", count=n, offset=34)
    pointers = np.frombuffer(idx, dtype="<i8", count=n, offset=34 + 4 * n)
    doc_idx = np.frombuffer(idx, dtype="<i8", count=docs, offset=34 + 12 * n)
    assert len(idx) == 34 + 12 * n + 8 * docs, "trailing or missing bytes in .idx"
    dtype = np.dtype(DTYPES[code]).newbyteorder("<")
    tokens = np.fromfile(prefix + ".bin", dtype=dtype)
    assert tokens.nbytes == int(lengths.sum()) * dtype.itemsize, ".bin size does not match the index"
    sequences = []
    for i in range(n):
        start = int(pointers[i]) // dtype.itemsize
        sequences.append(tokens[start:start + int(lengths[i])].tolist())
    documents = [sequences[int(doc_idx[k]):int(doc_idx[k + 1])] for k in range(docs - 1)]
    return {"dtype": np.dtype(DTYPES[code]).name, "documents": documents}


if __name__ == "__main__":
    print(json.dumps(read(sys.argv[1])))
