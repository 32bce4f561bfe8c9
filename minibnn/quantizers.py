"""Quantizers: a discrete forward pass (sign, step, ternary, k-bit) and a pseudo-gradient for the backward pass.

sign(x) has derivative 0 almost everywhere, so a binary network cannot learn through it. A quantizer keeps the
discrete forward and replaces the derivative by a *pseudo-gradient*: the derivative of a smooth function that
looks like the step (Hubara et al. 2016; Darabi et al. 2018, Fig. 4). Each comes in two forms, as in Larq:

* a function on tensors (``ste_sign(x, clip_value=1.0)``...) with its op, a :class:`~minibnn.tensor.Function`
  subclass named ``<Op>Fn`` (``SteSignFn``...) whose ``forward`` and ``backward`` sit side by side under the
  formula and the paper;
* a thin configured :class:`Quantizer` module (``SteSign``...) registered under Larq's string names where it is
  defined, so a layer can be built with ``kernel_quantizer="ste_sign"`` and look it up with :func:`get`.

Conventions (part of the specification, and tested):

* sign(0) = +1, so every binary quantizer gives its upper value on its threshold (ste_heaviside(0) = 1,
  sign(x - t) = +1 at x = t); the clipped STE's window is closed, 1 on |x| <= clip_value.
* sign(NaN) = +1, the one convention of the bit format (:mod:`minibnn.xnor.packing`: the bit is ``x < 0``, false for
  NaN, so NaN packs to bit 0, which means +1). The forward here is written the same way: 1 - 2·[x < 0].
* dtypes: a Tensor keeps its dtype; an array becomes a Tensor of its own float dtype (float64 stays float64);
  Python numbers and lists become float32 (the rule of :class:`~minibnn.tensor.Tensor`, in :func:`_as_tensor`).

The quantizer protocol (what a quantized layer may rely on): ``get(identifier)`` turns a name (a fresh module),
a callable (itself) or ``None`` (None) into a quantizer; a registered quantizer is a :class:`Quantizer`, a
:class:`~minibnn.module.Module` with ``forward(x) -> Tensor`` of the same shape, ``precision`` (bits of the
output, None for full precision) and ``name``; trainable ones (``ss_t``'s β, :class:`TrainableThreshold`) hold
Parameters, found through the layer's ``parameters()``. Weights are (out, in[, kh, kw]) with per-filter means
over all axes but 0; activations (N, C[, H, W]) with per-channel values on axis 1. ``pseudo_gradient(x)``
gives a quantizer's values and pseudo-gradient; :func:`minibnn.plotting.plot_quantizer` draws them.

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
from typing import Optional, Tuple, Union

import numpy as np

from . import _checks
from .functional import tanh
from .module import Module, Parameter
from .registry import Registry
from .tensor import Function, Tensor, enable_grad

__all__ = [
    "Quantizer", "get", "register", "names", "ste_sign", "approx_sign", "tanh_sign", "swish_sign", "sign_swish",
    "ste_heaviside", "magnitude_aware_sign", "ste_tern", "dorefa", "shifted_hardtanh", "SteSign", "ApproxSign",
    "TanhSign", "SwishSign", "SteHeaviside", "MagnitudeAwareSign", "SteTern", "DoReFa", "NoOp", "ShiftedThreshold",
    "TrainableThreshold", "ShiftedHardtanh", "SteSignFn", "ApproxSignFn", "TanhSignFn", "SwishSignFn",
    "SignSwishFn", "SteHeavisideFn", "SteTernFn", "RoundSteFn",
]


# ---- Helpers on NumPy arrays -------------------------------------------------------------------------------------
def _sign(x: np.ndarray) -> np.ndarray:
    """1 - 2·[x < 0] in x's dtype: sign with sign(0) = sign(-0.0) = +1 and sign(NaN) = +1 (as in packing)."""
    out = (x < 0).astype(x.dtype)
    out *= -2
    out += 1  # in place: 7x faster than np.where(x < 0, -1, 1), which broadcasts its scalars
    return out


