"""Corrupted and crafted packed-model files, and the rule they must follow: ``deploy.load`` either raises
``DeployLoadError`` (naming the file) or gives a model that runs correctly -- never another exception, never a
silently different answer.

Four kinds of file, each with its own notion of "correct" for a model that loads:

* **damage** (byte flips, truncations, splices, garbage; the zip-, header- and JSON-level crafting and member
  swaps of ``tests/checkpoint_fuzz.py``): a model that loads must give exactly the original's outputs;
* **padding**: a padding bit of a packed weight or flip mask set, re-written with valid SHA-256s: refused, or
  (if the bit cannot matter) exactly the original's outputs;
* **values**: valid bits of a weight flipped or a threshold moved within its reach, re-written consistently:
  must load and give exactly what the same change made in memory gives;
* **schema**: a config entry, an array's dtype or shape, the stage list or the input shape altered and
  re-written consistently: refused, or a model that runs on a batch and on an empty batch without an error and
  gives (N, classes) outputs.

Shared by ``tests/test_deploy_fuzz.py`` (a few hundred seeded cases in the suite) and the long run::

    python tests/deploy_fuzz.py --cases 5000 --seed 0

which prints, per kind of file, how many were refused, loaded correctly, or failed the rule (must be 0).
"""
from __future__ import annotations

import collections
import copy
import io
import os
import sys
import tempfile
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import checkpoint_fuzz as cf  # noqa: E402
import fuzzing  # noqa: E402
from minibnn import deploy, models  # noqa: E402
from minibnn.archive import write_archive  # noqa: E402
from minibnn.deploy import DeployLoadError  # noqa: E402
from minibnn.layers import BatchNorm1d, BatchNorm2d  # noqa: E402


def randomize_norms(model, rng):
    for m in model.modules():
        if isinstance(m, (BatchNorm1d, BatchNorm2d)):
            c = m.num_features
            m.running_mean[:] = rng.normal(0, 3, c)
            m.running_var[:] = rng.uniform(0.5, 20, c)
            m.weight.data[:] = rng.normal(0, 1, c)
            m.bias.data[:] = rng.normal(0, 1, c)
    return model


BUILDERS = {
    "mlp": (lambda rng: models.bnn_mlp(in_features=30, num_classes=7, hidden_units=70, rng=rng), (30,)),
    "vgg": (lambda rng: models.vgg_small(in_channels=3, num_classes=10, image_size=8, width=1 / 8,
                                         fc_units=(40, 30), rng=rng), (3, 8, 8)),
    "lenet": (lambda rng: models.lenet5(in_channels=1, num_classes=10, image_size=14, width=0.5, rng=rng),
              (1, 14, 14)),
}


class Original:
    """Two frozen models of one architecture (seeds 0 and 1): their files as bytes, members, stage lists."""

    def __init__(self, folder, arch):
        make, shape = BUILDERS[arch]
        self.blobs, self.models = [], []
        for seed in (0, 1):
            rng = np.random.default_rng(seed)
            packed = deploy.freeze(randomize_norms(make(rng), rng), shape)
            path = os.path.join(folder, f"{arch}{seed}.npz")
            packed.save(path)
            with open(path, "rb") as f:
                self.blobs.append(f.read())
            self.models.append(packed)
        self.members = [cf.unzip(b) for b in self.blobs]
        x = np.random.default_rng(9).standard_normal((5,) + shape).astype(np.float32)
        x[0, ...] = 0
        x.reshape(5, -1)[1, :3] = [np.nan, np.inf, -np.inf]
        self.x = x
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.outputs = self.models[0](x)

    def parts(self):
        """(metadata without format/version/members, arrays) of model 0, deep copies."""
        meta = cf.metadata_of(self.members[0])
        meta = {k: v for k, v in meta.items() if k not in ("format", "version", "members")}
        arrays = {}
        for name, data in self.members[0]:
            if name != "__metadata__.npy":
                arrays[name[:-4]] = np.load(io.BytesIO(data), allow_pickle=False).copy()
        return copy.deepcopy(meta), arrays


def _write(meta, arrays) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.npz")
        write_archive(path, arrays, meta, format=deploy.FORMAT, version=deploy.VERSION)
        with open(path, "rb") as f:
            return f.read()


