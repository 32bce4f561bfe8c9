"""Layers: modules that hold weights (Linear, Conv2d, BatchNorm, PReLU) or options (pooling, activations).

Every layer is a thin :class:`~minibnn.module.Module` around one function of :mod:`minibnn.functional`, where the
arithmetic and its gradient live. A layer checks its input (shape, dtype) so that errors speak of the layer:
``Linear(in_features=784) got input of shape (32, 783); expected shape (..., 784)``.

The quantized layers (:mod:`minibnn.quantized`) are subclasses of ``Linear`` and ``Conv2d`` whose ``forward``
quantizes the input and the weight before the same one call of ``functional.linear`` / ``functional.conv2d``.

Example:
    >>> from minibnn import Sequential
    >>> model = Sequential(Linear(784, 100), BatchNorm1d(100), Hardtanh(), Linear(100, 10))
    >>> model
    Sequential(
      (0): Linear(in_features=784, out_features=100, bias=True)
      (1): BatchNorm1d(100, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
      (2): Hardtanh(min_val=-1.0, max_val=1.0)
      (3): Linear(in_features=100, out_features=10, bias=True)
    )
"""
from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np

from . import _checks, init
from . import functional as F
from .im2col import check_padding
from .module import Module, Parameter
from .random import get_rng
from .tensor import Tensor, as_tensor, shape_of

__all__ = [
    "Linear", "Conv2d", "BatchNorm1d", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "Flatten", "Dropout",
    "Identity", "ReLU", "ReLU6", "Hardtanh", "Tanh", "Sigmoid", "LeakyReLU", "PReLU", "GlobalAvgPool2d",
]

InitSpec = Union[str, Callable]  # an initializer name or a callable init(shape, rng, dtype)


def _check_dtype(layer: Module, x, dtype: np.dtype) -> None:
    """A tensor input must have the layer's dtype (NumPy arrays are converted to it, as everywhere)."""
    if isinstance(x, Tensor) and x.dtype != dtype:
        raise TypeError(f"{layer._signature()} got a {x.dtype} input but its parameters are {dtype}; convert "
                        f"the input with x.astype(np.{dtype}) or the layer with .astype(np.{x.dtype})")


def _fmt_pair(pair) -> str:
    if isinstance(pair, str):  # padding="same"
        return repr(pair)
    return str(pair[0]) if pair[0] == pair[1] else str(pair)


