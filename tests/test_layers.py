"""Tests of minibnn.layers: gradients of each layer with respect to its input and its parameters (float64
finite differences), BatchNorm's training and evaluation semantics against hand-computed values, the
subclass hooks of Linear and Conv2d, printing, dtypes and error messages."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import GradcheckError, Module, Sequential, Tensor, gradcheck, gradcheck_module, init, manual_seed, no_grad
from minibnn import functional as F
from minibnn.layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Hardtanh, Identity,
                            LeakyReLU, Linear, MaxPool2d, PReLU, ReLU, ReLU6, Sigmoid, Tanh)
from minibnn.losses import CrossEntropyLoss
from strategies import MEDIUM, arrays, separated, shapes


# --------------------------------------------------------------------------------------------------------------
# Linear
# --------------------------------------------------------------------------------------------------------------
@settings(max_examples=MEDIUM)
@given(st.data(), shapes(min_dims=0, max_dims=2, max_side=3), st.integers(1, 4), st.integers(1, 4), st.booleans())
def test_linear_gradcheck(data, lead, n_in, n_out, bias):
    layer = Linear(n_in, n_out, bias=bias, rng=np.random.default_rng(0))
    assert gradcheck_module(layer, data.draw(arrays(lead + (n_in,))))


def test_linear_initialisation_and_rng():
    layer = Linear(300, 100, rng=np.random.default_rng(0))
    a = np.sqrt(6 / (300 + 100))  # glorot_uniform
    assert layer.weight.shape == (100, 300) and layer.weight.dtype == np.float32
    assert np.abs(layer.weight.data).max() <= a and np.abs(layer.weight.data).max() > 0.9 * a
    np.testing.assert_array_equal(layer.bias.data, np.zeros(100))
    again = Linear(300, 100, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(layer.weight.data, again.weight.data)
    manual_seed(5)
    first = Linear(4, 3).weight.data
    manual_seed(5)
    np.testing.assert_array_equal(first, Linear(4, 3).weight.data)
    custom = Linear(4, 3, weight_init=init.get("constant", value=0.5), bias_init="ones", dtype=np.float64)
    np.testing.assert_array_equal(custom.weight.data, np.full((3, 4), 0.5))
    np.testing.assert_array_equal(custom.bias.data, np.ones(3))
    assert custom.weight.dtype == np.float64
    assert Linear(4, 3, bias=False).bias is None
    assert [n for n, _ in Linear(4, 3).named_parameters()] == ["weight", "bias"]


def test_linear_errors_and_repr():
    layer = Linear(784, 10)
    assert repr(layer) == "Linear(in_features=784, out_features=10, bias=True)"
    assert repr(Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"
    with pytest.raises(ValueError, match=re.escape("Linear(in_features=784) got input of shape (32, 783); "
                                                   "expected shape (..., 784)")):
        layer(np.ones((32, 783)))
    with pytest.raises(TypeError, match=re.escape("Linear(in_features=784) got a float64 input but its "
                                                  "parameters are float32")):
        layer(Tensor(np.ones((2, 784))))
    with pytest.raises(ValueError, match="Linear: in_features must be an int >= 1, got 0"):
        Linear(0, 3)


class ScaledLinear(Linear):
    """A subclass in the way a binary layer is one: its forward changes the operands of the same product."""

    def forward(self, x):
        self.check_input(x)
        return F.linear(F.relu(x), self.weight * 2.0, self.bias)


def test_linear_subclass_changes_weight_and_input():
    layer = ScaledLinear(3, 2, rng=np.random.default_rng(0), dtype=np.float64)
    x = np.array([[-1.0, 2.0, 3.0]])
    expected = np.maximum(x, 0) @ (2 * layer.weight.data).T + layer.bias.data
    np.testing.assert_allclose(layer(Tensor(x)).data, expected, rtol=1e-12)
    assert gradcheck_module(layer, np.array([[-1.0, 2.0, 3.0], [0.5, -0.5, 1.0]]))


class DetachedLinear(Linear):
    """A broken layer: its effective weight is cut from the graph, so the weight gets no gradient."""

    def forward(self, x):
        return F.linear(x, self.weight.detach(), self.bias)


def test_layer_gradcheck_checks_the_parameters_too():
    with pytest.raises(GradcheckError, match="input 1"):  # input 0 is x, input 1 the weight
        gradcheck_module(DetachedLinear(3, 2, rng=np.random.default_rng(0)), np.ones((2, 3)))


# --------------------------------------------------------------------------------------------------------------
# Conv2d
# --------------------------------------------------------------------------------------------------------------
@settings(max_examples=MEDIUM)
@given(st.data(), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(0, 1),
       st.booleans(), st.sampled_from([0.0, -1.0]))
def test_conv2d_gradcheck(data, c_in, c_out, k, stride, padding, bias, pad_value):
    layer = Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=bias, pad_value=pad_value,
                   rng=np.random.default_rng(0))
    h = data.draw(st.integers(max(1, k - 2 * padding), 4))
    x = data.draw(arrays((data.draw(st.integers(1, 2)), c_in, h, data.draw(st.integers(max(1, k - 2 * padding), 4)))))
    assert gradcheck_module(layer, x)


def test_conv2d_forward_is_functional_conv2d_with_the_layer_options():
    layer = Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), pad_value=1.0, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(2, 2, 5, 4)).astype(np.float32)
    expected = F.conv2d(x, layer.weight, layer.bias, stride=(2, 1), padding=(1, 0), pad_value=1.0)
    np.testing.assert_array_equal(layer(x).data, expected.data)
    assert layer(x).shape == (2, 3, 3, 3)
    fan_in, fan_out = 2 * 3 * 2, 3 * 3 * 2  # glorot_uniform with the conv fans
    assert np.abs(layer.weight.data).max() <= np.sqrt(6 / (fan_in + fan_out))


def test_conv2d_errors_and_repr():
    layer = Conv2d(3, 16, 3, padding=1)
    assert repr(layer) == "Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=True)"
    assert repr(Conv2d(1, 2, (3, 1), stride=2, bias=False, pad_value=-1)) == \
        "Conv2d(1, 2, kernel_size=(3, 1), stride=2, pad_value=-1.0, bias=False)"
    with pytest.raises(ValueError, match=re.escape("Conv2d(in_channels=3, kernel_size=3) got input of shape "
                                                   "(32, 28, 28); expected a 4-D input (N, 3, H, W)")):
        layer(np.ones((32, 28, 28)))
    with pytest.raises(ValueError, match=re.escape("got input of shape (2, 1, 28, 28)")):
        layer(np.ones((2, 1, 28, 28)))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        Conv2d(1, 1, 5)(np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=re.escape("Conv2d: kernel_size must be an int in [1, 2147483647]")):
        Conv2d(1, 1, 0)


class SignInputConv2d(Conv2d):
    """A binary-style subclass: ±1 input (sign), padded with -1 so that the padded border is ±1 too."""

    def forward(self, x):
        x = Tensor(np.where(x.data >= 0, 1.0, -1.0).astype(x.dtype))
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.pad_value)


def test_conv2d_subclass_with_pad_value():
    layer = SignInputConv2d(1, 1, 3, padding=1, pad_value=-1.0, bias=False, weight_init="ones")
    out = layer(Tensor(np.full((1, 1, 3, 3), 0.3, dtype=np.float32)))
    # Every window holds nine ±1 values: the centre sees nine +1, a corner four +1 and five -1.
    assert out.data[0, 0, 1, 1] == 9.0 and out.data[0, 0, 0, 0] == -1.0


# --------------------------------------------------------------------------------------------------------------
# BatchNorm
# --------------------------------------------------------------------------------------------------------------
def test_batchnorm1d_training_and_running_statistics_by_hand():
    bn = BatchNorm1d(2, momentum=0.5, eps=0.0, dtype=np.float64)
    x1 = np.array([[0.0, 1.0], [2.0, 1.5], [4.0, 2.0]])  # means 2, 1.5; biased vars 8/3, 1/6
    out = bn(Tensor(x1))
    np.testing.assert_allclose(out.data[:, 0], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)], rtol=1e-12)
    np.testing.assert_allclose(out.data[:, 1], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)], rtol=1e-12)
    np.testing.assert_allclose(bn.running_mean, [1.0, 0.75], rtol=1e-12)  # 0.5·0 + 0.5·mean
    np.testing.assert_allclose(bn.running_var, [0.5 + 0.5 * 4.0, 0.5 + 0.5 * 0.25], rtol=1e-12)  # unbiased var
    x2 = np.array([[1.0, 0.0], [3.0, 0.0]])  # means 2, 0; unbiased vars 2, 0
    with np.errstate(divide="ignore", invalid="ignore"):  # channel 1: zero variance with eps = 0 gives NaN
        bn(Tensor(x2))
    np.testing.assert_allclose(bn.running_mean, [0.5 * 1.0 + 0.5 * 2.0, 0.5 * 0.75], rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, [0.5 * 2.5 + 0.5 * 2.0, 0.5 * 0.625], rtol=1e-12)

    bn.weight.data[:] = [2.0, 1.0]
    bn.bias.data[:] = [1.0, -1.0]
    bn.eval()
    before = bn.running_mean.copy()
    x3 = np.array([[3.0, 1.0]])  # batch of one is fine in evaluation
    expected = (x3 - bn.running_mean) / np.sqrt(bn.running_var) * [2.0, 1.0] + [1.0, -1.0]
    np.testing.assert_allclose(bn(Tensor(x3)).data, expected, rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, before)  # evaluation does not update


def test_batchnorm2d_normalises_each_channel_over_n_h_w():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(4, 3, 5, 5))
    bn = BatchNorm2d(3, momentum=1.0, dtype=np.float64)
    out = bn(Tensor(x)).data
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) / (x.var(axis=(0, 2, 3)) + 1e-5),
                               rtol=1e-12)
    np.testing.assert_allclose(bn.running_mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)  # momentum 1: the batch's
    np.testing.assert_allclose(bn.running_var, x.var(axis=(0, 2, 3), ddof=1), rtol=1e-12)


def test_batchnorm1d_on_n_c_l_inputs():
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    out = BatchNorm1d(3, eps=0.0, dtype=np.float64)(Tensor(x)).data
    expected = (x - x.mean(axis=(0, 2), keepdims=True)) / x.std(axis=(0, 2), keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


def test_batchnorm_without_running_statistics_or_affine():
    bn = BatchNorm1d(2, affine=False, track_running_stats=False).eval()
    assert bn.parameters() == [] and dict(bn.named_buffers()) == {}
    x = np.array([[1.0, 5.0], [3.0, 9.0]], dtype=np.float32)
    np.testing.assert_allclose(bn(x).data, [[-1.0, -1.0], [1.0, 1.0]], rtol=1e-4)  # batch statistics in eval


def test_batchnorm_buffers_state_dict_and_astype():
    bn = BatchNorm2d(3)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var"]
    bn(np.random.default_rng(0).normal(size=(2, 3, 2, 2)))
    state = bn.state_dict()
    fresh = BatchNorm2d(3)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.running_var, bn.running_var)
    bn.reset_running_stats()
    np.testing.assert_array_equal(bn.running_mean, np.zeros(3))
    bn.astype(np.float64)
    assert bn.running_mean.dtype == np.float64 and bn.weight.dtype == np.float64
    bn(Tensor(np.ones((2, 3, 2, 2))))  # still runs, in float64


@settings(max_examples=MEDIUM)
@given(st.data(), st.sampled_from([(3, 2), (2, 2, 3), (1, 2, 2, 2), (2, 1, 2, 1)]), st.booleans(), st.booleans())
def test_batchnorm_gradcheck(data, shape, training, affine):
    cls = BatchNorm2d if len(shape) == 4 else BatchNorm1d
    bn = cls(shape[1], affine=affine, eps=1e-3)
    bn.running_mean[:] = np.linspace(-1, 1, shape[1])
    bn.train(training)
    x = data.draw(separated(shape, gap=0.1))
    if affine:
        bn.weight.data[:] = data.draw(arrays((shape[1],), 0.5, 2.0))
        bn.bias.data[:] = data.draw(arrays((shape[1],)))
    assert gradcheck_module(bn, x)


def test_batchnorm_errors_and_repr():
    assert repr(BatchNorm1d(100)) == "BatchNorm1d(100, eps=1e-05, momentum=0.1, affine=True, " \
                                     "track_running_stats=True)"
    with pytest.raises(ValueError, match=re.escape("BatchNorm1d(100) got input of shape (32, 99); expected (N, C) "
                                                   "or (N, C, L) with C = 100")):
        BatchNorm1d(100)(np.ones((32, 99)))
    with pytest.raises(ValueError, match=re.escape("BatchNorm2d(3) got input of shape (2, 3, 4); expected "
                                                   "(N, C, H, W) with C = 3")):
        BatchNorm2d(3)(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="more than one value per channel"):
        BatchNorm1d(3)(np.ones((1, 3)))
    with pytest.raises(ValueError, match="momentum in"):
        BatchNorm1d(3, momentum=2.0)


# --------------------------------------------------------------------------------------------------------------
# PReLU, pooling, flatten, dropout, identity, activations
# --------------------------------------------------------------------------------------------------------------
@settings(max_examples=MEDIUM)
@given(st.data(), shapes(min_dims=2, max_dims=4, max_side=3), st.booleans())
def test_prelu_gradcheck_module(data, shape, shared):
    layer = PReLU(1 if shared else shape[1], init=0.1)
    x = data.draw(arrays(shape))
    x = np.where(np.abs(x) < 1e-2, 0.05, x)  # off the kink at 0
    assert gradcheck_module(layer, x)


@settings(max_examples=MEDIUM)
@given(st.data(), st.integers(1, 3), st.sampled_from([None, 1]), st.integers(0, 1))
def test_pool_layers_gradcheck(data, k, stride, padding):
    padding = min(padding, k // 2)
    x = data.draw(separated((2, 2, data.draw(st.integers(max(1, k - 2 * padding), 4)), 3 + k)))
    assert gradcheck_module(MaxPool2d(k, stride, padding), x)
    assert gradcheck_module(AvgPool2d(k, stride, padding), x)


@pytest.mark.parametrize("layer, reference", [
    (ReLU(), lambda x: np.maximum(x, 0)),
    (ReLU6(), lambda x: np.clip(x, 0, 6)),
    (Hardtanh(), lambda x: np.clip(x, -1, 1)),
    (Hardtanh(-1.0, 2.0), lambda x: np.clip(x, -1, 2)),
    (Tanh(), np.tanh),
    (Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (LeakyReLU(0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    (Identity(), lambda x: x),
    (Flatten(), lambda x: x.reshape(len(x), -1)),
    (Flatten(0, 1), lambda x: x.reshape((-1,) + x.shape[2:])),
])
def test_parameterless_layers(layer, reference):
    x = np.random.default_rng(0).uniform(-3, 8, size=(2, 3, 4))
    away = np.where(np.abs(x - np.round(x)) < 1e-2, x + 0.05, x)  # off every kink (they are all integers)
    np.testing.assert_allclose(layer(Tensor(x)).data, reference(x), rtol=1e-12)
    assert gradcheck_module(layer, away)
    assert layer(x).dtype == np.float32


def test_dropout_layer():
    layer = Dropout(0.5, rng=np.random.default_rng(0))
    x = np.ones((4, 50), dtype=np.float32)
    out = layer(x).data
    assert set(np.unique(out)) == {0.0, 2.0}
    assert not np.array_equal(out, layer(x).data)  # a new mask each call
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x)
    layer.train()

    def same_mask_each_call(t):
        layer.rng = np.random.default_rng(0)
        return layer(t)

    assert gradcheck(same_mask_each_call, np.random.default_rng(1).normal(size=(3, 4)))
    with pytest.raises(ValueError, match=re.escape("Dropout: p must be in [0, 1], got -0.1")):
        Dropout(-0.1)
    manual_seed(1)
    a = Dropout(0.5)(x).data
    manual_seed(1)
    np.testing.assert_array_equal(a, Dropout(0.5)(x).data)  # the library generator by default


def test_reprs():
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(AvgPool2d((3, 2), stride=1, padding=(1, 0))) == \
        "AvgPool2d(kernel_size=(3, 2), stride=1, padding=(1, 0))"
    assert repr(Dropout(0.25)) == "Dropout(p=0.25)"
    assert repr(Hardtanh()) == "Hardtanh(min_val=-1.0, max_val=1.0)"
    assert repr(LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(PReLU(8)) == "PReLU(num_parameters=8)"
    assert repr(Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(ReLU()) == "ReLU()" and repr(Identity()) == "Identity()"


def test_shape_errors_of_other_layers():
    with pytest.raises(ValueError, match=re.escape("MaxPool2d(kernel_size=2) got input of shape (4, 4); "
                                                   "expected a 4-D input (N, C, H, W)")):
        MaxPool2d(2)(np.ones((4, 4)))
    with pytest.raises(ValueError, match="padding \\(2, 2\\) must be at most half the kernel"):
        AvgPool2d(3, padding=2)
    with pytest.raises(ValueError, match=re.escape("PReLU(num_parameters=3) got input of shape (2, 4)")):
        PReLU(3)(np.ones((2, 4)))
    with pytest.raises(ValueError, match="min_val"):
        Hardtanh(1.0, 1.0)


# --------------------------------------------------------------------------------------------------------------
# dtypes and a model
# --------------------------------------------------------------------------------------------------------------
LAYERS = [
    ("Linear", lambda: Linear(4, 3), (2, 4)),
    ("Conv2d", lambda: Conv2d(3, 2, 3, padding=1, pad_value=-1), (2, 3, 4, 4)),
    ("BatchNorm1d", lambda: BatchNorm1d(4), (2, 4)),
    ("BatchNorm2d", lambda: BatchNorm2d(3), (2, 3, 4, 4)),
    ("PReLU", lambda: PReLU(3), (2, 3, 4, 4)),
    ("MaxPool2d", lambda: MaxPool2d(2), (2, 3, 4, 4)),
    ("AvgPool2d", lambda: AvgPool2d(3, 1, 1), (2, 3, 4, 4)),
    ("Dropout", lambda: Dropout(0.5), (2, 4)),
    ("Flatten", lambda: Flatten(), (2, 3, 4, 4)),
    ("Hardtanh", lambda: Hardtanh(), (2, 4)),
]


@pytest.mark.parametrize("name, make, shape", LAYERS, ids=[entry[0] for entry in LAYERS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_layers_keep_their_dtype(name, make, shape, dtype, training):
    layer = make().astype(dtype).train(training)
    x = Tensor(np.random.default_rng(0).normal(size=shape).astype(dtype), requires_grad=True)
    out = layer(x)
    assert out.dtype == dtype
    out.sum().backward()
    assert x.grad.dtype == dtype and all(p.grad.dtype == dtype for p in layer.parameters())
    assert all(b.dtype == dtype for _, b in layer.named_buffers())


def test_a_small_model_learns():
    """Linear-BatchNorm-Hardtanh-Linear fits 4 separable clusters with plain gradient descent."""
    rng = np.random.default_rng(0)
    centres = np.array([[2, 2], [-2, 2], [2, -2], [-2, -2]], dtype=np.float32)
    y = np.repeat(np.arange(4), 16)
    x = centres[y] + 0.3 * rng.normal(size=(64, 2)).astype(np.float32)
    model = Sequential(Linear(2, 16, rng=rng), BatchNorm1d(16), Hardtanh(), Linear(16, 4, rng=rng))
    loss_fn = CrossEntropyLoss()
    losses = []
    for _ in range(60):
        model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        losses.append(loss.item())
        for p in model.parameters():
            p.data -= 0.5 * p.grad
    model.eval()
    with no_grad():
        accuracy = np.mean(model(x).argmax(axis=1) == y)
    assert losses[-1] < 0.1 * losses[0] and accuracy == 1.0


# --------------------------------------------------------------------------------------------------------------
# Empty batches and operands that are not real (issue 10, defects 5 and 6)
# --------------------------------------------------------------------------------------------------------------
def _product_layers():
    from minibnn.quantized import BinaryConv2d, BinaryLinear
    return [
        (Linear(3, 2), (0, 3), (0, 2)),
        (BinaryLinear(3, 2, use_kernel=False), (0, 3), (0, 2)),
        (BinaryLinear(3, 2, use_kernel=True), (0, 3), (0, 2)),
        (BinaryLinear(3, 2, use_kernel=True), (0, 4, 3), (0, 4, 2)),
        (Conv2d(2, 3, 3), (0, 2, 5, 5), (0, 3, 3, 3)),
        (BinaryConv2d(2, 3, 3, padding=1, use_kernel=False), (0, 2, 5, 5), (0, 3, 5, 5)),
        (BinaryConv2d(2, 3, 3, padding=1, use_kernel=True), (0, 2, 5, 5), (0, 3, 5, 5)),
        (BinaryConv2d(2, 3, 3, stride=2, pad_values=0.0, use_kernel=True), (0, 2, 5, 5), (0, 3, 2, 2)),
    ]


@pytest.mark.parametrize("layer, in_shape, out_shape", _product_layers(),
                         ids=lambda v: repr(v).split("(")[0] if isinstance(v, Module) else None)
def test_an_empty_batch_gives_an_empty_output_on_every_path(layer, in_shape, out_shape):
    x = Tensor(np.zeros(in_shape, np.float32), requires_grad=True)
    y = layer(x)
    assert y.shape == out_shape and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.shape == in_shape
    assert all(p.grad.shape == p.shape and not p.grad.any() for p in layer.parameters() if p.grad is not None)


@pytest.mark.parametrize("layer, in_shape, out_shape", _product_layers(),
                         ids=lambda v: repr(v).split("(")[0] if isinstance(v, Module) else None)
def test_layers_refuse_complex_inputs(layer, in_shape, out_shape):
    x = np.ones((1,) + in_shape[1:], dtype=complex)
    with pytest.raises(TypeError, match="must be|numeric"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("error")      # an error, never a ComplexWarning
            layer(x)
