"""Losses: the ops, the functions (``cross_entropy``...) and the modules (``CrossEntropyLoss``...).

``loss_fn(prediction, target)`` returns a tensor to call ``backward`` on. Each module is a thin wrapper of a
function here (also reachable as ``minibnn.functional.cross_entropy``...) with a ``reduction``: "mean"
(default), "sum", or "none" (the unreduced losses). Shapes are checked, never broadcast: a target that does not fit the
prediction is an error that names both shapes.

Example:
    >>> import numpy as np
    >>> loss_fn = CrossEntropyLoss()
    >>> round(loss_fn(np.zeros((4, 10)), np.array([1, 2, 3, 4])).item(), 4)   # log 10
    2.3026
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from . import _checks
from .module import Module
from .tensor import Function, Tensor, shape_of

__all__ = ["cross_entropy", "mse_loss", "squared_hinge_loss", "CrossEntropyLoss", "MSELoss", "SquaredHingeLoss"]

REDUCTIONS = ("mean", "sum", "none")


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    """The per-element losses averaged ("mean"), added ("sum") or returned as they are ("none")."""
    return losses.mean() if reduction == "mean" else losses.sum() if reduction == "sum" else losses


# --------------------------------------------------------------------------------------------------------------
# The ops and the functions (also minibnn.functional.cross_entropy, ...)
# --------------------------------------------------------------------------------------------------------------
class CrossEntropyFn(Function):
    """loss_i = -Σ_k t_ik · log softmax(z_i)_k  for logits z (N, C) and target distributions t (N, C);
    dL/dz_i = g_i · (softmax(z_i)·Σ_k t_ik - t_i)  (= g_i·(softmax(z_i) - t_i) when the t_i sum to 1).
    The targets are constants (not differentiated)."""

    def forward(self, z, target=None):
        shifted = z - z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.softmax, self.target = np.exp(log_p), target
        return -np.einsum("nc,nc->n", target, log_p)

    def backward(self, grad):
        return grad[:, None] * (self.softmax * self.target.sum(axis=1, keepdims=True) - self.target)


class SquaredErrorFn(Function):
    """out = (a - b)²;  d/da = 2(a - b),  d/db = -2(a - b)."""

    def forward(self, a, b):
        self.diff = a - b
        return self.diff * self.diff

    def backward(self, grad):
        da = 2 * grad * self.diff
        return da, -da


class SquaredHingeFn(Function):
    """out = max(0, 1 - t·y)² for scores y and targets t in {-1, +1} (constants);
    d/dy = -2·t·max(0, 1 - t·y)."""

    def forward(self, y, target=None):
        self.target, self.margin = target, np.maximum(1 - target * y, 0)
        return self.margin * self.margin

    def backward(self, grad):
        return -2 * grad * self.target * self.margin


def _targets_as_rows(who: str, pred_shape, target, dtype) -> Tuple[np.ndarray, bool]:
    """Targets as an array of the prediction's shape and dtype: given as such, or as integer class labels
    (N,) in [0, C) for a prediction (N, C), which become one-hot rows. Returns (array, were_labels)."""
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.shape == tuple(pred_shape):
        if t.dtype.kind not in "fiub":
            raise TypeError(f"{who}: target must be numeric, got dtype {t.dtype}")
        return t.astype(dtype, copy=False), False
    if len(pred_shape) != 2 or t.shape != pred_shape[:1]:
        raise ValueError(f"{who}: target of shape {t.shape} does not fit the prediction of shape "
                         f"{tuple(pred_shape)}: expected integer class labels of shape ({pred_shape[0]},) for a "
                         f"prediction (N, C), or a target of the prediction's shape")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{who}: class labels of shape {t.shape} must be an integer array, got dtype {t.dtype} "
                        f"(convert with .astype(np.int64), or pass one-hot targets of shape {tuple(pred_shape)})")
    n, c = pred_shape
    if t.size and (t.min() < 0 or t.max() >= c):
        bad = int(np.flatnonzero((t < 0) | (t >= c))[0])
        raise ValueError(f"{who}: class labels must be in [0, {c}) for a prediction with {c} columns, "
                         f"got label {t[bad]} at index {bad}")
    onehot = np.zeros((n, c), dtype=dtype)
    onehot[np.arange(n), t] = 1
    return onehot, True


def cross_entropy(logits, target, reduction: str = "mean") -> Tensor:
    """Cross-entropy between softmax(logits) and the target, through a numerically stable log-softmax.

    Args:
        logits: (N, C) unnormalised scores.
        target: integer class labels (N,) in [0, C), or one-hot / probability rows (N, C) (not differentiated).
        reduction: "mean" (over the N samples), "sum", or "none" (the N losses).

    Returns:
        loss_i = -log softmax(logits_i)[label_i]  (= -Σ_k t_ik log softmax(logits_i)_k), reduced.

    Example:
        >>> round(cross_entropy(np.zeros((2, 4)), np.array([0, 3])).item(), 4)   # log 4
        1.3863
    """
    _checks.choice("cross_entropy", "reduction", reduction, REDUCTIONS)
    ls = shape_of(logits)
    if len(ls) != 2:
        raise ValueError(f"cross_entropy: logits must be 2-D (N, C), got shape {ls}")
    dtype = logits.dtype if isinstance(logits, Tensor) else np.dtype(np.float32)
    t, _ = _targets_as_rows("cross_entropy", ls, target, dtype)
    return _reduce(CrossEntropyFn.apply(logits, target=t), reduction)


def mse_loss(prediction, target, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or none) of the squared differences (prediction - target)²; both must have the same shape.
    Both are differentiated if they require gradients.

    Example:
        >>> mse_loss(np.array([1.0, 2.0]), np.array([0.0, 0.0])).item()
        2.5
    """
    _checks.choice("mse_loss", "reduction", reduction, REDUCTIONS)
    ps, ts = shape_of(prediction), shape_of(target)
    if ps != ts:
        raise ValueError(f"mse_loss: prediction of shape {ps} and target of shape {ts} must have the same shape "
                         f"(nothing is broadcast)")
    return _reduce(SquaredErrorFn.apply(prediction, target), reduction)


