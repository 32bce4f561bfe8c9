"""Quantizers: exact forwards, pseudo-gradients against their formulas (with exact zeros and clip edges in the
data), SignSwish against finite differences, shifted thresholds, the registry and the plots."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Module, Parameter, Tensor, gradcheck
from minibnn import plotting, quantizers as q
from minibnn.gradcheck import GradcheckError
from strategies import CHEAP, MEDIUM, arrays, arrays_with, separated, shapes

EDGES = (0.0, -0.0, 1.0, -1.0)


def forward_backward(fn, x, upstream):
    """Run fn on a tensor copy of x and backpropagate ``upstream``; return (output, dL/dx) as arrays."""
    t = Tensor(x, requires_grad=True)
    y = fn(t)
    y.backward(upstream)
    return y.data, t.grad


def sign(x):
    """sign with sign(0) = sign(-0.0) = +1 and sign(NaN) = +1 (the packing convention: the bit is x < 0)."""
    return np.where(x < 0, -1.0, 1.0)


# ---- forward: exact values ------------------------------------------------------------------------------------
BINARY_SIGNS = ["ste_sign", "htanh", "approx_sign", "bireal", "tanh", "tanh_sign", "swish_sign", "ss_5", "ss_10",
                "ss_t", "SteSign", "ApproxSign", "SwishSign"]


@pytest.mark.parametrize("name", BINARY_SIGNS)
@settings(max_examples=CHEAP)
@given(x=arrays_with(shapes(), specials=EDGES))
def test_binary_forward_is_sign_with_sign_of_zero_plus_one(name, x):
    x32 = x.astype(np.float32)  # tiny negatives round to -0.0 in float32, whose sign is +1
    out = q.get(name)(Tensor(x32)).data
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, sign(x32))
    assert set(np.unique(out)) <= {-1.0, 1.0}


def test_sign_of_nan_is_plus_one_as_in_packing():
    x = np.array([np.nan, -np.nan, -1.0, 0.0], dtype=np.float32)
    for fn in (q.ste_sign, q.approx_sign, q.tanh_sign, q.swish_sign):
        assert fn(Tensor(x[:2])).data.tolist() == [1.0, 1.0], fn
    np.testing.assert_array_equal(q.ste_sign(Tensor(x)).data, [1.0, 1.0, -1.0, 1.0])
    np.testing.assert_array_equal(q.ste_heaviside(Tensor(x)).data, [1.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(q.ste_tern(Tensor(x), 0.5).data, [1.0, 1.0, -1.0, 0.0])
    np.testing.assert_array_equal(q.ste_sign(Tensor(x)).data < 0, x < 0)  # the packed bit of the input


def test_one_dtype_rule_for_every_quantizer():
    x64 = np.array([-1.0, 0.5, 2.0])
    for fn in (q.ste_sign, q.approx_sign, q.tanh_sign, q.swish_sign, q.ste_heaviside, q.magnitude_aware_sign,
               q.ste_tern, q.dorefa, q.shifted_hardtanh, q.NoOp()):
        assert fn(x64).dtype == np.float64, fn
        assert fn([-1.0, 0.5, 2.0]).dtype == np.float32, fn
        assert fn(Tensor(x64.astype(np.float32))).dtype == np.float32, fn


def test_sign_of_both_zeros_is_plus_one():
    for fn in (q.ste_sign, q.approx_sign, q.tanh_sign, q.swish_sign):
        np.testing.assert_array_equal(fn(Tensor([0.0, -0.0])).data, [1.0, 1.0])
    np.testing.assert_array_equal(q.ste_heaviside(Tensor([0.0, -0.0, -1e-30])).data, [1.0, 1.0, 0.0])


@settings(max_examples=CHEAP)
@given(x=arrays_with(shapes(), specials=EDGES))
def test_heaviside_forward_is_zero_one_step(x):
    out = q.ste_heaviside(Tensor(x)).data
    np.testing.assert_array_equal(out, (sign(x) + 1) / 2)
    assert set(np.unique(out)) <= {0.0, 1.0}


# ---- backward: each pseudo-gradient equals its formula --------------------------------------------------------
def clipped(c):
    return lambda x: (np.abs(x) <= c).astype(float)


PSEUDO_GRADIENTS = {
    # name: (function of a tensor, pseudo-derivative as a function of x, special points)
    "ste_sign(clip=1)": (lambda t: q.ste_sign(t), clipped(1.0), EDGES),
    "ste_sign(clip=0.5)": (lambda t: q.ste_sign(t, clip_value=0.5), clipped(0.5), (0.0, 0.5, -0.5)),
    "ste_sign(clip=None)": (lambda t: q.ste_sign(t, clip_value=None), lambda x: np.ones_like(x), EDGES),
    "htanh": (q.get("htanh"), clipped(1.0), EDGES),
    "approx_sign": (q.approx_sign, lambda x: np.where(np.abs(x) <= 1, 2 - 2 * np.abs(x), 0.0), EDGES),
    "bireal": (q.get("bireal"), lambda x: np.where(np.abs(x) <= 1, 2 - 2 * np.abs(x), 0.0), EDGES),
    "tanh": (q.get("tanh"), lambda x: 1 - np.tanh(x) ** 2, EDGES),
    # Darabi et al. 2018, eq. 3, written literally with cosh:
    "ss_5": (q.get("ss_5"), lambda x: 5 * (2 - 5 * x * np.tanh(5 * x / 2)) / (1 + np.cosh(5 * x)), EDGES),
    "ss_10": (q.get("ss_10"), lambda x: 10 * (2 - 10 * x * np.tanh(5 * x)) / (1 + np.cosh(10 * x)), EDGES),
    "swish_sign(beta=2.5)": (lambda t: q.swish_sign(t, 2.5),
                             lambda x: 2.5 * (2 - 2.5 * x * np.tanh(1.25 * x)) / (1 + np.cosh(2.5 * x)), EDGES),
    "ste_heaviside(clip=1)": (q.ste_heaviside, clipped(1.0), EDGES),
    "ste_heaviside(clip=2)": (lambda t: q.ste_heaviside(t, clip_value=2.0), clipped(2.0), (0.0, 2.0, -2.0)),
    "ste_tern": (q.ste_tern, clipped(1.0), EDGES + (0.05, -0.05)),
    "ste_tern(twn)": (lambda t: q.ste_tern(t, ternary_weight_networks=True), clipped(1.0), EDGES),
    "ste_tern(clip=0.8)": (lambda t: q.ste_tern(t, 0.3, clip_value=0.8), clipped(0.8), (0.0, 0.8, -0.8, 0.3)),
}


@pytest.mark.parametrize("name", sorted(PSEUDO_GRADIENTS))
@settings(max_examples=CHEAP)
@given(data=st.data())
def test_pseudo_gradient_equals_its_formula(name, data):
    fn, formula, specials = PSEUDO_GRADIENTS[name]
    x = data.draw(arrays_with(shapes(), specials=specials))
    upstream = data.draw(arrays(x.shape))
    if isinstance(fn, q.Quantizer) and fn.parameters():
        fn.astype(np.float64)
    _, grad = forward_backward(fn, x, upstream)
    assert grad.dtype == np.float64 and grad.shape == x.shape
    np.testing.assert_allclose(grad, upstream * formula(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["ste_sign", "ste_heaviside", "ste_tern"])
def test_clip_edge_is_inclusive(name):
    fn = getattr(q, name)
    c = 0.75
    x = np.array([-c, -np.nextafter(c, 1), np.nextafter(c, 1), c, 0.0])
    _, grad = forward_backward(lambda t: fn(t, clip_value=c), x, np.ones(5))
    np.testing.assert_array_equal(grad, [1.0, 0.0, 0.0, 1.0, 1.0])


def test_pseudo_gradient_of_zero_upstream_is_zero_and_float32_stays_float32():
    x = np.array([-1.0, 0.0, 0.4], dtype=np.float32)
    for name in BINARY_SIGNS[:-4] + ["ste_heaviside", "ste_tern", "dorefa", "magnitude_aware_sign"]:
        quantizer = q.get(name)
        out, grad = forward_backward(quantizer, x, np.zeros(3, dtype=np.float32))
        assert out.dtype == np.float32 and grad.dtype == np.float32, name
        assert not grad.any(), name


# ---- SignSwish: the smooth function, its derivative and β -----------------------------------------------------
@settings(max_examples=MEDIUM)
@given(x=arrays(shapes(max_dims=2), -2.0, 2.0), beta=st.floats(0.5, 10.0))
def test_sign_swish_gradcheck_in_x_and_beta(x, beta):
    # eq. 3 (the backward) against finite differences of eq. 2 (the forward), in x and in β together
    assert gradcheck(q.sign_swish, x, np.array(beta))


@settings(max_examples=MEDIUM)
@given(x=arrays(shapes(max_dims=2), -2.0, 2.0), beta=arrays((), 0.5, 10.0))
def test_sign_swish_gradcheck_with_per_entry_beta(x, beta):
    betas = np.abs(x) * 0 + beta + np.linspace(0, 1, x.size).reshape(x.shape)  # β broadcast to x's shape
    assert gradcheck(q.sign_swish, x, betas)


@settings(max_examples=CHEAP)
@given(x=arrays_with(shapes(), specials=(0.0, 2.4 / 5, -2.4 / 5)), beta=st.floats(0.5, 12.0))
def test_swish_sign_backward_is_the_smooth_derivative_for_x_and_beta(x, beta):
    upstream = np.linspace(-1, 1, x.size).reshape(x.shape)
    grads = []
    for fn in (q.swish_sign, q.sign_swish):
        t, b = Tensor(x, requires_grad=True), Tensor(np.array(beta), requires_grad=True)
        fn(t, b).backward(upstream)
        grads.append((t.grad, b.grad))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-12, atol=1e-12)
    # and dSS/dβ = x·(2 - βx·tanh(βx/2))/(1 + cosh βx), summed over the broadcast
    z = beta * x
    expected = np.sum(upstream * x * (2 - z * np.tanh(z / 2)) / (1 + np.cosh(z)))
    np.testing.assert_allclose(grads[0][1], expected, rtol=1e-10, atol=1e-12)


def test_finite_differences_cannot_check_a_pseudo_gradient():
    # why the STEs are tested against their formulas: sign is flat away from 0, the pseudo-gradient is not
    with pytest.raises(GradcheckError, match="finite differences give 0"):
        gradcheck(q.swish_sign, np.array([0.1, -0.2]))


def test_sign_swish_shape_limits_and_symmetry():
    x = np.linspace(-3, 3, 61)
    for beta in (1.0, 5.0, 10.0):
        ss = q.sign_swish(Tensor(x), beta).data
        np.testing.assert_allclose(ss, -ss[::-1], atol=1e-12)  # odd
        assert ss[30] == 0.0
    far = q.sign_swish(Tensor(np.array([-50.0, 50.0])), 10.0).data
    np.testing.assert_allclose(far, [-1.0, 1.0], atol=1e-12)
    big = q.sign_swish(Tensor(np.array([-1e4, 1e4])), 1e3).data  # no overflow in exp or cosh
    assert np.all(np.isfinite(big))


@pytest.mark.parametrize("beta", [1.0, 5.0, 10.0])
def test_swish_sign_pseudo_gradient_changes_sign_near_2_4_over_beta(beta):
    slope = lambda x: forward_backward(lambda t: q.swish_sign(t, beta), np.array(x), np.ones(np.shape(x)))[1]
    inside, outside = slope([2.3 / beta, -2.3 / beta]), slope([2.5 / beta, -2.5 / beta])
    assert np.all(inside > 0) and np.all(outside < 0)
    lo, hi = 2.3 / beta, 2.5 / beta  # bisect the zero: z·tanh(z/2) = 2 at z = 2.39936...
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if slope([mid])[0] > 0 else (lo, mid)
    assert abs(lo * beta - 2.399357280515) < 1e-9


def test_ss_t_has_a_trainable_beta_found_by_the_owner():
    class Layer(Module):
        def __init__(self):
            super().__init__()
            self.input_quantizer = q.get("ss_t")

    layer = Layer()
    (name, beta), = layer.named_parameters()
    assert name == "input_quantizer.beta" and beta.shape == () and beta.item() == 5.0
    x = np.array([-0.3, 0.0, 0.2, 1.0], dtype=np.float32)
    layer.input_quantizer(Tensor(x)).sum().backward()
    z = 5.0 * x
    np.testing.assert_allclose(beta.grad, np.sum(x * (2 - z * np.tanh(z / 2)) / (1 + np.cosh(z))), rtol=1e-5)
    assert q.get("ss_5").parameters() == []


# ---- magnitude-aware sign, ternary, DoReFa --------------------------------------------------------------------
@settings(max_examples=CHEAP)
@given(data=st.data())
def test_magnitude_aware_sign_matches_its_definition(data):
    shape = data.draw(st.sampled_from([(3, 4), (2, 3, 2, 2), (1, 5), (4, 1, 3, 3)]))
    w = data.draw(arrays_with(shape, specials=EDGES))
    upstream = data.draw(arrays(shape))
    out, grad = forward_backward(q.get("magnitude_aware_sign"), w, upstream)
    scale = np.abs(w).reshape(shape[0], -1).mean(axis=1).reshape((-1,) + (1,) * (len(shape) - 1))
    np.testing.assert_allclose(out, scale * sign(w), rtol=1e-12)
    # the scale is a constant in backward (as in Larq): d/dw = scale · 1{|w| <= 1}
    np.testing.assert_allclose(grad, upstream * scale * (np.abs(w) <= 1), rtol=1e-12, atol=1e-15)


@settings(max_examples=CHEAP)
@given(x=arrays_with(shapes(), specials=EDGES + (0.05, -0.05, 0.3, -0.3)), threshold=st.sampled_from([0.05, 0.3]))
def test_ste_tern_fixed_threshold(x, threshold):
    out = q.ste_tern(Tensor(x), threshold_value=threshold).data
    expected = np.where(x >= threshold, 1.0, np.where(x <= -threshold, -1.0, 0.0))
    np.testing.assert_array_equal(out, expected)
    assert set(np.unique(out)) <= {-1.0, 0.0, 1.0}


@settings(max_examples=CHEAP)
@given(x=arrays_with(shapes(min_side=2), specials=EDGES))
def test_ste_tern_ternary_weight_networks_threshold(x):
    delta = 0.7 * np.mean(np.abs(x))
    out = q.get("ste_tern", ternary_weight_networks=True)(Tensor(x)).data
    np.testing.assert_array_equal(out, np.where(np.abs(x) < delta, 0.0, sign(x)))


def test_ste_tern_ternary_weight_networks_threshold_by_hand():
    x = np.array([2.0, -1.3, 0.69, -0.71, 0.30])  # mean|x| = 1, so Δ = 0.7 sits between 0.69 and 0.71
    out = q.ste_tern(Tensor(x, requires_grad=True), ternary_weight_networks=True)
    np.testing.assert_array_equal(out.data, [1.0, -1.0, 0.0, -1.0, 0.0])
    assert out._ctx.threshold == pytest.approx(0.7)


@pytest.mark.parametrize("k_bit", [1, 2, 3, 4])
@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_dorefa_activations_grid_and_straight_through(k_bit, data):
    n = 2 ** k_bit - 1
    x = data.draw(arrays_with(shapes(), specials=(0.0, 1.0, 0.5 / n, 1.5 / n, -0.1, 1.2), low=-0.5, high=1.5))
    upstream = data.draw(arrays(x.shape))
    quantizer = q.get("dorefa_quantizer", k_bit=k_bit)
    assert quantizer.precision == k_bit
    out, grad = forward_backward(quantizer, x, upstream)
    np.testing.assert_allclose(out, np.round(np.clip(x, 0, 1) * n) / n, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out * n, np.round(out * n), atol=1e-12)  # on the grid {0, 1/n, ..., 1}
    assert len(np.unique(out)) <= n + 1
    np.testing.assert_array_equal(grad, upstream * ((x >= 0) & (x <= 1)))


def dorefa_normalised(t):
    """The smooth part of DoReFa's weight quantizer, 2·(tanh(w)/(2 max|tanh w|) + 1/2) - 1, in engine ops."""
    th = 1 - 2 / ((t * 2.0).exp() + 1)  # tanh from exp, independently of the quantizer module
    return (th / (th.abs().max() * 2.0) + 0.5) * 2.0 - 1.0