def _clip_mask(x: np.ndarray, clip_value: Optional[float]) -> np.ndarray:
    """1 where |x| <= clip_value (edges included), else 0; all ones when clip_value is None."""
    if clip_value is None:
        return np.ones(x.shape, dtype=x.dtype)
    return (np.abs(x) <= clip_value).astype(x.dtype)


def _sign_swish_slope(z: np.ndarray) -> np.ndarray:
    """(2 - z·tanh(z/2)) / (1 + cosh z), the derivative of SS_β with respect to z = βx.

    Written as 2σ(z)(1-σ(z))·(2 - z·tanh(z/2)), which equals it because 1/(1 + cosh z) = 2σ(z)(1 - σ(z)), and
    which does not overflow where cosh would.
    """
    e = np.exp(-np.abs(z))
    return 2 * e / (1 + e) ** 2 * (2 - z * np.tanh(z / 2))


def _check_beta(who: str, beta: np.ndarray) -> None:  # β is an input of the op: checked where it is used
    if np.any(~(beta > 0)):
        raise ValueError(f"{who}: beta must be > 0, got {beta.tolist() if beta.ndim else beta.item()}")


def _clip_value(who: str, clip_value) -> Optional[float]:
    """The STE window: None (no clipping) or a number > 0."""
    if clip_value is None:
        return None
    if not np.isscalar(clip_value) or not clip_value > 0:
        raise ValueError(f"{who}: clip_value must be a positive number or None, got {clip_value!r}")
    return float(clip_value)


def _as_tensor(x) -> Tensor:
    """The one input rule of every quantizer: a Tensor as it is, anything else as ``Tensor(x)`` (arrays keep
    their float dtype, numbers and lists become float32)."""
    return x if isinstance(x, Tensor) else Tensor(x)


