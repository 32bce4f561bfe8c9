"""Sari, Belbahri & Partovi Nia 2019: BatchNorm in a binary network (eqs. 1-3) and sign(BN(s)) as a threshold.

BatchNorm's forward and backward written out (eq. 1); what it does to the forward variance, V(BN(s)) = γ²
(section 3); the variance of the squared normalised pre-activation, V(ŝ²) = 2 - 2/K for a K-term binary dot
product; the gradient variance through BatchNorm (eq. 3, corrected: the printed form is kept as
``..._as_printed``); and eq. 2, sign(BN(s)) folded into an integer threshold. Each formula has a Monte-Carlo
twin returning a :class:`~minibnn.theory.check.Check`.

Example:
    >>> bn_output_variance(gamma=0.5)
    0.25
    >>> binary_dot_square_variance(8)
    1.75
    >>> bn_gradient_variance(8)
    0.75
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple, Optional, Tuple

import numpy as np

from .check import DEFAULT_Z, ArrayLike, Check, as_generator, int_at_least, mean_check, probability, variance_check


# batchnorm_forward / batchnorm_backward are eq. 1 written out in NumPy, deliberately apart from
# layers.BatchNorm1d and functional.batch_norm: check_batchnorm_backward_against_autograd compares the two.
def batchnorm_forward(s: np.ndarray, gamma: ArrayLike = 1.0, beta: ArrayLike = 0.0, eps: float = 0.0,
                      axis: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z = γ·ŝ + β with ŝ = (s - μ̂)/σ̂, μ̂ and σ̂² the batch mean and (biased) variance (Sari et al. 2019, sec. 2).

    σ̂ = sqrt(var + eps). Statistics are taken over ``axis`` (the batch axis), per feature.

    Returns:
        (z, s_hat, std) with std keeping the reduced axis (for broadcasting in the backward).

    Example:
        >>> z, s_hat, std = batchnorm_forward(np.array([[1.0], [3.0]]))
        >>> z.ravel(), std.ravel()
        (array([-1.,  1.]), array([1.]))
    """
    s = np.asarray(s, dtype=np.float64)
    mean = s.mean(axis=axis, keepdims=True)
    std = np.sqrt(s.var(axis=axis, keepdims=True) + eps)
    if np.any(std == 0):
        raise FloatingPointError("batchnorm_forward: a feature has zero batch variance and eps=0; "
                                 "use eps > 0 or a batch whose values differ")
    s_hat = (s - mean) / std
    return np.asarray(gamma) * s_hat + np.asarray(beta), s_hat, std


