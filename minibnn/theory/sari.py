"""Sari, Belbahri & Partovi Nia 2019, "A Study on Binary Neural Networks Initialization": variance through depth.

Transformed Bernoulli moments, the distribution of a K-term binary dot product (its variance, its symmetry),
pre-activation and gradient variance through depth (constant-variance init, Table 1), Theorem 1 (gradient
variance with and without BatchNorm) and the gradient variance of each BatchNorm ablation of Table 2 (none,
centred only, fixed scale K, Glorot-like scale). Each formula has a ``measure_...`` Monte-Carlo twin returning a
:class:`~minibnn.theory.check.Check`; where the printed formula is garbled or measurably wrong, the docstring
gives the corrected one and the printed one is kept as ``..._as_printed``. BatchNorm itself (eqs. 1-3) is in
:mod:`minibnn.theory.sari_batchnorm`; the same experiments on real minibnn networks in
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
from typing import List, Optional, Sequence, Tuple

import numpy as np
from scipy import stats

from .check import (DEFAULT_Z, ArrayLike, Check, as_generator, binary_sign, down_from_top, draw_weights,
                    int_at_least, layer_widths, mean_check, per_layer, positive, probability, replicate_checks,
                    variance_check)
from .sari_batchnorm import batchnorm_backward, batchnorm_forward


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


def binary_dot_distribution(k: int, p_w: float = 0.5, p_x: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """(support, probabilities) of s = Σ_{i=1}^K w_i·x_i for i.i.d. binary w, x (Sari et al. 2019, sec. 2).

    Each product is +1 with probability q = p_w·p_x + (1 - p_w)(1 - p_x), so s = 2N - K with
    N ~ Binomial(K, q): support -K, -K + 2, ..., K. "The sum of K such binary variables is also symmetric about
    zero" holds exactly when q = 1/2, that is when p_w = 1/2 or p_x = 1/2: P(s) = P(-s) term by term
    (:func:`binary_dot_skewness` is then 0).

    Example:
        >>> support, pmf = binary_dot_distribution(2)
        >>> support.tolist(), pmf.tolist()
        ([-2, 0, 2], [0.25, 0.5, 0.25])
    """
    k = int_at_least("k", k)
    q = 0.5 * (1.0 + bernoulli_mean(p_w) * bernoulli_mean(p_x))
    n = np.arange(k + 1)
    return 2 * n - k, stats.binom.pmf(n, k, q)


def binary_dot_skewness(k: int, p_w: float = 0.5, p_x: float = 0.5) -> float:
    """Skewness of a K-term binary dot product: (1 - 2q)/sqrt(K·q(1 - q)), q as in :func:`binary_dot_distribution`.

    0 if and only if q = 1/2 (the symmetric case); it fades as 1/sqrt(K) otherwise.

    Example:
        >>> binary_dot_skewness(16), round(binary_dot_skewness(16, p_w=0.9, p_x=0.9), 4)
        (0.0, -0.4165)
    """
    k = int_at_least("k", k)
    q = 0.5 * (1.0 + bernoulli_mean(p_w) * bernoulli_mean(p_x))
    if q in (0.0, 1.0):
        raise ValueError(f"binary_dot_skewness: s is constant (P(w·x = +1) = {q}); its skewness is undefined")
    return float((1.0 - 2.0 * q) / math.sqrt(k * q * (1.0 - q)))


def measure_binary_dot_skewness(k: int, p_w: float = 0.5, p_x: float = 0.5, n: int = 100_000,
                                rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z) -> Check:
    """Draw n binary dot products; check the third standardised moment E(((s - E s)/sd(s))³) (population
    mean and sd, so each cube is an i.i.d. sample of it).

    Example:
        >>> measure_binary_dot_skewness(8, p_w=0.8, p_x=0.7, n=20_000, rng=np.random.default_rng(0)).agrees
        True
    """
    predicted = binary_dot_skewness(k, p_w, p_x)
    rng = as_generator(rng)
    shape = (int_at_least("n", n, 2), k)
    w = np.where(rng.random(shape) < probability("p_w", p_w), 1.0, -1.0)
    x = np.where(rng.random(shape) < probability("p_x", p_x), 1.0, -1.0)
    s = np.sum(w * x, axis=1)
    cubes = ((s - binary_dot_mean(k, p_w, p_x)) / math.sqrt(binary_dot_variance(k, p_w, p_x))) ** 3
    return mean_check(f"binary dot skewness (K={k}, p_w={p_w}, p_x={p_x})", predicted, cubes, z)


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


def theorem1_gradient_variance(widths: Sequence[int], batchnorm: bool, top_var: float = 1.0) -> np.ndarray:
    """Gradient variance per layer in a binary MLP at initialization (Sari et al. 2019, Theorem 1).

        without BatchNorm:  V(g^l) = V(g^L)·Π_{l'=l+1}^{L} K_{l'}
        with BatchNorm:     V(g^l) = V(g^L)·Π_{l'=l}^{L-1} K_{l'+1}/K_{l'-1}      (limit B → ∞)

    The first is exact (binary weights, V(w) = 1, identity STE; :func:`gradient_variance`). Both need the
    identity STE (the paper's f' = 1); with the clipped STE of its section 2 the gradient grows far more slowly
    without BatchNorm and vanishes with it (see :func:`measure_theorem1_network`). The second assumes,
    as the proof does, that each batch variance σ̂_l² equals K_{l-1} (the population variance of a K_{l-1}-term
    binary dot product), so each layer multiplies by K_{l+1}/K_{l-1}; the finite-batch terms vanish as B → ∞.
    Measured at finite width this limit is *not* reached as B grows. The excess has two parts:

    * a forward factor at each layer: one BatchNorm step down multiplies the variance by
      (B-2)/B·E(K_{l-1}/σ̂_l²)·K_{l+1}/K_{l-1} (:func:`~minibnn.theory.sari_batchnorm.bn_gradient_variance` with
      the batch's σ̂) instead of K_{l+1}/K_{l-1}. Beyond the first layer the samples of a batch went through the
      same random weights, σ̂² fluctuates from neuron to neuron and E(K/σ̂²) > 1 (Jensen), more so the deeper
      the forward pass that fed the layer, so the excess depends on the depth, not on K alone;
    * a backward deficit at the first layer: there the upstream gradient g^2(W^2)ᵀ is not independent of the
      normalised input ŝ^1 (W^2 carried sign(ŝ^1) forward), and BatchNorm's backward removes its component
      along ŝ^1, so layer 1 gets less than the forward factor says.

    Measured (K = 8, B = 128, 400 networks, :func:`simulate_binary_mlp_gradients`), the relative excess of
    V(g^l) for l = 1, ..., L-1 is +20%, +18% at L = 3; +31%, +46%, +22% at L = 4; +36%, +63%, +59%, +28% at
    L = 5: the first step down alone (l = L-1) grows from +17% to +29% with depth, and the step to l = 1 is
    smaller than the one above it. The theorem's conclusion — no explosion with BatchNorm, Π K explosion
    without — stands. The same holds on real minibnn networks (:func:`measure_theorem1_network`, whose
    docstring has more numbers).

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


#: the BatchNorm variants of Sari et al.'s Table 2 (their names in :mod:`minibnn.experiments.bn_ablation`)
NORM_VARIANTS = ("none", "centred", "fixed", "glorot", "batchnorm")


def _variant(norm: str) -> str:
    if norm not in NORM_VARIANTS:
        raise ValueError(f"norm must be one of {', '.join(NORM_VARIANTS)}, got {norm!r}")
    return norm


def ablation_gradient_variance(widths: Sequence[int], norm: str, batch: int, top_var: float = 1.0,
                               multiplier: float = 1.0) -> np.ndarray:
    """Gradient variance per layer for each BatchNorm ablation of Sari et al. 2019, Table 2 (binary MLP at init).

    The network of :func:`simulate_binary_mlp_gradients` (binary ±1 weights, sign activations, identity STE),
    with after each s^l one of:

    =============  ==============================  =====================================================
    ``norm``       z^l =                           V(g^l) for l < L
    =============  ==============================  =====================================================
    ``none``       s^l                             V(g^L)·Π_{l'=l+1}^{L} K_{l'}             (explodes)
    ``centred``    s^l - μ̂                         V(g^L)·(B-1)/B·Π_{l'=l+1}^{L} K_{l'}     (explodes)
    ``fixed``      (s^l - μ̂)/sqrt(c·K_{l-1})       V(g^L)·(B-1)/B·Π_{l'=l}^{L-1} K_{l'+1}/(c·K_{l'-1})
    ``glorot``     (s^l - μ̂)/sqrt(K_{l+1})         V(g^L)·(B-1)/B                            (constant)
    ``batchnorm``  (s^l - μ̂)/σ̂                     Theorem 1's limit (:func:`theorem1_gradient_variance`)
    =============  ==============================  =====================================================

    The first four are exact at any batch size B: with the identity STE the backward does not depend on the
    forward, the centring's backward is the projection I - 11ᵀ/B over the batch, which takes (B-1)/B of the
    variance once (the gradient is then centred, and stays so through the next W, so later centrings do
    nothing), and each W^{l+1} (independent, ±1) multiplies the variance by K_{l+1}. ``fixed`` divides by
    c·K_{l-1}, the population variance of s^l (the paper's fixed scale; c = 2 or 3 are its "2K_{l-1}" and
    "3K_{l-1}"), giving Theorem 1's BatchNorm product times (B-1)/B; ``glorot`` divides by K_{l+1} (the
    paper: "divide the centered activations by sqrt(K_{l+1}) to simulate Glorot"), which cancels the K_{l+1}
    of W^{l+1}. ``batchnorm`` uses the batch's σ̂, which depends on the forward pass: only the B → ∞,
    K → ∞ limit is closed form, and measured values exceed it (see :func:`theorem1_gradient_variance`).
    No BatchNorm and centring only explode as Π K; the fixed and Glorot-like scales do not — Table 2's
    finding that the scale, not the centring, is what trains.

    Returns:
        float64 array of length L: V(g^1), ..., V(g^L) (the last equals top_var).

    Example:
        >>> ablation_gradient_variance((16, 32, 16, 8), "centred", batch=4)
        array([96.,  6.,  1.])
        >>> ablation_gradient_variance((16, 32, 16, 8), "glorot", batch=4)
        array([0.75, 0.75, 1.  ])
    """
    widths = layer_widths(widths)
    norm = _variant(norm)
    if norm == "none":
        return gradient_variance(widths, 1.0, top_var)
    if norm == "batchnorm":
        return theorem1_gradient_variance(widths, True, top_var)
    b = int_at_least("batch", batch, 2)
    c = positive("multiplier", multiplier)
    k = np.asarray(widths, dtype=np.float64)
    if norm == "centred":
        out = gradient_variance(widths, 1.0, top_var)
    elif norm == "fixed":
        out = down_from_top(k[2:] / (c * k[:-2]), top_var)
    else:  # glorot
        out = np.full(len(widths) - 1, float(top_var))
    out[:-1] *= (b - 1) / b
    return out


def simulate_ablation_gradients(widths: Sequence[int], batch: int, norm: str, n_nets: int = 200,
                                top_var: float = 1.0, multiplier: float = 1.0,
                                rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Mean squared gradient per layer for a Table 2 variant: an (n_nets, L) array (see
    :func:`ablation_gradient_variance`).

    ``batchnorm`` runs :func:`simulate_binary_mlp_gradients` (its backward needs the forward's σ̂). The other
    variants run the backward alone, which is all they depend on with the identity STE: g^L ~ N(0, top_var),
    then g^l = scale_l·C(g^{l+1}(W^{l+1})ᵀ) with C the centring over the batch (not for ``none``).
    """
    widths = layer_widths(widths)
    norm = _variant(norm)
    if norm == "batchnorm":
        return simulate_binary_mlp_gradients(widths, batch, True, n_nets, top_var, rng)
    rng = as_generator(rng)
    r, b, n_layers = int_at_least("n_nets", n_nets, 2), int_at_least("batch", batch, 2), len(widths) - 1
    g = rng.normal(0.0, math.sqrt(float(top_var)), (r, b, widths[-1]))
    out = np.empty((r, n_layers))
    out[:, -1] = np.mean(g * g, axis=(1, 2))
    for l in range(n_layers - 1, 0, -1):         # W^{l+1} has index l; it maps g^{l+1} to g^l
        w = binary_sign(rng.standard_normal((r, widths[l], widths[l + 1])))
        g = g @ np.swapaxes(w, 1, 2)
        if norm != "none":
            g = g - g.mean(axis=1, keepdims=True)
        if norm == "fixed":
            g = g / math.sqrt(float(multiplier) * widths[l - 1])
        elif norm == "glorot":
            g = g / math.sqrt(widths[l + 1])
        out[:, l - 1] = np.mean(g * g, axis=(1, 2))
    return out


def measure_ablation_gradient_variance(widths: Sequence[int], batch: int, norm: str, n_nets: int = 200,
                                       top_var: float = 1.0, multiplier: float = 1.0,
                                       rng: Optional[np.random.Generator] = None, z: float = DEFAULT_Z
                                       ) -> List[Check]:
    """One check per layer of :func:`ablation_gradient_variance` against :func:`simulate_ablation_gradients`
    (stderr from the spread over the n_nets independent networks).

    Example:
        >>> cs = measure_ablation_gradient_variance((16, 32, 16, 8), 4, "fixed", n_nets=100)
        >>> all(c.agrees for c in cs)
        True
    """
    per_net = simulate_ablation_gradients(widths, batch, norm, n_nets, top_var, multiplier, rng)
    predicted = ablation_gradient_variance(widths, norm, batch, top_var, multiplier)
    return replicate_checks(f"Table 2 gradient variance ({norm}, B={batch})", predicted, per_net, z)