@pytest.mark.parametrize("k_bit", [1, 2, 3])
@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_dorefa_weights_definition_grid_and_gradient(k_bit, data):
    n = 2 ** k_bit - 1
    shape = data.draw(shapes(max_dims=2, min_side=2))
    w = data.draw(separated(shape, gap=1e-2, low=-2.0, high=2.0))
    peak = np.argmax(np.abs(w))
    w.flat[peak] += 0.1 * sign(w.flat[peak])  # a unique largest |w|, so max has no tie (and -w_max != w_max)
    upstream = data.draw(arrays(shape))
    out, grad = forward_backward(lambda t: q.dorefa(t, k_bit, mode="weights"), w, upstream)
    th = np.tanh(w)
    expected = 2 * np.round((th / (2 * np.abs(th).max()) + 0.5) * n) / n - 1
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_allclose((out + 1) * n / 2, np.round((out + 1) * n / 2), atol=1e-12)
    assert out.min() >= -1 and out.max() <= 1
    # rounding is straight-through, the tanh normalisation is differentiated exactly
    _, smooth_grad = forward_backward(dorefa_normalised, w, upstream)
    np.testing.assert_allclose(grad, smooth_grad, rtol=1e-9, atol=1e-12)
    assert gradcheck(dorefa_normalised, w)