# ---- The module form and the registry ----------------------------------------------------------------------------
class Quantizer(Module):
    """Base class of the quantizer modules: ``forward(x) -> Tensor`` of the same shape, plus metadata.

    Attributes:
        name: the name it was registered or created under (``"ste_sign"``, ``"ss_t"``...).
        precision: bits per output value (1 for binary, 2 for ternary, k for k-bit, None for full precision);
            read by model summaries and by the binary-activation metrics.
    """

    name = "quantizer"
    precision: Optional[int] = None

    def extra_repr(self) -> str:  # forward(x) -> Tensor: each subclass defines it (Module raises otherwise)
        return f"name={self.name!r}, precision={self.precision}"

    def pseudo_gradient(self, x) -> Tuple[np.ndarray, np.ndarray]:
        """(forward(x), d sum(forward(x)) / dx) as arrays: the output and the pseudo-gradient at each point.

        Runs ``forward`` (not ``__call__``, so forward hooks and metrics do not see it) and leaves the
        gradients of the quantizer's own parameters as they were.

        Example:
            >>> out, slope = get("approx_sign").pseudo_gradient([-0.5, 0.0, 2.0])
            >>> out, slope
            (array([-1.,  1.,  1.], dtype=float32), array([1., 2., 0.], dtype=float32))
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


class _Clipped(Quantizer):
    """The quantizers whose only option is the STE window ``clip_value``."""

    def __init__(self, clip_value: Optional[float] = 1.0):
        super().__init__()
        self.clip_value = _clip_value(type(self).__name__, clip_value)

    def extra_repr(self):
        return f"{super().extra_repr()}, clip_value={self.clip_value}"


# ---- Binary quantizers: forward sign(x), backward a pseudo-gradient ----------------------------------------------
class SteSignFn(Function):
    """out = sign(x);  d/dx ≈ 1 on |x| <= clip_value, 0 outside (clip_value None: always 1).

    The clipped straight-through estimator of Hubara et al. 2016 (Darabi et al. 2018, eq. 1; Sari et al. 2019):
    the derivative of hardtanh(x) = clip(x, -1, 1), hence BNN+'s name "htanh" for it (Table 1).
    """

    def forward(self, x, clip_value=1.0):
        self.mask = _clip_mask(x, clip_value)
        return _sign(x)

    def backward(self, grad):
        return grad * self.mask


def ste_sign(x, clip_value: Optional[float] = 1.0) -> Tensor:
    """sign(x) with the clipped straight-through estimator: pseudo-gradient 1 on |x| <= clip_value.

    Args:
        x: tensor (or array) of any shape.
        clip_value: half-width of the window where the gradient passes; ``None`` passes it everywhere.

    Example:
        >>> ste_sign(Tensor([-0.3, 0.0, 2.0, float("nan")])).data
        array([-1.,  1.,  1.,  1.], dtype=float32)
    """
    return SteSignFn.apply(_as_tensor(x), clip_value=_clip_value("ste_sign", clip_value))


@register("ste_sign", "SteSign", "htanh")
class SteSign(_Clipped):
    """sign(x) with the clipped STE (Hubara et al. 2016); see :class:`SteSignFn`."""

    name, precision = "ste_sign", 1

    def forward(self, x):
        return ste_sign(x, self.clip_value)


class ApproxSignFn(Function):
    """out = sign(x);  d/dx ≈ 2 - 2|x| on |x| <= 1, 0 outside.

    Bi-Real Net's ApproxSign (Liu et al. 2018): the derivative of the piecewise quadratic
    F(x) = 2x + x·|x| on |x| <= 1, ±1 outside, a closer fit to sign than hardtanh. BNN+ calls it "bireal".
    """

    def forward(self, x):
        self.slope = np.where(np.abs(x) <= 1, 2 - 2 * np.abs(x), 0).astype(x.dtype)
        return _sign(x)

    def backward(self, grad):
        return grad * self.slope


def approx_sign(x) -> Tensor:
    """sign(x) with Bi-Real Net's pseudo-gradient 2 - 2|x| on |x| <= 1 (Liu et al. 2018)."""
    return ApproxSignFn.apply(_as_tensor(x))


@register("approx_sign", "ApproxSign", "bireal")
class ApproxSign(Quantizer):
    """sign(x) with Bi-Real Net's pseudo-gradient 2 - 2|x| (Liu et al. 2018); see :class:`ApproxSignFn`."""

    name, precision = "approx_sign", 1

    def forward(self, x):
        return approx_sign(x)


class TanhSignFn(Function):
    """out = sign(x);  d/dx ≈ 1 - tanh²(x), the derivative of tanh ("tanh" in Darabi et al. 2018, Table 1)."""

    def forward(self, x):
        self.slope = 1 - np.tanh(x) ** 2
        return _sign(x)

    def backward(self, grad):
        return grad * self.slope


def tanh_sign(x) -> Tensor:
    """sign(x) with the pseudo-gradient 1 - tanh²(x)."""
    return TanhSignFn.apply(_as_tensor(x))


@register("tanh_sign", "TanhSign", "tanh")
class TanhSign(Quantizer):
    """sign(x) with the pseudo-gradient 1 - tanh²(x); see :class:`TanhSignFn`."""

    name, precision = "tanh_sign", 1

    def forward(self, x):
        return tanh_sign(x)


# ---- SignSwish (Darabi et al. 2018) ---------------------------------------------------------------------------
class SignSwishFn(Function):
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
        e = np.exp(-np.abs(z))  # σ(z) without overflow for large |z|
        s = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        self.slope = _sign_swish_slope(z)
        return 2 * s * (1 + z * (1 - s)) - 1

    def backward(self, grad):
        dx = grad * self.beta * self.slope
        dbeta = grad * self.x * self.slope if self.needs_input_grad[1] else None
        return dx, dbeta


