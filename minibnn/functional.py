"""The differentiable operations of neural networks: linear, convolution, pooling, BatchNorm, dropout, activations.

Each op is one :class:`~minibnn.tensor.Function` subclass, named after the op with the suffix ``Fn``, whose
``forward`` (on NumPy arrays) and ``backward`` (dL/d(output) -> dL/d(inputs)) sit side by side with the
derivative in the docstring; a lower-case function applies it to tensors and checks its arguments. Layers
(:mod:`minibnn.layers`) are thin modules around these functions. The losses (``cross_entropy``, ``mse_loss``,
``squared_hinge_loss``) live in :mod:`minibnn.losses` and are re-exported here. Convolution and pooling read
their windows with :mod:`minibnn.im2col` (their commonest cases run faster, with the same results, in
:mod:`minibnn.fastconv`); ``linear`` and ``conv2d`` take ``use_kernel=True`` to run their
forward on the XNOR-popcount kernels (:mod:`minibnn.xnor.backend`), which binary layers do.

Conventions:

* images are NCHW; a Linear weight is (out_features, in_features) and a Conv2d weight is
  (out_channels, in_channels, kh, kw), so ``linear(x, w) = x @ wᵀ``;
* outputs keep the inputs' dtype (float32, or float64 for gradcheck) — never a silent promotion to float64;
* at a kink, the gradient is a fixed one-sided choice stated in the op's docstring;
* shapes are checked before any arithmetic, and errors name the argument, the shape seen and the one expected.

Example:
    >>> import numpy as np
    >>> from minibnn import Tensor
    >>> from minibnn import functional as F
    >>> x = Tensor(np.ones((2, 3)), requires_grad=True)
    >>> w = Tensor(np.full((4, 3), 0.5), requires_grad=True)
    >>> y = F.relu(F.linear(x, w))          # (2, 4), every entry 1.5
    >>> F.mse_loss(y, np.zeros((2, 4))).backward()
    >>> x.grad                               # dL/dx = (2·y / 8) @ w = 4 · 0.375 · 0.5 each
    array([[0.75, 0.75, 0.75],
           [0.75, 0.75, 0.75]])
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import _checks, fastconv
from .xnor import backend
from .im2col import check_padding, col2im, im2col, output_size, pad2d, padding_sides, per_side, windows
from .losses import cross_entropy, mse_loss, squared_hinge_loss
from .random import get_rng
from .tensor import Function, Tensor, as_tensor, shape_of

__all__ = [
    "linear", "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "dropout",
    "relu", "relu6", "hardtanh", "tanh", "sigmoid", "leaky_relu", "prelu", "log_softmax", "softmax",
    "cross_entropy", "mse_loss", "squared_hinge_loss",
]


def _channel_shape(x: np.ndarray) -> Tuple[int, ...]:
    """The shape (1, C, 1, ...) that broadcasts a per-channel vector along axis 1 of ``x``."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _image_padding(who: str, name: str, shape, padding, kernel, stride):
    """The padding of the images ``shape`` (N, C, H, W) side by side, ((top, bottom), (left, right)), after
    checking that the padded image holds at least one kernel window."""
    if len(shape) != 4:
        raise ValueError(f"{who}: {name} must be 4-D (N, C, H, W), got shape {shape}")
    (top, bottom), (left, right) = sides = padding_sides(padding, shape[2:], kernel, stride)
    padded = (shape[2] + top + bottom, shape[3] + left + right)
    if padded[0] < kernel[0] or padded[1] < kernel[1]:
        raise ValueError(f"{who}: the padded input is {padded[0]}x{padded[1]} (input {shape}, padding "
                         f"{padding!r}), smaller than the kernel {kernel[0]}x{kernel[1]}")
    return sides