def test_dorefa_weights_of_zeros_do_not_divide_by_zero():
    out = q.dorefa(Tensor(np.zeros((2, 3))), 2, mode="weights").data
    assert np.all(np.isfinite(out))


def test_noop_only_tags_precision():
    x = Tensor([0.3, -2.0], requires_grad=True)
    quantizer = q.get("noop", precision=8)
    assert quantizer.precision == 8 and quantizer(x) is x
    assert q.get("NoOp").precision is None


# ---- shifted thresholds and activations (Kim et al. 2021) -----------------------------------------------------
@pytest.mark.parametrize("inner", ["ste_sign", "approx_sign", "ss_5", "tanh"])
@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_shifted_threshold_is_sign_of_x_minus_t_with_the_inner_backward(inner, data):
    t = data.draw(st.sampled_from([-0.6, 0.0, 0.5, 1.2]))
    x = data.draw(arrays_with(shapes(), specials=(t, t + 1.0, t - 1.0, 0.0)))
    upstream = data.draw(arrays(x.shape))
    out, grad = forward_backward(q.ShiftedThreshold(inner, shift=t), x, upstream)
    reference_out, reference_grad = forward_backward(q.get(inner), x - t, upstream)
    np.testing.assert_array_equal(out, sign(x - t))  # +1 on the threshold itself
    np.testing.assert_allclose(grad, reference_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(out, reference_out)


@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_per_channel_fixed_shift(data):
    shape = data.draw(st.sampled_from([(3, 2), (2, 3, 2, 2)]))
    shifts = np.array([0.5, -0.25, 1.0])[:shape[1]]
    x = data.draw(arrays(shape))
    out = q.ShiftedThreshold("ste_sign", shift=shifts)(Tensor(x)).data
    np.testing.assert_array_equal(out, sign(x - shifts.reshape((1, -1) + (1,) * (len(shape) - 2))))


@pytest.mark.parametrize("inner", ["ste_sign", "approx_sign", "ss_10"])
@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_trainable_threshold_gradient_is_minus_sum_of_pseudo_gradients(inner, data):
    shape = data.draw(st.sampled_from([(4, 3), (2, 3, 2, 2), (1, 2, 3, 1)]))
    c = shape[1]
    init = data.draw(arrays((c,), -1.0, 1.0))
    x = data.draw(arrays_with(shape, specials=(0.0, 1.0, -1.0)))
    upstream = data.draw(arrays(shape))
    module = q.TrainableThreshold(c, quantizer=inner, init=init).astype(np.float64)
    (name, threshold), = module.named_parameters()
    assert name == "threshold" and threshold.shape == (c,)
    t = Tensor(x, requires_grad=True)
    module(t).backward(upstream)
    view = threshold.data.reshape((1, c) + (1,) * (len(shape) - 2))  # init, rounded to float32 on creation
    _, pseudo = forward_backward(q.get(inner), x - view, upstream)  # upstream · q'(x - t)
    axes = tuple(i for i in range(len(shape)) if i != 1)
    np.testing.assert_allclose(threshold.grad, -pseudo.sum(axis=axes), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t.grad, pseudo, rtol=1e-12, atol=1e-15)
    # BatchNorm's bias in disguise (Kim et al. 2021, eq. 1): a bias b in q(x + b - t) gets exactly the opposite
    bias = Parameter(np.zeros(c))
    threshold.grad = None
    module(Tensor(x) + bias.reshape(view.shape)).backward(upstream)
    np.testing.assert_allclose(bias.grad, -threshold.grad, rtol=1e-12, atol=1e-15)


def test_trainable_threshold_rejects_the_wrong_channel_count():
    with pytest.raises(ValueError, match=r"3 channels got input of shape \(2, 4\)"):
        q.TrainableThreshold(3)(Tensor(np.zeros((2, 4))))
    with pytest.raises(ValueError, match="init must be a number or have shape"):
        q.TrainableThreshold(3, init=np.zeros(2))


OFFSETS = st.tuples(st.sampled_from([-1.2, 0.0, 0.5]), st.sampled_from([-0.5, 0.0, 0.5]),
                    st.sampled_from([0.5, 1.0, 3.0]))


@settings(max_examples=MEDIUM)
@given(x=arrays(shapes(max_dims=2), -5.0, 5.0), offsets=OFFSETS)
def test_shifted_hardtanh_gradcheck_off_the_kinks(x, offsets):
    x_offset, y_offset, scale = offsets
    kinks = np.array([x_offset - scale, x_offset + scale])
    near = np.min(np.abs(x[..., None] - kinks), axis=-1) < 0.01
    x = np.where(near, x + 0.05, x)  # move points off the two kinks (shift, don't filter)
    assert gradcheck(lambda t: q.shifted_hardtanh(t, x_offset, y_offset, scale), x)


@settings(max_examples=CHEAP)
@given(x=arrays(shapes(), -8.0, 8.0), offsets=OFFSETS)
def test_shifted_hardtanh_definition_and_relu6(x, offsets):
    x_offset, y_offset, scale = offsets
    out = q.ShiftedHardtanh(x_offset, y_offset, scale)(Tensor(x)).data
    np.testing.assert_allclose(out, np.clip(x - x_offset, -scale, scale) + y_offset)
    # Kim et al. 2021: shifted by 3 along x and y with range ×3, hardtanh is ReLU6
    np.testing.assert_allclose(q.shifted_hardtanh(Tensor(x), 3.0, 3.0, 3.0).data, np.clip(x, 0, 6), atol=1e-12)


# ---- registry -------------------------------------------------------------------------------------------------
LARQ_NAMES = ["ste_sign", "approx_sign", "swish_sign", "ste_heaviside", "magnitude_aware_sign", "ste_tern",
              "dorefa_quantizer", "SteSign", "ApproxSign", "SwishSign", "SteHeaviside", "MagnitudeAwareSign",
              "SteTern", "DoReFa", "DoReFaQuantizer", "NoOp", "NoOpQuantizer"]
TABLE_1_NAMES = ["htanh", "tanh", "bireal", "ss_5", "ss_10", "ss_t"]


def test_registry_has_larq_and_bnn_plus_names_with_precisions():
    for name in LARQ_NAMES + TABLE_1_NAMES:
        quantizer = q.get(name)
        assert isinstance(quantizer, q.Quantizer) and quantizer.name == name
    assert {n: q.get(n).precision for n in ["ste_sign", "ss_t", "ste_tern", "dorefa", "noop"]} == \
        {"ste_sign": 1, "ss_t": 1, "ste_tern": 2, "dorefa": 2, "noop": None}
    assert q.get("ss_10").beta == 10.0 and q.get("htanh").clip_value == 1.0
    assert q.get("ste_sign", clip_value=None).clip_value is None


def test_get_passes_callables_and_none_and_makes_fresh_modules():
    assert q.get(None) is None
    assert q.get(q.ste_sign) is q.ste_sign
    module = q.SteSign()
    assert q.get(module) is module
    assert isinstance(q.get(q.ApproxSign), q.ApproxSign)
    a, b = q.get("ss_t"), q.get("ss_t")
    assert a is not b and a.beta is not b.beta


def test_get_rejects_unknown_names_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown quantizer 'ste_sing'; known names: .*ste_sign"):
        q.get("ste_sing")
    with pytest.raises(TypeError, match="got int"):
        q.get(3)
    with pytest.raises(TypeError, match="only go with a quantizer name"):
        q.get(q.ste_sign, clip_value=2)
    with pytest.raises(ValueError, match="already taken"):
        q.register("ste_sign")(q.SteSign)


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="clip_value must be a positive number or None, got -1"):
        q.ste_sign(Tensor([1.0]), clip_value=-1)
    with pytest.raises(ValueError, match="beta must be > 0"):
        q.swish_sign(Tensor([1.0]), beta=0.0)
    with pytest.raises(ValueError, match="k_bit must be an int >= 1, got 0"):
        q.DoReFa(k_bit=0)
    with pytest.raises(ValueError, match="mode must be one of 'activations', 'weights'"):
        q.dorefa(Tensor([1.0]), mode="kernel")
    with pytest.raises(ValueError, match="scale must be > 0"):
        q.ShiftedHardtanh(scale=0)


