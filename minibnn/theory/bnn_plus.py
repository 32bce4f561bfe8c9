"""Darabi, Belbahri, Courbariaux & Partovi Nia 2018, "BNN+": SignSwish and the scale regularizers in closed form.

SignSwish SS_β (eq. 2) and its derivative (eq. 3); the regularizers R1 = |α - |w|| and R2 = (α - |w|)² (eqs. 4-5)
and the scale α that minimises them (the median and the mean of |W|, eqs. 7-9).

signswish / signswish_grad and regularizer / optimal_scale restate in closed form, in float64 NumPy, what the
library computes with Tensors (quantizers.sign_swish and its backward, regularizers.r1 / r2,
scales.init_alpha). They are written again on purpose: they are the paper's formulas that the library, the
tutorials and the graded assignments are checked against, so they must not call the code under test.

Example:
    >>> float(signswish(0.0))
    0.0
    >>> float(optimal_scale(np.array([0.1, -0.5, 0.9]), "r1"))
    0.5
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional, Tuple

import numpy as np
from scipy import optimize, special

from .check import ArrayLike


#
# signswish / signswish_grad and regularizer / optimal_scale restate in closed form, in float64 NumPy, what
# the library computes with Tensors (quantizers.sign_swish and its backward, regularizers.r1 / r2,
# scales.init_alpha). They are written again on purpose: they are the paper's formulas that the library, the
# tutorials and the graded assignments are checked against, so they must not call the code under test.

def signswish(x: ArrayLike, beta: float = 5.0) -> np.ndarray:
    """SS_β(x) = 2σ(βx)·[1 + βx·(1 - σ(βx))] - 1, σ the logistic sigmoid (Darabi et al. 2018, eq. 2).

    Equivalently tanh(u/2) + (u/2)·(1 - tanh²(u/2)) with u = βx. It tends to ±1 but overshoots: its maximum,
    at the zero of its derivative, is u*/2 ≈ 1.19968 (see :func:`signswish_grad_zero`).

    Example:
        >>> signswish(np.array([-10.0, 0.0, 10.0]), beta=5.0).round(6)
        array([-1.,  0.,  1.])
    """
    u = float(beta) * np.asarray(x, dtype=np.float64)
    sig = special.expit(u)
    return 2.0 * sig * (1.0 + u * (1.0 - sig)) - 1.0


def signswish_grad(x: ArrayLike, beta: float = 5.0) -> np.ndarray:
    """dSS_β/dx = β·{2 - βx·tanh(βx/2)} / (1 + cosh(βx))  (Darabi et al. 2018, eq. 3; printed correctly).

    Derivation: with u = βx and σ = σ(u), dSS/du = 2σ(1-σ)·(2 + u(1 - 2σ)); use 1 - 2σ(u) = -tanh(u/2) and
    σ(1-σ) = 1/(2(1 + cosh u)). Computed as 2β·σ(u)σ(-u)·(2 - u tanh(u/2)), which does not overflow.

    Example:
        >>> float(signswish_grad(0.0, beta=5.0))
        5.0
    """
    b = float(beta)
    u = b * np.asarray(x, dtype=np.float64)
    return 2.0 * b * special.expit(u) * special.expit(-u) * (2.0 - u * np.tanh(u / 2.0))


@lru_cache(maxsize=None)
def _signswish_zero_u() -> float:
    return float(optimize.brentq(lambda u: u * math.tanh(u / 2.0) - 2.0, 1.0, 4.0, xtol=1e-15, rtol=1e-15))


def signswish_grad_zero(beta: float = 1.0) -> float:
    """The positive zero of dSS_β/dx: x* = u*/β with u*·tanh(u*/2) = 2, u* = 2.399357280515467...

    Darabi et al. 2018 (after eq. 3) say the derivative vanishes at x ≈ ±2.4/β; solved exactly (brentq), the
    constant is u* = 2.3993572805 (2.4 is right to 3e-4 relative). The zeros are exactly ±u*/β (the
    derivative is even in x and depends on x through u = βx only).

    Example:
        >>> round(signswish_grad_zero(1.0), 10)
        2.3993572805
    """
    beta = float(beta)
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    return _signswish_zero_u() / beta


def regularizer(alpha: ArrayLike, weights: np.ndarray, kind: str = "r1", channel_axis: Optional[int] = None
                ) -> np.ndarray:
    """R1 = Σ|α - |w||  or  R2 = Σ(α - |w|)², summed per channel (Darabi et al. 2018, eqs. 4-5, 7).

    Args:
        alpha: the scale, a scalar or one per channel.
        weights: the weight array.
        kind: 'r1' (Manhattan) or 'r2' (Euclidean).
        channel_axis: None for one α over all weights, else the axis holding the channels (C_out).

    Example:
        >>> float(regularizer(1.0, np.array([0.5, -2.0]), "r1")), float(regularizer(1.0, np.array([0.5, -2.0]), "r2"))
        (1.5, 1.25)
    """
    w = np.abs(np.asarray(weights, dtype=np.float64))
    if channel_axis is not None:
        w = np.moveaxis(w, channel_axis, 0).reshape(w.shape[channel_axis], -1)
        alpha = np.asarray(alpha, dtype=np.float64).reshape(-1, 1)
    diff = np.asarray(alpha, dtype=np.float64) - w
    if kind == "r1":
        return np.abs(diff).sum(axis=-1)
    if kind == "r2":
        return (diff * diff).sum(axis=-1)
    raise ValueError(f"kind must be 'r1' or 'r2', got {kind!r}")


def optimal_scale(weights: np.ndarray, kind: str = "r1", channel_axis: Optional[int] = None) -> np.ndarray:
    """α* = median(|W|) minimises R1 and α* = mean(|W|) minimises R2 (Darabi et al. 2018, eqs. 8-9).

    Derivation: R2(α) = Σ(α - |w|)² is a convex quadratic with R2'(α) = 2Σ(α - |w|) = 0 at the mean. R1 is
    convex piecewise linear with slope #{|w| < α} - #{|w| > α}, which changes sign at the median (for an
    even count every α between the two middle values is optimal; the median is one of them).

    Example:
        >>> w = np.array([[0.1, -0.4, 0.9], [-2.0, 1.0, 0.0]])
        >>> optimal_scale(w, "r1", channel_axis=0), optimal_scale(w, "r2", channel_axis=0)
        (array([0.4, 1. ]), array([0.46666667, 1.        ]))
    """
    w = np.abs(np.asarray(weights, dtype=np.float64))
    if w.size == 0:
        raise ValueError("optimal_scale: weights is empty")
    if channel_axis is not None:
        w = np.moveaxis(w, channel_axis, 0).reshape(w.shape[channel_axis], -1)
    axis = -1 if channel_axis is not None else None
    if kind == "r1":
        return np.median(w, axis=axis)
    if kind == "r2":
        return np.mean(w, axis=axis)
    raise ValueError(f"kind must be 'r1' or 'r2', got {kind!r}")


def minimise_regularizer(weights: np.ndarray, kind: str = "r1") -> Tuple[float, float]:
    """The numerical twin of :func:`optimal_scale` (one α for all weights): (α, R(α)) from bounded Brent search.

    Example:
        >>> w = np.random.default_rng(0).normal(size=101)
        >>> alpha, value = minimise_regularizer(w, "r2")
        >>> bool(abs(alpha - optimal_scale(w, "r2")) < 1e-6)
        True
    """
    w = np.abs(np.asarray(weights, dtype=np.float64)).ravel()
    res = optimize.minimize_scalar(lambda a: float(regularizer(a, w, kind)), bounds=(0.0, float(w.max()) + 1.0),
                                   method="bounded", options={"xatol": 1e-12})
    return float(res.x), float(res.fun)
