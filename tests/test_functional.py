"""Tests of minibnn.functional: every op against finite differences (float64, generated shapes), against a
naive reference where one exists (convolution, pooling), its kink conventions, its dtype, and its errors."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Tensor, gradcheck, manual_seed, no_grad
from minibnn import functional as F
from strategies import CHEAP, MEDIUM, arrays, non_contiguous, separated, shapes


def away_from(x: np.ndarray, kinks, gap: float = 1e-2) -> np.ndarray:
    """Shift values closer than ``gap`` to a kink to kink ± gap (so finite differences never straddle it)."""
    x = np.array(x, dtype=np.float64)
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + np.where(x[near] >= k, gap, -gap)
    return x


# --------------------------------------------------------------------------------------------------------------
# Linear
# --------------------------------------------------------------------------------------------------------------
@settings(max_examples=MEDIUM)
@given(st.data(), shapes(min_dims=0, max_dims=2, max_side=3), st.integers(1, 4), st.integers(1, 4), st.booleans())
def test_linear_gradcheck(data, lead, n_in, n_out, with_bias):
    x = data.draw(arrays(lead + (n_in,)))
    w = data.draw(arrays((n_out, n_in)))
    if with_bias:
        b = data.draw(arrays((n_out,)))
        assert gradcheck(F.linear, x, w, b)
    else:
        assert gradcheck(F.linear, x, w)


@settings(max_examples=CHEAP)
@given(st.data(), st.integers(1, 5), st.integers(1, 6), st.integers(1, 6))
def test_linear_matches_numpy_on_noncontiguous_input(data, n, n_in, n_out):
    x, w, b = data.draw(arrays((n, n_in))), data.draw(arrays((n_out, n_in))), data.draw(arrays((n_out,)))
    out = F.linear(Tensor(non_contiguous(x)), Tensor(w), Tensor(b))
    np.testing.assert_allclose(out.data, x @ w.T + b, rtol=1e-12, atol=1e-12)


def test_linear_skips_the_input_gradient_when_not_needed():
    x = Tensor(np.ones((2, 3)))  # a constant: no gradient wanted
    w = Tensor(np.ones((4, 3)), requires_grad=True)
    out = F.linear(x, w)
    assert out._ctx.needs_input_grad == (False, True)
    out.sum().backward()
    assert x.grad is None and w.grad.shape == (4, 3)


def test_linear_errors():
    with pytest.raises(ValueError, match=re.escape("input of shape (2, 5) does not match weight of shape (4, 3)")):
        F.linear(np.ones((2, 5)), np.ones((4, 3)))
    with pytest.raises(ValueError, match=re.escape("bias must have shape (4,)")):
        F.linear(np.ones((2, 3)), np.ones((4, 3)), np.ones(3))
    with pytest.raises(ValueError, match="weight must be 2-D"):
        F.linear(np.ones((2, 3)), np.ones(3))


# --------------------------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------------------------
def conv2d_reference(x, w, b, stride, padding, pad_value):
    """out[n, o, i, j] = Σ_{c,p,q} x_pad[n, c, i·sh + p, j·sw + q] w[o, c, p, q] + b[o], by explicit loops."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.full((n, c, h + 2 * ph, wd + 2 * pw), float(pad_value))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, oh, ow))
    for bi in range(n):
        for oi in range(o):
            for i in range(oh):
                for j in range(ow):
                    patch = xp[bi, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[bi, oi, i, j] = np.sum(patch * w[oi]) + (0.0 if b is None else b[oi])
    return out


@st.composite
def conv_problems(draw, max_side: int = 5):
    """(x, w, b or None, stride, padding, pad_value) with a padded input at least as large as the kernel."""
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    h = draw(st.integers(max(1, kh - 2 * padding[0]), max_side))
    w_ = draw(st.integers(max(1, kw - 2 * padding[1]), max_side))
    x = draw(arrays((n, c, h, w_)))
    w = draw(arrays((o, c, kh, kw)))
    b = draw(st.none() | arrays((o,)))
    return x, w, b, stride, padding, draw(st.sampled_from([0.0, -1.0, 1.0]))


@settings(max_examples=CHEAP)
@given(conv_problems(), st.booleans())
def test_conv2d_matches_naive_loops(problem, contiguous):
    x, w, b, stride, padding, pad_value = problem
    out = F.conv2d(Tensor(x if contiguous else non_contiguous(x)), Tensor(w),
                   None if b is None else Tensor(b), stride, padding, pad_value)
    expected = conv2d_reference(x, w, b, stride, padding, pad_value)
    assert out.shape == expected.shape
    assert out.data.flags.c_contiguous
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=MEDIUM)
@given(conv_problems(max_side=4))
def test_conv2d_gradcheck(problem):
    x, w, b, stride, padding, pad_value = problem

    def conv(*args):
        return F.conv2d(*args, stride=stride, padding=padding, pad_value=pad_value)

    assert gradcheck(conv, x, w) if b is None else gradcheck(conv, x, w, b)


