"""Compiling: :func:`freeze` turns a trained Sequential model into a :class:`~minibnn.deploy.runtime.PackedModel`.

The model (the builders of :mod:`minibnn.models`: ``bnn_mlp``, ``two_layer_mlp``, ``lenet5``, ``vgg_small``,
``vgg7``) is read layer by layer, in eval mode:

* **float layers** (the first and last layers, norms, pools, activations) become float stages that run the very
  :mod:`minibnn.functional` call their module makes, so they give the same float32 numbers. Which layer becomes
  which call is the table :data:`LAYERS`, one entry per layer class, registered beside its converter;
* where float activations enter a binary layer, the per-channel float layers right before it and its input
  quantizer make one monotone step per channel: a single float comparison ``x >= τ_c``
  (:func:`~minibnn.deploy.fold.input_threshold`), whose results are packed into bits;
* a **binary layer** keeps only its packed weights: sign(α·q_w(W)) as bits, plus |α| if it has a weight scale;
* between two binary layers, what the model does to a dot product is one integer comparison per channel
  (Sari et al. 2019, eq. 2; :func:`~minibnn.deploy.fold.chain_thresholds`), fused into the kernel, which then
  writes the next layer's input bits directly;
* a **max-pool** between binary convolutions runs on the bits: the max of ±1 values is the AND of their bits.
  Where the step is decreasing (γ < 0), max-pool-then-step is a *min* of the steps: those channels emit the
  complement (an increasing step), are AND-pooled and flipped back with one XOR;
* the last binary layer before the float classifier writes float32 through the kernel's fused output transform
  ``float32(acc)·α + b``, which is exactly the float layer's output when α = 1.

Exactness: for models without a weight scale α the packed model's logits are bit for bit the float model's
(eval mode), so its predictions are identical. With α (``weight_scale="xnor"`` / ``"trainable"``), the float
model adds K terms ±α and rounds at each step while the kernel rounds acc·α once: the logits agree to float32
rounding.

Example:
    >>> import numpy as np, os, tempfile
    >>> from minibnn import models
    >>> from minibnn.deploy import load
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

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import xnor
from ..xnor.backend import scaled_filters
from ..layers import (BatchNorm1d, BatchNorm2d, Dropout, Flatten, Hardtanh, Identity, LeakyReLU, MaxPool2d, PReLU,
                      ReLU, ReLU6, Sigmoid, Tanh)
from ..module import Module, Sequential
from ..normalization import FixedScaleNorm
from ..quantized import QuantConv2d, QuantLinear
from ..quantizers import ShiftedThreshold, TrainableThreshold
from ..registry import Registry
from ..tensor import Tensor, no_grad
from .fold import Chain, FreezeError, chain_thresholds, input_threshold
from .runtime import BinaryConv, BinaryDense, BitFlatten, BitMaxPool, FloatOp, PackedModel, PackSigns, Stage

_ELEMENTWISE = (Identity, Dropout, Hardtanh, ReLU, ReLU6, Tanh, Sigmoid, LeakyReLU)   # the same map per element
_PER_CHANNEL = (BatchNorm1d, BatchNorm2d, FixedScaleNorm, PReLU)                      # one map per channel


# ==============================================================================================================
# The layer table: layer class name -> the float stages that reproduce the layer in eval mode
# ==============================================================================================================

#: layer class name -> convert(name, module) -> [FloatOp]; a module is converted by the first class of its MRO
#: found here, so a subclass of a supported layer is supported
LAYERS = Registry("layer")


def _op(kind: str, arrays: Optional[dict] = None, **options) -> FloatOp:
    return FloatOp(kind, {k: np.array(v) for k, v in (arrays or {}).items() if v is not None}, options)


def _data(p) -> Optional[np.ndarray]:
    return None if p is None else p.data


def float_stages(entries) -> List[Stage]:
    """The float stages of (name, module, input shape) entries, through :data:`LAYERS`."""
    stages: List[Stage] = []
    for name, m, _ in entries:
        convert = next((LAYERS.get(c.__name__) for c in type(m).__mro__ if c.__name__ in LAYERS), None)
        if convert is None:
            raise FreezeError(f"freeze: layer {name} ({type(m).__name__}) is not supported; freeze handles "
                              f"{', '.join(LAYERS.names())}")
        stages.extend(convert(name, m))
    return stages


@LAYERS.register("QuantLinear", "QuantConv2d")
def _quantized(name, m):     # a quantized layer whose weights are not binary: its input sign, then the float op
    ops = []
    if m.input_quantizer is not None:
        shift, nan_plus = _sign_shift(name, m)
        ops.append(_op("sign", {"shift": shift}, nan_plus=nan_plus))
    if isinstance(m, QuantLinear):
        return ops + [_op("linear", {"weight": m.effective_weight(), "bias": _data(m.bias)})]
    return ops + [_op("conv2d", {"weight": m.effective_weight(), "bias": _data(m.bias)}, stride=list(m.stride),
                      padding=list(m.padding), pad_value=m.pad_value)]


@LAYERS.register("Linear")
def _linear(name, m):
    return [_op("linear", {"weight": m.weight.data, "bias": _data(m.bias)})]


@LAYERS.register("Conv2d")
def _conv2d(name, m):
    return [_op("conv2d", {"weight": m.weight.data, "bias": _data(m.bias)}, stride=list(m.stride),
                padding=list(m.padding), pad_value=m.pad_value)]


@LAYERS.register("BatchNorm1d", "BatchNorm2d")
def _batch_norm(name, m):
    if not m.track_running_stats:
        raise FreezeError(f"freeze: layer {name} ({type(m).__name__}) keeps no running statistics, so it "
                          f"normalises with each batch's statistics even in eval mode; it cannot be frozen")
    return [_op("batch_norm", {"running_mean": m.running_mean, "running_var": m.running_var,
                               "weight": _data(m.weight), "bias": _data(m.bias)}, eps=m.eps, fixed_var=None)]


@LAYERS.register("FixedScaleNorm")
def _fixed_scale_norm(name, m):
    return [_op("batch_norm", {"running_mean": m.running_mean, "running_var": m.running_var,
                               "weight": _data(m.weight), "bias": _data(m.bias)}, eps=1e-5, fixed_var=m.variance)]


@LAYERS.register("Identity", "Dropout")
def _nothing(name, m):       # identities in eval mode
    return []


@LAYERS.register("MaxPool2d")
def _max_pool2d(name, m):
    return [_op("max_pool2d", kernel=list(m.kernel_size), stride=list(m.stride), padding=list(m.padding))]


@LAYERS.register("AvgPool2d")
def _avg_pool2d(name, m):
    return [_op("avg_pool2d", kernel=list(m.kernel_size), stride=list(m.stride), padding=list(m.padding))]


@LAYERS.register("GlobalAvgPool2d")
def _global_avg_pool2d(name, m):
    return [_op("global_avg_pool2d")]


@LAYERS.register("Flatten")
def _flatten(name, m):
    return [_op("flatten", start_dim=m.start_dim, end_dim=m.end_dim)]


@LAYERS.register("Hardtanh")
def _hardtanh(name, m):
    return [_op("hardtanh", min_val=m.min_val, max_val=m.max_val)]


@LAYERS.register("LeakyReLU")
def _leaky_relu(name, m):
    return [_op("leaky_relu", negative_slope=m.negative_slope)]


@LAYERS.register("PReLU")
def _prelu(name, m):
    return [_op("prelu", {"weight": m.weight.data})]


@LAYERS.register("ReLU", "ReLU6", "Tanh", "Sigmoid")
def _activation(name, m):
    return [_op(type(m).__name__.lower())]     # "relu", "relu6", "tanh", "sigmoid"


# ==============================================================================================================
# Binary layers: their input quantizer and their packed weights
# ==============================================================================================================

_SIGN_PROBE = np.array([-np.inf, -3.0, -1.0, -0.5, -1e-30, -0.0, 0.0, 1e-30, 0.5, 1.0, 3.0, np.inf],
                       dtype=np.float32)


def _sign_of_nan(q) -> Optional[bool]:
    """If the quantizer computes sign(x) with sign(0) = +1: whether it maps NaN to +1; else None."""
    try:
        with no_grad():
            out = q(Tensor(np.append(_SIGN_PROBE, np.nan).reshape(1, -1))).data.reshape(-1)
    except Exception:   # noqa: BLE001 -- a quantizer that cannot take this probe is not a plain sign
        return None
    if not np.array_equal(out[:-1], np.where(_SIGN_PROBE >= 0, 1.0, -1.0)) or out[-1] not in (1.0, -1.0):
        return None
    return bool(out[-1] == 1.0)


def _sign_shift(name: str, layer: Module) -> Tuple[Optional[np.ndarray], bool]:
    """(the shift t of a sign(x - t) input quantizer, None for t = 0; whether NaN gives +1), or a FreezeError."""
    q = layer.input_quantizer
    inner = q.quantizer if isinstance(q, (ShiftedThreshold, TrainableThreshold)) else q
    nan_plus = _sign_of_nan(inner)
    if nan_plus is None:
        raise FreezeError(f"freeze: the input quantizer of layer {name} ({type(layer).__name__}: "
                          f"{getattr(q, 'name', type(q).__name__)}) is not sign(x) or a shifted sign(x - t); freeze "
                          f"supports sign-like input quantizers only")
    if isinstance(q, ShiftedThreshold):
        return np.asarray(q.shift, dtype=np.float32), nan_plus
    if isinstance(q, TrainableThreshold):
        return q.threshold.data.astype(np.float32), nan_plus
    return None, nan_plus


def _is_binary(m: Module) -> bool:
    return isinstance(m, (QuantLinear, QuantConv2d)) and m.is_binary


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


def _float32_bytes(layer: Module) -> int:
    """What the binary layer's weight, bias and α take as float32."""
    return 4 * sum(p.size for p in (layer.weight, layer.bias, getattr(layer, "alpha", None)) if p is not None)


