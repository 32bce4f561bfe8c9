"""Prototype (not library code): a faster NumPy convolution forward/backward, and 2x2 max pooling, checked
against today's formulation on vgg-small's layer shapes (issue 9, item 2).

Today (minibnn/functional.py, copied below as ``Current``): per image n, cols[n] = im2col (C·kh·kw, OH·OW);
out[n] = W2 @ cols[n] (N batched small GEMMs); backward dW = Σ_n g[n] @ cols[n]ᵀ (N GEMMs, then a sum over n),
dcols[n] = W2ᵀ @ g[n] and col2im by nine strided adds on NCHW.

Proposed (``Fast``): channels-last inside the op, the whole batch as one GEMM, NCHW at the boundary:

    xp   = pad(x as NHWC, pad_value)                        (N, H+2p, W+2p, C)        one copy
    cols = [xp[:, i·s+p, j·s+q, :]]  (N·OH·OW, kh·kw·C)     nine contiguous-row slice copies
    out  = cols @ W2,   W2 = W transposed (kh, kw, C, O) → (kh·kw·C, O)        ONE GEMM, M = N·OH·OW
    back: g2 = g as (N·OH·OW, O)                                                one transpose copy
          dW2   = colsᵀ @ g2                                                    ONE GEMM (K = N·OH·OW)
          dx    = (stride 1) full correlation of pad(g2) with the flipped kernel: im2col of g then ONE GEMM
                  (no scatter-add), or (any stride) dcols = g2 @ W2ᵀ and col2im by nine adds on NHWC rows.

Pooling 2x2/2: forward reshape (N, C, H/2, 2, W/2, 2) and max over the window axes; backward puts the gradient
on the FIRST maximum of each window (argmax's tie rule, which matters: binary nets have many ties), found by
four comparisons, without argmax / take_along_axis.

Run:  python benchmarks/proto_conv.py [--repeats 20] [--batch 32]   (1 thread; prints max errors and speedups)
"""
from __future__ import annotations

import os

for _var in ("MINIBNN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

try:
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
except ImportError:
    pass


# ---------------------------------------------------------------------------------------------------------------
# Today's formulation (a copy of minibnn/functional.py's Conv2dFn / _unwindow at the time of writing)
# ---------------------------------------------------------------------------------------------------------------
class Current:
    def forward(self, x, w, stride=(1, 1), padding=(1, 1), pad_value=0.0):
        self.x_shape, self.w, self.stride, self.padding = x.shape, w, stride, padding
        ph, pw = padding
        n, c, h, wd = x.shape
        xp = np.full((n, c, h + 2 * ph, wd + 2 * pw), pad_value, dtype=x.dtype)
        xp[:, :, ph:ph + h, pw:pw + wd] = x
        win = sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
        oh, ow = win.shape[2:4]
        self.cols = win.transpose(0, 1, 4, 5, 2, 3).reshape(n, -1, oh * ow)
        return np.matmul(w.reshape(len(w), -1), self.cols).reshape(n, -1, oh, ow)

    def backward(self, grad):
        n, o, oh, ow = grad.shape
        g = grad.reshape(n, o, oh * ow)
        dw = np.matmul(g, self.cols.transpose(0, 2, 1)).sum(axis=0).reshape(self.w.shape)
        dcols = np.matmul(self.w.reshape(o, -1).T, g).reshape(n, *self.w.shape[1:], oh, ow)
        patches = dcols.transpose(0, 1, 4, 5, 2, 3)
        kh, kw = self.w.shape[2:]
        (sh, sw), (ph, pw) = self.stride, self.padding
        out = np.zeros((n, self.x_shape[1], self.x_shape[2] + 2 * ph, self.x_shape[3] + 2 * pw), dtype=grad.dtype)
        for p in range(kh):
            for q in range(kw):
                out[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw] += patches[:, :, :, :, p, q]
        return out[:, :, ph:ph + self.x_shape[2], pw:pw + self.x_shape[3]], dw


# ---------------------------------------------------------------------------------------------------------------
# The proposal
# ---------------------------------------------------------------------------------------------------------------
def im2col_nhwc(xp, kh, kw, oh, ow, sh=1, sw=1):
    """(N, Hp, Wp, C) padded NHWC -> cols (N·OH·OW, kh·kw·C), column index (p·kw + q)·C + c."""
    n, _, _, c = xp.shape
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=xp.dtype)
    for p in range(kh):
        for q in range(kw):
            cols[:, :, :, p, q, :] = xp[:, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :]
    return cols.reshape(n * oh * ow, kh * kw * c)