def test_conv2d_known_values():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])  # x[i, j] - x[i+1, j+1] = -5 everywhere
    np.testing.assert_array_equal(F.conv2d(x, w).data, np.full((1, 1, 3, 3), -5.0))
    np.testing.assert_array_equal(F.conv2d(x, w, stride=2).data, np.full((1, 1, 2, 2), -5.0))
    # padding with -1: the top-left output sees -1 (pad) minus x[0, 0] = 0
    assert F.conv2d(x, w, padding=1, pad_value=-1.0).data[0, 0, 0, 0] == -1.0


def test_conv2d_errors():
    w = np.ones((4, 3, 3, 3))
    with pytest.raises(ValueError, match=re.escape("input must be 4-D (N, C, H, W), got shape (3, 8, 8)")):
        F.conv2d(np.ones((3, 8, 8)), w)
    with pytest.raises(ValueError, match=re.escape("input of shape (1, 2, 8, 8) has 2 channels, but weight")):
        F.conv2d(np.ones((1, 2, 8, 8)), w)
    with pytest.raises(ValueError, match="smaller than the kernel 3x3"):
        F.conv2d(np.ones((1, 3, 2, 2)), w)
    with pytest.raises(ValueError, match=re.escape("conv2d: stride must be an int in [1, 2147483647] or a pair of them, got 0")):
        F.conv2d(np.ones((1, 3, 8, 8)), w, stride=0)
    with pytest.raises(ValueError, match=re.escape("conv2d: padding must be 'same', 'valid', an int in [0, 2147483647] or a pair of them, "
                                                  "got (1, -1)")):
        F.conv2d(np.ones((1, 3, 8, 8)), w, padding=(1, -1))
    with pytest.raises(ValueError, match="weight must be 4-D"):
        F.conv2d(np.ones((1, 3, 8, 8)), np.ones((4, 27)))
    with pytest.raises(ValueError, match=re.escape("bias must have shape (4,)")):
        F.conv2d(np.ones((1, 3, 8, 8)), w, np.ones(3))


# --------------------------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------------------------
def pool_reference(x, kernel, stride, padding, reduce, fill):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), fill)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))
    return out


