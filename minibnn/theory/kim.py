"""Kim, Park, Lee & Kim 2021, "Improving Accuracy of BNNs using Unbalanced Activation Distribution".

Shifted sign thresholds and the +1 share they give, the skew of max- vs average-pooling before the sign (also
on spatially correlated windows), the trainable threshold as the BatchNorm bias in disguise (eq. 1), the skew
of hardtanh shifted along x or y and of ReLU6 (sec. 3.1), LeakyReLU then BatchNorm and sign (sec. 4), and why
zero-centred binary weights rebalance an unbalanced input. Each formula has a Monte-Carlo twin.

Example:
    >>> round(shifted_sign_fraction(0.0), 6)
    0.5
    >>> shifted_sign_fraction(-1.0) > 0.5
    True
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np
from scipy import integrate, special, stats

from .check import (DEFAULT_Z, Check, as_generator, fraction_check, int_at_least, mean_check, positive,
                    probability, variance_check)
from .sari_batchnorm import batchnorm_forward


def shifted_sign_fraction(threshold: float, mu: float = 0.0, sigma: float = 1.0) -> float:
    """P(sign(x - t) = +1) = P(x >= t) = Φ((μ - t)/σ) for a pre-activation x ~ N(μ, σ²) (Kim et al. 2021, 3.2).

    Shifting the threshold of the sign to t > 0 after a BatchNorm (μ = 0, σ = 1) leaves a share Φ(-t) of +1:
    t = 1.2 (the paper's best shift on vgg-small) gives 11.5%.

    Example:
        >>> round(shifted_sign_fraction(1.2), 4)
        0.1151
    """
    sigma = positive("sigma", sigma)
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


def _rho(rho: float) -> float:
    rho = float(rho)
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"rho (the correlation within a pooling window) must be in [0, 1), got {rho}")
    return rho


def pooled_moments(k: int, mode: str = "max", rho: float = 0.0) -> Tuple[float, float]:
    """(mean, variance) of a k×k pooling window of N(0, 1) inputs (BatchNorm-centred; Kim et al. 2021).

    The window's n = k² inputs are equicorrelated with correlation ``rho`` (0: i.i.d.; a spatially smooth
    feature map has rho > 0): X_i = sqrt(ρ)·Z_0 + sqrt(1 - ρ)·Z_i with Z's i.i.d. N(0, 1). Then
    max: M = sqrt(ρ)·Z_0 + sqrt(1 - ρ)·M_n, M_n the max of n i.i.d. normals (CDF Φ(x)^n; its mean and
         variance by integration), so E M = sqrt(1 - ρ)·E M_n and V M = ρ + (1 - ρ)·V M_n;
    avg: A ~ N(0, ρ + (1 - ρ)/n), symmetric.

    Example:
        >>> [round(v, 4) for v in pooled_moments(2, "max")]
        [1.0294, 0.4917]
        >>> [round(v, 4) for v in pooled_moments(2, "max", rho=0.5)]
        [0.7279, 0.7459]
    """
    n = _pool_size(k)
    rho = _rho(rho)
    if mode == "max":
        m1 = _max_normal_moment(n, 1)
        return math.sqrt(1.0 - rho) * m1, rho + (1.0 - rho) * (_max_normal_moment(n, 2) - m1 * m1)
    if mode == "avg":
        return 0.0, rho + (1.0 - rho) / n
    raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")


def pooled_sign_fraction(k: int, mode: str = "max", normalize: bool = True, shift: float = 0.0,
                         rho: float = 0.0) -> float:
    """Share of +1 after pooling a k×k window of N(0, 1) and taking a sign (Kim et al. 2021, 3.2.1).

    normalize=True (their vgg-small: pool, then BatchNorm, then sign): +1 iff (P - E P)/sd(P) >= shift.
        max: 1 - Φ(μ_M + shift·σ_M)^n for i.i.d. inputs — below 1/2 at shift 0: max-pooling skews to the
             right (mean > median), BatchNorm centres at the mean, so -1 outnumbers +1 (2×2: 48.2%, 3×3:
             47.3%).
        avg: 1 - Φ(shift) — exactly 1/2 at shift 0.
    normalize=False: +1 iff P >= shift: max gives 1 - Φ(shift)^n (1 - 2^{-n} at 0), avg gives Φ(-shift/sd(A)).

    With correlated inputs (``rho`` > 0, see :func:`pooled_moments`) the max is a normal plus a shrunken maximum:
    P(M >= t) = ∫ φ(z)·[1 - Φ((t - sqrt(ρ)·z)/sqrt(1 - ρ))^n] dz. The skew fades as ρ grows (a window of equal
    values has a symmetric max): 2×2 gives 48.2% at ρ = 0, 49.7% at ρ = 0.5, 49.98% at ρ = 0.9. Spatially
    correlated feature maps therefore feel the max-pool asymmetry less than i.i.d. noise does.

    Example:
        >>> round(pooled_sign_fraction(2, "max"), 4), pooled_sign_fraction(2, "avg")
        (0.482, 0.5)
        >>> round(pooled_sign_fraction(2, "max", rho=0.5), 4)
        0.4967
    """
    n = _pool_size(k)
    shift, rho = float(shift), _rho(rho)
    if mode == "max":
        if normalize:
            mu, var = pooled_moments(k, "max", rho)
            point = mu + shift * math.sqrt(var)
        else:
            point = shift
        if rho == 0.0:
            return float(-special.expm1(n * stats.norm.logcdf(point)))
        a, c = math.sqrt(rho), math.sqrt(1.0 - rho)

        def integrand(z: float) -> float:
            return math.exp(stats.norm.logpdf(z)) * -special.expm1(n * stats.norm.logcdf((point - a * z) / c))
        return float(integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)[0])
    if mode == "avg":
        sd = math.sqrt(pooled_moments(k, "avg", rho)[1])
        return float(stats.norm.sf(shift if normalize else shift / sd))
    raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")


def _pool_samples(k: int, mode: str, n: int, rng: np.random.Generator, rho: float = 0.0) -> np.ndarray:
    rho = _rho(rho)
    n = int_at_least("n", n, 2)
    windows = rng.standard_normal((n, _pool_size(k)))
    if rho > 0.0:
        windows = math.sqrt(rho) * rng.standard_normal((n, 1)) + math.sqrt(1.0 - rho) * windows
    if mode == "max":
        return windows.max(axis=1)
    if mode == "avg":
        return windows.mean(axis=1)
    raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")


def measure_pooled_moments(k: int, mode: str = "max", n: int = 100_000, rng: Optional[np.random.Generator] = None,
                           z: float = DEFAULT_Z, rho: float = 0.0) -> Tuple[Check, Check]:
    """Pool n windows of k×k standard normals (equicorrelated with ``rho``); (mean check, variance check).

    Example:
        >>> m, v = measure_pooled_moments(3, "max", n=20_000, rng=np.random.default_rng(0))
        >>> m.agrees and v.agrees
        True
    """
    samples = _pool_samples(k, mode, n, as_generator(rng), rho)
    mean, var = pooled_moments(k, mode, rho)
    return (mean_check(f"{mode}-pool {k}x{k} mean (rho {rho:g})", mean, samples, z),
            variance_check(f"{mode}-pool {k}x{k} variance (rho {rho:g})", var, samples, z))


def _normalized_share_check(name: str, predicted: float, samples: np.ndarray, shift: float, z: float) -> Check:
    """The share of ``samples`` >= m̄ + shift·ŝd (their own mean and sd, as BatchNorm takes them), as a Check.

    The threshold θ̂ = m̄ + shift·ŝd is estimated from the same sample, so the stderr uses the delta method
    (influence function): ψ_i = 1{P_i >= θ} - f(θ)·[(P_i - m) + shift·((P_i - m)² - sd²)/(2 sd)], with the
    density f(θ) estimated by the share of samples within ±h of θ, h = sd·n^(-1/5).
    """
    m, sd = samples.mean(), samples.std()
    theta = m + shift * sd
    hits = samples >= theta
    h = sd * samples.size ** -0.2
    density = np.mean(np.abs(samples - theta) < h) / (2.0 * h)
    psi = hits - density * ((samples - m) + shift * ((samples - m) ** 2 - sd * sd) / (2.0 * sd))
    return Check(name, predicted, float(hits.mean()), float(psi.std(ddof=1) / math.sqrt(samples.size)),
                 samples.size, z)


def measure_pooled_sign_fraction(k: int, mode: str = "max", normalize: bool = True, shift: float = 0.0,
                                 n: int = 200_000, rng: Optional[np.random.Generator] = None,
                                 z: float = DEFAULT_Z, rho: float = 0.0) -> Check:
    """Pool n windows (equicorrelated with ``rho``), normalise with the sample's own mean and std (as
    BatchNorm does), count +1; stderr by the delta method (the threshold comes from the same sample).

    Example:
        >>> measure_pooled_sign_fraction(2, "max", n=50_000, rng=np.random.default_rng(0)).agrees
        True
    """
    p = _pool_samples(k, mode, n, as_generator(rng), rho)
    shift = float(shift)
    name = f"{mode}-pool {k}x{k} share of +1 ({'BN, ' if normalize else ''}shift {shift:g}, rho {rho:g})"
    predicted = pooled_sign_fraction(k, mode, normalize, shift, rho)
    if not normalize:
        return fraction_check(name, predicted, p >= shift, z)
    return _normalized_share_check(name, predicted, p, shift, z)


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


# ---------------------------------------------------------------------------------------------------------
# Sec. 3.1: hardtanh shifted along x or y, ReLU6; sec. 4: LeakyReLU; why zero-centred binary weights rebalance
# ---------------------------------------------------------------------------------------------------------

def _normal_partial_moments(alpha: float, beta: float, order: int) -> List[float]:
    """[∫_α^β z^j φ(z) dz for j = 0..order] for the standard normal (α, β may be ±inf), by the recursion
    m_j = (j - 1)·m_{j-2} + α^{j-1}φ(α) - β^{j-1}φ(β)."""
    def edge(x: float, j: int) -> float:
        return 0.0 if math.isinf(x) else x ** j * math.exp(stats.norm.logpdf(x))
    m = [float(stats.norm.cdf(beta) - stats.norm.cdf(alpha)), edge(alpha, 0) - edge(beta, 0)]
    for j in range(2, order + 1):
        m.append((j - 1) * m[j - 2] + edge(alpha, j - 1) - edge(beta, j - 1))
    return m[:order + 1]


def clipped_normal_moments(low: float, high: float, mu: float = 0.0, sigma: float = 1.0
                           ) -> Tuple[float, float, float]:
    """(mean, variance, skewness) of clip(X, low, high) for X ~ N(μ, σ²): point masses at the ends, the
    normal in between. With α, β the standardised ends, E(Y^j) = low^j·Φ(α) + high^j·(1 - Φ(β)) +
    Σ_i C(j, i)·μ^{j-i}·σ^i·∫_α^β z^i φ(z) dz.

    Example:
        >>> [round(v, 4) for v in clipped_normal_moments(-1.0, 1.0)]
        [0.0, 0.5161, 0.0]
    """
    low, high, mu, sigma = float(low), float(high), float(mu), float(sigma)
    if not sigma > 0 or not low < high:
        raise ValueError(f"clipped_normal_moments: need sigma > 0 and low < high, got sigma={sigma}, "
                         f"low={low}, high={high}")
    alpha, beta = (low - mu) / sigma, (high - mu) / sigma
    partial = _normal_partial_moments(alpha, beta, 3)
    raw = []
    for j in (1, 2, 3):
        inside = sum(math.comb(j, i) * mu ** (j - i) * sigma ** i * partial[i] for i in range(j + 1))
        ends = (low ** j * stats.norm.cdf(alpha) if math.isfinite(low) else 0.0) + \
               (high ** j * stats.norm.sf(beta) if math.isfinite(high) else 0.0)
        raw.append(inside + ends)
    mean = raw[0]
    var = raw[1] - mean * mean
    third = raw[2] - 3.0 * mean * raw[1] + 2.0 * mean ** 3
    return float(mean), float(var), float(third / var ** 1.5)


def hardtanh_skewness(x_offset: float = 0.0, y_offset: float = 0.0, range_: float = 1.0, mu: float = 0.0,
                      sigma: float = 1.0) -> float:
    """Skewness of y = clip(x - x_offset, -range, range) + y_offset for x ~ N(μ, σ²) (Kim et al. 2021, Fig. 1).

    y = clip(x, x_offset - range, x_offset + range) - x_offset + y_offset, and a shift does not change a skewness,
    so: shifting along y (Fig. 1c) leaves the output symmetric (skewness 0 for μ = 0) — it only moves the mean;
    shifting along x (Fig. 1b) to the right piles mass at the lower end and skews the output to the right
    (positive skewness, Fig. 3c: 0.5 gives +0.64); widening the range (Fig. 1d) keeps it symmetric. ReLU6 is
    clip(x, 0, 6), the hardtanh shifted by 3 along both axes with range 3 (:func:`relu6_skewness`): strongly
    right-skewed (+1.64 for N(0, 1) inputs, as ReLU's). That is the paper's argument: the x-shift makes hardtanh
    look like ReLU6, and unbalanced outputs train better.

    Example:
        >>> hardtanh_skewness(), hardtanh_skewness(y_offset=0.5)
        (0.0, 0.0)
        >>> round(hardtanh_skewness(x_offset=0.5), 4)
        0.6375
    """
    x_offset, range_ = float(x_offset), positive("range_", range_)
    return clipped_normal_moments(x_offset - range_, x_offset + range_, mu, sigma)[2]


def relu6_skewness(mu: float = 0.0, sigma: float = 1.0) -> float:
    """Skewness of ReLU6(x) = clip(x, 0, 6) for x ~ N(μ, σ²): hardtanh shifted by 3 along x and y with range 3.

    Example:
        >>> round(relu6_skewness(), 4)
        1.6406
    """
    return hardtanh_skewness(3.0, 3.0, 3.0, mu, sigma)


def measure_hardtanh_skewness(x_offset: float = 0.0, y_offset: float = 0.0, range_: float = 1.0,
                              mu: float = 0.0, sigma: float = 1.0, n: int = 200_000, replicates: int = 20,
                              rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Check:
    """Sample the shifted hardtanh's output in ``replicates`` independent groups, take each group's sample
    skewness (``scipy.stats.skew(bias=False)``), and check their mean against :func:`hardtanh_skewness`;
    stderr from the spread of the groups (each skewness is consistent, with O(1/group size) bias).

    Example:
        >>> measure_hardtanh_skewness(x_offset=0.5, n=40_000, rng=np.random.default_rng(0)).agrees
        True
    """
    r = int_at_least("replicates", replicates, 2)
    per = int_at_least("n", n, 2 * r) // r
    x = as_generator(rng).normal(float(mu), float(sigma), (r, per))
    y = np.clip(x - float(x_offset), -float(range_), float(range_)) + float(y_offset)
    name = f"hardtanh skewness (x_offset {x_offset:g}, y_offset {y_offset:g}, range {range_:g})"
    return mean_check(name, hardtanh_skewness(x_offset, y_offset, range_, mu, sigma),
                      stats.skew(y, axis=1, bias=False), z)


def binary_dot_plus_share(k: int, p_w: float = 0.5, p_x: float = 0.5) -> float:
    """P(sign(s) = +1) = P(s >= 0) for s = Σ_{i=1}^K w_i·x_i, binary w and x with P(+1) = p_w, p_x.

    s = 2N - K with N ~ Binomial(K, q), q = p_w·p_x + (1 - p_w)(1 - p_x). With zero-centred weights
    (p_w = 1/2) q = 1/2 whatever p_x is: an unbalanced binary input (Kim et al.'s shifted threshold makes
    P(x = +1) far from 1/2) gives a *balanced* pre-activation after the next binary layer, which is why the
    shift has to be applied at every binary activation, not once. (For even K, s = 0 has positive probability
    and sign(0) = +1 adds it to the +1 share: 1/2 + P(s = 0)/2.)

    Example:
        >>> binary_dot_plus_share(9, p_w=0.5, p_x=0.1), binary_dot_plus_share(9)
        (0.5, 0.5)
        >>> round(binary_dot_plus_share(9, p_w=0.7, p_x=0.1), 4)
        0.1553
    """
    k = int_at_least("k", k)
    q = probability("p_w", p_w) * probability("p_x", p_x) + (1.0 - p_w) * (1.0 - p_x)
    return float(stats.binom.sf(math.ceil(k / 2) - 1, k, q))


def measure_binary_dot_plus_share(k: int, p_w: float = 0.5, p_x: float = 0.5, n: int = 100_000,
                                  rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Check:
    """Draw n binary dot products with P(w = +1) = p_w, P(x = +1) = p_x; check the share of s >= 0.

    Example:
        >>> measure_binary_dot_plus_share(8, p_w=0.5, p_x=0.1, n=20_000, rng=np.random.default_rng(0)).agrees
        True
    """
    k = int_at_least("k", k)
    rng = as_generator(rng)
    shape = (int_at_least("n", n, 2), k)
    w = np.where(rng.random(shape) < probability("p_w", p_w), 1.0, -1.0)
    x = np.where(rng.random(shape) < probability("p_x", p_x), 1.0, -1.0)
    return fraction_check(f"share of sign(w·x) = +1 (K={k}, p_w={p_w}, p_x={p_x})",
                          binary_dot_plus_share(k, p_w, p_x), np.sum(w * x, axis=1) >= 0, z)


def leaky_relu_bn_sign_fraction(slope: float) -> float:
    """Share of +1 after LeakyReLU (negative slope a), BatchNorm and sign, for x ~ N(0, σ²) (Kim et al. 2021, 4).

    y = max(x, 0) + a·min(x, 0) has mean m = (1 - a)·σ/sqrt(2π); BatchNorm centres at m and sign keeps y >= m. For
    0 <= a <= 1, m >= 0 and y >= m iff x >= m, so the share is Φ(-(1 - a)/sqrt(2π)) (σ cancels): 34.5% for ReLU (a
    = 0, Φ(-1/sqrt(2π))), 1/2 for the identity (a = 1) — LeakyReLU "scales down the negative values only so that
    the mean increases while the median does not change", the same unbalancing as a shifted threshold. For a > 1,
    m < 0 and y >= m iff x >= m/a: Φ((a - 1)/(a·sqrt(2π))).

    Example:
        >>> round(leaky_relu_bn_sign_fraction(0.0), 4), leaky_relu_bn_sign_fraction(1.0)
        (0.345, 0.5)
    """
    a = float(slope)
    if not a >= 0:
        raise ValueError(f"leaky_relu_bn_sign_fraction: slope must be >= 0, got {slope!r}")
    if a <= 1.0:
        return float(stats.norm.cdf(-(1.0 - a) / math.sqrt(2.0 * math.pi)))
    return float(stats.norm.cdf((a - 1.0) / (a * math.sqrt(2.0 * math.pi))))


def measure_leaky_relu_bn_sign_fraction(slope: float, n: int = 200_000, sigma: float = 1.0,
                                        rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Check:
    """Draw x ~ N(0, σ²), apply LeakyReLU, normalise with the sample's own mean and std (as BatchNorm does) and
    count +1; stderr by the delta method (the threshold comes from the same sample).

    Example:
        >>> measure_leaky_relu_bn_sign_fraction(0.25, n=50_000, rng=np.random.default_rng(0)).agrees
        True
    """
    predicted = leaky_relu_bn_sign_fraction(slope)
    x = as_generator(rng).normal(0.0, float(sigma), int_at_least("n", n, 2))
    y = np.where(x >= 0, x, float(slope) * x)
    return _normalized_share_check(f"LeakyReLU(a={slope:g}) -> BN -> sign share of +1", predicted, y, 0.0, z)
