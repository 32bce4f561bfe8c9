"""Li & Partovi Nia 2020, "Random Bias Initialization Improves Quantized Training": active shares in closed form.

Which hyperplanes a data point activates, and which data a hyperplane sees, for ReLU and htanh, with and without
a random bias b ~ U[-λ, λ]. :mod:`minibnn.theory.geometry` measures the same shares on given weights and data.

Example:
    >>> float(hyperplane_data_share("relu", 1.0))
    0.5
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from scipy import integrate, special, stats

from .. import _checks
from .check import (DEFAULT_Z, WHO, ArrayLike, Check, as_generator, draw_weights, fraction_check, int_at_least,
                    positive)


#
# A hyperplane (w, b) is *active* on a data point x when the activation passes a gradient there:
#   ReLU: w·x + b > 0,      htanh: |w·x + b| <= 1.
# Data x ~ N(0, I_n). Weights: 'gaussian' N(0, std²) per coordinate, 'uniform' U[-√3·std, √3·std] per
# coordinate, or 'sphere' (the paper's unit-norm assumption: a uniformly random unit vector). Bias b = 0
# (lam = 0) or b ~ U[-λ, λ].

_ACTIVATIONS = ("relu", "htanh")
_WEIGHTS = ("gaussian", "uniform", "sphere")


def _activation(name: str) -> str:
    return _checks.choice(WHO, "activation", name, _ACTIVATIONS)


def _lam(lam: float) -> float:
    """The half-width λ of the bias range U[-λ, λ], >= 0."""
    return _checks.real(WHO, "lam", lam, minimum=0.0)


def _active(activation: str, c: np.ndarray) -> np.ndarray:
    return c > 0 if activation == "relu" else np.abs(c) <= 1.0


def _bias_averaged_share(activation: str, c: np.ndarray, lam: float) -> np.ndarray:
    """P_b(active | w·x = c) for b ~ U[-λ, λ] (b = 0 when λ = 0): piecewise linear in c."""
    c = np.asarray(c, dtype=np.float64)
    if lam == 0:
        return _active(activation, c).astype(np.float64)
    with np.errstate(over="ignore"):          # λ ~ 1e-308: (c + λ)/2λ overflows to ±inf, clipped to 0 or 1
        if activation == "relu":
            return np.clip((c + lam) / (2 * lam), 0.0, 1.0)
        overlap = np.minimum(1.0 - c, lam) - np.maximum(-1.0 - c, -lam)
        return np.clip(overlap, 0.0, None) / (2 * lam)


def _psi(y: ArrayLike) -> np.ndarray:
    """Ψ(y) = ∫_{-∞}^{y} Φ = y·Φ(y) + φ(y)."""
    y = np.asarray(y, dtype=np.float64)
    return y * special.ndtr(y) + np.exp(-0.5 * y * y) / math.sqrt(2 * math.pi)


def _gaussian_share(activation: str, scale: ArrayLike, lam: float) -> np.ndarray:
    """E_{c ~ N(0, scale²)} P_b(active | c) in closed form.

    ReLU: 1/2 (c + b is symmetric about 0). htanh, λ = 0: 2Φ(1/scale) - 1; λ > 0:
    (scale/2λ)·[Ψ((1+λ)/scale) - Ψ((1-λ)/scale) - Ψ((λ-1)/scale) + Ψ((-1-λ)/scale)], from
    ∫_{-λ}^{λ} Φ((a - b)/s) db = s·[Ψ((a+λ)/s) - Ψ((a-λ)/s)].
    """
    s = np.asarray(scale, dtype=np.float64)
    if activation == "relu":
        return np.full(s.shape, 0.5)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):     # the unused branch may overflow
        zero_bias = 2.0 * stats.norm.cdf(1.0 / s) - 1.0
        h = lam / s
        # λ << s: the bracket cancels; its Taylor expansion 2Φ(1/s) - 1 - (h²/3)(1/s)φ(1/s) is exact to O(h⁴)
        small = zero_bias - h * h / 3.0 * (1.0 / s) * stats.norm.pdf(1.0 / s)
        full = s / (2 * lam) * (_psi((1 + lam) / s) - _psi((1 - lam) / s) - _psi((lam - 1) / s)
                                + _psi((-1 - lam) / s)) if lam > 0 else zero_bias
        out = np.where(h < 1e-4, small, full)
    return np.where(s == 0, _bias_averaged_share(activation, np.zeros_like(s), lam), out)


def hyperplane_data_share(activation: str, w_norm: ArrayLike, bias: ArrayLike = 0.0) -> np.ndarray:
    """Share of data x ~ N(0, I) on which the hyperplane (w, b) is active (Li & Partovi Nia 2020, sec. 3).

    w·x + b ~ N(b, |w|²) for any w, so the share depends on |w| and b only:
        ReLU: Φ(b/|w|)        htanh: Φ((1 - b)/|w|) - Φ((-1 - b)/|w|)
    With b = 0 every ReLU hyperplane sees exactly half the data and every unit-norm htanh hyperplane
    2Φ(1) - 1 ≈ 68.3% ("hyperplane equality"); a random bias makes the share depend on b, which is the
    inequality the paper trades for data equality.

    Example:
        >>> float(hyperplane_data_share("relu", 1.0)), round(float(hyperplane_data_share("htanh", 1.0)), 4)
        (0.5, 0.6827)
    """
    activation = _activation(activation)
    r = np.asarray(w_norm, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    if np.any(r <= 0):
        raise ValueError(f"w_norm must be > 0, got {r}")
    if activation == "relu":
        return stats.norm.cdf(b / r)
    return stats.norm.cdf((1.0 - b) / r) - stats.norm.cdf((-1.0 - b) / r)


def _sphere_average(fn, n: int, r: float, kinks: Sequence[float]) -> float:
    """E fn(r·T) for T = w·x/|x|, w uniform on the unit sphere of R^n: T = cos θ, θ with density ∝ sin^{n-2}θ."""
    if n == 1:
        return 0.5 * float(fn(r) + fn(-r))
    log_norm = math.log(math.sqrt(math.pi)) + special.gammaln((n - 1) / 2) - special.gammaln(n / 2)

    def integrand(theta: float) -> float:
        return float(fn(r * math.cos(theta))) * math.exp((n - 2) * math.log(max(math.sin(theta), 1e-300)) - log_norm)
    points = sorted({math.pi / 2} | {math.acos(k / r) for k in kinks if r > 0 and abs(k) < r})
    return float(integrate.quad(integrand, 0.0, math.pi, points=points, limit=200, epsabs=1e-12, epsrel=1e-10)[0])


def datum_hyperplane_share(activation: str, x_norm: float, n: int, lam: float = 0.0, weights: str = "sphere",
                           weight_std: float = 1.0) -> float:
    """Expected share of hyperplanes active on one data point x, as a function of |x| (Li & Partovi Nia 2020).

    ReLU: exactly 1/2 for every x ≠ 0 and every λ (w·x + b is symmetric about 0): "data equality".
    htanh, with c = w·x:
        'gaussian' weights: c ~ N(0, (std·|x|)²), closed form (see _gaussian_share).
        'sphere' (unit norm, the paper's assumption): c = |x|·T, a 1-D integral over T's density
            ∝ (1 - t²)^{(n-3)/2}. With λ = 0 every hyperplane is active when |x| <= 1 and fewer as |x| grows
            ("data inequality"); with λ >= |x| + 1 the share is exactly 1/λ — the paper's
            "if λ > max|x| + 1 all data points activate approximately the same number of hyper-planes" holds
            exactly for unit-norm weights, since [-1 - c, 1 - c] ⊂ [-λ, λ] for every |c| <= |x|.
    'uniform' weights are not offered here: the share then depends on the direction of x, not only on |x|
    (the overall average is in :func:`expected_active_share`).

    Example:
        >>> datum_hyperplane_share("htanh", 0.5, n=8), datum_hyperplane_share("htanh", 2.0, n=8, lam=3.0)
        (1.0, 0.3333333333333333)
    """
    activation, lam = _activation(activation), _lam(lam)
    n, r = int_at_least("n", n), float(x_norm)
    if r < 0:
        raise ValueError(f"x_norm must be >= 0, got {r}")
    if weights == "gaussian":
        return float(_gaussian_share(activation, float(weight_std) * r, lam))
    if weights == "sphere":
        if activation == "htanh" and r + lam <= 1.0:     # [-λ, λ] ⊂ [-1 - c, 1 - c] for every |c| <= r
            return 1.0
        if activation == "htanh" and lam >= r + 1.0:     # [-1 - c, 1 - c] ⊂ [-λ, λ] for every |c| <= r
            return 1.0 / lam
        kinks = (-lam, lam) if activation == "relu" else (-1 - lam, -1 + lam, 1 - lam, 1 + lam)
        return _sphere_average(lambda c: _bias_averaged_share(activation, c, lam), n, r, kinks)
    raise ValueError(f"weights must be 'gaussian' or 'sphere' for a per-datum share, got {weights!r}")


def _uniform_projection_cf(omega: np.ndarray, n: int, half_width: float) -> np.ndarray:
    """Characteristic function of c = Σ_i u_i x_i, u_i ~ U[-a, a], x_i ~ N(0, 1): [√(π/2)·erf(aω/√2)/(aω)]^n."""
    t = half_width * np.asarray(omega, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        one = np.where(t == 0, 1.0, math.sqrt(math.pi / 2) * special.erf(t / math.sqrt(2)) / t)
    return one ** n


def _gauss_legendre(fn, a: float, b: float, panel: float, nodes: int = 16, graded: bool = False) -> float:
    """∫_a^b fn by composite Gauss-Legendre on panels no longer than ``panel`` (fn takes arrays).

    graded=True adds geometrically shrinking panels towards a, for integrands with structure near a.
    """
    count = max(1, int(math.ceil((b - a) / panel)))
    x, w = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(a, b, count + 1)
    if graded:
        edges = np.unique(np.concatenate([edges, a + np.geomspace(1e-9 * (b - a), b - a, 300)]))
    half = 0.5 * (edges[1:] - edges[:-1])
    points = (edges[:-1] + half)[:, None] + half[:, None] * x[None, :]
    return float(np.sum(half[:, None] * w[None, :] * fn(points)))


def _fourier_tail(f, freq: float, start: float, kind: str) -> float:
    """∫_start^∞ f(ω)·cos(freq·ω) (kind 'cos') or ·sin(freq·ω) ('sin') dω for smooth, decaying f.

    QUADPACK's Fourier rule (cycle sums with extrapolation) where freq·ω is large; plain adaptive quadrature
    over the first ten radians, where the weight barely oscillates.
    """
    def weighted(w: float) -> float:
        return f(w) * (math.cos(freq * w) if kind == "cos" else math.sin(freq * w))
    if freq == 0:
        return integrate.quad(weighted, start, np.inf, epsabs=1e-14, limit=200)[0]
    slow_end = max(start, 10.0 / freq)
    head = integrate.quad(weighted, start, slow_end, epsabs=1e-14, limit=400)[0] if slow_end > start else 0.0
    return head + integrate.quad(f, slow_end, np.inf, weight=kind, wvar=freq, epsabs=1e-14, limlst=200)[0]


def _htanh_share_fourier(cf, lam: float) -> float:
    """P(|c + b| <= 1) for symmetric c with real characteristic function cf, b ~ U[-λ, λ] (Gil-Pelaez).

    P(|Y| <= 1) = (2/π)∫_0^∞ sin(ω)/ω·cf_Y(ω) dω, cf_Y = cf·sinc, sinc(ω) = sin(λω)/(λω); cf takes arrays.
    [0, A] by composite Gauss-Legendre; on [A, ∞) the oscillating factor goes to QUADPACK's Fourier rule:
    sin(ω) against cf·sinc/ω when λ < 10⁻³ (sinc is then nearly constant over a period), else
    sin(ω)sin(λω) = [cos((1-λ)ω) - cos((1+λ)ω)]/2 against cf/(2λω²).
    """
    split = 400.0 * math.pi

    def sinc(w):
        return np.sinc(lam * np.asarray(w) / math.pi)          # numpy's sinc is sin(πx)/(πx)

    def head(w):
        return np.sinc(w / math.pi) * cf(w) * sinc(w)
    total = _gauss_legendre(head, 0.0, split, panel=math.pi / (8.0 * (1.0 + lam)))
    if lam < 1e-3:
        total += _fourier_tail(lambda w: float(cf(w) * sinc(w)) / w, 1.0, split, "sin")
    else:
        def tail(w: float) -> float:
            return float(cf(w)) / (2.0 * lam * w * w)
        total += _fourier_tail(tail, abs(1.0 - lam), split, "cos") - _fourier_tail(tail, 1.0 + lam, split, "cos")
    return float(2.0 / math.pi * total)


def expected_active_share(activation: str, n: int, lam: float = 0.0, weights: str = "gaussian",
                          weight_std: float = 1.0) -> float:
    """P(active) over x ~ N(0, I_n), random weights and bias (Li & Partovi Nia 2020, secs. 3-4).

    This is both the mean share of hyperplanes per data point and the mean share of data per hyperplane.
    ReLU: 1/2. htanh: given w, c = w·x ~ N(0, |w|²), so
        'sphere':   |w| = 1, closed form (_gaussian_share with scale 1)
        'gaussian': |w| = std·χ_n, a 1-D integral of the closed form against the χ_n density
        'uniform':  |w| has no simple law; a 1-D Fourier integral (Gil-Pelaez) of the characteristic function
                    of c, [√(π/2)·erf(aω/√2)/(aω)]^n with a = √3·std, times sin(λω)/(λω) for the bias.

    Example:
        >>> round(expected_active_share("htanh", 4, lam=0.0, weights="sphere"), 4)
        0.6827
    """
    activation, lam = _activation(activation), _lam(lam)
    n, std = int_at_least("n", n), positive("weight_std", weight_std)
    if activation == "relu":
        return 0.5
    if weights == "sphere":
        return float(_gaussian_share(activation, 1.0, lam))
    if weights == "gaussian":
        chi = stats.chi(n)
        lo, hi = chi.ppf(1e-16), chi.isf(1e-16)
        return _gauss_legendre(lambda rho: _gaussian_share(activation, std * rho, lam) * chi.pdf(rho),
                               lo, hi, panel=(hi - lo) / 200, graded=True)
    if weights == "uniform":
        half = math.sqrt(3.0) * std
        return _htanh_share_fourier(lambda w: _uniform_projection_cf(w, n, half), lam)
    raise ValueError(f"weights must be one of {_WEIGHTS}, got {weights!r}")


def _draw_hyperplanes(weights: str, n: int, count: int, std: float, rng: np.random.Generator) -> np.ndarray:
    if weights == "sphere":
        w = rng.standard_normal((count, n))
        return w / np.linalg.norm(w, axis=1, keepdims=True)
    if weights in ("gaussian", "uniform"):
        return draw_weights(weights, std * std, (count, n), rng)
    raise ValueError(f"weights must be one of {_WEIGHTS}, got {weights!r}")


def measure_hyperplane_data_share(activation: str, w: np.ndarray, bias: float = 0.0, n_data: int = 100_000,
                                  rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Check:
    """One hyperplane (w, b) against n_data points x ~ N(0, I): the share on which it is active.

    Example:
        >>> w = np.random.default_rng(0).uniform(-1, 1, size=5)
        >>> measure_hyperplane_data_share("htanh", w, 0.3, n_data=20_000, rng=np.random.default_rng(1)).agrees
        True
    """
    activation = _activation(activation)
    w = np.asarray(w, dtype=np.float64).ravel()
    x = as_generator(rng).standard_normal((int_at_least("n_data", n_data, 2), w.size))
    c = x @ w + float(bias)
    predicted = float(hyperplane_data_share(activation, float(np.linalg.norm(w)), bias))
    return fraction_check(f"{activation} share of data active on one hyperplane", predicted, _active(activation, c), z)


def measure_datum_hyperplane_share(activation: str, x: np.ndarray, lam: float = 0.0, weights: str = "sphere",
                                   weight_std: float = 1.0, n_planes: int = 100_000,
                                   rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Check:
    """One data point x against n_planes random hyperplanes (weights as given, b ~ U[-λ, λ]).

    Example:
        >>> x = np.random.default_rng(0).normal(size=6)
        >>> measure_datum_hyperplane_share("htanh", x, 1.0, n_planes=20_000, rng=np.random.default_rng(1)).agrees
        True
    """
    activation, lam = _activation(activation), _lam(lam)
    x = np.asarray(x, dtype=np.float64).ravel()
    rng = as_generator(rng)
    count = int_at_least("n_planes", n_planes, 2)
    w = _draw_hyperplanes(weights, x.size, count, float(weight_std), rng)
    c = w @ x + rng.uniform(-lam, lam, count)
    predicted = datum_hyperplane_share(activation, float(np.linalg.norm(x)), x.size, lam, weights, weight_std)
    return fraction_check(f"{activation} share of hyperplanes active on one datum (λ={lam:g})", predicted,
                           _active(activation, c), z)


def measure_expected_active_share(activation: str, n: int, lam: float = 0.0, weights: str = "gaussian",
                                  weight_std: float = 1.0, n_pairs: int = 100_000,
                                  rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Check:
    """n_pairs independent (x, w, b) triples; the share of active pairs (binomial stderr).

    Example:
        >>> measure_expected_active_share("htanh", 3, 2.0, "uniform", n_pairs=20_000,
        ...                               rng=np.random.default_rng(0)).agrees
        True
    """
    activation, lam = _activation(activation), _lam(lam)
    n = int_at_least("n", n)
    rng = as_generator(rng)
    count = int_at_least("n_pairs", n_pairs, 2)
    w = _draw_hyperplanes(weights, n, count, float(weight_std), rng)
    c = np.einsum("ij,ij->i", w, rng.standard_normal((count, n))) + rng.uniform(-lam, lam, count)
    return fraction_check(f"{activation} expected active share ({weights} weights, λ={lam:g})",
                           expected_active_share(activation, n, lam, weights, weight_std), _active(activation, c), z)
