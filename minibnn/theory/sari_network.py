"""Sari et al. 2019 on real minibnn networks: eq. 1 and Theorem 1 through the engine's autograd.

The twins of :mod:`minibnn.theory.sari` re-implement the network in NumPy. The functions here run the same
experiments through minibnn itself: BinaryLinear layers (sign of latent weights drawn with the paper's
constant-variance init), SteSign activations, BatchNorm1d, the Tensor engine's backward, and an
ActivationRecorder (probes) reading s^l and dL/ds^l off the layers. Agreement checks the engine and the formula
at once. The verdict on Theorem 1, with the measured numbers, is in :func:`measure_theorem1_network`.

Example:
    >>> mlp_widths(3, 8)
    (8, 8, 8, 8)
"""
from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..init import ConstantVariance
from ..layers import BatchNorm1d
from ..module import Sequential
from ..probes import ActivationRecorder
from ..quantized import BinaryLinear
from ..quantizers import SteSign
from ..tensor import Tensor
from .check import (DEFAULT_Z, ArrayLike, Check, as_generator, binary_sign, down_from_top, int_at_least,
                    layer_widths, replicate_checks)
from .sari import preactivation_variance, theorem1_gradient_variance
from .sari_batchnorm import batchnorm_backward, batchnorm_forward


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
        upstream = as_generator(rng).standard_normal((b, c))
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
    depth, width = int_at_least("depth", depth), int_at_least("width", width)
    k_in = width if in_features is None else int_at_least("in_features", in_features)
    k_out = width if out_features is None else int_at_least("out_features", out_features)
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
    widths = layer_widths(widths)
    if activation not in _NETWORK_ACTIVATIONS:
        raise ValueError(f"activation must be one of {_NETWORK_ACTIVATIONS}, got {activation!r}")
    if activation == "identity" and clip_value is not None:
        raise ValueError(f"clip_value is the STE window of the sign activation; with activation='identity' "
                         f"give clip_value=None, got {clip_value!r}")
    rng = as_generator(rng)
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
    seeds = list(range(int_at_least("seeds", seeds, 2))) if isinstance(seeds, (int, np.integer)) else list(seeds)
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
    widths = layer_widths(widths)
    n_layers = len(widths) - 1
    b = int_at_least("batch", batch, 2 if batchnorm else 1)
    seeds, repeats = _seed_list(seeds), int_at_least("batches_per_seed", batches_per_seed)
    x_scale, g_scale = math.sqrt(float(input_var)), math.sqrt(float(top_var))
    totals = np.zeros((3, len(seeds), n_layers))
    for r, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        model = binary_mlp(widths, batchnorm, activation, clip_value, weight_variance, eps, rng)
        names = [name for name, m in model.named_modules() if isinstance(m, BinaryLinear)]
        for _ in range(repeats):
            x = x_scale * binary_sign(rng.standard_normal((b, widths[0])))
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
    widths = layer_widths(widths)
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
    k = int_at_least("k", k)
    c, scale = float(clip_value), float(input_scale)
    return sum(math.comb(k, j) for j in range(k + 1) if abs(scale * (2 * j - k)) <= c) / 2 ** k


def clipped_ste_gradient_variance(widths: Sequence[int], clip_value: float = 1.0, top_var: float = 1.0,
                                  input_var: float = 1.0) -> np.ndarray:
    """V(g^l) without BatchNorm when the sign activations use the clipped STE 1_{|s|<=c} (first order).

        V(g^l) = V(g^L)·Π_{m=l}^{L-1} p_m·K_{m+1},    p_m = P(|s^m| <= c) = binary_dot_active_share(K_{m-1})

    (p_1 with the input scale sqrt(input_var)). Derivation: g^m = 1_{|s^m|<=c} ⊙ (g^{m+1}(W^{m+1})ᵀ); taking the
    mask independent of the upstream gradient gives the factor p_m·K_{m+1} per layer. The independence is not
    exact (the mask fixes sign(s^m), which the layers above see), but the error is small: measured on the real
    network (:func:`measure_theorem1_network`, K = 8, depth 6, B = 32, 1,500 seeds) the relative errors are
    -0.3%, +0.2%, +0.7%, +0.3%, +0.7%, 0.0% from the first layer up, each within its standard error (2.4% to
    0.2%), and within 1% for K >= 16. Theorem 1 (identity STE) predicts K_{m+1} alone.

    Example:
        >>> clipped_ste_gradient_variance((16, 16, 16, 16))
        array([9.87272859, 3.14208984, 1.        ])
    """
    widths = layer_widths(widths)
    n_layers = len(widths) - 1
    shares = np.array([binary_dot_active_share(widths[m - 1], clip_value,
                                               math.sqrt(float(input_var)) if m == 1 else 1.0)
                       for m in range(1, n_layers)])
    return down_from_top(shares * np.asarray(widths[2:], dtype=np.float64), top_var)   # p_m·K_{m+1}, m = 1..L-1


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
      BatchNorm layer (:func:`measure_bn_top_layer_network`): V(g^{L-1}) = (B-2)/B·K_L·E(1/σ̂²)·V(g^L), where the
      theorem puts 1/K_{L-2} for (B-2)/B·E(1/σ̂²). In the first layer (independent samples) E(K_0/σ̂²) is about
      B/(B-3): an O(1/B) error, as claimed; but there the backward falls short of even that factor, since the
      upstream gradient depends, through W^2, on the ŝ^1 whose component BatchNorm removes. Beyond it the samples
      of a batch have gone through the same random weights, so their signs are dependent, σ̂² fluctuates more from
      unit to unit and E(K/σ̂²) - 1 is O(1/K), growing with the depth of the forward pass. Relative excess of
      V(g^l) over the theorem, from l = L-1 down to l = 1 (400 networks each):
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
    return replicate_checks(name, predicted, moments.gradient, z)


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
    return replicate_checks(name, predicted, moments.preactivation, z)


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
