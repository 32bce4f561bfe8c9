"""Tests of minibnn.quantized and minibnn.constraints: the forward pass of quantized layers equals the float
layer applied to sign(x) and sign(W), exactly; ±1 padding; straight-through gradients against their hand
formulas (with exact zeros and the clip edges ±1 in the data); the weight scales; latent vs binary weights;
weight clipping; error messages."""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Parameter, Sequential, Tensor, gradcheck
from minibnn import functional as F
from minibnn.constraints import WeightClip, apply_constraints, get as get_constraint, names as constraint_names
from minibnn.layers import BatchNorm1d, Linear
from minibnn.optim import SGD
from minibnn.quantized import BinaryConv2d, BinaryLinear, QuantConv2d, QuantLinear
from minibnn.quantizers import SteSign, SwishSign
from strategies import CHEAP, MEDIUM, arrays, arrays_with, shapes

EDGES = (0.0, -0.0, 1.0, -1.0)


def sign(a: np.ndarray) -> np.ndarray:
    """sign with sign(0) = +1, the library's convention."""
    return np.where(a >= 0, 1.0, -1.0).astype(a.dtype)


def inside(a: np.ndarray) -> np.ndarray:
    """The clipped STE's window 1{|a| <= 1} (edges included)."""
    return (np.abs(a) <= 1).astype(a.dtype)


def set_weight(layer, w: np.ndarray) -> None:
    layer.weight.data[...] = w


# --------------------------------------------------------------------------------------------------------------
# Forward: exactly the float layer on sign(x), sign(W)
# --------------------------------------------------------------------------------------------------------------
@settings(max_examples=CHEAP)
@given(st.data(), shapes(min_dims=1, max_dims=2, max_side=3), st.integers(1, 5), st.integers(1, 4), st.booleans(),
       st.sampled_from([np.float32, np.float64]))
def test_binary_linear_forward_is_linear_of_signs(data, lead, n_in, n_out, bias, dtype):
    layer = BinaryLinear(n_in, n_out, bias=bias, dtype=dtype, rng=np.random.default_rng(0))
    w = data.draw(arrays_with((n_out, n_in), EDGES, -1.5, 1.5)).astype(dtype)
    set_weight(layer, w)
    if bias:
        layer.bias.data[...] = data.draw(arrays_with((n_out,), (0.0,))).astype(dtype)
    x = data.draw(arrays_with(lead + (n_in,), EDGES)).astype(dtype)
    y = layer(Tensor(x))
    expected = F.linear(Tensor(sign(x)), Tensor(sign(w)), None if not bias else Tensor(layer.bias.data)).data
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.data, expected)
    if not bias:  # the product of ±1 values is an integer: (#agreements - #disagreements)
        np.testing.assert_array_equal(y.data, np.round(y.data))


@settings(max_examples=MEDIUM)
@given(st.data(), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2),
       st.integers(0, 2), st.integers(3, 6), st.sampled_from([-1.0, 0.0, 1.0]))
def test_binary_conv_forward_is_conv_of_signs(data, n, c_in, c_out, k, stride, padding, size, pad):
    layer = BinaryConv2d(c_in, c_out, k, stride=stride, padding=padding, pad_values=pad, bias=False,
                         dtype=np.float64, rng=np.random.default_rng(0))
    w = data.draw(arrays_with((c_out, c_in, k, k), EDGES, -1.5, 1.5))
    set_weight(layer, w)
    x = data.draw(arrays_with((n, c_in, size, size), EDGES))
    expected = F.conv2d(sign(x), Tensor(sign(w)), stride=stride, padding=padding, pad_value=pad).data
    np.testing.assert_array_equal(layer(Tensor(x)).data, expected)
    # padding with ±1 is the same as binarizing an input that was padded with ±1 beforehand
    if pad != 0.0:
        padded = np.pad(sign(x), ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=pad)
        np.testing.assert_array_equal(layer(Tensor(x)).data,
                                      F.conv2d(padded, Tensor(sign(w)), stride=stride).data)


