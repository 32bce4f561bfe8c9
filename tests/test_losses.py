"""Tests of the losses (minibnn.functional and minibnn.losses): values against their formulas, gradients against
finite differences, the two target forms, the reductions, stability, dtypes and shape errors."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minibnn import Tensor, gradcheck
from minibnn import functional as F
from minibnn.losses import CrossEntropyLoss, MSELoss, SquaredHingeLoss
from strategies import CHEAP, MEDIUM, arrays, shapes

REDUCTIONS = ["mean", "sum", "none"]


def reduce(values: np.ndarray, reduction: str):
    return values.mean() if reduction == "mean" else values.sum() if reduction == "sum" else values


@st.composite
def classification(draw, max_n: int = 4, max_c: int = 5):
    """Logits (N, C) and integer labels (N,) in [0, C)."""
    n, c = draw(st.integers(1, max_n)), draw(st.integers(1, max_c))
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    return draw(arrays((n, c))), labels


# --------------------------------------------------------------------------------------------------------------
# Cross-entropy
# --------------------------------------------------------------------------------------------------------------
def test_cross_entropy_known_values():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    log_z = np.log(np.exp(1.0) + np.exp(2.0) + np.exp(3.0))
    expected = np.array([log_z - 3.0, np.log(3.0)])
    for reduction in REDUCTIONS:
        out = F.cross_entropy(Tensor(logits), np.array([2, 1]), reduction)
        np.testing.assert_allclose(out.data, reduce(expected, reduction), rtol=1e-12)


@settings(max_examples=CHEAP)
@given(classification(), st.sampled_from(REDUCTIONS))
def test_cross_entropy_labels_equal_one_hot_rows_and_gradcheck(problem, reduction):
    logits, labels = problem
    one_hot = np.eye(logits.shape[1])[labels]
    by_label = F.cross_entropy(Tensor(logits), labels, reduction)
    np.testing.assert_allclose(by_label.data, F.cross_entropy(Tensor(logits), one_hot, reduction).data, rtol=1e-12)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(by_label.data, reduce(-log_p[np.arange(len(labels)), labels], reduction),
                               rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda z: F.cross_entropy(z, labels, reduction), logits)


@settings(max_examples=MEDIUM)
@given(st.data(), st.integers(1, 3), st.integers(1, 4))
def test_cross_entropy_with_probability_targets(data, n, c):
    logits = data.draw(arrays((n, c)))
    weights = data.draw(arrays((n, c), 0.1, 1.0))
    probs = weights / weights.sum(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(F.cross_entropy(Tensor(logits), probs).data, -(probs * log_p).sum(axis=1).mean(),
                               rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda z: F.cross_entropy(z, probs, "none"), logits)


def test_cross_entropy_is_stable_for_huge_logits():
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = F.cross_entropy(np.array([[1e4, 0.0], [0.0, 1e4]]), np.array([0, 0]), "none")
    np.testing.assert_allclose(loss.data, [0.0, 1e4])


def test_cross_entropy_errors():
    with pytest.raises(ValueError, match=re.escape("logits must be 2-D (N, C), got shape (10,)")):
        F.cross_entropy(np.zeros(10), np.array([1]))
    with pytest.raises(ValueError, match=re.escape("target of shape (4,) does not fit the prediction of shape "
                                                   "(3, 10)")):
        F.cross_entropy(np.zeros((3, 10)), np.array([1, 2, 3, 4]))
    with pytest.raises(ValueError, match=re.escape("target of shape (3, 1) does not fit")):
        F.cross_entropy(np.zeros((3, 10)), np.array([[1], [2], [3]]))
    with pytest.raises(TypeError, match=re.escape("class labels of shape (3,) must be an integer array, got dtype "
                                                  "float64")):
        F.cross_entropy(np.zeros((3, 10)), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=re.escape("class labels must be in [0, 10) for a prediction with 10 "
                                                   "columns, got label 10 at index 1")):
        F.cross_entropy(np.zeros((3, 10)), np.array([0, 10, 3]))
    with pytest.raises(ValueError, match=re.escape("got label -1 at index 0")):
        F.cross_entropy(np.zeros((3, 10)), np.array([-1, 0, 3]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(np.zeros((3, 10)), np.array([0, 1, 2]), reduction="average")


# --------------------------------------------------------------------------------------------------------------
# Mean squared error
# --------------------------------------------------------------------------------------------------------------
@settings(max_examples=CHEAP)
@given(st.data(), shapes(min_dims=0, max_dims=3), st.sampled_from(REDUCTIONS))
def test_mse_values_and_gradcheck_in_both_arguments(data, shape, reduction):
    a, b = data.draw(arrays(shape)), data.draw(arrays(shape))
    np.testing.assert_allclose(F.mse_loss(Tensor(a), Tensor(b), reduction).data, reduce((a - b) ** 2, reduction),
                               rtol=1e-12)
    assert gradcheck(lambda p, t: F.mse_loss(p, t, reduction), a, b)


def test_mse_never_broadcasts():
    with pytest.raises(ValueError, match=re.escape("prediction of shape (3, 1) and target of shape (3,) must "
                                                   "have the same shape")):
        F.mse_loss(np.zeros((3, 1)), np.zeros(3))


# --------------------------------------------------------------------------------------------------------------
# Squared hinge
# --------------------------------------------------------------------------------------------------------------
def test_squared_hinge_known_values():
    y = np.array([[0.5, -2.0, 3.0]])
    t = np.array([[1.0, -1.0, -1.0]])  # margins 1 - t·y: 0.5, -1 (-> 0), 4
    np.testing.assert_allclose(F.squared_hinge_loss(Tensor(y), t, "none").data, [[0.25, 0.0, 16.0]])
    np.testing.assert_allclose(F.squared_hinge_loss(Tensor(y), t).data, 16.25 / 3)
    np.testing.assert_allclose(F.squared_hinge_loss(Tensor(y), np.array([0])).data, (0.25 + 0.0 + 16.0) / 3)


@settings(max_examples=CHEAP)
@given(classification(), st.sampled_from(REDUCTIONS))
def test_squared_hinge_labels_equal_plus_minus_one_rows_and_gradcheck(problem, reduction):
    scores, labels = problem
    scores = np.where(np.abs(np.abs(scores) - 1) < 1e-2, scores * 1.05, scores)  # off the kinks t·y = 1
    t = 2 * np.eye(scores.shape[1])[labels] - 1
    expected = reduce(np.maximum(0, 1 - t * scores) ** 2, reduction)
    np.testing.assert_allclose(F.squared_hinge_loss(Tensor(scores), labels, reduction).data, expected, rtol=1e-12)
    np.testing.assert_allclose(F.squared_hinge_loss(Tensor(scores), t, reduction).data, expected, rtol=1e-12)
    assert gradcheck(lambda y: F.squared_hinge_loss(y, labels, reduction), scores)


def test_squared_hinge_errors():
    with pytest.raises(ValueError, match=re.escape("targets must be -1 or +1, got 0.0 at flat index 1")):
        F.squared_hinge_loss(np.zeros((2, 2)), np.array([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=re.escape("target of shape (2, 3) does not fit the prediction of shape "
                                                   "(2, 2)")):
        F.squared_hinge_loss(np.zeros((2, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="class labels must be in"):
        F.squared_hinge_loss(np.zeros((2, 2)), np.array([0, 2]))


# --------------------------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_modules_call_their_function(reduction):
    rng = np.random.default_rng(0)
    z, labels = rng.normal(size=(5, 3)).astype(np.float32), np.array([0, 2, 1, 1, 0])
    target = rng.normal(size=(5, 3)).astype(np.float32)
    pairs = [(CrossEntropyLoss, F.cross_entropy, labels), (MSELoss, F.mse_loss, target),
             (SquaredHingeLoss, F.squared_hinge_loss, labels)]
    for cls, fn, t in pairs:
        module = cls(reduction=reduction)
        assert repr(module) == f"{cls.__name__}(reduction={reduction!r})"
        np.testing.assert_array_equal(module(Tensor(z), t).data, fn(Tensor(z), t, reduction).data)
        assert module(Tensor(z), t).dtype == np.float32


def test_loss_module_errors():
    with pytest.raises(ValueError, match=re.escape("MSELoss: reduction must be one of 'mean', 'sum', 'none'; "
                                                   "got 'avg'")):
        MSELoss(reduction="avg")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_keep_the_prediction_dtype_whatever_the_target_dtype(dtype):
    z = Tensor(np.random.default_rng(0).normal(size=(4, 3)).astype(dtype), requires_grad=True)
    for loss in (F.cross_entropy(z, np.array([0, 1, 2, 0], dtype=np.int32)),
                 F.cross_entropy(z, np.full((4, 3), 1 / 3, dtype=np.float64)),
                 F.mse_loss(z, np.zeros((4, 3), dtype=np.float64)),
                 F.squared_hinge_loss(z, np.ones((4, 3), dtype=np.int64)),
                 F.squared_hinge_loss(z, np.array([2, 1, 0, 0], dtype=np.uint8))):
        assert loss.dtype == dtype
        z.grad = None
        loss.backward()
        assert z.grad.dtype == dtype