@st.composite
def pool_problems(draw, max_side: int = 5):
    """(x without ties, kernel, stride or None, padding) with padding <= kernel // 2."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)),
             draw(st.integers(max(1, kernel[0] - 2 * padding[0]), max_side)),
             draw(st.integers(max(1, kernel[1] - 2 * padding[1]), max_side)))
    return draw(separated(shape)), kernel, stride, padding


@settings(max_examples=CHEAP)
@given(pool_problems())
def test_pools_match_naive_loops(problem):
    x, kernel, stride, padding = problem
    s = kernel if stride is None else stride
    np.testing.assert_array_equal(F.max_pool2d(Tensor(x), kernel, stride, padding).data,
                                  pool_reference(x, kernel, s, padding, np.max, -np.inf))
    np.testing.assert_allclose(F.avg_pool2d(Tensor(x), kernel, stride, padding).data,
                               pool_reference(x, kernel, s, padding, np.mean, 0.0), rtol=1e-12, atol=1e-12)


@settings(max_examples=MEDIUM)
@given(pool_problems(max_side=4))
def test_pools_gradcheck(problem):
    x, kernel, stride, padding = problem
    assert gradcheck(lambda t: F.max_pool2d(t, kernel, stride, padding), x)
    assert gradcheck(lambda t: F.avg_pool2d(t, kernel, stride, padding), x)


def test_max_pool_gradient_goes_to_the_first_of_tied_maxima():
    x = Tensor(np.array([[[[1.0, 3.0, 3.0, 0.0],
                           [3.0, 2.0, 5.0, 5.0]]]]), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[0, 1, 0, 0],
                                              [0, 0, 1, 0]]]])


def test_overlapping_pool_windows_accumulate_gradients():
    x = Tensor(np.array([[[[0.0, 9.0, 0.0]]]]), requires_grad=True)
    F.max_pool2d(x, (1, 2), stride=1).sum().backward()  # both windows pick the 9
    np.testing.assert_array_equal(x.grad, [[[[0, 2, 0]]]])
    x.grad = None
    F.avg_pool2d(x, (1, 2), stride=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[0.5, 1.0, 0.5]]]])


def test_pool_errors():
    with pytest.raises(ValueError, match=re.escape("padding (2, 2) must be at most half the kernel (3, 3)")):
        F.max_pool2d(np.ones((1, 1, 6, 6)), 3, padding=2)
    with pytest.raises(ValueError, match=re.escape("input must be 4-D (N, C, H, W), got shape (6, 6)")):
        F.avg_pool2d(np.ones((6, 6)), 2)
    with pytest.raises(ValueError, match="smaller than the kernel 3x3"):
        F.max_pool2d(np.ones((1, 1, 2, 2)), 3)


# --------------------------------------------------------------------------------------------------------------
# Batch normalisation
# --------------------------------------------------------------------------------------------------------------
@st.composite
def bn_inputs(draw):
    """An input (N, C), (N, C, L) or (N, C, H, W) without repeated values (so each variance is well away from
    0), and γ, β."""
    rank = draw(st.sampled_from([2, 3, 4]))
    c = draw(st.integers(1, 3))
    rest = tuple(draw(st.integers(1, 3)) for _ in range(rank - 2))
    n = draw(st.integers(2 if not rest or np.prod(rest) == 1 else 1, 3))
    x = draw(separated((n, c) + rest, gap=0.1))
    return x, draw(arrays((c,), 0.5, 2.0)), draw(arrays((c,)))


@settings(max_examples=MEDIUM)
@given(bn_inputs(), st.booleans(), st.sampled_from([None, 1.0, 4.0]))
def test_batch_norm_gradcheck(inputs, training, fixed_var):
    x, gamma, beta = inputs
    c = x.shape[1]
    mean, var = np.linspace(-0.5, 0.5, c), np.linspace(0.5, 2.0, c)
    options = dict(training=training, fixed_var=fixed_var)

    def bn(*args):  # fresh copies of the running statistics: every call starts from the same state
        return F.batch_norm(args[0], mean.copy(), var.copy(), *args[1:], eps=1e-3, **options)

    assert gradcheck(bn, x, gamma, beta)
    assert gradcheck(lambda t: F.batch_norm(t, mean.copy(), var.copy(), **options), x)


def test_batch_norm_with_a_fixed_variance_only_centres_and_scales():
    """Sari et al. 2019's ablations: the batch mean is removed, the variance is the constant K."""
    x = np.array([[1.0, -2.0], [2.0, 0.0], [6.0, 2.0]])
    mean, var = np.zeros(2), np.ones(2)
    out = F.batch_norm(Tensor(x), mean, var, Tensor(np.array([2.0, 1.0])), Tensor(np.array([0.0, 5.0])),
                       momentum=1.0, fixed_var=4.0)
    np.testing.assert_allclose(out.data, (x - [3.0, 0.0]) / 2.0 * [2.0, 1.0] + [0.0, 5.0], rtol=1e-12)
    np.testing.assert_allclose(mean, [3.0, 0.0])  # the running mean is still tracked
    evaluated = F.batch_norm(Tensor(x), mean, var, training=False, fixed_var=1.0)  # "centred only"
    np.testing.assert_allclose(evaluated.data, x - [3.0, 0.0], rtol=1e-12)
    with pytest.raises(ValueError, match="fixed_var must be > 0, got 0.0"):
        F.batch_norm(x, fixed_var=0.0)