# --------------------------------------------------------------------------------------------------------------
# Linear
# --------------------------------------------------------------------------------------------------------------
class LinearFn(Function):
    """out = x @ Wᵀ + b,  x (..., in), W (out, in), b (out,);
    dL/dx = g @ W,  dL/dW = gᵀ @ x (summed over the leading axes),  dL/db = Σ g.

    ``use_kernel=True``: the forward runs on the XNOR-popcount kernel (:func:`minibnn.xnor.backend.xnor_linear`)
    when x is ±1 and every row W[n] is ±α_n, with the same result; otherwise, and always in the backward,
    the float arithmetic above.
    """

    def forward(self, x, w, b=None, use_kernel=False):
        self.x, self.w, self.has_bias = x, w, b is not None
        out = backend.xnor_linear(x, w, b) if use_kernel else None    # None: the operands are not ±1
        if out is None:
            out = x @ w.T
            if b is not None:
                out += b
        return out

    def backward(self, grad):
        g2 = grad.reshape(-1, grad.shape[-1])
        dx = grad @ self.w if self.needs_input_grad[0] else None
        dw = g2.T @ self.x.reshape(-1, self.x.shape[-1]) if self.needs_input_grad[1] else None
        return (dx, dw, g2.sum(axis=0)) if self.has_bias else (dx, dw)


def linear(x, weight, bias=None, use_kernel: bool = False) -> Tensor:
    """y = x @ weightᵀ + bias.

    Args:
        x: input of shape (..., in_features) (a single sample (in_features,) works too).
        weight: (out_features, in_features).
        bias: (out_features,) or None.
        use_kernel: run the forward on the XNOR-popcount kernel when x is ±1 and each weight row ±α_n (the
            result is the float one, see :mod:`minibnn.xnor.backend`); the float product otherwise.

    Returns:
        (..., out_features).

    Example:
        >>> linear(np.ones((2, 3)), Tensor(np.ones((4, 3)))).shape
        (2, 4)
    """
    xs, ws = shape_of(x), shape_of(weight)
    if len(ws) != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {ws}")
    if len(xs) == 0 or xs[-1] != ws[1]:
        raise ValueError(f"linear: input of shape {xs} does not match weight of shape {ws}: expected an input "
                         f"of shape (..., {ws[1]})")
    if bias is None:
        return LinearFn.apply(x, weight, use_kernel=bool(use_kernel))
    if shape_of(bias) != (ws[0],):
        raise ValueError(f"linear: bias must have shape ({ws[0]},) to match weight {ws}, got {shape_of(bias)}")
    return LinearFn.apply(x, weight, bias, use_kernel=bool(use_kernel))


