"""Tests for minibnn.probes: recorded statistics against a manual NumPy forward, recorded gradients against
autograd, streaming moments against NumPy on the concatenated values, and hooks gone after the block."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Module, Parameter, Sequential, Tensor, no_grad, where
from minibnn.layers import Hardtanh, Linear, ReLU
from minibnn.probes import ActivationRecorder, RunningStats, variance_profile
from strategies import CHEAP, MEDIUM, arrays


class Sign(Module):
    """sign(x) with sign(0) = +1 (no gradient: enough to test the ±1 counters)."""

    def forward(self, x):
        return where(x.data >= 0, 1.0, -1.0).astype(x.dtype)


class Scale(Module):
    """A one-parameter module built from Module/Parameter directly: y = a * x."""

    def __init__(self, a: float):
        super().__init__()
        self.a = Parameter(np.array(a, dtype=np.float64))

    def forward(self, x):
        return x * self.a


def make_model(seed: int = 0):
    rng = np.random.default_rng(seed)
    return Sequential(Linear(3, 5, dtype=np.float64, rng=rng, bias_init="random_bias"), Hardtanh(),
                      Linear(5, 2, dtype=np.float64, rng=rng, bias_init="random_bias"))


def hook_counts(model):
    return [len(m._forward_hooks) for m in model.modules()]


# ------------------------------------------------------------------------------------------ forward and backward
@settings(max_examples=MEDIUM, deadline=None)
@given(st.integers(1, 9), st.integers(0, 1000))
def test_records_equal_manual_forward_and_autograd(batch, seed):
    model = make_model(seed)
    rng = np.random.default_rng(seed + 1)
    x = 2.0 * rng.standard_normal((batch, 3))
    c = rng.standard_normal((batch, 2))
    l0, l2 = model[0], model[2]
    W0, b0, W2, b2 = l0.weight.data, l0.bias.data, l2.weight.data, l2.bias.data
    # Manual forward and chain rule for L = Σ c ⊙ out.
    z0 = x @ W0.T + b0
    h = np.clip(z0, -1, 1)
    z2 = h @ W2.T + b2
    dh = c @ W2
    dz0 = dh * (np.abs(z0) <= 1)

    with ActivationRecorder(model, keep_arrays=True) as rec:
        out = model(Tensor(x))
        (out * c).sum().backward()
    assert rec.names == ["0", "1", "2"]
    for name, value, grad in (("0", z0, dz0), ("1", h, dh), ("2", z2, c)):
        r = rec[name]
        assert len(r.outputs) == 1 and len(r.grads) == 1
        np.testing.assert_allclose(r.outputs[0], value, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(r.grads[0], grad, rtol=1e-12, atol=1e-12)
        assert r.output.count == value.size and r.grad.count == grad.size
        assert r.output.mean == pytest.approx(value.mean(), abs=1e-12)
        assert r.output.var == pytest.approx(value.var(), abs=1e-12)
        assert r.grad.var == pytest.approx(grad.var(), abs=1e-12)
        assert r.output.min == value.min() and r.output.max == value.max()
    assert rec["1"].output.plus_one_fraction == pytest.approx(np.mean(h == 1))
    assert rec["1"].output.minus_one_fraction == pytest.approx(np.mean(h == -1))

    # The gradient recorded for layer 0's output is autograd's dL/dz0: rerun from z0 as a leaf.
    z0_leaf = Tensor(z0.copy(), requires_grad=True)
    (model[2](model[1](z0_leaf)) * c).sum().backward()
    np.testing.assert_allclose(rec["0"].grads[0], z0_leaf.grad, rtol=1e-12, atol=1e-12)


def test_hooks_removed_on_exit():
    model = make_model()
    before = hook_counts(model)
    with ActivationRecorder(model) as rec:
        assert hook_counts(model) != before
        out = model(Tensor(np.ones((4, 3))))
        assert len(out._hooks) == 1
    assert hook_counts(model) == before
    assert out._hooks == []
    # Nothing is recorded any more: neither a later backward of an old output, nor a new forward.
    out.sum().backward()
    model(Tensor(np.ones((4, 3))))
    assert rec["2"].grad.count == 0 and rec["2"].output.count == 8
    with pytest.raises(RuntimeError, match="removed"):
        rec.__enter__()


def test_hooks_removed_when_the_block_raises():
    model = make_model()
    before = hook_counts(model)
    with pytest.raises(ValueError, match="got input of shape"):
        with ActivationRecorder(model):
            model(Tensor(np.ones((2, 4))))                      # wrong width: Linear(3, 5) raises
    assert hook_counts(model) == before


def test_remove_without_context_manager():
    model = make_model()
    before = hook_counts(model)
    rec = ActivationRecorder(model, layers=["0"])
    model(Tensor(np.ones((2, 3))))
    rec.remove()
    model(Tensor(np.ones((2, 3))))
    assert rec["0"].output.count == 10 and hook_counts(model) == before


def test_no_grad_records_forward_only():
    model = make_model()
    with no_grad(), ActivationRecorder(model) as rec:
        out = model(Tensor(np.ones((3, 3))))
    assert not out.requires_grad and out._hooks == []
    assert rec["0"].output.count == 15 and rec["0"].grad.count == 0
    assert np.isnan(rec["0"].grad.var)


def test_stats_only_keeps_no_arrays_and_no_graph():
    model = make_model()
    with ActivationRecorder(model) as rec:
        out = model(Tensor(np.ones((2, 3))))
        ref = weakref.ref(out)
        del out
        gc.collect()
        assert ref() is None                                       # the recorder holds no reference to outputs
    assert all(r.outputs == [] and r.grads == [] for r in rec)


def test_many_steps_keep_bounded_bookkeeping():
    model = make_model()
    with ActivationRecorder(model, record_grads=True) as rec:
        for _ in range(300):
            model(Tensor(np.ones((2, 3)))).sum().backward()
        assert len(rec._tensor_hooks) <= 64 + 3
    assert rec["2"].output.count == 300 * 4 and rec["2"].grad.count == 300 * 4
    assert rec["2"].grad.mean == 1.0 and rec["2"].grad.var == 0.0


def test_kept_arrays_are_copies():
    """An output that aliases the input (an identity module) is copied when kept, not referenced."""
    class Identity(Module):
        def forward(self, x):
            return x

    model = Sequential(Identity())
    x = Tensor(np.array([1.0, 2.0]))
    with ActivationRecorder(model, keep_arrays=True) as rec:
        model(x)
    x.data[0] = 5.0                                                 # the caller edits its input in place
    assert rec["0"].outputs[0].tolist() == [1.0, 2.0]


def test_record_grads_false():
    model = make_model()
    with ActivationRecorder(model, record_grads=False) as rec:
        out = model(Tensor(np.ones((2, 3))))
        out.sum().backward()
    assert rec["2"].output.count == 4 and rec["2"].grad.count == 0 and out._hooks == []


def test_module_called_twice_is_recorded_per_call():
    layer = Scale(2.0)
    model = Sequential(layer)
    with ActivationRecorder(model, layers=["0"], keep_arrays=True) as rec:
        y = layer(layer(Tensor(np.array([1.0, -1.0]))))
        y.sum().backward()
    assert [a.tolist() for a in rec["0"].outputs] == [[2.0, -2.0], [4.0, -4.0]]
    # Backward reaches the second call's output first (gradient 1), then the first call's (gradient a = 2).
    assert [g.tolist() for g in rec["0"].grads] == [[1.0, 1.0], [2.0, 2.0]]
    assert rec["0"].grad.mean == pytest.approx(1.5)


def test_binary_counters():
    model = Sequential(Linear(4, 6, dtype=np.float64), Sign())
    x = np.random.default_rng(2).standard_normal((50, 4))
    with ActivationRecorder(model, layer_types=Sign) as rec:
        model(Tensor(x))
    z = model[0](Tensor(x)).data
    s = rec["1"].output
    assert rec.names == ["1"] and s.is_binary
    assert s.plus_one_fraction == pytest.approx(np.mean(z >= 0))
    assert s.plus_one_fraction + s.minus_one_fraction == pytest.approx(1.0)
    assert s.positive_fraction == s.plus_one_fraction
    assert s.mean == pytest.approx(2 * s.plus_one_fraction - 1)              # E = 2p - 1 (Sari et al. 2019)
    assert s.var == pytest.approx(4 * s.plus_one_fraction * (1 - s.plus_one_fraction))   # V = 4p(1 - p)


def test_relu_zero_fraction():
    model = Sequential(Linear(3, 8, dtype=np.float64), ReLU())
    x = np.random.default_rng(4).standard_normal((20, 3))
    with ActivationRecorder(model, layers="1") as rec:
        model(Tensor(x))
    z = model[0](Tensor(x)).data
    assert rec["1"].output.zero_fraction == pytest.approx(np.mean(z <= 0))
    assert not rec["1"].output.is_binary


def test_selection():
    model = Sequential(make_model(), ReLU())
    assert ActivationRecorder(model).names == ["0.0", "0.1", "0.2", "1"]          # default: leaves
    assert ActivationRecorder(model, layer_types=Linear).names == ["0.0", "0.2"]
    assert ActivationRecorder(model, layers=["1"], layer_types=(Hardtanh,)).names == ["0.1", "1"]
    assert ActivationRecorder(model, layers=["0"]).names == ["0"]
    assert ActivationRecorder(Scale(1.0)).names == [""]                           # a model without children
    with pytest.raises(KeyError, match="no module named 'fc'.*'0.0'"):
        ActivationRecorder(model, layers=["fc"])
    with pytest.raises(ValueError, match="no module of the model matches"):
        ActivationRecorder(model, layer_types=Sign)
    with pytest.raises(TypeError, match="layer_types must be a class"):
        ActivationRecorder(model, layer_types="Linear")
    with pytest.raises(TypeError, match="must be a minibnn Module"):
        ActivationRecorder(object())
    rec = ActivationRecorder(model, layers=["1"])
    with pytest.raises(KeyError, match=r"recorded layers are \['1'\]"):
        rec["0"]
    rec.remove()


def test_reset_and_summary():
    model = make_model()
    with ActivationRecorder(model, keep_arrays=True) as rec:
        model(Tensor(np.ones((2, 3)))).sum().backward()
        summary = rec.summary()
        assert list(summary) == ["0", "1", "2"] and summary["2"]["grad"]["mean"] == 1.0
        assert summary["0"]["output"]["count"] == 10
        rec.reset()
        assert rec["0"].output.count == 0 and rec["0"].outputs == [] and np.isnan(rec["0"].output.mean)
        model(Tensor(np.ones((1, 3))))
    assert rec["0"].output.count == 5


# ------------------------------------------------------------------------------------------ running statistics
@settings(max_examples=CHEAP, deadline=None)
@given(st.lists(arrays(st.tuples(st.integers(0, 7), st.integers(1, 3)), -100.0, 100.0), min_size=1, max_size=6))
def test_running_stats_equal_numpy_on_concatenation(batches):
    s = RunningStats()
    for b in batches:
        s.update(b)
    values = np.concatenate([b.ravel() for b in batches])
    assert s.count == values.size
    if values.size == 0:
        assert np.isnan(s.mean) and np.isnan(s.var)
        return
    assert s.mean == pytest.approx(values.mean(), rel=1e-12, abs=1e-10)
    assert s.var == pytest.approx(values.var(), rel=1e-9, abs=1e-9)
    assert s.min == values.min() and s.max == values.max()
    assert s.positive_fraction == pytest.approx(np.mean(values > 0))
    assert s.zero_fraction == pytest.approx(np.mean(values == 0))


def test_running_stats_large_offset_is_stable():
    """The pairwise update does not cancel catastrophically: values 1e8 ± 1 still give variance 1."""
    s = RunningStats()
    rng = np.random.default_rng(0)
    for _ in range(20):
        s.update(1e8 + rng.choice([-1.0, 1.0], size=500))
    assert s.var == pytest.approx(1.0, rel=1e-3)


# ------------------------------------------------------------------------------------------ variance profile
def test_variance_profile_equals_manual():
    model = make_model(3)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((16, 3))
    upstream = rng.standard_normal((16, 2))
    l0, l2 = model[0], model[2]
    z0 = x @ l0.weight.data.T + l0.bias.data
    h = np.clip(z0, -1, 1)
    dh = upstream @ l2.weight.data
    profile = variance_profile(model, x, upstream=upstream)
    assert list(profile) == ["0", "1", "2"]
    assert profile["0"].output_var == pytest.approx(z0.var())
    assert profile["0"].grad_var == pytest.approx((dh * (np.abs(z0) <= 1)).var())
    assert profile["1"].output_var == pytest.approx(h.var()) and profile["1"].grad_var == pytest.approx(dh.var())
    assert profile["2"].grad_var == pytest.approx(upstream.var())
    assert all(p.grad is None for p in model.parameters())                     # parameters' grads untouched
    assert hook_counts(model) == [0] * 4
    # Default upstream: N(0, 1) drawn from the seed, reproducible.
    assert variance_profile(model, x, layer_types=Linear) == variance_profile(model, x, layer_types=Linear)
    with pytest.raises(ValueError, match=r"upstream has shape \(16, 3\)"):
        variance_profile(model, x, upstream=np.ones((16, 3)))
    with pytest.raises(RuntimeError, match="does not require grad"):
        with no_grad():
            variance_profile(model, x)
