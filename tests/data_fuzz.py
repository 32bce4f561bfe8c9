"""Corrupted and crafted IDX, CIFAR-10 and gzip files, and the rule the readers must follow: ``read_idx`` and
``read_cifar10_batch`` either raise ``DataFormatError`` naming the file, or return exactly what an independent
reference parser (below: ``struct`` and ``gzip.decompress``, written from the format descriptions) reads from
the same bytes -- never another exception, never different values.

Shared by ``tests/test_data_fuzz.py`` (a few hundred seeded cases in the suite) and the long run::

    python tests/data_fuzz.py --cases 5000 --seed 0

which prints, per kind of file (idx, idx.gz, cifar, cifar.gz), how many were refused, read correctly, or
broke the rule (must be 0).
"""
from __future__ import annotations

import collections
import gzip
import math
import os
import struct
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fuzzing  # noqa: E402
from minibnn.data import DataFormatError, read_cifar10_batch, read_idx  # noqa: E402

_CODES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
RECORD = 3073


# ---- the reference parsers ------------------------------------------------------------------------------------

def ref_bytes(blob: bytes):
    if blob[:2] != b"\x1f\x8b":
        return blob
    try:
        return gzip.decompress(blob)
    except (OSError, EOFError, zlib.error):
        return None


def ref_idx(blob: bytes):
    data = ref_bytes(blob)
    if data is None or len(data) < 4 or data[0] or data[1] or data[2] not in _CODES:
        return None
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        return None
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(_CODES[data[2]])
    n = math.prod(shape)
    if len(data) != 4 + 4 * ndim + n * dtype.itemsize:
        return None
    return np.frombuffer(data, dtype, n, 4 + 4 * ndim).astype(dtype.newbyteorder("=")).reshape(shape)


def ref_cifar(blob: bytes):
    data = ref_bytes(blob)
    if data is None or not data or len(data) % RECORD:
        return None
    records = np.frombuffer(data, np.uint8).reshape(-1, RECORD)
    if records[:, 0].max() > 9:
        return None
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0]


# ---- the files ------------------------------------------------------------------------------------------------

def idx_file(rng) -> bytes:
    code = int(rng.choice(list(_CODES)))
    ndim = int(rng.integers(0, 4))
    shape = tuple(int(d) for d in rng.integers(0, 5, size=ndim))
    dtype = np.dtype(_CODES[code])
    n = math.prod(shape)
    values = rng.integers(0, 256, size=n * dtype.itemsize, dtype=np.uint8).tobytes()
    return bytes([0, 0, code, ndim]) + struct.pack(f">{ndim}I", *shape) + values


def cifar_file(rng) -> bytes:
    n = int(rng.integers(1, 4))
    records = rng.integers(0, 256, size=(n, RECORD), dtype=np.uint8)
    records[:, 0] = rng.integers(0, 10, size=n)
    return records.tobytes()