class Fast:
    def __init__(self, dx_method="gemm"):
        self.dx_method = dx_method  # "gemm": transposed convolution as a convolution; "col2im": nine adds

    def forward(self, x, w, stride=(1, 1), padding=(1, 1), pad_value=0.0, nchw_out=True):
        n, c, h, wd = x.shape
        o, _, kh, kw = w.shape
        (sh, sw), (ph, pw) = stride, padding
        oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
        xp = np.empty((n, h + 2 * ph, wd + 2 * pw, c), dtype=x.dtype)
        if ph or pw:  # only the border gets pad_value
            xp[:, :ph], xp[:, ph + h:], xp[:, :, :pw], xp[:, :, pw + wd:] = pad_value, pad_value, pad_value, pad_value
        xp[:, ph:ph + h, pw:pw + wd, :] = x.transpose(0, 2, 3, 1)
        self.cols = im2col_nhwc(xp, kh, kw, oh, ow, sh, sw)
        self.w2 = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(kh * kw * c, o))
        self.shapes = (x.shape, w.shape, stride, padding, oh, ow)
        out = self.cols @ self.w2  # (N·OH·OW, O): one GEMM
        out = out.reshape(n, oh, ow, o).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out) if nchw_out else out

    def backward(self, grad):
        (n, c, h, wd), (o, _, kh, kw), (sh, sw), (ph, pw), oh, ow = self.shapes
        g2 = np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).reshape(n * oh * ow, o)
        dw = (self.cols.T @ g2).reshape(kh, kw, c, o).transpose(3, 2, 0, 1)  # one GEMM
        if self.dx_method == "gemm" and sh == sw == 1:
            # dx[n, y, x, c] = Σ_{p, q, o} gpad[n, y + p, x + q, o] · W[o, c, kh-1-p, kw-1-q],  gpad = g padded by
            # (kh-1-ph, kw-1-pw): the transposed convolution as a convolution, no scatter.
            qh, qw = kh - 1 - ph, kw - 1 - pw
            gp = np.zeros((n, oh + 2 * qh, ow + 2 * qw, o), dtype=grad.dtype)
            gp[:, qh:qh + oh, qw:qw + ow, :] = g2.reshape(n, oh, ow, o)
            gcols = im2col_nhwc(gp, kh, kw, h, wd)  # (N·H·W, kh·kw·O)
            wf = np.ascontiguousarray(self.w2.reshape(kh, kw, c, o)[::-1, ::-1].transpose(0, 1, 3, 2)
                                      .reshape(kh * kw * o, c))
            dx = (gcols @ wf).reshape(n, h, wd, c)
        else:
            dcols = (g2 @ self.w2.T).reshape(n, oh, ow, kh, kw, c)
            dxp = np.zeros((n, h + 2 * ph, wd + 2 * pw, c), dtype=grad.dtype)
            for p in range(kh):
                for q in range(kw):
                    dxp[:, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :] += dcols[:, :, :, p, q, :]
            dx = dxp[:, ph:ph + h, pw:pw + wd, :]
        return np.ascontiguousarray(dx.transpose(0, 3, 1, 2)), np.ascontiguousarray(dw)


