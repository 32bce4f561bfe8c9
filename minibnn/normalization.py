"""BatchNorm and the pieces of it that Sari et al. 2019 ablate in binary networks (Table 2).

A sign activation ignores the scale of its input, so in the forward pass BatchNorm followed by sign is just
a threshold (Sari et al. 2019, eq. 2). Its scale matters in the *backward* pass: dividing the binary dot
product s (a sum of K_{l-1} terms ±1, variance ≈ K_{l-1}) by its standard deviation keeps the gradients from
exploding (Theorem 1). So the scale need not be estimated from the batch; a fixed constant does the job.
The variants, all per channel c (axis 1) over the other axes, with learnable γ, β when ``affine``:

    ============  ====================================  =========================================================
    kind          output                                 what it keeps of BatchNorm
    ============  ====================================  =========================================================
    "batchnorm"   γ·(x - μ_B)/sqrt(σ²_B + eps) + β      everything (layers.BatchNorm1d / BatchNorm2d)
    "centred"     γ·(x - μ_B) + β                        the mean subtraction only ("Centred Only")
    "fixed"       γ·(x - μ_B)/sqrt(c·K_{l-1}) + β        σ²_B replaced by c·K_{l-1} ("Fixed"; c = 2, 3 also tried)
    "glorot"      γ·(x - μ_B)/sqrt(K_{l+1}) + β          divided by sqrt(K_{l+1}), to simulate Glorot ("Glorot")
    "none"        x                                      nothing ("No BatchNorm": an Identity)
    ============  ====================================  =========================================================

K_{l-1} is the fan-in of the layer before the norm (the number of terms of its dot product: in_features, or
in_channels·kh·kw for a convolution) and K_{l+1} the fan-out of the layer after it (out_features, or
out_channels·kh·kw: how many units each of this layer's outputs feeds); :func:`fixed_variance` and
:func:`glorot_variance` compute them from the layers. Table 2 (binarized ResNet-56, CIFAR-10, best accuracy):
BatchNorm 88.8, Glorot 80.3, Fixed 79.6, Centred only 31.7, none 31.7.

Semantics are BatchNorm's: in training, μ_B is the batch mean and the running mean is updated
(running = (1 - momentum)·running + momentum·batch); in evaluation the running mean replaces μ_B. The running
variance is tracked too, though only "batchnorm" divides by it: it records the actual variance of s, to
compare with the constant the fixed variants use. Gradients (Sari et al. eq. 1 with σ constant):
dL/dx = γ/σ·(g - mean(g)) in training, γ/σ·g in evaluation.

Example:
    >>> import numpy as np
    >>> norm = make_norm("fixed", 2, variance=4.0, affine=False)
    >>> norm(np.array([[1.0, 10.0], [5.0, 30.0]])).data      # (x - batch mean) / sqrt(4)
    array([[-1., -5.],
           [ 1.,  5.]], dtype=float32)
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import _checks
from . import functional as F
from .init import fans
from .layers import BatchNorm1d, BatchNorm2d, Identity
from .module import Module, Parameter
from .tensor import Tensor, shape_of

__all__ = ["FixedScaleNorm", "CentredNorm", "make_norm", "norm_kinds", "fan_in", "fan_out", "fixed_variance",
           "glorot_variance"]

_KINDS = {
    "batchnorm": "batchnorm", "bn": "batchnorm", "standard": "batchnorm",
    "centred": "centred", "centered": "centred", "centred_only": "centred", "mean_only": "centred",
    "fixed": "fixed", "fixed_scale": "fixed",
    "glorot": "glorot",
    "none": "none", "identity": "none",
}


def norm_kinds() -> list:
    """The names :func:`make_norm` accepts (aliases included), sorted."""
    return sorted(_KINDS)


# --------------------------------------------------------------------------------------------------------------
# The constants of Sari et al.
# --------------------------------------------------------------------------------------------------------------
def _weight_shape(layer, who: str):
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, Tensor) or weight.ndim < 2:
        raise TypeError(f"{who}: expected a layer with a weight of shape (out, in) or (out, in, kh, kw), such as "
                        f"Linear or Conv2d, got {type(layer).__name__}")
    return weight.shape


def fan_in(layer) -> int:
    """K_{l-1}: the number of terms in each output's dot product (in_features, or in_channels·kh·kw)."""
    return fans(_weight_shape(layer, "fan_in"))[0]


