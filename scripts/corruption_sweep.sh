#!/usr/bin/env bash
# scripts/corruption_sweep.sh — flips one bit in a random metadata byte of a real checkpoint, FLIPS
# times (seeded), and loads each corrupted copy the way convert-checkpoint does (exporting it to
# Hugging Face files). Metadata is every byte of the HDF5 file outside the tensors' data chunks (the
# chunks' own Fletcher32 checksums are HDF5FileTests' concern). Each load must either fail with an
# error or give exactly the reference export; a load that exits 0 with other weights or another
# config is a silent wrong load, and the script fails if there is one.
#   scripts/corruption_sweep.sh [OUT_DIR]      FLIPS=300 SEED=1
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
out=$(realpath -m "${1:-runs/corruption-sweep}")
FLIPS=${FLIPS:-300} SEED=${SEED:-1}
bin=$PWD/.build/release/megatron
[ -x "$bin" ] || swift build -c release --product megatron >/dev/null
rm -rf "$out" && mkdir -p "$out"
cd "$out"
"$bin" train --config "$OLDPWD/configs/gpt2-tiny.json" --num-layers 2 --hidden-size 32 --num-attention-heads 2 \
    --seq-length 32 --max-position-embeddings 32 --train-iters 2 --global-batch-size 4 --micro-batch-size 2 \
    --eval-iters 0 --num-threads 1 --save ckpt >train.log
"$bin" convert-checkpoint --load ckpt --to hf reference >/dev/null
/usr/bin/python3 - "$bin" "$FLIPS" "$SEED" <<'EOF'
import filecmp, glob, os, random, shutil, subprocess, sys
import h5py
binary, flips, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rank_file = glob.glob("ckpt/iter_*/mp_rank_00_000.h5")[0]
data = open(rank_file, "rb").read()
chunks = []
def collect(name, obj):
    if isinstance(obj, h5py.Dataset) and obj.chunks is not None:
        for i in range(obj.id.get_num_chunks()):
            info = obj.id.get_chunk_info(i)
            chunks.append((info.byte_offset, info.byte_offset + info.size))
    elif isinstance(obj, h5py.Dataset):
        off = obj.id.get_offset()
        if off is not None:
            chunks.append((off, off + obj.id.get_storage_size()))
with h5py.File(rank_file, "r") as f:
    f.visititems(collect)
in_chunk = bytearray(len(data))
for a, b in chunks:
    in_chunk[a:b] = b"\x01" * (b - a)
metadata = [i for i in range(len(data)) if not in_chunk[i]]
print(f"checkpoint file {len(data)} bytes: {len(data) - len(metadata)} in {len(chunks)} data chunks, "
      f"{len(metadata)} metadata bytes")
rng = random.Random(seed)
counts = {"refused": 0, "identical": 0, "silent": 0}
for n in range(flips):
    pos, bit = rng.choice(metadata), rng.randrange(8)
    shutil.rmtree("bad", ignore_errors=True); shutil.rmtree("export", ignore_errors=True)
    shutil.copytree("ckpt", "bad")
    target = rank_file.replace("ckpt/", "bad/", 1)
    corrupted = bytearray(data); corrupted[pos] ^= 1 << bit
    open(target, "wb").write(corrupted)
    r = subprocess.run([binary, "convert-checkpoint", "--load", "bad", "--to", "hf", "export"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        counts["refused"] += 1
        if r.returncode not in (1, 2) or "error" not in r.stderr:
            print(f"flip {n} (byte {pos} bit {bit}): exit {r.returncode} without an error line:\n{r.stderr[-800:]}")
            counts["silent"] += 1
        continue
    same = all(filecmp.cmp(os.path.join("reference", f), os.path.join("export", f), shallow=False)
               for f in os.listdir("reference"))
    if same:
        counts["identical"] += 1
    else:
        counts["silent"] += 1
        print(f"SILENT WRONG LOAD: flip {n} at byte {pos} bit {bit} exported different files")
print(f"{flips} metadata flips: {counts['refused']} refused with an error, {counts['identical']} loaded "
      f"unchanged (bytes the reader never uses), {counts['silent']} silent wrong loads")
sys.exit(1 if counts["silent"] else 0)
EOF
