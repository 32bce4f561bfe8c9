"""im2col and col2im: a convolution as a matrix product, and its adjoint; and the padding of the images.

A 2-D convolution reads, for each output pixel (i, j), the kh x kw window of the padded input whose top-left
corner is (i·sh, j·sw). **im2col** lays those windows out as the columns of a matrix, so the convolution
becomes one matrix product per image:

    cols[n] = [window (i, j) of x_pad[n], flattened over (C, kh, kw)]  ->  (C·kh·kw, OH·OW)
    out[n]  = W.reshape(O, C·kh·kw) @ cols[n]                          ->  (O, OH·OW)
    OH = (H + 2·ph - kh) // sh + 1,   OW = (W + 2·pw - kw) // sw + 1

**col2im** is the adjoint (the transpose of im2col as a linear map): it adds every window back onto the pixels
it was read from, where windows overlap the contributions add up, which is exactly the backward of im2col.

**Padding.** Usually a pair (ph, pw): ph rows above *and* below, pw columns left *and* right. Every helper
here also takes the padding side by side, ((top, bottom), (left, right)), and then reads H + top + bottom
where the formulas above say H + 2·ph. Unequal sides come from Keras' ``padding="same"``, which
:func:`padding_sides` turns into numbers for a given image size (this is the one place that does):

    OH = ceil(H / sh),   total = max((OH - 1)·sh + kh - H, 0),   top = total // 2,   bottom = total - top

so the odd pixel of padding goes below (right), e.g. a 3x3 kernel at stride 2 on a 28x28 image pads
(0, 1): the first window starts on the image, the last one hangs over the edge. ``"valid"`` is no padding.

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
    >>> padding_sides("same", (28, 28), (3, 3), (2, 2))           # ((top, bottom), (left, right))
    ((0, 1), (0, 1))
"""
from __future__ import annotations

import math
from typing import Any, Tuple, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import _checks

__all__ = ["PADDING_MODES", "check_padding", "padding_sides", "per_side", "output_size", "pad2d", "windows",
           "im2col", "col2im"]

Pair = Tuple[int, int]
Sides = Tuple[Pair, Pair]          # ((top, bottom), (left, right))
Padding = Union[Pair, Sides]       # what the helpers below accept: symmetric (ph, pw) or side by side

#: the padding names of Keras, accepted by every convolution and pooling besides an int or a pair
PADDING_MODES = ("same", "valid")


def check_padding(who: str, padding: Any) -> Union[str, Pair]:
    """A ``padding`` argument in its canonical form: ``"same"``, or a pair (ph, pw) of ints >= 0 (``"valid"``
    is (0, 0)). Raises an error naming ``who`` otherwise.

    Example:
        >>> check_padding("Conv2d", "valid"), check_padding("Conv2d", 1), check_padding("Conv2d", "same")
        ((0, 0), (1, 1), 'same')
    """
    if isinstance(padding, str):
        return (0, 0) if _checks.choice(who, "padding", padding, PADDING_MODES) == "valid" else padding
    try:
        return _checks.pair(who, "padding", padding, 0)
    except ValueError:
        raise ValueError(f"{who}: padding must be 'same', 'valid', an int in [0, {_checks.MAX_EXTENT}] or a pair "
                         f"of them, got {padding!r}") from None


