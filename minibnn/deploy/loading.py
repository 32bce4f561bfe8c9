"""Loading a packed model: trust nothing in the file, so a loaded model either runs correctly or is refused.

:meth:`PackedModel.save <minibnn.deploy.runtime.PackedModel.save>` writes one archive (:mod:`minibnn.archive`:
an ``.npz`` with a SHA-256 per array, never pickled). :func:`load` reads it with
:func:`~minibnn.archive.read_archive` and then checks the packed model's own schema, raising only
:class:`DeployLoadError` (a ``ValueError``) naming the file and what is wrong:

* the metadata: ``input_shape`` (1 to 4 positive extents, at most ``MAX_SAMPLE`` values a sample), the stage
  list (each ``{"kind", "config", "arrays"}`` of a registered kind), every config entry of the right type and
  range (ints are ints, bools are bools, strides >= 1, paddings at most the kernel, no unknown keys);
* every array: its dtype (float32 for float parameters and thresholds, uint64 packed weights, int32
  thresholds, int8 directions of ±1, bool negations; a float threshold may be ±inf or NaN: constant
  signs, as freeze writes them for a constant channel), its shape against the stage config and against the
  other arrays of its stage, every array of the file used by exactly one stage;
* the packed weights' **padding bits** (past K in a row's last word; past C in each pixel's last word of a
  convolution kernel or a flattened NHWC map; likewise the min-pool flip mask) must be clear -- a set padding
  bit would count in the XNOR-popcount and silently change the outputs;
* integer **thresholds** within [-K - 1, K + 1], the reach of a K-long ±1 dot product (anything further out is a
  constant, which freeze writes as -K - 1 or K + 1); a binary layer's float scale and bias finite;
* the stages **fit together**: the model is run once on a zero sample, stage by stage, checking each stage's
  input (channel counts of per-channel arrays, packed widths, the pixel layout of flattened bits); any failure
  there is the file's fault and refused.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from minibnn import models, deploy
    >>> packed = deploy.freeze(models.bnn_mlp(in_features=8, num_classes=3, hidden_units=16,
    ...                                       rng=np.random.default_rng(0)), (8,))
    >>> path = os.path.join(tempfile.mkdtemp(), "mlp.npz")
    >>> packed.save(path)
    >>> x = np.ones((2, 8), np.float32)
    >>> bool(np.array_equal(deploy.load(path)(x), packed(x)))
    True
    >>> with open(path, "r+b") as f:                     # damage one byte of the file
    ...     _ = f.seek(300); _ = f.write(b"\\xff")
    >>> deploy.load(path)
    Traceback (most recent call last):
    ...
    minibnn.deploy.loading.DeployLoadError: .../mlp.npz...
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..archive import read_archive
from ..xnor import packing
from .runtime import (FLOAT_OPS, FORMAT, STAGES, VERSION, BinaryConv, BinaryDense, BitFlatten, BitMaxPool, FloatOp,
                      PackedModel, PackSigns, Stage)

__all__ = ["DeployLoadError", "load", "MAX_SAMPLE", "MAX_WINDOW"]

MAX_SAMPLE = 2 ** 24        #: at most this many values in one input sample
MAX_WINDOW = 2 ** 16        #: bound on kernel sizes, strides and paddings in a file
_MISSING = object()


class DeployLoadError(ValueError):
    """A packed-model file that cannot be loaded: truncated, corrupt, crafted or of another format."""


class _Entry:
    """The checks of one stage's config and arrays; every complaint names the file and the stage."""

    def __init__(self, archive, index: int, kind: str, config: Dict[str, Any], arrays: Dict[str, np.ndarray]):
        self.archive, self.where = archive, f"stage {index} ({kind})"
        self.config, self.arrays = config, dict(arrays)
        self.used: set = set()

    def fail(self, what: str) -> DeployLoadError:
        return self.archive.fail(f"{self.where}: {what}")

    # -- config entries --
    def keys(self, required, optional=()):
        extra = sorted(set(self.config) - set(required) - set(optional))
        missing = sorted(set(required) - set(self.config))
        if extra or missing:
            raise self.fail(f"its config has unknown keys {extra} or lacks {missing}")

    def get(self, key, types, expected):
        if key not in self.config:
            raise self.fail(f"its config lacks {key!r}")
        value = self.config[key]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise self.fail(f"config {key!r} must be {expected}, got {value!r:.80}")
        return value

    def int(self, key, lo, hi):
        value = self.get(key, (int,), "an int")
        if not lo <= value <= hi:
            raise self.fail(f"config {key!r} must be in [{lo}, {hi}], got {value}")
        return value

    def pair(self, key, lo, hi) -> Tuple[int, int]:
        value = self.get(key, (list,), "a pair of ints")
        if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi
                                  for v in value):
            raise self.fail(f"config {key!r} must be a pair of ints in [{lo}, {hi}], got {value!r:.80}")
        return int(value[0]), int(value[1])

    def bool(self, key):
        return self.get(key, (bool,), "true or false")

    def real(self, key, nullable=False, lo=None):
        value = self.config.get(key, _MISSING)
        if value is None and nullable:
            return None
        value = float(self.get(key, (int, float), "a number" + (" or null" if nullable else "")))
        if not np.isfinite(value) or (lo is not None and value < lo):
            raise self.fail(f"config {key!r} must be a finite number" + (f" >= {lo}" if lo is not None else "")
                            + f", got {value!r}")
        return value

    # -- arrays --
    def array(self, name, dtype, shape=None, ndim=None, optional=False):
        if name not in self.arrays:
            if optional:
                return None
            raise self.fail(f"it lacks the array {name!r}")
        self.used.add(name)
        value = self.arrays[name]
        if value.dtype != np.dtype(dtype):
            raise self.fail(f"the array {name!r} has dtype {value.dtype}, expected {np.dtype(dtype)}")
        if ndim is not None and value.ndim != ndim:
            raise self.fail(f"the array {name!r} has shape {value.shape}, expected {ndim} dimensions")
        if shape is not None and value.shape != tuple(shape):
            raise self.fail(f"the array {name!r} has shape {value.shape}, expected {tuple(shape)}")
        if value.size == 0 and value.ndim:
            raise self.fail(f"the array {name!r} is empty {value.shape}")
        return value

    def done(self):
        extra = sorted(set(self.arrays) - self.used)
        if extra:
            raise self.fail(f"it has arrays it does not use: {extra}")


