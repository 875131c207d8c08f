"""Checks a reduced-precision rank file with h5py alone (independent of the trainer's reader).

usage: half_checkpoint_check.py FILE bf16|fp16
Every 2-D model weight must be a 16-bit HDF5 float that h5py reads as floats (float32 for bfloat16,
float16 for IEEE half), equal to its fp32 main parameter in optimizer/fp32_from_fp16_params rounded
to nearest even; vectors stay fp32. Prints one line per check and exits 1 on the first failure.
"""
import sys

import h5py
import numpy as np


def round_bf16(x):
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def main():
    path, precision = sys.argv[1], sys.argv[2]
    f = h5py.File(path, "r")
    if f.attrs["precision"].decode() != precision:
        sys.exit(f"root attribute precision is {f.attrs['precision']!r}, expected {precision}")
    matrices = 0
    for name, ds in f["model"].items():
        if ds.ndim == 1:
            if ds.dtype != np.float32:
                sys.exit(f"{name}: a vector should stay float32, found {ds.dtype}")
            continue
        matrices += 1
        if ds.id.get_type().get_size() != 2:
            sys.exit(f"{name}: stored with {ds.id.get_type().get_size()} bytes per element, expected 2")
        expected_dtype = np.float32 if precision == "bf16" else np.float16
        if ds.dtype != expected_dtype:
            sys.exit(f"{name}: h5py reads {ds.dtype}, expected {np.dtype(expected_dtype)}")
        main_param = f["optimizer/fp32_from_fp16_params/" + name][...]
        rounded = round_bf16(main_param) if precision == "bf16" else main_param.astype(np.float16).astype(np.float32)
        if not np.array_equal(ds[...].astype(np.float32), rounded):
            sys.exit(f"{name}: the 16-bit weight is not its main parameter rounded to nearest even")
    print(f"ok: {matrices} matrices stored as 16-bit {precision}, each the rounding of its fp32 main parameter")


if __name__ == "__main__":
    main()
