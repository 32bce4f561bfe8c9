"""Freeze a trained binary network into a packed inference model: bits between binary layers, integer thresholds.

:func:`freeze` turns a :class:`~minibnn.module.Sequential` model (the builders of :mod:`minibnn.models`:
``bnn_mlp``, ``two_layer_mlp``, ``lenet5``, ``vgg_small``, ``vgg7``) into a :class:`PackedModel` that gives the
model's own predictions in eval mode, from a fraction of its memory and time:

* **float first and last layers** stay float and run the very functions the model runs
  (:mod:`minibnn.functional`), so they give the same float32 numbers;
* where float activations enter a binary layer, the float layers right before it that act per channel (its
  BatchNorm, activations) and its input quantizer (sign(x), or a ``ShiftedThreshold`` / ``TrainableThreshold``
  sign(x - t)) make one monotone step per channel: a single float comparison ``x >= τ_c``, whose results
  are packed into bits. τ_c is found by bisection over the float32 values, on the model's own modules, so the
  bits are exactly the signs the float model computes (NaN included: +1);
* a **binary layer** keeps only its packed weights: sign(α·q_w(W)) as bits, plus |α| if it has a weight scale;
* between two binary layers, everything the model does to a dot product s ∈ {-K, ..., K} -- the layer's α and
  bias, BatchNorm (or any norm of :mod:`minibnn.normalization`), activations, the next layer's sign -- is one
  monotone step function of the integer s per channel, so it is **one integer comparison**: +1 iff s >= t
  (or s <= t where the norm's γ is negative). This is Sari et al. 2019, eq. 2, sign(BN(s)) = +1 iff
  s >= ⌈μ - σβ/γ⌉ (corrected as in :func:`minibnn.theory.fold_bn_sign`: ceil, not round, and ``<=`` ⌊·⌋ for
  γ < 0). The threshold is found on the float32 arithmetic the model itself runs (every s in [-K, K] goes
  through the model's own modules), so it agrees with the float model even where float32 rounding puts BN(s)
  within an ulp of 0; it equals fold_bn_sign's exact real-number threshold everywhere else. The kernel
  (:func:`minibnn.xnor.gemm` / :func:`~minibnn.xnor.conv2d` with ``threshold=``) then writes the next layer's
  input bits directly;
* a **max-pool** between binary convolutions runs on the bits: the max of ±1 values is the AND of their bits.
  Where the step is decreasing (γ < 0), max-pool-then-step is a *min* of the steps: those channels emit the
  complement (an increasing step), are AND-pooled and flipped back with one XOR;
* the last binary layer before the float classifier writes float32 through the kernel's fused output transform
  ``float32(acc)·α + b`` (α, b: the layer's own scale and bias), which is exactly the float layer's output when
  α = 1; the rest of the model (its norm, activation, classifier) runs in float.

Exactness: for models without a weight scale α the packed model's logits are bit for bit the float model's
(eval mode), so its predictions are identical. With α (``weight_scale="xnor"`` / ``"trainable"``), the float
model adds K terms ±α and rounds at each step while the kernel rounds acc·α once: the logits agree to float32
rounding.

Example:
    >>> import numpy as np, os, tempfile
    >>> from minibnn import models
    >>> model = models.bnn_mlp(in_features=64, num_classes=10, hidden_units=128, rng=np.random.default_rng(0))
    >>> packed = freeze(model, (64,))
    >>> x = np.random.default_rng(1).standard_normal((5, 64)).astype(np.float32)
    >>> bool(np.array_equal(packed(x), model.eval()(x).data))
    True
    >>> path = os.path.join(tempfile.mkdtemp(), "mlp.npz")
    >>> packed.save(path)
    >>> bool(np.array_equal(load(path)(x), packed(x)))
    True
    >>> report = packed.size_report(print_fn=None)
    >>> report.binary_float32_bytes // report.binary_packed_bytes >= 25
    True
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .checkpoint import write_npz_atomically
from . import functional as F
from . import packing, xnor
from .backend import scaled_filters
from .layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Hardtanh, Identity,
                     LeakyReLU, Linear, MaxPool2d, PReLU, ReLU, ReLU6, Sigmoid, Tanh)
from .models import GlobalAvgPool2d
from .module import Module, Sequential
from .normalization import FixedScaleNorm
from .quantized import QuantConv2d, QuantLinear
from .quantizers import ShiftedThreshold, TrainableThreshold
from .tensor import Tensor, no_grad

__all__ = ["freeze", "load", "PackedModel", "SizeReport", "FreezeError", "FORMAT", "VERSION"]

FORMAT = "minibnn-packed-model"
VERSION = 1
_METADATA = "__metadata__"


class FreezeError(ValueError):
    """The model has a layer or an arrangement that :func:`freeze` cannot pack (the message names it)."""


# ==============================================================================================================
# The stages of a packed model. Each has run(x) -> y, and config() / arrays() to be saved (JSON + arrays).
# ==============================================================================================================
class _Stage:
    kind = ""

    def config(self) -> Dict[str, Any]:
        return {}

    def arrays(self) -> Dict[str, np.ndarray]:
        return {}

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind


# ---- float stages: the model's own functional calls ----------------------------------------------------------
def _t(x: np.ndarray) -> Tensor:
    return Tensor(x)


#: float op name -> (arrays, options) -> function of x, each the call the corresponding module makes in eval mode
_FLOAT_OPS: Dict[str, Callable[..., np.ndarray]] = {
    "linear": lambda x, a, o: F.linear(_t(x), a["weight"], a.get("bias")).data,
    "conv2d": lambda x, a, o: F.conv2d(_t(x), a["weight"], a.get("bias"), tuple(o["stride"]), tuple(o["padding"]),
                                       o["pad_value"]).data,
    "batch_norm": lambda x, a, o: F.batch_norm(_t(x), a["running_mean"], a["running_var"], a.get("weight"),
                                               a.get("bias"), training=False, eps=o["eps"],
                                               fixed_var=o["fixed_var"]).data,
    "max_pool2d": lambda x, a, o: F.max_pool2d(_t(x), tuple(o["kernel"]), tuple(o["stride"]),
                                               tuple(o["padding"])).data,
    "avg_pool2d": lambda x, a, o: F.avg_pool2d(_t(x), tuple(o["kernel"]), tuple(o["stride"]),
                                               tuple(o["padding"])).data,
    "global_avg_pool2d": lambda x, a, o: _t(x).mean(axis=(2, 3)).data,
    "flatten": lambda x, a, o: _t(x).flatten(o["start_dim"], o["end_dim"]).data,
    "hardtanh": lambda x, a, o: F.hardtanh(_t(x), o["min_val"], o["max_val"]).data,
    "relu": lambda x, a, o: F.relu(_t(x)).data,
    "relu6": lambda x, a, o: F.relu6(_t(x)).data,
    "tanh": lambda x, a, o: F.tanh(_t(x)).data,
    "sigmoid": lambda x, a, o: F.sigmoid(_t(x)).data,
    "leaky_relu": lambda x, a, o: F.leaky_relu(_t(x), o["negative_slope"]).data,
    "prelu": lambda x, a, o: F.prelu(_t(x), a["weight"]).data,
    "sign": lambda x, a, o: np.where(_at_least(x, a.get("shift")), 1, -1).astype(x.dtype),
}


def _at_least(x: np.ndarray, shift: Optional[np.ndarray]) -> np.ndarray:
    """not x < shift (per channel, axis 1) -- the +1 side of sign(x - shift): sign(0) = +1 and NaN -> +1."""
    if shift is None:
        return ~(x < 0)
    return ~(x < shift.reshape((1, -1) + (1,) * (x.ndim - 2))) if shift.ndim else ~(x < shift)


class FloatOp(_Stage):
    """One float operation of the model, run by the same :mod:`minibnn.functional` call as its module."""

    kind = "float"

    def __init__(self, op: str, arrays: Dict[str, np.ndarray], options: Dict[str, Any]):
        self.op, self._arrays, self.options = op, dict(arrays), dict(options)

    def config(self):
        return {"op": self.op, "options": self.options}

    def arrays(self):
        return self._arrays

    @classmethod
    def restore(cls, config, arrays):
        return cls(config["op"], arrays, config["options"])

    def run(self, x):
        return _FLOAT_OPS[self.op](x, self._arrays, self.options)

    def describe(self):
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self._arrays.items() if v.ndim)
        return f"float {self.op}" + (f" [{shapes}]" if shapes else "")


# ---- packed stages -------------------------------------------------------------------------------------------
class PackSigns(_Stage):
    """Float activations -> the next binary layer's input bits, through one float comparison per channel.

    What the model does between its last float layer and the sign of the binary layer's input -- BatchNorm,
    activations, the input quantizer's sign(x - t) -- is, per channel, a monotone step of the float value x,
    so it is ``+1 iff x >= τ_c`` (``x <= τ_c``, computed as ``-x >= -τ_c``, where ``negate``): Sari et al.'s
    eq. 2 for a float input. τ_c is found on the model's own float32 arithmetic (see :func:`_input_threshold`).
    NaN is never < τ, so it gives +1, as sign(NaN) does in the quantizers. The bits are packed per row
    (N, words) for a dense layer (a 4-D input is flattened in NCHW order first) or per pixel NHWC
    (N, H, W, ceil(C/64)) for a convolution."""

    kind = "pack_signs"

    def __init__(self, threshold: np.ndarray, negate: Optional[np.ndarray], channels_last: bool):
        self.threshold, self.negate, self.channels_last = threshold, negate, bool(channels_last)

    def config(self):
        return {"channels_last": self.channels_last}

    def arrays(self):
        return {"threshold": self.threshold} if self.negate is None else {"threshold": self.threshold,
                                                                          "negate": self.negate}

    @classmethod
    def restore(cls, config, arrays):
        return cls(arrays["threshold"], arrays.get("negate"), config["channels_last"])

    def run(self, x):
        axis = (1, -1) + (1,) * (x.ndim - 2)                      # per channel: axis 1
        if self.negate is not None:
            x = x * np.where(self.negate, np.float32(-1), np.float32(1)).reshape(axis)   # exact: a sign flip
        plus = ~(x < self.threshold.reshape(axis))                   # NaN -> +1, as everywhere (xnor.packing)
        signs = plus.view(np.int8) - np.int8(1)                    # +1 -> 0 (clear bit), -1 -> -1 (set bit)
        if self.channels_last:                                     # NCHW -> NHWC: a pixel's channels, one row
            signs = np.ascontiguousarray(signs.transpose(0, 2, 3, 1))
        elif signs.ndim != 2:
            signs = signs.reshape(len(signs), -1)
        return xnor.pack(signs)

    def describe(self):
        return f"x >= threshold -> bits ({'NHWC' if self.channels_last else 'rows'})"


class _BinaryLayer(_Stage):
    """What binary dense and conv stages share: packed weights and the output transform.

    Output either bits (``threshold`` int32, ``direction`` int8 per output) or float32 (``scale`` = |α| or
    None, ``bias`` or None). ``offset`` is added back to the kernel's accumulator range when the packed input
    carries padding bits inside a row (see :class:`BinaryDense`)."""

    def __init__(self, weight: np.ndarray, k: int, *, threshold=None, direction=None, scale=None, bias=None,
                 name: str = ""):
        self.weight, self.k, self.name = weight, int(k), name
        self.threshold, self.direction, self.scale, self.bias = threshold, direction, scale, bias

    @property
    def emits_bits(self) -> bool:
        return self.threshold is not None

    def _transform(self) -> Dict[str, Optional[np.ndarray]]:
        if self.emits_bits:
            return {"threshold": self.threshold, "direction": self.direction}
        return {"scale": self.scale, "bias": self.bias}

    def arrays(self):
        named = {"weight": self.weight, "threshold": self.threshold, "direction": self.direction,
                 "scale": self.scale, "bias": self.bias}
        return {k: v for k, v in named.items() if v is not None}

    def _describe_output(self) -> str:
        return "-> bits" if self.emits_bits else "-> float" + (" ·α" if self.scale is not None else "")


class BinaryDense(_BinaryLayer):
    """A binary fully connected layer on packed rows: xnor.gemm with the packed weights (N_out, words).

    ``words_k`` is 64·words when the input is a flattened NHWC feature map whose channels do not fill their
    last word: the padding bits (0 in input and weights) then count as agreements, ``offset`` = words_k - k of
    them, which the thresholds include and a float output subtracts."""

    kind = "binary_dense"

    def __init__(self, weight, k, words_k: int, **kw):
        super().__init__(weight, k, **kw)
        self.words_k = int(words_k)

    def config(self):
        return {"k": self.k, "words_k": self.words_k, "name": self.name}

    @classmethod
    def restore(cls, config, arrays):
        arrays = dict(arrays)
        return cls(arrays.pop("weight"), config["k"], config["words_k"], name=config["name"], **arrays)

    def run(self, x):
        offset = self.words_k - self.k
        if offset == 0 or self.emits_bits:
            return xnor.gemm(x, self.weight, self.words_k, **self._transform())
        acc = (xnor.gemm(x, self.weight, self.words_k) - offset).astype(np.float32)   # as the kernel rounds
        if self.scale is not None:
            acc *= self.scale
        if self.bias is not None:
            acc += self.bias
        return acc

    def describe(self):
        return f"binary dense (layer {self.name}): K={self.k} -> {len(self.weight)} {self._describe_output()}"


class BinaryConv(_BinaryLayer):
    """A binary convolution on packed NHWC bits: xnor.conv2d with packed weights (O, kh, kw, ceil(C/64)).
    A float output is transposed back to NCHW for the float layers after it."""

    kind = "binary_conv"

    def __init__(self, weight, channels: int, stride, padding, pad_value: int, **kw):
        super().__init__(weight, weight.shape[1] * weight.shape[2] * channels, **kw)
        self.channels, self.stride, self.padding = int(channels), tuple(stride), tuple(padding)
        self.pad_value = int(pad_value)

    def config(self):
        return {"channels": self.channels, "stride": list(self.stride), "padding": list(self.padding),
                "pad_value": self.pad_value, "name": self.name}

    @classmethod
    def restore(cls, config, arrays):
        arrays = dict(arrays)
        return cls(arrays.pop("weight"), config["channels"], config["stride"], config["padding"],
                   config["pad_value"], name=config["name"], **arrays)

    def run(self, x):
        out = xnor.conv2d(x, self.weight, self.channels, stride=self.stride, padding=self.padding,
                          pad_value=self.pad_value, **self._transform())
        return out if self.emits_bits else np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def describe(self):
        o, kh, kw, _ = self.weight.shape
        return (f"binary conv (layer {self.name}): {self.channels} -> {o}, {kh}x{kw}, stride {self.stride}, padding "
                f"{self.padding} ({self.pad_value:+d}) {self._describe_output()}")


class BitMaxPool(_Stage):
    """Max-pool on packed NHWC bits (AND of the words). ``flip`` (words per pixel) marks channels whose step
    is decreasing: they arrive complemented, so the AND is their min; one XOR restores them."""

    kind = "bit_max_pool"

    def __init__(self, kernel, stride, padding, flip: Optional[np.ndarray]):
        self.kernel, self.stride, self.padding, self.flip = tuple(kernel), tuple(stride), tuple(padding), flip

    def config(self):
        return {"kernel": list(self.kernel), "stride": list(self.stride), "padding": list(self.padding)}

    @classmethod
    def restore(cls, config, arrays):
        return cls(config["kernel"], config["stride"], config["padding"], arrays.get("flip"))

    def arrays(self):
        return {} if self.flip is None else {"flip": self.flip}

    def run(self, x):
        out = xnor.maxpool2d(x, self.kernel, self.stride, self.padding)
        if self.flip is not None:
            out ^= self.flip
        return out

    def describe(self):
        flipped = 0 if self.flip is None else int(np.bitwise_count(self.flip).sum())
        return f"max-pool {self.kernel} on bits" + (f" ({flipped} channels min-pooled)" if flipped else "")


class BitFlatten(_Stage):
    """(N, H, W, words) packed bits -> (N, H·W·words): the next dense layer's weights are in this order."""

    kind = "bit_flatten"

    @classmethod
    def restore(cls, config, arrays):
        return cls()

    def run(self, x):
        return x.reshape(len(x), -1)

    def describe(self):
        return "flatten bits (NHWC order)"


