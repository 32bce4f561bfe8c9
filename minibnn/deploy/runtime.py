"""The packed runtime: a frozen model is a list of stages, each a few NumPy or kernel calls, saved as one .npz.

A :class:`PackedModel` runs its stages in order on a float32 batch. Float stages (:class:`FloatOp`) run the very
:mod:`minibnn.functional` call the model's module makes in eval mode; packed stages run the XNOR kernels of
:mod:`minibnn.xnor` on bits: :class:`PackSigns` (float -> bits through one comparison per channel),
:class:`BinaryDense` / :class:`BinaryConv` (XNOR-popcount products, writing bits through integer thresholds or
float32 through a scale and bias), :class:`BitMaxPool` (max-pool as an AND of words) and :class:`BitFlatten`.

Each stage has ``run(x)``, and ``config()`` (JSON) and ``arrays()`` (NumPy) for :meth:`PackedModel.save`;
:func:`minibnn.deploy.load` (:mod:`minibnn.deploy.loading`) checks and rebuilds the stages from them, by the
name each stage class is registered under in :data:`STAGES`. Nothing is pickled. :func:`minibnn.deploy.freeze`
builds these models.

Example:
    >>> import numpy as np
    >>> signs = PackSigns(threshold=np.zeros(3, np.float32), negate=None, channels_last=False)
    >>> dense = BinaryDense(signs.run(np.ones((1, 3), np.float32)), k=3, words_k=3, name="0")
    >>> model = PackedModel([signs, dense], input_shape=(3,), float_bytes=12, binary_float_bytes={"0": 12})
    >>> model(np.array([[1., -2., 3.], [-1., -1., -1.]], np.float32))     # (x >= 0) · (+1, +1, +1)
    array([[ 1],
           [-3]], dtype=int32)
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import functional as F
from .. import xnor
from ..archive import write_archive
from ..registry import Registry
from ..tensor import Tensor

FORMAT = "minibnn-packed-model"
VERSION = 2     # 2: written by minibnn.archive (a SHA-256 per array), checked by minibnn.deploy.loading

#: stage kind -> stage class; :func:`minibnn.deploy.load` checks and rebuilds each kind (deploy/loading.py)
STAGES = Registry("packed-model stage")


class Stage:
    """One step of a packed model: ``run(x) -> y``; ``config()`` and ``arrays()`` are what a file keeps of it."""

    kind = ""

    def config(self) -> Dict[str, Any]:
        return {}

    def arrays(self) -> Dict[str, np.ndarray]:
        return {}

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind


# ---- float stages: the model's own functional calls ------------------------------------------------------------

#: float op name -> run(x, arrays, options), each the call the corresponding module makes in eval mode
FLOAT_OPS = Registry("float op")


@FLOAT_OPS.register("linear")
def _linear(x, a, o):
    return F.linear(Tensor(x), a["weight"], a.get("bias")).data


@FLOAT_OPS.register("conv2d")
def _conv2d(x, a, o):
    return F.conv2d(Tensor(x), a["weight"], a.get("bias"), tuple(o["stride"]), tuple(o["padding"]),
                    o["pad_value"]).data


@FLOAT_OPS.register("batch_norm")
def _batch_norm(x, a, o):
    return F.batch_norm(Tensor(x), a["running_mean"], a["running_var"], a.get("weight"), a.get("bias"),
                        training=False, eps=o["eps"], fixed_var=o["fixed_var"]).data


@FLOAT_OPS.register("max_pool2d")
def _max_pool2d(x, a, o):
    return F.max_pool2d(Tensor(x), tuple(o["kernel"]), tuple(o["stride"]), tuple(o["padding"])).data


@FLOAT_OPS.register("avg_pool2d")
def _avg_pool2d(x, a, o):
    return F.avg_pool2d(Tensor(x), tuple(o["kernel"]), tuple(o["stride"]), tuple(o["padding"])).data


@FLOAT_OPS.register("global_avg_pool2d")
def _global_avg_pool2d(x, a, o):
    return Tensor(x).mean(axis=(2, 3)).data


@FLOAT_OPS.register("flatten")
def _flatten(x, a, o):
    return Tensor(x).flatten(o["start_dim"], o["end_dim"]).data


@FLOAT_OPS.register("hardtanh")
def _hardtanh(x, a, o):
    return F.hardtanh(Tensor(x), o["min_val"], o["max_val"]).data


@FLOAT_OPS.register("relu")
def _relu(x, a, o):
    return F.relu(Tensor(x)).data


@FLOAT_OPS.register("relu6")
def _relu6(x, a, o):
    return F.relu6(Tensor(x)).data


@FLOAT_OPS.register("tanh")
def _tanh(x, a, o):
    return F.tanh(Tensor(x)).data


@FLOAT_OPS.register("sigmoid")
def _sigmoid(x, a, o):
    return F.sigmoid(Tensor(x)).data


@FLOAT_OPS.register("leaky_relu")
def _leaky_relu(x, a, o):
    return F.leaky_relu(Tensor(x), o["negative_slope"]).data


@FLOAT_OPS.register("prelu")
def _prelu(x, a, o):
    return F.prelu(Tensor(x), a["weight"]).data


@FLOAT_OPS.register("sign")
def _sign(x, a, o):
    """sign(x - shift) with sign(0) = +1; NaN gives what the model's quantizer gives (``nan_plus``)."""
    shift = a.get("shift")
    if shift is not None and shift.ndim:
        shift = shift.reshape((1, -1) + (1,) * (x.ndim - 2))      # per channel: axis 1
    plus = x >= (0 if shift is None else shift)
    if o.get("nan_plus", False):
        plus |= np.isnan(x)
    return np.where(plus, 1, -1).astype(x.dtype)


