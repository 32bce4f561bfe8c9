"""Tests for minibnn.theory: every closed form against its Monte-Carlo twin, with a tolerance from the sample.

Statistical tolerance: a prediction agrees when |predicted - measured| <= Z·stderr. Z is chosen so that the
whole file, with at most FAMILY.max_comparisons such comparisons (counted, and asserted at the end), fails by chance
with probability <= FAMILY.alpha (Bonferroni over two-sided normal tails): Z = Φ⁻¹(1 - α/(2m)) ≈ 6.1.
Each wrong formula is checked by the same rule and must be rejected: the samples are sized so that its
error is many times Z·stderr. Exact statements (integer thresholds, gradients of the threshold and the
BatchNorm bias) are tested exactly; finite differences use float64 central differences (error O(h²)).
"""
from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy import integrate, stats

import strategies  # noqa: F401  (registers the project's hypothesis profile)
from montecarlo import Family
from minibnn import theory as T
from minibnn.theory import random_bias as RB

FAMILY = Family(max_comparisons=700, alpha=1e-6)
Z = FAMILY.z
agrees, assert_agrees, assert_rejected = FAMILY.agrees, FAMILY.assert_agrees, FAMILY.assert_rejected
_family_size = FAMILY.fixture()

seeds = st.integers(0, 2 ** 32 - 1)
probabilities = st.floats(0.05, 0.95)