_STAGES = {cls.kind: cls for cls in (FloatOp, PackSigns, BinaryDense, BinaryConv, BitMaxPool, BitFlatten)}


# ==============================================================================================================
# The packed model
# ==============================================================================================================
class SizeReport:
    """Bytes of the float model (float32 parameters and buffers) against the packed model, per binary layer
    and in total. ``str()`` is a table."""

    def __init__(self, rows: List[Tuple[str, int, int]], float_total: int, packed_total: int):
        self.rows = rows                      # (binary layer, float32 bytes, packed bytes)
        self.float_total, self.packed_total = float_total, packed_total
        self.binary_float32_bytes = sum(r[1] for r in rows)
        self.binary_packed_bytes = sum(r[2] for r in rows)

    @property
    def binary_ratio(self) -> float:
        """Packed bytes / float32 bytes of the binary layers (1/32 for weights alone)."""
        return self.binary_packed_bytes / max(1, self.binary_float32_bytes)

    @property
    def total_ratio(self) -> float:
        return self.packed_total / max(1, self.float_total)

    def table(self) -> str:
        lines = [f"{'binary layer':<20} {'float32 B':>12} {'packed B':>12} {'ratio':>8}"]
        for name, f32, packed in self.rows:
            lines.append(f"{name:<20} {f32:>12,} {packed:>12,} {'1/%.1f' % (f32 / packed):>8}")
        lines.append(f"{'all binary layers':<20} {self.binary_float32_bytes:>12,} {self.binary_packed_bytes:>12,} "
                     f"{'1/%.1f' % (1 / self.binary_ratio):>8}")
        lines.append(f"{'whole model':<20} {self.float_total:>12,} {self.packed_total:>12,} "
                     f"{'1/%.1f' % (1 / self.total_ratio):>8}")
        return "\n".join(lines)

    __str__ = table