def test_pad_values_by_hand():
    """A 3x3 all-(+1) input and kernel, padding 1: a corner output sees 4 inputs and 5 padded cells."""
    x = np.ones((1, 1, 3, 3))
    corners = {}
    for pad in (0.0, 1.0, -1.0):
        layer = QuantConv2d(1, 1, 3, padding=1, bias=False, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                            pad_values=pad, weight_init="ones", dtype=np.float64)
        out = layer(x).data[0, 0]
        assert out[1, 1] == 9  # the centre never sees the border
        corners[pad] = out[0, 0]
    assert corners == {0.0: 4.0, 1.0: 9.0, -1.0: -1.0}
    assert BinaryConv2d(1, 1, 3).pad_values == 1.0  # the preset keeps binary inputs binary
    assert QuantConv2d(1, 1, 3).pad_values == 0.0   # Larq's default
    assert QuantConv2d(1, 1, 3, pad_value=-1.0).pad_values == -1.0  # Conv2d's name works too
    with pytest.raises(ValueError, match="pad_values=1.0 and pad_value=-1.0"):
        QuantConv2d(1, 1, 3, pad_values=1.0, pad_value=-1.0)


def test_without_quantizers_it_is_the_float_layer():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 5))
    q = QuantLinear(5, 3, dtype=np.float64, rng=np.random.default_rng(1))
    f = Linear(5, 3, dtype=np.float64, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(q(x).data, f(x).data)
    assert q.input_precision is None and q.kernel_precision is None and not q.is_binary
    assert gradcheck(lambda x, w, b: F.linear(q.input_operand(x), w, b), x, q.weight.data, q.bias.data)


# --------------------------------------------------------------------------------------------------------------
# Backward: straight-through gradients equal their hand formulas
# --------------------------------------------------------------------------------------------------------------
@settings(max_examples=CHEAP)
@given(st.data(), st.integers(1, 4), st.integers(1, 5), st.integers(1, 4))
def test_binary_linear_ste_gradients(data, n, n_in, n_out):
    layer = BinaryLinear(n_in, n_out, dtype=np.float64, rng=np.random.default_rng(0))
    w = data.draw(arrays_with((n_out, n_in), EDGES, -1.5, 1.5))
    set_weight(layer, w)
    x = Tensor(data.draw(arrays_with((n, n_in), EDGES, -2.0, 2.0)), requires_grad=True)
    g = data.draw(arrays_with((n, n_out), (0.0,)))
    layer(x).backward(g)
    # y = sign(x) sign(W)ᵀ + b:  dL/dx = (g sign(W)) ⊙ 1{|x| <= 1},  dL/dW = (gᵀ sign(x)) ⊙ 1{|W| <= 1}
    np.testing.assert_allclose(x.grad, (g @ sign(w)) * inside(x.data), rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, (g.T @ sign(x.data)) * inside(w), rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, g.sum(axis=0), rtol=0, atol=1e-12)


@settings(max_examples=MEDIUM)
@given(st.data(), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 1), st.integers(1, 2))
def test_binary_conv_ste_gradients(data, c_in, c_out, k, padding, stride):
    layer = BinaryConv2d(c_in, c_out, k, stride=stride, padding=padding, bias=False, dtype=np.float64,
                         rng=np.random.default_rng(0))
    w = data.draw(arrays_with((c_out, c_in, k, k), EDGES, -1.5, 1.5))
    set_weight(layer, w)
    x = Tensor(data.draw(arrays_with((2, c_in, 4, 4), EDGES, -2.0, 2.0)), requires_grad=True)
    y = layer(x)
    g = data.draw(arrays_with(y.shape, (0.0,)))
    y.backward(g)
    # the float convolution's gradients at the binary operands, masked by the STE windows
    xs, ws = Tensor(sign(x.data), requires_grad=True), Tensor(sign(w), requires_grad=True)
    F.conv2d(xs, ws, stride=stride, padding=padding, pad_value=1.0).backward(g)
    np.testing.assert_allclose(x.grad, xs.grad * inside(x.data), rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, ws.grad * inside(w), rtol=0, atol=1e-12)