class SwishSignFn(SignSwishFn):
    """out = sign(x);  d/dx ≈ dSS_β/dx = β(2 - βx·tanh(βx/2)) / (1 + cosh βx),  d/dβ ≈ dSS_β/dβ.

    BNN+'s SignSwish pseudo-gradient (Darabi et al. 2018, eq. 3): the backward pass of the smooth
    :class:`SignSwishFn` (inherited), whose forward is replaced by sign. β is an input, so it can be a trainable
    Parameter ("SS_t"); its pseudo-gradient is dSS_β/dβ = x(2 - βx·tanh(βx/2)) / (1 + cosh βx) (z = βx, so
    d/dβ = x·d/dz where d/dx = β·d/dz). The slope is zero at βx ≈ ±2.3994 and negative beyond.
    """

    def forward(self, x, beta):
        _check_beta("swish_sign", beta)
        self.x, self.beta = x, beta
        self.slope = _sign_swish_slope(beta * x)  # dSS/dz
        return _sign(x)


def sign_swish(x, beta: Union[float, Tensor] = 5.0) -> Tensor:
    """The smooth SignSwish SS_β(x) = 2σ(βx)(1 + βx(1 - σ(βx))) - 1 (Darabi et al. 2018, eq. 2), differentiable.

    It tends to sign(x) as β grows; :func:`swish_sign` uses its derivative as the pseudo-gradient of sign.

    Example:
        >>> sign_swish(Tensor([-10.0, 0.0, 10.0]), beta=5.0).data
        array([-1.,  0.,  1.], dtype=float32)
    """
    return SignSwishFn.apply(_as_tensor(x), beta)


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
    return SwishSignFn.apply(_as_tensor(x), beta)


@register("swish_sign", "SwishSign", "ss_5")
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


register("ss_10")(functools.partial(SwishSign, beta=10.0))
register("ss_t")(functools.partial(SwishSign, beta=5.0, trainable=True))


# ---- the {0, 1} step and the scaled sign -----------------------------------------------------------------------
class SteHeavisideFn(Function):
    """out = H(x) = 1 if x >= 0 else 0  (= (sign(x) + 1)/2);  d/dx ≈ 1 on |x| <= clip_value, else 0.

    The {0, 1} form of ste_sign. Note H(0) = 1 here, consistent with sign(0) = +1 (Larq gives 0 at exactly 0),
    and H(NaN) = 1, as sign(NaN) = +1.
    """

    def forward(self, x, clip_value=1.0):
        self.mask = _clip_mask(x, clip_value)
        return (~(x < 0)).astype(x.dtype)

    def backward(self, grad):
        return grad * self.mask


def ste_heaviside(x, clip_value: Optional[float] = 1.0) -> Tensor:
    """Step to {0, 1} (1 for x >= 0) with the clipped straight-through estimator.

    Example:
        >>> ste_heaviside(Tensor([-0.5, 0.0, 0.5])).data
        array([0., 1., 1.], dtype=float32)
    """
    return SteHeavisideFn.apply(_as_tensor(x), clip_value=_clip_value("ste_heaviside", clip_value))


@register("ste_heaviside", "SteHeaviside")
class SteHeaviside(_Clipped):
    """Step to {0, 1} with the clipped STE; see :class:`SteHeavisideFn`."""

    name, precision = "ste_heaviside", 1

    def forward(self, x):
        return ste_heaviside(x, self.clip_value)