# ---- mutations: each returns (bytes, kind, expected) -----------------------------------------------------------

def damage(rng, o):
    fn = [cf.flip, cf.truncate, cf.splice, cf.garbage, cf.craft_metadata, cf.craft_header, swap_inside,
          swap_from_other, cf.craft_zip][int(rng.integers(9))]
    shim = collections.namedtuple("Shim", "blobs members")(o.blobs, o.members)
    blob, must_equal = fn(rng, shim)
    return blob, "damage" if must_equal else "schema", None


def swap_inside(rng, o):
    groups = collections.defaultdict(list)
    for i, (name, data) in enumerate(o.members[0]):
        if name != "__metadata__.npy":
            groups[data[:128]].append(i)
    groups = [g for g in groups.values() if len(g) > 1]
    if not groups:
        return cf.flip(rng, o)
    return cf.swap_inside(rng, o)


def swap_from_other(rng, o):
    """Members taken from the other model of the same architecture (where it has the same names)."""
    members = list(o.members[0])
    other = dict(o.members[1])
    shared = [i for i, (name, _) in enumerate(members) if name in other and name != "__metadata__.npy"]
    for i in rng.choice(shared, size=min(len(shared), int(rng.integers(1, 4))), replace=False):
        members[i] = (members[i][0], other[members[i][0]])
    return cf.rezip(members), True


def _binary(meta, arrays, rng, kinds=("binary_dense", "binary_conv", "bit_max_pool")):
    picks = [(i, s) for i, s in enumerate(meta["stages"]) if s["kind"] in kinds]
    i, s = picks[int(rng.integers(len(picks)))]
    return i, s


