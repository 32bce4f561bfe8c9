"""Fast paths for the two commonest window ops: the stride-1 convolution ("shift-GEMM") and the max pooling whose
windows tile the image. They compute what :class:`~minibnn.functional.Conv2dFn` and
:class:`~minibnn.functional.MaxPool2dFn` state in their docstrings, faster; those ops call them in one line when
they apply and keep the general im2col path for every other case. Every helper takes the ALREADY-PADDED input.

**Shift-GEMM convolution** (stride 1, no im2col). Put the padded image channels-last and flatten it to rows:
``xf = x_pad.transpose(N, Hp, Wp, C).reshape(N·Hp·Wp, C)``. Row ``r = (n·Hp + y)·Wp + x`` is pixel (y, x) of
image n, so the pixel under kernel tap (p, q) of output pixel (y, x) is row ``r + s_pq`` with ``s_pq = p·Wp + q``.
The convolution is then a sum of kh·kw ordinary matrix products, one per tap, on shifted row ranges of ONE
array (no window is ever copied):

    out_rows[r] = Σ_{p,q} xf[r + s_pq] @ W_pq,          W_pq = W[:, :, p, q]ᵀ  (C, O)
    dW_pq       = Σ_r xf[r + s_pq]ᵀ · G[r]              (G: the gradient at rows (n, y, x), zeros elsewhere)
    dx_rows[j]  = Σ_{p,q} G[j - s_pq] @ W_pqᵀ            (the transposed convolution, itself a shift-GEMM)

Rows r whose (y, x) lies outside the OH x OW output (x ≥ OW or y ≥ OH: a tap would wrap into the next row or
image) are computed too and dropped: (Hp·Wp) / (OH·OW) - 1 extra work (13% at 32x32, 27% at 16x16), the price
of using plain GEMMs. The products run over chunks of rows so that the accumulator stays in cache. Results equal
the im2col path's up to float32 rounding (the sums over C·kh·kw run in another order). Worth it when C is large
enough for a GEMM with inner dimension C to be efficient (:func:`shift_gemm_applies`).

Who computes it: float32 runs on the compiled AVX-512 kernels of ``kernels/conv_float.c`` (register tiles of
8 rows x 32 channels, only the rows that are output pixels, threads under :func:`minibnn.set_num_threads`
with the same bits on any thread count) when the column count is a multiple of 16; otherwise, and for
float64, NumPy's matmul on the same row ranges. ``USE_COMPILED = False`` forces NumPy. (An AVX2 version of the
tiles was tried: over vgg-small's five layer shapes, forward and both gradients, it took 502 ms against 478 ms
for NumPy on an AVX2 BLAS, so a CPU without AVX-512 uses NumPy.)

**Max pooling with windows that tile the image** (kernel == stride, no padding): the windows are the blocks of
``x.reshape(N, C, OH, kh, OW, kw)``, so the forward is the elementwise maximum of the kh·kw strided views
``block[:, :, :, p, :, q]`` (no window copy, no argmax), and the backward gives each gradient to the FIRST element
of its window, in row-major (p, q) order, that equals the maximum: argmax's tie rule, so outputs and gradients are
identical to the general path's (ties are common: a binary layer's outputs are integers).

Example:
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> max_pool_tiles(x, (2, 2))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    >>> conv = ShiftConv(np.ones((1, 2, 4, 4)), (3, 3))          # padded input (N, C, Hp, Wp), 3x3 kernel
    >>> conv.forward(np.ones((1, 2, 3, 3)), None)[0, 0]         # every output sums 2·3·3 ones
    array([[18., 18.],
           [18., 18.]])
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

try:    # the compiled helpers (kernels/conv_float.c); without them, or for float64, the NumPy code below
    from ._xnor import maxpool_tiles_backward_f32 as _c_pool_backward
    from ._xnor import planes_to_rows_f32 as _c_to_rows, rows_to_planes_f32 as _c_to_planes
    from ._xnor import shift_gemm_dw_f32 as _c_dw, shift_gemm_f32 as _c_products
except ImportError:
    _c_products = _c_dw = _c_pool_backward = _c_to_rows = _c_to_planes = None

__all__ = ["shift_gemm_applies", "ShiftConv", "tiles_pool", "max_pool_tiles", "max_pool_tiles_backward"]

Pair = Tuple[int, int]

USE_COMPILED = True  # False: NumPy only (the tests compare both)
MIN_CHANNELS = 8     # below this, a GEMM with inner dimension C is too thin: im2col's C·kh·kw is better
CHUNK_ROWS = 4096    # rows per chunk of the shifted products (the accumulator, CHUNK_ROWS x O, stays in cache)


# --------------------------------------------------------------------------------------------------------------
# Shift-GEMM convolution
# --------------------------------------------------------------------------------------------------------------
def shift_gemm_applies(x_shape: Tuple[int, ...], w_shape: Tuple[int, ...], stride: Pair) -> bool:
    """True when :class:`ShiftConv` serves this convolution: stride 1, at least ``MIN_CHANNELS`` input channels,
    a non-empty batch and a kernel larger than 1x1 (a 1x1 convolution is already one GEMM)."""
    return (tuple(stride) == (1, 1) and x_shape[1] >= MIN_CHANNELS and x_shape[0] > 0
            and w_shape[2] * w_shape[3] > 1)


def _compiled(*arrays: np.ndarray) -> bool:
    """True when the compiled kernels may run on these arrays (float32; they return False themselves when the
    CPU lacks AVX-512 or the column count is not a multiple of 16)."""
    return USE_COMPILED and _c_products is not None and all(a.dtype == np.float32 for a in arrays)


def _row_set(n: int, hp: int, wp: int, top: int, left: int, h: int, w: int) -> np.ndarray:
    """The rows of the pixels (top + y, left + x), y < h, x < w, of n padded images (Hp, Wp) flattened to rows,
    as the compiled kernels take them: (offset, image stride, runs, run stride, run length, images)."""
    return np.array([top * wp + left, hp * wp, h, wp, w, n], dtype=np.int64)


def _pixels(rows: np.ndarray, n: int, h: int, w: int, offset: int, img_stride: int, row_stride: int) -> np.ndarray:
    """The (n, h, w, C) view of the rows r = offset + i·img_stride + y·row_stride + x of ``rows`` (R, C)."""
    item, c = rows.itemsize, rows.shape[1]
    return np.lib.stride_tricks.as_strided(rows[offset:], shape=(n, h, w, c),
                                           strides=(img_stride * c * item, row_stride * c * item, c * item, item))


def _to_rows(planes: np.ndarray, rows: np.ndarray, offset: int, img_stride: int, row_stride: int) -> None:
    """rows[offset + i·img_stride + y·row_stride + x] = planes[i, :, y, x]: NCHW to channels-last rows (the
    compiled copy in blocks, or NumPy's transposing copy, which is several times slower)."""
    if _compiled(planes, rows) and _c_to_rows is not None:
        _c_to_rows(np.ascontiguousarray(planes), rows, offset, img_stride, row_stride)
        return
    n, _, h, w = planes.shape
    _pixels(rows, n, h, w, offset, img_stride, row_stride)[...] = planes.transpose(0, 2, 3, 1)


def _to_planes(rows: np.ndarray, n: int, h: int, w: int, offset: int, img_stride: int, row_stride: int):
    """The NCHW images (n, C, h, w) whose pixel (y, x) of image i is row offset + i·img_stride + y·row_stride + x
    of ``rows``: the inverse of :func:`_to_rows`."""
    planes = np.empty((n, rows.shape[1], h, w), dtype=rows.dtype)
    if _compiled(rows) and _c_to_planes is not None:
        _c_to_planes(rows, planes, offset, img_stride, row_stride)
    else:
        planes[...] = _pixels(rows, n, h, w, offset, img_stride, row_stride).transpose(0, 3, 1, 2)
    return planes


def _shifted_products(src: np.ndarray, mats: np.ndarray, shifts, out: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """out[r] = Σ_k src[r + shifts[k]] @ mats[k] (mats (T, K, N)) for the rows r of the row set ``rows``
    (compiled), or for every row of ``out`` whose reads exist (NumPy, chunk by chunk): the rows outside the set
    are garbage either way."""
    if _compiled(src, mats) and _c_products(src, mats, np.asarray(shifts, np.int64), out, rows):
        return out
    out = out[:len(src) - max(shifts)]
    rows = len(out)
    scratch = np.empty((min(CHUNK_ROWS, rows), out.shape[1]), dtype=out.dtype)
    for a in range(0, rows, CHUNK_ROWS):
        b = min(a + CHUNK_ROWS, rows)
        acc, tmp = out[a:b], scratch[:b - a]
        np.matmul(src[a + shifts[0]:b + shifts[0]], mats[0], out=acc)
        for s, m in zip(shifts[1:], mats[1:]):
            np.matmul(src[a + s:b + s], m, out=tmp)
            acc += tmp
    return out


class ShiftConv:
    """A stride-1 convolution of the padded NCHW images ``xp`` with a kh x kw kernel, by shift-GEMM (module
    docstring). Construction stores ``xp`` as channels-last rows, which the backward needs for dW:

        conv = ShiftConv(xp, (kh, kw))
        out = conv.forward(w, b)              # (N, O, OH, OW)
        dxp, dw = conv.backward(grad, w)      # dL/dxp (N, C, Hp, Wp), dL/dW (O, C, kh, kw)

    ``backward(grad, w, need_dx=False)`` / ``need_dw=False`` skip a gradient (None in its place);
    ``interior=(top, left, h, w)`` returns dL/dxp only on that region (the unpadded input: the padding's
    gradient is never computed).
    """

    def __init__(self, xp: np.ndarray, kernel: Pair):
        n, c, hp, wp = xp.shape
        kh, kw = kernel
        self.shape, self.kernel = (n, c, hp, wp), (kh, kw)
        self.out_size = (hp - kh + 1, wp - kw + 1)
        self.shifts = [p * wp + q for p in range(kh) for q in range(kw)]
        self.rows = n * hp * wp - self.shifts[-1]        # output rows r whose every tap r + s_pq exists
        self.xf = np.empty((n * hp * wp, c), dtype=xp.dtype)
        _to_rows(xp, self.xf, 0, hp * wp, wp)
        self.output_rows = _row_set(n, hp, wp, 0, 0, *self.out_size)   # the rows r that are output pixels

    def _taps(self, w: np.ndarray):
        """W_pq = W[:, :, p, q]ᵀ (C, O) for the taps in row-major (p, q) order: (kh·kw, C, O)."""
        return np.ascontiguousarray(w.transpose(2, 3, 1, 0)).reshape(-1, w.shape[1], w.shape[0])

    def forward(self, w: np.ndarray, b: Optional[np.ndarray]) -> np.ndarray:
        (n, _, hp, wp), (oh, ow), o = self.shape, self.out_size, len(w)
        out = np.empty((n * hp * wp, o), dtype=self.xf.dtype)     # rows outside the output pixels: garbage
        _shifted_products(self.xf, self._taps(w), self.shifts, out, self.output_rows)
        out = _to_planes(out, n, oh, ow, 0, hp * wp, wp)
        if b is not None:
            out += b[:, None, None]
        return out

    def backward(self, grad: np.ndarray, w: np.ndarray, need_dx: bool = True, need_dw: bool = True,
                 interior: Optional[Tuple[int, int, int, int]] = None):
        (n, c, hp, wp), (kh, kw), (oh, ow), o = self.shape, self.kernel, self.out_size, len(w)
        top, left, h, wd = (0, 0, hp, wp) if interior is None else interior
        smax = self.shifts[-1]
        gb = np.zeros((smax + n * hp * wp, o), dtype=grad.dtype)      # smax zero rows, then G in the row layout
        _to_rows(grad, gb, smax, hp * wp, wp)
        dw = dxp = None
        if need_dw:
            dw = self._tap_gradients(gb[smax:])
            dw = np.ascontiguousarray(dw.reshape(kh, kw, c, o).transpose(3, 2, 0, 1))
        if need_dx:
            w_t = np.ascontiguousarray(self._taps(w).transpose(0, 2, 1))   # W_pqᵀ (O, C)
            dx_rows = np.empty((n * hp * wp, c), dtype=grad.dtype)
            wanted = _row_set(n, hp, wp, top, left, h, wd)
            _shifted_products(gb, w_t, [smax - s for s in self.shifts], dx_rows, wanted)
            dxp = _to_planes(dx_rows, n, h, wd, top * wp + left, hp * wp, wp)
        return dxp, dw

    def _tap_gradients(self, g_rows: np.ndarray) -> np.ndarray:
        """dW_pq = xf[s_pq : s_pq + L]ᵀ @ g_rows[:L] for every tap: (kh·kw, C, O)."""
        taps, rows = len(self.shifts), self.rows
        dw = np.empty((taps, self.xf.shape[1], g_rows.shape[1]), dtype=g_rows.dtype)
        shifts = np.asarray(self.shifts, np.int64)
        if _compiled(self.xf, g_rows) and _c_dw(self.xf, g_rows, shifts, dw, self.output_rows):
            return dw
        for k, s in enumerate(self.shifts):
            np.matmul(self.xf[s:s + rows].T, g_rows[:rows], out=dw[k])
        return dw


# --------------------------------------------------------------------------------------------------------------
# Max pooling over windows that tile the image
# --------------------------------------------------------------------------------------------------------------
def tiles_pool(kernel: Pair, stride: Pair, padding) -> bool:
    """True when the pooling windows tile the image: kernel == stride and no padding (``padding`` (ph, pw) or
    ((top, bottom), (left, right)))."""
    return tuple(kernel) == tuple(stride) and not np.any(padding)


def _blocks(x: np.ndarray, kernel: Pair) -> np.ndarray:
    """x (N, C, H, W) as (N, C, OH, kh, OW, kw): block [:, :, i, :, j, :] is window (i, j). Rows and columns past
    OH·kh, OW·kw (which no window reaches) are left out. A view when x is contiguous."""
    (n, c, h, w), (kh, kw) = x.shape, kernel
    oh, ow = h // kh, w // kw
    return x[:, :, :oh * kh, :ow * kw].reshape(n, c, oh, kh, ow, kw)


def max_pool_tiles(x: np.ndarray, kernel: Pair) -> np.ndarray:
    """The maximum over each kh x kw tile of x (N, C, H, W): elementwise maximum of the kh·kw strided views.
    NaN propagates (as argmax picks a NaN)."""
    blocks = _blocks(x, kernel)
    out = blocks[:, :, :, 0, :, 0].copy()
    for p in range(kernel[0]):
        for q in range(kernel[1]):
            if p or q:
                np.maximum(out, blocks[:, :, :, p, :, q], out=out)
    return out


def max_pool_tiles_backward(x: np.ndarray, out: np.ndarray, grad: np.ndarray, kernel: Pair) -> np.ndarray:
    """dL/dx of :func:`max_pool_tiles`: each grad[n, c, i, j] goes to the first element of tile (i, j), in
    row-major order, equal to the maximum ``out`` (a NaN counts as equal to a NaN maximum), zero elsewhere."""
    if _compiled(x, out, grad) and _c_pool_backward is not None:
        n, c, h, w = x.shape
        dx = np.empty(x.shape, dtype=np.float32)
        planes = lambda a: np.ascontiguousarray(a).reshape(n * c, a.shape[2], a.shape[3])   # noqa: E731
        _c_pool_backward(planes(x), planes(out), planes(grad), dx.reshape(n * c, h, w), *kernel)
        return dx
    blocks = _blocks(x, kernel)
    dx = np.zeros(x.shape, dtype=grad.dtype)
    d_blocks = _blocks(dx, kernel)
    free = np.ones(out.shape, dtype=bool)       # no element of the tile took the gradient yet
    has_nan = bool(np.isnan(out).any())
    for p in range(kernel[0]):
        for q in range(kernel[1]):
            hit = blocks[:, :, :, p, :, q] == out
            if has_nan:
                hit |= np.isnan(blocks[:, :, :, p, :, q])
            hit &= free
            np.copyto(d_blocks[:, :, :, p, :, q], grad, where=hit)
            free &= ~hit
    return dx