# --------------------------------------------------------------------------------------------------------------
# Layers with weights
# --------------------------------------------------------------------------------------------------------------
class Linear(Module):
    """Fully connected layer:  y = x @ Wᵀ + b,  W of shape (out_features, in_features).

    Args:
        in_features, out_features: sizes of the last axis of the input and of the output.
        bias: whether to add a learnable bias b (out_features,).
        weight_init: an initializer name or callable ``init(shape, rng, dtype)`` (see :mod:`minibnn.init`);
            default "glorot_uniform": W ~ U[-a, a], a = sqrt(6 / (in_features + out_features)) (Glorot & Bengio
            2010, the initialisation of BinaryConnect and BinaryNet).
        bias_init: likewise for b; default "zeros" ("random_bias" gives Li & Partovi Nia's U[-λ, λ]).
        rng: the generator drawing the initial values; default the library's (``minibnn.get_rng()``).
        dtype: float32 (default) or float64.

    Input (..., in_features), output (..., out_features).

    Example:
        >>> layer = Linear(3, 2)
        >>> layer(np.ones((5, 3))).shape
        (5, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 weight_init: InitSpec = "glorot_uniform", bias_init: InitSpec = "zeros",
                 rng: Optional[np.random.Generator] = None, dtype=np.float32):
        super().__init__()
        self.in_features = _checks.positive_int("Linear", "in_features", in_features)
        self.out_features = _checks.positive_int("Linear", "out_features", out_features)
        rng, dtype = get_rng(rng), _checks.float_dtype("Linear", "dtype", dtype)
        self.weight = Parameter(init.get(weight_init)((self.out_features, self.in_features), rng, dtype))
        self.bias = Parameter(init.get(bias_init)((self.out_features,), rng, dtype)) if bias else None

    def _signature(self) -> str:
        return f"Linear(in_features={self.in_features})"

    def check_input(self, x) -> None:
        """Raise an error naming the layer unless x is (..., in_features) and, if a tensor, of its dtype."""
        shape = shape_of(x)
        if len(shape) == 0 or shape[-1] != self.in_features:
            raise ValueError(f"{self._signature()} got input of shape {shape}; expected shape "
                             f"(..., {self.in_features})")
        _check_dtype(self, x, self.weight.dtype)

    def forward(self, x) -> Tensor:
        """y = x @ Wᵀ + b."""
        self.check_input(x)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution of NCHW images:  y[n, o] = Σ_c W[o, c] ⋆ x_pad[n, c] + b[o].

    Args:
        in_channels, out_channels: C of the input and O of the output.
        kernel_size, stride: an int or a pair (vertical, horizontal).
        padding: an int or a pair (vertical, horizontal), padded on both sides; ``"valid"`` (no padding, kept
            as (0, 0)) or ``"same"`` (Keras: OH = ceil(H / sh), the odd pixel of padding below and right, so
            the padding depends on the input size; see :func:`minibnn.im2col.padding_sides`).
        bias: whether to add a learnable bias b (out_channels,).
        pad_value: the value of the padded border (default 0; a binary layer may pad with -1 or +1).
        weight_init, bias_init, rng, dtype: as for :class:`Linear` (fan_in = in_channels·kh·kw,
            fan_out = out_channels·kh·kw); default "glorot_uniform" and "zeros".

    Input (N, in_channels, H, W), output (N, out_channels, OH, OW), OH = (H + 2·ph - kh) // sh + 1
    (ceil(H / sh) with "same").

    Example:
        >>> Conv2d(3, 8, kernel_size=3, padding=1)(np.ones((2, 3, 5, 5))).shape
        (2, 8, 5, 5)
        >>> Conv2d(3, 8, kernel_size=3, stride=2, padding="same")(np.ones((2, 3, 5, 6))).shape
        (2, 8, 3, 3)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 pad_value: float = 0.0, weight_init: InitSpec = "glorot_uniform",
                 bias_init: InitSpec = "zeros", rng: Optional[np.random.Generator] = None, dtype=np.float32):
        super().__init__()
        who = type(self).__name__  # Conv2d, or a subclass (QuantConv2d, BinaryConv2d)
        self.in_channels = _checks.positive_int(who, "in_channels", in_channels)
        self.out_channels = _checks.positive_int(who, "out_channels", out_channels)
        self.kernel_size = _checks.pair(who, "kernel_size", kernel_size, 1)
        self.stride = _checks.pair(who, "stride", stride, 1)
        self.padding = check_padding(who, padding)
        self.pad_value = _checks.real(who, "pad_value", pad_value)
        rng, dtype = get_rng(rng), _checks.float_dtype(who, "dtype", dtype)
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.weight = Parameter(init.get(weight_init)(shape, rng, dtype))
        self.bias = Parameter(init.get(bias_init)((self.out_channels,), rng, dtype)) if bias else None

    def _signature(self) -> str:
        return f"Conv2d(in_channels={self.in_channels}, kernel_size={_fmt_pair(self.kernel_size)})"

    def check_input(self, x) -> None:
        """Raise an error naming the layer unless x is (N, in_channels, H, W) and, if a tensor, of its dtype."""
        shape = shape_of(x)
        if len(shape) != 4 or shape[1] != self.in_channels:
            raise ValueError(f"{self._signature()} got input of shape {shape}; expected a 4-D input "
                             f"(N, {self.in_channels}, H, W)")
        _check_dtype(self, x, self.weight.dtype)

    def forward(self, x) -> Tensor:
        """y[n, o] = Σ_c W[o, c] ⋆ x_pad[n, c] + b[o]."""
        self.check_input(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.pad_value)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={_fmt_pair(self.kernel_size)}, "
                f"stride={_fmt_pair(self.stride)}")
        if self.padding != (0, 0):
            text += f", padding={_fmt_pair(self.padding)}"
        if self.pad_value != 0.0:
            text += f", pad_value={self.pad_value}"
        return text + f", bias={self.bias is not None}"


class _BatchNorm(Module):
    """Shared body of BatchNorm1d and BatchNorm2d; subclasses say which input ranks they accept."""

    _ranks: tuple = ()
    _layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=np.float32):
        super().__init__()
        who = type(self).__name__
        self.num_features = _checks.positive_int(who, "num_features", num_features)
        self.eps = _checks.real(who, "eps", eps)
        self.momentum = _checks.real(who, "momentum", momentum)
        if self.eps < 0 or not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"{who}: eps must be >= 0 and momentum in [0, 1], got eps={eps}, momentum={momentum}")
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dtype = _checks.float_dtype(who, "dtype", dtype)
        self.weight = Parameter(np.ones(self.num_features, dtype=dtype)) if self.affine else None
        self.bias = Parameter(np.zeros(self.num_features, dtype=dtype)) if self.affine else None
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))
        else:
            self.running_mean = self.running_var = None

    def _signature(self) -> str:
        return f"{type(self).__name__}({self.num_features})"

    def reset_running_stats(self) -> None:
        """Running mean back to 0 and running variance back to 1."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1

    def forward(self, x) -> Tensor:
        shape = shape_of(x)
        if len(shape) not in self._ranks or shape[1] != self.num_features:
            raise ValueError(f"{self._signature()} got input of shape {shape}; expected {self._layout} with "
                             f"C = {self.num_features}")
        dtype = self.weight.dtype if self.affine else (
            self.running_mean.dtype if self.track_running_stats else None)
        if dtype is not None:
            _check_dtype(self, x, dtype)
        use_batch_stats = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=use_batch_stats, momentum=self.momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs, per feature C:  y = γ·(x - μ)/sqrt(σ² + eps) + β.

    In training, μ and σ² are the batch mean and (biased) variance over N (and L), and the running statistics
    are updated: running = (1 - momentum)·running + momentum·batch, with the unbiased batch variance. In
    evaluation (``.eval()``), the running statistics are used instead. With ``track_running_stats=False`` the
    batch statistics are used in both modes and no running statistics are kept.

    Args:
        num_features: C.
        eps: added to the variance (default 1e-5).
        momentum: weight of the new batch in the running statistics (default 0.1).
        affine: learnable γ (``weight``, init 1) and β (``bias``, init 0).
        track_running_stats: keep ``running_mean`` (init 0) and ``running_var`` (init 1) as buffers.
        dtype: float32 (default) or float64.

    Example:
        >>> bn = BatchNorm1d(2)
        >>> y = bn(np.array([[1.0, 10.0], [3.0, 30.0]]))
        >>> y.data.round(3)
        array([[-1., -1.],
               [ 1.,  1.]], dtype=float32)
        >>> bn.running_mean                     # 0.9·0 + 0.1·batch mean
        array([0.2, 2. ], dtype=float32)
    """

    _ranks = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of NCHW images, per channel C over N, H and W; otherwise as :class:`BatchNorm1d`.

    Example:
        >>> BatchNorm2d(3)(np.random.default_rng(0).normal(size=(2, 3, 4, 4))).shape
        (2, 3, 4, 4)
    """

    _ranks = (4,)
    _layout = "(N, C, H, W)"