class ChannelMajor:
    """NCHW at the boundary, (C, N, H, W) inside: cols (C·kh·kw, N·OH·OW), out = W2 @ cols (ONE GEMM);
    dW2 = g @ colsᵀ (ONE GEMM, reduction over N·OH·OW); dcols = W2ᵀ @ g, col2im by nine adds whose source
    dcols[c, p, q] is one contiguous (N, OH, OW) block."""

    def forward(self, x, w, stride=(1, 1), padding=(1, 1), pad_value=0.0):
        n, c, h, wd = x.shape
        o, _, kh, kw = w.shape
        (sh, sw), (ph, pw) = stride, padding
        oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
        xp = np.full((c, n, h + 2 * ph, wd + 2 * pw), pad_value, dtype=x.dtype)
        xp[:, :, ph:ph + h, pw:pw + wd] = x.transpose(1, 0, 2, 3)
        cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
        for p in range(kh):
            for q in range(kw):
                cols[:, p, q] = xp[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw]
        self.cols = cols.reshape(c * kh * kw, n * oh * ow)
        self.w2 = w.reshape(o, -1)
        self.shapes = (x.shape, w.shape, stride, padding, oh, ow)
        out = self.w2 @ self.cols  # (O, N·OH·OW)
        return np.ascontiguousarray(out.reshape(o, n, oh, ow).transpose(1, 0, 2, 3))

    def backward(self, grad):
        (n, c, h, wd), (o, _, kh, kw), (sh, sw), (ph, pw), oh, ow = self.shapes
        g = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(o, n * oh * ow)
        dw = (g @ self.cols.T).reshape(o, c, kh, kw)
        dcols = (self.w2.T @ g).reshape(c, kh, kw, n, oh, ow)
        dxp = np.zeros((c, n, h + 2 * ph, wd + 2 * pw), dtype=grad.dtype)
        for p in range(kh):
            for q in range(kw):
                dxp[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw] += dcols[:, p, q]
        return np.ascontiguousarray(dxp[:, :, ph:ph + h, pw:pw + wd].transpose(1, 0, 2, 3)), dw


class ShiftGemm:
    """Implicit GEMM, no im2col (stride 1): in the padded NHWC image flattened to rows (N·Hp·Wp, C), the pixel
    under kernel tap (p, q) of output row i is row i + p·Wp + q. So

        out_rows[i] = Σ_{p,q} xf[i + s_pq] @ W_pq,          s_pq = p·Wp + q,  W_pq = W[:, :, p, q]ᵀ (C, O)
        dW_pq       = xf[s_pq : s_pq + L]ᵀ @ G              (G = g at rows (n, y, x), zeros elsewhere)
        dx_rows[j]  = Σ_{p,q} Gb[j + s_max - s_pq] @ W_pqᵀ   (the transposed conv as a conv; no scatter)

    for rows i < L = N·Hp·Wp - s_max; rows with x >= OW or y >= OH are garbage and dropped (Hp·Wp/(OH·OW)
    extra work: 13% at 32x32, 27% at 16x16). Nine GEMMs with K = C per pass, over row chunks of `chunk` rows
    so that the accumulator stays in cache; the input is read 9 times from cache instead of copied 9 times."""

    def __init__(self, chunk=4096):
        self.chunk = chunk

    def _shifted_sum(self, src, mats, shifts, rows, out):
        """out[i] = Σ_k src[i + shifts[k]] @ mats[k] for i < rows, chunk by chunk."""
        tmp = np.empty((self.chunk, out.shape[1]), dtype=out.dtype)
        for a in range(0, rows, self.chunk):
            b = min(a + self.chunk, rows)
            acc, t = out[a:b], tmp[:b - a]
            np.matmul(src[a + shifts[0]:b + shifts[0]], mats[0], out=acc)
            for s, m in zip(shifts[1:], mats[1:]):
                np.matmul(src[a + s:b + s], m, out=t)
                acc += t
        return out

    def forward(self, x, w, stride=(1, 1), padding=(1, 1), pad_value=0.0):
        assert tuple(stride) == (1, 1)
        n, c, h, wd = x.shape
        o, _, kh, kw = w.shape
        ph, pw = padding
        hp, wp = h + 2 * ph, wd + 2 * pw
        oh, ow = hp - kh + 1, wp - kw + 1
        xp = np.full((n, hp, wp, c), pad_value, dtype=x.dtype)
        xp[:, ph:ph + h, pw:pw + wd, :] = x.transpose(0, 2, 3, 1)
        self.xf = xp.reshape(n * hp * wp, c)
        self.shifts = [p * wp + q for p in range(kh) for q in range(kw)]
        self.smax = self.shifts[-1]
        self.rows = n * hp * wp - self.smax
        self.wpq = [np.ascontiguousarray(w[:, :, p, q].T) for p in range(kh) for q in range(kw)]  # (C, O)
        self.shapes = (x.shape, w.shape, (hp, wp), padding, oh, ow)
        out = np.empty((n * hp * wp, o), dtype=x.dtype)
        self._shifted_sum(self.xf, self.wpq, self.shifts, self.rows, out)
        out = out.reshape(n, hp, wp, o)[:, :oh, :ow, :]
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def backward(self, grad):
        (n, c, h, wd), (o, _, kh, kw), (hp, wp), (ph, pw), oh, ow = self.shapes
        L, smax = self.rows, self.smax
        gb = np.zeros((smax + n * hp * wp, o), dtype=grad.dtype)  # smax zero rows first, then G
        gb[smax:].reshape(n, hp, wp, o)[:, :oh, :ow, :] = grad.transpose(0, 2, 3, 1)
        g_rows = gb[smax:smax + L]
        dw = np.empty((kh * kw, c, o), dtype=grad.dtype)
        for k, s in enumerate(self.shifts):
            np.matmul(self.xf[s:s + L].T, g_rows, out=dw[k])
        dw = dw.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)
        wt = [m.T.copy() for m in self.wpq]  # (O, C)
        dxp = np.empty((n * hp * wp, c), dtype=grad.dtype)
        self._shifted_sum(gb, wt, [smax - s for s in self.shifts], n * hp * wp, dxp)
        dx = dxp.reshape(n, hp, wp, c)[:, ph:ph + h, pw:pw + wd, :]
        return np.ascontiguousarray(dx.transpose(0, 3, 1, 2)), np.ascontiguousarray(dw)