def padding(rng, o):
    """Set one padding bit of a packed weight (past k / past C per pixel) or of a flip mask."""
    meta, arrays = o.parts()
    for _ in range(50):
        i, s = _binary(meta, arrays, rng)
        name = "weight" if s["kind"] != "bit_max_pool" else "flip"
        key = f"{i}/{name}"
        if key not in arrays:
            continue
        w = arrays[key]
        words = w.shape[-1]
        if s["kind"] == "binary_dense":
            c = s["config"]["k"]
            if s["config"]["words_k"] != c:       # after a flatten: find the per-pixel channels from the layout
                prev = [t for t in meta["stages"][:i] if t["kind"] == "binary_conv"][-1]
                c = arrays[f"{meta['stages'].index(prev)}/weight"].shape[0]
                per = -(-c // 64)
                pix = words // per
                word = per * int(rng.integers(pix)) + per - 1
            else:
                word = words - 1
            valid = c % 64 if s["config"]["words_k"] != s["config"]["k"] else s["config"]["k"] - 64 * (words - 1)
        elif s["kind"] == "binary_conv":
            valid, word = s["config"]["channels"] - 64 * (words - 1), words - 1
        else:
            prev = [t for t in meta["stages"][:i] if t["kind"] == "binary_conv"][-1]
            c = arrays[f"{meta['stages'].index(prev)}/weight"].shape[0]
            valid, word = c - 64 * (words - 1), words - 1
        if valid >= 64:
            continue
        bit = np.uint64(1) << np.uint64(int(rng.integers(valid, 64)))
        index = tuple(int(rng.integers(d)) for d in w.shape[:-1]) + (word,)
        w[index] |= bit
        return _write(meta, arrays), "padding", None
    return _write(meta, arrays), "damage", None


def values(rng, o):
    """A valid change (a valid weight bit flipped, a threshold moved within reach), made in memory too."""
    meta, arrays = o.parts()
    model = copy.deepcopy(o.models[0])
    i, s = _binary(meta, arrays, rng, ("binary_dense", "binary_conv"))
    stage = model.stages[i]
    if f"{i}/threshold" in arrays and rng.random() < 0.5:
        t = arrays[f"{i}/threshold"]
        reach = s["config"]["words_k"] if s["kind"] == "binary_dense" else stage.k
        j = int(rng.integers(len(t)))
        t[j] = int(rng.integers(-reach - 1, reach + 2))
        stage.threshold = t.copy()
    else:
        w = arrays[f"{i}/weight"]
        flat = w.reshape(-1, w.shape[-1])
        if s["kind"] == "binary_conv":
            valid = s["config"]["channels"]
        elif s["config"]["words_k"] == s["config"]["k"]:
            valid = s["config"]["k"]
        else:
            valid = None
        if valid is None:      # per-pixel layout: flip bit 0 of some pixel word (always a valid channel)
            row, word, bit = int(rng.integers(flat.shape[0])), int(rng.integers(flat.shape[1])), 0
        else:
            row, pos = int(rng.integers(flat.shape[0])), int(rng.integers(valid))
            word, bit = pos // 64, pos % 64
        flat[row, word] ^= np.uint64(1) << np.uint64(bit)
        stage.weight = w.copy()
    return _write(meta, arrays), "values", model(o.x)


_VALUES = ["x", -1, 0, 1, 2, 63, 64, 65, 2 ** 31, 2 ** 62, 2 ** 70, 1.5, float("nan"), float("inf"), None, True,
           False, [], {}, [1], [0, 0], [1, 1], [2, 2], [-1, 1], [2 ** 40, 1], [1, 2, 3], ["1", "1"], {"a": 1}]


def schema(rng, o):
    """A consistent file (valid hashes) whose packed-model schema is altered."""
    meta, arrays = o.parts()
    stages = meta["stages"]
    choice = int(rng.integers(9))
    i = int(rng.integers(len(stages)))
    s = stages[i]
    names = [n for n in arrays if n.startswith(f"{i}/")]
    if choice == 0 and s["config"]:                       # a config entry replaced
        key = list(s["config"])[int(rng.integers(len(s["config"])))]
        s["config"][key] = _VALUES[int(rng.integers(len(_VALUES)))]
    elif choice == 1 and s["kind"] == "float" and s["config"]["options"]:
        key = list(s["config"]["options"])[int(rng.integers(len(s["config"]["options"])))]
        s["config"]["options"][key] = _VALUES[int(rng.integers(len(_VALUES)))]
    elif choice == 2 and names:                            # an array's dtype changed
        n = names[int(rng.integers(len(names)))]
        arrays[n] = arrays[n].astype(rng.choice(["<f4", "<f8", "<i4", "|i1", "<u8", "|b1", "<i8", ">f4", "<c8"]))
    elif choice == 3 and names:                            # an array's shape changed
        n = names[int(rng.integers(len(names)))]
        a = arrays[n]
        how = int(rng.integers(5))
        if how == 0 and a.ndim and len(a) > 1:
            arrays[n] = a[:-1]
        elif how == 1:
            arrays[n] = a.reshape((1,) + a.shape)
        elif how == 2:
            arrays[n] = a.reshape(-1)
        elif how == 3 and a.ndim:
            arrays[n] = np.concatenate([a, a[:1]])
        else:
            arrays[n] = a[..., :0] if a.ndim else a.reshape(1)
    elif choice == 4:                                      # stage order, deletion, duplication
        j = int(rng.integers(len(stages)))
        how = int(rng.integers(3))
        if how == 0:
            stages[i], stages[j] = stages[j], stages[i]
            swap = {str(i): str(j), str(j): str(i)}        # keep each stage's arrays under its new index
            arrays = {swap.get(n.split("/", 1)[0], n.split("/", 1)[0]) + "/" + n.split("/", 1)[1]: a
                      for n, a in arrays.items()}
        elif how == 1:
            del stages[i]
            arrays = {n: a for n, a in arrays.items() if not n.startswith(f"{i}/")}
            arrays = {(f"{int(n.split('/')[0]) - 1}/{n.split('/', 1)[1]}" if int(n.split("/")[0]) > i else n): a
                      for n, a in arrays.items()}
        else:
            stages.append(copy.deepcopy(s))
            for n in names:
                arrays[f"{len(stages) - 1}/{n.split('/', 1)[1]}"] = arrays[n].copy()
    elif choice == 5:                                      # kind or op renamed
        if s["kind"] == "float" and rng.random() < 0.6:
            s["config"]["op"] = str(rng.choice(["linear", "conv2d", "batch_norm", "sign", "prelu", "relu", "flatten",
                                                "max_pool2d", "nope", "__class__"]))
        else:
            s["kind"] = str(rng.choice(["float", "pack_signs", "binary_dense", "binary_conv", "bit_max_pool",
                                        "bit_flatten", "stage", ""]))
    elif choice == 6:                                      # input shape
        meta["input_shape"] = _VALUES[int(rng.integers(len(_VALUES)))] if rng.random() < 0.5 else \
            [int(d) + int(rng.integers(-1, 2)) for d in meta["input_shape"]]
    elif choice == 7 and names:                            # an array's values: out-of-range thresholds, directions
        n = names[int(rng.integers(len(names)))]
        a = arrays[n]
        if a.size:
            flat = a.reshape(-1)
            j = int(rng.integers(flat.size))
            if a.dtype == np.int32:
                flat[j] = int(rng.choice([2 ** 31 - 1, -2 ** 31, 100000, -100000, 300, -300]))
            elif a.dtype == np.int8:
                flat[j] = int(rng.choice([0, 2, -2, 127]))
            elif a.dtype == np.float32:
                flat[j] = float(rng.choice([np.nan, np.inf, -np.inf, 1e38]))
            elif a.dtype == np.uint64:
                flat[j] = np.uint64(2 ** 64 - 1)
    else:                                                  # metadata entries and stage entries
        key = str(rng.choice(["float_bytes", "binary_float_bytes", "stages", "extra"]))
        meta[key] = _VALUES[int(rng.integers(len(_VALUES)))]
        if rng.random() < 0.3:
            stages[i] = {k: v for k, v in s.items() if k != "arrays"}
    return _write(meta, arrays), "schema", None


MUTATIONS = [damage, damage, padding, values, schema, schema]


def check_one(o, blob, kind, expected, folder, index):
    """-> "refused" | "loaded" | a failure description."""
    path = os.path.join(folder, f"case{index}.npz")
    with open(path, "wb") as f:
        f.write(blob)
    try:
        model = deploy.load(path)
    except DeployLoadError as err:
        return "refused" if path in str(err) else f"DeployLoadError without the file name: {err}"
    except Exception as err:  # noqa: BLE001 -- what we count
        return f"{type(err).__name__}: {str(err)[:200]}"
    x = o.x if model.input_shape == o.x.shape[1:] else np.ones((3,) + model.input_shape, np.float32)
    try:
        out = model(x)
        empty = model(x[:0])
    except Exception as err:  # noqa: BLE001
        return f"loaded, then {type(err).__name__} on a batch: {str(err)[:200]}"
    if empty.shape != (0,) + out.shape[1:] or out.ndim != 2 or len(out) != len(x):
        return f"loaded, output shapes {out.shape} / {empty.shape}"
    if kind in ("damage", "padding"):
        if out.dtype != o.outputs.dtype or out.tobytes() != o.outputs.tobytes():
            return f"loaded a {kind} file with different outputs"
    elif kind == "values":
        if out.tobytes() != expected.tobytes():
            return "loaded a valid change with outputs other than the same change in memory"
    return "loaded"


def _cases(cases, rng, archs, originals, counts, failures, folder):
    for index in range(cases):
        arch = archs[index % len(archs)]
        o = originals[arch]
        mutation = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
        blob, kind, expected = mutation(rng, o)
        result = check_one(o, blob, kind, expected, folder, index % 50)
        if result in ("refused", "loaded"):
            counts[kind][result] += 1
        else:
            counts[kind]["FAILED"] += 1
            failures.append((arch, mutation.__name__, kind, result))


def run(cases: int, seed: int, folder: str, archs=("mlp", "vgg", "lenet"), verbose=True):
    rng = np.random.default_rng(seed)
    originals = {a: Original(folder, a) for a in archs}
    counts = collections.defaultdict(collections.Counter)
    failures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # NaN weights in crafted float layers: fine
        _cases(cases, rng, archs, originals, counts, failures, folder)
    if verbose:
        for kind, c in sorted(counts.items()):
            print(f"{kind:>8}: {sum(c.values()):5d} files  refused {c['refused']:5d}  loaded correctly "
                  f"{c['loaded']:5d}  failed {c['FAILED']}")
        for f in failures[:20]:
            print("FAIL", *f)
    return counts, failures



if __name__ == "__main__":
    fuzzing.main(run, __doc__, "wrong outputs")
