"""The bit format of ±1 data, and the readable NumPy reference of every packed kernel.

This module is THE specification of how minibnn stores ±1 values as bits. Every path (the AVX-512, AVX2, NEON
and scalar kernels in ``kernels/``, the NumPy path of :mod:`minibnn.xnor`, and these references) follows it
exactly:

* **Bit convention.** A set bit means -1, a clear bit means +1.
* **The one sign convention.** Packing takes the sign of real data as the bit ``x < 0``. So ``sign(0) = +1``,
  -0.0 packs as +1, and **NaN packs as +1 (bit 0)**, because ``NaN < 0`` is false. Every binarizer of minibnn
  (the quantizers, the deploy runtime) follows this one rule.
* **Word order.** Packing runs along the *last* axis. Element ``k`` of a row is bit ``k % 64`` (least
  significant bit first) of word ``k // 64``; words are ``uint64`` in machine byte order.
* **Padding of K.** A row of ``K`` elements takes ``W = ceil(K / 64)`` words; the ``64 W - K`` unused high
  bits of the last word are 0, i.e. the row is padded with +1. The true ``K`` always travels with the words.

Why this makes binary networks fast: for ±1 vectors ``a`` and ``b`` of length ``K``, each product is +1 where
the signs agree and -1 where they differ, so ``a · b = agreements - disagreements = K - 2 · disagreements``,
and the disagreements are the set bits of ``a XOR b``: ``a · b = K - 2 · popcount(a XOR b)``. One 64-bit XOR
and one popcount do 64 multiply-accumulates. Padding bits are 0 in both operands, so their XOR is 0 and they
never count.

Example::

    >>> import numpy as np
    >>> a = np.array([[1., -1., -1., 1., 1.]]); b = np.array([[1., 1., -1., -1., 1.]])
    >>> pa, pb = pack(a), pack(b)          # bits 0b00110 and 0b01100
    >>> int(pa[0, 0]), int(pb[0, 0]), int(gemm(pa, pb, 5)[0, 0]), int((a @ b.T)[0, 0])
    (6, 12, 1, 1)

The functions below are the specification that the compiled kernels (``minibnn.xnor``) are tested against;
they favour clarity over speed. Convolutions use NHWC layout: a pixel's channels are packed, so an image
``(B, H, W, C)`` becomes words ``(B, H, W, ceil(C / 64))`` and weights ``(O, KH, KW, C)`` become
``(O, KH, KW, ceil(C / 64))``. They trust their arguments: :mod:`minibnn.xnor` checks them first.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np

from .. import _checks

WORD_BITS = 64

IntPair = Union[int, Tuple[int, int]]
_WHO = "xnor.packing"


def packed_width(k: int) -> int:
    """W = ceil(k / 64): the number of uint64 words that hold k packed elements."""
    return (int(k) + WORD_BITS - 1) // WORD_BITS


def valid_bits(k: int) -> np.ndarray:
    """The words of a packed row of length k with every *used* bit set, shape (ceil(k/64),): the packing of k -1s."""
    return pack(-np.ones(k, dtype=np.int8))


def pack(x: np.ndarray) -> np.ndarray:
    """Pack the signs of ``x`` along its last axis: bit = (x < 0), element k -> bit k % 64 of word k // 64.

    Args:
        x: real array (floating or signed integer) of shape (..., K), K >= 1.
    Returns:
        uint64 array of shape (..., ceil(K / 64)), the unused high bits of each last word 0.

    >>> pack(np.array([-1., 1., -1.]))   # bits 0 and 2 set
    array([5], dtype=uint64)
    >>> pack(np.array([np.nan, -0.0, 0.0, -2.0]))   # NaN, -0.0 and 0.0 are +1 (x < 0 is false): only bit 3
    array([8], dtype=uint64)
    """
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.signedinteger)):
        raise TypeError(f"pack: x must be a real array (floating or signed integer), got dtype {x.dtype}")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"pack: x must have a non-empty last axis to pack, got shape {x.shape}")
    k = x.shape[-1]
    bits = x < 0                                   # -1 -> 1; +1, sign(0) = +1 and NaN (not < 0) -> 0
    pad = packed_width(k) * WORD_BITS - k
    bits = np.pad(bits, [(0, 0)] * (x.ndim - 1) + [(0, pad)])       # pad K with +1 (0 bits)
    as_bytes = np.packbits(bits, axis=-1, bitorder="little")        # element 8i + j -> bit j of byte i
    return np.ascontiguousarray(as_bytes).view("<u8").astype(np.uint64)  # 8 bytes, little end first -> 1 word


def pack_scaled(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Pack the signs of ``x`` and say which rows are *scaled sign vectors* ``x[r] = c_r · (±1, ..., ±1)``.

    Such a row loses nothing when packed: it is its bits and one magnitude. A binary layer's input is one with
    c = 1, a weight row with a per-filter scale α (XNOR-Net, BNN+) one with c = |α|.

    Args:
        x: floating array (..., K).
    Returns:
        (``pack(x)``, magnitudes of shape (...)) with ``magnitudes[r] = |x[r, 0]|`` where every ``|x[r, k]|``
        equals it, NaN where some does not (a NaN in the row included).

    >>> pack_scaled(np.array([[0.5, -0.5, 0.5], [1.0, 2.0, 1.0]]))
    (array([[2],
           [0]], dtype=uint64), array([0.5, nan]))
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"pack_scaled: x must be a floating array, got dtype {x.dtype}")
    c = np.abs(x[..., 0])
    scaled = np.all(np.abs(x) == c[..., None], axis=-1)
    return pack(x), np.where(scaled, c, np.nan).astype(x.dtype)


def unpack(packed: np.ndarray, k: int, dtype=np.float32) -> np.ndarray:
    """Inverse of :func:`pack`: words (..., ceil(k/64)) -> ±1 values (..., k) of ``dtype``.

    >>> unpack(np.array([5], dtype=np.uint64), 3)
    array([-1.,  1., -1.], dtype=float32)
    """
    packed = np.asarray(packed)
    dtype = unpack_dtype(dtype)
    if packed.dtype != np.uint64:
        raise TypeError(f"unpack: packed must have dtype uint64, got {packed.dtype}")
    if packed.ndim == 0 or packed.shape[-1] != packed_width(k):
        raise ValueError(f"unpack: k={k} needs {packed_width(k)} words on the last axis, got shape {packed.shape}")
    as_bytes = np.ascontiguousarray(packed.astype("<u8")).view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, count=k, bitorder="little")
    return (1 - 2 * bits.astype(np.int8)).astype(dtype)


def unpack_dtype(dtype, who: str = "unpack") -> np.dtype:
    """The dtype ``unpack`` writes ±1 into: a floating or signed integer dtype (one that holds -1).

    Unsigned integers (-1 would wrap to 255) and bool (both values would read True) are refused.

    >>> unpack_dtype(np.int8)
    dtype('int8')
    >>> unpack_dtype(bool)
    Traceback (most recent call last):
    ...
    TypeError: unpack: dtype must be a floating or signed integer dtype (one that holds -1 and +1), got bool
    """
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{who}: dtype must be a NumPy dtype, got {dtype!r}") from None
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.signedinteger)):
        raise TypeError(f"{who}: dtype must be a floating or signed integer dtype (one that holds -1 and +1), "
                        f"got {dtype}")
    return dtype


def output_transform(acc: np.ndarray, scale: Optional[np.ndarray] = None, bias: Optional[np.ndarray] = None,
                     threshold: Optional[np.ndarray] = None, direction: Optional[np.ndarray] = None) -> np.ndarray:
    """What every kernel does with its int32 accumulators ``acc`` (..., N) before writing them.

    * nothing given: ``acc`` itself (int32);
    * ``scale`` and/or ``bias`` (float32, per output n): ``float32(acc) * scale + bias`` in float32, rounded after
      the product and after the sum (BatchNorm folded into the layer);
    * ``threshold`` (int32 per n) with optional ``direction`` (int8 ±1 per n, default +1): the ±1 output
      ``+1 if acc >= threshold else -1`` (``acc <= threshold`` where direction is -1, for a negative BatchNorm
      scale), returned *packed* along N, ready to be the next binary layer's input (Sari et al. 2019, eq. 2).
    """
    if threshold is not None:
        return threshold_bits(acc, threshold, direction)
    if scale is None and bias is None:
        return acc
    y = acc.astype(np.float32)
    if scale is not None:
        y = y * scale
    if bias is not None:
        y = y + bias
    return y


def threshold_bits(acc: np.ndarray, threshold: np.ndarray, direction: Optional[np.ndarray] = None) -> np.ndarray:
    """Packed ±1 outputs: +1 where ``acc >= threshold`` (``acc <= threshold`` where direction < 0), else -1."""
    if direction is None:
        direction = np.ones(np.shape(threshold), dtype=np.int8)
    plus_one = np.where(direction >= 0, acc >= threshold, acc <= threshold)
    return pack(np.where(plus_one, 1, -1).astype(np.int8))


def gemm(a: np.ndarray, b: np.ndarray, k: int, **transform) -> np.ndarray:
    """Binary matrix product on packed rows: ``out[m, n] = sum_k a[m, k] b[n, k] = k - 2 popcount(a[m] ^ b[n])``.

    Args:
        a: packed uint64 (M, W), b: packed uint64 (N, W) (b holds one row per output, like a Linear weight),
        k: the true length of the rows, ceil(k / 64) == W.
        transform: optional ``scale``, ``bias``, ``threshold``, ``direction`` (see :func:`output_transform`).
    Returns:
        int32 (M, N); float32 (M, N) with scale/bias; packed uint64 (M, ceil(N / 64)) with a threshold.
    """
    a, b = np.asarray(a), np.asarray(b)
    acc = np.empty((a.shape[0], b.shape[0]), dtype=np.int32)
    rows = max(1, (1 << 22) // max(1, b.shape[0] * b.shape[1]))     # bound the (rows, N, W) temporary
    for m in range(0, a.shape[0], rows):
        disagree = np.bitwise_count(a[m:m + rows, None, :] ^ b[None, :, :]).sum(axis=-1, dtype=np.int64)
        acc[m:m + rows] = k - 2 * disagree
    return output_transform(acc, **transform)


def _taps(out_size: int, stride: int, padding: int, kernel: int, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Input coordinates of every (output position, kernel tap) along one axis, and which of them are real.

    ``index[o, i] = o * stride - padding + i``; ``real[o, i]`` is True where it falls inside ``[0, size)``.
    Computed on int64 from bounded ints, without ever building the padded input (whose size could be huge).
    """
    index = np.arange(out_size, dtype=np.int64)[:, None] * stride - padding + np.arange(kernel, dtype=np.int64)
    real = (index >= 0) & (index < size)
    return np.clip(index, 0, size - 1), real