# --------------------------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------------------------
class Conv2dFn(Function):
    """2-D convolution (cross-correlation), NCHW:
    out[n, o, i, j] = Σ_{c,p,q} x_pad[n, c, i·sh + p, j·sw + q] · W[o, c, p, q] + b[o],
    x_pad = x with ``padding`` rows and columns of ``pad_value`` around it: (ph, pw) on every side, or
    ((top, bottom), (left, right)) side by side (``padding="same"`` gives those; see :mod:`minibnn.im2col`).

    im2col (:mod:`minibnn.im2col`): the window of each output pixel (i, j) of image n becomes a column of
    ``cols[n]`` (C·kh·kw, OH·OW), so the convolution is a matrix product per image:  out[n] = W2 @ cols[n],
    with W2 = W reshaped to (O, C·kh·kw). Hence  dL/dW2 = Σ_n g[n] @ cols[n]ᵀ,  dL/dcols[n] = W2ᵀ @ g[n]
    (added back onto the pixels by col2im),  dL/db = Σ g.

    ``use_kernel=True``: the forward runs on the XNOR-popcount kernel (:func:`minibnn.xnor.backend.xnor_conv2d`)
    when x is ±1, every filter W[o] is ±α_o and the padding is +1, -1 or 0 (0 on equal sides only), with the
    same result; the im2col is then built only if W wants a gradient (the backward, always the float one
    above, needs it).

    Stride 1 with at least 8 input channels (every 3x3 layer of a CNN but the first): the same sums by
    shift-GEMM (:class:`minibnn.fastconv.ShiftConv`), which keeps x_pad channels-last instead of the columns
    and needs no col2im; the results equal the im2col ones up to float32 rounding (summation order).
    """

    def forward(self, x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), pad_value=0.0, use_kernel=False):
        self.x_shape, self.w, self.stride, self.padding, self.has_bias = x.shape, w, stride, padding, b is not None
        out = backend.xnor_conv2d(x, w, b, stride, padding, pad_value) if use_kernel else None
        self.fast = None
        if fastconv.shift_gemm_applies(x.shape, w.shape, stride):    # the same sums, faster (fastconv.py)
            if out is None or self.needs_input_grad[1]:             # it keeps x_pad for dL/dW
                self.fast = fastconv.ShiftConv(pad2d(x, padding, pad_value), w.shape[2:])
            return self.fast.forward(w, b) if out is None else out
        if out is None or self.needs_input_grad[1]:
            self.cols = im2col(x, w.shape[2:], stride, padding, pad_value)   # (N, C·kh·kw, OH·OW)
        if out is None:
            out = np.matmul(w.reshape(len(w), -1), self.cols)                # (N, O, OH·OW)
            if b is not None:
                out += b[:, None]
            out = out.reshape((len(x), len(w)) + output_size(x.shape[2:], w.shape[2:], stride, padding))
        return out

    def backward(self, grad):
        if self.fast is not None:    # the same sums, faster (fastconv.py)
            (top, _), (left, _) = per_side(self.padding)
            interior = (top, left) + self.x_shape[2:]       # where x lies in x_pad: (top, left, H, W)
            dx, dw = self.fast.backward(grad, self.w, *self.needs_input_grad[:2], interior=interior)
            return (dx, dw, grad.sum(axis=(0, 2, 3))) if self.has_bias else (dx, dw)
        n, o, oh, ow = grad.shape
        g = grad.reshape(n, o, oh * ow)
        dx = dw = None
        if self.needs_input_grad[1]:
            dw = np.matmul(g, self.cols.transpose(0, 2, 1)).sum(axis=0).reshape(self.w.shape)
        if self.needs_input_grad[0]:
            dcols = np.matmul(self.w.reshape(o, -1).T, g).reshape(n, *self.w.shape[1:], oh, ow)
            dx = col2im(dcols.transpose(0, 1, 4, 5, 2, 3), self.x_shape, self.stride, self.padding)
        return (dx, dw, g.sum(axis=(0, 2))) if self.has_bias else (dx, dw)


def conv2d(x, weight, bias=None, stride=1, padding=0, pad_value: float = 0.0, use_kernel: bool = False) -> Tensor:
    """2-D convolution of NCHW images (cross-correlation, as in every deep-learning library).

    Args:
        x: (N, C, H, W).
        weight: (O, C, kh, kw).
        bias: (O,) or None.
        stride: an int or a pair (vertical, horizontal).
        padding: an int or a pair (vertical, horizontal) padded on both sides; ``"valid"`` (no padding) or
            ``"same"`` (Keras: OH = ceil(H / sh), the padding split with the odd pixel below and right, see
            :func:`minibnn.im2col.padding_sides`).
        pad_value: the value of the padded border (0; a binary layer pads with -1 or +1 so that its input
            stays in {-1, +1}). Not differentiated.
        use_kernel: run the forward on the XNOR-popcount kernel when x is ±1, each filter ±α_o and
            ``pad_value`` +1, -1 or 0 (the result is the float one, see :mod:`minibnn.xnor.backend`).

    Returns:
        (N, O, OH, OW) with OH = (H + 2·ph - kh) // sh + 1 (ceil(H / sh) for "same"), OW likewise.

    Example:
        >>> conv2d(np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3)), padding=1).data[0, 0]
        array([[4., 6., 6., 4.],
               [6., 9., 9., 6.],
               [6., 9., 9., 6.],
               [4., 6., 6., 4.]], dtype=float32)
        >>> conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=2, padding="same").data[0, 0]
        array([[9., 6.],
               [6., 4.]], dtype=float32)

    In the last example "same" pads 0 rows above and 1 below (and 0 left, 1 right): the windows start at
    rows 0 and 2, and the second one hangs one row over the bottom edge.
    """
    stride, padding = _checks.pair("conv2d", "stride", stride, 1), check_padding("conv2d", padding)
    ws = shape_of(weight)
    if len(ws) != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels, kh, kw), got shape {ws}")
    sides = _image_padding("conv2d", "input", shape_of(x), padding, ws[2:], stride)
    if shape_of(x)[1] != ws[1]:
        raise ValueError(f"conv2d: input of shape {shape_of(x)} has {shape_of(x)[1]} channels, but weight {ws} "
                         f"expects {ws[1]}")
    options = dict(stride=stride, padding=sides, pad_value=_checks.real("conv2d", "pad_value", pad_value),
                   use_kernel=bool(use_kernel))
    if bias is None:
        return Conv2dFn.apply(x, weight, **options)
    if shape_of(bias) != (ws[0],):
        raise ValueError(f"conv2d: bias must have shape ({ws[0]},) to match weight {ws}, got {shape_of(bias)}")
    return Conv2dFn.apply(x, weight, bias, **options)


