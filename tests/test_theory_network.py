"""Sari et al. 2019 on real minibnn networks: eq. 1 against autograd, Theorem 1 and the forward variance.

The networks are minibnn's own (BinaryLinear with the paper's constant-variance init, SteSign activations,
BatchNorm1d, the Tensor engine's backward, read by an ActivationRecorder); each seed is one freshly initialised
network, so the stderr of a per-layer mean square is the spread over networks / sqrt(seeds).

Statistical tolerance, as in test_theory.py: a prediction agrees when |predicted - measured| <= Z·stderr, with
Z = Φ⁻¹(1 - α/(2m)) for a family-wise false-failure rate α = 1e-6 over at most m = FAMILY.max_comparisons comparisons
(counted, and asserted at the end): Z ≈ 6.0. Every wrong formula is checked by the same rule and must be
rejected. Eq. 1 against autograd is an exact comparison (float64 rounding, relative 1e-10).
"""
from __future__ import annotations

import math


import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import strategies  # noqa: F401  (registers the project's hypothesis profile)
from montecarlo import Family
from minibnn import theory as T

FAMILY = Family(max_comparisons=400, alpha=1e-6)
Z = FAMILY.z
agrees, assert_agrees, assert_rejected = FAMILY.agrees, FAMILY.assert_agrees, FAMILY.assert_rejected
_family_size = FAMILY.fixture()

seeds = st.integers(0, 2 ** 31)


def networks(seed: int, count: int) -> range:
    """``count`` seeds, one network each, starting at a drawn one."""
    return range(seed, seed + count)


# --- eq. 1 against the engine's BatchNorm1d backward ---------------------------------------------------------

@settings(max_examples=40)
@given(batch=st.integers(2, 9), features=st.integers(1, 5), eps=st.sampled_from([0.0, 1e-3, 0.5]),
       zero_upstream=st.booleans(), seed=seeds)
def test_eq1_matches_autograd(batch, features, eps, zero_upstream, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 2.0, (batch, features)) + rng.normal(0.0, 3.0, features)
    gamma, beta = rng.normal(0.0, 1.5, features), rng.normal(0.0, 1.0, features)
    upstream = np.zeros((batch, features)) if zero_upstream else rng.normal(size=(batch, features))
    check = T.check_batchnorm_backward_against_autograd(x, gamma, beta, eps, upstream)
    assert check.agrees, check


def test_autograd_comparison_rejects_a_wrong_eq1():
    x = np.random.default_rng(3).normal(size=(6, 3))
    gamma = np.array([1.0, -2.0, 0.5])

    def without_variance_term(grad_z, s_hat, std, gamma, axis=0):       # the "centred only" backward
        g = grad_z - grad_z.mean(axis=axis, keepdims=True)
        return gamma / std * g, (grad_z * s_hat).sum(axis=axis), grad_z.sum(axis=axis)

    def statistics_held_fixed(grad_z, s_hat, std, gamma, axis=0):       # eval-mode backward in training
        return gamma / std * grad_z, (grad_z * s_hat).sum(axis=axis), grad_z.sum(axis=axis)

    def beta_gradient_averaged(grad_z, s_hat, std, gamma, axis=0):      # dL/dβ as a mean instead of a sum
        grad_s, grad_gamma, grad_beta = T.batchnorm_backward(grad_z, s_hat, std, gamma, axis)
        return grad_s, grad_gamma, grad_beta / grad_z.shape[axis]

    assert T.check_batchnorm_backward_against_autograd(x, gamma, rng=np.random.default_rng(4)).agrees
    for wrong in (without_variance_term, statistics_held_fixed, beta_gradient_averaged):
        check = T.check_batchnorm_backward_against_autograd(x, gamma, backward=wrong, rng=np.random.default_rng(4))
        assert not check.agrees and "DISAGREES" in repr(check), (wrong.__name__, check)


# --- Theorem 1 without BatchNorm, and the forward variance ---------------------------------------------------