# ==============================================================================================================
# What lies between binary layers: foldable or not
# ==============================================================================================================

def _foldable(m: Module) -> bool:
    """A per-channel (or per-element) map that can be evaluated channel by channel."""
    if isinstance(m, (BatchNorm1d, BatchNorm2d)) and not m.track_running_stats:
        return False
    return isinstance(m, _ELEMENTWISE + _PER_CHANNEL)


def _is_flatten_all(m: Module) -> bool:
    return isinstance(m, Flatten) and (m.start_dim, m.end_dim) == (1, -1)


def _chain(entries, a: int, b: int) -> Optional[Chain]:
    """The chain between binary entries a and b if it can be folded into thresholds, else None (it then runs in
    float): per-channel maps, at most one max-pool (after a conv) and one Flatten (conv -> dense)."""
    pre, post, pool, flatten = [], [], None, None
    spatial = isinstance(entries[a][1], QuantConv2d)
    for name, m, _ in entries[a + 1:b]:
        if isinstance(m, MaxPool2d) and spatial and pool is None and flatten is None:
            pool = m
        elif _is_flatten_all(m) and spatial and flatten is None and isinstance(entries[b][1], QuantLinear):
            flatten = m
        elif isinstance(m, _ELEMENTWISE) or (isinstance(m, PReLU) and m.num_parameters == 1):
            (pre if pool is None else post).append((name, m))
        elif isinstance(m, _PER_CHANNEL) and flatten is None and _foldable(m):
            (pre if pool is None else post).append((name, m))
        else:
            return None
    q = entries[b][1].input_quantizer
    per_feature = isinstance(q, TrainableThreshold) or (isinstance(q, ShiftedThreshold) and np.ndim(q.shift) > 0)
    if flatten is not None and per_feature:
        return None   # a threshold per flattened feature is not one per conv channel: run the chain in float
    return Chain(pre, pool, post, flatten)


