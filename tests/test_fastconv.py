"""The fast paths of minibnn.fastconv against the general im2col path and a float64 reference.

* shift-GEMM convolution (stride 1, C >= MIN_CHANNELS), compiled and NumPy: outputs and gradients equal the
  float64 reference up to float32 rounding, bounded as |fast - exact| <= K·eps32·(|x| ⊛ |W|) with K = C·kh·kw
  the length of each sum (the classical bound for a sum of K products, whatever the summation order); in
  float64 they equal the reference to 1e-12 relative;
* tiled max pooling (kernel == stride, no padding): outputs and gradients IDENTICAL to the general path, on
  integer inputs full of ties and with NaN;
* gradcheck (float64) of conv2d and max_pool2d on shapes that take the fast paths;
* a binary convolution on the compiled path keeps gradients bit-identical to the float path.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Tensor, fastconv
from minibnn import functional as F
from minibnn.gradcheck import gradcheck
from minibnn.im2col import col2im, im2col, output_size, per_side
from minibnn.quantized import BinaryConv2d
from minibnn.xnor import backend

EPS32 = np.finfo(np.float32).eps


def reference_conv(x, w, b, padding, g, pad_value=0.0):
    """out, dx, dw, db of a stride-1 conv by im2col in float64 (the general path's formulas)."""
    x, w, g = (a.astype(np.float64) for a in (x, w, g))
    n, o = len(x), len(w)
    cols = im2col(x, w.shape[2:], (1, 1), padding, pad_value)
    out = np.matmul(w.reshape(o, -1), cols).reshape((n, o) + output_size(x.shape[2:], w.shape[2:], (1, 1), padding))
    if b is not None:
        out += b.astype(np.float64)[:, None, None]
    g3 = g.reshape(n, o, -1)
    dw = np.matmul(g3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dcols = np.matmul(w.reshape(o, -1).T, g3).reshape(n, *w.shape[1:], *g.shape[2:])
    dx = col2im(dcols.transpose(0, 1, 4, 5, 2, 3), x.shape, (1, 1), padding)
    return out, dx, dw, g.sum(axis=(0, 2, 3))


def run_conv(x, w, b, padding, g, pad_value=0.0):
    xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    bt = None if b is None else Tensor(b, requires_grad=True)
    operands = (xt, wt) if b is None else (xt, wt, bt)         # the op itself: it takes per-side padding too
    y = F.Conv2dFn.apply(*operands, stride=(1, 1), padding=per_side(padding), pad_value=float(pad_value))
    y.backward(g)
    return y.data, xt.grad, wt.grad, None if b is None else bt.grad


def rounding_bound(x, w, padding, g, pad_value):
    """K·eps32·(the same sums on absolute values), for out, dx and dw."""
    k = w.shape[1] * w.shape[2] * w.shape[3]
    out, dx, dw, _ = reference_conv(np.abs(x), np.abs(w), None, padding, np.abs(g), abs(pad_value))
    # dx sums O·kh·kw terms and dW N·OH·OW terms
    k_dx, k_dw = len(w) * w.shape[2] * w.shape[3], g.shape[0] * g.shape[2] * g.shape[3]
    return (2 * k * EPS32 * out + 1e-30, 2 * k_dx * EPS32 * dx + 1e-30, 2 * k_dw * EPS32 * dw + 1e-30)


conv_cases = dict(
    n=st.integers(1, 3), c=st.sampled_from([8, 13, 16, 32]), o=st.sampled_from([1, 5, 16, 32, 48]),
    size=st.tuples(st.integers(1, 9), st.integers(1, 9)), kernel=st.sampled_from([(3, 3), (2, 2), (1, 3), (3, 2)]),
    padding=st.sampled_from([(0, 0), (1, 1), (2, 1), (0, 2), ((0, 1), (2, 0))]),    # symmetric or per side
    pad_value=st.sampled_from([0.0, -1.0, 0.5]),
    bias=st.booleans(), compiled=st.booleans(), seed=st.integers(0, 2**16))


def draw_conv(n, c, o, size, kernel, padding, seed, dtype):
    rng = np.random.default_rng(seed)
    (top, bottom), (left, right) = per_side(padding)
    size = (max(size[0], kernel[0] - top - bottom), max(size[1], kernel[1] - left - right))
    x = rng.standard_normal((n, c) + size).astype(dtype)
    w = rng.standard_normal((o, c) + kernel).astype(dtype)
    oh, ow = output_size(size, kernel, (1, 1), padding)
    return rng, x, w, rng.standard_normal((n, o, oh, ow)).astype(dtype)


@settings(max_examples=30)
@given(**conv_cases)
def test_shift_gemm_conv_is_the_reference_up_to_float32_rounding(n, c, o, size, kernel, padding, pad_value, bias,
                                                                 compiled, seed):
    rng, x, w, g = draw_conv(n, c, o, size, kernel, padding, seed, np.float32)
    b = rng.standard_normal(o).astype(np.float32) if bias else None
    assert fastconv.shift_gemm_applies(x.shape, w.shape, (1, 1))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastconv, "USE_COMPILED", compiled)
        fast = run_conv(x, w, b, padding, g, pad_value)
    exact = reference_conv(x, w, b, padding, g, pad_value)
    bounds = rounding_bound(x, w, padding, g, pad_value)
    for name, got, want, bound in zip(("out", "dx", "dw"), fast, exact, bounds):
        assert got.dtype == np.float32 and got.shape == want.shape, name
        assert np.all(np.abs(got - want) <= bound), (name, np.max(np.abs(got - want) / bound))
    if bias:
        np.testing.assert_allclose(fast[3], exact[3], rtol=1e-5, atol=1e-5)


@settings(max_examples=15)
@given(**conv_cases)
def test_shift_gemm_conv_in_float64_is_the_reference(n, c, o, size, kernel, padding, pad_value, bias, compiled,
                                                     seed):
    rng, x, w, g = draw_conv(n, c, o, size, kernel, padding, seed, np.float64)
    b = rng.standard_normal(o) if bias else None
    for got, want in zip(run_conv(x, w, b, padding, g, pad_value), reference_conv(x, w, b, padding, g, pad_value)):
        if got is not None:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(want).max()))


