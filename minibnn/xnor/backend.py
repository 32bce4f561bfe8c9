"""The kernel backend of binary layers: a ±1 product's forward on the XNOR-popcount kernels, its backward in NumPy.

A binary layer multiplies q_in(x) ∈ {-1, +1} by α·q_w(W) ∈ {-α_n, +α_n} (one magnitude per output row n; α = 1
without a weight scale). Each dot product of length K is then ``α_n · (K - 2 popcount(x XOR w_n))``
(:mod:`minibnn.xnor.packing`), an integer times α_n, which :func:`minibnn.xnor.gemm` / :func:`~minibnn.xnor.conv2d`
compute from packed bits with α_n and the bias fused into the output transform. :func:`xnor_linear` and
:func:`xnor_conv2d` are the alternative forwards of :class:`~minibnn.functional.LinearFn` and
:class:`~minibnn.functional.Conv2dFn`, which call them when given ``use_kernel=True`` (a binary layer passes
its ``kernel_active``):

* the forward packs both operands with :func:`minibnn.xnor.pack_scaled`, which also checks in the same pass
  that they are ±1 (input) and ±α_n (weight rows). If they are not -- a full-precision quantizer, a ternary
  one, a step to {0, 1}, a NaN -- or the batch is empty, they return None and the op runs its float product,
  so the answer is always the float op's;
* the backward is the float op's own, unchanged: dL/dx = g @ W_eff, dL/dW_eff = gᵀ @ x (for the convolution,
  im2col, or the shift-GEMM of :mod:`minibnn.fastconv`, which keeps the padded ±1 input instead of the columns),
  on the same arrays, so **every gradient is bit for bit the one of the float path**;
* the forward output is bit for bit the float path's when α = 1 (a ±1 dot product is an exact integer in
  float32 up to K = 2^24, and ``float32(acc) + b`` rounds once, as ``x @ Wᵀ + b`` does). With a weight scale,
  the float path adds K terms ±α_n and rounds at each step, the kernel rounds ``acc · α_n`` once: both agree to
  float32 rounding, the kernel's being the correctly rounded one.

Why it matters in training: Larq trains binary networks with fake quantization (float matmuls on ±1 values)
and runs bit-packed kernels only after conversion; here the training forward itself runs packed
(``benchmarks/bench_train_binary.py`` measures what that buys per step: the backward's two float products
remain).

Layout of the convolution: the layers are NCHW (float), the kernel is NHWC with the channels of a pixel packed
into words. The forward transposes x (N, C, H, W) -> (N, H, W, C) and W (O, C, kh, kw) -> (O, kh, kw, C)
before packing (one copy each), and the output (N, OH, OW, O) back to (N, O, OH, OW). Padding: ``pad_value``
+1 and -1 are padding pixels of the kernel, 0 is its exact zero padding (a correction term); any other pad
value runs the float convolution. The kernel pads every side equally; unequal sides (``padding="same"`` at an
even size or stride 2) with ±1 are padded here in NumPy before packing (the border stays ±1, the kernel pads
nothing more), and with 0 run the float convolution (a zero pixel cannot be packed).

The switch:

* global: :func:`use_kernels` (``use_kernels(False)`` turns the kernels off; ``with use_kernels(False): ...``
  restores the previous setting afterwards; ``use_kernels(None)`` goes back to automatic) and the environment
  variable ``MINIBNN_USE_KERNELS=0`` / ``1`` (read at import and by ``use_kernels(None)``). Automatic means: on
  when the compiled extension runs here (``minibnn.xnor.active_path() != "numpy"``), off otherwise, since the
  NumPy fallback of the kernels is slower than a float matmul;
* per layer: ``QuantLinear(..., use_kernel=False)`` never uses them, ``use_kernel=True`` always tries (whatever
  the global switch says), ``None`` (default) follows the global switch. Only binary layers
  (``layer.is_binary``) try at all.

Example:
    >>> import numpy as np
    >>> from minibnn import Tensor
    >>> from minibnn import functional as F
    >>> rng = np.random.default_rng(0)
    >>> x = Tensor(np.where(rng.random((4, 70)) < 0.5, -1.0, 1.0), requires_grad=True)
    >>> w = Tensor(np.where(rng.random((3, 70)) < 0.5, -1.0, 1.0), requires_grad=True)
    >>> y = F.linear(x, w, use_kernel=True)            # XNOR-popcount forward
    >>> y.sum().backward()
    >>> np.array_equal(y.data, F.linear(x, w).data), np.array_equal(x.grad, np.ones((4, 3), np.float32) @ w.data)
    (True, True)
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np

from .. import xnor
from ..im2col import pad2d, per_side

__all__ = ["use_kernels", "kernels_enabled", "kernel_wanted", "scaled_filters", "xnor_linear", "xnor_conv2d",
           "ENV_VAR"]

ENV_VAR = "MINIBNN_USE_KERNELS"
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _from_environment() -> Optional[bool]:
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value in _ON or value in _OFF:
        return value in _ON
    raise ValueError(f"the environment variable {ENV_VAR} must be 0 or 1 (or auto), got {value!r}")


_setting: Optional[bool] = _from_environment()   # None: automatic


# --------------------------------------------------------------------------------------------------------------
# The switch
# --------------------------------------------------------------------------------------------------------------
class use_kernels:
    """Turn the kernels of binary layers on (True), off (False) or back to automatic (None, re-reading
    $MINIBNN_USE_KERNELS), now; as a context manager, the previous setting comes back at the end of the block.

    Example:
        >>> with use_kernels(False):
        ...     kernels_enabled()
        False
    """

    def __init__(self, enabled: Optional[bool] = True):
        global _setting
        if enabled is not None and not isinstance(enabled, (bool, np.bool_)):
            raise TypeError(f"use_kernels(enabled) expects True, False or None, got {enabled!r}")
        self._previous = _setting
        _setting = _from_environment() if enabled is None else bool(enabled)

    def __enter__(self) -> "use_kernels":
        return self

    def __exit__(self, *exc) -> bool:
        global _setting
        _setting = self._previous
        return False


def kernels_enabled() -> bool:
    """The global switch: True when binary layers run their forward on the kernels (unless a layer says no)."""
    if _setting is None:
        return xnor.active_path() != "numpy"
    return _setting


def kernel_wanted(layer_choice: Optional[bool]) -> bool:
    """A layer's ``use_kernel`` (True / False) if given, else the global switch."""
    return kernels_enabled() if layer_choice is None else bool(layer_choice)