def padding_sides(padding: Union[str, Padding], size: Pair, kernel: Pair, stride: Pair) -> Sides:
    """The padding of an image of ``size`` (H, W) side by side, ((top, bottom), (left, right)).

    A pair (ph, pw) pads both sides equally. ``"same"`` (Keras) pads so that OH = ceil(H / sh):
    total = max((OH - 1)·sh + kh - H, 0), top = total // 2, bottom = total - top (the odd one goes below),
    and likewise along the width. ``"valid"`` is no padding.

    Example:
        >>> padding_sides((1, 2), (5, 5), (3, 3), (1, 1))
        ((1, 1), (2, 2))
        >>> padding_sides("same", (5, 6), (3, 3), (2, 2))   # 6 wide: OW = 3, total = 2·2 + 3 - 6 = 1
        ((1, 1), (0, 1))
    """
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding != "same":
        return per_side(padding)
    sides = []
    for n, k, s in zip(size, kernel, stride):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        sides.append((total // 2, total - total // 2))
    return tuple(sides)


def per_side(padding: Padding) -> Sides:
    """((ph, ph), (pw, pw)) for a symmetric pair (ph, pw); per-side padding unchanged.

    Example:
        >>> per_side((1, 2)), per_side(((0, 1), (2, 3)))
        (((1, 1), (2, 2)), ((0, 1), (2, 3)))
    """
    return tuple((int(p), int(p)) if np.ndim(p) == 0 else (int(p[0]), int(p[1])) for p in padding)


def output_size(size: Pair, kernel: Pair, stride: Pair, padding: Padding) -> Pair:
    """(OH, OW) = ((H + 2·ph - kh) // sh + 1, (W + 2·pw - kw) // sw + 1), with top + bottom (left + right)
    in place of 2·ph (2·pw) for per-side padding.

    Example:
        >>> output_size((28, 28), (3, 3), (1, 1), (1, 1))
        (28, 28)
        >>> output_size((28, 28), (3, 3), (2, 2), ((0, 1), (0, 1)))    # "same" at stride 2: ceil(28 / 2)
        (14, 14)
    """
    return tuple((n + before + after - k) // s + 1
                 for n, k, s, (before, after) in zip(size, kernel, stride, per_side(padding)))


def pad2d(x: np.ndarray, padding: Padding, value: float, axes: Pair = (2, 3)) -> np.ndarray:
    """``x`` surrounded by ``padding`` rows and columns of ``value`` along ``axes`` (no copy when there is none).

    Example:
        >>> pad2d(np.ones((1, 1, 1, 2)), (1, 0), -1.0)[0, 0]
        array([[-1., -1.],
               [ 1.,  1.],
               [-1., -1.]])
        >>> pad2d(np.ones((1, 1, 1, 2)), ((0, 1), (1, 0)), 0.0)[0, 0]   # ((top, bottom), (left, right))
        array([[0., 1., 1.],
               [0., 0., 0.]])
    """
    sides = per_side(padding)
    if sides == ((0, 0), (0, 0)):
        return x
    shape = list(x.shape)
    inside = [slice(None)] * x.ndim
    for axis, (before, after) in zip(axes, sides):
        shape[axis] += before + after
        inside[axis] = slice(before, before + x.shape[axis])
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


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, padding: Padding, pad_value: float = 0.0) -> np.ndarray:
    """The windows of NCHW images ``x`` as columns: (N, C·kh·kw, OH·OW), rows ordered (c, p, q) like the
    weight's (C, kh, kw). One copy; an empty batch gives an empty matrix."""
    n, c = x.shape[:2]
    win = windows(pad2d(x, padding, pad_value), kernel, stride)   # (N, C, OH, OW, kh, kw), a view
    oh, ow = win.shape[2:4]
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kernel[0] * kernel[1], oh * ow)


def col2im(patches: np.ndarray, x_shape: Tuple[int, ...], stride: Pair, padding: Padding) -> np.ndarray:
    """The adjoint of :func:`windows` for NCHW images: add every window of ``patches`` (N, C, OH, OW, kh, kw)
    back onto the pixels of an image of shape ``x_shape`` it was read from, then drop the padding. One
    vectorised add per kernel offset (p, q), never a loop over pixels."""
    n, c, oh, ow, kh, kw = patches.shape
    (sh, sw), ((top, bottom), (left, right)) = stride, per_side(padding)
    out = np.zeros((n, c, x_shape[2] + top + bottom, x_shape[3] + left + right), dtype=patches.dtype)
    for p in range(kh):
        for q in range(kw):
            out[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw] += patches[:, :, :, :, p, q]
    return out[:, :, top:top + x_shape[2], left:left + x_shape[3]]
