"""padding="same" and "valid" (Keras' semantics) for convolutions and pools, and the per-side padding under them.

Keras: "valid" = no padding, OH = floor((H - kh) / sh) + 1; "same": OH = ceil(H / sh), padded by
total = max((OH - 1)·sh + kh - H, 0), top = total // 2, bottom = total - top (the odd pixel below / right).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Tensor, gradcheck
from minibnn.xnor import backend
from minibnn import functional as F
from minibnn.im2col import check_padding, col2im, output_size, pad2d, padding_sides, windows
from minibnn.layers import AvgPool2d, Conv2d, MaxPool2d
from minibnn.quantized import BinaryConv2d, QuantConv2d
from strategies import CHEAP, MEDIUM, arrays, separated


def keras_same(n, k, s):
    """(before, after) padding of Keras' "same" along one axis, written out from the formula."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def padded(x, sides, value):
    """x (N, C, H, W) padded with ((top, bottom), (left, right)) of ``value``, by np.pad."""
    (t, b), (l, r) = sides
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def conv_reference(x, w, b, stride, sides, pad_value):
    """out[n, o, i, j] = Σ x_pad[n, :, i·sh:i·sh+kh, j·sw:j·sw+kw] · w[o] + b[o], by explicit loops."""
    xp = padded(x, sides, pad_value)
    (sh, sw), (kh, kw) = stride, w.shape[2:]
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.zeros((len(x), len(w), oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w) + (0.0 if b is None else b)
    return out


def pool_reference(x, kernel, stride, sides, mode):
    """Max (padding -inf) or Keras' "same" mean (the input pixels of each window only), by explicit loops."""
    xp = padded(x, sides, -np.inf if mode == "max" else 0.0)
    inside = padded(np.ones_like(x), sides, 0.0)
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = np.s_[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            if mode == "max":
                out[:, :, i, j] = xp[window].max(axis=(2, 3))
            else:
                out[:, :, i, j] = xp[window].sum(axis=(2, 3)) / inside[window].sum(axis=(2, 3))
    return out


# --------------------------------------------------------------------------------------------------------------
# The formula, and the helpers under it
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("n", [1, 2, 5, 6, 7, 8, 28])
def test_same_padding_is_keras_formula(n, kernel, stride):
    sides = padding_sides("same", (n, n), (kernel, kernel), (stride, stride))
    assert sides == (keras_same(n, kernel, stride),) * 2
    assert sides[0][0] <= sides[0][1] <= sides[0][0] + 1          # less before than after, by at most one
    assert output_size((n, n), (kernel, kernel), (stride, stride), sides) == (math.ceil(n / stride),) * 2


def test_the_uneven_split_at_stride_2():
    # 28x28 by 3x3 at stride 2: 14 outputs need (14 - 1)·2 + 3 = 29 rows, one more than 28: it goes below
    assert padding_sides("same", (28, 28), (3, 3), (2, 2)) == ((0, 1), (0, 1))
    # a 5x6 image: 3 rows need 2·2 + 3 = 7 (2 more: one each side), 3 columns need 7 (1 more: after)
    assert padding_sides("same", (5, 6), (3, 3), (2, 2)) == ((1, 1), (0, 1))
    # an even kernel at stride 1: 3 extra pixels, 1 before and 2 after (as TensorFlow and torch's "same")
    assert padding_sides("same", (7, 7), (4, 4), (1, 1)) == ((1, 2), (1, 2))
    assert padding_sides("valid", (7, 7), (4, 4), (2, 2)) == ((0, 0), (0, 0))
    assert padding_sides((1, 2), (7, 7), (4, 4), (2, 2)) == ((1, 1), (2, 2))


def test_pad2d_and_col2im_take_the_sides_apart():
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    sides = ((0, 2), (1, 0))
    np.testing.assert_array_equal(pad2d(x, sides, -1.0), padded(x, sides, -1.0))
    np.testing.assert_array_equal(pad2d(x, (1, 2), 7.0), padded(x, ((1, 1), (2, 2)), 7.0))
    # col2im is the adjoint of windows(pad2d(.)): <windows(pad(x)), P> = <x, col2im(P)> for every x, P
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 5, 4))
    win = windows(pad2d(x, sides, 0.0), (2, 3), (2, 1))
    patches = rng.normal(size=win.shape)
    np.testing.assert_allclose(np.sum(win * patches), np.sum(x * col2im(patches, x.shape, (2, 1), sides)))