class ShiftGemm3(ShiftGemm):
    """ShiftGemm with the kernel's columns stacked: xq[i] = (xf[i], xf[i+1], ..., xf[i+kw-1])  (rows, kw·C),
    built by kw contiguous slice copies (kw times the input, not kh·kw), then kh row-shifted GEMMs with
    K = kw·C (three GEMMs with K = 96 instead of nine with K = 32 at C = 32):

        out_rows[i] = Σ_p xq[i + p·Wp] @ W_p,     W_p[(q, c), o] = W[o, c, p, q]
        dW_p        = xq[p·Wp : p·Wp + L]ᵀ @ G
        dx_rows[j]  = Σ_p gq[j + (kh-1-p)·Wp] @ Wflip_p,   gq[j] = (Gb[j + kw-1], ..., Gb[j])  (stacked g)"""

    @staticmethod
    def _stack(src, k, rows):
        c = src.shape[1]
        out = np.empty((rows, k * c), dtype=src.dtype)
        for q in range(k):
            out[:, q * c:(q + 1) * c] = src[q:q + rows]
        return out

    def forward(self, x, w, stride=(1, 1), padding=(1, 1), pad_value=0.0):
        assert tuple(stride) == (1, 1)
        n, c, h, wd = x.shape
        o, _, kh, kw = w.shape
        ph, pw = padding
        hp, wp = h + 2 * ph, wd + 2 * pw
        oh, ow = hp - kh + 1, wp - kw + 1
        xp = np.full((n, hp, wp, c), pad_value, dtype=x.dtype)
        xp[:, ph:ph + h, pw:pw + wd, :] = x.transpose(0, 2, 3, 1)
        xf = xp.reshape(n * hp * wp, c)
        total = n * hp * wp
        self.xq = self._stack(xf, kw, total - (kw - 1))
        self.shifts = [p * wp for p in range(kh)]
        self.rows = total - (kh - 1) * wp - (kw - 1)
        self.wp_ = [np.ascontiguousarray(w[:, :, p, :].transpose(2, 1, 0).reshape(kw * c, o)) for p in range(kh)]
        self.shapes = (x.shape, w.shape, (hp, wp), padding, oh, ow)
        out = np.empty((total, o), dtype=x.dtype)
        self._shifted_sum(self.xq, self.wp_, self.shifts, self.rows, out)
        out = out.reshape(n, hp, wp, o)[:, :oh, :ow, :]
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def backward(self, grad):
        (n, c, h, wd), (o, _, kh, kw), (hp, wp), (ph, pw), oh, ow = self.shapes
        L, total = self.rows, n * hp * wp
        smax = (kh - 1) * wp + (kw - 1)
        gb = np.zeros((smax + total, o), dtype=grad.dtype)
        gb[smax:].reshape(n, hp, wp, o)[:, :oh, :ow, :] = grad.transpose(0, 2, 3, 1)
        g_rows = gb[smax:smax + L]
        dw = np.empty((kh, kw * c, o), dtype=grad.dtype)
        for p, s in enumerate(self.shifts):
            np.matmul(self.xq[s:s + L].T, g_rows, out=dw[p])
        dw = dw.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)
        # gq[j] = (gb[j + kw-1], gb[j + kw-2], ..., gb[j]) : stacked in flipped q order
        rows_q = smax + total - (kw - 1)
        gq = np.empty((rows_q, kw * o), dtype=grad.dtype)
        for q in range(kw):
            gq[:, q * o:(q + 1) * o] = gb[kw - 1 - q:kw - 1 - q + rows_q]
        # dx_rows[j] = Σ_{p,q} gb[j + smax - p·wp - q] @ W[:, :, p, q]  =  Σ_p gq[j + (kh-1-p)·wp] @ M_p,
        # M_p[(q, o), c] = W[o, c, p, q]
        mats = [np.ascontiguousarray(self.wp_[p].reshape(kw, c, o).transpose(0, 2, 1).reshape(kw * o, c))
                for p in range(kh)]
        dxp = np.empty((total, c), dtype=grad.dtype)
        self._shifted_sum(gq, mats, [(kh - 1 - p) * wp for p in range(kh)], total, dxp)
        dx = dxp.reshape(n, hp, wp, c)[:, ph:ph + h, pw:pw + wd, :]
        return np.ascontiguousarray(dx.transpose(0, 3, 1, 2)), np.ascontiguousarray(dw)