def magnitude_aware_sign(x, clip_value: Optional[float] = 1.0) -> Tensor:
    """mean|w_c| · sign(w) per output filter c (Bi-Real Net, Liu et al. 2018, Sec. 3.3), clipped STE.

    The scale is recomputed from the weights on each call and, as in Larq, treated as a constant in backward:
    d/dw ≈ mean|w_c| · 1{|w| <= clip_value}. For a weight (out, in[, kh, kw]) the mean runs over all axes but
    axis 0 (the axes of one filter); a 1-D tensor is taken as one filter.

    Example:
        >>> magnitude_aware_sign(Tensor([[1.0, -3.0], [0.5, 0.5]])).data
        array([[ 2. , -2. ],
               [ 0.5,  0.5]], dtype=float32)
    """
    x = _as_tensor(x)
    filter_axes = tuple(range(1, x.ndim)) if x.ndim >= 2 else tuple(range(x.ndim))
    scale = np.mean(np.abs(x.data), axis=filter_axes, keepdims=True) if x.size else np.zeros(x.shape)
    return ste_sign(x, clip_value) * Tensor(np.asarray(scale, dtype=x.dtype))


@register("magnitude_aware_sign", "MagnitudeAwareSign")
class MagnitudeAwareSign(_Clipped):
    """mean|w_c|·sign(w) per output filter (Bi-Real Net weights); see :func:`magnitude_aware_sign`."""

    name, precision = "magnitude_aware_sign", 1

    def forward(self, x):
        return magnitude_aware_sign(x, self.clip_value)


# ---- Ternary and k-bit quantizers --------------------------------------------------------------------------------
class SteTernFn(Function):
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


def ste_tern(x, threshold_value: float = 0.05, ternary_weight_networks: bool = False,
             clip_value: Optional[float] = 1.0) -> Tensor:
    """Ternarize to {-1, 0, +1}: 0 where |x| < Δ, sign(x) elsewhere; clipped straight-through estimator.

    Args:
        threshold_value: Δ when ``ternary_weight_networks`` is False.
        ternary_weight_networks: use Δ = 0.7·mean|x| (Li et al. 2016) instead.
        clip_value: the STE window, as in :func:`ste_sign`.

    Example:
        >>> ste_tern(Tensor([-0.5, 0.01, 0.3]), threshold_value=0.1).data
        array([-1.,  0.,  1.], dtype=float32)
    """
    if not ternary_weight_networks:
        _checks.real("ste_tern", "threshold_value", threshold_value, minimum=0.0)
    return SteTernFn.apply(_as_tensor(x), threshold_value=threshold_value,
                           ternary_weight_networks=bool(ternary_weight_networks),
                           clip_value=_clip_value("ste_tern", clip_value))


@register("ste_tern", "SteTern")
class SteTern(Quantizer):
    """Ternarization to {-1, 0, +1} with the clipped STE; see :func:`ste_tern`."""

    name, precision = "ste_tern", 2

    def __init__(self, threshold_value: float = 0.05, ternary_weight_networks: bool = False,
                 clip_value: Optional[float] = 1.0):
        super().__init__()
        self.threshold_value = _checks.real("SteTern", "threshold_value", threshold_value, minimum=0.0)
        self.ternary_weight_networks = bool(ternary_weight_networks)
        self.clip_value = _clip_value("SteTern", clip_value)

    def forward(self, x):
        return ste_tern(x, self.threshold_value, self.ternary_weight_networks, self.clip_value)

    def extra_repr(self):
        threshold = "0.7*mean|x|" if self.ternary_weight_networks else self.threshold_value
        return f"{super().extra_repr()}, threshold={threshold}, clip_value={self.clip_value}"


class RoundSteFn(Function):
    """out = round(x·n) / n (ties to even, as NumPy);  d/dx ≈ 1 (the identity STE of DoReFa, Zhou et al. 2016)."""

    def forward(self, x, levels=1):
        return (np.round(x * levels) / levels).astype(x.dtype)

    def backward(self, grad):
        return grad


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
    levels = 2 ** _checks.positive_int("dorefa", "k_bit", k_bit) - 1
    _checks.choice("dorefa", "mode", mode, ("activations", "weights"))
    x = _as_tensor(x)
    if mode == "activations":
        return RoundSteFn.apply(x.clip(0.0, 1.0), levels=levels)
    t = tanh(x)
    peak = t.abs().max() if x.size else None
    if peak is None or peak.item() == 0:  # all-zero weights: nothing to normalise by
        normalised = t * 0.5 + 0.5
    else:
        normalised = t / (peak * 2.0) + 0.5
    return RoundSteFn.apply(normalised, levels=levels) * 2.0 - 1.0