@settings(max_examples=15)
@given(**conv_cases)
def test_shift_gemm_agrees_with_the_float32_im2col_path(n, c, o, size, kernel, padding, pad_value, bias, compiled,
                                                        seed):
    rng, x, w, g = draw_conv(n, c, o, size, kernel, padding, seed, np.float32)
    b = rng.standard_normal(o).astype(np.float32) if bias else None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastconv, "USE_COMPILED", compiled)
        fast = run_conv(x, w, b, padding, g, pad_value)
        mp.setattr(fastconv, "shift_gemm_applies", lambda *a: False)
        general = run_conv(x, w, b, padding, g, pad_value)
    for got, want in zip(fast, general):
        if got is not None:
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()))


def test_the_compiled_kernel_runs_for_float32_and_multiples_of_16(monkeypatch):
    if fastconv._c_products is None:
        pytest.skip("the compiled extension is not built")
    calls = []
    real = fastconv._c_products
    monkeypatch.setattr(fastconv, "_c_products", lambda *a: calls.append(a[1].shape) or real(*a))
    rng = np.random.default_rng(0)
    run_conv(rng.standard_normal((2, 16, 5, 5)).astype(np.float32),
             rng.standard_normal((32, 16, 3, 3)).astype(np.float32), None, (1, 1),
             rng.standard_normal((2, 32, 5, 5)).astype(np.float32))
    assert calls == [(9, 16, 32), (9, 32, 16)]      # forward (C -> O) and dx (O -> C)


def test_same_padding_takes_the_fast_path_with_its_uneven_split():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 16, 5, 6)), rng.standard_normal((16, 16, 2, 2))    # 'same': pad below/right
    g = rng.standard_normal((2, 16, 5, 6))
    xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, padding="same")
    y.backward(g)
    for got, want in zip((y.data, xt.grad, wt.grad), reference_conv(x, w, None, ((0, 1), (0, 1)), g)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_gradcheck_conv_on_the_fast_path():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 8, 4, 5)), rng.standard_normal((3, 8, 3, 2)), rng.standard_normal(3)
    assert fastconv.shift_gemm_applies(x.shape, w.shape, (1, 1))
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=(1, 2), pad_value=0.5), x, w, b)