class Blocked:
    """NHWC inside, im2col per block of `b` images so that the block's columns (b·OH·OW, kh·kw·C) stay in L2:
    forward out[blk] = cols(blk) @ W2; backward rebuilds cols(blk) (nothing big is kept), dW2 += cols(blk)ᵀ @ g,
    dcols = g(blk) @ W2ᵀ and col2im into the block's padded dx by nine NHWC adds."""

    def __init__(self, b=1):
        self.b = b

    def forward(self, x, w, stride=(1, 1), padding=(1, 1), pad_value=0.0):
        n, c, h, wd = x.shape
        o, _, kh, kw = w.shape
        (sh, sw), (ph, pw) = stride, padding
        oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
        xp = np.full((n, h + 2 * ph, wd + 2 * pw, c), pad_value, dtype=x.dtype)
        xp[:, ph:ph + h, pw:pw + wd, :] = x.transpose(0, 2, 3, 1)
        self.xp, self.stride = xp, (sh, sw)
        self.w2 = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(kh * kw * c, o))
        self.shapes = (x.shape, w.shape, (sh, sw), (ph, pw), oh, ow)
        out = np.empty((n, oh * ow, o), dtype=x.dtype)
        for a in range(0, n, self.b):
            cols = im2col_nhwc(xp[a:a + self.b], kh, kw, oh, ow, sh, sw)
            np.matmul(cols, self.w2, out=out[a:a + self.b].reshape(-1, o))
        return np.ascontiguousarray(out.reshape(n, oh, ow, o).transpose(0, 3, 1, 2))

    def backward(self, grad):
        (n, c, h, wd), (o, _, kh, kw), (sh, sw), (ph, pw), oh, ow = self.shapes
        g = np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).reshape(n, oh * ow, o)
        dw2 = np.zeros((kh * kw * c, o), dtype=grad.dtype)
        tmp = np.empty_like(dw2)
        dxp = np.zeros(self.xp.shape, dtype=grad.dtype)
        w2t = np.ascontiguousarray(self.w2.T)
        for a in range(0, n, self.b):
            cols = im2col_nhwc(self.xp[a:a + self.b], kh, kw, oh, ow, sh, sw)
            gb = g[a:a + self.b].reshape(-1, o)
            np.matmul(cols.T, gb, out=tmp)
            dw2 += tmp
            dcols = (gb @ w2t).reshape(-1, oh, ow, kh, kw, c)
            d = dxp[a:a + self.b]
            for p in range(kh):
                for q in range(kw):
                    d[:, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :] += dcols[:, :, :, p, q, :]
        dw = dw2.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)
        dx = dxp[:, ph:ph + h, pw:pw + wd, :]
        return np.ascontiguousarray(dx.transpose(0, 3, 1, 2)), np.ascontiguousarray(dw)