# --------------------------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------------------------
class MaxPool2dFn(Function):
    """out[n, c, i, j] = max of the window under (i, j);  dL/dx = g routed to the window's maximum (to the first
    one, in row-major order, when several elements tie), summed where windows overlap. Padding is -inf
    (``padding``: (ph, pw) on every side, or ((top, bottom), (left, right)), as for :class:`Conv2dFn`).

    When the windows tile the image (kernel == stride, no padding), :func:`minibnn.fastconv.max_pool_tiles`
    computes the same outputs and gradients without copying the windows."""

    def forward(self, x, kernel=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0))):
        self.x_shape, self.stride, self.padding, self.kernel = x.shape, stride, padding, kernel
        self.tiles = fastconv.tiles_pool(kernel, stride, padding)
        if self.tiles:    # the windows tile the image: the same maxima, faster (fastconv.py)
            self.x, self.out = x, fastconv.max_pool_tiles(x, kernel)
            return self.out
        win = windows(pad2d(x, padding, -np.inf), kernel, stride)
        flat = win.reshape(win.shape[:4] + (kernel[0] * kernel[1],))  # (N, C, OH, OW, kh·kw)
        self.argmax = flat.argmax(axis=-1)
        return np.take_along_axis(flat, self.argmax[..., None], axis=-1)[..., 0]

    def backward(self, grad):
        if self.tiles:
            return fastconv.max_pool_tiles_backward(self.x, self.out, grad, self.kernel)
        onehot = self.argmax[..., None] == np.arange(self.kernel[0] * self.kernel[1])
        patches = (grad[..., None] * onehot).reshape(grad.shape + self.kernel)
        return col2im(patches, self.x_shape, self.stride, self.padding)


class AvgPool2dFn(Function):
    """out[n, c, i, j] = (sum of the window under (i, j)) / count;  dL/dx = g / count spread over each window,
    summed where windows overlap. The padding is zeros and ``count`` = kh·kw counts it in the mean, or, with
    ``count_padding=False``, ``count`` = the number of input pixels in the window (Keras' "same")."""

    def forward(self, x, kernel=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0)), count_padding=True):
        self.x_shape, self.stride, self.padding, self.kernel = x.shape, stride, padding, kernel
        if count_padding:
            self.count = kernel[0] * kernel[1]
        else:  # pool an image of ones: how many input pixels each window covers, (1, 1, OH, OW)
            ones = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
            self.count = windows(pad2d(ones, padding, 0.0), kernel, stride).sum(axis=(-2, -1))
        return windows(pad2d(x, padding, 0.0), kernel, stride).sum(axis=(-2, -1)) / self.count

    def backward(self, grad):
        share = grad / self.count
        patches = np.broadcast_to(share[..., None, None], grad.shape + self.kernel)
        return col2im(patches, self.x_shape, self.stride, self.padding)