def test_padding_argument_errors_name_the_caller():
    assert check_padding("Conv2d", "valid") == (0, 0) and check_padding("Conv2d", "same") == "same"
    for bad in ("SAME", "full", ""):
        with pytest.raises(ValueError, match=re.escape(f"Conv2d: padding must be one of 'same', 'valid'; "
                                                       f"got {bad!r}")):
            Conv2d(1, 1, 3, padding=bad)
    for bad in (1.5, None, (1, 2, 3), -1):
        with pytest.raises(ValueError, match=re.escape("MaxPool2d: padding must be 'same', 'valid', an int in "
                                                       f"[0, 2147483647] or a pair of them, got {bad!r}")):
            MaxPool2d(2, padding=bad)
    with pytest.raises(ValueError, match="conv2d: padding must be one of 'same', 'valid'; got 'full'"):
        F.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), padding="full")
    with pytest.raises(ValueError, match="avg_pool2d: padding must be one of 'same', 'valid'; got 'Same'"):
        F.avg_pool2d(np.ones((1, 1, 4, 4)), 2, padding="Same")
    with pytest.raises(ValueError, match="BinaryConv2d: padding must be one of"):
        BinaryConv2d(1, 1, 3, padding="half")
    # "valid" on an input smaller than the kernel: the usual error, naming the padding given
    with pytest.raises(ValueError, match=re.escape("padding (0, 0)), smaller than the kernel 3x3")):
        F.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), padding="valid")


# --------------------------------------------------------------------------------------------------------------
# Output shapes of every layer at strides 1 and 2, odd and even sizes
# --------------------------------------------------------------------------------------------------------------
LAYERS = [
    ("Conv2d", lambda k, s, p: Conv2d(2, 3, k, stride=s, padding=p)),
    ("QuantConv2d", lambda k, s, p: QuantConv2d(2, 3, k, stride=s, padding=p, input_quantizer="ste_sign",
                                                kernel_quantizer="ste_sign", pad_values=-1.0)),
    ("BinaryConv2d", lambda k, s, p: BinaryConv2d(2, 3, k, stride=s, padding=p)),
    ("MaxPool2d", lambda k, s, p: MaxPool2d(k, stride=s, padding=p)),
    ("AvgPool2d", lambda k, s, p: AvgPool2d(k, stride=s, padding=p)),
]


@pytest.mark.parametrize("name, make", LAYERS, ids=[name for name, _ in LAYERS])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [2, 3])
def test_layer_output_shapes_follow_keras(name, make, kernel, stride):
    same, valid = make(kernel, stride, "same"), make(kernel, stride, "valid")
    for h, w in [(5, 5), (6, 6), (7, 4), (4, 9), (kernel, kernel)]:
        x = np.random.default_rng(h * w).normal(size=(2, 2, h, w))
        assert same(x).shape == (2, same(x).shape[1], math.ceil(h / stride), math.ceil(w / stride)), (h, w)
        assert valid(x).shape[2:] == ((h - kernel) // stride + 1, (w - kernel) // stride + 1), (h, w)
    assert same.padding == "same" and valid.padding == (0, 0)
    assert "padding='same'" in repr(same) and "same" not in repr(valid)


def test_valid_is_padding_zero():
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 3, 2))
    np.testing.assert_array_equal(F.conv2d(x, w, stride=2, padding="valid").data, F.conv2d(x, w, stride=2).data)
    for pool in (F.max_pool2d, F.avg_pool2d):
        np.testing.assert_array_equal(pool(x, 3, 2, padding="valid").data, pool(x, 3, 2).data)


def test_same_with_stride_1_and_odd_kernel_is_the_symmetric_padding():
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(4, 3, 3, 5))
    np.testing.assert_array_equal(F.conv2d(x, w, padding="same").data, F.conv2d(x, w, padding=(1, 2)).data)
    np.testing.assert_array_equal(F.max_pool2d(x, 3, 1, padding="same").data, F.max_pool2d(x, 3, 1, 1).data)


def test_keras_pooling_docstring_values():
    # the examples of tf.keras.layers.MaxPooling2D / AveragePooling2D (pool 2, strides 1, padding="same")
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(F.max_pool2d(x, 2, 1, padding="same").data[0, 0],
                                  [[5, 6, 6], [8, 9, 9], [8, 9, 9]])
    np.testing.assert_array_equal(F.avg_pool2d(x, 2, 1, padding="same").data[0, 0],
                                  [[3, 4, 4.5], [6, 7, 7.5], [7.5, 8.5, 9]])