def test_batch_norm_values_and_running_statistics():
    x = np.array([[1.0, -2.0], [2.0, 0.0], [6.0, 2.0]])  # channel means 3, 0; biased vars 14/3, 8/3
    mean, var = np.zeros(2), np.ones(2)
    out = F.batch_norm(Tensor(x), mean, var, Tensor(np.array([2.0, 1.0])), Tensor(np.array([0.0, 5.0])),
                       training=True, momentum=0.25, eps=0.0)
    xhat = (x - [3.0, 0.0]) / np.sqrt([14 / 3, 8 / 3])
    np.testing.assert_allclose(out.data, xhat * [2.0, 1.0] + [0.0, 5.0], rtol=1e-12)
    np.testing.assert_allclose(mean, [0.75 * 0 + 0.25 * 3, 0.0], rtol=1e-12)
    np.testing.assert_allclose(var, [0.75 + 0.25 * 7.0, 0.75 + 0.25 * 4.0], rtol=1e-12)  # unbiased 14/2, 8/2
    evaluated = F.batch_norm(Tensor(x), mean, var, training=False, eps=0.0)
    np.testing.assert_allclose(evaluated.data, (x - mean) / np.sqrt(var), rtol=1e-12)
    np.testing.assert_allclose(mean, [0.75, 0.0])  # evaluation leaves them alone


def test_batch_norm_training_gradient_of_a_constant_shift_is_zero():
    """The normalised output does not change when a channel is shifted, so Σ_n dL/dx = 0 per channel."""
    x = Tensor(np.random.default_rng(1).normal(size=(5, 3, 2, 2)), requires_grad=True)
    (F.batch_norm(x) * Tensor(np.random.default_rng(2).normal(size=(5, 3, 2, 2)))).sum().backward()
    np.testing.assert_allclose(x.grad.sum(axis=(0, 2, 3)), 0.0, atol=1e-12)


def test_batch_norm_errors():
    with pytest.raises(ValueError, match=re.escape("weight must have shape (3,) for an input of shape (4, 3)")):
        F.batch_norm(np.ones((4, 3)), weight=np.ones(2), bias=np.ones(2))
    with pytest.raises(ValueError, match="both weight and bias"):
        F.batch_norm(np.ones((4, 3)), weight=np.ones(3))
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(np.ones((1, 3)))
    with pytest.raises(ValueError, match="needs running_mean and running_var"):
        F.batch_norm(np.ones((4, 3)), training=False)
    with pytest.raises(ValueError, match="momentum must be in"):
        F.batch_norm(np.ones((4, 3)), momentum=1.5)
    with pytest.raises(ValueError, match="channel axis"):
        F.batch_norm(np.ones(4))


# --------------------------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------------------------
@settings(max_examples=CHEAP)
@given(st.data(), shapes(max_dims=3), st.floats(0.0, 0.9))
def test_dropout_gradcheck_with_a_fixed_mask(data, shape, p):
    x = data.draw(arrays(shape))
    assert gradcheck(lambda t: F.dropout(t, p, rng=np.random.default_rng(7)), x)


def test_dropout_keeps_1_minus_p_of_the_elements_and_the_mean():
    n, p = 200_000, 0.3
    out = F.dropout(np.ones(n), p, rng=np.random.default_rng(0)).data
    kept = np.mean(out != 0)
    # The kept fraction is a mean of n Bernoulli(1 - p): standard error sqrt(p(1 - p)/n) ≈ 0.001; allow 5 of them.
    assert abs(kept - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(out[out != 0], 1 / (1 - p), rtol=1e-6)


def test_dropout_modes_and_reproducibility():
    x = Tensor(np.arange(1.0, 7.0))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, np.zeros(6))
    manual_seed(3)
    a = F.dropout(np.ones(50), 0.5).data
    manual_seed(3)
    np.testing.assert_array_equal(a, F.dropout(np.ones(50), 0.5).data)
    with pytest.raises(ValueError, match=re.escape("p must be in [0, 1], got 1.5")):
        F.dropout(x, 1.5)


# --------------------------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------------------------
ELEMENTWISE = [  # (name, function, reference, kinks, input range)
    ("relu", F.relu, lambda x: np.maximum(x, 0), [0.0], (-3, 3)),
    ("relu6", F.relu6, lambda x: np.clip(x, 0, 6), [0.0, 6.0], (-3, 9)),
    ("hardtanh", F.hardtanh, lambda x: np.clip(x, -1, 1), [-1.0, 1.0], (-3, 3)),
    ("hardtanh_shifted", lambda x: F.hardtanh(x, -1.0, 2.0), lambda x: np.clip(x, -1, 2), [-1.0, 2.0], (-3, 3)),
    ("tanh", F.tanh, np.tanh, [], (-3, 3)),
    ("sigmoid", F.sigmoid, lambda x: 1 / (1 + np.exp(-x)), [], (-6, 6)),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x), [0.0], (-3, 3)),
]


