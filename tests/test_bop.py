"""Tests of minibnn.bop: Bop flips exactly the weights whose gradient average crosses the threshold in their
own direction (a hand-worked example, with ties, and a generated comparison with the formula), the flip
ratio of minibnn.metrics on the same example, and CaseOptimizer's routing, steps and saved state."""
from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Parameter, Sequential, manual_seed
from minibnn.bop import Bop, CaseOptimizer, is_binary_kernel
from minibnn.checkpoint import load_checkpoint, save_checkpoint
from minibnn.layers import BatchNorm1d, Linear
from minibnn.losses import CrossEntropyLoss
from minibnn.metrics import FlipRatio
from minibnn.optim import SGD, Adam
from minibnn.quantized import BinaryLinear, QuantLinear
from minibnn.schedulers import StepLR
from strategies import CHEAP, arrays

F32 = np.float32


def hand_example():
    """w = [1, 1, -1, -1, 1, -1], γ = 1/2, τ = 1/4, two steps (every number exact in float32)."""
    w = Parameter(np.array([1, 1, -1, -1, 1, -1], dtype=F32))
    opt = Bop([w], gamma=0.5, threshold=0.25)
    grads = [np.array([1.0, -1.0, -1.0, 0.25, 0.5, 0.0], dtype=F32),
             np.array([1.0, 1.0, 0.0, -1.0, 0.5, -1.0], dtype=F32)]
    return w, opt, grads


def test_bop_hand_example():
    w, opt, (g1, g2) = hand_example()
    w.grad = g1
    opt.step()
    # m = ½·g1 = [½, -½, -½, ⅛, ¼, 0];  m·w = [½, -½, ½, -⅛, ¼, 0]:  flips where m·w > ¼: weights 0 and 2
    # (weight 4 sits exactly on the threshold, |m| = τ, and does not flip)
    np.testing.assert_array_equal(opt.state[w]["momentum"], [0.5, -0.5, -0.5, 0.125, 0.25, 0.0])
    np.testing.assert_array_equal(w.data, [-1, 1, 1, -1, 1, -1])
    w.grad = g2
    opt.step()
    # m = ½·m + ½·g2 = [¾, ¼, -¼, -7/16, ⅜, -½];  m·w = [-¾, ¼, -¼, 7/16, ⅜, ½]: flips 3, 4, 5
    # (weight 0 just flipped to -1 and m > 0 now opposes it: no flip back; weight 1 is on the threshold)
    np.testing.assert_array_equal(opt.state[w]["momentum"], [0.75, 0.25, -0.25, -0.4375, 0.375, -0.5])
    np.testing.assert_array_equal(w.data, [-1, 1, 1, 1, -1, 1])
    assert opt.state[w]["step"] == 2


def test_flip_ratio_of_the_hand_example():
    w, opt, grads = hand_example()
    flips = FlipRatio([w])
    ratios = []
    for g in grads:
        w.grad = g
        opt.step()
        ratios.append(flips.update())
    assert ratios == [2 / 6, 3 / 6]
    assert flips.result() == pytest.approx(5 / 12)


@settings(max_examples=CHEAP)
@given(st.data(), st.integers(1, 40), st.sampled_from([1e-3, 0.1, 0.5, 1.0]), st.sampled_from([0.0, 1e-3, 0.3]))
def test_bop_matches_the_formula(data, n, gamma, threshold):
    w0 = np.where(data.draw(arrays((n,))) >= 0, 1, -1).astype(F32)
    w = Parameter(w0.copy())
    opt = Bop([w], gamma=gamma, threshold=threshold)
    m = np.zeros(n, dtype=F32)
    current = w0.copy()
    for _ in range(3):
        g = data.draw(arrays((n,), -2.0, 2.0)).astype(F32)
        w.grad = g
        opt.step()
        m = m * F32(1 - gamma) + g * F32(gamma)
        flip = (np.abs(m) > threshold) & (np.sign(m) == current)
        current = np.where(flip, -current, current)
        np.testing.assert_array_equal(opt.state[w]["momentum"], m)
        np.testing.assert_array_equal(w.data, current)
        assert set(np.unique(w.data)) <= {-1.0, 1.0}