@settings(max_examples=CHEAP)
@given(st.data(), st.integers(1, 3), st.integers(2, 5), st.integers(1, 3))
def test_xnor_scale_forward_and_gradient(data, n, n_in, n_out):
    layer = QuantLinear(n_in, n_out, bias=False, kernel_quantizer="ste_sign", weight_scale="xnor",
                        dtype=np.float64, rng=np.random.default_rng(0))
    w = data.draw(arrays_with((n_out, n_in), EDGES, -1.5, 1.5))
    set_weight(layer, w)
    x = data.draw(arrays((n, n_in)))
    alpha = np.abs(w).mean(axis=1)  # XNOR-Net: α_c = mean|W_c|
    np.testing.assert_array_equal(layer.filter_scale(), alpha)
    np.testing.assert_allclose(layer.effective_weight(), alpha[:, None] * sign(w), rtol=1e-15)
    y = layer(Tensor(x))
    np.testing.assert_allclose(y.data, x @ (alpha[:, None] * sign(w)).T, rtol=1e-12, atol=1e-12)
    g = data.draw(arrays_with(y.shape, (0.0,)))
    y.backward(g)
    # W'_ci = α_c sign(W_ci), G = gᵀx = dL/dW':  dL/dW_ci = α_c 1{|W_ci|<=1} G_ci + sign(W_ci)/n Σ_j G_cj sign(W_cj)
    big = g.T @ x
    through_alpha = np.where(w > 0, 1.0, np.where(w < 0, -1.0, 0.0)) / n_in  # d|W|/dW = 0 at W = 0
    expected = alpha[:, None] * inside(w) * big + through_alpha * (big * sign(w)).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(layer.weight.grad, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=CHEAP)