def mutate(rng, blob: bytes, idx: bool) -> bytes:
    choice = int(rng.integers(10))
    b = bytearray(blob)
    if choice == 0 and b:                                   # byte flips
        for p in rng.choice(len(b), size=min(len(b), int(rng.integers(1, 4))), replace=False):
            b[p] ^= int(rng.integers(1, 256))
    elif choice == 1:                                       # truncation
        b = b[:int(rng.integers(0, len(b) + 1))]
    elif choice == 2:                                       # inserted or deleted bytes
        at = int(rng.integers(0, len(b) + 1))
        b = b[:at] + rng.bytes(int(rng.integers(1, 16))) + b[at:] if rng.random() < 0.5 else \
            b[:at] + b[at + int(rng.integers(1, 16)):]
    elif choice == 3:                                       # garbage
        b = bytearray(rng.bytes(int(rng.integers(0, 64))))
    elif choice == 4 and idx and len(b) >= 4:               # a header field rewritten
        field = int(rng.integers(3))
        if field == 0:
            b[2] = int(rng.choice([0, 7, 0x0A, 0x0F, 255, 0x08, 0x0E]))
        elif field == 1:
            b[3] = int(rng.choice([0, 1, 2, 3, 4, 100, 255]))
        elif len(b) >= 8:
            b[4:8] = struct.pack(">I", int(rng.choice([0, 1, 2 ** 31, 2 ** 32 - 1, 65536, 3])))
    elif choice == 5:                                       # a label out of range (CIFAR) or extra bytes
        if not idx and b:
            b[RECORD * int(rng.integers(max(1, len(b) // RECORD)))] = int(rng.integers(10, 256)) \
                if len(b) >= RECORD else 0
        else:
            b += b"\0"
    return bytes(b)


def gz_mutate(rng, blob: bytes) -> bytes:
    """``blob`` gzipped, then perhaps damaged: flips, truncation, trailing garbage or zeros, two members, a
    header with flags (name, comment, extra), or a stream claiming more than it holds."""
    z = gzip.compress(blob, mtime=0)
    choice = int(rng.integers(8))
    if choice == 0:
        b = bytearray(z)
        for p in rng.choice(len(b), size=min(len(b), int(rng.integers(1, 4))), replace=False):
            b[p] ^= int(rng.integers(1, 256))
        return bytes(b)
    if choice == 1:
        return z[:int(rng.integers(0, len(z)))]
    if choice == 2:
        return z + (b"\0" * int(rng.integers(1, 9)) if rng.random() < 0.5 else rng.bytes(int(rng.integers(1, 9))))
    if choice == 3:
        half = int(rng.integers(0, len(blob) + 1))
        return gzip.compress(blob[:half], mtime=0) + gzip.compress(blob[half:], mtime=0)
    if choice == 4:                                      # FNAME / FCOMMENT / FEXTRA flags, maybe unterminated
        flags = int(rng.choice([0x08, 0x10, 0x04, 0x02, 0xE0]))
        extra = {0x08: b"name\0", 0x10: b"comment\0", 0x04: b"\x04\0abcd", 0x02: b"\0\0", 0xE0: b""}[flags]
        if rng.random() < 0.3:
            extra = extra[:-1]
        return z[:3] + bytes([flags]) + z[4:10] + extra + z[10:]
    if choice == 5:                                      # a small stream inflating to more than the header says
        return gzip.compress(blob + b"\0" * int(rng.integers(1, 300_000)), mtime=0)
    return z


def case(rng):
    """(kind, bytes)."""
    idx = rng.random() < 0.6
    blob = idx_file(rng) if idx else cifar_file(rng)
    if rng.random() < 0.5:
        return ("idx" if idx else "cifar"), mutate(rng, blob, idx)
    blob = mutate(rng, blob, idx) if rng.random() < 0.3 else blob
    return ("idx.gz" if idx else "cifar.gz"), gz_mutate(rng, blob)


def check(kind: str, blob: bytes, path: str) -> str:
    with open(path, "wb") as f:
        f.write(blob)
    reader, ref = (read_idx, ref_idx) if kind.startswith("idx") else (read_cifar10_batch, ref_cifar)
    expected = ref(blob)
    try:
        got = reader(path)
    except DataFormatError as err:
        if path not in str(err):
            return f"DataFormatError without the file name: {err}"
        return "refused" if expected is None else f"refused a file the reference reads: {err}"
    except Exception as err:  # noqa: BLE001 -- what we count
        return f"{type(err).__name__}: {str(err)[:200]}"
    if expected is None:
        return "read a file the reference refuses"
    pairs = [(got, expected)] if kind.startswith("idx") else list(zip(got, expected))
    for a, b in pairs:
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes() or not a.flags.writeable:
            return f"different values: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    return "read"


def run(cases: int, seed: int, folder: str, verbose=True):
    rng = np.random.default_rng(seed)
    counts = collections.defaultdict(collections.Counter)
    failures = []
    for i in range(cases):
        kind, blob = case(rng)
        result = check(kind, blob, os.path.join(folder, f"f{i % 20}" + (".gz" if kind.endswith("gz") else "")))
        if result in ("refused", "read"):
            counts[kind][result] += 1
        else:
            counts[kind]["FAILED"] += 1
            failures.append((kind, result))
    # special files: a directory, a missing file, an empty file
    for special in ("dir", "missing", "empty"):
        path = os.path.join(folder, special)
        if special == "dir":
            os.makedirs(path, exist_ok=True)
        elif special == "empty":
            open(path, "wb").close()
        for reader in (read_idx, read_cifar10_batch):
            try:
                reader(path)
                counts["special"]["FAILED"] += 1
                failures.append(("special", f"{special} read"))
            except DataFormatError as err:
                counts["special"]["refused"] += 1 if path in str(err) else 0
            except Exception as err:  # noqa: BLE001
                counts["special"]["FAILED"] += 1
                failures.append(("special", f"{special}: {type(err).__name__}: {err}"))
    if verbose:
        for kind, c in sorted(counts.items()):
            print(f"{kind:>9}: {sum(c.values()):5d} files  refused {c['refused']:5d}  read correctly "
                  f"{c['read']:5d}  failed {c['FAILED']}")
        for f in failures[:20]:
            print("FAIL", *f)
    return counts, failures



if __name__ == "__main__":
    fuzzing.main(run, __doc__, "wrong values")