def test_bop_binarizes_at_construction_and_checks_arguments():
    w = Parameter(np.array([0.3, -0.7, 0.0, -0.0], dtype=F32))
    Bop([w])
    np.testing.assert_array_equal(w.data, [1, -1, 1, 1])  # sign(0) = +1, also for -0.0
    assert Bop([Parameter(np.ones(2))]).defaults == {"threshold": 1e-8, "gamma": 1e-4}
    with pytest.raises(ValueError, match=r"Bop: gamma must be in \[0.0, 1.0\], got 1.5"):
        Bop([Parameter(np.ones(2))], gamma=1.5)
    with pytest.raises(ValueError, match="Bop: threshold must be in"):
        Bop([Parameter(np.ones(2))], threshold=-1.0)
    with pytest.raises(ValueError, match="empty parameter list"):
        Bop([])


def test_bop_parameter_groups_and_state_dict():
    a, b = Parameter(np.ones(3, dtype=F32)), Parameter(-np.ones(3, dtype=F32))
    opt = Bop([{"params": [a], "gamma": 1.0}, {"params": [b], "threshold": 10.0}], gamma=0.5, threshold=0.5)
    a.grad = np.array([1.0, 0.4, -1.0], dtype=F32)
    b.grad = np.array([-1.0, -1.0, 1.0], dtype=F32)
    opt.step()
    np.testing.assert_array_equal(a.data, [-1, 1, 1])      # γ = 1: m = g, flips where g·w > ½
    np.testing.assert_array_equal(b.data, [-1, -1, -1])    # τ = 10: nothing flips
    saved = opt.state_dict()
    again = Bop([{"params": [Parameter(a.data.copy())], "gamma": 1.0},
                 {"params": [Parameter(b.data.copy())], "threshold": 10.0}], gamma=0.5, threshold=0.5)
    again.load_state_dict(saved)
    np.testing.assert_array_equal(again.state_dict()["state"][0]["momentum"], saved["state"][0]["momentum"])


# --------------------------------------------------------------------------------------------------------------
# CaseOptimizer
# --------------------------------------------------------------------------------------------------------------
def small_model():
    manual_seed(0)
    return Sequential(Linear(4, 6), BatchNorm1d(6), BinaryLinear(6, 5, bias=False), BatchNorm1d(5),
                      QuantLinear(5, 3, kernel_quantizer="ste_tern"))


def case(model, **adam):
    return CaseOptimizer(model, (is_binary_kernel, functools.partial(Bop, gamma=0.5, threshold=0.0)),
                         default=lambda ps: Adam(ps, lr=0.01, **adam))


