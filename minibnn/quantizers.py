"""Quantizers: a discrete forward pass (sign, step, ternary, k-bit) and a pseudo-gradient for the backward pass.

sign(x) has derivative 0 almost everywhere, so a binary network cannot learn through it. A quantizer keeps the
discrete forward and replaces the derivative by a *pseudo-gradient*: the derivative of a smooth function that
looks like the step (Hubara et al. 2016; Darabi et al. 2018, Fig. 4). Each one below is

* a :class:`~minibnn.tensor.Function` subclass (``SteSignFunction``...) with ``forward`` and ``backward`` side by
  side and the formula in the docstring;
* a plain function on tensors (``ste_sign(x, clip_value=1.0)``...);
* a :class:`Quantizer` module (``SteSign``...) registered under Larq's string names, so a layer can be built
  with ``kernel_quantizer="ste_sign"`` and look it up with :func:`get`.

Conventions (part of the specification, and tested): sign(0) = +1, so every binary quantizer gives its upper
value on its threshold (ste_heaviside(0) = 1, sign(x - t) = +1 at x = t); the clipped STE's window is closed,
1 on |x| <= clip_value.

The quantizer protocol (what a quantized layer may rely on):

* ``quantizers.get(identifier)`` turns a name, a callable or ``None`` into a quantizer (a fresh module for a
  name, the object itself for a callable, ``None`` for ``None``).
* Every registered quantizer is a :class:`Quantizer`, i.e. a :class:`~minibnn.module.Module` with
  ``forward(x: Tensor) -> Tensor`` (same shape), ``precision`` (bits of the output, ``None`` for full precision)
  and ``name``. Trainable ones (``ss_t``'s β, :class:`TrainableThreshold`) hold Parameters, so a layer that
  assigns its quantizer as an attribute (``self.input_quantizer = quantizers.get(q)``) finds them through
  ``parameters()``.
* A layer calls its quantizers as ``self.kernel_quantizer(self.weight)`` and ``self.input_quantizer(x)``; the
  weight is (out, in) or (out, in, kh, kw), per-filter means per output channel (axis 0); activations are
  (N, C) or (N, C, H, W), per-channel means axis 1.
* ``quantizer.plot()`` draws the forward function and its pseudo-gradient side by side (needs matplotlib).

Example:
    >>> import numpy as np
    >>> from minibnn import Tensor
    >>> x = Tensor([-1.5, -0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    >>> q = get("ste_sign")
    >>> y = q(x)
    >>> y.data
    array([-1., -1.,  1.,  1.,  1.,  1.], dtype=float32)
    >>> y.sum().backward()
    >>> x.grad
    array([0., 1., 1., 1., 1., 0.], dtype=float32)
"""
from __future__ import annotations

import functools
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .module import Module, Parameter
from .registry import Registry
from .tensor import Function, Tensor, enable_grad

__all__ = [
    "Quantizer", "get", "register", "names", "plot_quantizers",
    "ste_sign", "approx_sign", "tanh_sign", "swish_sign", "sign_swish", "ste_heaviside", "magnitude_aware_sign",
    "ste_tern", "dorefa", "shifted_hardtanh",
    "SteSign", "ApproxSign", "TanhSign", "SwishSign", "SteHeaviside", "MagnitudeAwareSign", "SteTern", "DoReFa",
    "NoOp", "ShiftedThreshold", "TrainableThreshold", "ShiftedHardtanh",
    "SteSignFunction", "ApproxSignFunction", "TanhSignFunction", "SwishSignFunction", "SignSwishFunction",
    "SteHeavisideFunction", "SteTernFunction", "RoundSTEFunction",
]


# --------------------------------------------------------------------------------------------------------------
# Helpers on NumPy arrays
# --------------------------------------------------------------------------------------------------------------
def _sign(x: np.ndarray) -> np.ndarray:
    """sign with sign(0) = +1 (also for -0.0), in x's dtype: the binarization every quantizer here uses."""
    out = (x >= 0).astype(x.dtype)  # 1 where x >= 0, else 0 (NaN too)
    out *= 2
    out -= 1  # in place: 7x faster than np.where(x >= 0, 1, -1), which broadcasts its scalars
    return out


def _clip_mask(x: np.ndarray, clip_value: Optional[float]) -> np.ndarray:
    """1 where |x| <= clip_value (edges included), else 0; all ones when clip_value is None."""
    if clip_value is None:
        return np.ones(x.shape, dtype=x.dtype)
    return (np.abs(x) <= clip_value).astype(x.dtype)