def batchnorm_backward(grad_z: np.ndarray, s_hat: np.ndarray, std: np.ndarray, gamma: ArrayLike = 1.0,
                       axis: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The BatchNorm backward of Sari et al. 2019, eq. 1, with the parameter gradients above it.

        dL/ds_b = (γ/σ̂)·(g_b - (1/B)·Σ_{b'} g_{b'} - ŝ_b·(1/B)·Σ_{b'} g_{b'} ŝ_{b'}),   g = dL/dz
        dL/dβ = Σ_b g_b,    dL/dγ = Σ_b g_b ŝ_b

    Eq. 1 is printed correctly. It also holds with eps > 0 provided ŝ and σ̂ are the forward's (σ̂ including
    eps): dŝ_b/ds_j = (δ_bj - 1/B)/σ̂ - ŝ_b ŝ_j/(Bσ̂) either way.

    Args:
        grad_z: dL/dz, same shape as the forward input.
        s_hat, std: from :func:`batchnorm_forward`.
        gamma: the scale γ (per feature).
        axis: the batch axis used in the forward.

    Returns:
        (dL/ds, dL/dγ, dL/dβ); the last two are reduced over ``axis``.

    Example:
        >>> z, s_hat, std = batchnorm_forward(np.array([[0.0], [1.0], [5.0]]))
        >>> grad_s, grad_gamma, grad_beta = batchnorm_backward(np.ones((3, 1)), s_hat, std)
        >>> np.allclose(grad_s, 0.0), grad_beta.ravel()
        (True, array([3.]))
    """
    grad_z = np.asarray(grad_z, dtype=np.float64)
    if grad_z.shape != s_hat.shape:
        raise ValueError(f"batchnorm_backward: grad_z has shape {grad_z.shape}, expected s_hat's {s_hat.shape}")
    mean_g = grad_z.mean(axis=axis, keepdims=True)
    mean_gs = (grad_z * s_hat).mean(axis=axis, keepdims=True)
    grad_s = np.asarray(gamma) / std * (grad_z - mean_g - s_hat * mean_gs)
    return grad_s, (grad_z * s_hat).sum(axis=axis), grad_z.sum(axis=axis)


def bn_gradient_variance(batch_size: int, gamma: float = 1.0, std: float = 1.0,
                         upstream_var: float = 1.0) -> float:
    """V(dL/ds_b) through BatchNorm, averaged over the batch: (γ/σ̂)²·(B - 2)/B·V(dL/dz) (corrects eq. 3).

    Sari et al. 2019, eq. 3 (and the proof of Theorem 1), print
        V(dL/ds^l) = (γ/(Bσ̂))²·{B² + 2B - 1 + V(ŝ²)}·K_{l+1}V(w^{l+1})V(dL/ds^{l+1}),
    whose BatchNorm factor exceeds (γ/σ̂)² for every B (see :func:`bn_gradient_variance_as_printed`). Measured,
    the factor is below (γ/σ̂)²: the three terms of eq. 1 are negatively correlated, and the printed form adds
    their variances as if they were independent.

    Derivation (eps = 0, σ̂ and ŝ of the batch held fixed, upstream gradients g_b i.i.d. with mean 0 and
    variance v, independent of s): eq. 1 reads dL/ds = (γ/σ̂)·P g with P = I - 11ᵀ/B - ŝŝᵀ/B. Because
    1ᵀŝ = 0 and |1|² = |ŝ|² = B, P is the orthogonal projection off span{1, ŝ}, so
    Cov(dL/ds) = (γ/σ̂)² v P and V(dL/ds_b) = (γ/σ̂)² v (1 - 1/B - ŝ_b²/B); the batch average is
    (γ/σ̂)² v (B - 2)/B. Pass upstream_var = K_{l+1}·V(w^{l+1})·V(dL/ds^{l+1}) to get eq. 3's full right side.
    Both forms tend to (γ/σ̂)²·upstream_var as B → ∞, which is all Theorem 1 uses.

    Example:
        >>> bn_gradient_variance(8)
        0.75
    """
    b = int_at_least("batch_size", batch_size, 2)
    return (float(gamma) / float(std)) ** 2 * (b - 2) / b * float(upstream_var)


def bn_gradient_variance_as_printed(batch_size: int, gamma: float = 1.0, std: float = 1.0,
                                    upstream_var: float = 1.0, var_s_hat_sq: Optional[float] = None,
                                    k: Optional[int] = None) -> float:
    """Sari et al. 2019, eq. 3 as printed: (γ/(Bσ̂))²·{B² + 2B - 1 + V(ŝ²)}·upstream_var.

    ``var_s_hat_sq`` is V(ŝ²); by default 2 - 2/K for a K-term binary dot product when ``k`` is given
    (:func:`binary_dot_square_variance`), else 2 (Gaussian pre-activations, the K → ∞ limit). Kept to show
    that it is measurably wrong at finite B (see :func:`bn_gradient_variance`).

    Example:
        >>> bn_gradient_variance_as_printed(8)
        1.265625
        >>> bn_gradient_variance_as_printed(8, k=8)
        1.26171875
    """
    b = int_at_least("batch_size", batch_size, 2)
    if var_s_hat_sq is None:
        var_s_hat_sq = 2.0 if k is None else binary_dot_square_variance(k)
    return (float(gamma) / (b * float(std))) ** 2 * (b * b + 2 * b - 1 + float(var_s_hat_sq)) * float(upstream_var)


def measure_bn_gradient_variance(s: np.ndarray, gamma: float = 1.0, upstream_var: float = 1.0,
                                 n_draws: int = 4000, rng: Optional[np.random.Generator] = None,
                                 z: float = DEFAULT_Z) -> Check:
    """Hold one batch s (shape (B,)) fixed, draw i.i.d. upstream gradients, back-propagate with eq. 1.

    Each draw g ~ N(0, upstream_var)^B gives T = mean_b (dL/ds_b)²; E(T) is the batch-averaged variance
    (mean zero exactly), predicted by :func:`bn_gradient_variance` with this batch's σ̂.

    Example:
        >>> s = np.random.default_rng(0).normal(size=6)
        >>> measure_bn_gradient_variance(s, n_draws=2000, rng=np.random.default_rng(1)).agrees
        True
    """
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 1 or s.size < 2:
        raise ValueError(f"s must be one batch of shape (B,) with B >= 2, got shape {s.shape}")
    rng = as_generator(rng)
    _, s_hat, std = batchnorm_forward(s[:, None], gamma)
    g = rng.normal(0.0, math.sqrt(float(upstream_var)), (int_at_least("n_draws", n_draws, 2), s.size, 1))
    grad_s, _, _ = batchnorm_backward(g, np.broadcast_to(s_hat, g.shape), std, gamma, axis=1)
    predicted = bn_gradient_variance(s.size, gamma, float(std.ravel()[0]), upstream_var)
    return mean_check(f"BatchNorm gradient variance (B={s.size})", predicted, np.mean(grad_s ** 2, axis=(1, 2)), z)



def bn_output_variance(gamma: float = 1.0) -> float:
    """V(BN(s)) = γ² (Sari et al. 2019, sec. 3): BatchNorm fixes the forward variance, whatever V(w) was.

    With the batch's own statistics and eps = 0, ŝ = (s - μ̂)/σ̂ has mean 0 and mean square exactly 1 over the
    batch, so z = γ·ŝ + β has (z - β)² averaging to exactly γ² in every batch; the weights' variance, which
    sets V(s), drops out. That is why the weight init has "no fundamental effect on forward propagation".

    Example:
        >>> bn_output_variance(2.0)
        4.0
    """
    return float(gamma) ** 2


def measure_bn_output_variance(s: np.ndarray, gamma: float = 1.0, beta: float = 0.0,
                               z: float = DEFAULT_Z) -> Check:
    """Normalise each batch of ``s`` (shape (..., B, C), statistics over the B axis), return the check of
    mean((z - β)²) against γ²; every batch's average is γ² to rounding, so the check holds at any scale of s.

    Example:
        >>> s = np.random.default_rng(0).normal(3.0, 50.0, (100, 32, 4))
        >>> measure_bn_output_variance(s, gamma=0.5).agrees
        True
    """
    s = np.asarray(s, dtype=np.float64)
    if s.ndim < 2 or s.shape[-2] < 2:
        raise ValueError(f"measure_bn_output_variance: s must have shape (..., B, C) with B >= 2, got {s.shape}")
    out, _, _ = batchnorm_forward(s, gamma, beta, axis=s.ndim - 2)
    return mean_check(f"V(BN(s)) (B={s.shape[-2]})", bn_output_variance(gamma), (out - float(beta)) ** 2, z)


def binary_dot_square_variance(k: int, p_w: float = 0.5, p_x: float = 0.5) -> float:
    """V(ŝ²) for ŝ = (s - E s)/sd(s), s a K-term binary dot product: 2 - 2/K at p = 1/2 (Sari et al. 2019, eq. 3).

    s = 2N - K with N ~ Binomial(K, q), q = p_w·p_x + (1 - p_w)(1 - p_x). V(ŝ²) = E(ŝ⁴) - 1 = kurtosis - 1
    = 2 + (1 - 6q(1 - q))/(K·q(1 - q)); at q = 1/2 (either factor balanced) this is 2 - 2/K, below the
    Gaussian value 2 that eq. 3 uses by default (the binary sum is platykurtic). Eq. 3 holds V(ŝ²) "constant";
    :func:`bn_gradient_variance_as_printed` takes this value when given K.

    Example:
        >>> binary_dot_square_variance(2), binary_dot_square_variance(64)
        (1.0, 1.96875)
    """
    k = int_at_least("k", k)
    p_w, p_x = probability("p_w", p_w), probability("p_x", p_x)
    q = p_w * p_x + (1.0 - p_w) * (1.0 - p_x)
    if q in (0.0, 1.0):
        raise ValueError(f"binary_dot_square_variance: s is constant (P(w·x = +1) = {q}); ŝ is undefined")
    return 2.0 + (1.0 - 6.0 * q * (1.0 - q)) / (k * q * (1.0 - q))


def measure_binary_dot_square_variance(k: int, p_w: float = 0.5, p_x: float = 0.5, n: int = 100_000,
                                       rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Check:
    """Draw n K-term binary dot products, standardise with the population mean and sd, check V(ŝ²).

    Example:
        >>> measure_binary_dot_square_variance(8, n=20_000, rng=np.random.default_rng(0)).agrees
        True
    """
    k = int_at_least("k", k)
    p_w, p_x = probability("p_w", p_w), probability("p_x", p_x)
    rng = as_generator(rng)
    shape = (int_at_least("n", n, 2), k)
    w = np.where(rng.random(shape) < p_w, 1.0, -1.0)
    x = np.where(rng.random(shape) < p_x, 1.0, -1.0)
    s = np.sum(w * x, axis=1)
    q = p_w * p_x + (1.0 - p_w) * (1.0 - p_x)
    s_hat = (s - k * (2.0 * q - 1.0)) / math.sqrt(4.0 * k * q * (1.0 - q))
    return variance_check(f"V(s_hat^2) (K={k})", binary_dot_square_variance(k, p_w, p_x), s_hat ** 2, z)


class FoldedThreshold(NamedTuple):
    """sign(BN(s)) folded into integer comparisons, one entry per channel (see :func:`fold_bn_sign`).

    direction +1: output +1 iff s >= threshold; -1: output +1 iff s <= threshold; 0: output ``constant``.
    """

    threshold: np.ndarray    # int64
    direction: np.ndarray    # int8 in {+1, -1, 0}
    constant: np.ndarray     # int8 in {+1, -1}, used where direction == 0


_INT_LIMIT = 2 ** 62


def fold_bn_sign(gamma: ArrayLike, beta: ArrayLike, mean: ArrayLike, std: ArrayLike) -> FoldedThreshold:
    """Fold sign(γ(s - μ)/σ + β) for integer s into an integer threshold per channel (Sari et al. 2019, eq. 2).

    With τ = μ - σβ/γ and sign(0) = +1:
        γ > 0:  +1  iff  s >= τ  iff  s >= ⌈τ⌉
        γ < 0:  +1  iff  s <= τ  iff  s <= ⌊τ⌋            (dividing by γ < 0 flips the comparison)
        γ = 0:  the output is the constant sign(β)
    Eq. 2 prints "s >= [τ], [·] round to nearest" for every γ. Round-to-nearest is wrong for integer s
    (τ = 2.3 rounds to 2, but s = 2 < τ gives -1), and so is the unflipped comparison when γ < 0; the
    threshold is ⌈τ⌉ (or ⌊τ⌋). See :func:`sign_bn_as_printed`; the tests find counterexamples to it.

    τ is computed in exact rational arithmetic from the float64 values given, so the folding agrees with the
    real-number BN on every integer |s| < 2^62, ties included. ``std`` is σ = sqrt(running_var + eps) > 0.

    Example:
        >>> f = fold_bn_sign(gamma=[2.0, -1.0, 0.0], beta=[-0.5, 0.5, -1.0], mean=[1.0, 0.0, 0.0], std=[2.0, 1.0, 1.0])
        >>> f.threshold, f.direction
        (array([2, 0, 0]), array([ 1, -1,  0], dtype=int8))
        >>> apply_folded_threshold(np.array([[1, 0, 5], [2, 1, 5]]), f)
        array([[-1,  1, -1],
               [ 1, -1, -1]], dtype=int8)
    """
    g, b, m, sd = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=np.float64))
                                        for v in (gamma, beta, mean, std)))
    for name, v in (("gamma", g), ("beta", b), ("mean", m), ("std", sd)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"fold_bn_sign: {name} must be finite, got {v}")
    if np.any(sd <= 0):
        raise ValueError(f"fold_bn_sign: std must be > 0 (sqrt(running_var + eps)), got {sd}")
    shape = g.shape
    threshold = np.zeros(shape, dtype=np.int64)
    direction = np.zeros(shape, dtype=np.int8)
    constant = np.where(b >= 0, 1, -1).astype(np.int8)
    for i in np.ndindex(shape):
        if g[i] == 0:
            continue
        tau = Fraction(m[i]) - Fraction(sd[i]) * Fraction(b[i]) / Fraction(g[i])
        t = math.ceil(tau) if g[i] > 0 else math.floor(tau)
        threshold[i] = min(max(t, -_INT_LIMIT), _INT_LIMIT)
        direction[i] = 1 if g[i] > 0 else -1
    return FoldedThreshold(threshold.reshape(shape), direction, constant)


def apply_folded_threshold(s: np.ndarray, folded: FoldedThreshold) -> np.ndarray:
    """±1 (int8) from integer dot products s (channels on the last axis) and a :class:`FoldedThreshold`."""
    s = np.asarray(s)
    if not np.issubdtype(s.dtype, np.integer):
        raise TypeError(f"apply_folded_threshold: s must hold integers (binary dot products), got {s.dtype}")
    if s.shape[-1:] != folded.threshold.shape[-1:]:
        raise ValueError(f"apply_folded_threshold: s has {s.shape[-1:]} channels on its last axis, "
                         f"the folding has {folded.threshold.shape}")
    s = s.astype(np.int64)
    up = np.where(folded.direction > 0, s >= folded.threshold, s <= folded.threshold)
    out = np.where(folded.direction == 0, folded.constant == 1, up)
    return np.where(out, 1, -1).astype(np.int8)


def sign_bn(s: np.ndarray, gamma: ArrayLike, beta: ArrayLike, mean: ArrayLike, std: ArrayLike) -> np.ndarray:
    """sign(γ(s - μ)/σ + β) in float64 with sign(0) = +1: the unfolded reference (may differ at exact ties)."""
    y = np.asarray(gamma) * (np.asarray(s, dtype=np.float64) - np.asarray(mean)) / np.asarray(std) + np.asarray(beta)
    return np.where(y >= 0, 1, -1).astype(np.int8)


def sign_bn_as_printed(s: np.ndarray, gamma: ArrayLike, beta: ArrayLike, mean: ArrayLike,
                       std: ArrayLike) -> np.ndarray:
    """Sari et al. 2019, eq. 2 as printed: +1 iff s >= round(μ - σβ/γ), for any γ. Wrong; see fold_bn_sign."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.asarray(mean) - np.asarray(std) * np.asarray(beta) / np.asarray(gamma)
    return np.where(np.asarray(s) >= np.rint(tau), 1, -1).astype(np.int8)