def _pool_options(who: str, x, kernel_size, stride, padding):
    kernel = _checks.pair(who, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _checks.pair(who, "stride", stride, 1)
    padding = check_padding(who, padding)
    if padding != "same" and (padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2):
        raise ValueError(f"{who}: padding {padding} must be at most half the kernel {kernel} (so that every "
                         f"window covers at least one input pixel)")
    sides = _image_padding(who, "input", shape_of(x), padding, kernel, stride)
    return dict(kernel=kernel, stride=stride, padding=sides)


def max_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Maximum over kh x kw windows of NCHW images (padding with -inf; ``stride`` defaults to the kernel size).

    ``padding``: an int or a pair, at most half the kernel; ``"valid"`` (none) or ``"same"`` (Keras:
    OH = ceil(H / sh), the odd pixel of padding below and right, see :func:`minibnn.im2col.padding_sides`).

    Example:
        >>> max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2).data[0, 0]
        array([[ 5.,  7.],
               [13., 15.]], dtype=float32)
        >>> max_pool2d(np.arange(9.0).reshape(1, 1, 3, 3), 2, padding="same").data[0, 0]   # 3 -> ceil(3/2)
        array([[4., 5.],
               [7., 8.]], dtype=float32)
    """
    return MaxPool2dFn.apply(x, **_pool_options("max_pool2d", x, kernel_size, stride, padding))


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Mean over kh x kw windows of NCHW images (``stride`` defaults to the kernel size).

    ``padding``: an int or a pair, at most half the kernel: zero padding, counted in the mean (as PyTorch's
    default); ``"valid"``: none; ``"same"`` (Keras: OH = ceil(H / sh), the odd pixel of padding below and
    right): the mean of the input pixels in each window only, the padding is not counted (as Keras).

    Example:
        >>> avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2).data[0, 0]
        array([[ 2.5,  4.5],
               [10.5, 12.5]], dtype=float32)
        >>> avg_pool2d(np.arange(9.0).reshape(1, 1, 3, 3), 2, padding="same").data[0, 0]   # 8 = mean of (8,)
        array([[2. , 3.5],
               [6.5, 8. ]], dtype=float32)
    """
    count_padding = not (isinstance(padding, str) and padding == "same")
    return AvgPool2dFn.apply(x, **_pool_options("avg_pool2d", x, kernel_size, stride, padding),
                             count_padding=count_padding)


# --------------------------------------------------------------------------------------------------------------
# Batch normalisation
# --------------------------------------------------------------------------------------------------------------
class BatchNormFn(Function):
    """Per channel c (axis 1), over the other axes (n = their number of elements):

        x̂ = (x - μ) / σ,  σ = sqrt(v + eps),  out = γ·x̂ + β        (γ = 1, β = 0 when not affine)

    Training: μ, v are the batch mean and (biased) variance, themselves functions of x, so (Ioffe & Szegedy
    2015; Sari et al. 2019, eq. 1)

        dL/dx = γ / (n·σ) · (n·g - Σg - x̂·Σ(g·x̂)),   dL/dγ = Σ g·x̂,   dL/dβ = Σ g.

    The running statistics, if given, are updated in place: running = (1 - m)·running + m·batch, with the
    unbiased variance v·n/(n - 1). Evaluation: μ, v are the running statistics (constants): dL/dx = γ/σ·g.

    ``fixed_var=K`` replaces v by the constant K (σ = sqrt(K), no eps): the input is only centred, then divided
    by a fixed scale — Sari et al. 2019 (Table 2) ablate BatchNorm this way ("centred only" is K = 1). σ then
    does not depend on the batch, so the x̂·Σ(g·x̂) term drops: dL/dx = γ/σ·(g - Σg/n) in training.
    """

    def forward(self, x, weight=None, bias=None, running_mean=None, running_var=None, training=True,
                momentum=0.1, eps=1e-5, fixed_var=None):
        axes, shape = (0,) + tuple(range(2, x.ndim)), _channel_shape(x)
        self.axes, self.training, self.n, self.fixed_var = axes, training, x.size // x.shape[1], fixed_var
        if training:
            mean = x.mean(axis=axes)
            centred = x - mean.reshape(shape)
            var = np.square(centred).mean(axis=axes)
            if running_mean is not None:
                running_mean *= 1.0 - momentum
                running_mean += momentum * mean
                running_var *= 1.0 - momentum
                running_var += (momentum * self.n / (self.n - 1)) * var
        else:
            centred, var = x - running_mean.astype(x.dtype).reshape(shape), running_var.astype(x.dtype)
        if fixed_var is None:
            self.inv_std = (1.0 / np.sqrt(var + eps)).reshape(shape)
        else:
            self.inv_std = np.full(shape, 1.0 / np.sqrt(fixed_var), dtype=x.dtype)
        self.xhat = centred
        self.xhat *= self.inv_std  # x̂, written over the centred copy
        if weight is None:
            self.gamma = None
            return self.xhat
        self.gamma = weight.reshape(shape)
        out = self.xhat * self.gamma
        out += bias.reshape(shape)
        return out

    def backward(self, grad):
        dbeta = grad.sum(axis=self.axes)
        n, c = grad.shape[:2]  # Σ g·x̂ by einsum: no temporary array of x's size
        dgamma = np.einsum("ncl,ncl->c", grad.reshape(n, c, -1), self.xhat.reshape(n, c, -1))
        scale = self.inv_std if self.gamma is None else self.inv_std * self.gamma
        if self.training:
            shape = scale.shape
            dx = grad - dbeta.reshape(shape) / self.n  # through the batch mean
            if self.fixed_var is None:
                dx -= self.xhat * (dgamma.reshape(shape) / self.n)  # through the batch variance
            dx *= scale
        else:
            dx = grad * scale
        return dx if self.gamma is None else (dx, dgamma, dbeta)