def test_small_channel_counts_and_strides_keep_im2col():
    assert not fastconv.shift_gemm_applies((4, 3, 32, 32), (32, 3, 3, 3), (1, 1))     # C = 3: im2col is better
    assert not fastconv.shift_gemm_applies((4, 32, 32, 32), (32, 32, 3, 3), (2, 2))   # stride 2
    assert not fastconv.shift_gemm_applies((4, 32, 32, 32), (32, 32, 1, 1), (1, 1))   # 1x1: already one GEMM
    assert not fastconv.shift_gemm_applies((0, 32, 8, 8), (32, 32, 3, 3), (1, 1))     # empty batch


# --------------------------------------------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------------------------------------------
def run_pool(x, kernel, g):
    xt = Tensor(x, requires_grad=True)
    y = F.max_pool2d(xt, kernel)
    y.backward(g)
    return y.data, xt.grad


@settings(max_examples=40)
@given(n=st.integers(1, 2), c=st.integers(1, 3), size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)), levels=st.sampled_from([2, 3, 100]),
       nan=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]), compiled=st.booleans(),
       seed=st.integers(0, 2**16))
def test_tiled_max_pool_is_identical_to_the_general_path(n, c, size, kernel, levels, nan, dtype, compiled, seed):
    size = (max(size[0], kernel[0]), max(size[1], kernel[1]))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, (n, c) + size).astype(dtype)        # few levels: many ties
    if nan:
        x[rng.random(x.shape) < 0.1] = np.nan
    out_shape = (n, c, size[0] // kernel[0], size[1] // kernel[1])
    g = rng.standard_normal(out_shape).astype(dtype)
    assert fastconv.tiles_pool(kernel, kernel, (0, 0))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastconv, "USE_COMPILED", compiled)
        fast = run_pool(x, kernel, g)
        mp.setattr(fastconv, "tiles_pool", lambda *a: False)
        general = run_pool(x, kernel, g)
    for got, want in zip(fast, general):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype


def test_gradcheck_max_pool_on_the_fast_path():
    x = np.random.default_rng(2).permutation(2 * 3 * 6 * 5).reshape(2, 3, 6, 5) / 7.0   # distinct: no kink
    assert gradcheck(lambda x: F.max_pool2d(x, 2), x)
    assert gradcheck(lambda x: F.max_pool2d(x, (3, 2)), x)


def test_overlapping_or_padded_pools_keep_the_general_path():
    assert not fastconv.tiles_pool((3, 3), (2, 2), (0, 0))
    assert not fastconv.tiles_pool((2, 2), (2, 2), (1, 1))


# --------------------------------------------------------------------------------------------------------------
# Binary layers on the fast path
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c, o", [(16, 32), (32, 16), (12, 5)])
def test_binary_conv_gradients_stay_bit_identical_to_the_float_path(c, o):
    rng = np.random.default_rng(3)
    layer = BinaryConv2d(c, o, 3, padding=1, pad_values=-1.0, rng=rng)
    x = rng.standard_normal((2, c, 6, 7)).astype(np.float32)
    g = rng.standard_normal((2, o, 6, 7)).astype(np.float32)
    results = []
    for use in (True, False):
        with backend.use_kernels(use):
            xt = Tensor(x, requires_grad=True)
            layer.zero_grad()
            y = layer(xt)
            y.backward(g)
            results.append((y.data, xt.grad, layer.weight.grad.copy()))
    for on, off in zip(*results):
        np.testing.assert_array_equal(on, off)


def test_the_compiled_conv_has_the_same_bits_on_one_and_two_threads():
    """Above the threads' crossover (18 M multiply-accumulates here) the runs of output rows and the tiles of dW
    are shared among threads; each number is still summed by one thread in one order."""
    import minibnn
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 32, 16, 16)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    g = rng.standard_normal((8, 32, 16, 16)).astype(np.float32)
    runs = []
    for n in (1, 2):
        with minibnn.num_threads(n):            # restores the previous policy (kernels and BLAS) afterwards
            runs.append(run_conv(x, w, None, (1, 1), g))
    for one, two in zip(*runs):
        if one is not None:
            np.testing.assert_array_equal(one, two)