# ---- stage by stage ---------------------------------------------------------------------------------------------

_F32 = np.float32
_FLOAT_OPTIONS = {"linear": (), "conv2d": ("stride", "padding", "pad_value"), "batch_norm": ("eps", "fixed_var"),
                  "max_pool2d": ("kernel", "stride", "padding"), "avg_pool2d": ("kernel", "stride", "padding"),
                  "global_avg_pool2d": (), "flatten": ("start_dim", "end_dim"), "hardtanh": ("min_val", "max_val"),
                  "relu": (), "relu6": (), "tanh": (), "sigmoid": (), "leaky_relu": ("negative_slope",),
                  "prelu": (), "sign": ("nan_plus",)}


def _float(e: _Entry) -> FloatOp:
    e.keys(("op", "options"))
    op = e.get("op", (str,), "a float op name")
    if op not in _FLOAT_OPTIONS or op not in FLOAT_OPS:
        raise e.fail(f"unknown float op {op!r:.80}")
    options = e.get("options", (dict,), "a dict")
    e.where += f" {op}"
    o = _Entry(e.archive, 0, "", options, {})
    o.where, o.fail = e.where, e.fail
    o.keys(_FLOAT_OPTIONS[op])
    a: Dict[str, np.ndarray] = {}
    if op in ("linear", "conv2d"):
        a["weight"] = e.array("weight", _F32, ndim=2 if op == "linear" else 4)
        a["bias"] = e.array("bias", _F32, shape=a["weight"].shape[:1], optional=True)
        if op == "conv2d":
            kh, kw = a["weight"].shape[2:]
            o.pair("stride", 1, MAX_WINDOW)
            o.pair("padding", 0, min(MAX_WINDOW, max(kh, kw)))
            o.real("pad_value")
    elif op == "batch_norm":
        a["running_mean"] = e.array("running_mean", _F32, ndim=1)
        c = a["running_mean"].shape
        a["running_var"] = e.array("running_var", _F32, shape=c)
        a["weight"] = e.array("weight", _F32, shape=c, optional=True)
        a["bias"] = e.array("bias", _F32, shape=c, optional=True)
        o.real("eps", lo=0.0)
        o.real("fixed_var", nullable=True, lo=0.0)
    elif op in ("max_pool2d", "avg_pool2d"):
        kh, kw = o.pair("kernel", 1, MAX_WINDOW)
        o.pair("stride", 1, MAX_WINDOW)
        ph, pw = o.pair("padding", 0, MAX_WINDOW)
        if 2 * ph > kh or 2 * pw > kw:
            raise e.fail(f"padding {[ph, pw]} must be at most half the kernel {[kh, kw]}")
    elif op == "flatten":
        o.int("start_dim", -8, 8)
        o.int("end_dim", -8, 8)
    elif op == "hardtanh":
        if o.real("min_val") > o.real("max_val"):
            raise e.fail("min_val must be <= max_val")
    elif op == "leaky_relu":
        o.real("negative_slope")
    elif op == "prelu":
        a["weight"] = e.array("weight", _F32, ndim=1)
    elif op == "sign":
        o.bool("nan_plus")
        shift = e.array("shift", _F32, optional=True)
        if shift is not None and shift.ndim > 1:
            raise e.fail(f"the array 'shift' must be a number or a vector, got shape {shift.shape}")
        a["shift"] = shift
    return FloatOp(op, {k: v for k, v in a.items() if v is not None}, dict(options))