def batch_norm(x, running_mean: Optional[np.ndarray] = None, running_var: Optional[np.ndarray] = None,
               weight=None, bias=None, training: bool = True, momentum: float = 0.1, eps: float = 1e-5,
               fixed_var: Optional[float] = None) -> Tensor:
    """Batch normalisation over axis 1 (channels) of x of shape (N, C), (N, C, L) or (N, C, H, W).

    Args:
        x: the input.
        running_mean, running_var: (C,) arrays, updated in place when ``training`` (or None to keep no
            running statistics); used instead of the batch statistics when not ``training``.
        weight, bias: γ and β of shape (C,), both or neither.
        training: normalise with the batch statistics (and update the running ones) or with the running ones.
        momentum: m in running = (1 - m)·running + m·batch (the batch variance is unbiased there).
        eps: added to the variance before the square root.
        fixed_var: None (normalise), or a constant K > 0 that replaces the variance: x is centred and divided
            by sqrt(K) (Sari et al. 2019's BatchNorm ablations; K = 1 is "centred only").

    Example:
        >>> batch_norm(np.array([[1.0], [3.0]]), eps=0.0).data
        array([[-1.],
               [ 1.]], dtype=float32)
    """
    xs = shape_of(x)
    if len(xs) < 2:
        raise ValueError(f"batch_norm: input must have a channel axis, (N, C, ...), got shape {xs}")
    c = xs[1]
    for name, value in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var)):
        if value is not None and shape_of(value) != (c,):
            raise ValueError(f"batch_norm: {name} must have shape ({c},) for an input of shape {xs}, "
                             f"got {shape_of(value)}")
    if (weight is None) != (bias is None):
        raise ValueError("batch_norm: give both weight and bias (affine) or neither")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give both running_mean and running_var or neither")
    if training and xs[0] * int(np.prod(xs[2:])) < 2:
        raise ValueError(f"batch_norm: training needs more than one value per channel to estimate a variance, "
                         f"got an input of shape {xs}")
    if not training and running_mean is None:
        raise ValueError("batch_norm: evaluation (training=False) needs running_mean and running_var")
    momentum, eps = _checks.real("batch_norm", "momentum", momentum), _checks.real("batch_norm", "eps", eps)
    if not 0.0 <= momentum <= 1.0 or eps < 0:
        raise ValueError(f"batch_norm: momentum must be in [0, 1] and eps >= 0, got momentum={momentum}, eps={eps}")
    if fixed_var is not None:
        fixed_var = _checks.real("batch_norm", "fixed_var", fixed_var)
        if fixed_var <= 0:
            raise ValueError(f"batch_norm: fixed_var must be > 0, got {fixed_var}")
    running = dict(running_mean=running_mean, running_var=running_var)
    params = () if weight is None else (weight, bias)
    return BatchNormFn.apply(x, *params, **running, training=bool(training), momentum=momentum, eps=eps,
                             fixed_var=fixed_var)


