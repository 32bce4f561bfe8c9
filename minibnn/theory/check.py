"""The Check type: a closed form's prediction next to its Monte-Carlo measurement, and the helpers the twins share.

Every ``formula(...)`` of :mod:`minibnn.theory` returns the predicted value; every ``measure_...(...)`` simulates
the same situation in NumPy (seeded with ``numpy.random.default_rng``) and returns a :class:`Check`: the
prediction, the measured value, its standard error and the confidence interval, with ``.agrees`` telling whether
the prediction lies in the interval. A formula that is right agrees at any sample size; a wrong one is rejected
once the sample is large enough.

The helpers below build a Check from samples (a mean, a variance, a 0/1 share) and hold the few conventions
every twin uses: sign(0) = +1, widths (K_0, ..., K_L), values given "per layer", the default generator.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(0.0, 2.0, 20_000)
    >>> mean_check("mean of N(0, 4)", 0.0, x, DEFAULT_Z).agrees
    True
    >>> variance_check("variance of N(0, 4)", 4.0, x, DEFAULT_Z).agrees
    True
    >>> variance_check("variance of N(0, 4)", 5.0, x, DEFAULT_Z).agrees
    False
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import stats

from .. import _checks

ArrayLike = Union[float, Sequence[float], np.ndarray]

#: default half-width of a confidence interval in standard errors: two-sided alpha = 1e-4.
DEFAULT_Z = float(stats.norm.isf(0.5e-4))

#: the name the argument errors of the theory functions start with.
WHO = "theory"


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


def mean_check(name: str, predicted: float, samples: np.ndarray, z: float) -> Check:
    """Check a predicted mean against iid samples: stderr = sample std / sqrt(n)."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    n = samples.size
    return Check(name, float(predicted), float(samples.mean()), float(samples.std(ddof=1) / math.sqrt(n)), n, z)


def variance_check(name: str, predicted: float, samples: np.ndarray, z: float) -> Check:
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


def fraction_check(name: str, predicted: float, hits: np.ndarray, z: float) -> Check:
    """Check a predicted probability against a 0/1 sample: binomial stderr sqrt(p̂(1-p̂)/n)."""
    hits = np.asarray(hits, dtype=np.float64).ravel()
    n = hits.size
    p = float(hits.mean())
    return Check(name, float(predicted), p, math.sqrt(p * (1.0 - p) / n), n, z)


def replicate_checks(name: str, predicted: np.ndarray, per_replicate: np.ndarray, z: float) -> List[Check]:
    """One check per layer from an (n_replicates, L) array of per-replicate mean squares."""
    return [mean_check(f"{name}, layer {l + 1}", predicted[l], per_replicate[:, l], z)
            for l in range(per_replicate.shape[1])]


def as_generator(rng: Optional[np.random.Generator]) -> np.random.Generator:
    """``rng``, or ``np.random.default_rng(0)`` when it is None (so a twin is reproducible by default)."""
    return np.random.default_rng(0) if rng is None else _checks.generator(WHO, "rng", rng)


def probability(name: str, p: float) -> float:
    """``p`` as a float in [0, 1]."""
    return _checks.fraction(WHO, name, p, closed=True)


def positive(name: str, x) -> float:
    """``x`` as a finite float > 0 (a scale, a standard deviation, a β)."""
    return _checks.positive(WHO, name, x)


def int_at_least(name: str, k, minimum: int = 1) -> int:
    """``k`` as an int >= ``minimum`` (a size, a count, a number of samples)."""
    return _checks.integer(WHO, name, k, minimum)


def layer_widths(widths: Sequence[int]) -> Tuple[int, ...]:
    widths = tuple(widths)
    if len(widths) < 2:
        raise ValueError(f"widths must list K_0, ..., K_L with L >= 1 layers, got {widths!r}")
    for i, k in enumerate(widths):
        int_at_least(f"widths[{i}]", k)
    return widths


def per_layer(name: str, value: ArrayLike, n_layers: int) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n_layers,)) if np.ndim(value) == 0 \
        else np.asarray(value, dtype=np.float64)
    if arr.shape != (n_layers,):
        raise ValueError(f"{name} must be a scalar or one value per layer ({n_layers}), got shape {arr.shape}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {arr}")
    return arr


def binary_sign(x: np.ndarray) -> np.ndarray:
    """sign with sign(0) = +1, as float64."""
    return np.where(x >= 0, 1.0, -1.0)


def down_from_top(factors: np.ndarray, top_var: float) -> np.ndarray:
    """A variance carried down from the top, layer by layer: V(g^l) = V(g^L)·Π_{m=l}^{L-1} f_m for l = 1..L.

    ``factors`` holds f_1, ..., f_{L-1} (f_m multiplies the variance from layer m+1 to layer m); the last entry
    of the result is V(g^L) itself (the empty product).
    """
    tail = np.cumprod(factors[::-1])[::-1]         # Π_{m=l}^{L-1}, l = 1..L-1
    return float(top_var) * np.concatenate([tail, [1.0]])


def draw_weights(kind: str, var: float, shape: Tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Centred weights of variance ``var``: 'gaussian' N(0, v), 'uniform' U[-√(3v), √(3v)], 'binary' ±√v."""
    if kind == "gaussian":
        return rng.normal(0.0, math.sqrt(var), shape)
    if kind == "uniform":
        half = math.sqrt(3.0 * var)
        return rng.uniform(-half, half, shape)
    if kind == "binary":
        return math.sqrt(var) * np.where(rng.random(shape) < 0.5, 1.0, -1.0)
    raise ValueError(f"weights must be 'gaussian', 'uniform' or 'binary', got {kind!r}")