def _check_clip(where: str, clip_value) -> Optional[float]:
    if clip_value is None:
        return None
    if not np.isscalar(clip_value) or not clip_value > 0:
        raise ValueError(f"{where}: clip_value must be a positive number or None, got {clip_value!r}")
    return float(clip_value)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^-z), without overflow for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _sign_swish_slope(z: np.ndarray) -> np.ndarray:
    """(2 - z·tanh(z/2)) / (1 + cosh z), the derivative of SS_β with respect to z = βx.

    Written as 2σ(z)(1-σ(z))·(2 - z·tanh(z/2)), which equals it because 1/(1 + cosh z) = 2σ(z)(1 - σ(z)), and
    which does not overflow where cosh would.
    """
    e = np.exp(-np.abs(z))
    return 2 * e / (1 + e) ** 2 * (2 - z * np.tanh(z / 2))


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


# --------------------------------------------------------------------------------------------------------------
# Binary quantizers: forward sign(x), backward a pseudo-gradient
# --------------------------------------------------------------------------------------------------------------
class SteSignFunction(Function):
    """out = sign(x) (sign(0) = +1);  d/dx ≈ 1 on |x| <= clip_value, 0 outside (clip_value None: always 1).

    The clipped straight-through estimator of Hubara et al. 2016 (Darabi et al. 2018, eq. 1; Sari et al. 2019):
    the derivative of hardtanh(x) = clip(x, -1, 1), hence BNN+'s name "htanh" for it (Table 1).
    """

    def forward(self, x, clip_value=1.0):
        self.mask = _clip_mask(x, clip_value)
        return _sign(x)

    def backward(self, grad):
        return grad * self.mask


class ApproxSignFunction(Function):
    """out = sign(x);  d/dx ≈ 2 - 2|x| on |x| <= 1, 0 outside.

    Bi-Real Net's ApproxSign (Liu et al. 2018): the derivative of the piecewise quadratic
    F(x) = 2x + x·|x| on |x| <= 1, ±1 outside, a closer fit to sign than hardtanh. BNN+ calls it "bireal".
    """

    def forward(self, x):
        self.slope = np.where(np.abs(x) <= 1, 2 - 2 * np.abs(x), 0).astype(x.dtype)
        return _sign(x)

    def backward(self, grad):
        return grad * self.slope


class TanhSignFunction(Function):
    """out = sign(x);  d/dx ≈ 1 - tanh²(x), the derivative of tanh ("tanh" in Darabi et al. 2018, Table 1)."""

    def forward(self, x):
        self.slope = 1 - np.tanh(x) ** 2
        return _sign(x)

    def backward(self, grad):
        return grad * self.slope


def _check_beta(where: str, beta: np.ndarray) -> None:
    if np.any(~(beta > 0)):
        raise ValueError(f"{where}: beta must be > 0, got {beta.tolist() if beta.ndim else beta.item()}")


class SwishSignFunction(Function):
    """out = sign(x);  d/dx ≈ dSS_β/dx = β(2 - βx·tanh(βx/2)) / (1 + cosh βx),  d/dβ ≈ dSS_β/dβ.

    BNN+'s SignSwish pseudo-gradient (Darabi et al. 2018, eq. 3): the backward pass of the smooth
    :class:`SignSwishFunction`, whose forward is replaced by sign. β is an input, so it can be a trainable
    Parameter ("SS_t"); its pseudo-gradient is dSS_β/dβ = x(2 - βx·tanh(βx/2)) / (1 + cosh βx) (z = βx, so
    d/dβ = x·d/dz where d/dx = β·d/dz). The slope is zero at βx ≈ ±2.3994 and negative beyond.
    """

    def forward(self, x, beta):
        _check_beta("swish_sign", beta)
        self.x, self.beta = x, beta
        self.slope = _sign_swish_slope(beta * x)  # dSS/dz
        return _sign(x)

    def backward(self, grad):
        dx = grad * self.beta * self.slope
        dbeta = grad * self.x * self.slope if self.needs_input_grad[1] else None
        return dx, dbeta