def conv2d(x: np.ndarray, w: np.ndarray, channels: int, *, stride: IntPair = 1, padding: IntPair = 0,
           pad_value: int = 1, **transform) -> np.ndarray:
    """Binary 2-D convolution (cross-correlation) on packed NHWC data.

    ``out[b, y, x, o] = sum_{i, j, c} x[b, y*sh - ph + i, x*sw - pw + j, c] * w[o, i, j, c]``

    Args:
        x: packed input (B, H, W, ceil(C/64)); w: packed weights (O, KH, KW, ceil(C/64)); channels: C.
        stride, padding: an int or an (h, w) pair.
        pad_value: what the padding pixels hold: +1 (default, "one-padding": a padding pixel is a +1 in every
            channel, which packs as zero words), -1, or 0 (exact zero padding). Zero is not a ±1 value and has
            no bit, so it is computed as one-padding minus a correction: a padding tap added
            ``sum_c w[o, i, j, c] * (+1)``, which is subtracted at the border pixels where that tap falls on
            padding (as Larq Compute Engine does).
        transform: optional ``scale``, ``bias``, ``threshold``, ``direction`` per output channel.
    Returns:
        (B, OH, OW, O) int32 or float32, or packed (B, OH, OW, ceil(O/64)) with a threshold.

    >>> x = pack(np.array([[[[1.], [-1.]], [[-1.], [1.]]]]))      # a 2x2 image, 1 channel: +1 -1 / -1 +1
    >>> conv2d(x, pack(np.ones((1, 2, 2, 1))), 1)[0, :, :, 0]     # the one 2x2 window sums to 0
    array([[0]], dtype=int32)
    """
    x, w = np.asarray(x), np.asarray(w)
    (sh, sw), (ph, pw) = _checks.pair(_WHO, "stride", stride, 1), _checks.pair(_WHO, "padding", padding, 0)
    batch, height, width, wc = x.shape
    out_ch, kh, kw, _ = w.shape
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    rows, real_rows = _taps(oh, sh, ph, kh, height)                          # (OH, KH)
    cols, real_cols = _taps(ow, sw, pw, kw, width)                           # (OW, KW)
    # im2col on packed words: each output pixel's receptive field, in w's (i, j, word) order
    patches = x[:, rows[:, None, :, None], cols[None, :, None, :]]           # (B, OH, OW, KH, KW, wc)
    real = real_rows[:, None, :, None] & real_cols[None, :, None, :]         # (OH, OW, KH, KW)
    pad_word = valid_bits(channels) if pad_value == -1 else np.zeros(wc, dtype=np.uint64)
    patches = np.where(real[None, ..., None], patches, pad_word)
    acc = gemm(patches.reshape(batch * oh * ow, kh * kw * wc), w.reshape(out_ch, kh * kw * wc),
               kh * kw * channels).reshape(batch, oh, ow, out_ch)
    if pad_value == 0 and not real.all():
        weight_sums = channels - 2 * np.bitwise_count(w).sum(axis=-1, dtype=np.int64)   # (O, KH, KW)
        correction = np.einsum("yxij,oij->yxo", (~real).astype(np.int64), weight_sums)
        acc = (acc - correction).astype(np.int32)
    return output_transform(acc, **transform)