# ---- plots ----------------------------------------------------------------------------------------------------
def test_pseudo_gradient_helper_leaves_parameters_alone():
    module = q.TrainableThreshold(2, "ss_t")
    module.threshold.grad = np.array([1.0, 2.0], dtype=np.float32)
    out, grad = module.pseudo_gradient(np.zeros((3, 2)))
    np.testing.assert_array_equal(out, np.ones((3, 2)))
    np.testing.assert_allclose(grad, 5.0)  # β(2 - 0)/(1 + cosh 0) at x - t = 0
    np.testing.assert_array_equal(module.threshold.grad, [1.0, 2.0])
    assert module.quantizer.beta.grad is None


def test_plots_draw_forward_and_pseudo_gradient():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    left, right = plotting.plot_quantizer(q.get("ss_5"), x_range=(-1.5, 1.5), num=31)
    (line,), (grad_line,) = left.get_lines()[:1], right.get_lines()[:1]
    np.testing.assert_array_equal(line.get_ydata(), sign(np.linspace(-1.5, 1.5, 31)))
    assert grad_line.get_ydata().max() == pytest.approx(5.0, rel=0.05)
    fig = plotting.plot_quantizers(TABLE_1_NAMES + ["ste_tern", "dorefa", "magnitude_aware_sign"])
    assert len(fig.axes) == 2 * 9
    assert len(plotting.plot_quantizer(q.TrainableThreshold(3))[0].get_lines()) >= 3
    plt.close("all")