class PReLU(Module):
    """y = x where x > 0, else a·x, with a learnable slope a: one shared (num_parameters=1) or one per channel
    (axis 1 of the input) (He et al. 2015). Kim et al. 2020 use it as an extra activation in binary networks.

    Args:
        num_parameters: 1 or the number of channels.
        init: the initial slope (default 0.25).
        dtype: float32 (default) or float64.

    Example:
        >>> PReLU()(np.array([-4.0, 4.0])).data
        array([-1.,  4.], dtype=float32)
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype=np.float32):
        super().__init__()
        self.num_parameters = _checks.positive_int("PReLU", "num_parameters", num_parameters)
        dtype = _checks.float_dtype("PReLU", "dtype", dtype)
        self.weight = Parameter(np.full(self.num_parameters, _checks.real("PReLU", "init", init), dtype=dtype))

    def _signature(self) -> str:
        return f"PReLU(num_parameters={self.num_parameters})"

    def forward(self, x) -> Tensor:
        shape = shape_of(x)
        if self.num_parameters > 1 and (len(shape) < 2 or shape[1] != self.num_parameters):
            raise ValueError(f"{self._signature()} got input of shape {shape}; expected (N, "
                             f"{self.num_parameters}, ...) with one slope per channel")
        _check_dtype(self, x, self.weight.dtype)
        return F.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


# --------------------------------------------------------------------------------------------------------------
# Layers without weights
# --------------------------------------------------------------------------------------------------------------
class _Pool2d(Module):
    _function: Callable = None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        who = type(self).__name__
        self.kernel_size = _checks.pair(who, "kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else _checks.pair(who, "stride", stride, 1)
        self.padding = check_padding(who, padding)
        if self.padding != "same" and (self.padding[0] > self.kernel_size[0] // 2
                                       or self.padding[1] > self.kernel_size[1] // 2):
            raise ValueError(f"{who}: padding {self.padding} must be at most half the kernel {self.kernel_size}")

    def forward(self, x) -> Tensor:
        shape = shape_of(x)
        if len(shape) != 4:
            raise ValueError(f"{type(self).__name__}(kernel_size={_fmt_pair(self.kernel_size)}) got input of "
                             f"shape {shape}; expected a 4-D input (N, C, H, W)")
        return type(self)._function(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"kernel_size={_fmt_pair(self.kernel_size)}, stride={_fmt_pair(self.stride)}, "
                f"padding={_fmt_pair(self.padding)}")


class MaxPool2d(_Pool2d):
    """Maximum over kernel_size windows of NCHW images (stride defaults to kernel_size; padding is -inf).
    The gradient goes to each window's maximum (the first one when several tie).

    ``padding``: an int or a pair, at most half the kernel; ``"valid"`` (none) or ``"same"`` (Keras:
    OH = ceil(H / sh), see :func:`minibnn.functional.max_pool2d`).

    Example:
        >>> MaxPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4)).shape
        (1, 1, 2, 2)
        >>> MaxPool2d(2, padding="same")(np.arange(25.0).reshape(1, 1, 5, 5)).shape     # ceil(5 / 2)
        (1, 1, 3, 3)
    """

    _function = staticmethod(F.max_pool2d)


class AvgPool2d(_Pool2d):
    """Mean over kernel_size windows of NCHW images (stride defaults to kernel_size).

    ``padding``: an int or a pair, at most half the kernel, zero padding counted in the mean (PyTorch's
    default); ``"valid"`` (none); or ``"same"`` (Keras: OH = ceil(H / sh), and the mean is over the input
    pixels of each window only, the padding is not counted; see :func:`minibnn.functional.avg_pool2d`).

    Example:
        >>> AvgPool2d(2)(np.ones((1, 1, 4, 4))).data[0, 0]
        array([[1., 1.],
               [1., 1.]], dtype=float32)
        >>> AvgPool2d(2, padding="same")(np.ones((1, 1, 3, 3))).data[0, 0]   # the border windows: 2 or 1 ones
        array([[1., 1.],
               [1., 1.]], dtype=float32)
    """

    _function = staticmethod(F.avg_pool2d)


class Flatten(Module):
    """Merge axes start_dim..end_dim into one: (N, C, H, W) -> (N, C·H·W) by default.

    Example:
        >>> Flatten()(np.ones((2, 3, 4, 4))).shape
        (2, 48)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x) -> Tensor:
        return as_tensor(x).flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Zero each element with probability p and scale the rest by 1/(1 - p) in training; identity in eval.

    Args:
        p: the drop probability, in [0, 1] (default 0.5).
        rng: the generator of the masks; default the library's (``minibnn.get_rng()``), read at each call.

    Example:
        >>> Dropout(0.5).eval()(np.ones(3)).data
        array([1., 1., 1.], dtype=float32)
    """

    def __init__(self, p: float = 0.5, rng: Optional[np.random.Generator] = None):
        super().__init__()
        self.p = _checks.real("Dropout", "p", p)
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.rng = None if rng is None else get_rng(rng)

    def forward(self, x) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Identity(Module):
    """y = x (a placeholder, e.g. where a variant of a model has no BatchNorm).

    Example:
        >>> Identity()(np.array([1.0, 2.0])).data
        array([1., 2.], dtype=float32)
    """

    def forward(self, x) -> Tensor:
        return as_tensor(x)


class ReLU(Module):
    """y = max(x, 0) (gradient 0 at 0)."""

    def forward(self, x) -> Tensor:
        return F.relu(x)


class ReLU6(Module):
    """y = min(max(x, 0), 6) (gradient 1 on [0, 6], edges included)."""

    def forward(self, x) -> Tensor:
        return F.relu6(x)


class Hardtanh(Module):
    """y = clip(x, min_val, max_val) (default [-1, 1]; gradient 1 on [min_val, max_val], edges included).

    Kim et al. 2020 shift its range (e.g. min_val=-1, max_val=2) to unbalance the ±1 ratio of binary activations.

    Example:
        >>> Hardtanh(-1.0, 2.0)(np.array([-3.0, 0.5, 3.0])).data
        array([-1. ,  0.5,  2. ], dtype=float32)
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0):
        super().__init__()
        self.min_val = _checks.real("Hardtanh", "min_val", min_val)
        self.max_val = _checks.real("Hardtanh", "max_val", max_val)
        if self.min_val >= self.max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must be smaller than max_val ({max_val})")

    def forward(self, x) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, x) -> Tensor:
        return F.tanh(x)


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x))."""

    def forward(self, x) -> Tensor:
        return F.sigmoid(x)


class LeakyReLU(Module):
    """y = x where x > 0, else negative_slope·x (default 0.01).

    Example:
        >>> LeakyReLU(0.1)
        LeakyReLU(negative_slope=0.1)
    """

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = _checks.real("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GlobalAvgPool2d(Module):
    """y[n, c] = mean over h, w of x[n, c, h, w]: (N, C, H, W) -> (N, C).

    Example:
        >>> GlobalAvgPool2d()(np.ones((2, 3, 4, 4))).shape
        (2, 3)
    """

    def forward(self, x) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 4:
            raise ValueError(f"GlobalAvgPool2d got input of shape {x.shape}; expected a 4-D input (N, C, H, W)")
        return x.mean(axis=(2, 3))