def maxpool2d(x: np.ndarray, kernel_size: IntPair, stride: Optional[IntPair] = None,
              padding: IntPair = 0) -> np.ndarray:
    """Max-pool packed NHWC data (B, H, W, words) without unpacking.

    The max of ±1 values is -1 only if every value is -1; with -1 stored as a set bit, that is the AND of the
    words. Padding pixels do not take part (padding <= kernel_size // 2, so every window holds a real pixel),
    so only the real pixels of each window are visited: at most ``min(kernel, size)`` taps per axis, however
    large the kernel.

    >>> x = pack(np.array([[[[-1.], [-1.]], [[-1.], [1.]]]]))     # -1 -1 / -1 +1
    >>> unpack(maxpool2d(x, 2), 1)[0, :, :, 0]                     # the max is +1
    array([[1.]], dtype=float32)
    """
    x = np.asarray(x)
    (kh, kw), (ph, pw) = _checks.pair(_WHO, "kernel_size", kernel_size, 1), _checks.pair(_WHO, "padding", padding, 0)
    sh, sw = _checks.pair(_WHO, "stride", kernel_size if stride is None else stride, 1)
    batch, height, width, wc = x.shape
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    # the real pixels of window o start at max(0, o*s - p): visit min(k, size) of them, skip the rest
    rows, real_rows = _real_window(oh, sh, ph, kh, height)                   # (OH, taps)
    cols, real_cols = _real_window(ow, sw, pw, kw, width)                    # (OW, taps)
    patches = x[:, rows[:, None, :, None], cols[None, :, None, :]]           # (B, OH, OW, taps, taps, wc)
    real = real_rows[:, None, :, None] & real_cols[None, :, None, :]
    patches = np.where(real[None, ..., None], patches, np.iinfo(np.uint64).max)   # all ones: AND's identity
    return np.ascontiguousarray(np.bitwise_and.reduce(patches, axis=(3, 4)))


def _real_window(out_size: int, stride: int, padding: int, kernel: int, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Like :func:`_taps`, for the real pixels only: the window of output o covers ``[o*s - p, o*s - p + k)``;
    its real part ``[max(0, o*s - p), min(size, o*s - p + k))`` holds at most ``min(k, size)`` pixels."""
    start = np.arange(out_size, dtype=np.int64) * stride - padding
    first, stop = np.maximum(start, 0), np.minimum(start + kernel, size)
    index = first[:, None] + np.arange(min(kernel, size), dtype=np.int64)
    return np.minimum(index, size - 1), index < stop[:, None]
