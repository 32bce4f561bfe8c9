"""Kim, Park, Lee & Kim 2021, "Improving Accuracy of BNNs using Unbalanced Activation Distribution".

Shifted sign thresholds and the +1 share they give, the skew of max- vs average-pooling before the sign, and
the trainable threshold as the BatchNorm bias in disguise (eq. 1). Each formula has a Monte-Carlo twin.

Example:
    >>> round(shifted_sign_fraction(0.0), 6)
    0.5
    >>> shifted_sign_fraction(-1.0) > 0.5
    True
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
from scipy import integrate, special, stats

from .check import DEFAULT_Z, Check, as_generator, fraction_check, int_at_least, mean_check, variance_check
from .sari import batchnorm_forward


def shifted_sign_fraction(threshold: float, mu: float = 0.0, sigma: float = 1.0) -> float:
    """P(sign(x - t) = +1) = P(x >= t) = Φ((μ - t)/σ) for a pre-activation x ~ N(μ, σ²) (Kim et al. 2021, 3.2).

    Shifting the threshold of the sign to t > 0 after a BatchNorm (μ = 0, σ = 1) leaves a share Φ(-t) of +1:
    t = 1.2 (the paper's best shift on vgg-small) gives 11.5%.

    Example:
        >>> round(shifted_sign_fraction(1.2), 4)
        0.1151
    """
    sigma = float(sigma)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    return float(stats.norm.sf((float(threshold) - float(mu)) / sigma))


def measure_shifted_sign_fraction(threshold: float, mu: float = 0.0, sigma: float = 1.0, n: int = 100_000,
                                  rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Check:
    """Draw x ~ N(μ, σ²), count sign(x - t) = +1 (sign(0) = +1); binomial stderr.

    Example:
        >>> measure_shifted_sign_fraction(0.5, n=20_000, rng=np.random.default_rng(0)).agrees
        True
    """
    x = as_generator(rng).normal(float(mu), float(sigma), int_at_least("n", n, 2))
    return fraction_check(f"fraction of +1 after sign(x - {threshold:g})",
                           shifted_sign_fraction(threshold, mu, sigma), x >= threshold, z)


def _pool_size(k: int) -> int:
    return int_at_least("k", k) ** 2


def _max_normal_moment(n: int, power: int) -> float:
    """E(M^power) for M the max of n i.i.d. N(0, 1): ∫ x^power·n·φ(x)·Φ(x)^{n-1} dx."""
    def density(x: float) -> float:
        return x ** power * n * math.exp(stats.norm.logpdf(x) + (n - 1) * stats.norm.logcdf(x))
    return float(integrate.quad(density, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)[0])


def pooled_moments(k: int, mode: str = "max") -> Tuple[float, float]:
    """(mean, variance) of a k×k pooling window of i.i.d. N(0, 1) inputs (BatchNorm-centred; Kim et al. 2021).

    max: M = max of n = k² normals, CDF Φ(x)^n; mean and variance by integration (order statistics).
    avg: A ~ N(0, 1/n), symmetric.

    Example:
        >>> [round(v, 4) for v in pooled_moments(2, "max")]
        [1.0294, 0.4917]
    """
    n = _pool_size(k)
    if mode == "max":
        m1 = _max_normal_moment(n, 1)
        return m1, _max_normal_moment(n, 2) - m1 * m1
    if mode == "avg":
        return 0.0, 1.0 / n
    raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")


def pooled_sign_fraction(k: int, mode: str = "max", normalize: bool = True, shift: float = 0.0) -> float:
    """Share of +1 after pooling a k×k window of i.i.d. N(0, 1) and taking a sign (Kim et al. 2021, 3.2.1).

    normalize=True (their vgg-small: pool, then BatchNorm, then sign): +1 iff (P - E P)/sd(P) >= shift.
        max: 1 - Φ(μ_M + shift·σ_M)^n — below 1/2 at shift 0: max-pooling skews to the right (mean >
             median), BatchNorm centres at the mean, so -1 outnumbers +1 (2×2: 48.2%, 3×3: 47.3%).
        avg: 1 - Φ(shift) — exactly 1/2 at shift 0.
    normalize=False: +1 iff P >= shift: max gives 1 - Φ(shift)^n (1 - 2^{-n} at 0), avg gives Φ(-shift·√n).

    Example:
        >>> round(pooled_sign_fraction(2, "max"), 4), pooled_sign_fraction(2, "avg")
        (0.482, 0.5)
    """
    n = _pool_size(k)
    shift = float(shift)
    if mode == "max":
        if normalize:
            mu, var = pooled_moments(k, "max")
            point = mu + shift * math.sqrt(var)
        else:
            point = shift
        return float(-special.expm1(n * stats.norm.logcdf(point)))
    if mode == "avg":
        return float(stats.norm.sf(shift if normalize else shift * math.sqrt(n)))
    raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")


def _pool_samples(k: int, mode: str, n: int, rng: np.random.Generator) -> np.ndarray:
    windows = rng.standard_normal((int_at_least("n", n, 2), _pool_size(k)))
    if mode == "max":
        return windows.max(axis=1)
    if mode == "avg":
        return windows.mean(axis=1)
    raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")


def measure_pooled_moments(k: int, mode: str = "max", n: int = 100_000, rng: Optional[np.random.Generator] = None,
                           z: float = DEFAULT_Z) -> Tuple[Check, Check]:
    """Pool n windows of k×k standard normals; (mean check, variance check).

    Example:
        >>> m, v = measure_pooled_moments(3, "max", n=20_000, rng=np.random.default_rng(0))
        >>> m.agrees and v.agrees
        True
    """
    samples = _pool_samples(k, mode, n, as_generator(rng))
    mean, var = pooled_moments(k, mode)
    return (mean_check(f"{mode}-pool {k}x{k} mean", mean, samples, z),
            variance_check(f"{mode}-pool {k}x{k} variance", var, samples, z))


def measure_pooled_sign_fraction(k: int, mode: str = "max", normalize: bool = True, shift: float = 0.0,
                                 n: int = 200_000, rng: Optional[np.random.Generator] = None,
                                 z: float = DEFAULT_Z) -> Check:
    """Pool n windows, normalise with the sample's own mean and std (as BatchNorm does), count +1.

    The threshold θ̂ = m̄ + shift·ŝd is estimated from the same sample, so the stderr uses the delta method
    (influence function): ψ_i = 1{P_i >= θ} - f(θ)·[(P_i - m) + shift·((P_i - m)² - sd²)/(2 sd)], with the
    density f(θ) estimated by the share of samples within ±h of θ, h = sd·n^(-1/5).

    Example:
        >>> measure_pooled_sign_fraction(2, "max", n=50_000, rng=np.random.default_rng(0)).agrees
        True
    """
    p = _pool_samples(k, mode, n, as_generator(rng))
    shift = float(shift)
    name = f"{mode}-pool {k}x{k} share of +1 ({'BN, ' if normalize else ''}shift {shift:g})"
    predicted = pooled_sign_fraction(k, mode, normalize, shift)
    if not normalize:
        return fraction_check(name, predicted, p >= shift, z)
    m, sd = p.mean(), p.std()
    theta = m + shift * sd
    hits = p >= theta
    h = sd * p.size ** -0.2
    density = np.mean(np.abs(p - theta) < h) / (2.0 * h)
    psi = hits - density * ((p - m) + shift * ((p - m) ** 2 - sd * sd) / (2.0 * sd))
    return Check(name, predicted, float(hits.mean()), float(psi.std(ddof=1) / math.sqrt(p.size)), p.size, z)


def threshold_and_bias_gradients(x: np.ndarray, grad_y: np.ndarray, gamma: float = 1.0, beta: float = 0.0,
                                 threshold: float = 0.0, eps: float = 0.0) -> Tuple[float, float]:
    """(dL/dβ, dL/dth) over one batch for Y = sign(γ(X - μ̂)/σ̂ + β - th) with the htanh STE (Kim et al. 2021, eq. 1).

    Eq. 1 writes Y = -1 if γ(X-μ)/σ + β <= th, else +1; only u = γ(X-μ)/σ + β - th enters, and the batch
    statistics do not depend on β or th. With the STE dY/du ≈ 1_{|u|<=1} and upstream grad_y = dL/dY:
        dL/dβ = Σ_b grad_y_b·1_{|u_b|<=1},     dL/dth = -dL/dβ
    exactly, for every batch: a trainable threshold receives the BatchNorm bias's gradient with the opposite
    sign, so training both only doubles the learning rate of the effective threshold th - β. (The paper's
    "-1 at equality" differs from the project's sign(0) = +1 only on a null set; gradients are unaffected.)

    Example:
        >>> threshold_and_bias_gradients(np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 4.0]))
        (2.0, -2.0)
    """
    x = np.asarray(x, dtype=np.float64)
    grad_y = np.asarray(grad_y, dtype=np.float64)
    if x.ndim != 1 or grad_y.shape != x.shape:
        raise ValueError(f"x must be a batch of shape (B,) and grad_y the same shape; got {x.shape}, {grad_y.shape}")
    z, _, _ = batchnorm_forward(x, gamma, beta, eps)
    u = z - float(threshold)
    grad_u = grad_y * (np.abs(u) <= 1.0)
    d_beta = float(grad_u.sum())
    return d_beta, -d_beta
