"""Corrupted and crafted checkpoint files, and the rule they must follow: ``load_checkpoint`` either raises
``CheckpointError`` (naming the file) or loads exactly what was saved -- never another exception, never a
different state.

Shared by ``tests/test_file_fuzz.py`` (a few hundred seeded cases in the suite) and the long run before a
release::

    python tests/checkpoint_fuzz.py --cases 5000 --seed 0

which prints how many files of each kind were refused, accepted, or raised something else (must be 0).
"""
from __future__ import annotations

import argparse
import collections
import warnings
import io
import json
import os
import sys
import tempfile
import time
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import minibnn  # noqa: E402
from minibnn import Sequential, Tensor  # noqa: E402
from minibnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from minibnn.layers import BatchNorm1d, Linear, ReLU  # noqa: E402
from minibnn.losses import CrossEntropyLoss  # noqa: E402
from minibnn.optim import Adam  # noqa: E402
from minibnn.schedulers import MultiStepLR  # noqa: E402


# --------------------------------------------------------------------------------------------------------------
# The checkpoints being damaged
# --------------------------------------------------------------------------------------------------------------
def trained(seed):
    minibnn.manual_seed(seed)
    model = Sequential(Linear(4, 6), BatchNorm1d(6), ReLU(), Linear(6, 3))
    opt = Adam(model.parameters(), lr=0.05)
    sched = MultiStepLR(opt, milestones=[1, 2], gamma=0.5)
    rng = np.random.default_rng(seed)
    for _ in range(2):
        x = Tensor(rng.standard_normal((8, 4)).astype(np.float32))
        loss = CrossEntropyLoss()(model(x), rng.integers(0, 3, size=8))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model, opt, sched


def states(model, opt, sched):
    return {"model": dict(model.state_dict()), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}


def same(a, b) -> bool:
    """Nested states equal, arrays bit for bit with the same dtype."""
    if isinstance(a, dict):
        return isinstance(b, dict) and set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return a == b and type(a) is type(b)


class Originals:
    """Two checkpoints of the same architecture (seeds 0 and 1) as bytes, and the state of the first."""

    def __init__(self, folder):
        self.folder = folder
        self.blobs, self.states = [], []
        for seed in (0, 1):
            objects = trained(seed)
            path = os.path.join(folder, f"original{seed}.npz")
            save_checkpoint(path, *objects, epoch=3, extra={"note": "fuzz", "table": np.arange(4)})
            with open(path, "rb") as f:
                self.blobs.append(f.read())
            self.states.append(states(*objects))
        self.members = [unzip(blob) for blob in self.blobs]


def unzip(blob: bytes):
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def rezip(members, compression=zipfile.ZIP_STORED) -> bytes:
    """A zip of ``(name, bytes)`` with correct CRCs (a crafted file, not a damaged one)."""
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", compression=compression) as zf:
        warnings.simplefilter("ignore")   # "Duplicate name": on purpose
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return out.getvalue()


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=False)
    return out.getvalue()


def npy_header(header: str, data: bytes = b"", version: int = 1, length=None) -> bytes:
    raw = header.encode("utf-8")   # for versions 1 and 2 (latin-1) a non-ASCII header is then mojibake: fine
    length = len(raw) if length is None else length
    size = length.to_bytes(2 if version == 1 else 4, "little", signed=False)
    return b"\x93NUMPY" + bytes([version, 0]) + size + raw + data


def metadata_of(members):
    for name, data in members:
        if name == "__metadata__.npy":
            return json.loads(np.load(io.BytesIO(data)).tobytes())
    raise KeyError("__metadata__")


def with_metadata(members, text: bytes, as_array=None):
    array = np.frombuffer(text, dtype=np.uint8) if as_array is None else as_array
    return [(n, npy(array) if n == "__metadata__.npy" else d) for n, d in members]