def squared_hinge_loss(prediction, target, reduction: str = "mean") -> Tensor:
    """Squared hinge loss mean(max(0, 1 - t·y)²) (as in BinaryNet, Courbariaux et al. 2016).

    Args:
        prediction: scores y, any shape; (N, C) when the target is class labels.
        target: t in {-1, +1} of the prediction's shape, or integer class labels (N,) in [0, C), which become
            rows with +1 at the label and -1 elsewhere (t = 2·onehot - 1).
        reduction: "mean" (over all N·C elements), "sum", or "none" (elementwise).

    Example:
        >>> squared_hinge_loss(np.array([[0.0, 2.0]]), np.array([1])).item()   # ((1-2)₊² + (1+0)²) / 2
        0.5
    """
    _checks.choice("squared_hinge_loss", "reduction", reduction, REDUCTIONS)
    ps = shape_of(prediction)
    dtype = prediction.dtype if isinstance(prediction, Tensor) else np.dtype(np.float32)
    t, were_labels = _targets_as_rows("squared_hinge_loss", ps, target, dtype)
    if were_labels:
        t = 2 * t - 1
    elif not np.all((t == 1) | (t == -1)):
        bad = np.flatnonzero((t != 1) & (t != -1))[0]
        raise ValueError(f"squared_hinge_loss: targets must be -1 or +1, got {t.flat[bad]} at flat index {bad} "
                         f"(map 0/1 targets with 2·t - 1, or pass integer class labels of shape (N,))")
    return _reduce(SquaredHingeFn.apply(prediction, target=t), reduction)


# --------------------------------------------------------------------------------------------------------------
# The modules
# --------------------------------------------------------------------------------------------------------------
class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _checks.choice(type(self).__name__, "reduction", reduction, REDUCTIONS)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """loss_i = -log softmax(logits_i)[label_i], or -Σ_k t_ik log softmax(logits_i)_k for target rows t_i.

    ``forward(logits, target)``: logits (N, C); target integer labels (N,) in [0, C) or one-hot / probability
    rows (N, C). "mean" averages over the N samples.

    Example:
        >>> import numpy as np
        >>> CrossEntropyLoss(reduction="none")(np.zeros((2, 2)), np.array([0, 1])).data.round(4)
        array([0.6931, 0.6931], dtype=float32)
    """

    def forward(self, logits, target) -> Tensor:
        return cross_entropy(logits, target, self.reduction)


class MSELoss(_Loss):
    """loss = (prediction - target)² elementwise; "mean" averages over all elements. Shapes must be equal.

    Example:
        >>> import numpy as np
        >>> MSELoss(reduction="sum")(np.array([1.0, 2.0]), np.array([1.0, 0.0])).item()
        4.0
    """

    def forward(self, prediction, target) -> Tensor:
        return mse_loss(prediction, target, self.reduction)


class SquaredHingeLoss(_Loss):
    """loss = max(0, 1 - t·y)² elementwise for scores y and targets t in {-1, +1} (BinaryNet's loss,
    Courbariaux et al. 2016); "mean" averages over all elements.

    ``forward(prediction, target)``: target ±1 of the prediction's shape, or integer labels (N,) in [0, C) for
    a prediction (N, C), which become +1 at the label and -1 elsewhere.

    Example:
        >>> import numpy as np
        >>> SquaredHingeLoss()(np.array([[2.0, -2.0]]), np.array([0])).item()
        0.0
    """

    def forward(self, prediction, target) -> Tensor:
        return squared_hinge_loss(prediction, target, self.reduction)