def fan_out(layer) -> int:
    """The number of outputs each input feeds (out_features, or out_channels·kh·kw): K_{l+1} seen from the
    layer before."""
    return fans(_weight_shape(layer, "fan_out"))[1]


def fixed_variance(layer, multiplier: float = 1.0) -> float:
    """c·K_{l-1}: the variance of a binary dot product of ``layer`` (K_{l-1} = its fan-in terms of variance 1),
    the constant Sari et al. put in place of σ²_B after it ("Fixed"; c = ``multiplier``, 1, 2 or 3 in the paper).

    Example:
        >>> from minibnn.layers import Conv2d
        >>> fixed_variance(Conv2d(16, 32, 3), multiplier=2.0)      # 2 · 16·3·3
        288.0
    """
    multiplier = _checks.positive("fixed_variance", "multiplier", multiplier)
    return multiplier * fan_in(layer)


def glorot_variance(next_layer) -> float:
    """K_{l+1}, the fan-out of the layer *after* the norm: Sari et al.'s "Glorot" variant divides by its root.

    Example:
        >>> from minibnn.layers import Linear
        >>> glorot_variance(Linear(256, 100))
        100.0
    """
    return float(fan_out(next_layer))


# --------------------------------------------------------------------------------------------------------------
# The layers
# --------------------------------------------------------------------------------------------------------------
class FixedScaleNorm(Module):
    """Batch-centred and divided by a fixed constant:  y = γ·(x - μ_B)/sqrt(K) + β,  per channel (axis 1).

    Sari et al. 2019's ablation of BatchNorm: K = ``variance`` replaces the batch variance σ²_B (K = c·K_{l-1}
    for "Fixed", K_{l+1} for "Glorot", 1 for "Centred only"). See the module docstring.

    Args:
        num_features: C.
        variance: K > 0.
        momentum: weight of the new batch in the running statistics (default 0.1).
        affine: learnable γ (``weight``, init 1) and β (``bias``, init 0) (default True).
        dtype: float32 (default) or float64.

    Inputs (N, C), (N, C, L) or (N, C, H, W); output of the same shape. Buffers ``running_mean`` (init 0, used
    in evaluation) and ``running_var`` (init 1, recorded only).

    Example:
        >>> norm = FixedScaleNorm(1, variance=9.0)
        >>> norm(np.array([[0.0], [6.0]])).data
        array([[-1.],
               [ 1.]], dtype=float32)
        >>> norm.running_mean                     # 0.9·0 + 0.1·3
        array([0.3], dtype=float32)
    """

    def __init__(self, num_features: int, variance: float = 1.0, momentum: float = 0.1, affine: bool = True,
                 dtype=np.float32):
        super().__init__()
        who = type(self).__name__
        self.num_features = _checks.positive_int(who, "num_features", num_features)
        self.variance = _checks.positive(who, "variance", variance)
        self.momentum = _checks.fraction(who, "momentum", momentum, closed=True)
        dtype = _checks.float_dtype(who, "dtype", dtype)
        self.affine = bool(affine)
        self.weight = Parameter(np.ones(self.num_features, dtype=dtype)) if self.affine else None
        self.bias = Parameter(np.zeros(self.num_features, dtype=dtype)) if self.affine else None
        self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
        self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))

    def _signature(self) -> str:
        return f"{type(self).__name__}({self.num_features})"

    def reset_running_stats(self) -> None:
        """Running mean back to 0 and running variance back to 1."""
        self.running_mean[...] = 0
        self.running_var[...] = 1

    def forward(self, x) -> Tensor:
        shape = shape_of(x)
        if len(shape) < 2 or shape[1] != self.num_features:
            raise ValueError(f"{self._signature()} got input of shape {shape}; expected (N, {self.num_features}), "
                             f"(N, {self.num_features}, L) or (N, {self.num_features}, H, W)")
        dtype = self.running_mean.dtype
        if not isinstance(x, Tensor):  # NumPy inputs take the layer's dtype
            x = Tensor(np.asarray(x), dtype=dtype)
        elif x.dtype != dtype:
            raise TypeError(f"{self._signature()} got a {x.dtype} input but its parameters are {dtype}; convert "
                            f"the input with x.astype(np.{dtype}) or the layer with .astype(np.{x.dtype})")
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=self.training,
                            momentum=self.momentum, fixed_var=self.variance)

    def extra_repr(self) -> str:
        return f"{self.num_features}, variance={self.variance:g}, momentum={self.momentum}, affine={self.affine}"