# --------------------------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------------------------
class DropoutFn(Function):
    """out = x · mask, with mask = keep / (1 - p) drawn beforehand;  d/dx = mask."""

    def forward(self, x, mask=None):
        self.mask = mask
        return x * mask

    def backward(self, grad):
        return grad * self.mask


def dropout(x, p: float = 0.5, training: bool = True, rng: Optional[np.random.Generator] = None) -> Tensor:
    """Zero each element with probability p and scale the others by 1/(1 - p), so E[out] = x; identity when
    not ``training``. The mask comes from ``rng``, or from the library's generator (``minibnn.get_rng()``).

    Example:
        >>> out = dropout(np.ones(1000), p=0.25, rng=np.random.default_rng(0)).data
        >>> np.unique(out)                         # dropped, or kept and scaled by 1 / 0.75
        array([0.       , 1.3333334], dtype=float32)
    """
    p = _checks.real("dropout", "p", p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    keep = get_rng(rng).random(x.shape, dtype=np.float32) >= p
    mask = keep.astype(x.dtype)
    mask *= 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return DropoutFn.apply(x, mask=mask)


# --------------------------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------------------------
class ReLUFn(Function):
    """out = max(x, 0);  d/dx = 1 where x > 0, else 0 (0 at the kink x = 0)."""

    def forward(self, x):
        self.positive = x > 0
        return np.maximum(x, 0)

    def backward(self, grad):
        return grad * self.positive


class HardtanhFn(Function):
    """out = clip(x, lo, hi);  d/dx = 1 where lo <= x <= hi, else 0 (edges included, like ``clip`` and the
    clipped straight-through estimator 1_{|x| <= 1} of binary networks, Sari et al. 2019)."""

    def forward(self, x, low=-1.0, high=1.0):
        self.inside = (x >= low) & (x <= high)
        return np.clip(x, low, high)

    def backward(self, grad):
        return grad * self.inside


class TanhFn(Function):
    """out = tanh(x);  d/dx = 1 - out²."""

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, grad):
        return grad * (1 - self.out * self.out)


class SigmoidFn(Function):
    """out = 1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2, which cannot overflow;  d/dx = out·(1 - out)."""

    def forward(self, x):
        self.out = 0.5 + 0.5 * np.tanh(0.5 * x)
        return self.out

    def backward(self, grad):
        return grad * self.out * (1 - self.out)


class LeakyReLUFn(Function):
    """out = x where x > 0, else s·x;  d/dx = 1 where x > 0, else s (s at the kink)."""

    def forward(self, x, negative_slope=0.01):
        self.positive, self.slope = x > 0, negative_slope
        return np.where(self.positive, x, negative_slope * x)

    def backward(self, grad):
        return np.where(self.positive, grad, self.slope * grad)


class PReLUFn(Function):
    """out = x where x > 0, else a·x, with a learnable slope a per channel (axis 1) or one shared slope
    (He et al. 2015);  dL/dx = g where x > 0, else a·g;  dL/da = Σ g·x over the elements where x <= 0."""

    def forward(self, x, a):
        self.x, self.a_shape = x, a.shape
        self.slope = a.reshape(_channel_shape(x)) if a.size > 1 else a.reshape(())
        self.positive = x > 0
        return np.where(self.positive, x, self.slope * x)

    def backward(self, grad):
        dx = np.where(self.positive, grad, self.slope * grad) if self.needs_input_grad[0] else None
        axes = tuple(i for i in range(grad.ndim) if i != 1 or len(self.a_shape) == 0 or self.a_shape[0] == 1)
        da = np.where(self.positive, 0, grad * self.x).sum(axis=axes).reshape(self.a_shape)
        return dx, da