class SignSwishFunction(Function):
    """out = SS_β(x) = 2σ(βx)(1 + βx(1 - σ(βx))) - 1  (Darabi et al. 2018, eq. 2), a smooth sign.

    With z = βx and s = σ(z), s' = s(1-s):
        dSS/dz = 2s(1-s)(1 + z(1-s)) + 2s((1-s) - z·s(1-s)) = 2s(1-s)(2 + z(1 - 2s))
               = (2 - z·tanh(z/2)) / (1 + cosh z)          (1 - 2s = -tanh(z/2), 2s(1-s) = 1/(1 + cosh z))
    so dSS/dx = β·dSS/dz, which is eq. 3 of the paper as printed, and dSS/dβ = x·dSS/dz.
    """

    def forward(self, x, beta):
        _check_beta("sign_swish", beta)
        self.x, self.beta = x, beta
        z = beta * x
        s = _sigmoid(z)
        self.slope = _sign_swish_slope(z)
        return 2 * s * (1 + z * (1 - s)) - 1

    def backward(self, grad):
        dx = grad * self.beta * self.slope
        dbeta = grad * self.x * self.slope if self.needs_input_grad[1] else None
        return dx, dbeta


class SteHeavisideFunction(Function):
    """out = H(x) = 1 if x >= 0 else 0  (= (sign(x) + 1)/2);  d/dx ≈ 1 on |x| <= clip_value, else 0.

    The {0, 1} form of ste_sign. Note H(0) = 1 here, consistent with sign(0) = +1 (Larq gives 0 at exactly 0).
    """

    def forward(self, x, clip_value=1.0):
        self.mask = _clip_mask(x, clip_value)
        return (x >= 0).astype(x.dtype)

    def backward(self, grad):
        return grad * self.mask


class SteTernFunction(Function):
    """out = +1 if x >= Δ, -1 if x <= -Δ, 0 if |x| < Δ;  d/dx ≈ 1 on |x| <= clip_value, else 0.

    Δ is ``threshold_value``, or with ``ternary_weight_networks`` Δ = 0.7·mean|x| over the whole tensor
    (Li et al. 2016, Ternary Weight Networks, for Gaussian weights). Δ is treated as a constant in backward.
    """

    def forward(self, x, threshold_value=0.05, ternary_weight_networks=False, clip_value=1.0):
        if ternary_weight_networks:
            self.threshold = 0.7 * float(np.mean(np.abs(x))) if x.size else 0.0
        else:
            self.threshold = float(threshold_value)
        self.mask = _clip_mask(x, clip_value)
        return np.where(np.abs(x) < self.threshold, 0, _sign(x)).astype(x.dtype)

    def backward(self, grad):
        return grad * self.mask


class RoundSTEFunction(Function):
    """out = round(x·n) / n (ties to even, as NumPy);  d/dx ≈ 1 (the identity STE of DoReFa, Zhou et al. 2016)."""

    def forward(self, x, levels=1):
        return (np.round(x * levels) / levels).astype(x.dtype)

    def backward(self, grad):
        return grad


class _TanhFunction(Function):
    """out = tanh(x);  d/dx = 1 - tanh²(x) (used by DoReFa's weight normalisation)."""

    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, grad):
        return grad * (1 - self.out ** 2)


# --------------------------------------------------------------------------------------------------------------
# Plain functions on tensors
# --------------------------------------------------------------------------------------------------------------
def ste_sign(x, clip_value: Optional[float] = 1.0) -> Tensor:
    """sign(x) with the clipped straight-through estimator: pseudo-gradient 1 on |x| <= clip_value.

    Args:
        x: tensor (or array) of any shape.
        clip_value: half-width of the window where the gradient passes; ``None`` passes it everywhere.

    Example:
        >>> ste_sign(Tensor([-0.3, 0.0, 2.0])).data
        array([-1.,  1.,  1.], dtype=float32)
    """
    return SteSignFunction.apply(x, clip_value=_check_clip("ste_sign", clip_value))


def approx_sign(x) -> Tensor:
    """sign(x) with Bi-Real Net's pseudo-gradient 2 - 2|x| on |x| <= 1 (Liu et al. 2018)."""
    return ApproxSignFunction.apply(x)


def tanh_sign(x) -> Tensor:
    """sign(x) with the pseudo-gradient 1 - tanh²(x)."""
    return TanhSignFunction.apply(x)


def swish_sign(x, beta: Union[float, Tensor] = 5.0) -> Tensor:
    """sign(x) with BNN+'s SignSwish pseudo-gradient dSS_β/dx (Darabi et al. 2018, eq. 3).

    Args:
        x: tensor of any shape.
        beta: β > 0, a number or a tensor broadcastable to x; a tensor with ``requires_grad`` gets dSS_β/dβ.

    Example:
        >>> x = Tensor([0.0], requires_grad=True)
        >>> swish_sign(x, beta=5.0).sum().backward()
        >>> x.grad        # β·(2 - 0)/(1 + cosh 0) = β
        array([5.], dtype=float32)
    """
    return SwishSignFunction.apply(x, beta)


