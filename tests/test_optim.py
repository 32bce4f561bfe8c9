"""Optimizers and schedulers: updates against hand-computed values, groups, in-place float32, state dicts."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Parameter
from minibnn.optim import SGD, Adam, Optimizer
from minibnn.schedulers import CosineAnnealingLR, MultiStepLR, StepLR
from strategies import CHEAP, MEDIUM, arrays, non_contiguous, shapes


def param(values, dtype=np.float64):
    return Parameter(np.array(values, dtype=dtype))


def run(opt, p, grads):
    """Apply each gradient in turn and return the parameter values after every step."""
    out = []
    for g in grads:
        p.grad = np.array(g, dtype=p.dtype)
        opt.step()
        out.append(p.data.copy())
    return out


# ------------------------------------------------------------------------------------------------------------
# Reference formulas, written the plain way (with temporaries), to compare against on generated data
# ------------------------------------------------------------------------------------------------------------
def sgd_reference(w, grads, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    w, buf = w.copy(), None
    for t, g in enumerate(grads):
        d = g + weight_decay * w
        if momentum:
            buf = d.copy() if t == 0 else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        w = w - lr * d
    return w


def adam_reference(w, grads, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, decoupled=0.0):
    w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        w = w - lr * decoupled * w
        g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return w


# ------------------------------------------------------------------------------------------------------------
# SGD
# ------------------------------------------------------------------------------------------------------------
def test_sgd_plain_by_hand():
    p = param([1.0, -2.0])
    steps = run(SGD([p], lr=0.1), p, [[0.5, -1.0], [2.0, 0.0]])
    np.testing.assert_allclose(steps[0], [0.95, -1.9], rtol=0, atol=1e-15)
    np.testing.assert_allclose(steps[1], [0.75, -1.9], rtol=0, atol=1e-15)


def test_sgd_momentum_by_hand():
    # b1 = g1 = 1;  w1 = 0 - 0.5·1 = -0.5
    # b2 = 0.9·1 + 2 = 2.9;  w2 = -0.5 - 0.5·2.9 = -1.95
    p = param([0.0])
    steps = run(SGD([p], lr=0.5, momentum=0.9), p, [[1.0], [2.0]])
    assert steps[0][0] == pytest.approx(-0.5, abs=1e-15)
    assert steps[1][0] == pytest.approx(-1.95, abs=1e-15)


def test_sgd_dampening_by_hand():
    # b1 = g1 = 1 (no dampening on the first step);  b2 = 0.9·1 + (1 - 0.5)·2 = 1.9
    p = param([0.0])
    steps = run(SGD([p], lr=1.0, momentum=0.9, dampening=0.5), p, [[1.0], [2.0]])
    assert steps[0][0] == pytest.approx(-1.0, abs=1e-15)
    assert steps[1][0] == pytest.approx(-1.0 - 1.9, abs=1e-15)


def test_sgd_nesterov_by_hand():
    # b1 = 1, d1 = 1 + 0.9·1 = 1.9, w1 = -0.19;  b2 = 0.9 + 2 = 2.9, d2 = 2 + 0.9·2.9 = 4.61, w2 = -0.19 - 0.461
    p = param([0.0])
    steps = run(SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, [[1.0], [2.0]])
    assert steps[0][0] == pytest.approx(-0.19, abs=1e-15)
    assert steps[1][0] == pytest.approx(-0.651, abs=1e-15)


def test_sgd_weight_decay_by_hand():
    # d1 = 1 + 0.1·2 = 1.2, w1 = 2 - 0.5·1.2 = 1.4;  d2 = 0 + 0.1·1.4 = 0.14, w2 = 1.4 - 0.07 = 1.33
    p = param([2.0])
    steps = run(SGD([p], lr=0.5, weight_decay=0.1), p, [[1.0], [0.0]])
    assert steps[0][0] == pytest.approx(1.4, abs=1e-15)
    assert steps[1][0] == pytest.approx(1.33, abs=1e-15)


@settings(max_examples=MEDIUM)
@given(data=st.data(), momentum=st.sampled_from([0.0, 0.5, 0.9]), nesterov=st.booleans(),
       dampening=st.sampled_from([0.0, 0.3]), weight_decay=st.sampled_from([0.0, 0.01]))
def test_sgd_matches_reference(data, momentum, nesterov, dampening, weight_decay):
    if nesterov and (momentum == 0 or dampening):
        return
    shape = data.draw(shapes(max_dims=3, max_side=5))
    w0 = data.draw(arrays(shape))
    grads = [data.draw(arrays(shape)) for _ in range(3)]
    p = Parameter(w0.copy())
    run(SGD([p], lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov,
            weight_decay=weight_decay), p, grads)
    expected = sgd_reference(w0, grads, 0.05, momentum, dampening, nesterov, weight_decay)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# Adam
# ------------------------------------------------------------------------------------------------------------
def test_adam_by_hand():
    # step 1: m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25; w = 1 - 0.1·0.5/(0.5 + 1e-8)            ≈ 0.9
    # step 2: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975
    #         m̂ = -0.055/0.19 = -0.2894737, v̂ = 0.00124975/0.001999 = 0.6251876, sqrt = 0.7906880
    #         w = 0.9 + 0.1·0.2894737/0.7906880                                                      ≈ 0.9366104
    p = param([1.0])
    steps = run(Adam([p], lr=0.1), p, [[0.5], [-1.0]])
    assert steps[0][0] == pytest.approx(0.9, abs=1e-8)
    assert steps[1][0] == pytest.approx(0.9366104, abs=1e-7)
    m = (0.9 * 0.05 + 0.1 * -1.0) / (1 - 0.9 ** 2)
    v = (0.999 * 0.00025 + 0.001 * 1.0) / (1 - 0.999 ** 2)
    exact = 1 - 0.1 * 0.5 / (0.5 + 1e-8) - 0.1 * m / (math.sqrt(v) + 1e-8)
    assert steps[1][0] == pytest.approx(exact, rel=1e-14)


def test_adam_l2_weight_decay_by_hand():
    # g1 = 0 + 0.5·2 = 1: the first Adam step moves by lr·g/|g| = 0.1 (up to eps):  w1 = 1.9
    p = param([2.0])
    steps = run(Adam([p], lr=0.1, weight_decay=0.5), p, [[0.0]])
    assert steps[0][0] == pytest.approx(1.9, abs=1e-8)


def test_adam_decoupled_weight_decay_by_hand():
    # w = 2·(1 - 0.1·0.5) = 1.9, then the Adam step on g = 1: -0.1  ->  1.8;  a zero gradient only shrinks
    p = param([2.0])
    steps = run(Adam([p], lr=0.1, decoupled_weight_decay=0.5), p, [[1.0]])
    assert steps[0][0] == pytest.approx(1.8, abs=1e-8)
    q = param([2.0])
    run(Adam([q], lr=0.1, decoupled_weight_decay=0.5), q, [[0.0], [0.0]])
    assert q.data[0] == pytest.approx(2.0 * 0.95 * 0.95, abs=1e-15)


@settings(max_examples=MEDIUM)
@given(data=st.data(), weight_decay=st.sampled_from([0.0, 0.1]), decoupled=st.sampled_from([0.0, 0.2]),
       betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.0)]))
def test_adam_matches_reference(data, weight_decay, decoupled, betas):
    shape = data.draw(shapes(max_dims=3, max_side=5))
    w0 = data.draw(arrays(shape))
    grads = [data.draw(arrays(shape)) for _ in range(3)]
    p = Parameter(w0.copy())
    run(Adam([p], lr=0.01, betas=betas, eps=1e-3, weight_decay=weight_decay,
             decoupled_weight_decay=decoupled), p, grads)
    expected = adam_reference(w0, grads, 0.01, betas[0], betas[1], 1e-3, weight_decay, decoupled)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# In place, dtypes, layouts, groups, skipping
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=np.float64(0.1), momentum=0.9, nesterov=True, weight_decay=np.float64(1e-2)),
    lambda ps: Adam(ps, lr=np.float64(1e-2), weight_decay=1e-3, decoupled_weight_decay=np.float32(1e-2)),
])
def test_updates_are_in_place_and_keep_float32(make):
    rng = np.random.default_rng(0)
    ps = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in [(70, 3), (5,), (1000,)]]
    arrays_before = [p.data for p in ps]
    opt = make(ps)
    for _ in range(3):
        for p in ps:
            p.grad = rng.standard_normal(p.shape).astype(np.float32)
        opt.step()
    for p, before in zip(ps, arrays_before):
        assert p.data is before and p.dtype == np.float32
        for value in opt.state[p].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32 and value.shape == p.shape


@settings(max_examples=CHEAP)
@given(data=st.data())
def test_non_contiguous_parameter_and_gradient(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=5))
    w0, g = data.draw(arrays(shape)), data.draw(arrays(shape))
    p = Parameter(non_contiguous(w0))
    view = p.data
    opt = Adam([p], lr=0.1)
    p.grad = non_contiguous(g)
    opt.step()
    assert p.data is view
    np.testing.assert_allclose(p.data, adam_reference(w0, [g], 0.1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, expected", [(lambda ps: SGD(ps, lr=0.5, momentum=0.9), 1 - 0.5 * 2),
                                             (lambda ps: Adam(ps, lr=0.25), 1 - 0.25)])
def test_scalar_parameter(make, expected):
    p = Parameter(np.array(1.0))
    opt = make([p])
    p.grad = np.array(2.0)
    opt.step()
    assert p.shape == () and p.data == pytest.approx(expected, abs=1e-8)


def test_large_non_contiguous_parameter_is_updated_in_place():
    w0 = np.arange(40.0).reshape(8, 5)
    p = Parameter(np.asfortranarray(w0))
    opt = SGD([p], lr=0.5, momentum=0.9)
    p.grad = np.ones((8, 5))
    opt.step()
    np.testing.assert_array_equal(p.data, w0 - 0.5)


def test_param_groups_use_their_own_hyperparameters():
    a, b = param([1.0]), param([1.0])
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.01, "name": "slow"}], lr=0.1, momentum=0.0)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.01
    assert opt.param_groups[1]["name"] == "slow" and opt.param_groups[1]["momentum"] == 0.0
    a.grad, b.grad = np.ones(1), np.ones(1)
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.99)
    opt.param_groups[1]["lr"] = 1.0  # what a scheduler does
    a.grad, b.grad = np.ones(1), np.ones(1)
    opt.step()
    assert a.data[0] == pytest.approx(0.8) and b.data[0] == pytest.approx(-0.01)


def test_parameters_without_gradient_are_skipped():
    a, b = param([1.0]), param([1.0])
    opt = Adam([a, b], lr=0.1)
    a.grad = np.ones(1)
    opt.step()
    assert b.data[0] == 1.0 and b not in opt.state and opt.state[a]["step"] == 1
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    opt.step()  # nothing has a gradient: nothing moves
    assert a.data[0] == pytest.approx(0.9, abs=1e-8) and opt.state[a]["step"] == 1


def test_two_optimizers_share_a_model():
    # e.g. binary weights to one optimizer and the rest to another: each sees only its own parameters
    a, b = param([1.0]), param([1.0])
    opt_a, opt_b = SGD([a], lr=0.1), Adam([b], lr=0.5)
    a.grad, b.grad = np.ones(1), np.ones(1)
    opt_a.step()
    opt_b.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.5, abs=1e-7)


def test_a_new_optimizer_needs_only_init_state_and_update():
    class SignSGD(Optimizer):
        """w = w - lr·sign(g)"""

        def __init__(self, params, lr):
            super().__init__(params, {"lr": lr})

        def _update(self, p, grad, state, group):
            p -= group["lr"] * np.sign(grad)

    p = param([1.0, 1.0])
    run(SignSGD([p], lr=0.25), p, [[3.0, -0.1]])
    np.testing.assert_array_equal(p.data, [0.75, 1.25])


# ------------------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------------------
def test_bad_arguments_raise_clear_errors():
    p = param([1.0])
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="lr must be in"):
        SGD([p], lr=-1.0)
    with pytest.raises(ValueError, match="momentum must be in"):
        SGD([p], lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"betas\[1\] must be in"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="lr must be a real number"):
        Adam([p], lr="fast")
    with pytest.raises(ValueError, match="appears twice"):
        SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="at position 1"):
        SGD([p, np.zeros(2)], lr=0.1)


def test_gradient_of_wrong_shape_is_an_error():
    p = param([1.0, 2.0])
    opt = SGD([p], lr=0.1)
    p.grad = np.ones(3)
    with pytest.raises(ValueError, match=r"shape \(2,\).*gradient of shape \(3,\)"):
        opt.step()


def test_state_that_no_longer_fits_its_parameter_is_an_error():
    p = param([1.0, 2.0], dtype=np.float32)
    opt = Adam([p])
    p.grad = np.ones(2, dtype=np.float32)
    opt.step()
    p.data, p.grad = p.data.astype(np.float64), np.ones(2)
    with pytest.raises(ValueError, match="make the optimizer after converting"):
        opt.step()


# ------------------------------------------------------------------------------------------------------------
# state_dict
# ------------------------------------------------------------------------------------------------------------
def _plain(value):
    """True if value is made only of arrays, Python scalars, strings, None, lists and str-keyed dicts."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, (np.ndarray, bool, int, float, str)) or value is None


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.5}], lr=0.01)])
def test_state_dict_round_trip_continues_identically(make):
    rng = np.random.default_rng(1)
    w = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (4,)]]
    grads = [[rng.standard_normal(x.shape).astype(np.float32) for x in w] for _ in range(4)]
    a = [Parameter(x.copy()) for x in w]
    opt_a = make(a)
    for g in grads[:2]:
        for p, gi in zip(a, g):
            p.grad = gi
        opt_a.step()
    saved = opt_a.state_dict()
    assert _plain(saved)
    b = [Parameter(p.data.copy()) for p in a]
    opt_b = make(b)
    opt_b.load_state_dict(saved)
    for g in grads[2:]:
        for pa, pb, gi in zip(a, b, g):
            pa.grad, pb.grad = gi, gi.copy()
        opt_a.step()
        opt_b.step()
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa.data, pb.data)
    assert opt_b.param_groups[-1]["lr"] == opt_a.param_groups[-1]["lr"]