def _pack_signs(e: _Entry) -> PackSigns:
    e.keys(("channels_last", "nan_plus"))
    threshold = e.array("threshold", _F32, ndim=1)
    negate = e.array("negate", np.bool_, shape=threshold.shape, optional=True)
    return PackSigns(threshold, negate, e.bool("channels_last"), e.bool("nan_plus"))


def _clear_padding(e: _Entry, name: str, words: np.ndarray, valid: int) -> None:
    """The bits past ``valid`` in the last axis of ``words`` (uint64) must be clear."""
    if words.shape[-1] != packing.packed_width(valid):
        raise e.fail(f"the array {name!r} has {words.shape[-1]} words per row, expected "
                     f"{packing.packed_width(valid)} for {valid} bits")
    mask = ~packing.valid_bits(valid)
    if np.any(words & mask):
        raise e.fail(f"the array {name!r} has padding bits set (past bit {valid} of its words); they must be "
                     f"clear or they change the outputs")


def _transform(e: _Entry, n: int, reach: int) -> Dict[str, Optional[np.ndarray]]:
    threshold = e.array("threshold", np.int32, shape=(n,), optional=True)
    if threshold is not None:
        if np.any(threshold < -reach - 1) or np.any(threshold > reach + 1):
            raise e.fail(f"the array 'threshold' has values outside [{-reach - 1}, {reach + 1}], the reach of "
                         f"its {reach}-long dot products")
        direction = e.array("direction", np.int8, shape=(n,), optional=True)
        if direction is not None and not np.all((direction == 1) | (direction == -1)):
            raise e.fail("the array 'direction' must hold only +1 and -1")
        return {"threshold": threshold, "direction": direction}
    out = {"scale": e.array("scale", _F32, shape=(n,), optional=True),
           "bias": e.array("bias", _F32, shape=(n,), optional=True)}
    for name, value in out.items():
        if value is not None and not np.all(np.isfinite(value)):
            raise e.fail(f"the array {name!r} must be finite")
    return out


def _binary_dense(e: _Entry) -> BinaryDense:
    e.keys(("k", "words_k", "name"))
    weight = e.array("weight", np.uint64, ndim=2)
    k = e.int("k", 1, 64 * weight.shape[1])
    words_k = e.int("words_k", k, 64 * weight.shape[1])
    if words_k != k and words_k != 64 * weight.shape[1]:
        raise e.fail(f"words_k={words_k} must be k={k} or 64 x {weight.shape[1]} words")
    if words_k == k:
        _clear_padding(e, "weight", weight, k)
    name = e.get("name", (str,), "a string")
    return BinaryDense(weight, k, words_k, name=name, **_transform(e, len(weight), words_k))


def _binary_conv(e: _Entry) -> BinaryConv:
    e.keys(("channels", "stride", "padding", "pad_value", "name"))
    weight = e.array("weight", np.uint64, ndim=4)
    o, kh, kw, words = weight.shape
    channels = e.int("channels", 1, 64 * words)
    _clear_padding(e, "weight", weight, channels)
    if kh * kw * channels > 2 ** 31 - 2:
        raise e.fail("its dot products are too long for int32 accumulators")
    stride = e.pair("stride", 1, MAX_WINDOW)
    padding = e.pair("padding", 0, min(MAX_WINDOW, max(kh, kw)))
    pad_value = e.get("pad_value", (int,), "+1, -1 or 0")
    if pad_value not in (1, -1, 0):
        raise e.fail(f"config 'pad_value' must be +1, -1 or 0, got {pad_value}")
    name = e.get("name", (str,), "a string")
    return BinaryConv(weight, channels, stride, padding, pad_value, name=name,
                      **_transform(e, o, kh * kw * channels))