def sign_swish(x, beta: Union[float, Tensor] = 5.0) -> Tensor:
    """The smooth SignSwish SS_β(x) = 2σ(βx)(1 + βx(1 - σ(βx))) - 1 (Darabi et al. 2018, eq. 2), differentiable.

    It tends to sign(x) as β grows; :func:`swish_sign` uses its derivative as the pseudo-gradient of sign.
    """
    return SignSwishFunction.apply(x, beta)


def ste_heaviside(x, clip_value: Optional[float] = 1.0) -> Tensor:
    """Step to {0, 1} (1 for x >= 0) with the clipped straight-through estimator."""
    return SteHeavisideFunction.apply(x, clip_value=_check_clip("ste_heaviside", clip_value))


def _filter_axes(ndim: int) -> Tuple[int, ...]:
    """The axes of one filter: all but the output-channel axis 0 (a 1-D tensor is a single filter)."""
    return tuple(range(1, ndim)) if ndim >= 2 else tuple(range(ndim))


def magnitude_aware_sign(x, clip_value: Optional[float] = 1.0) -> Tensor:
    """mean|w_c| · sign(w) per output filter c (Bi-Real Net, Liu et al. 2018, Sec. 3.3), clipped STE.

    The scale is recomputed from the weights on each call and, as in Larq, treated as a constant in backward:
    d/dw ≈ mean|w_c| · 1{|w| <= clip_value}. For a weight (out, in[, kh, kw]) the mean runs over all axes but
    axis 0; a 1-D tensor is taken as one filter.
    """
    x = _as_tensor(x)
    scale = np.mean(np.abs(x.data), axis=_filter_axes(x.ndim), keepdims=True) if x.size else np.zeros(x.shape)
    return ste_sign(x, clip_value) * Tensor(np.asarray(scale, dtype=x.dtype))


def ste_tern(x, threshold_value: float = 0.05, ternary_weight_networks: bool = False,
             clip_value: Optional[float] = 1.0) -> Tensor:
    """Ternarize to {-1, 0, +1}: 0 where |x| < Δ, sign(x) elsewhere; clipped straight-through estimator.

    Args:
        threshold_value: Δ when ``ternary_weight_networks`` is False.
        ternary_weight_networks: use Δ = 0.7·mean|x| (Li et al. 2016) instead.
        clip_value: the STE window, as in :func:`ste_sign`.
    """
    if not ternary_weight_networks and not threshold_value >= 0:
        raise ValueError(f"ste_tern: threshold_value must be >= 0, got {threshold_value!r}")
    return SteTernFunction.apply(x, threshold_value=threshold_value,
                                 ternary_weight_networks=bool(ternary_weight_networks),
                                 clip_value=_check_clip("ste_tern", clip_value))


def dorefa(x, k_bit: int = 2, mode: str = "activations") -> Tensor:
    """DoReFa-Net's k-bit quantizer (Zhou et al. 2016), with n = 2^k - 1 levels above 0.

    * ``mode="activations"``: q = round(n·clip(x, 0, 1)) / n in {0, 1/n, ..., 1}; d/dx ≈ 1 on 0 <= x <= 1.
    * ``mode="weights"``: w̃ = tanh(w) / (2·max|tanh(w)|) + 1/2 in [0, 1] (max over the whole tensor), then
      q = 2·round(n·w̃)/n - 1 in {-1, ..., 1}; the gradient flows through the normalisation exactly and
      straight through the rounding (the paper's eq. 9 and its STE).

    Example:
        >>> dorefa(Tensor([-0.2, 0.3, 0.6, 1.4]), k_bit=2).data * 3    # levels 0, 1/3, 2/3, 1
        array([0., 1., 2., 3.], dtype=float32)
    """
    if isinstance(k_bit, bool) or not isinstance(k_bit, (int, np.integer)) or k_bit < 1:
        raise ValueError(f"dorefa: k_bit must be an integer >= 1, got {k_bit!r}")
    if mode not in ("activations", "weights"):
        raise ValueError(f"dorefa: mode must be 'activations' or 'weights', got {mode!r}")
    levels = 2 ** int(k_bit) - 1
    x = _as_tensor(x)
    if mode == "activations":
        return RoundSTEFunction.apply(x.clip(0.0, 1.0), levels=levels)
    t = _TanhFunction.apply(x)
    peak = t.abs().max() if x.size else None
    if peak is None or peak.item() == 0:  # all-zero weights: nothing to normalise by
        normalised = t * 0.5 + 0.5
    else:
        normalised = t / (peak * 2.0) + 0.5
    return RoundSTEFunction.apply(normalised, levels=levels) * 2.0 - 1.0


