"""Fuzzing the XNOR kernels' public entry points on every path, each path in its own subprocess.

Every call is drawn at random: an entry point (``xnor.pack``, ``unpack``, ``pack_scaled``, ``gemm`` on packed or
real rows with each output transform, ``conv2d`` with each pad value and transform, ``maxpool2d``,
``fold_threshold``) and either **valid** arguments -- compared bit for bit (dtype, shape and bytes) with the
plain NumPy reference of :mod:`minibnn.xnor.packing` -- or arguments with **one defect** (a wrong dtype, a
view, an unaligned buffer, an empty or missing axis, K or channels not matching the words, padding bits set,
a huge, negative, bool, float or string integer, a bad transform, None, a list), which must raise the
library's own ``TypeError`` / ``ValueError``: a message ``"xnor.<fn>: ..."`` naming the argument.

A worker runs one path (``MINIBNN_KERNEL=<path>``) in a subprocess, so a crash (a signal) or a hang (the
time bound) is seen by the parent as a failure of that path, not as the end of the run. The worker draws
either with NumPy (``--engine random``, the long run) or with hypothesis (``--engine hypothesis``, the suite:
a failure is shrunk and printed). ``tests/test_kernel_fuzz.py`` runs a few hundred calls per path in the
suite; ``benchmarks/fuzz_kernels.py`` the long run (12,000 calls per path).
"""
from __future__ import annotations

import argparse
import collections
import faulthandler
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ENTRY_POINTS = ("pack", "pack_scaled", "unpack", "gemm", "conv2d", "maxpool2d", "fold_threshold")


# ---- drawing: NumPy or hypothesis behind one interface ---------------------------------------------------------

class RandomChooser:
    def __init__(self, rng):
        self.rng = rng

    def int(self, lo, hi):
        return int(self.rng.integers(lo, hi + 1))

    def pick(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def chance(self, p):
        return bool(self.rng.random() < p)

    def seed(self):
        return self.int(0, 2 ** 31)


class HypothesisChooser:
    def __init__(self, data):
        from hypothesis import strategies as st
        self.data, self.st = data, st

    def int(self, lo, hi):
        return self.data.draw(self.st.integers(lo, hi))

    def pick(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def chance(self, p):
        return self.data.draw(self.st.integers(0, 999)) < p * 1000

    def seed(self):
        return self.data.draw(self.st.integers(0, 2 ** 31))


# ---- values ---------------------------------------------------------------------------------------------------

_SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 1e-30, -1e-30, 3.5, -2.25])


def real_values(ch, shape, dtype):
    rng = np.random.default_rng(ch.seed())
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        v = rng.standard_normal(shape)
        mask = rng.random(shape) < 0.2
        v[mask] = rng.choice(_SPECIAL, size=int(mask.sum()))
        with np.errstate(over="ignore"):
            return v.astype(dtype)
    return rng.integers(max(-128, np.iinfo(dtype).min), min(127, np.iinfo(dtype).max) + 1, size=shape).astype(dtype)


def packed_values(ch, shape, k):
    """Random packed words (..., ceil(k/64)) with clean padding bits."""
    from minibnn.xnor import packing
    rng = np.random.default_rng(ch.seed())
    signs = np.where(rng.random(tuple(shape) + (k,)) < 0.5, -1, 1).astype(np.int8)
    return packing.pack(signs)