# --------------------------------------------------------------------------------------------------------------
# Mutations: each returns (bytes, must_equal_original) -- the second says a load that succeeds must give back
# exactly the original state (damage), or may give something else (a crafted but consistent file).
# --------------------------------------------------------------------------------------------------------------
def flip(rng, o):
    blob = bytearray(o.blobs[0])
    for position in rng.choice(len(blob), size=int(rng.integers(1, 5)), replace=False):
        blob[position] ^= int(rng.integers(1, 256))
    return bytes(blob), True


def truncate(rng, o):
    return o.blobs[0][:int(rng.integers(0, len(o.blobs[0])))], True


def splice(rng, o):
    blob = o.blobs[0]
    at = int(rng.integers(0, len(blob)))
    if rng.random() < 0.5:
        return blob[:at] + rng.bytes(int(rng.integers(1, 64))) + blob[at:], True
    return blob[:at] + blob[at + int(rng.integers(1, 64)):], True


def garbage(rng, o):
    choices = [b"", rng.bytes(int(rng.integers(1, 4096))), b"PK\x05\x06" + bytes(18), b"\x93NUMPY" + rng.bytes(90),
               b"PK\x03\x04" + rng.bytes(200)]
    return choices[int(rng.integers(len(choices)))], True


_VALUES = ["four", -1, 2 ** 70, 1.5, float("nan"), None, True, False, [], {}, [1, [2, [3]]], {"a": {"b": {}}},
           {"__array__": "model/0.weight"}, {"__array__": ["x"]}, {"__array__": {"a": 1}}, "\ud800", "model/0.weight",
           {"class": "Adam"}, {"class": ["Adam"], "state": {}}, {"class": "Adam", "state": []}, [[[[[[[[[[[]]]]]]]]]]],
           {"dtype": "<f4", "shape": [6, 4], "sha256": "00"}, {"dtype": "|O", "shape": [1], "sha256": ""}]


def _nodes(tree, path=()):
    yield path, tree
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _nodes(v, path + (i,))


def _set(tree, path, value):
    if not path:
        return value
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


def craft_metadata(rng, o):
    """A JSON tree edit (replace, delete, add, rename), re-zipped with valid CRCs."""
    members = o.members[0]
    meta = metadata_of(members)
    nodes = list(_nodes(meta))
    path, node = nodes[int(rng.integers(len(nodes)))]
    action = int(rng.integers(5))
    if action == 0 or not path:
        meta = _set(meta, path, _VALUES[int(rng.integers(len(_VALUES)))])
    elif action == 1:
        parent = meta
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
    elif action == 2 and isinstance(node, dict):
        node[str(rng.choice(["format", "version", "epoch", "__array__", "members", "x", "state", "class"]))] = \
            _VALUES[int(rng.integers(len(_VALUES)))]
    elif action == 3 and isinstance(node, dict) and node:
        key = list(node)[int(rng.integers(len(node)))]
        node[key + "_"] = node.pop(key)
    else:
        meta = _set(meta, path, _VALUES[int(rng.integers(len(_VALUES)))])
    return rezip(with_metadata(members, json.dumps(meta).encode("utf-8"))), False


def craft_metadata_bytes(rng, o):
    """Metadata that is not JSON, not UTF-8, deeply nested, huge numbers, duplicate keys, or not uint8 bytes."""
    members = o.members[0]
    text = json.dumps(metadata_of(members)).encode("utf-8")
    depth = int(rng.choice([65, 1000, 100_000]))
    at = text.index(b'"extra": ') + len(b'"extra": ')
    options = [
        text[:int(rng.integers(len(text)))],
        text.replace(b'"epoch": 3', b'"epoch": ' + b"9" * int(rng.integers(10, 6000))),
        text.replace(b'"epoch": 3', b'"epoch": 1e999'),
        text[:at] + b"[" * depth + b"]" * depth + text[text.index(b', "members"', at):],
        text[:5] + b"\xff\xfe" + text[5:],
        text.replace(b'"epoch"', b'"extra": 1, "epoch"', 1),
        b"\xef\xbb\xbf" + text,
        text + b" garbage",
    ]
    choice = int(rng.integers(len(options) + 2))
    if choice == len(options):
        return rezip(with_metadata(members, b"", np.frombuffer(text, np.uint8).astype(np.float32))), False
    if choice == len(options) + 1:
        return rezip(with_metadata(members, b"", np.frombuffer(text, np.uint8).reshape(1, -1))), False
    return rezip(with_metadata(members, options[choice])), False