class PackedModel:
    """A frozen model: a list of stages run in order. Call it on a batch (N, \\*input_shape) for float32 logits.

    Built by :func:`freeze`, saved with :meth:`save`, read back with :func:`load`. Nothing in it is trained:
    it has no gradients, no modes and no Python objects beyond its arrays and options."""

    def __init__(self, stages: Sequence[_Stage], input_shape: Sequence[int], float_bytes: int,
                 binary_float_bytes: Dict[str, int]):
        self.stages = list(stages)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.float_bytes = int(float_bytes)
        self.binary_float_bytes = dict(binary_float_bytes)

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float32)
        if x.shape[1:] != self.input_shape or x.ndim != len(self.input_shape) + 1 or len(x) == 0:
            raise ValueError(f"PackedModel expects inputs of shape (N, {', '.join(map(str, self.input_shape))}) "
                             f"with N >= 1, got {x.shape}")
        for stage in self.stages:
            x = stage.run(x)
        return x

    def predict(self, x) -> np.ndarray:
        """The predicted class of each sample: argmax of the logits."""
        return np.argmax(self(x), axis=-1)

    def __repr__(self) -> str:
        body = "\n".join(f"  ({i}) {s.describe()}" for i, s in enumerate(self.stages))
        return f"PackedModel(input_shape={self.input_shape}\n{body}\n)"

    # ---- size ----------------------------------------------------------------------------------------------
    def packed_bytes(self) -> int:
        return sum(a.nbytes for s in self.stages for a in s.arrays().values())

    def size_report(self, print_fn: Optional[Callable[[str], None]] = print) -> SizeReport:
        """Float32 bytes of the model against the packed bytes: per binary layer (weights and bias as float32
        vs packed weights and thresholds / scale / bias) and for the whole model; printed with ``print_fn``."""
        rows = [(f"layer {s.name}", self.binary_float_bytes[s.name], sum(a.nbytes for a in s.arrays().values()))
                for s in self.stages if isinstance(s, _BinaryLayer)]
        report = SizeReport(rows, self.float_bytes, self.packed_bytes())
        if print_fn is not None:
            print_fn(report.table())
        return report

    # ---- files ---------------------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the model to ``path`` (.npz): arrays ``<stage>/<name>`` and a JSON ``__metadata__``; atomically
        (a temporary file renamed over ``path``), never pickled. :func:`load` reads it back bit for bit."""
        arrays: Dict[str, np.ndarray] = {}
        stages = []
        for i, stage in enumerate(self.stages):
            names = []
            for name, value in stage.arrays().items():
                arrays[f"{i}/{name}"] = value
                names.append(name)
            stages.append({"kind": stage.kind, "config": stage.config(), "arrays": names})
        meta = {"format": FORMAT, "version": VERSION, "input_shape": list(self.input_shape),
                "float_bytes": self.float_bytes, "binary_float_bytes": self.binary_float_bytes, "stages": stages}
        arrays[_METADATA] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        write_npz_atomically(os.fspath(path), arrays)


def load(path) -> PackedModel:
    """Read a :class:`PackedModel` written by :meth:`PackedModel.save` (``np.load(..., allow_pickle=False)``)."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            files = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"load: {path} is not a readable .npz file ({exc})") from exc
    if _METADATA not in files:
        raise ValueError(f"load: {path} has no {_METADATA}; it is not a packed model written by PackedModel.save")
    meta = json.loads(files.pop(_METADATA).tobytes().decode("utf-8"))
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"load: {path} holds format {meta.get('format')!r} version {meta.get('version')!r}; "
                         f"expected {FORMAT!r} version {VERSION}")
    stages = []
    for i, entry in enumerate(meta["stages"]):
        if entry["kind"] not in _STAGES:
            raise ValueError(f"load: {path} has a stage of unknown kind {entry['kind']!r}")
        arrays = {name: files[f"{i}/{name}"] for name in entry["arrays"]}
        stages.append(_STAGES[entry["kind"]].restore(entry["config"], arrays))
    return PackedModel(stages, meta["input_shape"], meta["float_bytes"], meta["binary_float_bytes"])