@pytest.mark.parametrize("name, fn, reference, kinks, bounds", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
@settings(max_examples=CHEAP)
@given(data=st.data(), shape=shapes(min_dims=0, max_dims=3))
def test_elementwise_activations(data, shape, name, fn, reference, kinks, bounds):
    x = away_from(data.draw(arrays(shape, *bounds)), kinks)
    np.testing.assert_allclose(fn(Tensor(x)).data, reference(x), rtol=1e-12, atol=1e-12)
    assert gradcheck(fn, x)


def test_gradients_at_the_kinks():
    def grad_at(fn, values):
        x = Tensor(np.array(values), requires_grad=True)
        fn(x).sum().backward()
        return x.grad.tolist()

    assert grad_at(F.relu, [-1.0, 0.0, 1.0]) == [0.0, 0.0, 1.0]
    assert grad_at(F.hardtanh, [-1.5, -1.0, 0.0, 1.0, 1.5]) == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert grad_at(F.relu6, [-1.0, 0.0, 6.0, 7.0]) == [0.0, 1.0, 1.0, 0.0]
    assert grad_at(lambda t: F.leaky_relu(t, 0.25), [-1.0, 0.0, 1.0]) == [0.25, 0.25, 1.0]


def test_sigmoid_and_softmax_do_not_overflow():
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        np.testing.assert_array_equal(F.sigmoid(np.array([-1e4, 0.0, 1e4])).data, [0.0, 0.5, 1.0])
        np.testing.assert_allclose(F.softmax(np.array([[1e4, 1e4, -1e4]])).data, [[0.5, 0.5, 0.0]])
        np.testing.assert_allclose(F.log_softmax(np.array([[1e4, 0.0]])).data, [[0.0, -1e4]])


@settings(max_examples=CHEAP)
@given(st.data(), shapes(min_dims=1, max_dims=3))
def test_softmax_and_log_softmax(data, shape):
    x = data.draw(arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    expected = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(F.softmax(Tensor(x), axis).data, expected, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(Tensor(x), axis).data, np.log(expected), rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda t: F.softmax(t, axis), x)
    assert gradcheck(lambda t: F.log_softmax(t, axis), x)


@settings(max_examples=MEDIUM)
@given(st.data(), shapes(min_dims=2, max_dims=4, max_side=3), st.booleans())
def test_prelu_gradcheck_per_channel_and_shared(data, shape, shared):
    x = away_from(data.draw(arrays(shape)), [0.0])
    a = data.draw(arrays((1,) if shared else (shape[1],), 0.0, 0.5))
    slope = a.reshape((1, -1) + (1,) * (len(shape) - 2))
    np.testing.assert_allclose(F.prelu(Tensor(x), Tensor(a)).data, np.where(x > 0, x, slope * x), rtol=1e-12)
    assert gradcheck(F.prelu, x, a)


def test_activation_errors():
    with pytest.raises(ValueError, match=re.escape("min_val (1.0) must be smaller than max_val (-1.0)")):
        F.hardtanh(np.ones(3), 1.0, -1.0)
    with pytest.raises(ValueError, match=re.escape("got weight (3,) for an input of shape (2, 4)")):
        F.prelu(np.ones((2, 4)), np.ones(3))
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        F.leaky_relu(np.ones(3), "0.1")


# --------------------------------------------------------------------------------------------------------------
# dtypes: float32 in, float32 out (and float32 gradients), even with NumPy float64 options and constants
# --------------------------------------------------------------------------------------------------------------
F64 = np.float64
OPS = [  # (name, function of one float32 (2, 3, 4, 4) tensor)
    ("linear", lambda x: F.linear(x, np.ones((5, 4)), np.ones(5))),
    ("conv2d", lambda x: F.conv2d(x, np.ones((2, 3, 3, 3)), np.ones(2), 2, 1, pad_value=F64(-1.0))),
    ("max_pool2d", lambda x: F.max_pool2d(x, 3, 1, 1)),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 2)),
    ("batch_norm", lambda x: F.batch_norm(x, np.zeros(3, np.float32), np.ones(3, np.float32), np.ones(3),
                                          np.zeros(3), momentum=F64(0.1), eps=F64(1e-5))),
    ("batch_norm_eval_f64_stats", lambda x: F.batch_norm(x, np.zeros(3), np.ones(3), training=False)),
    ("dropout", lambda x: F.dropout(x, F64(0.5))),
    ("relu", F.relu),
    ("relu6", F.relu6),
    ("hardtanh", lambda x: F.hardtanh(x, F64(-0.5), F64(0.5))),
    ("tanh", F.tanh),
    ("sigmoid", F.sigmoid),
    ("leaky_relu", lambda x: F.leaky_relu(x, F64(0.1))),
    ("prelu", lambda x: F.prelu(x, np.full(3, 0.25))),
    ("softmax", lambda x: F.softmax(x, axis=1)),
    ("log_softmax", F.log_softmax),
    ("cross_entropy", lambda x: F.cross_entropy(x.reshape(2, -1), np.array([0, 5]))),
    ("cross_entropy_probs", lambda x: F.cross_entropy(x.reshape(2, -1), np.full((2, 48), 1 / 48))),
    ("mse_loss", lambda x: F.mse_loss(x, np.zeros((2, 3, 4, 4)))),
    ("squared_hinge_loss", lambda x: F.squared_hinge_loss(x.reshape(2, -1), np.array([1, 2]))),
]