# ---------------------------------------------------------------------------------------------------------------
# 2x2 max pooling, stride 2
# ---------------------------------------------------------------------------------------------------------------
class PoolCurrent:
    """Today's approach in spirit: windows, argmax (first max), take_along_axis; backward scatter by index."""

    def forward(self, x):
        n, c, h, w = x.shape
        win = sliding_window_view(x, (2, 2), axis=(2, 3))[:, :, ::2, ::2].reshape(n, c, h // 2, w // 2, 4)
        self.idx = win.argmax(axis=-1)[..., None]
        self.shape = x.shape
        return np.take_along_axis(win, self.idx, axis=-1)[..., 0]

    def backward(self, grad):
        n, c, h, w = self.shape
        d = np.zeros((n, c, h // 2, w // 2, 4), dtype=grad.dtype)
        np.put_along_axis(d, self.idx, grad[..., None], axis=-1)
        return d.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(self.shape)


class PoolFast:
    def forward(self, x):
        n, c, h, w = x.shape
        self.x6 = x.reshape(n, c, h // 2, 2, w // 2, 2)
        x6 = self.x6
        self.out = np.maximum(np.maximum(x6[:, :, :, 0, :, 0], x6[:, :, :, 0, :, 1]),
                              np.maximum(x6[:, :, :, 1, :, 0], x6[:, :, :, 1, :, 1]))
        return self.out

    def backward(self, grad):
        # first maximum in window order (0,0), (0,1), (1,0), (1,1): argmax's tie rule
        x6, m = self.x6, self.out
        dx = np.zeros(x6.shape, dtype=grad.dtype)
        free = np.ones(m.shape, dtype=bool)
        for a in (0, 1):
            for b in (0, 1):
                hit = (x6[:, :, :, a, :, b] == m) & free
                dx[:, :, :, a, :, b] = np.where(hit, grad, 0)
                free &= ~hit
        return dx.reshape(x6.shape[0], x6.shape[1], x6.shape[2] * 2, x6.shape[4] * 2)


# ---------------------------------------------------------------------------------------------------------------
def best(fn, repeats):
    """Best of `repeats` runs in CPU time of this thread (1 thread everywhere): time spent descheduled by other
    processes does not count, so the figures hold on a busy machine (cache sharing still adds noise)."""
    fn()
    t = []
    for _ in range(repeats):
        s = time.thread_time()
        fn()
        t.append(time.thread_time() - s)
    return 1e3 * min(t)


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    n = args.batch
    # vgg-small, width 0.5, 32x32x3: (C, O, H, pad value, binary input)
    layers = [(3, 32, 32, 0.0, False), (32, 32, 32, 1.0, True), (32, 64, 16, 1.0, True), (64, 64, 16, 1.0, True)]
    rng = np.random.default_rng(0)
    try:
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (best of {args.repeats}; noisy "
              f"when busy); 1 thread; NumPy {np.__version__}")
    except OSError:
        pass
    variants = {"now": Current, "NHWC+gemm dx": lambda: Fast("gemm"), "NHWC+col2im": lambda: Fast("col2im"),
                "CNHW": ChannelMajor, "shift 4096": ShiftGemm, "shift 1024": lambda: ShiftGemm(1024),
                "shift 16384": lambda: ShiftGemm(16384), "blocked 1": Blocked, "blocked 4": lambda: Blocked(4),
                "shift3 4096": ShiftGemm3, "shift3 16384": lambda: ShiftGemm3(16384)}
    print("ms per call (fwd / bwd); 'x' = speedup over now; err = max |new - now| / max |now| for out, dx, dw")
    totals = {k: np.zeros(2) for k in variants}
    for c, o, h, pad_value, binary in layers:
        x = rng.standard_normal((n, c, h, h)).astype(np.float32)
        if binary:
            x = np.where(x >= 0, 1.0, -1.0).astype(np.float32)
        w = (rng.standard_normal((o, c, 3, 3)) * 0.1).astype(np.float32)
        g = rng.standard_normal((n, o, h, h)).astype(np.float32)
        c64 = Current()
        y64 = c64.forward(x.astype(np.float64), w.astype(np.float64), pad_value=pad_value)
        dx64, dw64 = c64.backward(g.astype(np.float64))
        print(f"conv {c}->{o}, {h}x{h}, pad value {pad_value:g}, batch {n}")
        base = None
        for name, make in variants.items():
            op = make()
            y = op.forward(x, w, pad_value=pad_value)
            dx, dw = op.backward(g)
            if base is None:
                base = (y, dx, dw)
            tf = best(lambda: op.forward(x, w, pad_value=pad_value), args.repeats)
            tb = best(lambda: op.backward(g), args.repeats)
            totals[name] += (tf, tb)
            err = ", ".join(f"{rel_err(a, b):.1e}" for a, b in zip((y, dx, dw), base))
            ref = ", ".join(f"{rel_err(a, b):.1e}" for a, b in zip((y, dx, dw), (y64, dx64, dw64)))
            print(f"  {name:<14} fwd {tf:7.2f}  bwd {tb:7.2f}   err vs now {err}   vs float64 {ref}")
    print("totals over the four layers (ms fwd / bwd, speedup over now):")
    for name, (tf, tb) in totals.items():
        print(f"  {name:<14} fwd {tf:7.2f} ({totals['now'][0] / tf:.2f}x)  bwd {tb:7.2f} "
              f"({totals['now'][1] / tb:.2f}x)  fwd+bwd {(totals['now'].sum()) / (tf + tb):.2f}x")
    print("(the first layer's dx is computed here but not needed in training)")

    print(f"\n{'max pool 2x2':<22}{'fwd now':>9}{'fwd new':>9}{'bwd now':>9}{'bwd new':>9}  identical")
    for c, h in ((32, 32), (64, 16)):
        # conv outputs of a binary layer are integers: many ties inside a window
        x = rng.integers(-3, 4, size=(n, c, h, h)).astype(np.float32)
        g = rng.standard_normal((n, c, h // 2, h // 2)).astype(np.float32)
        pc, pf = PoolCurrent(), PoolFast()
        same = np.array_equal(pc.forward(x), pf.forward(x)) and np.array_equal(pc.backward(g), pf.backward(g))
        t = [best(lambda: pc.forward(x), args.repeats), best(lambda: pf.forward(x), args.repeats),
             best(lambda: pc.backward(g), args.repeats), best(lambda: pf.backward(g), args.repeats)]
        print(f"{f'{c}ch {h}x{h}':<22}" + "".join(f"{v:>9.2f}" for v in t) + f"  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