def _bit_max_pool(e: _Entry) -> BitMaxPool:
    e.keys(("kernel", "stride", "padding"))
    kernel = e.pair("kernel", 1, MAX_WINDOW)
    stride = e.pair("stride", 1, MAX_WINDOW)
    padding = e.pair("padding", 0, MAX_WINDOW)
    if 2 * padding[0] > kernel[0] or 2 * padding[1] > kernel[1]:
        raise e.fail(f"padding {list(padding)} must be at most half the kernel {list(kernel)}")
    return BitMaxPool(kernel, stride, padding, e.array("flip", np.uint64, ndim=1, optional=True))


def _bit_flatten(e: _Entry) -> BitFlatten:
    e.keys(())
    return BitFlatten()


_RESTORE = {"float": _float, "pack_signs": _pack_signs, "binary_dense": _binary_dense, "binary_conv": _binary_conv,
            "bit_max_pool": _bit_max_pool, "bit_flatten": _bit_flatten}


# ---- the stages together: one dry run on a zero sample -----------------------------------------------------------

class _Layout:
    """What the dry run knows of the bits flowing between stages: channels per pixel of NHWC bits, and
    (pixels, channels) of a flattened map."""

    def __init__(self):
        self.channels: Optional[int] = None       # NHWC bits: channels per pixel
        self.flat: Optional[Tuple[int, int]] = None   # after BitFlatten: (pixels, channels)


def _expect(stage: Stage, x: np.ndarray, lay: _Layout, fail) -> None:
    """Check ``stage``'s input ``x`` (and the layout of its bits) before the dry run runs it."""
    def need(ok, what):
        if not ok:
            raise fail(f"{what}; its input has shape {x.shape} and dtype {x.dtype}")

    bits = x.dtype == np.uint64
    if isinstance(stage, FloatOp):
        need(not bits and x.ndim >= 2, "a float stage must follow float stages")
        a, c = stage._arrays, x.shape[1]
        if stage.op == "batch_norm":
            need(x.ndim in (2, 3, 4) and a["running_mean"].shape == (c,), "its statistics must match the channels")
        elif stage.op == "prelu":
            need(a["weight"].size in (1, c), "its weight must be one value or one per channel")
        elif stage.op == "sign" and "shift" in a and a["shift"].ndim:
            need(a["shift"].shape == (c,), "its shift must be one value or one per channel")
        elif stage.op == "linear":
            need(x.ndim == 2 and x.shape[1] == a["weight"].shape[1], "its weight must match the features")
        elif stage.op == "conv2d":
            need(x.ndim == 4 and x.shape[1] == a["weight"].shape[1], "its weight must match the channels")
        elif stage.op in ("max_pool2d", "avg_pool2d", "global_avg_pool2d"):
            need(x.ndim == 4, "a pool takes (N, C, H, W)")
    elif isinstance(stage, PackSigns):
        need(not bits and x.ndim in (2, 4) and stage.threshold.shape == (x.shape[1],),
             "its thresholds must be one per input channel")
        need(not stage.channels_last or x.ndim == 4, "channels_last packs (N, C, H, W) inputs")
        if stage.channels_last:
            lay.channels, lay.flat = x.shape[1], None
        else:
            lay.channels, lay.flat = None, None
            need(stage.threshold.size == x.shape[1], "its thresholds must be one per channel")
    elif isinstance(stage, BinaryConv):
        need(bits and x.ndim == 4 and lay.channels == stage.channels, "it takes NHWC bits of its channels")
    elif isinstance(stage, BinaryDense):
        need(bits and x.ndim == 2 and x.shape[1] == stage.weight.shape[1], "it takes rows of its packed width")
        if lay.flat is None:
            need(stage.words_k == stage.k, "words_k differs from k only after flattened NHWC bits")
        else:
            pixels, c = lay.flat
            need(stage.k == pixels * c, f"k must be pixels x channels = {pixels} x {c}")
            if stage.words_k != stage.k:
                per_pixel = stage.weight.reshape(len(stage.weight), pixels, -1)
                _clear_padding(_Stub(fail), "weight", per_pixel, c)
            else:
                need(c % 64 == 0 or pixels == 1, "after flattened bits whose channels do not fill their words, "
                     "words_k must be 64 x words")
    elif isinstance(stage, BitMaxPool):
        need(bits and x.ndim == 4 and lay.channels is not None, "it takes NHWC bits")
        if stage.flip is not None:
            need(stage.flip.shape == (x.shape[3],), "its flip mask must have one word per pixel word")
            _clear_padding(_Stub(fail), "flip", stage.flip, lay.channels)
    elif isinstance(stage, BitFlatten):
        need(bits and x.ndim == 4 and lay.channels is not None, "it takes NHWC bits")
        lay.flat, lay.channels = (x.shape[1] * x.shape[2], lay.channels), None


class _Stub:
    def __init__(self, fail):
        self.fail = fail


