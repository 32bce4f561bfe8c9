"""theory: the closed forms of the papers minibnn is built from, each with a Monte-Carlo twin that measures it.

Every ``formula(...)`` returns the predicted value; every ``measure_...(...)`` simulates the same situation in
NumPy (seeded with ``numpy.random.default_rng``) and returns a :class:`Check`: the prediction, the measured
value, its standard error and the confidence interval, with ``.agrees`` telling whether the prediction lies in
the interval. A formula that is right agrees at any sample size; a wrong one is rejected once the sample is
large enough. Where a paper's printed formula is garbled or measurably wrong, the docstring says so and gives
the corrected formula with its derivation; the printed form is kept as ``..._as_printed`` so a test can show
the check rejecting it. The ``..._network`` twins run real minibnn networks instead of a NumPy re-derivation
(BinaryLinear, SteSign, BatchNorm1d, the Tensor engine's backward, read by a probe), so they check the engine
and the formula together.

Papers (texts in shared/papers/):
    Sari, Belbahri & Partovi Nia 2019, "A Study on Binary Neural Networks Initialization"
    Darabi, Belbahri, Courbariaux & Partovi Nia 2018, "BNN+: Improved Binary Network Training"
    Kim, Park, Lee & Kim 2021, "Improving Accuracy of BNNs using Unbalanced Activation Distribution"
    Li & Partovi Nia 2020, "Random Bias Initialization Improves Quantized Training"

Conventions: sign(0) = +1 everywhere (the project's convention); a network has widths (K_0, ..., K_L), layer
l = 1..L has weights W^l of shape (K_{l-1}, K_l), pre-activation s^l = a^{l-1} W^l and gradient
g^l = dL/ds^l; arrays "per layer" are indexed l - 1.

Example:
    >>> import numpy as np
    >>> bernoulli_variance(0.3)
    0.84
    >>> c = measure_bernoulli(0.3, n=20_000, rng=np.random.default_rng(0))[1]
    >>> c.agrees
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import integrate, optimize, special, stats

from .init import ConstantVariance
from .layers import BatchNorm1d
from .module import Sequential
from .probes import ActivationRecorder
from .quantized import BinaryLinear
from .quantizers import SteSign
from .tensor import Tensor

ArrayLike = Union[float, Sequence[float], np.ndarray]

#: default half-width of a confidence interval in standard errors: two-sided alpha = 1e-4.
DEFAULT_Z = float(stats.norm.isf(0.5e-4))


# ---------------------------------------------------------------------------------------------------------
# The result of a measured twin
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """A prediction next to its Monte-Carlo measurement: measured ± z·stderr must contain predicted.

    Attributes:
        name: what was measured.
        predicted: the closed form's value.
        measured: the Monte-Carlo estimate.
        stderr: its standard error (from the sample: binomial, sample variance, fourth moment, or the spread
            of independent replicates, as each twin's docstring says).
        n: the number of independent samples (or replicates) behind ``measured``.
        z: the half-width of the confidence interval in standard errors (two-sided alpha 1e-4 by default;
            pass a larger z when many checks run together, e.g. Bonferroni).

    Example:
        >>> c = Check("mean", predicted=0.0, measured=0.01, stderr=0.005, n=40_000)
        >>> round(c.ci_low, 4), round(c.ci_high, 4), c.agrees, c.agrees_at(1.0)
        (-0.0095, 0.0295, True, False)
    """

    name: str
    predicted: float
    measured: float
    stderr: float
    n: int
    z: float = DEFAULT_Z

    @property
    def ci_low(self) -> float:
        return self.measured - self.z * self.stderr

    @property
    def ci_high(self) -> float:
        return self.measured + self.z * self.stderr

    @property
    def deviation(self) -> float:
        """(measured - predicted) / stderr: how many standard errors apart the two are."""
        diff = self.measured - self.predicted
        if self.stderr > 0:
            return diff / self.stderr
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)

    def agrees_at(self, z: float) -> bool:
        """True if |measured - predicted| <= z·stderr."""
        return bool(abs(self.measured - self.predicted) <= z * self.stderr)

    @property
    def agrees(self) -> bool:
        return self.agrees_at(self.z)

    def __repr__(self) -> str:
        verdict = "agrees" if self.agrees else "DISAGREES"
        return (f"Check({self.name}: predicted {self.predicted:.6g}, measured {self.measured:.6g} "
                f"± {self.stderr:.2g} (CI [{self.ci_low:.6g}, {self.ci_high:.6g}] at z={self.z:.2f}, "
                f"n={self.n}, {self.deviation:+.1f} se) {verdict})")


def _mean_check(name: str, predicted: float, samples: np.ndarray, z: float) -> Check:
    """Check a predicted mean against iid samples: stderr = sample std / sqrt(n)."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    n = samples.size
    return Check(name, float(predicted), float(samples.mean()), float(samples.std(ddof=1) / math.sqrt(n)), n, z)


def _variance_check(name: str, predicted: float, samples: np.ndarray, z: float) -> Check:
    """Check a predicted variance against iid samples, by the pairwise estimator.

    measured = mean of d_i = (x_{2i} - x_{2i+1})²/2 over n/2 disjoint pairs: each d_i is unbiased for σ², and
    they are iid, so stderr = sd(d)/sqrt(n/2), with Var(d) = (μ4 + σ⁴)/2 estimated through the sample's fourth
    moment. (The usual sample variance S² has first-order error sqrt((μ4 - σ⁴)/n), which vanishes for a
    symmetric two-valued variable — a ±1 sign with p = 1/2 — where S² - σ² is a scaled χ²₁, not normal; the
    pairwise mean keeps a normal limit in every case, at the price of a wider interval.)
    """
    samples = np.asarray(samples, dtype=np.float64).ravel()
    half = samples.size // 2
    d = 0.5 * (samples[:half] - samples[half:2 * half]) ** 2
    return Check(name, float(predicted), float(d.mean()), float(d.std(ddof=1) / math.sqrt(half)), half, z)


def _fraction_check(name: str, predicted: float, hits: np.ndarray, z: float) -> Check:
    """Check a predicted probability against a 0/1 sample: binomial stderr sqrt(p̂(1-p̂)/n)."""
    hits = np.asarray(hits, dtype=np.float64).ravel()
    n = hits.size
    p = float(hits.mean())
    return Check(name, float(predicted), p, math.sqrt(p * (1.0 - p) / n), n, z)


def _rng(rng: Optional[np.random.Generator]) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def _probability(name: str, p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    return p


def _positive_int(name: str, k, minimum: int = 1) -> int:
    if not isinstance(k, (int, np.integer)) or k < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {k!r}")
    return int(k)


def _widths(widths: Sequence[int]) -> Tuple[int, ...]:
    widths = tuple(widths)
    if len(widths) < 2:
        raise ValueError(f"widths must list K_0, ..., K_L with L >= 1 layers, got {widths!r}")
    for i, k in enumerate(widths):
        _positive_int(f"widths[{i}]", k)
    return widths


def _per_layer(name: str, value: ArrayLike, n_layers: int) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n_layers,)) if np.ndim(value) == 0 \
        else np.asarray(value, dtype=np.float64)
    if arr.shape != (n_layers,):
        raise ValueError(f"{name} must be a scalar or one value per layer ({n_layers}), got shape {arr.shape}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {arr}")
    return arr