def test_case_optimizer_routes_binary_kernels_to_bop():
    model = small_model()
    opt = case(model)
    assert opt.routes == [["2.weight"],
                          ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias", "4.weight", "4.bias"]]
    assert isinstance(opt.optimizers[0], Bop) and isinstance(opt.optimizers[1], Adam)
    assert opt.optimizers[0].parameters()[0] is model[2].weight
    assert set(np.unique(model[2].weight.data)) <= {-1.0, 1.0}          # Bop's weights are binary
    assert not is_binary_kernel(model[4], "weight")                     # a ternary kernel is not Bop's
    assert len(opt.param_groups) == 2 and opt.param_groups[0] is opt.optimizers[0].param_groups[0]
    assert len(opt.parameters()) == 9 and "Bop" in repr(opt) and "Adam" in repr(opt)

    x, y = np.random.default_rng(0).normal(size=(8, 4)).astype(F32), np.arange(8) % 3
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    opt.zero_grad()
    CrossEntropyLoss()(model(x), y).backward()
    grad = model[2].weight.grad.copy()
    opt.step()
    # Bop with γ = ½ from m = 0: m = ½·g; flips exactly where ½·g·w > 0
    flip = 0.5 * grad * before["2.weight"] > 0
    np.testing.assert_array_equal(model[2].weight.data, np.where(flip, -before["2.weight"], before["2.weight"]))
    for name in opt.routes[1]:  # Adam's first step moves each weight by lr·|g|/(|g| + ε) <= lr, against g
        moved = dict(model.named_parameters())[name].data - before[name]
        assert np.abs(moved).max() <= 0.01 * (1 + 1e-6) and np.abs(moved).max() > 0
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_case_optimizer_first_predicate_wins_and_defaults():
    model = small_model()
    first = CaseOptimizer(model, (lambda m, n: n == "weight", lambda ps: SGD(ps, lr=0.1)),
                          (lambda m, n: True, lambda ps: Adam(ps)))
    assert first.routes[0] == ["0.weight", "1.weight", "2.weight", "3.weight", "4.weight"]
    assert first.routes[1] == ["0.bias", "1.bias", "3.bias", "4.bias"] and first.optimizers[2] is None
    none_left = CaseOptimizer(model, (is_binary_kernel, Bop))
    assert none_left.untrained == opt_names(model, exclude="2.weight")
    empty_case = CaseOptimizer(Linear(2, 2), (is_binary_kernel, Bop), default=lambda ps: SGD(ps, lr=0.1))
    assert empty_case.optimizers[0] is None and empty_case.routes == [[], ["weight", "bias"]]


def opt_names(model, exclude):
    return [n for n, _ in model.named_parameters() if n != exclude]


def test_case_optimizer_errors():
    model = small_model()
    with pytest.raises(TypeError, match="case 0 must be a pair"):
        CaseOptimizer(model, is_binary_kernel)
    with pytest.raises(TypeError, match="the factory of default must return a minibnn Optimizer, got list"):
        CaseOptimizer(model, (is_binary_kernel, Bop), default=lambda ps: list(ps))
    with pytest.raises(ValueError, match="no optimizer received any parameter"):
        CaseOptimizer(Linear(2, 2), (is_binary_kernel, Bop))
    with pytest.raises(TypeError, match="model must be a minibnn Module"):
        CaseOptimizer([Parameter(np.ones(2))], (is_binary_kernel, Bop))
    opt = case(model)
    bad = opt.state_dict()
    bad["routes"] = [["x"], []]
    with pytest.raises(ValueError, match="routes the parameters as"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["optimizers"][1]["class"] = "SGD"
    with pytest.raises(ValueError, match="entry 1 holds a SGD state, this optimizer has Adam there"):
        opt.load_state_dict(bad)


def test_case_optimizer_state_survives_a_checkpoint(tmp_path):
    model = small_model()
    opt = case(model)
    x, y = np.random.default_rng(1).normal(size=(8, 4)).astype(F32), np.arange(8) % 3
    for _ in range(2):
        opt.zero_grad()
        CrossEntropyLoss()(model(x), y).backward()
        opt.step()
    path = tmp_path / "case.npz"
    save_checkpoint(path, model, opt, epoch=2)
    model2 = small_model()
    opt2 = case(model2)
    load_checkpoint(path, model2, opt2)
    for (name, s), t in zip(model.state_dict().items(), model2.state_dict().values()):
        np.testing.assert_array_equal(s, t, err_msg=name)
    a, b = opt.state_dict(), opt2.state_dict()
    np.testing.assert_array_equal(a["optimizers"][0]["state"]["state"][0]["momentum"],
                                  b["optimizers"][0]["state"]["state"][0]["momentum"])
    assert a["optimizers"][1]["state"]["state"][0]["step"] == b["optimizers"][1]["state"]["state"][0]["step"] == 2


def test_scheduling_the_default_optimizer_of_a_case():
    opt = case(small_model())
    sched = StepLR(opt.optimizers[-1], step_size=1, gamma=0.5)
    sched.step()
    assert opt.optimizers[-1].param_groups[0]["lr"] == 0.005
    assert [g.get("lr") for g in opt.param_groups] == [None, 0.005]