def _fold_input(entries, done: int, b: int) -> Tuple[int, PackSigns]:
    """(first entry folded, PackSigns stage): the float layers just before binary layer b that act per channel
    (BatchNorm, activations; across a Flatten into a dense layer) and b's input quantizer, as thresholds."""
    name, layer, in_shape = entries[b]
    q, conv = layer.input_quantizer, isinstance(layer, QuantConv2d)
    where = f"{name}.input_quantizer"
    j = b
    if not conv and j > done and _is_flatten_all(entries[j - 1][1]) and len(entries[j - 1][2]) == 3:
        j -= 1                                            # fold across the Flatten: thresholds per channel
    k = j
    while k > done and _foldable(entries[k - 1][1]):
        k -= 1
    if k < j:
        folded = input_threshold([(n, m) for n, m, _ in entries[k:j]], q, entries[k][2], where)
        if folded is not None:
            threshold, negate, nan_plus = folded
            return k, PackSigns(threshold, negate, channels_last=conv, nan_plus=nan_plus)
    folded = input_threshold([], q, in_shape, where)      # the quantizer alone, after the float layers
    if folded is None:
        raise FreezeError(f"freeze: the input quantizer of layer {name} ({type(layer).__name__}: "
                          f"{getattr(q, 'name', type(q).__name__)}) is not a sign(x - t), a monotone step to ±1; "
                          f"its float input cannot be packed into bits")
    threshold, negate, nan_plus = folded
    return b, PackSigns(threshold, negate, channels_last=conv, nan_plus=nan_plus)