_HEADERS = [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }",   # 2**40: 4 TiB
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
    "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }",
    "{'descr': '|V8', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }",
    "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 6), }",
    "{'descr': '<f4', 'fortran_order': 1, 'shape': (6, 4), }",
    "{'descr': '<f4', 'shape': (6, 4), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 4), 'x': __import__('os'), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (" + "1, " * 40 + "), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': [6, 4], }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (6, 2), }",
    "{'descr': '>f4', 'fortran_order': False, 'shape': (6, 4), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (24,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 4), }" + "\x00" * 10,
    "{'descr': '<f4', 'fortran_order': False, 'shape': ((6, 4), }",
    "{'descr': '\u20ac', 'fortran_order': False, 'shape': (6, 4), }",
    "",
]


def craft_header(rng, o):
    """One member's .npy header replaced (same data bytes), re-zipped with valid CRCs."""
    members = list(o.members[0])
    i = int(rng.integers(len(members)))
    name, data = members[i]
    body = data[10 + int.from_bytes(data[8:10], "little"):]
    header = _HEADERS[int(rng.integers(len(_HEADERS)))]
    version = int(rng.choice([1, 2, 3]))
    length = None if rng.random() < 0.8 else int(rng.choice([0, 70000, 2 ** 16 - 1, 2 ** 31]))
    if version == 1 and length is not None:
        length = min(length, 2 ** 16 - 1)
    members[i] = (name, npy_header(header, body, version, length))
    return rezip(members), False


def swap_inside(rng, o):
    """The data of two same-shape members of one file exchanged (names kept), or two members renamed."""
    members = list(o.members[0])
    by_size = collections.defaultdict(list)
    for i, (name, data) in enumerate(members):
        if name != "__metadata__.npy":
            by_size[data[:128]].append(i)
    groups = [g for g in by_size.values() if len(g) > 1]
    group = groups[int(rng.integers(len(groups)))]
    a, b = rng.choice(group, size=2, replace=False)
    if rng.random() < 0.5:
        members[a], members[b] = (members[a][0], members[b][1]), (members[b][0], members[a][1])
    else:
        members[a], members[b] = (members[b][0], members[a][1]), (members[a][0], members[b][1])
    return rezip(members), True


def swap_from_other(rng, o):
    """Members taken from the other checkpoint of the same architecture."""
    members = list(o.members[0])
    other = dict(o.members[1])
    for i in rng.choice(len(members), size=int(rng.integers(1, 4)), replace=False):
        name = members[i][0]
        if name != "__metadata__.npy" and not (rng.random() < 0.2):
            members[i] = (name, other[name])
    return rezip(members), True


def swap_references(rng, o):
    """Two ``{"__array__": name}`` references exchanged in the metadata (a consistent members table)."""
    members = o.members[0]
    meta = metadata_of(members)
    refs = [(p, n) for p, n in _nodes(meta) if isinstance(n, dict) and "__array__" in n]
    (pa, na), (pb, nb) = [refs[i] for i in rng.choice(len(refs), size=2, replace=False)]
    na["__array__"], nb["__array__"] = nb["__array__"], na["__array__"]
    return rezip(with_metadata(members, json.dumps(meta).encode("utf-8"))), True