# ==============================================================================================================
# Freezing
# ==============================================================================================================
_ELEMENTWISE = (Identity, Dropout, Hardtanh, ReLU, ReLU6, Tanh, Sigmoid, LeakyReLU)   # the same map per element
_PER_CHANNEL = (BatchNorm1d, BatchNorm2d, FixedScaleNorm, PReLU)                      # one map per channel


def _is_binary(m: Module) -> bool:
    return isinstance(m, (QuantLinear, QuantConv2d)) and m.is_binary


def _float_ops(name: str, m: Module) -> List[FloatOp]:
    """The float operations that reproduce module ``m`` in eval mode."""
    def op(kind, arrays=None, **options):
        return FloatOp(kind, {k: np.array(v) for k, v in (arrays or {}).items() if v is not None}, options)

    bias = lambda layer: None if layer.bias is None else layer.bias.data  # noqa: E731
    if isinstance(m, (QuantLinear, QuantConv2d)):
        ops = [] if m.input_quantizer is None else [op("sign", {"shift": _sign_shift(name, m)})]
        if isinstance(m, QuantLinear):
            return ops + [op("linear", {"weight": m.effective_weight(), "bias": bias(m)})]
        return ops + [op("conv2d", {"weight": m.effective_weight(), "bias": bias(m)}, stride=list(m.stride),
                         padding=list(m.padding), pad_value=m.pad_value)]
    if isinstance(m, Linear):
        return [op("linear", {"weight": m.weight.data, "bias": bias(m)})]
    if isinstance(m, Conv2d):
        return [op("conv2d", {"weight": m.weight.data, "bias": bias(m)}, stride=list(m.stride),
                   padding=list(m.padding), pad_value=m.pad_value)]
    if isinstance(m, (BatchNorm1d, BatchNorm2d)):
        if not m.track_running_stats:
            raise FreezeError(f"freeze: layer {name} ({type(m).__name__}) keeps no running statistics, so it "
                              f"normalises with each batch's statistics even in eval mode; it cannot be frozen")
        return [op("batch_norm", {"running_mean": m.running_mean, "running_var": m.running_var,
                                  "weight": None if m.weight is None else m.weight.data,
                                  "bias": None if m.bias is None else m.bias.data}, eps=m.eps, fixed_var=None)]
    if isinstance(m, FixedScaleNorm):
        return [op("batch_norm", {"running_mean": m.running_mean, "running_var": m.running_var,
                                  "weight": None if m.weight is None else m.weight.data,
                                  "bias": None if m.bias is None else m.bias.data}, eps=1e-5, fixed_var=m.variance)]
    if isinstance(m, (Identity, Dropout)):
        return []
    if isinstance(m, MaxPool2d):
        return [op("max_pool2d", kernel=list(m.kernel_size), stride=list(m.stride), padding=list(m.padding))]
    if isinstance(m, AvgPool2d):
        return [op("avg_pool2d", kernel=list(m.kernel_size), stride=list(m.stride), padding=list(m.padding))]
    if isinstance(m, GlobalAvgPool2d):
        return [op("global_avg_pool2d")]
    if isinstance(m, Flatten):
        return [op("flatten", start_dim=m.start_dim, end_dim=m.end_dim)]
    if isinstance(m, Hardtanh):
        return [op("hardtanh", min_val=m.min_val, max_val=m.max_val)]
    if isinstance(m, LeakyReLU):
        return [op("leaky_relu", negative_slope=m.negative_slope)]
    if isinstance(m, PReLU):
        return [op("prelu", {"weight": m.weight.data})]
    simple = {ReLU: "relu", ReLU6: "relu6", Tanh: "tanh", Sigmoid: "sigmoid"}
    if type(m) in simple:
        return [op(simple[type(m)])]
    raise FreezeError(f"freeze: layer {name} ({type(m).__name__}) is not supported; freeze handles Linear, Conv2d, "
                      f"QuantLinear, QuantConv2d, the norms of minibnn.normalization, pooling, Flatten and "
                      f"elementwise activations")