@STAGES.register("float")
class FloatOp(Stage):
    """One float operation of the model, run by the same :mod:`minibnn.functional` call as its module."""

    kind = "float"

    def __init__(self, op: str, arrays: Dict[str, np.ndarray], options: Dict[str, Any]):
        self.op, self._arrays, self.options = op, dict(arrays), dict(options)
        self._run = FLOAT_OPS.get(op)

    def config(self):
        return {"op": self.op, "options": self.options}

    def arrays(self):
        return self._arrays


    def run(self, x):
        return self._run(x, self._arrays, self.options)

    def describe(self):
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self._arrays.items() if v.ndim)
        return f"float {self.op}" + (f" [{shapes}]" if shapes else "")


# ---- packed stages ----------------------------------------------------------------------------------------------

@STAGES.register("pack_signs")
class PackSigns(Stage):
    """Float activations -> the next binary layer's input bits, through one float comparison per channel.

    What the model does between its last float layer and the sign of the binary layer's input -- BatchNorm,
    activations, the input quantizer's sign(x - t) -- is, per channel, a monotone step of the float value x,
    so it is ``+1 iff x >= τ_c`` (``x <= τ_c``, computed as ``-x >= -τ_c``, where ``negate``): Sari et al.'s
    eq. 2 for a float input. NaN is never >= τ; it gives +1 where ``nan_plus`` (the model's quantizer maps NaN
    to +1, minibnn's convention, :mod:`minibnn.xnor.packing`), else -1. The bits are packed per row
    (N, words) for a dense layer (a 4-D input is flattened in NCHW order first) or per pixel NHWC
    (N, H, W, ceil(C/64)) for a convolution."""

    kind = "pack_signs"

    def __init__(self, threshold: np.ndarray, negate: Optional[np.ndarray], channels_last: bool,
                 nan_plus: bool = False):
        self.threshold, self.negate, self.channels_last = threshold, negate, bool(channels_last)
        self.nan_plus = bool(nan_plus)

    def config(self):
        return {"channels_last": self.channels_last, "nan_plus": self.nan_plus}

    def arrays(self):
        return {"threshold": self.threshold} if self.negate is None else {"threshold": self.threshold,
                                                                          "negate": self.negate}


    def run(self, x):
        axis = (1, -1) + (1,) * (x.ndim - 2)                      # per channel: axis 1
        nan = np.isnan(x) if self.nan_plus else None
        if self.negate is not None:
            x = x * np.where(self.negate, np.float32(-1), np.float32(1)).reshape(axis)   # exact: a sign flip
        plus = x >= self.threshold.reshape(axis)
        if nan is not None:
            plus |= nan
        signs = plus.view(np.int8) - np.int8(1)                    # +1 -> 0 (clear bit), -1 -> -1 (set bit)
        if self.channels_last:                                     # NCHW -> NHWC: a pixel's channels, one row
            signs = np.ascontiguousarray(signs.transpose(0, 2, 3, 1))
        elif signs.ndim != 2:
            signs = signs.reshape(len(signs), -1)
        return xnor.pack(signs)

    def describe(self):
        return f"x >= threshold -> bits ({'NHWC' if self.channels_last else 'rows'})"


class BinaryLayer(Stage):
    """What binary dense and conv stages share: packed weights and the output transform.

    Output either bits (``threshold`` int32, ``direction`` int8 per output) or float32 (``scale`` = |α| or
    None, ``bias`` or None)."""

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