@settings(max_examples=8)
@given(depth=st.integers(1, 5), width=st.integers(4, 24), batch=st.integers(1, 12), in_features=st.integers(1, 24),
       out_features=st.integers(1, 24), top_var=st.floats(0.2, 3.0), seed=seeds)
def test_theorem1_without_batchnorm_on_network(depth, width, batch, in_features, out_features, top_var, seed):
    checks = T.measure_theorem1_network(depth, width, batch, batchnorm=False, seeds=networks(seed, 150),
                                        in_features=in_features, out_features=out_features, top_var=top_var)
    assert [c.predicted for c in checks] == list(T.theorem1_gradient_variance(
        T.mlp_widths(depth, width, in_features, out_features), False, top_var))
    for check in checks:
        assert_agrees(check)
    if depth >= 2 and out_features >= 4:     # dropping the top layer's fan-out K_L is rejected
        assert_rejected(checks[-2], checks[-2].predicted / out_features)


def test_theorem1_wrong_formulas_rejected_on_network():
    checks = T.measure_theorem1_network(5, 16, 16, batchnorm=False, seeds=200)
    for l, check in enumerate(checks):
        assert_agrees(check)
        if l < len(checks) - 1:
            assert_rejected(check, check.predicted / 16)    # one factor K too few: K^{L-l-1}
            assert_rejected(check, 1.0)                     # no factor K at all (as if V(w) = 1/K, Glorot)


@settings(max_examples=8)
@given(depth=st.integers(1, 5), width=st.integers(2, 16), batch=st.integers(1, 8), in_features=st.integers(1, 16),
       input_var=st.sampled_from([0.25, 0.5625, 2.25, 4.0]), activation=st.sampled_from(["identity", "sign"]),
       seed=seeds)
def test_preactivation_variance_on_network(depth, width, batch, in_features, input_var, activation, seed):
    checks = T.measure_preactivation_variance_network(depth, width, batch, seeds=networks(seed, 150),
                                                      activation=activation, in_features=in_features,
                                                      input_var=input_var)
    # input_var is an exact square, so x = ±sqrt(input_var) is exact: with K_0 = 1 the first layer's mean square
    # is the constant input_var (stderr 0), and agreement means equality
    for check in checks:
        assert_agrees(check)
    widths = T.mlp_widths(depth, width, in_features)
    if activation == "identity" and in_features >= 4:
        # the product as printed misses K_0·V(w^1) (and pairs K_l' with w^l')
        assert_rejected(checks[0], T.preactivation_variance_as_printed(widths, 1.0, input_var)[0])
    if activation == "sign" and depth >= 2 and in_features * input_var >= 4:
        # the sign resets the scale: Glorot's product V(x)·K_0·K_1 (not K_1) is wrong for a BNN from layer 2 on
        assert_rejected(checks[1], T.preactivation_variance(widths, 1.0, input_var)[1])


def test_preactivation_variance_with_batchnorm_on_network():
    """A BatchNorm before the sign does not change V(s^l) = K_{l-1}: the σ̂² the proof of Theorem 1 assumes."""
    for check in T.measure_preactivation_variance_network(4, 16, 16, seeds=100, batchnorm=True, in_features=8):
        assert_agrees(check)


# --- Theorem 1 with BatchNorm ----------------------------------------------------------------------------------

def two_sample_check(name: str, network: np.ndarray, twin: np.ndarray) -> T.Check:
    """Network mean against the NumPy twin's mean: stderr sqrt(se_a² + se_b²) of the difference."""
    se = math.hypot(network.std(ddof=1) / math.sqrt(network.size), twin.std(ddof=1) / math.sqrt(twin.size))
    return T.Check(name, float(twin.mean()), float(network.mean()), se, network.size)


@settings(max_examples=6)
@given(depth=st.integers(2, 4), width=st.integers(16, 32), batch=st.integers(16, 32), batchnorm=st.booleans(),
       seed=seeds)
