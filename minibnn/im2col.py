"""im2col and col2im: a convolution as a matrix product, and its adjoint.

A 2-D convolution reads, for each output pixel (i, j), the kh x kw window of the padded input whose top-left
corner is (i·sh, j·sw). **im2col** lays those windows out as the columns of a matrix, so the convolution
becomes one matrix product per image:

    cols[n] = [window (i, j) of x_pad[n], flattened over (C, kh, kw)]  ->  (C·kh·kw, OH·OW)
    out[n]  = W.reshape(O, C·kh·kw) @ cols[n]                          ->  (O, OH·OW)
    OH = (H + 2·ph - kh) // sh + 1,   OW = (W + 2·pw - kw) // sw + 1

**col2im** is the adjoint (the transpose of im2col as a linear map): it adds every window back onto the pixels
it was read from, where windows overlap the contributions add up, which is exactly the backward of im2col.

These helpers serve every convolution and pooling of minibnn: :class:`~minibnn.functional.Conv2dFn` (float
forward and backward, and the im2col that the backward of a kernel forward needs), the pooling ops, and, with
``axes=(1, 2)`` for channels-last images, the NumPy reference of the packed convolution.

Example:
    >>> import numpy as np
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> im2col(x, (2, 2), (1, 1), (0, 0))[0]      # 4 windows of 2x2, one per column
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    >>> col2im(np.ones((1, 1, 2, 2, 2, 2)), x.shape, (1, 1), (0, 0))[0, 0]   # how many windows cover a pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["output_size", "pad2d", "windows", "im2col", "col2im"]

Pair = Tuple[int, int]


def output_size(size: Pair, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """(OH, OW) = ((H + 2·ph - kh) // sh + 1, (W + 2·pw - kw) // sw + 1).

    Example:
        >>> output_size((28, 28), (3, 3), (1, 1), (1, 1))
        (28, 28)
    """
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding))


def pad2d(x: np.ndarray, padding: Pair, value: float, axes: Pair = (2, 3)) -> np.ndarray:
    """``x`` surrounded by ``padding`` rows and columns of ``value`` along ``axes`` (no copy when there is none).

    Example:
        >>> pad2d(np.ones((1, 1, 1, 2)), (1, 0), -1.0)[0, 0]
        array([[-1., -1.],
               [ 1.,  1.],
               [-1., -1.]])
    """
    if padding[0] == 0 and padding[1] == 0:
        return x
    shape = list(x.shape)
    inside = [slice(None)] * x.ndim
    for axis, p in zip(axes, padding):
        shape[axis] += 2 * p
        inside[axis] = slice(p, p + x.shape[axis])
    out = np.full(shape, value, dtype=x.dtype)
    out[tuple(inside)] = x
    return out


def windows(xp: np.ndarray, kernel: Pair, stride: Pair, axes: Pair = (2, 3)) -> np.ndarray:
    """A view of the (padded) images ``xp`` with the kh x kw window under every output pixel.

    For NCHW images (``axes=(2, 3)``) the view is (N, C, OH, OW, kh, kw): ``[n, c, i, j]`` is the window under
    output pixel (i, j). For NHWC images (``axes=(1, 2)``) it is (N, OH, OW, C, kh, kw). No copy:
    ``sliding_window_view`` only changes the strides.
    """
    view = sliding_window_view(xp, kernel, axis=axes)
    step = [slice(None)] * xp.ndim
    step[axes[0]], step[axes[1]] = slice(None, None, stride[0]), slice(None, None, stride[1])
    return view[tuple(step)]


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, pad_value: float = 0.0) -> np.ndarray:
    """The windows of NCHW images ``x`` as columns: (N, C·kh·kw, OH·OW), rows ordered (c, p, q) like the
    weight's (C, kh, kw). One copy; an empty batch gives an empty matrix."""
    n, c = x.shape[:2]
    win = windows(pad2d(x, padding, pad_value), kernel, stride)   # (N, C, OH, OW, kh, kw), a view
    oh, ow = win.shape[2:4]
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kernel[0] * kernel[1], oh * ow)


def col2im(patches: np.ndarray, x_shape: Tuple[int, ...], stride: Pair, padding: Pair) -> np.ndarray:
    """The adjoint of :func:`windows` for NCHW images: add every window of ``patches`` (N, C, OH, OW, kh, kw)
    back onto the pixels of an image of shape ``x_shape`` it was read from, then drop the padding. One
    vectorised add per kernel offset (p, q), never a loop over pixels."""
    n, c, oh, ow, kh, kw = patches.shape
    (sh, sw), (ph, pw) = stride, padding
    out = np.zeros((n, c, x_shape[2] + 2 * ph, x_shape[3] + 2 * pw), dtype=patches.dtype)
    for p in range(kh):
        for q in range(kw):
            out[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw] += patches[:, :, :, :, p, q]
    return out[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]]