def shifted_hardtanh(x, x_offset: float = 0.0, y_offset: float = 0.0, scale: float = 1.0) -> Tensor:
    """hardtanh moved along x, along y, or widened: clip(x - x_offset, -scale, scale) + y_offset.

    Kim et al. 2021, Fig. 1: (b) ``x_offset``, (c) ``y_offset``, (d) ``scale`` (the range [-scale, scale], slope
    1). With x_offset = y_offset = scale = 3 it is ReLU6 = clip(x, 0, 6). Differentiable: slope 1 inside the
    ramp (edges included, as in :func:`minibnn.clip`), 0 outside.
    """
    if not scale > 0:
        raise ValueError(f"shifted_hardtanh: scale must be > 0, got {scale!r}")
    return (_as_tensor(x) - x_offset).clip(-scale, scale) + y_offset


# --------------------------------------------------------------------------------------------------------------
# Quantizer modules
# --------------------------------------------------------------------------------------------------------------
def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting quantizers needs matplotlib, an optional dependency: pip install matplotlib") \
            from None
    return plt


class Quantizer(Module):
    """Base class of the quantizer modules: ``forward(x) -> Tensor`` of the same shape, plus metadata.

    Attributes:
        name: the name it was registered or created under (``"ste_sign"``, ``"ss_t"``...).
        precision: bits per output value (1 for binary, 2 for ternary, k for k-bit, None for full precision);
            read by model summaries and by the binary-activation metrics.
    """

    name = "quantizer"
    precision: Optional[int] = None

    def forward(self, x) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def extra_repr(self) -> str:
        return f"name={self.name!r}, precision={self.precision}"

    def _plot_input(self, xs: np.ndarray) -> np.ndarray:
        """The array fed to forward when plotting (elementwise quantizers take the 1-D grid as it is)."""
        return xs

    def pseudo_gradient(self, x) -> Tuple[np.ndarray, np.ndarray]:
        """(forward(x), d sum(forward(x)) / dx) as arrays: the output and the pseudo-gradient at each point.

        Runs ``forward`` (not ``__call__``, so forward hooks and metrics do not see it) and leaves the
        gradients of the quantizer's own parameters as they were.
        """
        dtype = next((p.dtype for p in self.parameters()), np.dtype(np.float32))
        x = Tensor(np.asarray(x, dtype=dtype), requires_grad=True)
        saved = [(p, p.grad) for p in self.parameters()]
        with enable_grad():
            y = self.forward(x)
            if y.requires_grad:
                y.backward(np.ones(y.shape, dtype=y.dtype))
        for p, g in saved:
            p.grad = g
        return y.data, (x.grad if x.grad is not None else np.zeros(x.shape, dtype=x.dtype))

    def plot(self, ax=None, x_range: Tuple[float, float] = (-2.0, 2.0), num: int = 801):
        """Draw the forward function (left) and its pseudo-gradient (right), as in Darabi et al. 2018, Fig. 4.

        Args:
            ax: None (a new figure) or a pair of matplotlib axes (forward, pseudo-gradient).
            x_range: the interval of x to draw.
            num: the number of points.

        Returns:
            The pair of axes.
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(8, 3))
        if len(ax) != 2:
            raise ValueError(f"{type(self).__name__}.plot: ax must be a pair of axes, got {len(ax)}")
        xs = np.linspace(float(x_range[0]), float(x_range[1]), int(num))
        out, grad = self.pseudo_gradient(self._plot_input(xs))
        ax[0].plot(xs, out.reshape(num, -1))
        ax[0].set_title(f"{self.name}: forward")
        ax[1].plot(xs, grad.reshape(num, -1))
        ax[1].set_title(f"{self.name}: pseudo-gradient")
        for a in ax:
            a.axhline(0, color="0.8", lw=0.5)
            a.axvline(0, color="0.8", lw=0.5)
            a.set_xlabel("x")
        return ax


class SteSign(Quantizer):
    """sign(x) with the clipped STE (Hubara et al. 2016); see :class:`SteSignFunction`."""

    name, precision = "ste_sign", 1

    def __init__(self, clip_value: Optional[float] = 1.0):
        super().__init__()
        self.clip_value = _check_clip("SteSign", clip_value)

    def forward(self, x):
        return ste_sign(x, self.clip_value)

    def extra_repr(self):
        return f"{super().extra_repr()}, clip_value={self.clip_value}"


class ApproxSign(Quantizer):
    """sign(x) with Bi-Real Net's pseudo-gradient 2 - 2|x| (Liu et al. 2018); see :class:`ApproxSignFunction`."""

    name, precision = "approx_sign", 1

    def forward(self, x):
        return approx_sign(x)