def _sign(x: np.ndarray) -> np.ndarray:
    """sign with sign(0) = +1, as float64."""
    return np.where(x >= 0, 1.0, -1.0)


def _down_from_top(factors: np.ndarray, top_var: float) -> np.ndarray:
    """A variance carried down from the top, layer by layer: V(g^l) = V(g^L)·Π_{m=l}^{L-1} f_m for l = 1..L.

    ``factors`` holds f_1, ..., f_{L-1} (f_m multiplies the variance from layer m+1 to layer m); the last entry
    of the result is V(g^L) itself (the empty product).
    """
    tail = np.cumprod(factors[::-1])[::-1]         # Π_{m=l}^{L-1}, l = 1..L-1
    return float(top_var) * np.concatenate([tail, [1.0]])


# ---------------------------------------------------------------------------------------------------------
# Sari, Belbahri & Partovi Nia 2019 — binary moments, variance through depth, BatchNorm, Theorem 1, eq. 2
# ---------------------------------------------------------------------------------------------------------

def bernoulli_mean(p: float) -> float:
    """E(x̃) = 2p - 1 for x̃ = 2·Bernoulli(p) - 1 ∈ {-1, +1} (Sari et al. 2019, section 2).

    Example:
        >>> bernoulli_mean(0.75)
        0.5
    """
    return 2.0 * _probability("p", p) - 1.0


def bernoulli_variance(p: float) -> float:
    """V(x̃) = 4p(1 - p) for x̃ = 2·Bernoulli(p) - 1 (Sari et al. 2019, section 2).

    Derivation: x̃² = 1, so V = 1 - (2p - 1)² = 4p(1 - p).

    Example:
        >>> bernoulli_variance(0.5)
        1.0
    """
    p = _probability("p", p)
    return 4.0 * p * (1.0 - p)


def measure_bernoulli(p: float, n: int = 100_000, rng: Optional[np.random.Generator] = None,
                      z: float = DEFAULT_Z) -> Tuple[Check, Check]:
    """Draw n signs with P(+1) = p; return (mean check, variance check).

    Example:
        >>> m, v = measure_bernoulli(0.2, n=10_000, rng=np.random.default_rng(1))
        >>> m.predicted, round(v.predicted, 2), m.agrees and v.agrees
        (-0.6, 0.64, True)
    """
    p = _probability("p", p)
    x = np.where(_rng(rng).random(_positive_int("n", n, 2)) < p, 1.0, -1.0)
    return (_mean_check("transformed Bernoulli mean 2p-1", bernoulli_mean(p), x, z),
            _variance_check("transformed Bernoulli variance 4p(1-p)", bernoulli_variance(p), x, z))


def binary_dot_mean(k: int, p_w: float = 0.5, p_x: float = 0.5) -> float:
    """E(s) = K(2p_w - 1)(2p_x - 1) for s = Σ_{k=1}^K w_k x_k, independent signs (Sari et al. 2019, sec. 2).

    Each product w_k x_k is a sign with mean E(w)E(x) = (2p_w - 1)(2p_x - 1).

    Example:
        >>> binary_dot_mean(10, 0.75, 0.25)
        -2.5
    """
    return _positive_int("k", k) * bernoulli_mean(p_w) * bernoulli_mean(p_x)


def binary_dot_variance(k: int, p_w: float = 0.5, p_x: float = 0.5) -> float:
    """V(s) = K·(1 - (2p_w - 1)²(2p_x - 1)²) for s = Σ_{k=1}^K w_k x_k (Sari et al. 2019, sec. 2).

    The paper states the symmetric case (p = 1/2: V = K). For p ≠ 1/2 each product w_k x_k is itself a sign,
    so V(w_k x_k) = 1 - E(w)²E(x)², and the K independent terms add. Note this is *not* K·V(w)·V(x) (the
    Glorot-style product, right only when a mean is zero): e.g. p_w = p_x = 0.9 gives K·0.59, not K·0.1296.

    Example:
        >>> binary_dot_variance(64)
        64.0
        >>> round(binary_dot_variance(10, 0.9, 0.9), 4)
        5.904
    """
    return _positive_int("k", k) * (1.0 - (bernoulli_mean(p_w) * bernoulli_mean(p_x)) ** 2)