def test_network_matches_numpy_twin(depth, width, batch, batchnorm, seed):
    """The engine (autograd through BinaryLinear, SteSign, BatchNorm1d) and the NumPy re-derivation
    (simulate_binary_mlp_gradients) sample the same law of per-layer gradient mean squares."""
    widths = T.mlp_widths(depth, width)
    network = T.sample_binary_mlp(widths, batch, batchnorm, seeds=networks(seed, 150)).gradient
    twin = T.simulate_binary_mlp_gradients(widths, batch, batchnorm, n_nets=600, rng=np.random.default_rng(seed))
    for l in range(depth):
        assert_agrees(two_sample_check(f"layer {l + 1} of {widths}, B={batch}, BN={batchnorm}",
                                       network[:, l], twin[:, l]))


def test_theorem1_with_batchnorm_excess_on_network():
    """Finding: at K = 8, B = 64 every layer below the top carries 25-70% more gradient variance than
    Π K_{l'+1}/K_{l'-1} = 1; at the top BatchNorm layer the excess is exactly (B-2)/B·E(K/σ̂²) - 1."""
    checks = T.measure_theorem1_network(5, 8, 64, batchnorm=True, seeds=200)
    for check in checks[:-1]:
        assert not agrees(check) and check.measured > check.predicted, check
    assert_agrees(checks[-1])                    # the top layer's gradient is the given one
    top = T.measure_bn_top_layer_network(5, 8, 64, seeds=200)
    assert_agrees(top)
    assert_rejected(top, T.theorem1_gradient_variance(T.mlp_widths(5, 8), True)[-2])


@settings(max_examples=6)
@given(depth=st.integers(2, 5), width=st.integers(12, 32), batch=st.integers(16, 48), in_features=st.integers(12, 32),
       out_features=st.integers(2, 32), top_var=st.floats(0.2, 3.0), seed=seeds)
def test_top_batchnorm_layer_exact(depth, width, batch, in_features, out_features, top_var, seed):
    assert_agrees(T.measure_bn_top_layer_network(depth, width, batch, seeds=networks(seed, 100),
                                                 in_features=in_features, out_features=out_features,
                                                 top_var=top_var))


def test_theorem1_with_batchnorm_approached_as_width_and_batch_grow():
    """The excess at layer L-2 of a 4-layer network falls from about +22% (K = 16, B = 32) to about +6%
    (K = 64, B = 128): the theorem is the limit, reached only when both grow."""
    def relative_excess(width: int, batch: int, n_networks: int):
        check = T.measure_theorem1_network(4, width, batch, batchnorm=True, seeds=n_networks)[1]
        return check.measured / check.predicted - 1.0, check.stderr / check.predicted

    small, small_se = relative_excess(16, 32, 300)
    large, large_se = relative_excess(64, 128, 150)
    FAMILY.count += 2
    assert small - large > Z * math.hypot(small_se, large_se), (small, large, small_se, large_se)
    assert 0.0 < large - Z * large_se and large + Z * large_se < 0.10, (large, large_se)


# --- the STE: Theorem 1 needs the identity STE -------------------------------------------------------------------

def test_clipped_ste_breaks_theorem1():
    """With the clipped STE 1_{|x|<=1} of the paper's section 2, Theorem 1 fails in both cases: without
    BatchNorm the growth per layer is about sqrt(2K/π), not K (clipped_ste_gradient_variance, first order,
    within 5%); with BatchNorm the gradient shrinks going down instead of staying at V(g^L)."""
    widths = T.mlp_widths(5, 16)
    checks = T.measure_theorem1_network(5, 16, 32, batchnorm=False, seeds=200, clip_value=1.0)
    approx = T.clipped_ste_gradient_variance(widths, clip_value=1.0)
    for check, value in zip(checks[:-1], approx[:-1]):
        assert not agrees(check) and check.measured < check.predicted / 4, check
        assert abs(check.measured - value) <= Z * check.stderr + 0.05 * value, (check, value)
    with_bn = T.measure_theorem1_network(5, 16, 32, batchnorm=True, seeds=200, clip_value=1.0)
    for lower, upper in zip(with_bn[:-1], with_bn[1:]):
        assert not agrees(lower) and lower.measured < lower.predicted, lower
        assert lower.measured + Z * lower.stderr < upper.measured, (lower, upper)