class TanhSign(Quantizer):
    """sign(x) with the pseudo-gradient 1 - tanh²(x); see :class:`TanhSignFunction`."""

    name, precision = "tanh_sign", 1

    def forward(self, x):
        return tanh_sign(x)


class SwishSign(Quantizer):
    """sign(x) with the SignSwish pseudo-gradient (Darabi et al. 2018, eq. 3), β fixed or trainable.

    Args:
        beta: β > 0 (BNN+ uses 5 and 10; with ``trainable`` it is the initial value).
        trainable: hold β as a scalar :class:`~minibnn.module.Parameter` ``beta`` ("SS_t" in Table 1), trained
            through dSS_β/dβ.
    """

    name, precision = "swish_sign", 1

    def __init__(self, beta: float = 5.0, trainable: bool = False):
        super().__init__()
        if not np.isscalar(beta) or not beta > 0:
            raise ValueError(f"SwishSign: beta must be a positive number, got {beta!r}")
        self.trainable = bool(trainable)
        self.beta = Parameter(np.array(beta, dtype=np.float32)) if trainable else float(beta)

    def forward(self, x):
        return swish_sign(x, self.beta)

    def extra_repr(self):
        beta = float(self.beta.item()) if self.trainable else self.beta
        return f"{super().extra_repr()}, beta={beta:g}, trainable={self.trainable}"


class SteHeaviside(Quantizer):
    """Step to {0, 1} with the clipped STE; see :class:`SteHeavisideFunction`."""

    name, precision = "ste_heaviside", 1

    def __init__(self, clip_value: Optional[float] = 1.0):
        super().__init__()
        self.clip_value = _check_clip("SteHeaviside", clip_value)

    def forward(self, x):
        return ste_heaviside(x, self.clip_value)

    def extra_repr(self):
        return f"{super().extra_repr()}, clip_value={self.clip_value}"


class MagnitudeAwareSign(Quantizer):
    """mean|w_c|·sign(w) per output filter (Bi-Real Net weights); see :func:`magnitude_aware_sign`."""

    name, precision = "magnitude_aware_sign", 1

    def __init__(self, clip_value: Optional[float] = 1.0):
        super().__init__()
        self.clip_value = _check_clip("MagnitudeAwareSign", clip_value)

    def forward(self, x):
        return magnitude_aware_sign(x, self.clip_value)

    def extra_repr(self):
        return f"{super().extra_repr()}, clip_value={self.clip_value}"


class SteTern(Quantizer):
    """Ternarization to {-1, 0, +1} with the clipped STE; see :func:`ste_tern`."""

    name, precision = "ste_tern", 2

    def __init__(self, threshold_value: float = 0.05, ternary_weight_networks: bool = False,
                 clip_value: Optional[float] = 1.0):
        super().__init__()
        if not threshold_value >= 0:
            raise ValueError(f"SteTern: threshold_value must be >= 0, got {threshold_value!r}")
        self.threshold_value = float(threshold_value)
        self.ternary_weight_networks = bool(ternary_weight_networks)
        self.clip_value = _check_clip("SteTern", clip_value)

    def forward(self, x):
        return ste_tern(x, self.threshold_value, self.ternary_weight_networks, self.clip_value)

    def extra_repr(self):
        threshold = "0.7*mean|x|" if self.ternary_weight_networks else self.threshold_value
        return f"{super().extra_repr()}, threshold={threshold}, clip_value={self.clip_value}"


class DoReFa(Quantizer):
    """DoReFa-Net's k-bit quantizer for activations or weights (Zhou et al. 2016); see :func:`dorefa`."""

    name = "dorefa_quantizer"

    def __init__(self, k_bit: int = 2, mode: str = "activations"):
        super().__init__()
        dorefa(np.zeros(1, dtype=np.float32), k_bit, mode)  # validates the arguments with dorefa's messages
        self.precision, self.mode = int(k_bit), mode

    def forward(self, x):
        return dorefa(x, self.precision, self.mode)

    def extra_repr(self):
        return f"{super().extra_repr()}, mode={self.mode!r}"