def measure_binary_dot(k: int, p_w: float = 0.5, p_x: float = 0.5, n: int = 50_000,
                       rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Tuple[Check, Check]:
    """Draw n dot products of K random signs (P(w=+1) = p_w, P(x=+1) = p_x); return (mean, variance) checks.

    Example:
        >>> m, v = measure_binary_dot(16, 0.7, 0.4, n=5_000, rng=np.random.default_rng(2))
        >>> m.agrees and v.agrees
        True
    """
    k = _positive_int("k", k)
    p_w, p_x = _probability("p_w", p_w), _probability("p_x", p_x)
    rng = _rng(rng)
    n = _positive_int("n", n, 2)
    w = np.where(rng.random((n, k)) < p_w, 1, -1).astype(np.int8)
    x = np.where(rng.random((n, k)) < p_x, 1, -1).astype(np.int8)
    s = (w * x).sum(axis=1, dtype=np.int64)
    return (_mean_check(f"binary dot mean (K={k})", binary_dot_mean(k, p_w, p_x), s, z),
            _variance_check(f"binary dot variance (K={k})", binary_dot_variance(k, p_w, p_x), s, z))


def preactivation_variance(widths: Sequence[int], weight_var: ArrayLike, input_var: float = 1.0) -> np.ndarray:
    """V(s^l) = V(x)·Π_{l'=1}^{l} K_{l'-1}·V(w^{l'}) for l = 1..L, without BatchNorm (Sari et al. 2019, sec. 2).

    Assumptions (the paper's, after Glorot & Bengio 2010): identity activation; inputs and weights independent,
    centred; weights i.i.d. within a layer. Then s^l_k = Σ_{k'=1}^{K_{l-1}} w^l_{k'k} s^{l-1}_{k'} has
    V(s^l) = K_{l-1}·V(w^l)·V(s^{l-1}) exactly (cross terms vanish because E(w) = 0), and the product follows.

    Correction: the text prints Π_{l'=1}^{l-1} K_{l'}·V(w^{l'}), pairing K_{l'} with w^{l'}. Under the paper's
    own convention W^l ∈ R^{K_{l-1}×K_l} the fan-in of layer l' is K_{l'-1}, and the first layer's factor
    K_0·V(w^1) is missing; measured, the printed form is off by exactly that (see
    :func:`preactivation_variance_as_printed`; the tests reject it). The gradient formula of the same section
    is printed correctly (:func:`gradient_variance`).

    Args:
        widths: (K_0, ..., K_L).
        weight_var: V(w^l), a scalar or one value per layer (binary weights ±1: 1).
        input_var: V(x).

    Returns:
        float64 array of length L: V(s^1), ..., V(s^L).

    Example:
        >>> preactivation_variance((4, 8, 2), 1.0)
        array([ 4., 32.])
    """
    widths = _widths(widths)
    v = _per_layer("weight_var", weight_var, len(widths) - 1)
    return float(input_var) * np.cumprod(np.asarray(widths[:-1], dtype=np.float64) * v)


def preactivation_variance_as_printed(widths: Sequence[int], weight_var: ArrayLike,
                                      input_var: float = 1.0) -> np.ndarray:
    """The forward-variance product exactly as printed in Sari et al. 2019: V(x)·Π_{l'=1}^{l-1} K_{l'}·V(w^{l'}).

    Kept to show that it is measurably wrong (see :func:`preactivation_variance`).

    Example:
        >>> preactivation_variance_as_printed((4, 8, 2), 1.0)
        array([1., 8.])
    """
    widths = _widths(widths)
    v = _per_layer("weight_var", weight_var, len(widths) - 1)
    factors = np.asarray(widths[1:], dtype=np.float64) * v
    return float(input_var) * np.concatenate([[1.0], np.cumprod(factors[:-1])])


def gradient_variance(widths: Sequence[int], weight_var: ArrayLike, top_var: float = 1.0) -> np.ndarray:
    """V(g^l) = V(g^L)·Π_{l'=l+1}^{L} K_{l'}·V(w^{l'}) for g^l = dL/ds^l, no BatchNorm (Sari et al. 2019, sec. 2).

    With identity activation g^l_k = Σ_{k'=1}^{K_{l+1}} w^{l+1}_{kk'} g^{l+1}_{k'}: the sum runs over the
    K_{l+1} neurons of the next layer (its fan-out), so V(g^l) = K_{l+1}·V(w^{l+1})·V(g^{l+1}). With binary
    weights (V(w) = 1) this is Theorem 1 without BatchNorm: V(g^L)·Π_{l'=l+1}^{L} K_{l'}.

    Args:
        widths: (K_0, ..., K_L).
        weight_var: V(w^l), scalar or one per layer.
        top_var: V(g^L), the variance of the gradient arriving at the last pre-activation.

    Returns:
        float64 array of length L: V(g^1), ..., V(g^L).

    Example:
        >>> gradient_variance((4, 8, 2), 1.0)
        array([2., 1.])
    """
    widths = _widths(widths)
    v = _per_layer("weight_var", weight_var, len(widths) - 1)
    return _down_from_top(np.asarray(widths[2:], dtype=np.float64) * v[1:], top_var)   # K_l·V(w^l), l = 2..L


def _draw_weights(kind: str, var: float, shape: Tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Centred weights of variance ``var``: 'gaussian' N(0, v), 'uniform' U[-√(3v), √(3v)], 'binary' ±√v."""
    if kind == "gaussian":
        return rng.normal(0.0, math.sqrt(var), shape)
    if kind == "uniform":
        half = math.sqrt(3.0 * var)
        return rng.uniform(-half, half, shape)
    if kind == "binary":
        return math.sqrt(var) * np.where(rng.random(shape) < 0.5, 1.0, -1.0)
    raise ValueError(f"weights must be 'gaussian', 'uniform' or 'binary', got {kind!r}")


def _replicate_checks(name: str, predicted: np.ndarray, per_replicate: np.ndarray, z: float) -> List[Check]:
    """One check per layer from an (n_replicates, L) array of per-replicate mean squares."""
    return [_mean_check(f"{name}, layer {l + 1}", predicted[l], per_replicate[:, l], z)
            for l in range(per_replicate.shape[1])]


def measure_preactivation_variance(widths: Sequence[int], weight_var: ArrayLike, input_var: float = 1.0,
                                   weights: str = "binary", n_nets: int = 400, batch: int = 8,
                                   rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> List[Check]:
    """Measure V(s^l) on random linear networks (identity activation, no BatchNorm); one Check per layer.

    Each replicate draws fresh weights (``weights`` = 'binary', 'gaussian' or 'uniform', of the given
    variances) and a batch of Gaussian inputs of variance ``input_var``, and records mean_{b,k} (s^l_{bk})².
    Since E(s^l) = 0 exactly, its expectation is V(s^l); replicates are independent, so the stderr is their
    standard deviation over sqrt(n_nets).

    Example:
        >>> cs = measure_preactivation_variance((8, 16, 4), 1.0, n_nets=200, rng=np.random.default_rng(0))
        >>> [c.predicted for c in cs], all(c.agrees for c in cs)
        ([8.0, 128.0], True)
    """
    widths = _widths(widths)
    n_layers = len(widths) - 1
    v = _per_layer("weight_var", weight_var, n_layers)
    rng = _rng(rng)
    r, b = _positive_int("n_nets", n_nets, 2), _positive_int("batch", batch)
    a = rng.normal(0.0, math.sqrt(float(input_var)), (r, b, widths[0]))
    out = np.empty((r, n_layers))
    for l in range(n_layers):
        a = a @ _draw_weights(weights, v[l], (r, widths[l], widths[l + 1]), rng)
        out[:, l] = np.mean(a * a, axis=(1, 2))
    return _replicate_checks("pre-activation variance", preactivation_variance(widths, v, input_var), out, z)


def measure_gradient_variance(widths: Sequence[int], weight_var: ArrayLike, top_var: float = 1.0,
                              weights: str = "binary", n_nets: int = 400, batch: int = 8,
                              rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> List[Check]:
    """Measure V(g^l) on random linear networks without BatchNorm; one Check per layer.

    The gradient at the top, g^L, is drawn N(0, top_var) independently of everything (the paper's assumption)
    and pushed down with g^l = g^{l+1}·(W^{l+1})ᵀ (identity activation, or a sign with the identity STE).
    Each replicate records mean_{b,k} (g^l_{bk})² for fresh weights and top gradients.

    Example:
        >>> cs = measure_gradient_variance((8, 16, 4), 1.0, n_nets=200, rng=np.random.default_rng(0))
        >>> [c.predicted for c in cs], all(c.agrees for c in cs)
        ([4.0, 1.0], True)
    """
    widths = _widths(widths)
    n_layers = len(widths) - 1
    v = _per_layer("weight_var", weight_var, n_layers)
    rng = _rng(rng)
    r, b = _positive_int("n_nets", n_nets, 2), _positive_int("batch", batch)
    g = rng.normal(0.0, math.sqrt(float(top_var)), (r, b, widths[-1]))
    out = np.empty((r, n_layers))
    out[:, -1] = np.mean(g * g, axis=(1, 2))
    for l in range(n_layers - 1, 0, -1):       # W^{l+1} has index l; it maps g^{l+1} to g^l
        w = _draw_weights(weights, v[l], (r, widths[l], widths[l + 1]), rng)
        g = g @ np.swapaxes(w, 1, 2)
        out[:, l - 1] = np.mean(g * g, axis=(1, 2))
    return _replicate_checks("gradient variance", gradient_variance(widths, v, top_var), out, z)


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
    b = _positive_int("batch_size", batch_size, 2)
    return (float(gamma) / float(std)) ** 2 * (b - 2) / b * float(upstream_var)


def bn_gradient_variance_as_printed(batch_size: int, gamma: float = 1.0, std: float = 1.0,
                                    upstream_var: float = 1.0, var_s_hat_sq: float = 2.0) -> float:
    """Sari et al. 2019, eq. 3 as printed: (γ/(Bσ̂))²·{B² + 2B - 1 + V(ŝ²)}·upstream_var.

    ``var_s_hat_sq`` is V(ŝ²) (2 for Gaussian pre-activations). Kept to show that it is measurably wrong at
    finite B (see :func:`bn_gradient_variance`).

    Example:
        >>> bn_gradient_variance_as_printed(8)
        1.265625
    """
    b = _positive_int("batch_size", batch_size, 2)
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
    rng = _rng(rng)
    _, s_hat, std = batchnorm_forward(s[:, None], gamma)
    g = rng.normal(0.0, math.sqrt(float(upstream_var)), (_positive_int("n_draws", n_draws, 2), s.size, 1))
    grad_s, _, _ = batchnorm_backward(g, np.broadcast_to(s_hat, g.shape), std, gamma, axis=1)
    predicted = bn_gradient_variance(s.size, gamma, float(std.ravel()[0]), upstream_var)
    return _mean_check(f"BatchNorm gradient variance (B={s.size})", predicted, np.mean(grad_s ** 2, axis=(1, 2)), z)


def theorem1_gradient_variance(widths: Sequence[int], batchnorm: bool, top_var: float = 1.0) -> np.ndarray:
    """Gradient variance per layer in a binary MLP at initialization (Sari et al. 2019, Theorem 1).

        without BatchNorm:  V(g^l) = V(g^L)·Π_{l'=l+1}^{L} K_{l'}
        with BatchNorm:     V(g^l) = V(g^L)·Π_{l'=l}^{L-1} K_{l'+1}/K_{l'-1}      (limit B → ∞)

    The first is exact (binary weights, V(w) = 1, identity STE; :func:`gradient_variance`). Both need the
    identity STE (the paper's f' = 1); with the clipped STE of its section 2 the gradient grows far more slowly
    without BatchNorm and vanishes with it (see :func:`measure_theorem1_network`). The second assumes,
    as the proof does, that each batch variance σ̂_l² equals K_{l-1} (the population variance of a K_{l-1}-term
    binary dot product), so each layer multiplies by K_{l+1}/K_{l-1}; the finite-batch terms vanish as B → ∞.
    Measured at finite width this limit is *not* reached as B grows: beyond the first layer the activations
    of one layer are correlated across the batch, σ̂² fluctuates from neuron to neuron, and
    E(1/σ̂²) > 1/K_{l-1} (Jensen). Each such layer adds a relative excess of roughly 1.5/K_{l-1} (measured:
    +23% at K = 8, +8.5% at K = 16, +2.6% at K = 64, B = 128), on top of a +1/B effect. The theorem's
    conclusion — no explosion with BatchNorm, Π K explosion without — stands. The same holds on real minibnn
    networks (:func:`measure_theorem1_network`, whose docstring has the numbers).

    Returns:
        float64 array of length L: V(g^1), ..., V(g^L) (the last equals top_var).

    Example:
        >>> theorem1_gradient_variance((16, 32, 16, 8), batchnorm=False)
        array([128.,   8.,   1.])
        >>> theorem1_gradient_variance((16, 32, 16, 8), batchnorm=True)
        array([0.25, 0.25, 1.  ])
    """
    widths = _widths(widths)
    if not batchnorm:
        return gradient_variance(widths, 1.0, top_var)
    k = np.asarray(widths, dtype=np.float64)
    return _down_from_top(k[2:] / k[:-2], top_var)   # K_{l+1}/K_{l-1} for l = 1..L-1


def simulate_binary_mlp_gradients(widths: Sequence[int], batch: int, batchnorm: bool, n_nets: int = 200,
                                  top_var: float = 1.0, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Mean squared gradient per layer in freshly initialised binary MLPs: an (n_nets, L) array.

    Network (Theorem 1's setting): inputs x ∈ {±1}^{K_0} with P(+1) = 1/2; for l = 1..L,
    s^l = a^{l-1} W^l with W^l ∈ {±1}^{K_{l-1}×K_l} uniform; with ``batchnorm`` z^l = BN(s^l) over the batch
    (γ = 1, β = 0, eps = 0), else z^l = s^l; a^l = sign(z^l). Backward: g^L ~ N(0, top_var) i.i.d.,
    dL/da^l = g^{l+1}(W^{l+1})ᵀ, identity STE dL/dz^l = dL/da^l, then eq. 1 for dL/ds^l. Entry [r, l-1] is
    mean_{b,k} (g^l_{bk})² in network r; since E(g^l) = 0 its expectation is V(g^l).

    Raises FloatingPointError if some neuron's batch has zero variance (take widths >= 16 and batch >= 16).
    """
    widths = _widths(widths)
    rng = _rng(rng)
    r, b, n_layers = _positive_int("n_nets", n_nets, 2), _positive_int("batch", batch, 2), len(widths) - 1
    a = _sign(rng.standard_normal((r, b, widths[0])))
    weights, caches = [], []
    for l in range(n_layers):
        w = _sign(rng.standard_normal((r, widths[l], widths[l + 1])))
        s = a @ w
        if batchnorm:
            z, s_hat, std = batchnorm_forward(s, axis=1)
            caches.append((s_hat, std))
        else:
            z = s
        weights.append(w)
        a = _sign(z)
    g = rng.normal(0.0, math.sqrt(float(top_var)), (r, b, widths[-1]))
    out = np.empty((r, n_layers))
    out[:, -1] = np.mean(g * g, axis=(1, 2))
    for l in range(n_layers - 2, -1, -1):        # from g^{l+2} (index l+1) to g^{l+1} (index l)
        grad_a = g @ np.swapaxes(weights[l + 1], 1, 2)
        g = batchnorm_backward(grad_a, *caches[l], axis=1)[0] if batchnorm else grad_a
        out[:, l] = np.mean(g * g, axis=(1, 2))
    return out


def measure_theorem1(widths: Sequence[int], batch: int, batchnorm: bool, n_nets: int = 200,
                     top_var: float = 1.0, rng: Optional[np.random.Generator] = None,
                     z: float = DEFAULT_Z) -> List[Check]:
    """Theorem 1 of Sari et al. 2019 against :func:`simulate_binary_mlp_gradients`; one Check per layer.

    Example:
        >>> cs = measure_theorem1((16, 32, 16), batch=16, batchnorm=False, n_nets=100,
        ...                       rng=np.random.default_rng(0))
        >>> [c.predicted for c in cs], all(c.agrees for c in cs)
        ([16.0, 1.0], True)
    """
    per_net = simulate_binary_mlp_gradients(widths, batch, batchnorm, n_nets, top_var, rng)
    name = f"Theorem 1 gradient variance ({'with' if batchnorm else 'without'} BatchNorm, B={batch})"
    return _replicate_checks(name, theorem1_gradient_variance(widths, batchnorm, top_var), per_net, z)


# ---------------------------------------------------------------------------------------------------------
# Sari et al. 2019 — eq. 1 and Theorem 1 on real minibnn networks (the engine's autograd, not a re-derivation)
# ---------------------------------------------------------------------------------------------------------
#
# The twins above re-implement the network in NumPy. The functions below run the same experiments through
# minibnn itself: BinaryLinear layers (sign of latent weights drawn with the paper's constant-variance init),
# SteSign activations, BatchNorm1d, the Tensor engine's backward, and an ActivationRecorder (probes) reading
# s^l and dL/ds^l off the layers. Agreement checks the engine and the formula at once.
#
# Verdict on Theorem 1, with the measured numbers: see measure_theorem1_network.

class ExactCheck(NamedTuple):
    """Two computations of the same quantity that must agree to rounding: max|a - b| <= tol·scale.

    Attributes:
        name: what was compared.
        max_abs_error: the largest absolute difference over every compared element.
        scale: 1 + the largest magnitude among the autograd values (so tol is a relative tolerance).
        tol: the tolerance (float64 rounding: 1e-10 by default).

    Example:
        >>> ExactCheck("x", max_abs_error=3e-12, scale=10.0).agrees, ExactCheck("x", 1e-6, 10.0).agrees
        (True, False)
    """

    name: str
    max_abs_error: float
    scale: float
    tol: float = 1e-10

    @property
    def relative_error(self) -> float:
        return self.max_abs_error / self.scale

    @property
    def agrees(self) -> bool:
        return bool(self.relative_error <= self.tol)

    def __repr__(self) -> str:
        verdict = "agrees" if self.agrees else "DISAGREES"
        return (f"ExactCheck({self.name}: max |difference| {self.max_abs_error:.3g}, relative "
                f"{self.relative_error:.3g} vs tol {self.tol:.0e}) {verdict}")


def check_batchnorm_backward_against_autograd(x: np.ndarray, gamma: ArrayLike = 1.0, beta: ArrayLike = 0.0,
                                              eps: float = 0.0, upstream: Optional[np.ndarray] = None,
                                              backward=None, rng: Optional[np.random.Generator] = None,
                                              tol: float = 1e-10) -> ExactCheck:
    """Eq. 1 (:func:`batchnorm_backward`) against minibnn's BatchNorm1d backward through the Tensor engine.

    Runs ``layers.BatchNorm1d`` (float64, training mode, γ = gamma, β = beta) on x, back-propagates
    ``upstream`` with ``Tensor.backward`` and compares the forward output and dL/dx, dL/dγ, dL/dβ with
    :func:`batchnorm_forward` / eq. 1. Both are exact formulas evaluated in float64, so they must agree to
    rounding (relative 1e-10), not to a statistical tolerance.

    Args:
        x: the batch, shape (B, C), B >= 2.
        gamma, beta: γ and β, scalars or one per feature.
        eps: added to the batch variance (both sides use it).
        upstream: dL/dz, shape (B, C); default standard normal from ``rng``.
        backward: the eq. 1 implementation to check (default :func:`batchnorm_backward`); a test passes a
            wrong one to see the check reject it.
        tol: relative tolerance.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(5, 3))
        >>> check_batchnorm_backward_against_autograd(x, gamma=[1.0, 2.0, -0.5], eps=1e-3).agrees
        True
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"check_batchnorm_backward_against_autograd: x must have shape (B, C) with B >= 2, "
                         f"got {x.shape}")
    b, c = x.shape
    gamma = np.broadcast_to(np.asarray(gamma, dtype=np.float64), (c,)).copy()
    beta = np.broadcast_to(np.asarray(beta, dtype=np.float64), (c,)).copy()
    if upstream is None:
        upstream = _rng(rng).standard_normal((b, c))
    upstream = np.asarray(upstream, dtype=np.float64)
    if upstream.shape != x.shape:
        raise ValueError(f"check_batchnorm_backward_against_autograd: upstream has shape {upstream.shape}, "
                         f"expected x's {x.shape}")
    backward = batchnorm_backward if backward is None else backward

    bn = BatchNorm1d(c, eps=float(eps), dtype=np.float64)
    bn.weight.data[...] = gamma
    bn.bias.data[...] = beta
    xt = Tensor(x.copy(), requires_grad=True)
    out = bn(xt)
    out.backward(upstream)

    z, s_hat, std = batchnorm_forward(x, gamma, beta, eps)
    grad_s, grad_gamma, grad_beta = backward(upstream, s_hat, std, gamma)
    pairs = ((out.data, z), (xt.grad, grad_s), (bn.weight.grad, grad_gamma), (bn.bias.grad, grad_beta))
    error = max(float(np.max(np.abs(np.asarray(a) - np.asarray(e)))) for a, e in pairs)
    scale = 1.0 + max(float(np.max(np.abs(a))) for a, _ in pairs)
    return ExactCheck(f"BatchNorm backward, eq. 1 vs autograd (B={b}, C={c}, eps={eps:g})", error, scale, tol)


def mlp_widths(depth: int, width: int, in_features: Optional[int] = None,
               out_features: Optional[int] = None) -> Tuple[int, ...]:
    """(K_0, ..., K_L) of an L-layer MLP with hidden width K: (in_features, K, ..., K, out_features).

    in_features and out_features default to the width.

    Example:
        >>> mlp_widths(3, 16), mlp_widths(3, 16, in_features=10, out_features=4)
        ((16, 16, 16, 16), (10, 16, 16, 4))
    """
    depth, width = _positive_int("depth", depth), _positive_int("width", width)
    k_in = width if in_features is None else _positive_int("in_features", in_features)
    k_out = width if out_features is None else _positive_int("out_features", out_features)
    return (k_in,) + (width,) * (depth - 1) + (k_out,)


_NETWORK_ACTIVATIONS = ("sign", "identity")


def binary_mlp(widths: Sequence[int], batchnorm: bool, activation: str = "sign",
               clip_value: Optional[float] = None, weight_variance: float = 1e-2, eps: float = 0.0,
               rng: Optional[np.random.Generator] = None):
    """Theorem 1's network as minibnn modules, at initialization, in float64.

        s^1 = x·sign(W^1),   s^l = a^{l-1}·sign(W^l)  (l = 2..L),   a^l = sign(z^l),   z^l = BN(s^l) or s^l

    Layer l is a bias-free ``BinaryLinear`` whose latent weights are drawn with the paper's initialization,
    ``ConstantVariance(weight_variance)`` (uniform, the same variance in every layer; Sari et al. 2019, Table 1)
    and binarized by ``ste_sign``; the activation sign(z^{l-1}) is that layer's input quantizer
    ``SteSign(clip_value)`` (the first layer takes x as it is). With ``batchnorm`` a ``BatchNorm1d`` (γ = 1,
    β = 0, ``eps``) follows layers 1..L-1. The model's output is s^L: the gradient dL/ds^L is given, as in the
    theorem, so nothing follows the last layer.

    Args:
        widths: (K_0, ..., K_L).
        batchnorm: insert BatchNorm1d after every layer but the last.
        activation: "sign" (a BNN) or "identity" (no activation: Glorot's assumption (i), for the forward
            variance product).
        clip_value: the STE window of the sign activations: None (identity STE, the theorem's f' = 1, default)
            or e.g. 1.0 (the clipped STE of section 2). Only with activation="sign".
        weight_variance: variance of the latent weights (their sign is ±1 with probability 1/2 whatever it is).
        eps: BatchNorm's eps (0 as in the theorem).
        rng: draws the latent weights.

    Example:
        >>> model = binary_mlp((4, 8, 2), batchnorm=True, rng=np.random.default_rng(0))
        >>> [type(m).__name__ for m in model], model[2].input_quantizer.clip_value
        (['BinaryLinear', 'BatchNorm1d', 'BinaryLinear'], None)
    """
    widths = _widths(widths)
    if activation not in _NETWORK_ACTIVATIONS:
        raise ValueError(f"activation must be one of {_NETWORK_ACTIVATIONS}, got {activation!r}")
    if activation == "identity" and clip_value is not None:
        raise ValueError(f"clip_value is the STE window of the sign activation; with activation='identity' "
                         f"give clip_value=None, got {clip_value!r}")
    rng = _rng(rng)
    init = ConstantVariance(float(weight_variance))
    modules = []
    for l in range(len(widths) - 1):
        input_quantizer = SteSign(clip_value) if (activation == "sign" and l > 0) else None
        modules.append(BinaryLinear(widths[l], widths[l + 1], bias=False, input_quantizer=input_quantizer,
                                    weight_init=init, rng=rng, dtype=np.float64))
        if batchnorm and l < len(widths) - 2:
            modules.append(BatchNorm1d(widths[l + 1], eps=float(eps), dtype=np.float64))
    return Sequential(*modules)


class NetworkMoments(NamedTuple):
    """Per-network statistics from :func:`sample_binary_mlp`; arrays of shape (networks, L), column l-1 = layer l.

    preactivation: mean_{b,k} (s^l_{bk})² (E(s^l) = 0, so its expectation is V(s^l)).
    gradient: mean_{b,k} (g^l_{bk})², g^l = dL/ds^l (E = 0: expectation V(g^l)).
    inverse_variance: mean_k K_{l-1}/σ̂²_{lk}, σ̂² the batch variance of unit k of s^l (+ eps with BatchNorm):
        the factor the proof of Theorem 1 sets to 1.
    """

    widths: Tuple[int, ...]
    batch: int
    preactivation: np.ndarray
    gradient: np.ndarray
    inverse_variance: np.ndarray


def _seed_list(seeds) -> List[int]:
    seeds = list(range(_positive_int("seeds", seeds, 2))) if isinstance(seeds, (int, np.integer)) else list(seeds)
    if len(seeds) < 2:
        raise ValueError(f"seeds must be a count >= 2 or at least two seeds (one network each), got {seeds!r}")
    return [int(s) for s in seeds]


def sample_binary_mlp(widths: Sequence[int], batch: int, batchnorm: bool, seeds=200, activation: str = "sign",
                      clip_value: Optional[float] = None, top_var: float = 1.0, input_var: float = 1.0,
                      weight_variance: float = 1e-2, eps: float = 0.0, batches_per_seed: int = 1) -> NetworkMoments:
    """Run fresh :func:`binary_mlp` networks forward and backward with minibnn's autograd; per-network moments.

    For each seed: ``rng = np.random.default_rng(seed)`` draws the network, then ``batches_per_seed`` times an
    input batch x ∈ {±sqrt(input_var)}^{B×K_0} (uniform signs) and an upstream gradient dL/ds^L ~ N(0, top_var);
    ``model(x).backward(upstream)`` runs with an ActivationRecorder on the BinaryLinear layers, which reads s^l
    and dL/ds^l. Statistics are averaged over the seed's batches, so networks are the independent replicates.

    Raises FloatingPointError if, with BatchNorm, a unit's batch of s^l is constant (σ̂ = 0: the theorem's
    1/σ̂ is undefined); take widths and batch >= 16.

    Example:
        >>> m = sample_binary_mlp((8, 8, 8), batch=4, batchnorm=False, seeds=3)
        >>> m.gradient.shape, float(m.gradient[0, -1]) > 0
        ((3, 2), True)
    """
    widths = _widths(widths)
    n_layers = len(widths) - 1
    b = _positive_int("batch", batch, 2 if batchnorm else 1)
    seeds, repeats = _seed_list(seeds), _positive_int("batches_per_seed", batches_per_seed)
    x_scale, g_scale = math.sqrt(float(input_var)), math.sqrt(float(top_var))
    totals = np.zeros((3, len(seeds), n_layers))
    for r, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        model = binary_mlp(widths, batchnorm, activation, clip_value, weight_variance, eps, rng)
        names = [name for name, m in model.named_modules() if isinstance(m, BinaryLinear)]
        for _ in range(repeats):
            x = x_scale * _sign(rng.standard_normal((b, widths[0])))
            # a constant unit makes BatchNorm divide by zero (eps = 0): raised below, with the layer named
            with ActivationRecorder(model, layers=names, keep_arrays=True) as recorder, \
                    np.errstate(divide="ignore", invalid="ignore"):
                out = model(Tensor(x))
                out.backward(g_scale * rng.standard_normal(out.shape))
            for l, name in enumerate(names):
                s, g = recorder[name].outputs[0], recorder[name].grads[0]
                var = s.var(axis=0) + (eps if batchnorm else 0.0)
                if batchnorm and l < n_layers - 1 and np.any(var == 0):
                    raise FloatingPointError(
                        f"sample_binary_mlp: seed {seed}, layer {l + 1}: a unit's batch of s^{l + 1} is constant "
                        f"(zero batch variance), BatchNorm's 1/σ̂ is undefined; take widths and batch >= 16")
                with np.errstate(divide="ignore"):
                    inverse = np.mean(widths[l] / var) if b > 1 else math.nan
                totals[:, r, l] += (np.mean(s * s), np.mean(g * g), inverse)
    totals /= repeats
    return NetworkMoments(widths, b, totals[0], totals[1], totals[2])


def binary_preactivation_variance(widths: Sequence[int], input_var: float = 1.0) -> np.ndarray:
    """V(s^l) in a BNN with sign activations and ±1 weights: V(s^1) = K_0·V(x), V(s^l) = K_{l-1} for l >= 2.

    The sign resets the scale: a^{l-1} ∈ {±1}, so E((s^l)²) = Σ_{k,k'} E(w_k w_k')E(a_k a_k') = K_{l-1} (the
    weights are independent of a^{l-1}, centred, w² = 1), with or without BatchNorm before the sign, whatever
    the correlations of a^{l-1}. This is the σ̂² = K_{l-1} the proof of Theorem 1 assumes, as a population
    variance. Sari et al.'s product V(x)·Π K_{l'-1}V(w^{l'}) (:func:`preactivation_variance`) is the
    identity-activation (Glorot) case; in a BNN's forward pass it is wrong from layer 2 on.

    Example:
        >>> binary_preactivation_variance((4, 8, 16, 2))
        array([ 4.,  8., 16.])
    """
    widths = _widths(widths)
    out = np.asarray(widths[:-1], dtype=np.float64)
    out[0] *= float(input_var)
    return out


def binary_dot_active_share(k: int, clip_value: float = 1.0, input_scale: float = 1.0) -> float:
    """P(|s| <= c) for s = input_scale·Σ_{k=1}^K w_k x_k, independent uniform signs: the clipped STE's pass rate.

    s/input_scale = 2j - K with j ~ Binomial(K, 1/2). With c = 1: P(s = 0) = C(K, K/2)/2^K for K even,
    P(s = ±1) = 2·C(K, (K-1)/2)/2^K for K odd; both ~ sqrt(2/(πK)) and 2·sqrt(2/(πK)).

    Example:
        >>> binary_dot_active_share(4), binary_dot_active_share(3)
        (0.375, 0.75)
    """
    k = _positive_int("k", k)
    c, scale = float(clip_value), float(input_scale)
    return sum(math.comb(k, j) for j in range(k + 1) if abs(scale * (2 * j - k)) <= c) / 2 ** k


def clipped_ste_gradient_variance(widths: Sequence[int], clip_value: float = 1.0, top_var: float = 1.0,
                                  input_var: float = 1.0) -> np.ndarray:
    """V(g^l) without BatchNorm when the sign activations use the clipped STE 1_{|s|<=c} (first order).

        V(g^l) = V(g^L)·Π_{m=l}^{L-1} p_m·K_{m+1},    p_m = P(|s^m| <= c) = binary_dot_active_share(K_{m-1})

    (p_1 with the input scale sqrt(input_var)). Derivation: g^m = 1_{|s^m|<=c} ⊙ (g^{m+1}(W^{m+1})ᵀ); taking the
    mask independent of the upstream gradient gives the factor p_m·K_{m+1} per layer. The independence is not
    exact (the mask fixes sign(s^m), which the layers above see); measured on the real network the formula
    is within 1% for K >= 16 and 2-5% low at K = 8, depth 6. Theorem 1 (identity STE) predicts K_{m+1} alone.

    Example:
        >>> clipped_ste_gradient_variance((16, 16, 16, 16))
        array([9.87272859, 3.14208984, 1.        ])
    """
    widths = _widths(widths)
    n_layers = len(widths) - 1
    shares = np.array([binary_dot_active_share(widths[m - 1], clip_value,
                                               math.sqrt(float(input_var)) if m == 1 else 1.0)
                       for m in range(1, n_layers)])
    return _down_from_top(shares * np.asarray(widths[2:], dtype=np.float64), top_var)   # p_m·K_{m+1}, m = 1..L-1


def measure_theorem1_network(depth: int, width: int, batch: int, batchnorm: bool, seeds=200,
                             in_features: Optional[int] = None, out_features: Optional[int] = None,
                             clip_value: Optional[float] = None, top_var: float = 1.0,
                             predicted: Optional[ArrayLike] = None, activation: str = "sign",
                             input_var: float = 1.0, weight_variance: float = 1e-2, eps: float = 0.0,
                             batches_per_seed: int = 1, z: float = DEFAULT_Z) -> List[Check]:
    """Theorem 1 of Sari et al. 2019 on real minibnn networks (:func:`sample_binary_mlp`); one Check per layer.

    Widths (in_features, width, ..., width, out_features) (see :func:`mlp_widths`), batch B, sign activations
    with the identity STE unless ``clip_value`` is given; each seed is one freshly initialised network, and the
    stderr is the spread of the per-network mean squares (over sqrt(number of seeds)). ``predicted``
    (one value per layer) replaces Theorem 1's prediction, e.g. :func:`clipped_ste_gradient_variance`.
    activation, input_var, weight_variance, eps and batches_per_seed are :func:`sample_binary_mlp`'s.

    Does Theorem 1 hold as written? Measured on these networks (K = width, B = batch, V(g^L) = 1):

    * Its analysis assumes identity activations ("we follow Glorot and Bengio": f' = 1), i.e. sign with the
      *identity* STE. With it and without BatchNorm, V(g^l) = Π_{l'=l+1}^{L} K_{l'} holds as written, exactly
      in expectation, at every size (K = 16, B = 32, L = 6, l = 1: 1.045e6 ± 1.7e4 measured, 16^5 = 1.049e6).
    * With the *clipped* STE 1_{|x|<=1} that the paper defines in section 2 (and BinaryNet uses) it does not.
      Without BatchNorm a unit passes gradient only where |s| <= 1, i.e. s = 0 (K even) or s = ±1 (K odd),
      probability ~ sqrt(2/(πK)) for even K, so a layer multiplies by about sqrt(2K/π) instead of K (K = 16,
      three layers below the top: 31.2 ± 0.6 measured, 4096 predicted, 31.0 by
      :func:`clipped_ste_gradient_variance`). With BatchNorm 70-80% of units pass and the gradient *vanishes*
      geometrically (K = 16, B = 32: 0.76, 0.59, 0.44, 0.31, 0.21 going down from the top; predicted 1).
    * With BatchNorm and the identity STE it holds only in the limit K → ∞ *and* B → ∞; the error term
      o(1/B^{1-ε}) is wrong, since at fixed width the excess does not vanish as B grows. Exactly, for the top
      BatchNorm layer (:func:`measure_bn_top_layer_network`): V(g^{L-1}) = (B-2)/B·K_L·E(1/σ̂²)·V(g^L), where
      the theorem puts 1/K_{L-2} for (B-2)/B·E(1/σ̂²). In the first layer (independent samples) E(K_0/σ̂²) is
      about B/(B-3): an O(1/B) error, as claimed. Beyond it the samples of a batch have gone through the same
      random weights, so their signs are dependent, σ̂² fluctuates more from unit to unit and E(K/σ̂²) - 1 is
      O(1/K). Relative excess of V(g^l) over the theorem, from l = L-1 down to l = 1 (400 networks each):
          K = 8,  B = 64,  L = 5:   +27%, +60%, +69%, +41%
          K = 16, B = 32,  L = 4:   +10%, +22%, +22%        (B = 128: +9%, +18%, +11%)
          K = 16, B = 32,  L = 6:   +12%, +30%, +40%, +42%, +32%
          K = 64, B = 128, L = 4:   +2.7%, +5.7%, +5.4%
      The NumPy twin (:func:`simulate_binary_mlp_gradients`) gives the same numbers within their standard
      errors (the tests compare the two). The theorem's conclusion stands: BatchNorm turns the Π K explosion
      into a factor close to 1 per layer.

    Example:
        >>> cs = measure_theorem1_network(3, 8, batch=4, batchnorm=False, seeds=60)
        >>> [c.predicted for c in cs], all(c.agrees for c in cs)
        ([64.0, 8.0, 1.0], True)
    """
    widths = mlp_widths(depth, width, in_features, out_features)
    moments = sample_binary_mlp(widths, batch, batchnorm, seeds, activation, clip_value, top_var, input_var,
                                weight_variance, eps, batches_per_seed)
    if predicted is None:
        predicted = theorem1_gradient_variance(widths, batchnorm, top_var)
    predicted = np.asarray(predicted, dtype=np.float64)
    if predicted.shape != (len(widths) - 1,):
        raise ValueError(f"predicted must hold one value per layer ({len(widths) - 1}), got shape {predicted.shape}")
    ste = "identity STE" if clip_value is None else f"clipped STE |x|<={clip_value:g}"
    name = (f"network gradient variance ({'with' if batchnorm else 'without'} BatchNorm, {ste}, "
            f"widths={widths}, B={moments.batch})")
    return _replicate_checks(name, predicted, moments.gradient, z)


def measure_preactivation_variance_network(depth: int, width: int, batch: int, seeds=200,
                                           activation: str = "sign", batchnorm: bool = False,
                                           in_features: Optional[int] = None, out_features: Optional[int] = None,
                                           input_var: float = 1.0, weight_variance: float = 1e-2,
                                           eps: float = 0.0, z: float = DEFAULT_Z) -> List[Check]:
    """V(s^l) through depth on real minibnn networks; one Check per layer.

    Prediction: with activation="identity" and no BatchNorm, :func:`preactivation_variance` (the corrected
    V(x)·Π_{l'<=l} K_{l'-1}V(w^{l'}), V(w) = 1 for ±1 weights); with sign activations,
    :func:`binary_preactivation_variance` (K_0·V(x), then K_{l-1}). Identity activations with BatchNorm are not
    covered (ValueError). weight_variance and eps are :func:`sample_binary_mlp`'s.

    Example:
        >>> cs = measure_preactivation_variance_network(3, 4, batch=4, seeds=60, activation="identity")
        >>> [c.predicted for c in cs], all(c.agrees for c in cs)
        ([4.0, 16.0, 64.0], True)
    """
    widths = mlp_widths(depth, width, in_features, out_features)
    if activation == "identity" and batchnorm:
        raise ValueError("measure_preactivation_variance_network: identity activations with BatchNorm have no "
                         "closed form here; use activation='sign' or batchnorm=False")
    moments = sample_binary_mlp(widths, batch, batchnorm, seeds, activation, input_var=input_var,
                                weight_variance=weight_variance, eps=eps)
    if activation == "identity":
        predicted = preactivation_variance(widths, 1.0, input_var)
    else:
        predicted = binary_preactivation_variance(widths, input_var)
    name = (f"network pre-activation variance ({activation} activation, "
            f"{'with' if batchnorm else 'without'} BatchNorm, widths={widths}, B={moments.batch})")
    return _replicate_checks(name, predicted, moments.preactivation, z)


def measure_bn_top_layer_network(depth: int, width: int, batch: int, seeds=200,
                                 in_features: Optional[int] = None, out_features: Optional[int] = None,
                                 top_var: float = 1.0, weight_variance: float = 1e-2, eps: float = 0.0,
                                 z: float = DEFAULT_Z) -> Check:
    """The top BatchNorm layer's gradient variance against its exact value, on real minibnn networks (depth >= 2).

        E[mean_{b,k} (g^{L-1}_{bk})² | batch] = (B-2)/B·K_L·V(g^L)·mean_k 1/σ̂²_k

    with σ̂²_k the batch variance of unit k of s^{L-1}. Derivation: dL/da^{L-1} = g^L(W^L)ᵀ has i.i.d. rows of
    variance K_L·V(g^L) per unit, independent of s^{L-1}; eq. 1 projects each unit's column off span{1, ŝ}
    (:func:`bn_gradient_variance`), keeping (B-2)/B of it, and divides by σ̂_k (exact with eps = 0; eps > 0
    shrinks the projection by O(eps/σ̂²)). Theorem 1 replaces (B-2)/B·mean_k 1/σ̂²_k by 1/K_{L-2}: the
    difference is its finite-size error at that layer.

    The check is paired: per network, the measured mean square and the conditional expectation above (from the
    same batch), so ``predicted`` is the average conditional expectation and the stderr that of the
    differences.

    Example:
        >>> c = measure_bn_top_layer_network(3, 16, batch=16, seeds=40)
        >>> c.agrees, c.predicted > 1.0       # the theorem says 1.0
        (True, True)
    """
    widths = mlp_widths(depth, width, in_features, out_features)
    if len(widths) < 3:
        raise ValueError(f"measure_bn_top_layer_network: depth must be >= 2 (a BatchNorm layer below the top), "
                         f"got {depth}")
    moments = sample_binary_mlp(widths, batch, True, seeds, top_var=top_var, weight_variance=weight_variance,
                                eps=eps)
    b = moments.batch
    expected = (b - 2) / b * widths[-1] * float(top_var) * moments.inverse_variance[:, -2] / widths[-3]
    measured = moments.gradient[:, -2]
    diff = measured - expected
    n = diff.size
    return Check(f"top BatchNorm layer gradient variance (widths={widths}, B={b})", float(expected.mean()),
                 float(measured.mean()), float(diff.std(ddof=1) / math.sqrt(n)), n, z)


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


# ---------------------------------------------------------------------------------------------------------
# Darabi, Belbahri, Courbariaux & Partovi Nia 2018 — SignSwish and the scale regularizers
# ---------------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------------
# Kim, Park, Lee & Kim 2021 — shifted thresholds, pooling skew, trainable threshold vs BatchNorm bias
# ---------------------------------------------------------------------------------------------------------

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
    x = _rng(rng).normal(float(mu), float(sigma), _positive_int("n", n, 2))
    return _fraction_check(f"fraction of +1 after sign(x - {threshold:g})",
                           shifted_sign_fraction(threshold, mu, sigma), x >= threshold, z)


def _pool_size(k: int) -> int:
    return _positive_int("k", k) ** 2


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
    windows = rng.standard_normal((_positive_int("n", n, 2), _pool_size(k)))
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
    samples = _pool_samples(k, mode, n, _rng(rng))
    mean, var = pooled_moments(k, mode)
    return (_mean_check(f"{mode}-pool {k}x{k} mean", mean, samples, z),
            _variance_check(f"{mode}-pool {k}x{k} variance", var, samples, z))


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
    p = _pool_samples(k, mode, n, _rng(rng))
    shift = float(shift)
    name = f"{mode}-pool {k}x{k} share of +1 ({'BN, ' if normalize else ''}shift {shift:g})"
    predicted = pooled_sign_fraction(k, mode, normalize, shift)
    if not normalize:
        return _fraction_check(name, predicted, p >= shift, z)
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


# ---------------------------------------------------------------------------------------------------------
# Li & Partovi Nia 2020 — which hyperplanes a data point activates, and which data a hyperplane sees
# ---------------------------------------------------------------------------------------------------------
#
# A hyperplane (w, b) is *active* on a data point x when the activation passes a gradient there:
#   ReLU: w·x + b > 0,      htanh: |w·x + b| <= 1.
# Data x ~ N(0, I_n). Weights: 'gaussian' N(0, std²) per coordinate, 'uniform' U[-√3·std, √3·std] per
# coordinate, or 'sphere' (the paper's unit-norm assumption: a uniformly random unit vector). Bias b = 0
# (lam = 0) or b ~ U[-λ, λ].

_ACTIVATIONS = ("relu", "htanh")
_WEIGHTS = ("gaussian", "uniform", "sphere")


def _activation(name: str) -> str:
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {name!r}")
    return name


def _lam(lam: float) -> float:
    lam = float(lam)
    if not lam >= 0:
        raise ValueError(f"lam (bias range U[-lam, lam]) must be >= 0, got {lam}")
    return lam


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
    n, r = _positive_int("n", n), float(x_norm)
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
    n, std = _positive_int("n", n), float(weight_std)
    if not std > 0:
        raise ValueError(f"weight_std must be > 0, got {std}")
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
        return _draw_weights(weights, std * std, (count, n), rng)
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
    x = _rng(rng).standard_normal((_positive_int("n_data", n_data, 2), w.size))
    c = x @ w + float(bias)
    predicted = float(hyperplane_data_share(activation, float(np.linalg.norm(w)), bias))
    return _fraction_check(f"{activation} share of data active on one hyperplane", predicted, _active(activation, c), z)


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
    rng = _rng(rng)
    count = _positive_int("n_planes", n_planes, 2)
    w = _draw_hyperplanes(weights, x.size, count, float(weight_std), rng)
    c = w @ x + rng.uniform(-lam, lam, count)
    predicted = datum_hyperplane_share(activation, float(np.linalg.norm(x)), x.size, lam, weights, weight_std)
    return _fraction_check(f"{activation} share of hyperplanes active on one datum (λ={lam:g})", predicted,
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
    n = _positive_int("n", n)
    rng = _rng(rng)
    count = _positive_int("n_pairs", n_pairs, 2)
    w = _draw_hyperplanes(weights, n, count, float(weight_std), rng)
    c = np.einsum("ij,ij->i", w, rng.standard_normal((count, n))) + rng.uniform(-lam, lam, count)
    return _fraction_check(f"{activation} expected active share ({weights} weights, λ={lam:g})",
                           expected_active_share(activation, n, lam, weights, weight_std), _active(activation, c), z)