def craft_zip(rng, o):
    """Zip-level crafting: duplicates, extra or missing members, other names, compression methods, flags."""
    members = list(o.members[0])
    choice = int(rng.integers(9))
    if choice == 0:
        members.append(members[int(rng.integers(len(members)))])
    elif choice == 1:
        members.append(("extra.npy", npy(np.zeros(3))))
    elif choice == 2:
        del members[int(rng.integers(len(members)))]
    elif choice == 3:
        members.append(("notes.txt", b"hello"))
    elif choice == 4:
        return rezip(members, zipfile.ZIP_DEFLATED), True       # valid: deflated members load
    elif choice == 5:
        members.append(("big.npy", npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (8388608,), }",
                                              b"\x00" * 16)))
    elif choice in (6, 7, 8):
        blob = bytearray(rezip(members))
        sig = {6: b"PK\x03\x04", 7: b"PK\x01\x02", 8: b"PK\x01\x02"}[choice]
        starts = [i for i in range(len(blob) - 4) if blob[i:i + 4] == sig]
        at = starts[int(rng.integers(len(starts)))]
        if choice == 8:  # general purpose flag: encrypted / other bits
            flag_at = at + 8
            blob[flag_at] ^= int(rng.choice([1, 8, 64]))
        else:            # compression method
            method_at = at + (8 if sig == b"PK\x03\x04" else 10)
            blob[method_at:method_at + 2] = int(rng.choice([1, 9, 12, 14, 93, 99, 0xFFFF])).to_bytes(2, "little")
        return bytes(blob), True
    return rezip(members), True


MUTATIONS = {f.__name__: f for f in (flip, truncate, splice, garbage, craft_metadata, craft_metadata_bytes,
                                     craft_header, swap_inside, swap_from_other, swap_references, craft_zip)}


# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------
def run(cases: int, seed: int = 0, folder=None, max_seconds_per_case: float = 5.0):
    """Load ``cases`` mutated files; return the tallies and the first few offending cases."""
    if folder is None:
        with tempfile.TemporaryDirectory() as folder:
            return run(cases, seed, folder, max_seconds_per_case)
    o = Originals(folder)
    rng = np.random.default_rng(seed)
    names = list(MUTATIONS)
    counts = collections.Counter()
    problems = []
    path = os.path.join(folder, "fuzzed.npz")
    slowest = 0.0
    for case in range(cases):
        name = names[case % len(names)]
        blob, must_equal = MUTATIONS[name](rng, o)
        with open(path, "wb") as f:
            f.write(blob)
        model, opt, sched = trained(2)
        start = time.perf_counter()
        try:
            load_checkpoint(path, model, opt, sched)
        except CheckpointError as err:
            counts[name, "refused"] += 1
            if path not in str(err):
                problems.append((case, name, "message lacks the file name", str(err)[:200]))
        except Exception as err:   # noqa: BLE001 -- the point: anything else is a finding
            counts[name, "other"] += 1
            problems.append((case, name, type(err).__name__, str(err)[:200]))
        else:
            if same(states(model, opt, sched), o.states[0]):
                counts[name, "accepted"] += 1
            elif must_equal:
                counts[name, "wrong"] += 1
                problems.append((case, name, "loaded a different state", ""))
            else:
                counts[name, "accepted (crafted, consistent)"] += 1
        slowest = max(slowest, time.perf_counter() - start)
        if time.perf_counter() - start > max_seconds_per_case:
            problems.append((case, name, "slow", f"{time.perf_counter() - start:.1f} s"))
    return counts, problems, slowest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    counts, problems, slowest = run(args.cases, args.seed)
    print(f"{args.cases} corrupted or crafted checkpoint files, seed {args.seed}, "
          f"{time.perf_counter() - start:.1f} s (slowest load {slowest * 1000:.0f} ms)")
    outcomes = sorted({k[1] for k in counts})
    print(f"{'mutation':24s}" + "".join(f"{o:>32s}" for o in outcomes))
    for name in MUTATIONS:
        print(f"{name:24s}" + "".join(f"{counts[name, o]:>32d}" for o in outcomes))
    other = sum(v for k, v in counts.items() if k[1] == "other")
    wrong = sum(v for k, v in counts.items() if k[1] == "wrong")
    print(f"exceptions other than CheckpointError: {other}; wrong states loaded: {wrong}; other problems: "
          f"{len(problems) - other - wrong}")
    for problem in problems[:20]:
        print("  ", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