@register("dorefa_quantizer", "dorefa", "DoReFa", "DoReFaQuantizer")
class DoReFa(Quantizer):
    """DoReFa-Net's k-bit quantizer for activations or weights (Zhou et al. 2016); see :func:`dorefa`."""

    name = "dorefa_quantizer"

    def __init__(self, k_bit: int = 2, mode: str = "activations"):
        super().__init__()
        self.precision = _checks.positive_int("DoReFa", "k_bit", k_bit)
        self.mode = _checks.choice("DoReFa", "mode", mode, ("activations", "weights"))

    def forward(self, x):
        return dorefa(x, self.precision, self.mode)

    def extra_repr(self):
        return f"{super().extra_repr()}, mode={self.mode!r}"


@register("noop", "no_op", "NoOp", "NoOpQuantizer")
class NoOp(Quantizer):
    """q(x) = x: changes nothing, only tags the tensor with a ``precision`` (for summaries and optimizers)."""

    name = "noop"

    def __init__(self, precision: Optional[int] = None):
        super().__init__()
        self.precision = None if precision is None else _checks.positive_int("NoOp", "precision", precision)

    def forward(self, x):
        return _as_tensor(x)


# ---- Shifted thresholds and the shifted hardtanh (Kim et al. 2021) -----------------------------------------------
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

    Example:
        >>> ShiftedThreshold("ste_sign", 1.2)(Tensor([1.0, 1.2, 2.0])).data
        array([-1.,  1.,  1.], dtype=float32)
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
        num_channels = _checks.positive_int("TrainableThreshold", "num_channels", num_channels)
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

    def extra_repr(self):
        return f"{super().extra_repr()}, num_channels={self.threshold.shape[0]}"


def shifted_hardtanh(x, x_offset: float = 0.0, y_offset: float = 0.0, scale: float = 1.0) -> Tensor:
    """hardtanh moved along x, along y, or widened: clip(x - x_offset, -scale, scale) + y_offset.

    Kim et al. 2021, Fig. 1: (b) ``x_offset``, (c) ``y_offset``, (d) ``scale`` (the range [-scale, scale], slope
    1). With x_offset = y_offset = scale = 3 it is ReLU6 = clip(x, 0, 6). Differentiable: slope 1 inside the
    ramp (edges included, as in :func:`minibnn.clip`), 0 outside.

    Example:
        >>> shifted_hardtanh(Tensor([-1.0, 2.0, 9.0]), 3.0, 3.0, 3.0).data      # ReLU6
        array([0., 2., 6.], dtype=float32)
    """
    scale = _checks.positive("shifted_hardtanh", "scale", scale)
    return (_as_tensor(x) - x_offset).clip(-scale, scale) + y_offset


@register("hard_tanh", "shifted_hardtanh", "ShiftedHardtanh")
class ShiftedHardtanh(Quantizer):
    """The activation clip(x - x_offset, -scale, scale) + y_offset (Kim et al. 2021, Fig. 1); full precision.

    See :func:`shifted_hardtanh`. Defaults give the plain hardtanh.
    """

    name = "hard_tanh"

    def __init__(self, x_offset: float = 0.0, y_offset: float = 0.0, scale: float = 1.0):
        super().__init__()
        self.x_offset, self.y_offset = float(x_offset), float(y_offset)
        self.scale = _checks.positive("ShiftedHardtanh", "scale", scale)

    def forward(self, x):
        return shifted_hardtanh(x, self.x_offset, self.y_offset, self.scale)

    def extra_repr(self):
        return f"x_offset={self.x_offset:g}, y_offset={self.y_offset:g}, scale={self.scale:g}"