@pytest.mark.parametrize("name, fn", OPS, ids=[o[0] for o in OPS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_keep_the_input_dtype(name, fn, dtype):
    x = Tensor(np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(dtype), requires_grad=True)
    out = fn(x)
    assert out.dtype == dtype, f"{name} turned {np.dtype(dtype)} into {out.dtype}"
    out.sum().backward()
    assert x.grad.dtype == dtype and x.grad.shape == x.shape
    with no_grad():
        assert fn(x).dtype == dtype


# --------------------------------------------------------------------------------------------------------------
# Optional cross-check against PyTorch (skipped when it is not installed)
# --------------------------------------------------------------------------------------------------------------
def test_against_pytorch_conv_pool_batchnorm():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    upstream = rng.normal(size=(2, 4, 4, 9))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    torch.nn.functional.conv2d(tx, tw, tb, stride=(2, 1), padding=(1, 2)).backward(torch.tensor(upstream))
    mx, mw, mb = (Tensor(a, requires_grad=True) for a in (x, w, b))
    F.conv2d(mx, mw, mb, stride=(2, 1), padding=(1, 2)).backward(upstream)
    for mine, theirs in ((mx, tx), (mw, tw), (mb, tb)):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-10)

    for ours, theirs in ((F.max_pool2d, torch.nn.functional.max_pool2d),
                         (F.avg_pool2d, torch.nn.functional.avg_pool2d)):
        expected = theirs(torch.tensor(x), 3, 2, 1).numpy()
        np.testing.assert_allclose(ours(Tensor(x), 3, 2, 1).data, expected, rtol=1e-12, atol=1e-12)

    tbn = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(2):
        expected = tbn(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(F.batch_norm(x.copy(), mean, var, momentum=0.2).data.astype(np.float64),
                                   expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mean, tbn.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(var, tbn.running_var.numpy(), rtol=1e-6)
    tbn.eval()
    np.testing.assert_allclose(F.batch_norm(Tensor(x), mean, var, training=False).data,
                               tbn(torch.tensor(x)).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_against_pytorch_cross_entropy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    z, labels = rng.normal(size=(6, 4)) * 5, rng.integers(0, 4, 6)
    tz = torch.tensor(z, requires_grad=True)
    torch.nn.functional.cross_entropy(tz, torch.tensor(labels)).backward()
    mz = Tensor(z, requires_grad=True)
    loss = F.cross_entropy(mz, labels)
    loss.backward()
    np.testing.assert_allclose(loss.item(), torch.nn.functional.cross_entropy(tz, torch.tensor(labels)).item(),
                               rtol=1e-12)
    np.testing.assert_allclose(mz.grad, tz.grad.numpy(), rtol=1e-10, atol=1e-12)
