"""Sari, Belbahri & Partovi Nia 2019, "A Study on Binary Neural Networks Initialization": the closed forms.

Transformed Bernoulli moments, the variance of a K-term binary dot product, pre-activation and gradient
variance through depth (constant-variance init, Table 1), BatchNorm's backward (eq. 1) and its gradient
variance (eq. 3), Theorem 1 (gradient variance with and without BatchNorm) and sign(BN(s)) as an integer
threshold (eq. 2). Each formula has a ``measure_...`` Monte-Carlo twin returning a :class:`~minibnn.theory.check.Check`;
where the printed formula is garbled or measurably wrong, the docstring gives the corrected one and the printed
one is kept as ``..._as_printed``. The same experiments run through real minibnn networks live in
:mod:`minibnn.theory.sari_network`.

Conventions: sign(0) = +1; a network has widths (K_0, ..., K_L), layer l = 1..L has weights W^l of shape
(K_{l-1}, K_l), pre-activation s^l = a^{l-1} W^l and gradient g^l = dL/ds^l; arrays "per layer" are indexed l - 1.

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
from fractions import Fraction
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .check import (DEFAULT_Z, ArrayLike, Check, as_generator, binary_sign, down_from_top, draw_weights,
                    int_at_least, layer_widths, mean_check, per_layer, probability, replicate_checks, variance_check)


# ---------------------------------------------------------------------------------------------------------
# Sari, Belbahri & Partovi Nia 2019 — binary moments, variance through depth, BatchNorm, Theorem 1, eq. 2
# ---------------------------------------------------------------------------------------------------------

def bernoulli_mean(p: float) -> float:
    """E(x̃) = 2p - 1 for x̃ = 2·Bernoulli(p) - 1 ∈ {-1, +1} (Sari et al. 2019, section 2).

    Example:
        >>> bernoulli_mean(0.75)
        0.5
    """
    return 2.0 * probability("p", p) - 1.0


def bernoulli_variance(p: float) -> float:
    """V(x̃) = 4p(1 - p) for x̃ = 2·Bernoulli(p) - 1 (Sari et al. 2019, section 2).

    Derivation: x̃² = 1, so V = 1 - (2p - 1)² = 4p(1 - p).

    Example:
        >>> bernoulli_variance(0.5)
        1.0
    """
    p = probability("p", p)
    return 4.0 * p * (1.0 - p)


def measure_bernoulli(p: float, n: int = 100_000, rng: Optional[np.random.Generator] = None,
                      z: float = DEFAULT_Z) -> Tuple[Check, Check]:
    """Draw n signs with P(+1) = p; return (mean check, variance check).

    Example:
        >>> m, v = measure_bernoulli(0.2, n=10_000, rng=np.random.default_rng(1))
        >>> m.predicted, round(v.predicted, 2), m.agrees and v.agrees
        (-0.6, 0.64, True)
    """
    p = probability("p", p)
    x = np.where(as_generator(rng).random(int_at_least("n", n, 2)) < p, 1.0, -1.0)
    return (mean_check("transformed Bernoulli mean 2p-1", bernoulli_mean(p), x, z),
            variance_check("transformed Bernoulli variance 4p(1-p)", bernoulli_variance(p), x, z))


def binary_dot_mean(k: int, p_w: float = 0.5, p_x: float = 0.5) -> float:
    """E(s) = K(2p_w - 1)(2p_x - 1) for s = Σ_{k=1}^K w_k x_k, independent signs (Sari et al. 2019, sec. 2).

    Each product w_k x_k is a sign with mean E(w)E(x) = (2p_w - 1)(2p_x - 1).

    Example:
        >>> binary_dot_mean(10, 0.75, 0.25)
        -2.5
    """
    return int_at_least("k", k) * bernoulli_mean(p_w) * bernoulli_mean(p_x)


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
    return int_at_least("k", k) * (1.0 - (bernoulli_mean(p_w) * bernoulli_mean(p_x)) ** 2)


def measure_binary_dot(k: int, p_w: float = 0.5, p_x: float = 0.5, n: int = 50_000,
                       rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Tuple[Check, Check]:
    """Draw n dot products of K random signs (P(w=+1) = p_w, P(x=+1) = p_x); return (mean, variance) checks.

    Example:
        >>> m, v = measure_binary_dot(16, 0.7, 0.4, n=5_000, rng=np.random.default_rng(2))
        >>> m.agrees and v.agrees
        True
    """
    k = int_at_least("k", k)
    p_w, p_x = probability("p_w", p_w), probability("p_x", p_x)
    rng = as_generator(rng)
    n = int_at_least("n", n, 2)
    w = np.where(rng.random((n, k)) < p_w, 1, -1).astype(np.int8)
    x = np.where(rng.random((n, k)) < p_x, 1, -1).astype(np.int8)
    s = (w * x).sum(axis=1, dtype=np.int64)
    return (mean_check(f"binary dot mean (K={k})", binary_dot_mean(k, p_w, p_x), s, z),
            variance_check(f"binary dot variance (K={k})", binary_dot_variance(k, p_w, p_x), s, z))


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
    widths = layer_widths(widths)
    v = per_layer("weight_var", weight_var, len(widths) - 1)
    return float(input_var) * np.cumprod(np.asarray(widths[:-1], dtype=np.float64) * v)


def preactivation_variance_as_printed(widths: Sequence[int], weight_var: ArrayLike,
                                      input_var: float = 1.0) -> np.ndarray:
    """The forward-variance product exactly as printed in Sari et al. 2019: V(x)·Π_{l'=1}^{l-1} K_{l'}·V(w^{l'}).

    Kept to show that it is measurably wrong (see :func:`preactivation_variance`).

    Example:
        >>> preactivation_variance_as_printed((4, 8, 2), 1.0)
        array([1., 8.])
    """
    widths = layer_widths(widths)
    v = per_layer("weight_var", weight_var, len(widths) - 1)
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
    widths = layer_widths(widths)
    v = per_layer("weight_var", weight_var, len(widths) - 1)
    return down_from_top(np.asarray(widths[2:], dtype=np.float64) * v[1:], top_var)   # K_l·V(w^l), l = 2..L


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
    widths = layer_widths(widths)
    n_layers = len(widths) - 1
    v = per_layer("weight_var", weight_var, n_layers)
    rng = as_generator(rng)
    r, b = int_at_least("n_nets", n_nets, 2), int_at_least("batch", batch)
    a = rng.normal(0.0, math.sqrt(float(input_var)), (r, b, widths[0]))
    out = np.empty((r, n_layers))
    for l in range(n_layers):
        a = a @ draw_weights(weights, v[l], (r, widths[l], widths[l + 1]), rng)
        out[:, l] = np.mean(a * a, axis=(1, 2))
    return replicate_checks("pre-activation variance", preactivation_variance(widths, v, input_var), out, z)


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
    widths = layer_widths(widths)
    n_layers = len(widths) - 1
    v = per_layer("weight_var", weight_var, n_layers)
    rng = as_generator(rng)
    r, b = int_at_least("n_nets", n_nets, 2), int_at_least("batch", batch)
    g = rng.normal(0.0, math.sqrt(float(top_var)), (r, b, widths[-1]))
    out = np.empty((r, n_layers))
    out[:, -1] = np.mean(g * g, axis=(1, 2))
    for l in range(n_layers - 1, 0, -1):       # W^{l+1} has index l; it maps g^{l+1} to g^l
        w = draw_weights(weights, v[l], (r, widths[l], widths[l + 1]), rng)
        g = g @ np.swapaxes(w, 1, 2)
        out[:, l - 1] = np.mean(g * g, axis=(1, 2))
    return replicate_checks("gradient variance", gradient_variance(widths, v, top_var), out, z)


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
                                    upstream_var: float = 1.0, var_s_hat_sq: float = 2.0) -> float:
    """Sari et al. 2019, eq. 3 as printed: (γ/(Bσ̂))²·{B² + 2B - 1 + V(ŝ²)}·upstream_var.

    ``var_s_hat_sq`` is V(ŝ²) (2 for Gaussian pre-activations). Kept to show that it is measurably wrong at
    finite B (see :func:`bn_gradient_variance`).

    Example:
        >>> bn_gradient_variance_as_printed(8)
        1.265625
    """
    b = int_at_least("batch_size", batch_size, 2)
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
    widths = layer_widths(widths)
    if not batchnorm:
        return gradient_variance(widths, 1.0, top_var)
    k = np.asarray(widths, dtype=np.float64)
    return down_from_top(k[2:] / k[:-2], top_var)   # K_{l+1}/K_{l-1} for l = 1..L-1


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
    widths = layer_widths(widths)
    rng = as_generator(rng)
    r, b, n_layers = int_at_least("n_nets", n_nets, 2), int_at_least("batch", batch, 2), len(widths) - 1
    a = binary_sign(rng.standard_normal((r, b, widths[0])))
    weights, caches = [], []
    for l in range(n_layers):
        w = binary_sign(rng.standard_normal((r, widths[l], widths[l + 1])))
        s = a @ w
        if batchnorm:
            z, s_hat, std = batchnorm_forward(s, axis=1)
            caches.append((s_hat, std))
        else:
            z = s
        weights.append(w)
        a = binary_sign(z)
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
    return replicate_checks(name, theorem1_gradient_variance(widths, batchnorm, top_var), per_net, z)




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