def test_state_dict_is_a_copy():
    p = param([1.0])
    opt = Adam([p])
    p.grad = np.ones(1)
    opt.step()
    saved = opt.state_dict()
    opt.step()
    assert saved["state"][0]["step"] == 1 and opt.state[p]["step"] == 2
    assert saved["state"][0]["exp_avg"][0] != opt.state[p]["exp_avg"][0]


def test_load_state_dict_rejects_what_does_not_fit():
    p, q = param([1.0, 2.0]), param([1.0])
    opt = Adam([p])
    p.grad = np.ones(2)
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="1 parameter entries, expected 2|group 0 holds 1 parameters"):
        Adam([p, q]).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"shape \(2,\), expected \(1,\)"):
        Adam([q]).load_state_dict(saved)
    with pytest.raises(ValueError, match="state keys"):
        SGD([p], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="expected a dict with keys"):
        Adam([p]).load_state_dict({"state": []})


def crafted(make, edit):
    """A state_dict of ``make([p])`` after one step, changed by ``edit(state)``; and a fresh optimizer."""
    p = param([1.0, 2.0])
    opt = make([p])
    p.grad = np.ones(2)
    opt.step()
    saved = opt.state_dict()
    edit(saved)
    return make([param([1.0, 2.0])]), saved


BAD_OPTIMIZER_STATES = [
    # (optimizer, edit of the saved state, the error's message)
    (Adam, lambda s: s["state"][0].update(step="model/0.weight"),
     "Adam.load_state_dict: state[0]['step'] must be an int >= 0 (a step count), got 'model/0.weight'"),
    (Adam, lambda s: s["state"][0].update(step=1.5),
     "Adam.load_state_dict: state[0]['step'] must be an int >= 0 (a step count), got 1.5"),
    (SGD, lambda s: s["state"][0].update(step=True),
     "SGD.load_state_dict: state[0]['step'] must be an int >= 0 (a step count), got True"),
    (Adam, lambda s: s["state"][0].update(step=-1),
     "Adam.load_state_dict: state[0]['step'] must be an int >= 0 (a step count), got -1"),
    (Adam, lambda s: s["state"][0].update(exp_avg="zeros"),
     "Adam.load_state_dict: state[0]['exp_avg'] must be a numeric array of shape (2,), got 'zeros'"),
    (Adam, lambda s: s["state"][0].update(exp_avg_sq=np.array(["a", "b"])),
     "Adam.load_state_dict: state[0]['exp_avg_sq'] must be a numeric array of shape (2,), got array(['a', 'b']"),
    (Adam, lambda s: s["state"][0].update(exp_avg=[[1.0], [2.0, 3.0]]),
     "Adam.load_state_dict: state[0]['exp_avg'] must be a numeric array of shape (2,), got [[1.0], [2.0, 3.0]]"),
    (Adam, lambda s: s["state"].__setitem__(0, "model/0.weight"),
     "Adam.load_state_dict: state[0] must be a dict, got 'model/0.weight' (str)"),
    (Adam, lambda s: s.update(state={"0": {}}),
     "Adam.load_state_dict: 'state' must be a list, got {'0': {}} (dict)"),
    (Adam, lambda s: s["param_groups"][0].pop("eps"),
     "Adam.load_state_dict: param_groups[0] has no 'eps'; every Adam group needs ['betas', 'decoupled_weight_decay', "
     "'eps', 'lr', 'weight_decay']"),
    (SGD, lambda s: s["param_groups"][0].pop("lr"),
     "SGD.load_state_dict: param_groups[0] has no 'lr'; every SGD group needs"),
    (Adam, lambda s: s["param_groups"][0].update(lr="0.1"),
     "Adam.load_state_dict: in param_groups[0], Adam: lr must be a real number, got '0.1' (str)"),
    (Adam, lambda s: s["param_groups"][0].update(eps=-1.0),
     "Adam.load_state_dict: in param_groups[0], Adam: eps must be in [0.0, inf], got -1.0"),
    (Adam, lambda s: s["param_groups"][0].update(betas=0.9),
     "Adam.load_state_dict: in param_groups[0], Adam: betas must be a pair (beta1, beta2), got 0.9"),
    (SGD, lambda s: s["param_groups"][0].update(nesterov="yes"),
     "SGD.load_state_dict: in param_groups[0], SGD: nesterov must be True or False, got 'yes'"),
    (Adam, lambda s: s["param_groups"][0].update(params=[1]),
     "Adam.load_state_dict: param_groups[0]['params'] must be the indices of group 0's parameters here, [0], got [1]"),
    (Adam, lambda s: s["param_groups"][0].pop("params"),
     "Adam.load_state_dict: param_groups[0]['params'] must be the indices of group 0's parameters here, [0], got None"),
    (Adam, lambda s: s["param_groups"].__setitem__(0, ["lr", 0.1]),
     "Adam.load_state_dict: param_groups[0] must be a dict, got ['lr', 0.1] (list)"),
]