class NoOp(Quantizer):
    """q(x) = x: changes nothing, only tags the tensor with a ``precision`` (for summaries and optimizers)."""

    name = "noop"

    def __init__(self, precision: Optional[int] = None):
        super().__init__()
        if precision is not None and (isinstance(precision, bool) or not isinstance(precision, (int, np.integer))
                                      or precision < 1):
            raise ValueError(f"NoOp: precision must be a positive integer or None, got {precision!r}")
        self.precision = None if precision is None else int(precision)

    def forward(self, x):
        return _as_tensor(x)


# ---- shifted thresholds (Kim et al. 2021) --------------------------------------------------------------------
def _channel_view(values: Tensor, x: Tensor, who: str) -> Tensor:
    """Reshape per-channel values (C,) to (1, C, 1, ...) so they broadcast over an input (N, C[, H, W])."""
    (c,) = values.shape
    if x.ndim < 2 or x.shape[1] != c:
        raise ValueError(f"{who} with {c} channels got input of shape {x.shape}; expected (N, {c}) or "
                         f"(N, {c}, H, W)")
    return values.reshape((1, c) + (1,) * (x.ndim - 2))


class ShiftedThreshold(Quantizer):
    """q(x - t): any quantizer moved to a fixed threshold t (Kim et al. 2021, Sec. 3.2).

    ``ShiftedThreshold("ste_sign", 1.2)`` gives -1 for x < 1.2 and +1 for x >= 1.2 (the tie goes up, as
    sign(0) = +1; Kim et al.'s eq. 1 puts it down, which only matters on a set of measure zero), with the
    pseudo-gradient of the inner quantizer evaluated at x - t. A positive shift makes -1 the majority output.

    Args:
        quantizer: what :func:`get` accepts (default ``"ste_sign"``).
        shift: t, a number, or one per channel (shape (C,), for inputs (N, C[, H, W])).
    """

    def __init__(self, quantizer="ste_sign", shift=0.0):
        super().__init__()
        self.quantizer = get(quantizer)
        if self.quantizer is None:
            raise ValueError("ShiftedThreshold: quantizer must not be None")
        shift = np.asarray(shift, dtype=np.float64)
        if shift.ndim > 1 or not np.all(np.isfinite(shift)):
            raise ValueError(f"ShiftedThreshold: shift must be a finite number or a 1-D array (one per channel), "
                             f"got {shift.tolist()}")
        self.shift = float(shift) if shift.ndim == 0 else shift
        self.precision = getattr(self.quantizer, "precision", None)
        self.name = f"shifted_{getattr(self.quantizer, 'name', 'quantizer')}"

    def forward(self, x):
        x = _as_tensor(x)
        if isinstance(self.shift, float):
            return self.quantizer(x - self.shift)
        shift = _channel_view(Tensor(self.shift.astype(x.dtype)), x, "ShiftedThreshold")
        return self.quantizer(x - shift)

    def extra_repr(self):
        shift = self.shift if isinstance(self.shift, float) else f"<{self.shift.size} channels>"
        return f"{super().extra_repr()}, shift={shift}"


class TrainableThreshold(Quantizer):
    """q(x - t_c) with one trainable threshold per channel: a :class:`~minibnn.module.Parameter` ``threshold`` (C,).

    For an input (N, C[, H, W]), dL/dt_c = -Σ_{n,h,w} dL/dq · q'(x - t_c), where q' is the inner quantizer's
    pseudo-gradient. It is BatchNorm's bias in disguise (Kim et al. 2021, eq. 1 and Sec. 3.4.1): after
    BN, sign(γ(x - μ)/σ + β - t) depends on β - t only, and the bias gets +Σ dL/dq·q' where the threshold gets
    -Σ of the same, so training both just doubles the learning rate of β - t. What a threshold adds is its
    starting point (``init``), which Kim et al. find training does not move far from.

    Args:
        num_channels: C.
        quantizer: the inner quantizer (what :func:`get` accepts, default ``"ste_sign"``).
        init: the initial threshold (a number, or an array of shape (C,)).
    """

    def __init__(self, num_channels: int, quantizer="ste_sign", init=0.0):
        super().__init__()
        if isinstance(num_channels, bool) or not isinstance(num_channels, (int, np.integer)) or num_channels < 1:
            raise ValueError(f"TrainableThreshold: num_channels must be a positive integer, got {num_channels!r}")
        self.quantizer = get(quantizer)
        if self.quantizer is None:
            raise ValueError("TrainableThreshold: quantizer must not be None")
        init = np.asarray(init, dtype=np.float32)
        if init.shape not in ((), (num_channels,)):
            raise ValueError(f"TrainableThreshold: init must be a number or have shape ({num_channels},), "
                             f"got shape {init.shape}")
        self.threshold = Parameter(np.broadcast_to(init, (num_channels,)).copy())
        self.precision = getattr(self.quantizer, "precision", None)
        self.name = f"trainable_threshold_{getattr(self.quantizer, 'name', 'quantizer')}"

    def forward(self, x):
        x = _as_tensor(x)
        return self.quantizer(x - _channel_view(self.threshold, x, "TrainableThreshold"))

    def _plot_input(self, xs):
        return np.repeat(xs[:, None], self.threshold.shape[0], axis=1)

    def extra_repr(self):
        return f"{super().extra_repr()}, num_channels={self.threshold.shape[0]}"