@given(st.data(), st.integers(1, 3), st.integers(2, 5), st.integers(1, 3), st.sampled_from(["median", "mean"]))
def test_trainable_scale_forward_and_gradient(data, n, n_in, n_out, alpha_init):
    layer = QuantLinear(n_in, n_out, bias=False, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                        weight_scale="trainable", alpha_init=alpha_init, dtype=np.float64,
                        rng=np.random.default_rng(0))
    w = layer.weight.data.copy()
    start = np.median(np.abs(w), axis=1) if alpha_init == "median" else np.abs(w).mean(axis=1)
    np.testing.assert_allclose(layer.alpha.data, start, rtol=1e-15)  # BNN+ eqs. 8-9
    alpha = layer.alpha.data
    x = data.draw(arrays_with((n, n_in), EDGES))
    y = layer(Tensor(x))
    np.testing.assert_allclose(y.data, sign(x) @ (alpha[:, None] * sign(w)).T, rtol=1e-12, atol=1e-12)
    g = data.draw(arrays_with(y.shape, (0.0,)))
    y.backward(g)
    big = g.T @ sign(x)  # dL/dW' for W' = α sign(W)
    np.testing.assert_allclose(layer.alpha.grad, (big * sign(w)).sum(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, alpha[:, None] * inside(w) * big, rtol=1e-12, atol=1e-12)
    assert any(p is layer.alpha for p in layer.parameters())


def test_smooth_quantizer_parameters_get_gradients_and_dtype():
    """ss_t's trainable β belongs to the layer (found by parameters()) and follows the layer's dtype."""
    layer = QuantLinear(3, 2, input_quantizer="ss_t", kernel_quantizer="ste_sign", dtype=np.float64,
                        rng=np.random.default_rng(0))
    assert isinstance(layer.input_quantizer, SwishSign) and layer.input_quantizer.beta.dtype == np.float64
    assert any(p is layer.input_quantizer.beta for p in layer.parameters())
    layer(np.array([[0.1, -0.2, 0.3]])).sum().backward()
    assert layer.input_quantizer.beta.grad is not None and layer.input_quantizer.beta.grad.dtype == np.float64


# --------------------------------------------------------------------------------------------------------------
# Latent weights vs binary weights
# --------------------------------------------------------------------------------------------------------------
def test_latent_and_binary_weights_are_distinct():
    layer = BinaryLinear(6, 4, rng=np.random.default_rng(0))
    binary = layer.quantized_weight()
    assert isinstance(layer.weight, Parameter) and not isinstance(binary, Tensor)
    assert not np.shares_memory(binary, layer.weight.data)
    np.testing.assert_array_equal(binary, sign(layer.weight.data))
    assert set(np.unique(binary)) <= {-1.0, 1.0}
    assert not np.array_equal(binary, layer.weight.data)
    assert all(p is not binary for p in layer.parameters())
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(layer.state_dict()["weight"], layer.weight.data)  # checkpoints hold latents
    latent = layer.weight.data.copy()
    binary[...] = 7  # the returned array is a copy: writing it changes neither the latent nor the binary weights
    np.testing.assert_array_equal(layer.weight.data, latent)
    np.testing.assert_array_equal(layer.quantized_weight(), sign(latent))
    np.testing.assert_array_equal(layer.effective_weight(), layer.quantized_weight())  # no scale
    assert layer.filter_scale() is None

    # a small SGD step moves the latent weights but (here) flips no binary weight
    before_latent, before_binary = layer.weight.data.copy(), layer.quantized_weight()
    layer.weight.grad = np.full(layer.weight.shape, 1e-6, dtype=np.float32)
    SGD([layer.weight], lr=1.0).step()
    assert not np.array_equal(layer.weight.data, before_latent)
    np.testing.assert_array_equal(layer.quantized_weight(), before_binary)


def test_precision_properties_and_repr():
    layer = QuantLinear(4, 2, kernel_quantizer="ste_tern", input_quantizer="ste_sign")
    assert (layer.input_precision, layer.kernel_precision, layer.is_binary) == (1, 2, False)
    assert BinaryConv2d(2, 3, 3).is_binary
    text = repr(BinaryLinear(4, 2, weight_scale="xnor"))
    assert text.startswith("BinaryLinear(in_features=4, out_features=2, bias=True, "
                           "kernel_constraint=WeightClip(clip_value=1), weight_scale='xnor'")
    assert "(input_quantizer): SteSign" in text and "(kernel_quantizer): SteSign" in text
    plain = QuantLinear(4, 2, kernel_quantizer=lambda w: w * 1.0)
    assert "kernel_quantizer=<lambda>" in repr(plain) and plain.kernel_precision is None


def test_quantizer_objects_are_used_as_given():
    q = SteSign(clip_value=0.5)
    layer = QuantLinear(3, 2, input_quantizer=q, dtype=np.float64)
    assert layer.input_quantizer is q
    x = Tensor(np.array([[0.7, 0.2, -0.4]]), requires_grad=True)
    layer(x).sum().backward()
    assert x.grad[0, 0] == 0 and x.grad[0, 1] != 0  # the window is |x| <= 0.5


def test_quantized_layer_errors():
    with pytest.raises(ValueError, match="weight_scale='xnor' scales quantized weights, but kernel_quantizer is None"):
        QuantLinear(3, 2, weight_scale="xnor")
    with pytest.raises(ValueError, match=r"weight_scale must be one of \(None, 'xnor', 'trainable'\), got 'l2'"):
        QuantLinear(3, 2, kernel_quantizer="ste_sign", weight_scale="l2")
    with pytest.raises(ValueError, match="unknown quantizer 'sgn'"):
        BinaryLinear(3, 2, input_quantizer="sgn")
    with pytest.raises(ValueError, match="unknown constraint 'clip'"):
        BinaryLinear(3, 2, kernel_constraint="clip")
    with pytest.raises(ValueError, match=r"BinaryLinear\(in_features=3\) got input of shape \(5, 4\)"):
        BinaryLinear(3, 2)(np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"BinaryConv2d\(in_channels=3, kernel_size=3\) got input of shape"):
        BinaryConv2d(3, 2, 3)(np.zeros((1, 2, 5, 5)))
    with pytest.raises(ValueError, match="median"):
        QuantLinear(3, 2, kernel_quantizer="ste_sign", weight_scale="trainable", alpha_init="max")


# --------------------------------------------------------------------------------------------------------------
# Constraints
# --------------------------------------------------------------------------------------------------------------
def test_weight_clip_values_and_edges():
    clip = get_constraint("weight_clip")
    w = np.array([-3.0, -1.0, -0.0, 0.0, 0.5, 1.0, 1.0000001, np.float64(7)])
    np.testing.assert_array_equal(clip(w), [-1.0, -1.0, -0.0, 0.0, 0.5, 1.0, 1.0, 1.0])
    assert get_constraint("weight_clip", clip_value=0.25) == WeightClip(0.25)
    assert "weight_clip" in constraint_names() and get_constraint(None) is None
    with pytest.raises(ValueError, match="clip_value must be a finite number > 0, got 0"):
        WeightClip(0)
    with pytest.raises(TypeError, match="only go with a constraint name"):
        get_constraint(clip, clip_value=2.0)
    with pytest.raises(TypeError, match="got int"):
        get_constraint(3)


def test_apply_constraints_on_a_model():
    model = Sequential(BinaryLinear(4, 3, rng=np.random.default_rng(0)), BatchNorm1d(3),
                       QuantLinear(3, 2, kernel_quantizer="ste_sign"))
    model[0].weight.data[...] = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    array = model[0].weight.data
    bn_before = model[1].weight.data.copy()
    assert apply_constraints(model) == 1  # only the BinaryLinear has a constraint
    assert model[0].weight.data is array  # clipped in place: optimizer state and views stay valid
    np.testing.assert_array_equal(array, np.clip(np.linspace(-3, 3, 12, dtype=np.float32), -1, 1).reshape(3, 4))
    np.testing.assert_array_equal(model[1].weight.data, bn_before)

    # a plain callable and a bias constraint
    model[2].kernel_constraint = lambda w: np.round(w)
    model[2].bias_constraint = WeightClip(0.5)
    model[2].bias.data[...] = [2.0, -2.0]
    assert apply_constraints(model) == 3
    np.testing.assert_array_equal(model[2].bias.data, [0.5, -0.5])
    np.testing.assert_array_equal(model[2].weight.data, np.round(model[2].weight.data))

    model[2].kernel_constraint = lambda w: w.ravel()
    with pytest.raises(ValueError, match=r"the constraint .* of 2.weight returned shape \(6,\) for a tensor of "
                                         r"shape \(2, 3\)"):
        apply_constraints(model)
    with pytest.raises(TypeError, match="expected a minibnn Module"):
        apply_constraints([model[0].weight])


def test_constraint_keeps_latent_weights_in_the_ste_window_during_training():
    """Without clipping, SGD pushes latent weights past ±1 where the STE gradient is 0 for good."""
    rng = np.random.default_rng(0)
    x = sign(rng.normal(size=(32, 8)).astype(np.float32))
    for clipped in (True, False):
        layer = BinaryLinear(8, 1, bias=False, rng=np.random.default_rng(1),
                             kernel_constraint="weight_clip" if clipped else None)
        opt = SGD(layer.parameters(), lr=0.5)
        for _ in range(5):
            opt.zero_grad()
            (-layer(x)).sum().backward()  # a loss that keeps pushing every weight the same way
            opt.step()
            apply_constraints(layer)
        outside = np.abs(layer.weight.data).max() > 1
        assert outside != clipped