@pytest.mark.parametrize("make, edit, message", BAD_OPTIMIZER_STATES)
def test_load_state_dict_names_the_bad_key_and_value(make, edit, message):
    """A crafted checkpoint is refused at load time, naming the key, the value and the expected form; the
    optimizer is left as it was (nothing is half-loaded)."""
    make_opt = (lambda ps: SGD(ps, lr=0.1, momentum=0.9)) if make is SGD else make
    opt, saved = crafted(make_opt, edit)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=re.escape(message)):
        opt.load_state_dict(saved)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"] and after["state"] == before["state"] == [{}]


def test_load_state_dict_accepts_what_a_checkpoint_gives_back():
    """Lists for arrays and betas, NumPy integers for the step: the forms a file format may hand back."""
    opt, saved = crafted(Adam, lambda s: None)
    saved["state"][0] = {"step": np.int64(1), "exp_avg": saved["state"][0]["exp_avg"].tolist(),
                         "exp_avg_sq": saved["state"][0]["exp_avg_sq"].astype(np.float32)}
    saved["param_groups"][0]["betas"] = list(saved["param_groups"][0]["betas"])
    opt.load_state_dict(saved)
    (state,) = opt.state.values()
    assert type(state["step"]) is int and state["step"] == 1
    assert state["exp_avg"].dtype == np.float64 and opt.param_groups[0]["betas"] == (0.9, 0.999)