class ShiftedHardtanh(Quantizer):
    """The activation clip(x - x_offset, -scale, scale) + y_offset (Kim et al. 2021, Fig. 1); full precision.

    See :func:`shifted_hardtanh`. Defaults give the plain hardtanh.
    """

    name = "hard_tanh"

    def __init__(self, x_offset: float = 0.0, y_offset: float = 0.0, scale: float = 1.0):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"ShiftedHardtanh: scale must be > 0, got {scale!r}")
        self.x_offset, self.y_offset, self.scale = float(x_offset), float(y_offset), float(scale)

    def forward(self, x):
        return shifted_hardtanh(x, self.x_offset, self.y_offset, self.scale)

    def extra_repr(self):
        return f"x_offset={self.x_offset:g}, y_offset={self.y_offset:g}, scale={self.scale:g}"


# --------------------------------------------------------------------------------------------------------------
# Registry: string names -> quantizer modules
# --------------------------------------------------------------------------------------------------------------
_REGISTRY = Registry("quantizer", base=Quantizer)
register = _REGISTRY.register
names = _REGISTRY.names


def get(identifier, **kwargs):
    """Turn a quantizer identifier into a quantizer.

    Args:
        identifier: a registered name (a *new* module each call, its ``name`` set to the identifier), a
            Quantizer class (instantiated), a callable (a Quantizer or a function of a tensor; returned as it
            is), or None (returned as None).
        **kwargs: passed to the constructor (only with a name or a class), e.g. ``get("ste_sign", clip_value=2)``.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
        TypeError: for anything else.

    Example:
        >>> get("ss_10")
        SwishSign(name='ss_10', precision=1, beta=10, trainable=False)
    """
    quantizer = _REGISTRY.resolve(identifier, **kwargs)
    if isinstance(identifier, str):
        quantizer.name = identifier
    return quantizer


_partial = functools.partial
register("ste_sign", "SteSign", "htanh")(SteSign)
register("approx_sign", "ApproxSign", "bireal")(ApproxSign)
register("tanh_sign", "TanhSign", "tanh")(TanhSign)
register("swish_sign", "SwishSign", "ss_5")(_partial(SwishSign, beta=5.0))
register("ss_10")(_partial(SwishSign, beta=10.0))
register("ss_t")(_partial(SwishSign, beta=5.0, trainable=True))
register("ste_heaviside", "SteHeaviside")(SteHeaviside)
register("magnitude_aware_sign", "MagnitudeAwareSign")(MagnitudeAwareSign)
register("ste_tern", "SteTern")(SteTern)
register("dorefa_quantizer", "dorefa", "DoReFa", "DoReFaQuantizer")(DoReFa)
register("noop", "no_op", "NoOp", "NoOpQuantizer")(NoOp)
register("hard_tanh", "shifted_hardtanh", "ShiftedHardtanh")(ShiftedHardtanh)


def plot_quantizers(quantizers: Sequence = ("htanh", "tanh", "bireal", "ss_5", "ss_10"),
                    x_range: Tuple[float, float] = (-2.0, 2.0)):
    """One row per quantizer: forward (left) and pseudo-gradient (right), like Darabi et al. 2018, Fig. 4.

    Args:
        quantizers: names or quantizer objects (anything :func:`get` accepts except None).
        x_range: the interval of x to draw.

    Returns:
        The matplotlib figure.
    """
    plt = _pyplot()
    qs = [get(q) for q in quantizers]
    bad = [q for q in qs if not isinstance(q, Quantizer)]
    if not qs or bad:
        raise ValueError(f"plot_quantizers: needs at least one quantizer name or Quantizer, got {list(quantizers)}")
    fig, axes = plt.subplots(len(qs), 2, figsize=(8, 2.6 * len(qs)), squeeze=False)
    for q, row in zip(qs, axes):
        q.plot(ax=row, x_range=x_range)
    fig.tight_layout()
    return fig
