"""Loss modules: ``loss_fn(prediction, target)`` returns a tensor to call ``backward`` on.

Each is a thin module around a function of :mod:`minibnn.functional` with a ``reduction``: "mean" (default),
"sum", or "none" (the unreduced losses). Shapes are checked, never broadcast: a target that does not fit the
prediction is an error that names both shapes.

Example:
    >>> import numpy as np
    >>> loss_fn = CrossEntropyLoss()
    >>> round(loss_fn(np.zeros((4, 10)), np.array([1, 2, 3, 4])).item(), 4)   # log 10
    2.3026
"""
from __future__ import annotations

from . import functional as F
from .module import Module
from .tensor import Tensor

__all__ = ["CrossEntropyLoss", "MSELoss", "SquaredHingeLoss"]


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = F._check_reduction(type(self).__name__, reduction)

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
        return F.cross_entropy(logits, target, self.reduction)


class MSELoss(_Loss):
    """loss = (prediction - target)² elementwise; "mean" averages over all elements. Shapes must be equal.

    Example:
        >>> import numpy as np
        >>> MSELoss(reduction="sum")(np.array([1.0, 2.0]), np.array([1.0, 0.0])).item()
        4.0
    """

    def forward(self, prediction, target) -> Tensor:
        return F.mse_loss(prediction, target, self.reduction)


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
        return F.squared_hinge_loss(prediction, target, self.reduction)