# --------------------------------------------------------------------------------------------------------------
# Packing the operands
# --------------------------------------------------------------------------------------------------------------
def _pm1_rows(x: np.ndarray) -> Optional[np.ndarray]:
    """pack(x) if every element of x (..., K) is exactly ±1, else None."""
    packed, magnitude = xnor.pack_scaled(np.ascontiguousarray(x))
    return packed if np.all(magnitude == 1) else None


def scaled_filters(w: np.ndarray) -> Optional[Tuple[np.ndarray, Optional[np.ndarray]]]:
    """(pack(w), α) if every filter w[n] (all axes but 0 packed along the last) is α_n·(±1, ...), else None.

    α is None when every α_n is 1 (no scale to apply). Used by the training forward here and by
    :func:`minibnn.deploy.freeze`."""
    packed, magnitude = xnor.pack_scaled(np.ascontiguousarray(w))
    magnitude = magnitude.reshape(len(w), -1)
    alpha = magnitude[:, 0]
    if not np.all(magnitude == alpha[:, None]):   # NaN (a row not ±c) is never equal
        return None
    return packed, (None if np.all(alpha == 1) else alpha)


def _output(run, alpha: Optional[np.ndarray], bias: Optional[np.ndarray], dtype: np.dtype,
            channel_axis_shape: Tuple[int, ...]) -> np.ndarray:
    """acc · α + b in ``dtype``: fused into the kernel for float32, after an int32 kernel output for float64.

    ``run(**transform)`` calls the kernel; ``channel_axis_shape`` broadcasts (N,) vectors over its output."""
    if dtype == np.float32:
        scale = None if alpha is None else alpha.astype(np.float32)
        b = bias if bias is not None else (np.zeros(channel_axis_shape[-1], np.float32) if scale is None else None)
        return run(scale=scale, bias=b)
    out = run().astype(dtype)
    if alpha is not None:
        out *= alpha.reshape(channel_axis_shape)
    if bias is not None:
        out += bias.reshape(channel_axis_shape)
    return out


# --------------------------------------------------------------------------------------------------------------
# The kernel forwards of LinearFn and Conv2dFn
# --------------------------------------------------------------------------------------------------------------
def xnor_linear(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """x @ wᵀ + b on the XNOR-popcount kernel, or None when x is not ±1 or a row w[n] is not ±α_n:

        out[m, n] = α_n · (K - 2 popcount(x_m XOR sign(w[n]))) + b_n.

    The forward of :class:`~minibnn.functional.LinearFn` with ``use_kernel=True``; None (also for an empty
    batch) makes it run the float product instead.
    """
    n_out, k = w.shape
    x2 = x.reshape(-1, k)
    if len(x2) == 0:
        return None
    px = _pm1_rows(x2)
    filters = scaled_filters(w) if px is not None else None
    if filters is None:
        return None
    pw, alpha = filters
    out = _output(lambda **t: xnor.gemm(px, pw, k, **t), alpha, b, x.dtype, (1, n_out))
    return out.reshape(x.shape[:-1] + (n_out,))


def xnor_conv2d(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], stride: Tuple[int, int],
                padding, pad_value: float) -> Optional[np.ndarray]:
    """The convolution of :class:`~minibnn.functional.Conv2dFn` on the XNOR-popcount kernel, or None when x is
    not ±1, a filter w[o] is not ±α_o or the padding is not +1, -1 or 0 (not 0 on unequal sides):

        out[n, o, i, j] = α_o · Σ_{c,p,q} x_pad[n, c, i·sh + p, j·sw + q] · sign(w)[o, c, p, q] + b[o],

    computed on NHWC packed bits (x and w transposed to channels-last, the output transposed back).
    ``padding`` is (ph, pw) or ((top, bottom), (left, right)).
    """
    (top, bottom), (left, right) = per_side(padding)
    if pad_value not in (1.0, -1.0, 0.0) or len(x) == 0:
        return None
    x = x.transpose(0, 2, 3, 1)                            # (N, H, W, C): channels last
    if (top, left) != (bottom, right):                     # unequal sides: pad here, the kernel pads nothing
        if pad_value == 0.0:
            return None
        x = pad2d(x, ((top, bottom), (left, right)), pad_value, axes=(1, 2))
        top = left = 0
    px = _pm1_rows(x)                                      # (N, H, W, ceil(C/64)): packed
    filters = scaled_filters(w.transpose(0, 2, 3, 1)) if px is not None else None   # (O, kh, kw, words)
    if filters is None:
        return None
    pw, alpha = filters
    run = lambda **t: xnor.conv2d(px, pw, w.shape[1], stride=stride, padding=(top, left),  # noqa: E731
                                  pad_value=int(pad_value), **t)
    out = _output(run, alpha, b, x.dtype, (1, 1, 1, w.shape[0]))   # (N, OH, OW, O)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))