def test_active_share_of_binary_dot_products():
    assert T.binary_dot_active_share(16) == math.comb(16, 8) / 2 ** 16
    assert T.binary_dot_active_share(15) == 2 * math.comb(15, 7) / 2 ** 15
    assert T.binary_dot_active_share(5, clip_value=math.inf) == 1.0
    assert T.binary_dot_active_share(4, clip_value=1.0, input_scale=0.5) == (6 + 4 + 4) / 16    # |s| <= 2
    # and against the dot products themselves
    rng = np.random.default_rng(0)
    s = np.where(rng.random((40_000, 9)) < 0.5, -1, 1).sum(axis=1)
    share = np.mean(np.abs(s) <= 1)
    se = math.sqrt(share * (1 - share) / s.size)
    assert_agrees(T.Check("active share K=9", T.binary_dot_active_share(9), float(share), se, s.size))


# --- the network and its arguments -----------------------------------------------------------------------------

def test_binary_mlp_is_the_theorems_network():
    model = T.binary_mlp((6, 8, 8, 3), batchnorm=True, clip_value=None, rng=np.random.default_rng(0))
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["BinaryLinear", "BatchNorm1d", "BinaryLinear", "BatchNorm1d", "BinaryLinear"]
    assert model[0].input_quantizer is None and model[2].input_quantizer.clip_value is None
    for layer in (model[0], model[2], model[4]):
        assert set(np.unique(layer.quantized_weight())) <= {-1.0, 1.0} and layer.bias is None
        assert layer.weight.dtype == np.float64
        assert np.all(np.abs(layer.weight.data) <= math.sqrt(3e-2))          # U[-a, a], a² = 3·1e-2
    assert [type(m).__name__ for m in T.binary_mlp((6, 8, 3), batchnorm=False)] == ["BinaryLinear"] * 2


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="activation must be one of"):
        T.binary_mlp((4, 4), False, activation="relu")
    with pytest.raises(ValueError, match="clip_value is the STE window"):
        T.binary_mlp((4, 4), False, activation="identity", clip_value=1.0)
    with pytest.raises(ValueError, match="seeds must be"):
        T.sample_binary_mlp((4, 4), 4, False, seeds=[3])
    with pytest.raises(ValueError, match="batch must be an int >= 2"):
        T.sample_binary_mlp((4, 4, 4), 1, True, seeds=2)
    with pytest.raises(ValueError, match="depth must be an int >= 1"):
        T.mlp_widths(0, 4)
    with pytest.raises(ValueError, match="predicted must hold one value per layer"):
        T.measure_theorem1_network(2, 4, 4, False, seeds=2, predicted=[1.0])
    with pytest.raises(ValueError, match="depth must be >= 2"):
        T.measure_bn_top_layer_network(1, 16, 16, seeds=2)
    with pytest.raises(ValueError, match="identity activations with BatchNorm"):
        T.measure_preactivation_variance_network(2, 4, 4, seeds=2, activation="identity", batchnorm=True)
    with pytest.raises(FloatingPointError, match="zero batch variance"):
        T.sample_binary_mlp((2, 2, 2), 2, True, seeds=40)          # two samples of a 2-term dot product tie
    with pytest.raises(ValueError, match=r"x must have shape \(B, C\) with B >= 2"):
        T.check_batchnorm_backward_against_autograd(np.ones((1, 3)))
    with pytest.raises(ValueError, match="upstream has shape"):
        T.check_batchnorm_backward_against_autograd(np.eye(3), upstream=np.ones((3, 2)))