# --------------------------------------------------------------------------------------------------------------
# Values against explicit loops, and gradcheck, on generated shapes
# --------------------------------------------------------------------------------------------------------------
@st.composite
def same_conv_problems(draw, max_side: int = 6):
    """(x, w, b or None, stride, padding "same"/"valid", pad_value), odd and even sizes, strides 1 to 3."""
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["same", "valid"]))
    low = kernel if padding == "valid" else (1, 1)
    h, w_ = draw(st.integers(low[0], max_side)), draw(st.integers(low[1], max_side))
    x, w = draw(arrays((n, c, h, w_))), draw(arrays((o, c) + kernel))
    return x, w, draw(st.none() | arrays((o,))), stride, padding, draw(st.sampled_from([0.0, -1.0, 1.0]))


@settings(max_examples=CHEAP)
@given(same_conv_problems())
def test_conv2d_same_matches_explicit_padding(problem):
    x, w, b, stride, padding, pad_value = problem
    sides = padding_sides(padding, x.shape[2:], w.shape[2:], stride)
    out = F.conv2d(Tensor(x), Tensor(w), None if b is None else Tensor(b), stride, padding, pad_value)
    expected = conv_reference(x, w, b, stride, sides, pad_value)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=MEDIUM)
@given(same_conv_problems(max_side=5))
def test_conv2d_same_gradcheck(problem):
    x, w, b, stride, padding, pad_value = problem

    def conv(*args):
        return F.conv2d(*args, stride=stride, padding=padding, pad_value=pad_value)

    assert gradcheck(conv, x, w) if b is None else gradcheck(conv, x, w, b)


@st.composite
def same_pool_problems(draw, max_side: int = 6):
    """(x without ties, kernel, stride or None, "same"/"valid")."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(st.sampled_from(["same", "valid"]))
    low = kernel if padding == "valid" else (1, 1)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(low[0], max_side)),
             draw(st.integers(low[1], max_side)))
    return draw(separated(shape)), kernel, stride, padding


@settings(max_examples=CHEAP)
@given(same_pool_problems())
def test_pools_same_match_explicit_padding(problem):
    x, kernel, stride, padding = problem
    s = kernel if stride is None else stride
    sides = padding_sides(padding, x.shape[2:], kernel, s)
    np.testing.assert_array_equal(F.max_pool2d(Tensor(x), kernel, stride, padding).data,
                                  pool_reference(x, kernel, s, sides, "max"))
    np.testing.assert_allclose(F.avg_pool2d(Tensor(x), kernel, stride, padding).data,
                               pool_reference(x, kernel, s, sides, "mean"), rtol=1e-12, atol=1e-12)


@settings(max_examples=MEDIUM)
@given(same_pool_problems(max_side=5))
def test_pools_same_gradcheck(problem):
    x, kernel, stride, padding = problem
    assert gradcheck(lambda t: F.max_pool2d(t, kernel, stride, padding), x)
    assert gradcheck(lambda t: F.avg_pool2d(t, kernel, stride, padding), x)


# --------------------------------------------------------------------------------------------------------------
# Binary layers: ±1 padding on the uneven sides too, and the kernel path
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pad_values", [1.0, -1.0, 0.0])
def test_binary_conv_same_pads_with_pad_values_on_every_side(pad_values):
    rng = np.random.default_rng(3)
    layer = BinaryConv2d(3, 4, 3, stride=2, padding="same", pad_values=pad_values, use_kernel=False, rng=rng)
    x = rng.normal(size=(2, 3, 6, 7)).astype(np.float32)
    sides = padding_sides("same", (6, 7), (3, 3), (2, 2))
    assert sides == ((0, 1), (1, 1))                                   # uneven rows: the extra one below
    expected = conv_reference(np.where(x < 0, -1.0, 1.0), layer.quantized_weight().astype(np.float64),
                              layer.bias.data, (2, 2), sides, pad_values)
    np.testing.assert_array_equal(layer(x).data, expected.astype(np.float32))


@pytest.mark.parametrize("pad_value", [1.0, -1.0, 0.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_path_with_uneven_padding_gives_the_float_result(pad_value, dtype):
    """Unequal sides: ±1 padding runs on the kernel (padded in NumPy first), 0 falls back to the float product;
    both give the float path's output and gradients bit for bit."""
    rng = np.random.default_rng(4)
    x = np.where(rng.random((2, 70, 6, 5)) < 0.5, -1.0, 1.0).astype(dtype)
    w = np.where(rng.random((3, 70, 3, 2)) < 0.5, -1.0, 1.0).astype(dtype)
    b = rng.normal(size=3).astype(dtype)
    sides = padding_sides("same", (6, 5), (3, 2), (2, 2))
    assert sides[0] != (sides[0][0],) * 2 or sides[1] != (sides[1][0],) * 2      # really uneven
    direct = backend.xnor_conv2d(x, w, b, (2, 2), sides, pad_value)
    assert (direct is None) == (pad_value == 0.0)                     # which path: kernel for ±1, float for 0
    results = []
    for use_kernel in (True, False):
        tx, tw, tb = (Tensor(a, requires_grad=True) for a in (x, w, b))
        out = F.conv2d(tx, tw, tb, stride=2, padding="same", pad_value=pad_value, use_kernel=use_kernel)
        out.backward(np.ones(out.shape, dtype=dtype))
        results.append((out.data, tx.grad, tw.grad, tb.grad))
    if direct is not None:
        np.testing.assert_array_equal(direct, results[1][0])
    for on_kernel, on_float in zip(*results):
        np.testing.assert_array_equal(on_kernel, on_float)