class CentredNorm(FixedScaleNorm):
    """Batch-centred only:  y = γ·(x - μ_B) + β  (Sari et al. 2019, "Centred Only"; a FixedScaleNorm with K = 1).

    Example:
        >>> CentredNorm(1, affine=False)(np.array([[1.0], [5.0]])).data
        array([[-2.],
               [ 2.]], dtype=float32)
    """

    def __init__(self, num_features: int, momentum: float = 0.1, affine: bool = True, dtype=np.float32):
        super().__init__(num_features, variance=1.0, momentum=momentum, affine=affine, dtype=dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, momentum={self.momentum}, affine={self.affine}"


def make_norm(kind: Optional[str], num_features: int, *, spatial: bool = False, variance: Optional[float] = None,
              prev_layer=None, next_layer=None, multiplier: float = 1.0, momentum: float = 0.1, eps: float = 1e-5,
              affine: bool = True, dtype=np.float32) -> Module:
    """Build one of the normalisations of Sari et al.'s ablation by name.

    Args:
        kind: ``"batchnorm"`` (aliases "bn", "standard"), ``"centred"`` ("centered", "centred_only",
            "mean_only"), ``"fixed"`` ("fixed_scale"), ``"glorot"``, or ``"none"`` ("identity"; None too).
        num_features: C, the channels (axis 1) of the input.
        spatial: for "batchnorm", BatchNorm2d for (N, C, H, W) inputs instead of BatchNorm1d; the other kinds
            take any (N, C, ...) input.
        variance: the constant K of "fixed" / "glorot", given directly; otherwise computed:
            "fixed": ``multiplier · fan_in(prev_layer)`` (c·K_{l-1});  "glorot": ``fan_out(next_layer)``
            (K_{l+1}).
        prev_layer, next_layer: the layers before and after the norm (only read to compute K).
        multiplier: c for "fixed" (default 1).
        momentum, eps, affine, dtype: as for BatchNorm (eps only matters for "batchnorm").

    Returns:
        A Module: BatchNorm1d / BatchNorm2d, CentredNorm, FixedScaleNorm or Identity.

    Example:
        >>> from minibnn.layers import Linear
        >>> make_norm("fixed", 64, prev_layer=Linear(100, 64), multiplier=2.0)
        FixedScaleNorm(64, variance=200, momentum=0.1, affine=True)
        >>> make_norm("none", 64)
        Identity()
    """
    key = "none" if kind is None else kind
    if not isinstance(key, str) or key not in _KINDS:
        raise ValueError(f"make_norm: kind must be one of {', '.join(norm_kinds())} (or None), got {kind!r}")
    key = _KINDS[key]
    if key == "batchnorm":
        cls = BatchNorm2d if spatial else BatchNorm1d
        return cls(num_features, eps=eps, momentum=momentum, affine=affine, dtype=dtype)
    if key == "none":
        return Identity()
    if key == "centred":
        return CentredNorm(num_features, momentum=momentum, affine=affine, dtype=dtype)
    if variance is None:
        if key == "fixed":
            if prev_layer is None:
                raise ValueError("make_norm('fixed'): give variance=, or prev_layer= (the layer before the norm, "
                                 "whose fan-in K_{l-1} sets the variance c·K_{l-1})")
            variance = fixed_variance(prev_layer, multiplier)
        else:
            if next_layer is None:
                raise ValueError("make_norm('glorot'): give variance=, or next_layer= (the layer after the norm, "
                                 "whose fan-out K_{l+1} is the variance)")
            variance = glorot_variance(next_layer)
    return FixedScaleNorm(num_features, variance=variance, momentum=momentum, affine=affine, dtype=dtype)