def _binary_stage(entries, b: int, nxt: Optional[int], chain: Optional[Chain],
                  bits_hwc: Optional[Tuple[int, int, int]]) -> Tuple[Stage, Optional[np.ndarray]]:
    """(the stage of binary layer b, the channels to min-pool or None). With a chain to the next binary layer
    it writes that layer's input bits (thresholds); without, float32 (its α and bias)."""
    name, layer, in_shape = entries[b]
    if isinstance(layer, QuantConv2d) and layer.pad_value not in (1.0, -1.0, 0.0):
        raise FreezeError(f"freeze: layer {name} (QuantConv2d) pads with {layer.pad_value}; the binary "
                          f"convolution pads with +1, -1 or 0 (exact zero padding)")
    if isinstance(layer, QuantLinear) and len(in_shape) != 1:
        raise FreezeError(f"freeze: layer {name} (QuantLinear) gets inputs of shape {in_shape} per sample; "
                          f"freeze packs dense layers applied to flat (N, features) inputs")
    weight, alpha = _packed_weight(name, layer, bits_hwc)
    bias = None if layer.bias is None else layer.bias.data.astype(np.float32)
    k = int(np.prod(layer.weight.shape[1:]))
    # a dense layer on flattened NHWC bits multiplies whole words: their padding bits count as agreements
    words_k = k if bits_hwc is None else 64 * weight.shape[1]
    flip = None
    if chain is None:
        out = dict(scale=alpha, bias=bias)
    else:
        t, d, flip = chain_thresholds(chain, entries[nxt][1].input_quantizer, (name, entries[nxt][0]), alpha, bias,
                                      k, layer.weight.shape[0], spatial=isinstance(layer, QuantConv2d))
        offset = words_k - k if isinstance(layer, QuantLinear) else 0
        out = dict(threshold=(t.astype(np.int64) + offset).astype(np.int32), direction=d)
    if isinstance(layer, QuantLinear):
        return BinaryDense(weight, k, words_k, name=name, **out), flip
    return BinaryConv(weight, layer.in_channels, layer.stride, layer.padding, int(layer.pad_value), name=name,
                      **out), flip


def _bit_stages(entries, b: int, nxt: int, chain: Chain, flip: Optional[np.ndarray]
                ) -> Tuple[List[Stage], Optional[Tuple[int, int, int]]]:
    """(the stages on bits between binary layers b and nxt: max-pool, flatten; (H, W, C) of a flattened map)."""
    stages: List[Stage] = []
    if chain.pool is not None:
        p = chain.pool
        mask = xnor.pack(np.where(flip, -1, 1).astype(np.int8)) if flip.any() else None
        stages.append(BitMaxPool(p.kernel_size, p.stride, p.padding, mask))
    if chain.flatten is None:
        return stages, None
    stages.append(BitFlatten())
    c, h, w = next(shape for _, m, shape in entries[b + 1:nxt] if m is chain.flatten)
    return stages, (h, w, c)


# ==============================================================================================================
# Freezing
# ==============================================================================================================

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
    for name, m in flat:
        if isinstance(getattr(m, "padding", None), str):   # "valid" is stored as (0, 0); "same" stays a word
            raise FreezeError(f"freeze: layer {name} ({type(m).__name__}) pads {m.padding!r}, which depends on the "
                              f"input size; freeze needs int padding (for stride 1 and an odd kernel k, 'same' is "
                              f"padding=k // 2)")
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
    if any(p.dtype != np.float32 for p in model.parameters()):
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
    """Walk the binary layers in order. Before each: if the activation is float, the float layers up to it and
    its input sign, folded into a PackSigns. Then the layer itself. After it: if what follows up to the next
    binary layer folds into thresholds (a chain), the layer writes that layer's input bits (pooled and
    flattened on the way); otherwise it writes float32 and the float layers after it run as they are."""
    entries = _entries(model, input_shape)
    binary = [i for i, (_, m, _) in enumerate(entries) if _is_binary(m)]
    stages: List[Stage] = []
    binary_float_bytes: Dict[str, int] = {}
    done = 0             # entries[:done] are converted
    in_bits = False      # does the previous binary layer write bits for entries[done]?
    bits_hwc = None      # (H, W, C) when those bits are a flattened NHWC feature map
    for b, nxt in zip(binary, binary[1:] + [None]):
        if not in_bits:
            start, pack_signs = _fold_input(entries, done, b)
            stages += float_stages(entries[done:start]) + [pack_signs]
            bits_hwc = None
        chain = None if nxt is None else _chain(entries, b, nxt)
        stage, flip = _binary_stage(entries, b, nxt, chain, bits_hwc)
        stages.append(stage)
        binary_float_bytes[entries[b][0]] = _float32_bytes(entries[b][1])
        if chain is None:
            done = b + 1
        else:
            bit_stages, bits_hwc = _bit_stages(entries, b, nxt, chain, flip)
            stages += bit_stages
            done = nxt
        in_bits = chain is not None
    stages += float_stages(entries[done:])     # after the last binary layer, which wrote float32
    float_bytes = 4 * (sum(p.size for p in model.parameters()) + sum(
        b.size for _, b in model.named_buffers() if np.issubdtype(b.dtype, np.floating)))
    return PackedModel(stages, input_shape, float_bytes, binary_float_bytes)