class LogSoftmaxFn(Function):
    """out = x - log Σ exp(x) along ``axis`` (as z - log Σ exp z with z = x - max x, which cannot overflow);
    dL/dx = g - softmax(x)·Σ g."""

    def forward(self, x, axis=-1):
        self.axis = axis
        z = x - x.max(axis=axis, keepdims=True)
        self.out = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
        return self.out

    def backward(self, grad):
        return grad - np.exp(self.out) * grad.sum(axis=self.axis, keepdims=True)


class SoftmaxFn(Function):
    """out = exp(x) / Σ exp(x) along ``axis`` (shifted by max x first);  dL/dx = out·(g - Σ g·out)."""

    def forward(self, x, axis=-1):
        self.axis = axis
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        self.out = e / e.sum(axis=axis, keepdims=True)
        return self.out

    def backward(self, grad):
        return self.out * (grad - (grad * self.out).sum(axis=self.axis, keepdims=True))


def relu(x) -> Tensor:
    """max(x, 0). Gradient 0 at x = 0.

    Example:
        >>> relu([-1.0, 0.0, 2.0]).data
        array([0., 0., 2.], dtype=float32)
    """
    return ReLUFn.apply(x)


def hardtanh(x, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """clip(x, min_val, max_val); gradient 1 on [min_val, max_val] (edges included), 0 outside.

    Example:
        >>> hardtanh([-2.0, 0.5, 3.0]).data
        array([-1. ,  0.5,  1. ], dtype=float32)
    """
    low, high = _checks.real("hardtanh", "min_val", min_val), _checks.real("hardtanh", "max_val", max_val)
    if low >= high:
        raise ValueError(f"hardtanh: min_val ({low}) must be smaller than max_val ({high})")
    return HardtanhFn.apply(x, low=low, high=high)


def relu6(x) -> Tensor:
    """min(max(x, 0), 6) = hardtanh(x, 0, 6); gradient 1 on [0, 6] (edges included), 0 outside.

    Example:
        >>> relu6([-1.0, 3.0, 7.0]).data
        array([0., 3., 6.], dtype=float32)
    """
    return HardtanhFn.apply(x, low=0.0, high=6.0)


def tanh(x) -> Tensor:
    """The hyperbolic tangent.

    Example:
        >>> tanh([0.0]).data
        array([0.], dtype=float32)
    """
    return TanhFn.apply(x)


def sigmoid(x) -> Tensor:
    """1 / (1 + exp(-x)), stable for large |x|.

    Example:
        >>> sigmoid([0.0, 1000.0, -1000.0]).data
        array([0.5, 1. , 0. ], dtype=float32)
    """
    return SigmoidFn.apply(x)


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope·x.

    Example:
        >>> leaky_relu([-2.0, 3.0], negative_slope=0.5).data
        array([-1.,  3.], dtype=float32)
    """
    return LeakyReLUFn.apply(x, negative_slope=_checks.real("leaky_relu", "negative_slope", negative_slope))


def prelu(x, weight) -> Tensor:
    """x where x > 0, else a·x, with the learnable slopes ``weight``: one per channel (axis 1 of x) or a single
    one, shape (1,).

    Example:
        >>> prelu([[-2.0, -2.0]], Tensor([0.5, 0.25])).data
        array([[-1. , -0.5]], dtype=float32)
    """
    xs, ws = shape_of(x), shape_of(weight)
    if len(ws) != 1 or (ws[0] != 1 and (len(xs) < 2 or xs[1] != ws[0])):
        raise ValueError(f"prelu: weight must have shape (1,) or (C,) with C the size of axis 1 of the input; "
                         f"got weight {ws} for an input of shape {xs}")
    return PReLUFn.apply(x, weight)


def log_softmax(x, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, computed without overflow.

    Example:
        >>> np.exp(log_softmax([[1000.0, 1000.0]]).data)
        array([[0.5, 0.5]], dtype=float32)
    """
    return LogSoftmaxFn.apply(x, axis=axis)


def softmax(x, axis: int = -1) -> Tensor:
    """exp(x) / Σ exp(x) along ``axis``, computed without overflow.

    Example:
        >>> softmax([[0.0, 0.0, 0.0, 0.0]]).data
        array([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
    """
    return SoftmaxFn.apply(x, axis=axis)
