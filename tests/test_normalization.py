"""Tests of minibnn.normalization: the BatchNorm variants of Sari et al. 2019 (values by hand, running
statistics and evaluation semantics, finite-difference gradients of each variant in training and evaluation),
the constants K_{l-1} and K_{l+1}, the factory, and a Monte-Carlo check that c·K_{l-1} is the variance of a
binary dot product."""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Module, Tensor, gradcheck, no_grad
from minibnn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Identity, Linear
from minibnn.normalization import (CentredNorm, FixedScaleNorm, fan_in, fan_out, fixed_variance, glorot_variance,
                                   make_norm, norm_kinds)
from minibnn.quantized import BinaryLinear
from strategies import MEDIUM, arrays

X = np.array([[1.0, 10.0], [3.0, 30.0], [8.0, -4.0]])  # batch means 4 and 12


def test_centred_values_and_running_mean():
    norm = CentredNorm(2, affine=False, dtype=np.float64)
    np.testing.assert_array_equal(norm(X).data, X - [4.0, 12.0])
    np.testing.assert_allclose(norm.running_mean, [0.4, 1.2])  # 0.9·0 + 0.1·mean
    # the running variance records the unbiased batch variance: 0.9·1 + 0.1·var·n/(n-1)
    np.testing.assert_allclose(norm.running_var, 0.9 + 0.1 * X.var(axis=0, ddof=1))
    norm.eval()
    np.testing.assert_allclose(norm(X).data, X - [0.4, 1.2])  # evaluation: the running mean, no division
    np.testing.assert_allclose(norm.running_mean, [0.4, 1.2])  # and no update


def test_fixed_scale_values_with_affine():
    norm = FixedScaleNorm(2, variance=4.0, dtype=np.float64)
    norm.weight.data[...] = [2.0, -1.0]
    norm.bias.data[...] = [0.5, 1.0]
    expected = (X - [4.0, 12.0]) / 2.0 * [2.0, -1.0] + [0.5, 1.0]
    np.testing.assert_allclose(norm(X).data, expected, rtol=1e-15)
    norm.eval()
    np.testing.assert_allclose(norm(X).data, (X - norm.running_mean) / 2.0 * [2.0, -1.0] + [0.5, 1.0], rtol=1e-15)
    norm.reset_running_stats()
    np.testing.assert_array_equal(norm.running_mean, [0, 0])


def test_images_are_normalised_per_channel():
    x = np.random.default_rng(0).normal(size=(3, 2, 4, 5))
    y = FixedScaleNorm(2, variance=9.0, affine=False, dtype=np.float64)(x).data
    np.testing.assert_allclose(y, (x - x.mean(axis=(0, 2, 3), keepdims=True)) / 3.0, rtol=1e-12, atol=1e-15)


def test_make_norm_kinds():
    prev, nxt = Linear(10, 6), Linear(6, 3)
    assert isinstance(make_norm("batchnorm", 6), BatchNorm1d)
    assert isinstance(make_norm("bn", 6, spatial=True), BatchNorm2d)
    assert type(make_norm("centred", 6)) is CentredNorm and type(make_norm("centered", 6)) is CentredNorm
    fixed = make_norm("fixed", 6, prev_layer=prev, multiplier=3.0)
    assert type(fixed) is FixedScaleNorm and fixed.variance == 30.0  # 3·K_{l-1}, K_{l-1} = 10
    assert make_norm("glorot", 6, next_layer=nxt).variance == 3.0     # K_{l+1} = 3
    assert make_norm("fixed", 6, variance=7.0).variance == 7.0
    assert isinstance(make_norm("none", 6), Identity) and isinstance(make_norm(None, 6), Identity)
    assert {"batchnorm", "centred", "fixed", "glorot", "none"} <= set(norm_kinds())
    x = np.random.default_rng(1).normal(size=(4, 6))
    reference = BatchNorm1d(6, dtype=np.float64)
    np.testing.assert_array_equal(make_norm("standard", 6, dtype=np.float64)(x).data, reference(x).data)


def test_make_norm_errors():
    with pytest.raises(ValueError, match="kind must be one of .* got 'layer'"):
        make_norm("layer", 4)
    with pytest.raises(ValueError, match=r"give variance=, or prev_layer="):
        make_norm("fixed", 4)
    with pytest.raises(ValueError, match=r"give variance=, or next_layer="):
        make_norm("glorot", 4)
    with pytest.raises(ValueError, match="FixedScaleNorm: variance must be > 0, got -1"):
        FixedScaleNorm(4, variance=-1)
    with pytest.raises(ValueError, match=r"FixedScaleNorm\(3\) got input of shape \(2, 4\); expected \(N, 3\)"):
        FixedScaleNorm(3)(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="got a float64 input but its parameters are float32"):
        CentredNorm(2)(Tensor(np.zeros((2, 2))))
    with pytest.raises(ValueError, match="training needs more than one value per channel"):
        CentredNorm(2)(np.zeros((1, 2)))
    with pytest.raises(TypeError, match="expected a layer with a weight"):
        fan_in(Identity())