_SIGN_PROBE = np.array([-np.inf, -3.0, -1.0, -0.5, -1e-30, -0.0, 0.0, 1e-30, 0.5, 1.0, 3.0, np.inf, np.nan],
                       dtype=np.float32)


def _is_sign(q) -> bool:
    """Does the quantizer compute sign(x) with sign(0) = +1 (and +1 for NaN, as np.where(x < 0, -1, 1))?"""
    try:
        with no_grad():
            out = q(Tensor(_SIGN_PROBE.reshape(1, -1))).data.reshape(-1)
    except Exception:   # noqa: BLE001 -- a quantizer that cannot take this probe is not a plain sign
        return False
    return np.array_equal(out, np.where(_SIGN_PROBE < 0, -1.0, 1.0), equal_nan=True)


def _sign_shift(name: str, layer: Module) -> Optional[np.ndarray]:
    """The shift t of a sign(x - t) input quantizer (None for t = 0); a FreezeError for any other quantizer."""
    q = layer.input_quantizer
    if isinstance(q, ShiftedThreshold) and _is_sign(q.quantizer):
        return np.asarray(q.shift, dtype=np.float32)
    if isinstance(q, TrainableThreshold) and _is_sign(q.quantizer):
        return q.threshold.data.astype(np.float32)
    if _is_sign(q):
        return None
    raise FreezeError(f"freeze: the input quantizer of layer {name} ({type(layer).__name__}: "
                      f"{getattr(q, 'name', type(q).__name__)}) is not sign(x) or a shifted sign(x - t); freeze "
                      f"supports sign-like input quantizers only")