# ------------------------------------------------------------------------------------------------------------
# Schedulers
# ------------------------------------------------------------------------------------------------------------
def two_group_optimizer():
    return SGD([{"params": [param([0.0])]}, {"params": [param([0.0])], "lr": 1.0}], lr=0.1)


def lr_sequence(scheduler, epochs):
    out = []
    for _ in range(epochs):
        out.append(scheduler.get_last_lr())
        scheduler.step()
    return out


def test_step_lr_by_hand():
    got = lr_sequence(StepLR(two_group_optimizer(), step_size=2, gamma=0.5), 6)
    expected = [[0.1, 1.0], [0.1, 1.0], [0.05, 0.5], [0.05, 0.5], [0.025, 0.25], [0.025, 0.25]]
    np.testing.assert_allclose(got, expected, rtol=1e-15)


def test_multistep_lr_by_hand():
    got = lr_sequence(MultiStepLR(two_group_optimizer(), milestones=[1, 4], gamma=0.1), 6)
    expected = [[0.1, 1.0], [0.01, 0.1], [0.01, 0.1], [0.01, 0.1], [0.001, 0.01], [0.001, 0.01]]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_cosine_lr_by_hand():
    got = lr_sequence(CosineAnnealingLR(two_group_optimizer(), T_max=4, eta_min=0.01), 7)
    # eta_min + (lr0 - eta_min)·(1 + cos(π e/4))/2, with cos(π/4) = √2/2: (1 + √2/2)/2 = 0.853553...
    c = (1 + math.sqrt(2) / 2) / 2
    first = [0.1, 0.01 + 0.09 * c, 0.055, 0.01 + 0.09 * (1 - c), 0.01, 0.01, 0.01]
    second = [1.0, 0.01 + 0.99 * c, 0.505, 0.01 + 0.99 * (1 - c), 0.01, 0.01, 0.01]
    np.testing.assert_allclose(got, np.array([first, second]).T, rtol=1e-12)