def test_the_constants_by_hand():
    conv, dense = Conv2d(16, 32, (3, 5)), Linear(256, 100)
    assert (fan_in(conv), fan_out(conv)) == (16 * 15, 32 * 15)
    assert (fan_in(dense), fan_out(dense)) == (256, 100)
    assert fixed_variance(dense) == 256.0 and fixed_variance(conv, multiplier=2) == 480.0
    assert glorot_variance(conv) == 480.0
    with pytest.raises(ValueError, match="multiplier must be > 0"):
        fixed_variance(dense, multiplier=0)


# --------------------------------------------------------------------------------------------------------------
# Gradients: every variant, training and evaluation, against finite differences
# --------------------------------------------------------------------------------------------------------------
def norm_gradcheck(norm: Module, x: np.ndarray) -> bool:
    """gradcheck with respect to the input and the affine parameters; the running statistics are restored
    before every call so that finite differences see the same function."""
    norm.astype(np.float64)
    names = [n for n, _ in norm.named_parameters()]
    buffers = {n: np.array(b, copy=True) for n, b in norm.named_buffers()}

    def call(x, *params):
        for n, b in buffers.items():
            getattr(norm, n)[...] = b
        saved = [getattr(norm, n) for n in names]
        try:
            for n, p in zip(names, params):
                object.__setattr__(norm, n, p)
            return norm(x)
        finally:
            for n, p in zip(names, saved):
                object.__setattr__(norm, n, p)

    return gradcheck(call, x, *[getattr(norm, n).data + 0.3 * (i + 1) for i, n in enumerate(names)])


KINDS = [("batchnorm", {}), ("centred", {}), ("fixed", {"variance": 6.0}), ("glorot", {"variance": 0.5}),
         ("none", {})]


@settings(max_examples=MEDIUM)
@given(st.data(), st.sampled_from(KINDS), st.booleans(), st.booleans(), st.sampled_from([(3, 2), (2, 2, 3, 2)]))
def test_gradcheck_every_variant(data, kind, training, affine, shape):
    name, kwargs = kind
    spatial = len(shape) == 4
    if name == "none":
        norm = make_norm(name, shape[1])
    else:
        norm = make_norm(name, shape[1], spatial=spatial, affine=affine, dtype=np.float64, **kwargs)
        if not training:  # evaluation uses running statistics: give them non-trivial values
            norm.running_mean[...] = data.draw(arrays((shape[1],)))
            norm.running_var[...] = data.draw(arrays((shape[1],), 0.5, 2.0))
    norm.train(training)
    x = data.draw(arrays(shape))
    if name == "none":
        assert gradcheck(lambda t: norm(t) * 1.0, x)
    else:
        assert norm_gradcheck(norm, x)


def test_fixed_scale_gradient_formula():
    """In training, with σ constant: dL/dx = γ/σ·(g - mean_batch(g)) (Sari et al. eq. 1 without the σ term)."""
    norm = FixedScaleNorm(2, variance=4.0, dtype=np.float64)
    norm.weight.data[...] = [3.0, -1.0]
    x = Tensor(X.copy(), requires_grad=True)
    g = np.array([[1.0, 2.0], [0.0, -1.0], [5.0, 0.5]])
    norm(x).backward(g)
    np.testing.assert_allclose(x.grad, np.array([3.0, -1.0]) / 2.0 * (g - g.mean(axis=0)), rtol=1e-15)
    np.testing.assert_allclose(norm.bias.grad, g.sum(axis=0))
    np.testing.assert_allclose(norm.weight.grad, (g * (X - X.mean(axis=0)) / 2.0).sum(axis=0), rtol=1e-14)


# --------------------------------------------------------------------------------------------------------------
# Why K_{l-1}: the variance of a binary dot product of K terms is K (Monte Carlo)
# --------------------------------------------------------------------------------------------------------------
def test_fixed_variance_is_the_variance_of_a_binary_dot_product():
    """s = Σ_k sign(x_k)·sign(w_k) over K = 256 iid ±1 products has variance K (Sari et al. 2019, Sec. 2), so
    dividing by sqrt(fixed_variance(layer)) = sqrt(K) gives unit variance.

    Tolerance: with N = 4000 samples the sample variance of a near-normal s/sqrt(K) (excess kurtosis -2/K) has
    standard deviation sqrt(2/(N-1)) ≈ 0.022; every one of the 8 channels must be within 5 of those (0.11)."""
    rng = np.random.default_rng(0)
    layer = BinaryLinear(256, 8, bias=False, rng=rng)
    norm = FixedScaleNorm(8, variance=fixed_variance(layer), affine=False)
    n = 4000
    x = rng.choice([-1.0, 1.0], size=(n, 256)).astype(np.float32)
    with no_grad():
        y = norm(layer(x)).data.astype(np.float64)
    np.testing.assert_allclose(y.var(axis=0, ddof=1), 1.0, atol=5 * np.sqrt(2 / (n - 1)))
    # and the running variance the norm records estimates K itself
    assert np.allclose(norm.running_var, 0.9 + 0.1 * layer(x).data.var(axis=0, ddof=1), rtol=1e-4)
