"""Darabi, Belbahri, Courbariaux & Partovi Nia 2018, "BNN+": SignSwish and the scale regularizers in closed form.

SignSwish SS_β (eq. 2) and its derivative (eq. 3), and how much closer that derivative is to sign' than
htanh's is; the regularizers R1 = |α - |w|| and R2 = (α - |w|)² (eqs. 4-5) beside Tang et al. 2017's
(1 - w²)·1_{|w|<=1}, and the scale α that minimises them (the median and the mean of |W|, eqs. 7-9).

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
from scipy import integrate, optimize, special

from .check import DEFAULT_Z, ArrayLike, Check, as_generator, int_at_least, mean_check, positive



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
    return _signswish_zero_u() / positive("beta", beta)


def regularizer(alpha: ArrayLike, weights: np.ndarray, kind: str = "r1", channel_axis: Optional[int] = None
                ) -> np.ndarray:
    """R1 = Σ|α - |w||  or  R2 = Σ(α - |w|)², summed per channel (Darabi et al. 2018, eqs. 4-5, 7); beside them
    Tang et al. 2017's R_T = Σ(α² - w²)·1_{|w|<=α} (α = 1 in their paper; "tang").

    BNN+ cites Tang's regularizer as the one its R1/R2 follow, with two differences that the gradients show
    (:func:`regularizer_gradient`): R_T pulls weights inside [-α, α] towards ±α but does not touch weights
    outside it (zero gradient), while R1 and R2 pull every weight towards ±α from both sides.

    Args:
        alpha: the scale, a scalar or one per channel.
        weights: the weight array.
        kind: 'r1' (Manhattan), 'r2' (Euclidean) or 'tang' (Tang et al. 2017).
        channel_axis: None for one α over all weights, else the axis holding the channels (C_out).

    Example:
        >>> float(regularizer(1.0, np.array([0.5, -2.0]), "r1")), float(regularizer(1.0, np.array([0.5, -2.0]), "r2"))
        (1.5, 1.25)
        >>> float(regularizer(1.0, np.array([0.5, -2.0]), "tang"))
        0.75
    """
    w = np.abs(np.asarray(weights, dtype=np.float64))
    if channel_axis is not None:
        w = np.moveaxis(w, channel_axis, 0).reshape(w.shape[channel_axis], -1)
        alpha = np.asarray(alpha, dtype=np.float64).reshape(-1, 1)
    alpha = np.asarray(alpha, dtype=np.float64)
    diff = alpha - w
    if kind == "r1":
        return np.abs(diff).sum(axis=-1)
    if kind == "r2":
        return (diff * diff).sum(axis=-1)
    if kind == "tang":
        return np.where(w <= alpha, alpha * alpha - w * w, 0.0).sum(axis=-1)
    raise ValueError(f"kind must be 'r1', 'r2' or 'tang', got {kind!r}")


def regularizer_gradient(alpha: float, weights: np.ndarray, kind: str = "r1") -> np.ndarray:
    """dR/dw per weight for a scalar α: R1: -sign(w)·sign(α - |w|); R2: -2(α - |w|)·sign(w);
    Tang: -2w·1_{|w|<=α} (sign(0) = +1; at the kinks |w| = α the one-sided value towards the inside).

    Gradient descent moves w by -dR/dw: R1 and R2 towards ±α from both sides, Tang only from inside.

    Example:
        >>> w = np.array([0.5, -0.5, 2.0])
        >>> regularizer_gradient(1.0, w, "r1"), regularizer_gradient(1.0, w, "tang")
        (array([-1.,  1.,  1.]), array([-1.,  1., -0.]))
    """
    w = np.asarray(weights, dtype=np.float64)
    a = float(alpha)
    sign_w = np.where(w >= 0, 1.0, -1.0)
    if kind == "r1":
        return -sign_w * np.where(a - np.abs(w) >= 0, 1.0, -1.0)
    if kind == "r2":
        return -2.0 * (a - np.abs(w)) * sign_w
    if kind == "tang":
        return np.where(np.abs(w) <= a, -2.0 * w, 0.0) * 1.0
    raise ValueError(f"kind must be 'r1', 'r2' or 'tang', got {kind!r}")


def expected_regularizer(kind: str, weight_std: float, alpha: float = 1.0) -> float:
    """E R(w) per weight for w ~ N(0, s²), the three regularizers side by side (closed forms).

        R1:   E|α - |w|| = α - s·sqrt(2/π) + 4s·φ(α/s) - 4α·(1 - Φ(α/s))
        R2:   E(α - |w|)² = α² - 2α·s·sqrt(2/π) + s²
        Tang: E(α² - w²)·1_{|w|<=α} = (α² - s²)(2Φ(α/s) - 1) + 2α·s·φ(α/s)

    (|w| is half-normal; E(|w| - α)_+ = 2s·φ(α/s) - 2α(1 - Φ(α/s)) gives R1; the truncated second moment
    E w²·1_{|w|<=α} = s²(2Φ(u) - 1) - 2α·s·φ(u), u = α/s, gives Tang.)

    Example:
        >>> round(expected_regularizer("r2", 1.0), 4), round(expected_regularizer("tang", 1.0), 4)
        (0.4042, 0.4839)
    """
    s, a = float(weight_std), float(alpha)
    if not s > 0 or not a >= 0:
        raise ValueError(f"expected_regularizer: need weight_std > 0 and alpha >= 0, got {weight_std!r}, {alpha!r}")
    u = a / s
    phi, big_phi = math.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi), 0.5 * math.erfc(-u / math.sqrt(2.0))
    if kind == "r1":
        return a - s * math.sqrt(2.0 / math.pi) + 4.0 * s * phi - 4.0 * a * (1.0 - big_phi)
    if kind == "r2":
        return a * a - 2.0 * a * s * math.sqrt(2.0 / math.pi) + s * s
    if kind == "tang":
        return (a * a - s * s) * (2.0 * big_phi - 1.0) + 2.0 * a * s * phi
    raise ValueError(f"kind must be 'r1', 'r2' or 'tang', got {kind!r}")


def measure_regularizer(kind: str, weight_std: float, alpha: float = 1.0, n: int = 100_000,
                        rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Check:
    """Draw n weights from N(0, s²); check the mean per-weight penalty against :func:`expected_regularizer`.

    Example:
        >>> measure_regularizer("tang", 0.8, n=20_000, rng=np.random.default_rng(0)).agrees
        True
    """
    w = as_generator(rng).normal(0.0, float(weight_std), int_at_least("n", n, 2))
    per_weight = regularizer(float(alpha), w[:, None], kind)
    return mean_check(f"E {kind}(w), w ~ N(0, {weight_std:g}²)", expected_regularizer(kind, weight_std, alpha),
                      per_weight, z)


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


# ---------------------------------------------------------------------------------------------------------
# How close is a pseudo-gradient to sign' = 2δ?
# ---------------------------------------------------------------------------------------------------------

def _ste_grad(kind: str, x: np.ndarray, beta: float) -> np.ndarray:
    if kind == "htanh":
        return (np.abs(x) <= 1.0).astype(np.float64)
    if kind == "signswish":
        return signswish_grad(x, beta)
    raise ValueError(f"kind must be 'htanh' or 'signswish', got {kind!r}")


@lru_cache(maxsize=None)
def _signswish_spread_u() -> float:
    """(1/2)∫|u|·|SS_1'(u)| du, split at the sign changes ±u* of SS_1'."""
    u_star = _signswish_zero_u()

    def f(u: float) -> float:
        return u * float(signswish_grad(u, 1.0))
    inner = integrate.quad(f, 0.0, u_star, epsabs=1e-13, epsrel=1e-12)[0]
    outer = integrate.quad(f, u_star, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    return inner - outer          # 2·∫_0^∞ u|SS'| du / 2


def ste_spread(kind: str, beta: float = 5.0) -> float:
    """D(g) = ∫|x|·|g(x)| dx / ∫g(x) dx: how far from 0, on average, a pseudo-gradient g puts its mass.

    The derivative of sign is 2δ (all its mass at 0, D = 0); an STE's g has the same total mass ∫g = 2 (it
    integrates to the ±1 step) spread around 0. D measures that spread in units of x, so it compares
    pseudo-gradients as approximations of sign' (Darabi et al. 2018, after eq. 3: SS_β' "is a closer
    approximation function to the derivative of the sign function compared to the derivative of the htanh"):

        htanh' = 1_{|x|<=1}:  D = 1/2
        SS_β':                D = c/β, c = (1/2)∫|u|·|SS_1'(u)| du ≈ 1.7569 (quadrature; |·| counts the
                              negative lobes beyond ±u*/β as mass away from 0)

    So SS_β' is closer than htanh' exactly when β > 2c ≈ 3.51: SS_5 is 1.42 times closer, SS_10 2.85 times
    (:func:`signswish_closeness`); the paper's "depending on the value of β" is this threshold (SS_2 and
    below are farther from sign' than htanh').

    Example:
        >>> ste_spread("htanh"), round(ste_spread("signswish", beta=1.0), 4)
        (0.5, 1.7569)
    """
    if kind == "htanh":
        return 0.5
    if kind == "signswish":
        return _signswish_spread_u() / positive("beta", beta)
    raise ValueError(f"kind must be 'htanh' or 'signswish', got {kind!r}")


def signswish_closeness(beta: float) -> float:
    """D(htanh')/D(SS_β') (:func:`ste_spread`): how many times closer to sign' SS_β' is than htanh' (> 1: closer).

    Example:
        >>> round(signswish_closeness(5.0), 3), round(signswish_closeness(10.0), 3)
        (1.423, 2.846)
    """
    return ste_spread("htanh") / ste_spread("signswish", beta)


def measure_ste_spread(kind: str, beta: float = 5.0, n: int = 200_000, rng: Optional[np.random.Generator] = None,
                       z: float = DEFAULT_Z) -> Check:
    """Monte-Carlo integral of :func:`ste_spread`: x ~ U[-L, L] with L past where g is negligible, then
    D = ∫|x||g| dx / 2 = L·E(|x|·|g(x)|); each draw's L·|x|·|g(x)| is an i.i.d. sample of the mean.

    Example:
        >>> measure_ste_spread("signswish", beta=5.0, n=50_000, rng=np.random.default_rng(0)).agrees
        True
    """
    half = 1.0 if kind == "htanh" else 60.0 / float(beta)    # SS_β' < 1e-20 beyond |βx| = 60
    x = as_generator(rng).uniform(-half, half, int_at_least("n", n, 2))
    samples = half * np.abs(x) * np.abs(_ste_grad(kind, x, beta))
    return mean_check(f"spread of {kind}' (beta {beta:g})", ste_spread(kind, beta), samples, z)