def _after(stage: Stage, out: np.ndarray, lay: _Layout) -> None:
    """Update the layout after ``stage`` wrote ``out``."""
    if isinstance(stage, BinaryConv):
        lay.channels = len(stage.weight) if stage.emits_bits else None
    elif isinstance(stage, BinaryDense):
        lay.channels, lay.flat = None, None
    elif isinstance(stage, FloatOp):
        lay.channels, lay.flat = None, None


def _dry_run(model: PackedModel, archive) -> None:
    x = np.zeros((1,) + model.input_shape, np.float32)
    lay = _Layout()
    for i, stage in enumerate(model.stages):
        def fail(what, i=i, stage=stage):
            return archive.fail(f"stage {i} ({stage.kind}): {what}")
        _expect(stage, x, lay, fail)
        try:
            out = stage.run(x)
        except Exception as err:     # noqa: BLE001 -- whatever a stage raises here, the file's stages don't fit
            raise fail(f"it cannot run on its input of shape {x.shape}: {type(err).__name__}: {err}") from None
        if not isinstance(out, np.ndarray) or out.ndim < 2 or len(out) != 1:
            raise fail(f"it gives {type(out).__name__} {getattr(out, 'shape', '')} for one sample")
        _after(stage, out, lay)
        x = out
    if x.ndim != 2 or x.dtype not in (np.float32, np.int32):
        raise archive.fail(f"the model gives {x.dtype} outputs of shape {x.shape} for one sample, not "
                           f"(1, classes) float32 or int32")


def load(path) -> PackedModel:
    """Read a :class:`PackedModel` written by :meth:`PackedModel.save`, checking everything (module docstring).

    Raises:
        DeployLoadError: the file is missing, truncated, corrupt, crafted or not a packed model; the message
            names the file and what is wrong.
    """
    path = os.fspath(path) if isinstance(path, (str, bytes, os.PathLike)) else path
    if not isinstance(path, str):
        raise TypeError(f"deploy.load: path must be a str or os.PathLike, got {path!r}")
    archive = read_archive(path, format=FORMAT, version=VERSION, kind="packed model", error=DeployLoadError)
    meta = archive.metadata
    extra = sorted(set(meta) - {"input_shape", "float_bytes", "binary_float_bytes", "stages"})
    if extra:
        raise archive.fail(f"its metadata has unknown entries {extra}")
    shape = archive.value("input_shape", (list,), "a list of extents")
    if not 1 <= len(shape) <= 4 or any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= MAX_SAMPLE
                                        for d in shape) or int(np.prod(shape)) > MAX_SAMPLE:
        raise archive.fail(f"input_shape must be 1 to 4 positive extents of at most {MAX_SAMPLE} values in all, "
                           f"got {shape!r:.80}")
    float_bytes = archive.value("float_bytes", (int,), "an int")
    sizes = archive.value("binary_float_bytes", (dict,), "a dict")
    if float_bytes < 0 or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in sizes.values()):
        raise archive.fail("float_bytes and binary_float_bytes must be byte counts (ints >= 0)")
    entries = archive.value("stages", (list,), "a list of stages")
    stages: List[Stage] = []
    used = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"kind", "config", "arrays"}:
            raise archive.fail(f"stage {i} must be a dict of kind, config and arrays, got {entry!r:.80}")
        kind, config, names = entry["kind"], entry["config"], entry["arrays"]
        if not isinstance(kind, str) or kind not in _RESTORE or kind not in STAGES:
            raise archive.fail(f"stage {i} has an unknown kind {kind!r:.80}")
        if not isinstance(config, dict) or not isinstance(names, list) or \
                not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise archive.fail(f"stage {i} needs a config dict and a list of distinct array names")
        missing = [n for n in names if f"{i}/{n}" not in archive.arrays]
        if missing:
            raise archive.fail(f"stage {i} names arrays the file lacks: {missing}")
        e = _Entry(archive, i, kind, config, {n: archive.arrays[f"{i}/{n}"] for n in names})
        stages.append(_RESTORE[kind](e))
        e.done()
        used.update(f"{i}/{n}" for n in names)
    if set(archive.arrays) - used:
        raise archive.fail(f"it has arrays no stage uses: {sorted(set(archive.arrays) - used)[:5]}")
    binary = [s.name for s in stages if isinstance(s, (BinaryDense, BinaryConv))]
    if sorted(binary) != sorted(sizes) or len(set(binary)) != len(binary):
        raise archive.fail(f"binary_float_bytes names {sorted(sizes)[:5]} but the binary layers are {binary[:5]}")
    model = PackedModel(stages, shape, float_bytes, sizes)
    _dry_run(model, archive)
    return model
