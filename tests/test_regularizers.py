"""BNN+ regularizers R1 and R2: values, gradients (finite differences off the kinks), the layer finder, λ schedules."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Module, Parameter, Sequential, Tensor, gradcheck
from minibnn import quantizers, regularizers as reg
from minibnn.scales import init_alpha, scale_filters
from strategies import CHEAP, MEDIUM, arrays


class ScaledLinear(Module):
    """A minimal BNN+ layer, for tests: y = q(x) @ (α·q(W))ᵀ with the attribute names the finder relies on."""

    def __init__(self, w, method="median"):
        super().__init__()
        self.weight = Parameter(np.asarray(w))
        self.alpha = init_alpha(self.weight, method)
        self.kernel_quantizer = quantizers.get("ste_sign")
        self.input_quantizer = quantizers.get("ste_sign")

    def forward(self, x):
        w = scale_filters(self.kernel_quantizer(self.weight), self.alpha)
        return self.input_quantizer(x) @ w.T


PAIRS = st.sampled_from([(2, 3), (1, 4), (3, 2, 2, 2)]).flatmap(
    lambda shape: st.tuples(arrays((shape[0],), 0.2, 2.0), arrays(shape)))


def off_kinks(alpha, w):
    """Move |w| at least 0.05 away from 0 and from its filter's α (R1's kinks), by shifting, not filtering."""
    a = alpha.reshape((-1,) + (1,) * (w.ndim - 1))
    w = np.where(np.abs(w) < 0.05, np.sign(w + 1e-300) * 0.05 + w, w)
    return np.where(np.abs(np.abs(w) - a) < 0.05, w + 0.1 * np.sign(w), w)


@settings(max_examples=CHEAP)
@given(pair=PAIRS)
def test_r1_r2_values(pair):
    alpha, w = pair
    a = alpha.reshape((-1,) + (1,) * (w.ndim - 1))
    np.testing.assert_allclose(reg.r1(Tensor(alpha), Tensor(w)).item(), np.sum(np.abs(a - np.abs(w))), rtol=1e-12)
    np.testing.assert_allclose(reg.r2(Tensor(alpha), Tensor(w)).item(), np.sum((a - np.abs(w)) ** 2), rtol=1e-12)


@pytest.mark.parametrize("fn", [reg.r1, reg.r2])
@settings(max_examples=MEDIUM)
@given(pair=PAIRS)
def test_regularizers_gradcheck_in_alpha_and_weight(fn, pair):
    alpha, w = pair
    assert gradcheck(fn, alpha, off_kinks(alpha, w))


@settings(max_examples=CHEAP)
@given(pair=PAIRS)
def test_regularizer_gradients_match_the_closed_forms(pair):
    alpha, w = pair
    w = off_kinks(alpha, w)
    a = alpha.reshape((-1,) + (1,) * (w.ndim - 1))
    axes = tuple(range(1, w.ndim))
    for fn, d_alpha, d_w in [
        (reg.r1, np.sign(a - np.abs(w)), -np.sign(a - np.abs(w)) * np.sign(w)),
        (reg.r2, 2 * (a - np.abs(w)), -2 * (a - np.abs(w)) * np.sign(w)),
    ]:
        ta, tw = Tensor(alpha, requires_grad=True), Tensor(w, requires_grad=True)
        fn(ta, tw).backward()
        np.testing.assert_allclose(ta.grad, d_alpha.sum(axis=axes), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(tw.grad, d_w, rtol=1e-12, atol=1e-12)


def test_regularizer_finds_every_scaled_layer_and_adds_to_the_loss():
    rng = np.random.default_rng(0)
    l1, l2 = ScaledLinear(rng.normal(size=(3, 4))), ScaledLinear(rng.normal(size=(2, 3)))  # median: dR2/dα != 0
    model = Sequential(l1, Sequential(l2))
    assert [name for name, _ in reg.scaled_layers(model)] == ["0", "1.0"]
    r = reg.BNNPlusRegularizer("r2", coefficient=0.5)
    expected = 0.5 * sum(np.sum((m.alpha.data[:, None] - np.abs(m.weight.data)) ** 2) for m in (l1, l2))
    x = Tensor(rng.normal(size=(5, 4)))
    loss = model(x).sum()
    total = loss + r(model)
    np.testing.assert_allclose(total.item() - loss.item(), expected, rtol=1e-12)
    total.backward()
    # α gets the task gradient (Algorithm 1: g_s·x_b·W_b) plus λ·dR/dα
    task = Tensor(l2.alpha.data, requires_grad=True)
    h = quantizers.ste_sign(quantizers.ste_sign(x) @ scale_filters(quantizers.ste_sign(l1.weight), l1.alpha).T)
    (h @ scale_filters(quantizers.ste_sign(l2.weight.detach()), task).T).sum().backward()
    d_r2 = 2 * np.sum(l2.alpha.data[:, None] - np.abs(l2.weight.data), axis=1)
    assert np.all(np.abs(d_r2) > 1e-3) and np.all(np.abs(task.grad) > 0)
    np.testing.assert_allclose(l2.alpha.grad, task.grad + 0.5 * d_r2, rtol=1e-12)


def test_alpha_initialised_at_the_minimiser_has_zero_r2_gradient():
    layer = ScaledLinear(np.random.default_rng(1).normal(size=(4, 6)), "mean")
    penalty = reg.BNNPlusRegularizer("euclidean", coefficient=1.0).penalty(Sequential(layer))
    penalty.backward()
    np.testing.assert_allclose(layer.alpha.grad, 0.0, atol=1e-12)


def test_schedule_and_epochs():
    schedule = reg.RegularizerSchedule(final=1e-6, warmup_epochs=4, start=1e-7)
    assert [schedule(e) for e in (0, 4, 9)] == [1e-7, 1e-6, 1e-6]
    np.testing.assert_allclose(schedule(2), 5.5e-7)
    layer = ScaledLinear(np.array([[0.5, -1.0, 2.0]]))
    r = reg.BNNPlusRegularizer("r1", coefficient=schedule)
    values = []
    for epoch in range(6):
        r.set_epoch(epoch)
        values.append(r(layer).item())
    np.testing.assert_allclose(values, [schedule(e) * 1.5 for e in range(6)], rtol=1e-12)
    assert reg.BNNPlusRegularizer("r1", coefficient=lambda e: 0.1 * e).current_coefficient == 0.0


def test_regularizer_errors_are_clear():
    with pytest.raises(ValueError, match="found no layer with a Parameter 'weight' and a Parameter 'alpha'"):
        reg.BNNPlusRegularizer()(Sequential(quantizers.SteSign()))
    with pytest.raises(ValueError, match="kind must be one of"):
        reg.BNNPlusRegularizer("r3")
    layer = ScaledLinear(np.ones((3, 2)))
    layer.alpha = Parameter(np.ones(2))
    with pytest.raises(ValueError, match=r"layer 'ScaledLinear': alpha must have shape \(3,\).*got \(2,\)"):
        reg.BNNPlusRegularizer()(layer)
    with pytest.raises(ValueError, match="warmup_epochs must be >= 0"):
        reg.RegularizerSchedule(1e-6, warmup_epochs=-1)