@STAGES.register("binary_dense")
class BinaryDense(BinaryLayer):
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


@STAGES.register("binary_conv")
class BinaryConv(BinaryLayer):
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


    def run(self, x):
        out = xnor.conv2d(x, self.weight, self.channels, stride=self.stride, padding=self.padding,
                          pad_value=self.pad_value, **self._transform())
        return out if self.emits_bits else np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def describe(self):
        o, kh, kw, _ = self.weight.shape
        return (f"binary conv (layer {self.name}): {self.channels} -> {o}, {kh}x{kw}, stride {self.stride}, padding "
                f"{self.padding} ({self.pad_value:+d}) {self._describe_output()}")


@STAGES.register("bit_max_pool")
class BitMaxPool(Stage):
    """Max-pool on packed NHWC bits (AND of the words). ``flip`` (words per pixel) marks channels whose step
    is decreasing: they arrive complemented, so the AND is their min; one XOR restores them."""

    kind = "bit_max_pool"

    def __init__(self, kernel, stride, padding, flip: Optional[np.ndarray]):
        self.kernel, self.stride, self.padding, self.flip = tuple(kernel), tuple(stride), tuple(padding), flip

    def config(self):
        return {"kernel": list(self.kernel), "stride": list(self.stride), "padding": list(self.padding)}


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


@STAGES.register("bit_flatten")
class BitFlatten(Stage):
    """(N, H, W, words) packed bits -> (N, H·W·words): the next dense layer's weights are in this order."""

    kind = "bit_flatten"


    def run(self, x):
        return x.reshape(len(x), -1)

    def describe(self):
        return "flatten bits (NHWC order)"


# ---- the packed model -------------------------------------------------------------------------------------------

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

    Built by :func:`minibnn.deploy.freeze`, saved with :meth:`save`, read back with :func:`load`. Nothing in it
    is trained: it has no gradients, no modes and no Python objects beyond its arrays and options."""

    def __init__(self, stages: Sequence[Stage], input_shape: Sequence[int], float_bytes: int,
                 binary_float_bytes: Dict[str, int]):
        self.stages = list(stages)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.float_bytes = int(float_bytes)
        self.binary_float_bytes = dict(binary_float_bytes)

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float32)
        if x.shape[1:] != self.input_shape or x.ndim != len(self.input_shape) + 1:
            raise ValueError(f"PackedModel expects inputs of shape (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {x.shape}")
        if len(x) == 0:        # an empty batch: the shape and dtype of one sample's output, with no rows
            return self(np.zeros((1,) + self.input_shape, np.float32))[:0]
        for stage in self.stages:
            x = stage.run(x)
        return x

    def predict(self, x) -> np.ndarray:
        """The predicted class of each sample: argmax of the logits."""
        return np.argmax(self(x), axis=-1)

    def __repr__(self) -> str:
        body = "\n".join(f"  ({i}) {s.describe()}" for i, s in enumerate(self.stages))
        return f"PackedModel(input_shape={self.input_shape}\n{body}\n)"

    def packed_bytes(self) -> int:
        return sum(a.nbytes for s in self.stages for a in s.arrays().values())

    def size_report(self, print_fn: Optional[Callable[[str], None]] = print) -> SizeReport:
        """Float32 bytes of the model against the packed bytes: per binary layer (weights and bias as float32
        vs packed weights and thresholds / scale / bias) and for the whole model; printed with ``print_fn``."""
        rows = [(f"layer {s.name}", self.binary_float_bytes[s.name], sum(a.nbytes for a in s.arrays().values()))
                for s in self.stages if isinstance(s, BinaryLayer)]
        report = SizeReport(rows, self.float_bytes, self.packed_bytes())
        if print_fn is not None:
            print_fn(report.table())
        return report

    def save(self, path) -> None:
        """Write the model to ``path`` (.npz): arrays ``<stage>/<name>`` and JSON metadata, through
        :func:`minibnn.archive.write_archive` (atomically, never pickled, a SHA-256 per array).
        :func:`minibnn.deploy.load` reads it back bit for bit."""
        arrays: Dict[str, np.ndarray] = {}
        stages = []
        for i, stage in enumerate(self.stages):
            names = []
            for name, value in stage.arrays().items():
                arrays[f"{i}/{name}"] = value
                names.append(name)
            stages.append({"kind": stage.kind, "config": stage.config(), "arrays": names})
        meta = {"input_shape": list(self.input_shape), "float_bytes": self.float_bytes,
                "binary_float_bytes": self.binary_float_bytes, "stages": stages}
        write_archive(path, arrays, meta, format=FORMAT, version=VERSION)