def test_binary_layer_same_on_the_kernel_equals_the_float_layer():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 8, 7, 6)).astype(np.float32)
    on = BinaryConv2d(8, 5, 3, stride=2, padding="same", use_kernel=True, rng=np.random.default_rng(0))
    off = BinaryConv2d(8, 5, 3, stride=2, padding="same", use_kernel=False, rng=np.random.default_rng(0))
    for layer in (on, off):
        layer.bias.data[...] = np.arange(5)
    y_on, y_off = on(Tensor(x)), off(Tensor(x))
    np.testing.assert_array_equal(y_on.data, y_off.data)
    y_on.sum().backward()
    y_off.sum().backward()
    np.testing.assert_array_equal(on.weight.grad, off.weight.grad)


# --------------------------------------------------------------------------------------------------------------
# Against PyTorch (skipped when it is not installed): explicit F.pad with the same split
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(7, 6), (8, 5)])
def test_against_pytorch_with_explicit_padding(size, stride):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(6)
    x, w, b = rng.normal(size=(2, 3) + size), rng.normal(size=(4, 3, 3, 4)), rng.normal(size=4)
    (top, bottom), (left, right) = padding_sides("same", size, (3, 4), (stride, stride))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    expected = tf.conv2d(tf.pad(tx, (left, right, top, bottom), value=-1.0), tw, tb, stride=stride)
    upstream = rng.normal(size=tuple(expected.shape))
    expected.backward(torch.tensor(upstream))
    mx, mw, mb = (Tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(mx, mw, mb, stride=stride, padding="same", pad_value=-1.0)
    out.backward(upstream)
    assert out.shape == (2, 4, math.ceil(size[0] / stride), math.ceil(size[1] / stride))
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-10)
    for mine, theirs in ((mx, tx), (mw, tw), (mb, tb)):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-10)

    (top, bottom), (left, right) = padding_sides("same", size, (3, 3), (stride, stride))
    widths = (left, right, top, bottom)
    tx = torch.tensor(x)
    np.testing.assert_array_equal(F.max_pool2d(Tensor(x), 3, stride, padding="same").data,
                                  tf.max_pool2d(tf.pad(tx, widths, value=-np.inf), 3, stride).numpy())
    # Keras' "same" mean: the window sum over the number of input pixels in it
    sums = tf.avg_pool2d(tf.pad(tx, widths), 3, stride) * 9
    counts = tf.avg_pool2d(tf.pad(torch.ones_like(tx), widths), 3, stride) * 9
    np.testing.assert_allclose(F.avg_pool2d(Tensor(x), 3, stride, padding="same").data, (sums / counts).numpy(),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_against_pytorch_same_at_stride_1():
    """torch's own padding="same" (stride 1 only) splits an even kernel's padding as Keras: the extra after."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x, w = rng.normal(size=(2, 3, 6, 7)), rng.normal(size=(4, 3, 4, 2))
    expected = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding="same").numpy()
    np.testing.assert_allclose(F.conv2d(Tensor(x), Tensor(w), padding="same").data, expected, rtol=1e-10,
                               atol=1e-10)