def rng_of(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- the Check object ---------------------------------------------------------------------------------------

def test_check_interval_and_repr():
    c = T.Check("x", predicted=1.0, measured=1.1, stderr=0.02, n=100, z=2.0)
    assert (round(c.ci_low, 12), round(c.ci_high, 12)) == (1.06, 1.14)
    assert not c.agrees and c.agrees_at(5.01) and not c.agrees_at(4.99) and round(c.deviation, 9) == 5.0
    assert "DISAGREES" in repr(c) and "predicted 1" in repr(c)
    assert replace(c, measured=1.03).agrees and "agrees" in repr(replace(c, measured=1.03))
    assert T.Check("exact", 0.5, 0.5, 0.0, 10).agrees and not T.Check("exact", 0.5, 0.6, 0.0, 10).agrees


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        T.bernoulli_variance(1.5)
    with pytest.raises(ValueError, match="widths"):
        T.preactivation_variance((4,), 1.0)
    with pytest.raises(ValueError, match="weight_var must be a scalar or one value per layer"):
        T.gradient_variance((4, 5, 6), [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        T.measure_bernoulli(0.5, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="std must be > 0"):
        T.fold_bn_sign(1.0, 0.0, 0.0, 0.0)
    with pytest.raises(TypeError, match="must hold integers"):
        T.apply_folded_threshold(np.array([0.5]), T.fold_bn_sign(1.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="weights must be 'gaussian' or 'sphere'"):
        T.datum_hyperplane_share("htanh", 1.0, 4, weights="uniform")
    with pytest.raises(ValueError, match="activation must be one of"):
        T.expected_active_share("tanh", 4)
    with pytest.raises(FloatingPointError, match="zero batch variance"):
        T.batchnorm_forward(np.ones((4, 2)))


# --- Sari et al. 2019: binary moments -------------------------------------------------------------------------

@settings(max_examples=20)
@given(p=probabilities, seed=seeds)
def test_transformed_bernoulli_moments(p, seed):
    mean, var = T.measure_bernoulli(p, n=100_000, rng=rng_of(seed))
    assert_agrees(mean)
    assert_agrees(var)
    assert_rejected(var, 2 * p * (1 - p))            # a deliberately wrong variance


@settings(max_examples=20)
@given(k=st.integers(1, 96), p_w=probabilities, p_x=probabilities, seed=seeds)
def test_binary_dot_product_moments(k, p_w, p_x, seed):
    mean, var = T.measure_binary_dot(k, p_w, p_x, n=40_000, rng=rng_of(seed))
    assert_agrees(mean)
    assert_agrees(var)


@settings(max_examples=8)
@given(k=st.integers(8, 64), seed=seeds)
def test_binary_dot_variance_wrong_forms_rejected(k, seed):
    # p far from 1/2: the Glorot-style K·V(w)·V(x) and the variance without its factor K both fail.
    p_w, p_x = 0.9, 0.2
    _, var = T.measure_binary_dot(k, p_w, p_x, n=40_000, rng=rng_of(seed))
    assert_agrees(var)
    assert_rejected(var, k * T.bernoulli_variance(p_w) * T.bernoulli_variance(p_x))
    assert_rejected(var, T.binary_dot_variance(k, p_w, p_x) / k)


# --- Sari et al. 2019: variance through depth without BatchNorm ------------------------------------------------

network_widths = st.lists(st.integers(1, 24), min_size=2, max_size=5)


@settings(max_examples=15)
@given(widths=network_widths, data=st.data(), input_var=st.floats(0.2, 3.0),
       kind=st.sampled_from(["binary", "gaussian", "uniform"]), seed=seeds)
def test_preactivation_variance_through_depth(widths, data, input_var, kind, seed):
    weight_var = data.draw(st.lists(st.floats(0.1, 3.0), min_size=len(widths) - 1, max_size=len(widths) - 1))
    for check in T.measure_preactivation_variance(widths, weight_var, input_var, kind, n_nets=600, batch=4,
                                                  rng=rng_of(seed)):
        assert_agrees(check)


@settings(max_examples=6)
@given(seed=seeds)
def test_preactivation_variance_as_printed_is_rejected(seed):
    widths, weight_var = (8, 16, 4), [1.0, 1.0]     # K_0·V(w^1) = 8: the printed product misses it
    checks = T.measure_preactivation_variance(widths, weight_var, n_nets=600, rng=rng_of(seed))
    for check, wrong in zip(checks, T.preactivation_variance_as_printed(widths, weight_var)):
        assert_agrees(check)
        assert_rejected(check, wrong)


@settings(max_examples=15)
@given(widths=network_widths, data=st.data(), top_var=st.floats(0.2, 3.0),
       kind=st.sampled_from(["binary", "gaussian", "uniform"]), seed=seeds)
def test_gradient_variance_through_depth(widths, data, top_var, kind, seed):
    weight_var = data.draw(st.lists(st.floats(0.1, 3.0), min_size=len(widths) - 1, max_size=len(widths) - 1))
    checks = T.measure_gradient_variance(widths, weight_var, top_var, kind, n_nets=600, batch=4, rng=rng_of(seed))
    for check in checks:
        assert_agrees(check)
    if len(widths) >= 3 and widths[-1] >= 4:        # dropping the fan-out K_L of the last layer is rejected
        assert_rejected(checks[-2], checks[-2].predicted / widths[-1])


# --- Sari et al. 2019: BatchNorm backward (eq. 1) and the gradient variance through it (eq. 3) -----------------

def _central_difference(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


@settings(max_examples=25)
@given(batch=st.integers(2, 7), features=st.integers(1, 4), eps=st.sampled_from([0.0, 1e-3, 0.5]), seed=seeds)
def test_batchnorm_backward_eq1_matches_finite_differences(batch, features, eps, seed):
    rng = rng_of(seed)
    s = rng.normal(0.0, 2.0, (batch, features)) + rng.normal(0.0, 3.0, features)
    gamma, beta = rng.normal(0.0, 1.5, features), rng.normal(0.0, 1.0, features)
    weights_of_loss = rng.normal(size=(batch, features))

    def loss() -> float:
        return float(np.sum(weights_of_loss * T.batchnorm_forward(s, gamma, beta, eps)[0]))

    _, s_hat, std = T.batchnorm_forward(s, gamma, beta, eps)
    grad_s, grad_gamma, grad_beta = T.batchnorm_backward(weights_of_loss, s_hat, std, gamma)
    np.testing.assert_allclose(grad_s, _central_difference(loss, s), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad_gamma, _central_difference(loss, gamma), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grad_beta, _central_difference(loss, beta), rtol=1e-6, atol=1e-7)
    if eps == 0.0:   # the projection of the derivation: the gradient is orthogonal to 1 and to ŝ
        np.testing.assert_allclose(grad_s.sum(axis=0), 0.0, atol=1e-9 * (1 + np.abs(grad_s).sum()))
        np.testing.assert_allclose((grad_s * s_hat).sum(axis=0), 0.0, atol=1e-9 * (1 + np.abs(grad_s).sum()))


def test_batchnorm_with_two_samples_passes_no_gradient():
    # B = 2: the output is always ±γ + β, so (B - 2)/B = 0 is exact, not a limit.
    _, s_hat, std = T.batchnorm_forward(np.array([[0.3], [2.0]]))
    grad_s, _, _ = T.batchnorm_backward(np.array([[1.7], [-0.4]]), s_hat, std)
    np.testing.assert_allclose(grad_s, 0.0, atol=1e-15)
    assert T.bn_gradient_variance(2) == 0.0


@settings(max_examples=20)
@given(batch=st.integers(3, 48), gamma=st.floats(0.3, 3.0), upstream_var=st.floats(0.2, 4.0),
       binary=st.booleans(), seed=seeds)
def test_bn_gradient_variance_eq3_corrected(batch, gamma, upstream_var, binary, seed):
    rng = rng_of(seed)
    # one batch of pre-activations: Gaussian, or binary dot products of 16 terms (integers)
    s = (rng.choice([-1, 1], (batch, 16)).sum(axis=1).astype(float) if binary else rng.normal(1.0, 2.5, batch))
    assume(np.ptp(s) > 0)
    check = T.measure_bn_gradient_variance(s, gamma, upstream_var, n_draws=4000, rng=rng)
    assert_agrees(check)
    std = float(np.std(s))
    if batch <= 32:      # eq. 3 as printed: factor (B² + 2B - 1 + V(ŝ²))/B² > 1 instead of (B - 2)/B < 1
        assert_rejected(check, T.bn_gradient_variance_as_printed(batch, gamma, std, upstream_var, 2.0))
        assert_rejected(check, T.bn_gradient_variance_as_printed(batch, gamma, std, upstream_var, 0.0))


# --- Sari et al. 2019: Theorem 1 on a simulated binary MLP ------------------------------------------------------

@settings(max_examples=8)
@given(widths=st.lists(st.integers(16, 48), min_size=3, max_size=5), batch=st.sampled_from([16, 32]), seed=seeds)
def test_theorem1_without_batchnorm(widths, batch, seed):
    for check in T.measure_theorem1(widths, batch, batchnorm=False, n_nets=150, rng=rng_of(seed)):
        assert_agrees(check)


def test_theorem1_with_batchnorm_misses_at_small_width():
    """Finding: with BatchNorm the theorem's limit is off by O(1/K) at finite width, however large B is.

    Width 8, B = 128: the layers below the top BN layer carry 20-40% more gradient variance than
    Π K_{l'+1}/K_{l'-1} (their batch variances σ̂² fluctuate across neurons and E(1/σ̂²) > 1/K).
    """
    checks = T.measure_theorem1((8,) * 5, 128, batchnorm=True, n_nets=200, rng=rng_of(7))
    for check in checks[:3]:
        assert not agrees(check) and check.measured > check.predicted, check
    assert_agrees(checks[3])            # the top layer's gradient is the given one


def test_theorem1_with_batchnorm_converges_as_width_and_batch_grow():
    """The relative error of the BatchNorm limit at layer L-1 shrinks when width and batch grow 4x (measured:
    +8.0% ± 0.35% at K = 16, B = 32; +2.2% ± 0.3% at K = 64, B = 128)."""
    def relative_error(width: int, batch: int, seed: int, n_nets: int):
        check = T.measure_theorem1((width,) * 4, batch, batchnorm=True, n_nets=n_nets, rng=rng_of(seed))[1]
        return check.measured / check.predicted - 1.0, check.stderr / check.predicted

    small, small_se = relative_error(16, 32, 1, 1500)
    large, large_se = relative_error(64, 128, 2, 60)
    FAMILY.count += 1
    assert small - abs(large) > Z * math.hypot(small_se, large_se), (small, large, small_se, large_se)
    # and with BatchNorm the gradient does not explode: without it, layer 1 gets K_2·K_3 = 64² times V(g^L)
    assert T.theorem1_gradient_variance((64,) * 4, batchnorm=False)[0] == 64.0 ** 2


# --- Sari et al. 2019, eq. 2: sign(BN(s)) as an integer threshold -------------------------------------------------

def _exact_sign_bn(s: int, gamma: float, beta: float, mean: float, std: float) -> int:
    y = Fraction(gamma) * (Fraction(int(s)) - Fraction(mean)) / Fraction(std) + Fraction(beta)
    return 1 if y >= 0 else -1


@st.composite
def bn_channels(draw):
    c = draw(st.integers(1, 5))
    gamma = draw(st.lists(st.one_of(st.just(0.0), st.just(-0.0), st.floats(-4, 4), st.sampled_from([1.0, -1.0, 0.5])),
                          min_size=c, max_size=c))
    tie = draw(st.lists(st.booleans(), min_size=c, max_size=c))   # τ an exact integer: β = 0, μ integer
    beta = [0.0 if t else draw(st.floats(-5, 5)) for t in tie]
    mean = [float(draw(st.integers(-40, 40))) if t else draw(st.floats(-50, 50)) for t in tie]
    std = draw(st.lists(st.one_of(st.floats(1e-3, 10), st.sampled_from([0.5, 1.0, 2.0])), min_size=c, max_size=c))
    return [np.array(v, dtype=np.float64) for v in (gamma, beta, mean, std)]


@settings(max_examples=60)
@given(params=bn_channels(), data=st.data())
def test_folded_threshold_is_exact_on_integer_dot_products(params, data):
    gamma, beta, mean, std = params
    folded = T.fold_bn_sign(gamma, beta, mean, std)
    random_s = data.draw(st.lists(st.integers(-300, 300), min_size=1, max_size=20))
    rows = []
    for s0 in random_s:
        rows.append(np.full(gamma.shape, s0, dtype=np.int64))
    for c in range(gamma.size):       # the integers around each real threshold τ
        if gamma[c] != 0:
            tau = mean[c] - std[c] * beta[c] / gamma[c]
            if abs(tau) < 1e6:
                for s0 in range(math.floor(tau) - 2, math.ceil(tau) + 3):
                    row = np.zeros(gamma.shape, dtype=np.int64)
                    row[c] = s0
                    rows.append(row)
    s = np.stack(rows)
    got = T.apply_folded_threshold(s, folded)
    expected = np.array([[_exact_sign_bn(s[i, c], gamma[c], beta[c], mean[c], std[c]) for c in range(gamma.size)]
                         for i in range(s.shape[0])], dtype=np.int8)
    np.testing.assert_array_equal(got, expected)


def test_folded_threshold_ties_and_special_cases():
    # τ = 3 exactly: s = 3 gives BN(s) = 0 and sign(0) = +1, for both signs of γ
    folded = T.fold_bn_sign([2.0, -2.0], [0.0, 0.0], [3.0, 3.0], [1.0, 1.0])
    s = np.array([[2, 2], [3, 3], [4, 4]])
    np.testing.assert_array_equal(T.apply_folded_threshold(s, folded), [[-1, 1], [1, 1], [1, -1]])
    # γ = 0: the output is sign(β), with sign(0) = +1
    folded = T.fold_bn_sign([0.0, 0.0, 0.0], [0.0, -1e-300, 2.0], 0.0, 1.0)
    np.testing.assert_array_equal(T.apply_folded_threshold(np.array([[-5, 7, 0]]), folded), [[1, -1, 1]])


def test_eq2_as_printed_is_wrong():
    # round-to-nearest: τ = 2.3 rounds to 2, yet s = 2 < τ gives BN(s) < 0
    args = (1.0, -2.3, 0.0, 1.0)           # γ, β, μ, σ: τ = μ - σβ/γ = 2.3
    assert _exact_sign_bn(2, *args) == -1
    assert T.sign_bn_as_printed(np.array([2]), *args)[0] == 1
    assert T.apply_folded_threshold(np.array([[2]]), T.fold_bn_sign(*args))[0, 0] == -1
    # γ < 0 flips the comparison: τ = 0.5, s = 5 > τ gives BN(s) < 0
    args = (-1.0, 0.5, 0.0, 1.0)
    assert _exact_sign_bn(5, *args) == -1
    assert T.sign_bn_as_printed(np.array([5]), *args)[0] == 1
    assert T.apply_folded_threshold(np.array([[5]]), T.fold_bn_sign(*args))[0, 0] == -1


# --- Darabi et al. 2018: SignSwish and the scale regularizers ----------------------------------------------------

@settings(max_examples=40)
@given(x=st.floats(-6, 6), beta=st.floats(0.2, 20))
def test_signswish_derivative_eq3(x, beta):
    u = beta * x
    assume(abs(u) < 700)
    printed_eq3 = beta * (2 - u * math.tanh(u / 2)) / (1 + math.cosh(u))
    h = 1e-6 / beta
    numeric = (T.signswish(x + h, beta) - T.signswish(x - h, beta)) / (2 * h)
    grad = float(T.signswish_grad(x, beta))
    assert math.isclose(grad, printed_eq3, rel_tol=1e-12, abs_tol=1e-14 * beta)
    assert math.isclose(grad, float(numeric), rel_tol=1e-6, abs_tol=1e-6 * beta)
    assert float(T.signswish(-x, beta)) == pytest.approx(-float(T.signswish(x, beta)), abs=1e-14)


@settings(max_examples=20)
@given(beta=st.floats(0.1, 50))
def test_signswish_derivative_zeros(beta):
    x_star = T.signswish_grad_zero(beta)
    scale = beta * 1e-12
    assert abs(float(T.signswish_grad(x_star, beta))) < scale
    assert abs(float(T.signswish_grad(-x_star, beta))) < scale
    assert T.signswish_grad(0.99 * x_star, beta) > 0 > T.signswish_grad(1.01 * x_star, beta)
    # the maximum of SS_β is u*/2, reached there
    assert float(T.signswish(x_star, beta)) == pytest.approx(beta * x_star / 2, rel=1e-12)


def test_signswish_zero_constant_vs_paper():
    u_star = T.signswish_grad_zero(1.0)
    assert u_star == pytest.approx(2.3993572805154675, abs=1e-13)
    assert abs(u_star - 2.4) < 1e-3 and u_star != 2.4      # "x ≈ ±2.4/β": right to 3 significant digits


@settings(max_examples=30)
@given(data=st.data(), kind=st.sampled_from(["r1", "r2"]), channels=st.integers(1, 4), size=st.integers(1, 30))
def test_optimal_scale_minimises_regularizer(data, kind, channels, size):
    w = np.asarray(data.draw(st.lists(st.floats(-3, 3), min_size=channels * size, max_size=channels * size)))
    w = w.reshape(channels, size)
    alpha = T.optimal_scale(w, kind, channel_axis=0)
    best = T.regularizer(alpha, w, kind, channel_axis=0)
    tol = 1e-12 * (1 + np.abs(w).sum(axis=1) ** 2)
    for delta in (-1e-3, 1e-3, -0.1, 0.1, 1.0):
        assert np.all(best <= T.regularizer(alpha + delta, w, kind, channel_axis=0) + tol)
    for c in range(channels):          # the numerical minimiser cannot do better
        _, value = T.minimise_regularizer(w[c], kind)
        assert best[c] <= value + tol[c]


def test_mean_does_not_minimise_r1():
    w = np.array([0.0, 0.0, 10.0])
    assert T.regularizer(np.mean(np.abs(w)), w, "r1") > T.regularizer(T.optimal_scale(w, "r1"), w, "r1") + 3


# --- Kim et al. 2021: shifted sign, pooling skew, trainable threshold vs BatchNorm bias ---------------------------

@settings(max_examples=20)
@given(t=st.floats(-2, 2), mu=st.floats(-1, 1), sigma=st.floats(0.3, 3), seed=seeds)
def test_shifted_sign_fraction(t, mu, sigma, seed):
    assume(0.02 < T.shifted_sign_fraction(t, mu, sigma) < 0.98)
    assert_agrees(T.measure_shifted_sign_fraction(t, mu, sigma, n=100_000, rng=rng_of(seed)))


@settings(max_examples=10)
@given(k=st.integers(1, 4), mode=st.sampled_from(["max", "avg"]), seed=seeds)
def test_pooled_moments(k, mode, seed):
    mean, var = T.measure_pooled_moments(k, mode, n=100_000, rng=rng_of(seed))
    assert_agrees(mean)
    assert_agrees(var)


@settings(max_examples=15)
@given(k=st.integers(1, 4), mode=st.sampled_from(["max", "avg"]), normalize=st.booleans(),
       shift=st.floats(-1, 1.2), seed=seeds)
def test_pooled_sign_fraction(k, mode, normalize, shift, seed):
    assume(0.02 < T.pooled_sign_fraction(k, mode, normalize, shift) < 0.98)
    assert_agrees(T.measure_pooled_sign_fraction(k, mode, normalize, shift, n=200_000, rng=rng_of(seed)))


def test_max_pool_skews_to_minus_one():
    check = T.measure_pooled_sign_fraction(3, "max", normalize=True, n=400_000, rng=rng_of(3))
    assert_agrees(check)
    assert_rejected(check, 0.5)                     # a balanced 50/50 share is rejected after max-pool
    assert check.predicted < 0.5 == T.pooled_sign_fraction(3, "avg")


@settings(max_examples=40)
@given(batch=st.integers(2, 10), gamma=st.floats(0.2, 3), beta=st.floats(-1.5, 1.5), th=st.floats(-1.5, 1.5),
       seed=seeds)
def test_threshold_gradient_is_minus_bias_gradient(batch, gamma, beta, th, seed):
    rng = rng_of(seed)
    x, grad_y = rng.normal(size=batch), rng.normal(size=batch)
    assume(np.ptp(x) > 1e-3)
    u = T.batchnorm_forward(x, gamma, beta)[0] - th
    assume(np.all(np.abs(np.abs(u) - 1.0) > 1e-4))     # off the kinks of htanh
    d_beta, d_th = T.threshold_and_bias_gradients(x, grad_y, gamma, beta, th)
    assert d_beta == -d_th

    def surrogate(b: float, t: float) -> float:       # htanh forward: its derivative is the STE's indicator
        return float(np.sum(grad_y * np.clip(T.batchnorm_forward(x, gamma, b)[0] - t, -1, 1)))
    h = 1e-6
    assert d_beta == pytest.approx((surrogate(beta + h, th) - surrogate(beta - h, th)) / (2 * h), abs=1e-7)
    assert d_th == pytest.approx((surrogate(beta, th + h) - surrogate(beta, th - h)) / (2 * h), abs=1e-7)


# --- Li & Partovi Nia 2020: active hyperplanes and active data ----------------------------------------------------

@settings(max_examples=20)
@given(activation=st.sampled_from(["relu", "htanh"]), n=st.integers(1, 20),
       kind=st.sampled_from(["gaussian", "uniform", "sphere"]), bias=st.floats(-2, 2), seed=seeds)
def test_share_of_data_per_hyperplane(activation, n, kind, bias, seed):
    rng = rng_of(seed)
    w = RB._draw_hyperplanes(kind, n, 1, 0.6, rng)[0]
    assume(0.02 < T.hyperplane_data_share(activation, np.linalg.norm(w), bias) < 0.98)
    assert_agrees(T.measure_hyperplane_data_share(activation, w, bias, n_data=100_000, rng=rng))


@settings(max_examples=20)
@given(activation=st.sampled_from(["relu", "htanh"]), n=st.integers(1, 20), radius=st.floats(0.05, 6),
       lam=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]), kind=st.sampled_from(["gaussian", "sphere"]),
       weight_std=st.floats(0.2, 2), seed=seeds)
def test_share_of_hyperplanes_per_datum(activation, n, radius, lam, kind, weight_std, seed):
    rng = rng_of(seed)
    direction = rng.normal(size=n)
    x = radius * direction / np.linalg.norm(direction)
    predicted = T.datum_hyperplane_share(activation, radius, n, lam, kind, weight_std)
    assume(0.02 < predicted < 0.98)
    assert_agrees(T.measure_datum_hyperplane_share(activation, x, lam, kind, weight_std, n_planes=100_000, rng=rng))


@settings(max_examples=20)
@given(activation=st.sampled_from(["relu", "htanh"]), n=st.integers(1, 30), lam=st.floats(0, 3),
       kind=st.sampled_from(["gaussian", "uniform", "sphere"]), weight_std=st.floats(0.1, 2), seed=seeds)
def test_expected_active_share(activation, n, lam, kind, weight_std, seed):
    assume(0.02 < T.expected_active_share(activation, n, lam, kind, weight_std) < 0.98)
    assert_agrees(T.measure_expected_active_share(activation, n, lam, kind, weight_std, n_pairs=100_000,
                                                  rng=rng_of(seed)))


@settings(max_examples=25)
@given(n=st.integers(1, 30), lam=st.floats(0, 4), weight_std=st.floats(0.1, 2))
def test_fourier_route_agrees_with_chi_route(n, lam, weight_std):
    # the Gil-Pelaez integral used for uniform weights, fed the Gaussian-weight characteristic function
    fourier = RB._htanh_share_fourier(lambda w: (1.0 + (weight_std * w) ** 2) ** (-n / 2), lam)
    assert fourier == pytest.approx(T.expected_active_share("htanh", n, lam, "gaussian", weight_std), abs=1e-9)


@settings(max_examples=20)
@given(n=st.integers(2, 40), radius=st.floats(0.01, 8), lam=st.floats(0, 4))
def test_paper_claims_on_unit_norm_hyperplanes(n, radius, lam):
    # ReLU: every datum activates exactly half the hyperplanes, whatever the bias range (data equality)
    relu = RB._sphere_average(lambda c: RB._bias_averaged_share("relu", c, lam), n, radius, (-lam, lam))
    assert relu == pytest.approx(0.5, abs=1e-9)
    # htanh, λ >= |x| + 1: exactly 1/λ of the hyperplanes (the paper's "approximately the same number")
    share = RB._sphere_average(lambda c: RB._bias_averaged_share("htanh", c, lam + radius + 1), n, radius,
                              (-2 - lam - radius, lam + radius, -lam - radius, 2 + lam + radius))
    assert share == pytest.approx(1 / (lam + radius + 1), abs=1e-9)


def test_random_bias_breaks_hyperplane_equality_and_htanh_share_depends_on_lambda():
    shares = T.hyperplane_data_share("htanh", 1.0, np.array([-2.0, 0.0, 2.0]))
    assert shares[1] == pytest.approx(2 * stats.norm.cdf(1) - 1) and shares[0] == shares[2] < shares[1] / 2
    check = T.measure_expected_active_share("htanh", 8, 2.5, "sphere", n_pairs=100_000, rng=rng_of(11))
    assert_agrees(check)
    assert_rejected(check, 2 * stats.norm.cdf(1) - 1)     # the zero-bias share is wrong once λ = 2.5


# --- issue 11 §4: the last theory gaps ----------------------------------------------------------------------------
# Sari et al. 2019

@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_batchnorm_output_variance_is_gamma_squared(gamma):
    s = np.random.default_rng(11).normal(3.0, 40.0, (400, 64, 4))           # any scale: V(w) drops out
    check = T.measure_bn_output_variance(s, gamma=gamma, beta=0.3)
    assert check.predicted == T.bn_output_variance(gamma) == gamma ** 2
    assert_agrees(check)
    assert_rejected(check, 1.05 * gamma ** 2)
    z, _, _ = T.batchnorm_forward(s, gamma, 0.3, axis=1)
    assert np.allclose(np.mean((z - 0.3) ** 2, axis=1), gamma ** 2, rtol=1e-12)  # exactly, batch by batch


@pytest.mark.parametrize("k, p_w, p_x", [(2, 0.5, 0.5), (8, 0.5, 0.5), (33, 0.5, 0.5), (8, 0.8, 0.3), (5, 0.5, 0.9)])
def test_variance_of_the_squared_normalised_binary_dot_is_2_minus_2_over_k(k, p_w, p_x):
    predicted = T.binary_dot_square_variance(k, p_w, p_x)
    support, pmf = T.binary_dot_distribution(k, p_w, p_x)                  # exact, from the distribution
    mean, sd = T.binary_dot_mean(k, p_w, p_x), math.sqrt(T.binary_dot_variance(k, p_w, p_x))
    assert math.isclose(predicted, float(np.sum(pmf * ((support - mean) / sd) ** 4)) - 1.0, rel_tol=1e-12)
    if 0.5 in (p_w, p_x):
        assert math.isclose(predicted, 2.0 - 2.0 / k, rel_tol=1e-12)
    check = T.measure_binary_dot_square_variance(k, p_w, p_x, n=200_000, rng=np.random.default_rng(k))
    assert_agrees(check)
    if k <= 8 and 0.5 in (p_w, p_x):
        assert_rejected(check, 2.0)                                        # the Gaussian default of eq. 3


def test_eq3_as_printed_takes_v_of_s_hat_squared_from_k():
    for b, k in [(8, 8), (32, 4), (128, 64)]:
        assert T.bn_gradient_variance_as_printed(b, k=k) == T.bn_gradient_variance_as_printed(b, var_s_hat_sq=2 - 2 / k)
    assert T.bn_gradient_variance_as_printed(8) == T.bn_gradient_variance_as_printed(8, var_s_hat_sq=2.0)


@pytest.mark.parametrize("norm, multiplier", [("none", 1.0), ("centred", 1.0), ("fixed", 1.0), ("fixed", 2.0),
                                              ("glorot", 1.0)])
def test_gradient_variance_of_each_table2_batchnorm_variant(norm, multiplier):
    widths, batch = (16, 32, 16, 8), 4
    checks = T.measure_ablation_gradient_variance(widths, batch, norm, n_nets=400, multiplier=multiplier,
                                                  rng=np.random.default_rng(len(norm)))
    for check in checks:
        assert_agrees(check)
    if norm != "none":  # the centring's (B-1)/B is measurable
        assert_rejected(checks[0], checks[0].predicted * batch / (batch - 1))
    # one step down, g^2 -> g^1, multiplies by K_2 = 16 without a scale, K_2/(c·K_0) = 1/c with the fixed one
    step = {"none": 16.0, "centred": 16.0, "fixed": 1.0 / multiplier, "glorot": 1.0}[norm]
    assert math.isclose(checks[0].predicted / checks[1].predicted, step, rel_tol=1e-12)


def test_table2_variants_explode_without_a_scale_and_stay_bounded_with_one():
    widths = (64,) * 6
    none, centred = (T.ablation_gradient_variance(widths, n, 32) for n in ("none", "centred"))
    fixed, glorot = (T.ablation_gradient_variance(widths, n, 32) for n in ("fixed", "glorot"))
    assert none[0] == 64.0 ** 4 and math.isclose(centred[0], 64.0 ** 4 * 31 / 32)
    assert np.allclose(fixed[:-1], 31 / 32) and np.allclose(glorot[:-1], 31 / 32)
    assert np.array_equal(T.ablation_gradient_variance(widths, "batchnorm", 32),
                          T.theorem1_gradient_variance(widths, True))
    with pytest.raises(ValueError, match="norm must be one of"):
        T.ablation_gradient_variance(widths, "layernorm", 32)


@pytest.mark.parametrize("k, p_w, p_x", [(7, 0.5, 0.9), (8, 0.2, 0.5), (9, 0.8, 0.7), (4, 0.1, 0.2)])
def test_the_k_term_binary_sum_is_symmetric_iff_a_factor_is_balanced(k, p_w, p_x):
    support, pmf = T.binary_dot_distribution(k, p_w, p_x)
    assert np.array_equal(support, -support[::-1]) and math.isclose(pmf.sum(), 1.0, rel_tol=1e-12)
    assert math.isclose(float(np.sum(support * pmf)), T.binary_dot_mean(k, p_w, p_x), abs_tol=1e-12)
    symmetric = 0.5 in (p_w, p_x)
    assert np.allclose(pmf, pmf[::-1], rtol=1e-12, atol=0) == symmetric
    assert (T.binary_dot_skewness(k, p_w, p_x) == 0.0) == symmetric
    check = T.measure_binary_dot_skewness(k, p_w, p_x, n=200_000, rng=np.random.default_rng(k))
    assert_agrees(check)
    if not symmetric:
        assert_rejected(check, 0.0)


# Kim et al. 2021

@pytest.mark.parametrize("x_offset, y_offset, range_", [(0.0, 0.0, 1.0), (0.5, 0.0, 1.0), (1.2, 0.0, 1.0),
                                                        (0.0, 0.5, 1.0), (0.0, 0.0, 2.0), (3.0, 3.0, 3.0)])
def test_skew_of_hardtanh_shifted_along_x_or_y_and_of_relu6(x_offset, y_offset, range_):
    skew = T.hardtanh_skewness(x_offset, y_offset, range_)
    if x_offset == 0.0:
        assert skew == 0.0                    # shifting along y or widening keeps it symmetric
    else:
        assert skew > 0.3                     # shifting right along x skews it right
    check = T.measure_hardtanh_skewness(x_offset, y_offset, range_, n=400_000, rng=np.random.default_rng(7))
    assert_agrees(check)
    if x_offset != 0.0:
        assert_rejected(check, 0.0)
    assert T.relu6_skewness() == T.hardtanh_skewness(3.0, 3.0, 3.0)


def test_clipped_normal_moments_match_numerical_integration():
    lo, hi, mu, sigma = -0.7, 1.9, 0.4, 1.3
    pdf = stats.norm(mu, sigma)
    raw = [lo ** j * pdf.cdf(lo) + hi ** j * pdf.sf(hi) + integrate.quad(lambda x: x ** j * pdf.pdf(x), lo, hi)[0]
           for j in (1, 2, 3)]
    var = raw[1] - raw[0] ** 2
    skew = (raw[2] - 3 * raw[0] * raw[1] + 2 * raw[0] ** 3) / var ** 1.5
    assert np.allclose(T.clipped_normal_moments(lo, hi, mu, sigma), (raw[0], var, skew), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("k, p_w, p_x", [(9, 0.5, 0.1), (8, 0.5, 0.95), (9, 0.7, 0.1), (16, 0.6, 0.6)])
def test_zero_centred_binary_weights_rebalance_an_unbalanced_input(k, p_w, p_x):
    share = T.binary_dot_plus_share(k, p_w, p_x)
    if p_w == 0.5:
        assert math.isclose(share, T.binary_dot_plus_share(k, 0.5, 0.5), rel_tol=1e-12)
    check = T.measure_binary_dot_plus_share(k, p_w, p_x, n=200_000, rng=np.random.default_rng(k))
    assert_agrees(check)
    if p_w != 0.5:
        assert_rejected(check, T.binary_dot_plus_share(k, 0.5, 0.5))


@pytest.mark.parametrize("slope", [0.0, 0.1, 0.25, 0.5, 0.9, 1.0, 2.0])
def test_leaky_relu_then_batchnorm_and_sign_gives_phi_of_minus_1_minus_a_over_sqrt_2pi(slope):
    predicted = T.leaky_relu_bn_sign_fraction(slope)
    if slope <= 1.0:
        assert math.isclose(predicted, stats.norm.cdf(-(1 - slope) / math.sqrt(2 * math.pi)), rel_tol=1e-12)
    check = T.measure_leaky_relu_bn_sign_fraction(slope, n=200_000, sigma=2.5, rng=np.random.default_rng(3))
    assert_agrees(check)
    if slope < 0.5:
        assert_rejected(check, 0.5)


@pytest.mark.parametrize("k, rho", [(2, 0.3), (2, 0.7), (3, 0.5)])
def test_max_pool_skew_on_spatially_correlated_windows(k, rho):
    rng = np.random.default_rng(int(10 * rho) + k)
    mean_check, var_check = T.measure_pooled_moments(k, "max", n=200_000, rng=rng, rho=rho)
    assert_agrees(mean_check)
    assert_agrees(var_check)
    check = T.measure_pooled_sign_fraction(k, "max", n=400_000, rng=rng, rho=rho)
    assert_agrees(check)
    iid = T.pooled_sign_fraction(k, "max")
    assert iid < check.predicted < 0.5                          # correlation weakens the skew
    assert_rejected(check, iid)
    assert T.pooled_sign_fraction(k, "max", rho=0.0) == iid
    assert_agrees(T.measure_pooled_sign_fraction(k, "avg", n=100_000, rng=rng, rho=rho))


# Darabi et al. 2018 (BNN+)

def test_tang_regularizer_beside_r1_and_r2():
    w = np.array([-1.5, -1.0, -0.25, 0.0, 0.5, 2.0])
    assert np.allclose(T.regularizer(1.0, w, "tang"), np.sum(np.where(np.abs(w) <= 1, 1 - w ** 2, 0.0)))
    grad = T.regularizer_gradient(1.0, w, "tang")
    assert np.all(grad[np.abs(w) > 1] == 0)                          # no pull from outside [-1, 1]
    assert np.all(T.regularizer_gradient(1.0, w, "r1")[np.abs(w) > 1] != 0)
    assert np.all(T.regularizer_gradient(1.0, w, "r2")[np.abs(w) > 1] != 0)
    eps = 1e-6
    for kind in ("r1", "r2", "tang"):                               # away from the kinks, the derivative
        for x in (-0.6, 0.3, 1.7):
            numeric = (T.regularizer(1.0, np.array([x + eps]), kind) - T.regularizer(1.0, np.array([x - eps]), kind))
            assert math.isclose(float(numeric[()]) / (2 * eps), float(T.regularizer_gradient(1.0, np.array([x]),
                                                                                              kind)[0]), abs_tol=1e-6)
    with pytest.raises(ValueError, match="'r1', 'r2' or 'tang'"):
        T.regularizer(1.0, w, "r3")


@pytest.mark.parametrize("kind", ["r1", "r2", "tang"])
@pytest.mark.parametrize("std, alpha", [(0.7, 0.9), (0.3, 1.0)])
def test_expected_regularizers_for_gaussian_weights(kind, std, alpha):
    check = T.measure_regularizer(kind, std, alpha, n=200_000, rng=np.random.default_rng(int(100 * std)))
    assert_agrees(check)
    assert_rejected(check, 1.1 * check.predicted)


@pytest.mark.parametrize("kind, beta", [("htanh", 1.0), ("signswish", 1.0), ("signswish", 5.0),
                                        ("signswish", 10.0)])
def test_ste_spread_measures_how_close_a_pseudo_gradient_is_to_sign_prime(kind, beta):
    check = T.measure_ste_spread(kind, beta, n=400_000, rng=np.random.default_rng(int(beta)))
    assert_agrees(check)
    assert_rejected(check, 1.1 * check.predicted)


def test_signswish_is_closer_to_sign_prime_than_htanh_only_for_beta_above_2c():
    threshold = 2 * T.ste_spread("signswish", 1.0)
    assert math.isclose(T.signswish_closeness(threshold), 1.0, rel_tol=1e-12)
    assert T.signswish_closeness(5.0) > 1.0 > T.signswish_closeness(2.0)
    assert math.isclose(T.signswish_closeness(10.0), 2 * T.signswish_closeness(5.0), rel_tol=1e-12)