def test_scheduler_sets_the_optimizer_lr_and_round_trips():
    opt = two_group_optimizer()
    sched = CosineAnnealingLR(opt, T_max=10)
    for _ in range(3):
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()
    saved = sched.state_dict()
    assert saved == {"last_epoch": 3, "base_lrs": [0.1, 1.0]}
    opt2 = two_group_optimizer()
    sched2 = CosineAnnealingLR(opt2, T_max=10)
    sched2.load_state_dict(saved)
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert lr_sequence(sched2, 5) == lr_sequence(sched, 5)


def test_scheduler_errors():
    opt = two_group_optimizer()
    with pytest.raises(ValueError, match="step_size must be an int >= 1"):
        StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="strictly increasing"):
        MultiStepLR(opt, milestones=[3, 2])
    with pytest.raises(TypeError, match="minibnn Optimizer"):
        StepLR(object(), step_size=1)
    with pytest.raises(ValueError, match="2 parameter groups"):
        StepLR(opt, step_size=1).load_state_dict({"last_epoch": 1, "base_lrs": [0.1]})


@pytest.mark.parametrize("state, message", [
    ({"last_epoch": "model/0.weight", "base_lrs": [0.1, 1.0]},
     "StepLR.load_state_dict: last_epoch must be an int, got 'model/0.weight' (str)"),
    ({"last_epoch": 1.5, "base_lrs": [0.1, 1.0]}, "StepLR.load_state_dict: last_epoch must be an int, got 1.5"),
    ({"last_epoch": -2, "base_lrs": [0.1, 1.0]}, "StepLR.load_state_dict: last_epoch must be an int >= 0, got -2"),
    ({"last_epoch": 1, "base_lrs": 0.1},
     "StepLR.load_state_dict: base_lrs must be a list of learning rates, one per parameter group, got 0.1 (float)"),
    ({"last_epoch": 1, "base_lrs": [0.1, "1.0"]},
     "StepLR.load_state_dict: base_lrs[1] must be a real number, got '1.0' (str)"),
    ({"last_epoch": 1, "base_lrs": [0.1, float("nan")]}, "StepLR.load_state_dict: base_lrs[1] must be finite"),
    ({"last_epoch": 1, "base_lrs": [-0.1, 1.0]}, "StepLR.load_state_dict: base_lrs[0] must be >= 0.0, got -0.1"),
    ({"last_epoch": 1}, "StepLR.load_state_dict: expected a dict with keys ['base_lrs', 'last_epoch'], got "
                        "['last_epoch']"),
])
def test_scheduler_load_state_dict_names_the_bad_key_and_value(state, message):
    opt = two_group_optimizer()
    sched = StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    with pytest.raises(ValueError, match=re.escape(message)):
        sched.load_state_dict(state)
    assert sched.state_dict() == {"last_epoch": 1, "base_lrs": [0.1, 1.0]}   # unchanged
    assert sched.get_last_lr() == [0.05, 0.5]