def _packed_weight(name: str, layer: Module, feature_hwc: Optional[Tuple[int, int, int]] = None
                   ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(packed sign(α·q_w(W)), |α| per output or None): Linear rows (or, for a dense layer reading a flattened
    NHWC feature map, rows regrouped per pixel), Conv2d filters as (O, kh, kw, words)."""
    w = layer.effective_weight()
    if w.ndim == 4:
        w = w.transpose(0, 2, 3, 1)                               # (O, C, kh, kw) -> (O, kh, kw, C)
    elif feature_hwc is not None:
        h, wd, c = feature_hwc
        w = w.reshape(len(w), c, h, wd).transpose(0, 2, 3, 1)     # NCHW-flatten order -> (O, H, W, C)
    filters = scaled_filters(np.asarray(w, dtype=np.float32))
    if filters is None:
        raise FreezeError(f"freeze: the weights of layer {name} ({type(layer).__name__}) are not ±α per output "
                          f"(q_w = {getattr(layer.kernel_quantizer, 'name', layer.kernel_quantizer)!r}), so they "
                          f"cannot be packed into bits")
    packed, alpha = filters
    if feature_hwc is not None:
        packed = packed.reshape(len(w), -1)
    return packed, (None if alpha is None else alpha.astype(np.float32))


def _monotone(table: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(non-decreasing, non-increasing) per column of a table whose rows follow s = -K..K."""
    d = np.diff(table, axis=0)
    return np.all(d >= 0, axis=0), np.all(d <= 0, axis=0)


def _foldable(m: Module) -> bool:
    """A per-channel (or per-element) monotone-or-not map that can be evaluated channel by channel."""
    if isinstance(m, (BatchNorm1d, BatchNorm2d)) and not m.track_running_stats:
        return False
    return isinstance(m, _ELEMENTWISE + _PER_CHANNEL)


def _float32_keys(v: np.ndarray) -> np.ndarray:
    """float32 -> int64 keys in the same order (-0.0 just below +0.0): bisection over every float32 value."""
    bits = np.ascontiguousarray(v, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits >= 0, bits, -(bits & 0x7FFFFFFF) - 1)


def _float32_values(keys: np.ndarray) -> np.ndarray:
    bits = np.where(keys >= 0, keys, (-keys - 1) | 0x80000000)
    return bits.astype(np.uint32).view(np.float32)


_PROBES = np.array([-np.inf, -3.4e38, -1e6, -10.0, -1.0, -1e-3, -1e-30, -1e-45, -0.0, 0.0, 1e-45, 1e-30, 1e-3, 1.0,
                    10.0, 1e6, 3.4e38, np.inf], dtype=np.float32)


def _input_threshold(modules, q, shape: Tuple[int, ...], where: str
                     ) -> Optional[Tuple[np.ndarray, Optional[np.ndarray]]]:
    """(τ (C,) float32, negate (C,) bool or None) such that, for every float32 x of channel c,
    ``q(modules(x)) = +1  iff  x >= τ_c`` (``-x >= -τ_c`` where negate), channel c on axis 1 of ``shape``;
    None if no such threshold exists (a map that is not monotone, a NaN that gives -1, an error).

    The step is found by bisection over the 2^32 float32 values in order (33 evaluations of the model's own
    modules on one value per channel), then checked on a few hundred more values, NaN included."""
    channels, spatial = shape[0], len(shape) == 3

    def plus(values: np.ndarray) -> np.ndarray:            # values (S, C) -> (S, C) bool: +1 after q?
        v = values.astype(np.float32).reshape(values.shape + ((1, 1) if spatial else ()))
        v = _apply(modules + [(where, q)], v, "")
        y = v.reshape(len(values), -1)
        if y.shape[1] != channels or not np.all((y == 1) | (y == -1)):
            raise FreezeError(f"freeze: {where} does not give ±1 per channel")
        return y == 1

    try:
        with np.errstate(all="ignore"):                   # ±inf and 3.4e38 probes overflow on purpose
            return _bisect(plus, channels)
    except FreezeError:
        return None


def _bisect(plus, channels: int) -> Optional[Tuple[np.ndarray, Optional[np.ndarray]]]:
    """The bisection and its checks for :func:`_input_threshold`; ``plus(values (S, C)) -> (S, C) bool``."""
    ends = plus(np.array([[-np.inf], [np.inf]], dtype=np.float32).repeat(channels, axis=1))
    at_low, at_high = ends
    lo = np.full(channels, _float32_keys(np.float32(-np.inf)))
    hi = np.full(channels, _float32_keys(np.float32(np.inf)))
    while np.any(hi - lo > 1):                        # invariant: plus(lo) == at_low, plus(hi) == at_high
        mid = (lo + hi) // 2
        same = plus(_float32_values(mid)[None, :])[0] == at_low
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    rising, falling = ~at_low & at_high, at_low & ~at_high
    threshold = np.where(rising, _float32_values(hi), np.where(falling, -_float32_values(lo),
                                                               np.where(at_low, -np.inf, np.nan)))
    threshold = threshold.astype(np.float32)
    negate = falling if falling.any() else None
    rng = np.random.default_rng(0)
    checks = np.concatenate([
        np.repeat(_PROBES[:, None], channels, axis=1),
        np.stack([_float32_values(k) for k in (lo - 1, lo, hi, hi + 1)]),
        (rng.standard_normal((300, 1)) * np.logspace(-3, 3, 300)[:, None]).repeat(channels, axis=1),
    ]).astype(np.float32)
    sign = np.where(falling, np.float32(-1), np.float32(1)) if negate is not None else np.float32(1)
    if not np.array_equal(plus(checks), ~(checks * sign < threshold)):
        return None
    if not plus(np.full((1, channels), np.nan, dtype=np.float32)).all():
        return None                                   # NaN gives +1 through ~(x < t), as everywhere
    return threshold, negate


def _fold_input(entries, i: int, b: int) -> Tuple[int, PackSigns]:
    """(first entry folded, PackSigns stage): the float layers just before binary layer b that act per channel
    (BatchNorm, activations; across a Flatten into a dense layer) and b's input quantizer, as thresholds."""
    name, layer, in_shape = entries[b]
    q, conv = layer.input_quantizer, isinstance(layer, QuantConv2d)
    where = f"{name}.input_quantizer"
    j = b
    if (not conv and j > i and isinstance(entries[j - 1][1], Flatten)
            and (entries[j - 1][1].start_dim, entries[j - 1][1].end_dim) == (1, -1) and len(entries[j - 1][2]) == 3):
        j -= 1                                            # fold across the Flatten: thresholds per channel
    k = j
    while k > i and _foldable(entries[k - 1][1]):
        k -= 1
    if k < j:
        folded = _input_threshold([(n, m) for n, m, _ in entries[k:j]], q, entries[k][2], where)
        if folded is not None:
            return k, PackSigns(*folded, channels_last=conv)
    folded = _input_threshold([], q, in_shape, where)     # the quantizer alone, after the float layers
    if folded is None:
        raise FreezeError(f"freeze: the input quantizer of layer {name} ({type(layer).__name__}: "
                          f"{getattr(q, 'name', type(q).__name__)}) is not a sign(x - t), a monotone step to ±1; "
                          f"its float input cannot be packed into bits")
    return b, PackSigns(*folded, channels_last=conv)


class _Chain:
    """What lies between binary layer A and binary layer B, folded into thresholds of A's output.

    pre: per-channel maps before a max-pool, post: after it (the whole chain when there is no pool), then B's
    input quantizer; flatten: a Flatten (A conv, B dense) somewhere after the pool."""

    def __init__(self, pre, pool, post, flatten):
        self.pre, self.pool, self.post, self.flatten = pre, pool, post, flatten


def _chain(entries, a: int, b: int) -> Optional[_Chain]:
    """The chain between entries a and b if it can be folded, else None (it then runs in float)."""
    pre, post, pool, flatten = [], [], None, None
    spatial = isinstance(entries[a][1], QuantConv2d)
    for name, m, _ in entries[a + 1:b]:
        if isinstance(m, MaxPool2d) and spatial and pool is None and flatten is None:
            pool = m
        elif (isinstance(m, Flatten) and (m.start_dim, m.end_dim) == (1, -1) and spatial and flatten is None
              and isinstance(entries[b][1], QuantLinear)):
            flatten = m
        elif isinstance(m, _ELEMENTWISE) or (isinstance(m, PReLU) and m.num_parameters == 1):
            (pre if pool is None else post).append((name, m))
        elif isinstance(m, _PER_CHANNEL) and flatten is None:
            if isinstance(m, (BatchNorm1d, BatchNorm2d)) and not m.track_running_stats:
                return None
            (pre if pool is None else post).append((name, m))
        else:
            return None
    q = entries[b][1].input_quantizer
    per_feature = isinstance(q, TrainableThreshold) or (isinstance(q, ShiftedThreshold) and np.ndim(q.shift) > 0)
    if flatten is not None and per_feature:
        return None   # a threshold per flattened feature is not one per conv channel: run the chain in float
    return _Chain(pre, pool, post, flatten)


def _apply(modules, v: np.ndarray, where: str) -> np.ndarray:
    for name, m in modules:
        try:
            v = m(Tensor(v)).data
        except Exception as exc:   # noqa: BLE001
            raise FreezeError(f"freeze: layer {name} ({type(m).__name__}) {where} could not be evaluated per "
                              f"channel ({exc})") from exc
    return v


def _fold(entries, a: int, b: int, chain: _Chain, alpha, bias, k: int, channels: int):
    """Thresholds (int32), directions (int8) of A's outputs and the channels to min-pool (bool) or None.

    Every integer s in [-K, K] runs through what the model does to it: g(s) = float32(s)·|α| + b (the layer's
    output), the chain's modules, B's input quantizer. The ±1 result is a monotone step in s per channel; its
    step is the threshold."""
    name_a, name_b = entries[a][0], entries[b][0]
    q = entries[b][1].input_quantizer
    spatial_shape = (1, 1) if isinstance(entries[a][1], QuantConv2d) else ()
    s_all = np.arange(-k, k + 1)
    plus = np.empty((len(s_all), channels), dtype=bool)
    pre_up = np.ones(channels, bool)
    pre_down = np.ones(channels, bool)
    last_pre = None
    rows = max(1, (1 << 22) // max(1, channels))
    for start in range(0, len(s_all), rows):
        v = np.repeat(s_all[start:start + rows, None].astype(np.float32), channels, axis=1)
        if alpha is not None:
            v = v * alpha
        if bias is not None:
            v = v + bias
        v = v.reshape(v.shape + spatial_shape)
        v = _apply(chain.pre, v, f"between {name_a} and {name_b}")
        if chain.pool is not None:     # direction of the pooled quantity, s -> pre(g(s)), per channel
            flat = v.reshape(len(v), channels)
            block = flat if last_pre is None else np.concatenate([last_pre, flat])
            up, down = _monotone(block)
            pre_up &= up
            pre_down &= down
            last_pre = flat[-1:]
        v = _apply(chain.post, v, f"between {name_a} and {name_b}")
        if chain.flatten is not None:
            v = v.reshape(len(v), channels)
        y = _apply([(f"{name_b}.input_quantizer", q)], v, "").reshape(len(v), channels)
        if not np.all((y == 1) | (y == -1)):
            raise FreezeError(f"freeze: the input quantizer of {name_b} does not output ±1 on the outputs of "
                              f"{name_a}; only binary activations can be packed")
        plus[start:start + rows] = y == 1
    up, down = _monotone(plus.astype(np.int8))
    bad = ~(up | down)
    if bad.any():
        raise FreezeError(f"freeze: between {name_a} and {name_b}, sign(...) of channel {int(np.argmax(bad))} is "
                          f"not a monotone function of the dot product, so it is no threshold")
    if chain.pool is not None and not np.all(pre_up | pre_down):
        raise FreezeError(f"freeze: before the max-pool after {name_a}, channel {int(np.argmax(~(pre_up | pre_down)))}"
                          f" is not a monotone function of the dot product; the pool cannot run on bits")
    n_plus = plus.sum(axis=0)
    # non-decreasing step (constant included): +1 iff s >= -K + (number of -1s); else +1 iff s <= -K + n_plus - 1
    threshold = np.where(up, -k + (len(s_all) - n_plus), -k + n_plus - 1).astype(np.int64)
    direction = np.where(up, 1, -1).astype(np.int8)
    flip = None
    if chain.pool is not None:
        # max-pool then an increasing step = max of the steps (AND of bits); a step decreasing relative to
        # the pooled quantity = min of the steps: emit its complement, AND-pool it, flip it back
        constant = up & down
        flip = ~constant & ((up & ~pre_up) | (down & ~pre_down))
        threshold = np.where(flip, np.where(direction > 0, threshold - 1, threshold + 1), threshold)
        direction = np.where(flip, -direction, direction).astype(np.int8)
    return threshold.astype(np.int32), direction, flip


def _entries(model: Module, input_shape: Tuple[int, ...]):
    """[(name, module, input shape of one sample)] of a Sequential model, nested Sequentials flattened."""
    if not isinstance(model, Sequential):
        raise FreezeError(f"freeze: expected a Sequential model (as minibnn.models builds them: bnn_mlp, "
                          f"two_layer_mlp, lenet5, vgg_small, vgg7), got {type(model).__name__}")
    flat: List[Tuple[str, Module]] = []

    def walk(seq, prefix):
        for i, m in enumerate(seq):
            name = f"{prefix}{i}"
            if isinstance(m, Sequential):
                walk(m, name + ".")
            else:
                flat.append((name, m))

    walk(model, "")
    x = Tensor(np.zeros((1,) + input_shape, dtype=np.float32))
    out = []
    with no_grad():
        for name, m in flat:
            out.append((name, m, tuple(x.shape[1:])))
            try:
                x = m(x)
            except Exception as exc:   # noqa: BLE001
                raise FreezeError(f"freeze: layer {name} ({type(m).__name__}) failed on an input of shape "
                                  f"{tuple(x.shape)} ({exc}); is input_shape={input_shape} right?") from exc
    return out


def freeze(model: Module, input_shape: Sequence[int]) -> PackedModel:
    """Freeze ``model`` (a trained Sequential, read in eval mode) into a :class:`PackedModel`.

    Args:
        model: a :class:`~minibnn.module.Sequential` of minibnn layers, e.g. from :mod:`minibnn.models`. Binary
            layers (``QuantLinear`` / ``QuantConv2d`` with ``is_binary``) are packed; everything else stays float.
        input_shape: the shape of one sample, without the batch axis: ``(784,)``, ``(3, 32, 32)``.

    Returns:
        A :class:`PackedModel` whose logits equal ``model.eval()(x)`` (see the module docstring for the one
        exception, weight scales, where they agree to float32 rounding).

    Raises:
        FreezeError: an unsupported layer or arrangement, named in the message.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"freeze: input_shape must be the shape of one sample (no batch axis), a tuple of positive "
                         f"ints such as (784,) or (3, 32, 32); got {input_shape!r}")
    params = list(model.parameters())
    if any(p.dtype != np.float32 for p in params):
        raise FreezeError("freeze: the model must be float32 (the kernels' float outputs are float32); convert it "
                          "with model.astype(np.float32)")
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with no_grad():
            return _freeze(model, tuple(int(d) for d in shape))
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)


def _freeze(model: Module, input_shape: Tuple[int, ...]) -> PackedModel:
    entries = _entries(model, input_shape)
    float_bytes = sum(p.size * 4 for p in model.parameters()) + sum(
        b.size * 4 for _, b in model.named_buffers() if np.issubdtype(b.dtype, np.floating))
    binary = [i for i, (name, m, _) in enumerate(entries) if _is_binary(m)]
    stages: List[_Stage] = []
    binary_float_bytes: Dict[str, int] = {}
    i = 0                         # next entry not yet converted
    bits_in: Optional[Tuple[int, int, int]] = None   # (H, W, C) when the current activation is flattened bits
    emitted_bits = False          # the current activation is packed bits (from the previous binary layer)
    for pos, b in enumerate(binary):
        name, layer, in_shape = entries[b]
        if not emitted_bits:      # float activations: the float layers, then norm + sign as thresholds -> bits
            start, pack_signs = _fold_input(entries, i, b)
            for n, m, _ in entries[i:start]:
                stages.extend(_float_ops(n, m))
            stages.append(pack_signs)
            bits_in = None
        nxt = binary[pos + 1] if pos + 1 < len(binary) else None
        chain = _chain(entries, b, nxt) if nxt is not None else None
        if isinstance(layer, QuantConv2d) and layer.pad_value not in (1.0, -1.0, 0.0):
            raise FreezeError(f"freeze: layer {name} (QuantConv2d) pads with {layer.pad_value}; the binary "
                              f"convolution pads with +1, -1 or 0 (exact zero padding)")
        weight, alpha = _packed_weight(name, layer, bits_in)
        bias = None if layer.bias is None else layer.bias.data.astype(np.float32)
        k = int(np.prod(layer.weight.shape[1:]))
        out_channels = layer.weight.shape[0]
        binary_float_bytes[name] = layer.weight.size * 4 + (0 if bias is None else bias.size * 4) + (
            0 if getattr(layer, "alpha", None) is None else layer.alpha.size * 4)
        if isinstance(layer, QuantLinear) and len(in_shape) != 1:
            raise FreezeError(f"freeze: layer {name} (QuantLinear) gets inputs of shape {in_shape} per sample; "
                              f"freeze packs dense layers applied to flat (N, features) inputs")
        # a dense layer on flattened NHWC bits multiplies whole words: their padding bits count as agreements
        words_k = k if bits_in is None else 64 * weight.shape[1]
        if chain is not None:
            t, d, flip = _fold(entries, b, nxt, chain, alpha, bias, k, out_channels)
            offset = words_k - k if isinstance(layer, QuantLinear) else 0
            out = dict(threshold=(t.astype(np.int64) + offset).astype(np.int32), direction=d)
        else:
            out = dict(scale=alpha, bias=bias)
        if isinstance(layer, QuantLinear):
            stages.append(BinaryDense(weight, k, words_k, name=name, **out))
        else:
            stages.append(BinaryConv(weight, layer.in_channels, layer.stride, layer.padding, int(layer.pad_value),
                                     name=name, **out))
        if chain is None:
            emitted_bits, i = False, b + 1
            continue
        if chain.pool is not None:
            p = chain.pool
            mask = packing.pack(np.where(flip, -1, 1).astype(np.int8)) if flip.any() else None
            stages.append(BitMaxPool(p.kernel_size, p.stride, p.padding, mask))
        bits_in = None
        if chain.flatten is not None:
            stages.append(BitFlatten())
            c, h, w = _flattened_shape(entries, b, nxt)
            bits_in = (h, w, c)
        emitted_bits, i = True, nxt
    for n, m, _ in entries[i:]:     # the last binary layer wrote float: the float layers after it
        stages.extend(_float_ops(n, m))
    return PackedModel(stages, input_shape, float_bytes, binary_float_bytes)


def _flattened_shape(entries, a: int, b: int) -> Tuple[int, int, int]:
    """(C, H, W) of the feature map that the Flatten between entries a and b flattens."""
    for name, m, shape in entries[a + 1:b]:
        if isinstance(m, Flatten):
            return shape
    raise FreezeError(f"freeze: no Flatten between {entries[a][0]} and {entries[b][0]}")
