"""Weight scales: one positive number α_c per output filter c that multiplies the binary weights sign(W_c).

Two ways to get α (weight (out, in) for Linear, (out, in, kh, kw) for Conv; a filter is W[c], all axes but 0):

* XNOR-Net (Rastegari et al. 2016): α_c = mean|W_c|, recomputed from the latent weights at every forward.
  It is the least-squares optimum of ||W_c - α·sign(W_c)||², and :func:`xnor_scale` is differentiable, so the
  gradient also flows through |W| (d α_c / d W_ci = sign(W_ci) / n_c), as in XNOR-Net's weight gradient.
* BNN+ (Darabi et al. 2018, Sec. 3.3): α_c is a trainable :class:`~minibnn.module.Parameter`, shared between
  the layer's forward pass and the regularizer R (see :mod:`minibnn.regularizers`), initialised once, after the
  weights, to the minimiser of that regularizer over α:

      R1 (eq. 7):  argmin_α Σ_i |α - |W_ci||   = median_i |W_ci|   (eq. 8)
      R2:          argmin_α Σ_i (α - |W_ci|)²  = mean_i |W_ci|     (eq. 9; set d/dα = 2Σ(α - |W_ci|) = 0)

  The median minimises a sum of absolute deviations because the slope of Σ|α - a_i| is
  #{a_i < α} - #{a_i > α}, which changes sign at the middle value (for an even count, every α between the two
  middle values is a minimiser; NumPy's median, their midpoint, is one of them).

Attribute convention for layers (what :mod:`minibnn.regularizers` finds): a layer with a BNN+ scale holds its
latent weight as the Parameter ``weight`` (out, ...) and the scale as the Parameter ``alpha`` of shape (out,),
created with ``self.alpha = init_alpha(self.weight, "median")``, and computes its effective weight as
``scale_filters(self.kernel_quantizer(self.weight), self.alpha)`` (or scales its output channels by α, which
is the same for a linear layer or convolution).

Example:
    >>> import numpy as np
    >>> from minibnn import Tensor
    >>> w = Tensor(np.array([[0.5, -1.0, 2.0], [0.1, 0.2, -0.3]], dtype=np.float32))
    >>> init_alpha(w, "median").data
    array([1. , 0.2], dtype=float32)
    >>> xnor_scale(w).data.ravel()
    array([1.1666666, 0.2      ], dtype=float32)
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .module import Parameter
from .tensor import Tensor

__all__ = ["filter_axes", "mean_abs", "median_abs", "xnor_scale", "init_alpha", "filter_view", "scale_filters"]

_METHODS = {"median": "median", "r1": "median", "manhattan": "median",
            "mean": "mean", "r2": "mean", "euclidean": "mean"}


def filter_axes(ndim: int) -> Tuple[int, ...]:
    """The axes that make up one filter of a weight with ``ndim`` axes: all but the output-channel axis 0."""
    return tuple(range(1, ndim))


def _weight_array(weight, who: str) -> np.ndarray:
    w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if w.ndim < 2 or w.shape[0] == 0 or w.size == 0:
        raise ValueError(f"{who}: expected a weight of shape (out, in) or (out, in, kh, kw) with no empty axis, "
                         f"got shape {w.shape}")
    return w


def mean_abs(weight) -> np.ndarray:
    """mean|W_c| per output filter, shape (out,): XNOR-Net's scale and the R2 minimiser (Darabi et al., eq. 9)."""
    w = _weight_array(weight, "mean_abs")
    return np.mean(np.abs(w), axis=filter_axes(w.ndim))


def median_abs(weight) -> np.ndarray:
    """median|W_c| per output filter, shape (out,): the R1 minimiser (Darabi et al. 2018, eq. 8)."""
    w = _weight_array(weight, "median_abs")
    return np.median(np.abs(w).reshape(w.shape[0], -1), axis=1)


def xnor_scale(weight: Tensor) -> Tensor:
    """α_c = mean|W_c| as a tensor of shape (out, 1, ..., 1), differentiable through |W| (Rastegari et al. 2016).

    Multiply it into the binary weights: ``sign(W) * xnor_scale(W)``. Its gradient is sign(W_ci)/n_c per entry
    (0 at W_ci = 0, as |·| has slope 0 there in minibnn).
    """
    if not isinstance(weight, Tensor):
        weight = Tensor(weight)
    _weight_array(weight, "xnor_scale")
    return weight.abs().mean(axis=filter_axes(weight.ndim), keepdims=True)


def init_alpha(weight, method: str = "median") -> Parameter:
    """BNN+'s trainable per-filter scale α (shape (out,)), initialised from the current weights.

    Args:
        weight: the latent weight (out, in[, kh, kw]), already initialised.
        method: ``"median"`` (alias ``"r1"``, ``"manhattan"``) minimises R1 = Σ|α - |w||;
            ``"mean"`` (alias ``"r2"``, ``"euclidean"``) minimises R2 = Σ(α - |w|)² (Darabi et al. 2018, eqs. 7-9).

    Returns:
        A Parameter in the weight's dtype.
    """
    if method not in _METHODS:
        raise ValueError(f"init_alpha: method must be one of {sorted(_METHODS)}, got {method!r}")
    values = median_abs(weight) if _METHODS[method] == "median" else mean_abs(weight)
    dtype = weight.dtype if isinstance(weight, Tensor) else np.float32
    return Parameter(values.astype(dtype))


def filter_view(alpha: Tensor, ndim: int) -> Tensor:
    """Reshape per-filter values (out,) to (out, 1, ..., 1) so they broadcast over a weight with ``ndim`` axes."""
    if alpha.ndim != 1:
        raise ValueError(f"filter_view: alpha must have shape (out,), got {alpha.shape}")
    return alpha.reshape((alpha.shape[0],) + (1,) * (ndim - 1))


def scale_filters(weight: Tensor, alpha: Tensor) -> Tensor:
    """α_c · W_c for every output filter c: ``weight`` (out, ...) times ``alpha`` (out,), differentiable in both."""
    if alpha.shape != (weight.shape[0],):
        raise ValueError(f"scale_filters: alpha must have shape ({weight.shape[0]},) to match a weight of shape "
                         f"{weight.shape}, got {alpha.shape}")
    return weight * filter_view(alpha, weight.ndim)