def words(k):
    return -(-k // 64)


def a_k(ch):
    return ch.pick([1, 2, 7, 63, 64, 65, 100, 127, 128, 129, 191, 192, 200, 255, 256, 300])


# ---- one call: (fn, callable, expected) -------------------------------------------------------------------------
# expected: ("valid", reference_thunk) or ("invalid", names) -- names: what the error message must mention.

_BAD_INTS = [0, -1, 2 ** 31, 2 ** 62, 2 ** 62 + 1, 2 ** 63, 2 ** 64, -2 ** 63, True, 1.5, "2", None, np.float64(2.0)]


def _view_defect(ch, arr, name):
    """``arr`` made bad in one way: (bad value, names the message must mention)."""
    kinds = ["none", "list", "scalar", "dtype", "noncontig", "unaligned", "ndim", "empty", "complex", "object"]
    kind = ch.pick(kinds)
    if arr.size == 0 and kind in ("noncontig", "unaligned"):     # an empty array is contiguous and aligned
        kind = "dtype"
    if kind == "none":
        return None, [name]
    if kind == "list":
        return arr.tolist(), [name]
    if kind == "scalar":
        return 3, [name]
    if kind == "dtype":
        return arr.astype(ch.pick([np.float32, np.int32, np.uint8, np.bool_, np.int64, np.float16])), [name]
    if kind == "complex":
        return arr.astype(np.complex64), [name]
    if kind == "object":
        return arr.astype(object), [name]
    if kind == "noncontig":
        view = arr[..., ::2] if arr.shape[-1] >= 2 else np.repeat(arr, 2, axis=-1)[..., ::2]
        if view.flags.c_contiguous:          # a one-element view is contiguous whatever its strides
            return arr.astype(np.float32), [name]
        return view, [name]
    if kind == "unaligned":
        buf = np.zeros(arr.nbytes + 8, np.uint8)
        view = buf[1:1 + arr.nbytes].view(arr.dtype).reshape(arr.shape)
        view[...] = arr
        return (view, [name]) if not view.flags.aligned else (arr[..., ::-1], [name])
    if kind == "ndim":
        return arr.reshape((1,) + arr.shape), [name]
    return arr[..., :0], [name]                               # empty last axis


def draw_pack(ch, fn):
    from minibnn import xnor
    from minibnn.xnor import packing
    dtypes = [np.float32, np.float64, np.int8, np.float16, np.int16, np.int32, np.int64, ">f4", ">f8"] \
        if fn == "pack" else [np.float32, np.float64, np.float16, ">f4", ">f8"]
    dtype = ch.pick(dtypes)
    lead = tuple(ch.int(0 if ch.chance(0.1) else 1, 4) for _ in range(ch.int(0, 2)))
    k = a_k(ch)
    x = real_values(ch, lead + (k,), dtype)
    if fn == "pack_scaled" and ch.chance(0.6) and x.size:       # rows that are c · (±1)
        rows = x.reshape(-1, k)
        for r in range(len(rows)):
            if ch.chance(0.7):
                c = np.float64(ch.pick([1.0, 0.5, 3.0, 0.0, 1e-3, np.inf, np.nan]))
                rows[r] = np.where(rows[r] < 0, -c, c)
    call = getattr(xnor, fn)
    ref = getattr(packing, fn)
    if ch.chance(0.35):
        bad, names = _view_defect(ch, x, "x")
        if isinstance(bad, np.ndarray) and fn == "pack" and bad.dtype in (np.float16, np.int32, np.int64) \
                and bad.flags.c_contiguous and bad.flags.aligned and bad.ndim and bad.shape[-1]:
            return fn, (lambda: call(bad)), ("valid", lambda: ref(bad))     # other real dtypes are valid
        if isinstance(bad, np.ndarray) and fn == "pack_scaled" and bad.dtype in (np.float32, np.float16) \
                and bad.flags.c_contiguous and bad.flags.aligned and bad.ndim and bad.shape[-1]:
            return fn, (lambda: call(bad)), ("valid", lambda: ref(bad))
        if isinstance(bad, np.ndarray) and bad.ndim and bad.shape[-1] and bad.dtype.kind in "fi" and \
                bad.flags.c_contiguous and bad.flags.aligned and (fn == "pack" or bad.dtype.kind == "f"):
            return fn, (lambda: call(bad)), ("valid", lambda: ref(bad))
        return fn, (lambda: call(bad)), ("invalid", names)
    return fn, (lambda: call(x)), ("valid", lambda: ref(x))


def draw_unpack(ch):
    from minibnn import xnor
    from minibnn.xnor import packing
    k = a_k(ch)
    lead = tuple(ch.int(0 if ch.chance(0.1) else 1, 4) for _ in range(ch.int(0, 2)))
    p = packed_values(ch, lead, k)
    dtype = ch.pick([np.float32, np.float64, np.int8, np.int16, np.int32, np.float16])
    r = ch.int(0, 5)
    if r == 0:
        bad_dtype = ch.pick([np.uint8, np.bool_, np.uint64, np.complex64, object, "U3", "x"])
        return "unpack", (lambda: xnor.unpack(p, k, dtype=bad_dtype)), ("invalid", ["dtype"])
    if r == 1:
        bad_k = ch.pick(_BAD_INTS + [k + 64, k - 64 if k > 64 else k + 1])
        if isinstance(bad_k, int) and not isinstance(bad_k, bool) and words(bad_k) == p.shape[-1] and bad_k >= k:
            return "unpack", (lambda: xnor.unpack(p, bad_k, dtype=dtype)), (
                "valid", lambda: packing.unpack(p, bad_k, dtype))
        return "unpack", (lambda: xnor.unpack(p, bad_k, dtype=dtype)), ("invalid", ["k", "packed"])
    if r == 2 and k % 64 and p.size:
        q = p.copy()
        q.reshape(-1, q.shape[-1])[0, -1] |= np.uint64(1) << np.uint64(63)
        return "unpack", (lambda: xnor.unpack(q, k, dtype=dtype)), ("invalid", ["packed"])
    if r == 3:
        bad, names = _view_defect(ch, p, "packed")
        if isinstance(bad, np.ndarray) and bad.dtype == np.uint64 and bad.ndim and bad.shape[-1] == p.shape[-1]:
            return "unpack", (lambda: xnor.unpack(bad, k, dtype=dtype)), (
                "valid", lambda: packing.unpack(bad, k, dtype))
        return "unpack", (lambda: xnor.unpack(bad, k, dtype=dtype)), ("invalid", names)
    return "unpack", (lambda: xnor.unpack(p, k, dtype=dtype)), ("valid", lambda: packing.unpack(p, k, dtype))


def _transform(ch, n, k, reach):
    rng = np.random.default_rng(ch.seed())
    kind = ch.pick(["none", "scale", "bias", "both", "threshold", "threshold_dir"])
    t = {}
    if kind in ("scale", "both"):
        t["scale"] = rng.standard_normal(n).astype(np.float32)
    if kind in ("bias", "both"):
        t["bias"] = rng.standard_normal(n).astype(np.float32) * 10
    if kind.startswith("threshold"):
        t["threshold"] = rng.integers(-reach - 2, reach + 3, size=n).astype(np.int32)
        if kind == "threshold_dir":
            t["direction"] = np.where(rng.random(n) < 0.5, -1, 1).astype(np.int8)
    return t


def _bad_transform(ch, n):
    rng = np.random.default_rng(ch.seed())
    r = ch.int(0, 7)
    if r == 0:
        return {"scale": rng.standard_normal(n)}, ["scale"]                       # float64
    if r == 1:
        return {"bias": np.zeros(n + 1, np.float32)}, ["bias"]
    if r == 2:
        return {"threshold": np.zeros(n, np.int64)}, ["threshold"]
    if r == 3:
        return {"threshold": np.zeros(n, np.int32), "direction": np.zeros(n, np.int8)}, ["direction"]
    if r == 4:
        return {"threshold": np.zeros(n, np.int32), "scale": np.ones(n, np.float32)}, ["threshold", "scale"]
    if r == 5:
        return {"direction": np.ones(n, np.int8)}, ["direction"]
    if r == 6:
        return {"scale": [1.0] * n}, ["scale"]
    return {"bias": np.zeros((n, 1), np.float32)}, ["bias"]


def draw_gemm(ch):
    from minibnn import xnor
    from minibnn.xnor import packing
    m, n, k = ch.int(0, 6), ch.int(1, 70), a_k(ch)
    real = ch.chance(0.3)
    a = real_values(ch, (m, k), ch.pick([np.float32, np.float64, np.int8])) if real else packed_values(ch, (m,), k)
    b = packed_values(ch, (n,), k)
    t = _transform(ch, n, k, k)

    def ref(a=a, b=b, k=k, t=t):
        return packing.gemm(packing.pack(a) if real else a, b, k, **t)

    r = ch.int(0, 9)
    if r == 0:
        bad, names = _view_defect(ch, a, "a")
        return "gemm", (lambda: xnor.gemm(bad, b, k, **t)), _maybe_valid_gemm(bad, b, k, t, names)
    if r == 1:
        bad, names = _view_defect(ch, b, "b")
        return "gemm", (lambda: xnor.gemm(a, bad, k, **t)), _maybe_valid_gemm(a, bad, k, t, names)
    if r == 2:
        bad_k = ch.pick(_BAD_INTS + [k + 1, k + 64, max(1, k - 1)])
        return "gemm", (lambda: xnor.gemm(a, b, bad_k, **t)), _maybe_valid_gemm(a, b, bad_k, t, ["k", "a", "b"])
    if r == 3 and k % 64:
        q = b.copy()
        q[ch.int(0, n - 1), -1] |= np.uint64(1) << np.uint64(ch.int(k % 64, 63))
        return "gemm", (lambda: xnor.gemm(a, q, k, **t)), ("invalid", ["b"])
    if r == 4:
        bt, names = _bad_transform(ch, n)
        return "gemm", (lambda: xnor.gemm(a, b, k, **bt)), ("invalid", names)
    return "gemm", (lambda: xnor.gemm(a, b, k, **t)), ("valid", ref)


def _maybe_valid_gemm(a, b, k, t, names):
    """Some one-defect drafts are in fact valid calls (e.g. k still matching the words): then the reference."""
    from minibnn.xnor import packing
    try:
        ok = (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and b.dtype == np.uint64 and b.ndim == 2
              and b.shape[0] and b.shape[1] and b.flags.c_contiguous and b.flags.aligned
              and a.ndim == 2 and a.flags.c_contiguous and a.flags.aligned and a.shape[1]
              and isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 1 <= k <= 2 ** 31 - 1
              and b.shape[1] == words(k) and not (k % 64 and np.any(b[:, -1] >> np.uint64(k % 64))))
        if ok and a.dtype == np.uint64:
            ok = a.shape[1] == words(k) and not (k % 64 and np.any(a[:, -1] >> np.uint64(k % 64)))
            real = False
        elif ok and a.dtype in (np.float32, np.float64, np.int8):
            ok, real = a.shape[1] == k, True
        else:
            ok = False
    except (TypeError, ValueError):
        ok = False
    if not ok:
        return "invalid", names
    return "valid", (lambda: packing.gemm(packing.pack(a) if real else a, b, int(k), **t))


def draw_conv(ch):
    from minibnn import xnor
    from minibnn.xnor import packing
    bsz, h, w = ch.int(0, 2), ch.int(1, 6), ch.int(1, 6)
    c, o = ch.pick([1, 3, 8, 63, 64, 65, 70, 130]), ch.int(1, 66)
    sh, sw, ph, pw = ch.int(1, 3), ch.int(1, 3), ch.int(0, 2), ch.int(0, 2)
    kh, kw = ch.int(1, min(3, h + 2 * ph)), ch.int(1, min(3, w + 2 * pw))
    if ch.chance(0.05):
        sh = sw = ch.pick([2 ** 31 - 1, 2 ** 20])
    pad_value = ch.pick([1, -1, 0])
    x = packed_values(ch, (bsz, h, w), c)
    wt = packed_values(ch, (o, kh, kw), c)
    t = _transform(ch, o, c, kh * kw * c)
    kw_ = dict(stride=(sh, sw), padding=(ph, pw), pad_value=pad_value, **t)

    def ref():
        return packing.conv2d(x, wt, c, **kw_)

    r = ch.int(0, 11)
    if r == 0:
        bad, names = _view_defect(ch, x, "x")
        return "conv2d", (lambda: xnor.conv2d(bad, wt, c, **kw_)), ("invalid", names)
    if r == 1:
        bad, names = _view_defect(ch, wt, "w")
        return "conv2d", (lambda: xnor.conv2d(x, bad, c, **kw_)), ("invalid", names)
    if r == 2:
        name = ch.pick(["stride", "padding"])
        value = ch.pick(_BAD_INTS + [(1,), (1, 2, 3), (2 ** 62, 1), (1, -1), [2 ** 64, 2 ** 64]])
        if name == "padding" and value == 0 and kh <= h and kw <= w:
            return "conv2d", (lambda: xnor.conv2d(x, wt, c, **{**kw_, "padding": 0})), (
                "valid", lambda: packing.conv2d(x, wt, c, **{**kw_, "padding": 0}))
        return "conv2d", (lambda: xnor.conv2d(x, wt, c, **{**kw_, name: value})), ("invalid", [name, "output"])
    if r == 3:
        value = ch.pick([2, -2, True, 0.5, None, "1", 2 ** 64])
        return "conv2d", (lambda: xnor.conv2d(x, wt, c, **{**kw_, "pad_value": value})), ("invalid", ["pad_value"])
    if r == 4:
        value = ch.pick(_BAD_INTS + [c + 64, c + 1 if c % 64 else c - 1])
        if type(value) is int and value == c + 1 and words(c + 1) == words(c):   # bit c is clear: still valid
            return "conv2d", (lambda: xnor.conv2d(x, wt, value, **kw_)), (
                "valid", lambda: packing.conv2d(x, wt, value, **kw_))
        return "conv2d", (lambda: xnor.conv2d(x, wt, value, **kw_)), ("invalid", ["channels", "x", "w"])
    if r == 5 and c % 64:
        q = wt.copy()
        q.reshape(-1, q.shape[-1])[0, -1] |= np.uint64(1) << np.uint64(63)
        return "conv2d", (lambda: xnor.conv2d(x, q, c, **kw_)), ("invalid", ["w"])
    if r == 6:
        bt, names = _bad_transform(ch, o)
        kw2 = dict(stride=(sh, sw), padding=(ph, pw), pad_value=pad_value, **bt)
        return "conv2d", (lambda: xnor.conv2d(x, wt, c, **kw2)), ("invalid", names)
    if r == 7:                                    # huge padding: an output too large, refused before allocating
        big = ch.pick([2 ** 40, 2 ** 31 - 1, 2 ** 62])
        return "conv2d", (lambda: xnor.conv2d(x, wt, c, **{**kw_, "padding": big, "stride": 1})), (
            "invalid", ["padding", "output"])
    return "conv2d", (lambda: xnor.conv2d(x, wt, c, **kw_)), ("valid", ref)


def draw_maxpool(ch):
    from minibnn import xnor
    from minibnn.xnor import packing
    bsz, h, w, wc = ch.int(0, 2), ch.int(1, 7), ch.int(1, 7), ch.int(1, 3)
    kh, kw = ch.int(1, 3), ch.int(1, 3)
    ph, pw = ch.int(0, kh // 2), ch.int(0, kw // 2)
    kh, kw = min(kh, h + 2 * ph), min(kw, w + 2 * pw)
    ph, pw = min(ph, kh // 2), min(pw, kw // 2)
    stride = None if ch.chance(0.3) else (ch.int(1, 3), ch.int(1, 3))
    rng = np.random.default_rng(ch.seed())
    x = rng.integers(0, 2 ** 63, size=(bsz, h, w, wc), dtype=np.uint64) * np.uint64(2) + \
        rng.integers(0, 2, size=(bsz, h, w, wc), dtype=np.uint64)
    r = ch.int(0, 7)
    if r == 0:
        bad, names = _view_defect(ch, x, "x")
        return "maxpool2d", (lambda: xnor.maxpool2d(bad, (kh, kw), stride, (ph, pw))), ("invalid", names)
    if r == 1:
        name = ch.pick(["kernel_size", "stride", "padding"])
        value = ch.pick(_BAD_INTS + [(1,), (2 ** 62, 1), [2 ** 64, 1], (2 ** 32, 2 ** 32)])
        args = {"kernel_size": (kh, kw), "stride": stride, "padding": (ph, pw), name: value}
        if value is None and name == "stride":
            return "maxpool2d", (lambda: xnor.maxpool2d(x, **args)), ("valid", lambda: packing.maxpool2d(x, **args))
        if name == "padding" and value == 0 and kh <= h and kw <= w:
            return "maxpool2d", (lambda: xnor.maxpool2d(x, **args)), ("valid", lambda: packing.maxpool2d(x, **args))
        return "maxpool2d", (lambda: xnor.maxpool2d(x, **args)), ("invalid", [name, "kernel", "output"])
    if r == 2:                                    # the hang: a huge kernel with padding
        return "maxpool2d", (lambda: xnor.maxpool2d(x, 2 ** 62, padding=2 ** 61)), ("invalid",
                                                                                   ["kernel", "output"])
    return "maxpool2d", (lambda: xnor.maxpool2d(x, (kh, kw), stride, (ph, pw))), (
        "valid", lambda: packing.maxpool2d(x, (kh, kw), stride, (ph, pw)))


def draw_fold(ch):
    from minibnn import xnor
    rng = np.random.default_rng(ch.seed())
    n, k = ch.int(1, 20), ch.int(1, 200)
    scale = rng.standard_normal(n).astype(np.float32) * np.float32(ch.pick([1.0, 1e-3, 1e3]))
    scale[rng.random(n) < 0.15] = 0
    bias = (rng.standard_normal(n) * k / 2).astype(np.float32)
    bias[rng.random(n) < 0.15] = np.round(bias[:1])
    r = ch.int(0, 5)
    if r == 0:
        s2 = scale.copy()
        s2[0] = ch.pick([np.nan, np.inf, -np.inf])
        return "fold_threshold", (lambda: xnor.fold_threshold(s2, bias, k)), ("invalid", ["scale"])
    if r == 1:
        value = ch.pick(_BAD_INTS)
        return "fold_threshold", (lambda: xnor.fold_threshold(scale, bias, value)), ("invalid", ["k"])
    if r == 2:
        return "fold_threshold", (lambda: xnor.fold_threshold(scale, bias[:-1] if n > 1 else bias[:0], k)), (
            "invalid", ["scale", "bias"])

    def ref():                          # brute force: acc >= t (direction +1) or acc <= t (-1) for every acc
        acc = np.arange(-k, k + 1, dtype=np.int32)[:, None]
        return (acc.astype(np.float32) * scale + bias) >= 0
    return "fold_threshold", (lambda: xnor.fold_threshold(scale, bias, k)), ("fold", ref)


DRAW = {"pack": lambda ch: draw_pack(ch, "pack"), "pack_scaled": lambda ch: draw_pack(ch, "pack_scaled"),
        "unpack": draw_unpack, "gemm": draw_gemm, "conv2d": draw_conv, "maxpool2d": draw_maxpool,
        "fold_threshold": draw_fold}


# ---- layers: the same rule for the layer entry points -------------------------------------------------------------

LAYERS = ("Linear", "Conv2d", "BinaryLinear", "BinaryConv2d", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d",
          "BatchNorm1d", "BatchNorm2d")
_LAYER_DEFECTS = ("none", "none", "none", "nan", "empty", "float64", "int", "complex", "object", "str", "None",
                  "bool", "features", "ndim", "list", "scalar")


def _build(name, seed, use_kernel):
    from minibnn import nn
    rng = np.random.default_rng(seed)
    f, c, o = int(rng.integers(1, 70)), int(rng.integers(1, 5)), int(rng.integers(1, 6))
    k, p, s = int(rng.integers(1, 4)), int(rng.integers(0, 2)), int(rng.integers(1, 3))
    if name == "Linear":
        return nn.Linear(f, o, rng=rng), (f,)
    if name == "BinaryLinear":
        return nn.BinaryLinear(f, o, rng=rng, use_kernel=use_kernel), (f,)
    if name == "Conv2d":
        return nn.Conv2d(c, o, k, stride=s, padding=p, rng=rng), (c, k + 3, k + 2)
    if name == "BinaryConv2d":
        pad = [1.0, -1.0, 0.0][int(rng.integers(3))]
        return nn.BinaryConv2d(c, o, k, stride=s, padding=p, pad_values=pad, rng=rng, use_kernel=use_kernel), \
            (c, k + 3, k + 2)
    if name in ("MaxPool2d", "AvgPool2d"):
        return getattr(nn, name)(k, stride=s, padding=min(p, k // 2)), (c, k + 3, k + 2)
    if name == "GlobalAvgPool2d":
        return nn.GlobalAvgPool2d(), (c, 3, 4)
    norm = getattr(nn, name)(c if name == "BatchNorm2d" else f)
    norm.running_mean[:] = rng.standard_normal(norm.num_features)
    return norm.eval(), ((c, 3, 4) if name == "BatchNorm2d" else (f,))


def _own_error(err) -> bool:
    """Raised by minibnn's own code (its last frame in the package), not by NumPy deep inside."""
    import traceback
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and os.sep + "minibnn" + os.sep in frames[-1].filename


def check_layer(ch) -> tuple:
    from minibnn import no_grad
    name, defect = ch.pick(LAYERS), ch.pick(_LAYER_DEFECTS)
    seed = ch.seed()
    layer, shape = _build(name, seed, None)
    rng = np.random.default_rng(ch.seed())
    n = ch.int(1, 4)
    x = rng.standard_normal((n,) + shape).astype(np.float32)
    if defect == "nan":
        x.reshape(-1)[rng.integers(0, x.size, size=3)] = [np.nan, np.inf, -np.inf]
    dense = len(shape) == 1
    pool = name in ("MaxPool2d", "AvgPool2d", "GlobalAvgPool2d")
    valid = defect in ("none", "nan", "empty", "float64") or (defect == "features" and pool)
    # accepted (then exactly like the float array) or refused: both fine
    maybe = defect in ("int", "bool", "list") or (defect == "ndim" and dense)
    arg = {"none": x, "nan": x, "empty": x[:0], "float64": x.astype(np.float64), "int": np.rint(x).astype(np.int32),
           "complex": x.astype(np.complex64), "object": x.astype(object), "str": x.astype(str), "None": None,
           "bool": x > 0, "features": np.zeros((n, shape[0] + 1) + shape[1:], np.float32),
           "ndim": x.reshape((1,) + x.shape), "list": x.tolist(), "scalar": 3.0}[defect]
    if defect == "ndim" and name == "GlobalAvgPool2d":
        arg = x.reshape(x.shape[:2] + (-1,))
    try:
        with no_grad(), np.errstate(all="ignore"):
            out = layer(arg).data
    except (TypeError, ValueError) as err:
        if valid:
            return f"layer {name}", defect, f"valid input refused: {type(err).__name__}: {str(err)[:200]}"
        if not _own_error(err):
            return f"layer {name}", defect, f"a NumPy error, not the library's: {type(err).__name__}: {str(err)[:200]}"
        return f"layer {name}", "invalid", "ok"
    except Exception as err:  # noqa: BLE001
        return f"layer {name}", defect, f"foreign exception {type(err).__name__}: {str(err)[:200]}"
    if not (valid or maybe):
        return f"layer {name}", defect, f"accepted a {defect} input"
    with no_grad(), np.errstate(all="ignore"):
        ref_in = x[:0] if defect == "empty" else x
        if defect in ("int", "bool", "features"):
            ref_in = np.asarray(arg, np.float32)
        want = layer(ref_in if len(ref_in) else x).data
        if name == "BatchNorm1d" and defect == "ndim":    # (1, C, L): per channel on axis 1, as PyTorch
            want = layer(np.ascontiguousarray(arg[0].T)).data.T[None]
        if name.startswith("Binary"):                      # the kernel path against the float path
            twin, _ = _build(name, seed, False)
            want = twin(ref_in if len(ref_in) else x).data
    if defect == "empty":
        ok = out.shape == (0,) + want.shape[1:]
    else:
        ok = out.size == want.size and (defect == "float64" or np.array_equal(out.reshape(want.shape), want,
                                                                              equal_nan=True))
    return f"layer {name}", "valid" if valid else "maybe", "ok" if ok else \
        f"wrong output for {defect}: {out.dtype}{out.shape} vs {want.dtype}{want.shape}"


# ---- checking one call ----------------------------------------------------------------------------------------

def _same(got, want) -> bool:
    if isinstance(want, tuple):
        return isinstance(got, tuple) and len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want))
    if not isinstance(got, np.ndarray) or got.dtype != want.dtype or got.shape != want.shape:
        return False
    if got.dtype.kind == "f":
        return bool(np.array_equal(got, want, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(want)))
    return got.tobytes() == want.tobytes()


def check_call(ch) -> tuple:
    """Draw and run one call: (entry point, "valid"/"invalid", outcome) with outcome "ok" or a failure."""
    fn = ch.pick(ENTRY_POINTS)
    fn, call, (mode, info) = DRAW[fn](ch)
    try:
        with np.errstate(all="ignore"):
            got = call()
    except (TypeError, ValueError) as err:
        msg = str(err)
        if mode != "invalid":
            return fn, mode, f"valid call refused: {type(err).__name__}: {msg[:300]}"
        if not msg.startswith(f"xnor.{fn}:"):
            return fn, mode, f"error not in the library's format: {type(err).__name__}: {msg[:300]}"
        if not any(name in msg for name in info):
            return fn, mode, f"error does not name {info}: {msg[:300]}"
        return fn, mode, "ok"
    except Exception as err:  # noqa: BLE001 -- a foreign exception is what we look for
        return fn, mode, f"foreign exception {type(err).__name__}: {str(err)[:300]}"
    if mode == "invalid":
        return fn, mode, f"accepted an invalid call ({info}) and returned {type(got).__name__}"
    if mode == "fold":
        t, d = got
        acc = np.arange(-len(info()) // 2 + 1, len(info()) // 2 + 1)[:, None]
        mine = np.where(d > 0, acc >= t, acc <= t)
        return fn, "valid", "ok" if np.array_equal(mine, info()) else "fold_threshold disagrees with the epilogue"
    with np.errstate(all="ignore"):
        want = info()
    return fn, mode, "ok" if _same(got, want) else "wrong answer: differs from minibnn.xnor.packing"


# ---- the worker (one path, in a subprocess) and the parent --------------------------------------------------------

def worker(path: str, calls: int, seed: int, engine: str, budget: float, target: str = "kernels") -> None:
    faulthandler.enable()
    faulthandler.dump_traceback_later(budget, exit=True)     # a hang: print where, exit non-zero
    from minibnn import xnor
    assert xnor.active_path() == path, (xnor.active_path(), path)
    counts = collections.Counter()
    failures = []

    def one(ch):
        fn, mode, outcome = (check_call if target == "kernels" else check_layer)(ch)
        counts[f"{fn}/{mode}"] += 1
        counts["calls"] += 1
        if outcome != "ok":
            failures.append((fn, mode, outcome))
        return outcome

    if engine == "random":
        rng = np.random.default_rng(seed)
        for _ in range(calls):
            one(RandomChooser(rng))
    else:
        from hypothesis import HealthCheck, given, settings, strategies as st

        @settings(max_examples=calls, deadline=None, database=None, derandomize=True, print_blob=True,
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def fuzz(data):
            outcome = one(HypothesisChooser(data))
            assert outcome == "ok", outcome

        try:
            fuzz()
        except AssertionError as err:
            failures.append(("hypothesis", "shrunk", str(err)[:500]))
    print(json.dumps({"path": path, "counts": counts, "failures": failures[:50], "n_failures": len(failures)}))


def run_paths(paths, calls: int, seed: int, engine: str, timeout: float, target: str = "kernels"):
    """Run one worker per path; returns {path: {"calls", "crash", "hang", "failures", "counts", "seconds"}}."""
    results = {}
    for path in paths:
        env = dict(os.environ, MINIBNN_KERNEL=path, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        start = time.time()
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", path, "--calls", str(calls), "--seed",
               str(seed), "--engine", engine, "--budget", str(timeout), "--target", target]
        res = {"crash": None, "hang": False, "failures": [], "counts": {}, "calls": 0}
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            res["hang"] = True
        else:
            if proc.returncode < 0:
                res["crash"] = f"signal {-proc.returncode}: {proc.stderr[-2000:]}"
            elif proc.returncode != 0 or not proc.stdout.strip():
                hung = "Timeout" in proc.stderr
                res["hang"] = hung
                res["crash"] = None if hung else f"exit {proc.returncode}: {proc.stderr[-2000:]}"
            else:
                out = json.loads(proc.stdout.strip().splitlines()[-1])
                res.update(failures=out["failures"], counts=out["counts"], calls=out["counts"].get("calls", 0),
                           n_failures=out["n_failures"])
        res["seconds"] = round(time.time() - start, 1)
        results[path] = res
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker")
    parser.add_argument("--calls", type=int, default=12000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=("random", "hypothesis"), default="random")
    parser.add_argument("--budget", type=float, default=1800)
    parser.add_argument("--paths", default=None, help="comma-separated; default: every available path")
    parser.add_argument("--target", choices=("kernels", "layers"), default="kernels")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.calls, args.seed, args.engine, args.budget, args.target)
        return
    from minibnn import xnor
    paths = args.paths.split(",") if args.paths else list(xnor.available_paths())
    results = run_paths(paths, args.calls, args.seed, args.engine, args.budget, args.target)
    bad = 0
    for path, r in results.items():
        n = r.get("n_failures", len(r["failures"]))
        print(f"{path:>7}: {r['calls']:6d} calls in {r['seconds']:6.1f} s  crash: {'yes' if r['crash'] else 'no'}"
              f"  hang: {'yes' if r['hang'] else 'no'}  wrong answers / foreign or unclear errors: {n}")
        if r["crash"]:
            print("   ", r["crash"][-600:])
        for f in r["failures"][:10]:
            print("    FAIL", *f)
        per = collections.Counter()
        for key, v in r["counts"].items():
            if "/" in key:
                per[key] += v
        if per:
            print("    " + ", ".join(f"{k} {v}" for k, v in sorted(per.items())))
        bad += bool(r["crash"]) + r["hang"] + n
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
