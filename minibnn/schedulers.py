"""Learning-rate schedulers: change each parameter group's ``lr`` once per epoch, by a closed formula.

A scheduler remembers each group's starting learning rate (its *base* lr, lr₀) and, after ``step()`` number e,
sets ``group["lr"] = lr_at(lr₀, e)``. Call ``scheduler.step()`` once at the end of every epoch, after that
epoch's ``optimizer.step()`` calls (``fit`` does this for you). Epoch 0 uses the base rates.

Because the learning rate is a formula of the epoch counter, not a running product, a scheduler restored from
``state_dict()`` gives exactly the same rates as one that never stopped.

Example:
    >>> import numpy as np
    >>> from minibnn import Parameter
    >>> from minibnn.optim import SGD
    >>> opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> rates = []
    >>> for epoch in range(5):
    ...     rates.append(sched.get_last_lr()[0])  # ... train one epoch with this rate ...
    ...     sched.step()
    >>> rates
    [1.0, 1.0, 0.5, 0.5, 0.25]
"""
from __future__ import annotations

import bisect
import math
from typing import Any, Dict, List, Sequence

from . import _checks
from .optim import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR"]


class LRScheduler:
    """Base class: sets every group's lr to ``lr_at(base_lr, epoch)`` after each ``step()``.

    Subclasses define ``lr_at(base_lr, epoch) -> float`` (a pure formula) and keep their hyperparameters as
    attributes.

    Args:
        optimizer: any :class:`~minibnn.optim.Optimizer`; every one of its groups is scheduled (each group
            from its own base lr).

    Attributes:
        last_epoch: how many times ``step()`` has been called.
        base_lrs: the groups' learning rates when the scheduler was made.
    """

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be a minibnn Optimizer, got "
                            f"{type(optimizer).__name__}")
        for i, group in enumerate(optimizer.param_groups):
            if "lr" not in group:
                raise ValueError(f"{type(self).__name__}: parameter group {i} has no 'lr' to schedule "
                                 f"(its keys are {sorted(k for k in group if k != 'params')})")
        self.optimizer = optimizer
        self.base_lrs: List[float] = [float(group["lr"]) for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        """The learning rate of a group whose base rate is ``base_lr``, during epoch ``epoch`` (from 0)."""
        raise NotImplementedError(f"{type(self).__name__} must define lr_at")

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = float(self.lr_at(base, self.last_epoch))

    def step(self) -> None:
        """Move to the next epoch: ``last_epoch += 1`` and set every group's lr for it."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> List[float]:
        """The learning rate of each group, as set by the last ``step()`` (or by construction)."""
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> Dict[str, Any]:
        """``{"last_epoch": int, "base_lrs": [float, ...]}``: numbers only."""
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore ``state_dict()`` and set the groups' lr for the restored epoch.

        Everything is checked before anything changes. Raises ValueError naming the key, the value and the
        expected form: ``last_epoch`` an int >= 0, ``base_lrs`` a list of one real number >= 0 per group.
        """
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict) or set(state) != {"last_epoch", "base_lrs"}:
            keys = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{name}: expected a dict with keys ['base_lrs', 'last_epoch'], got {keys}")
        saved_lrs = state["base_lrs"]
        if not isinstance(saved_lrs, (list, tuple)):
            raise ValueError(f"{name}: base_lrs must be a list of learning rates, one per parameter group, got "
                             f"{saved_lrs!r} ({type(saved_lrs).__name__})")
        if len(saved_lrs) != len(self.optimizer.param_groups):
            raise ValueError(f"{name}: the saved state has {len(saved_lrs)} base learning rates, the "
                             f"optimizer has {len(self.optimizer.param_groups)} parameter groups")
        try:
            last_epoch = _checks.integer(name, "last_epoch", state["last_epoch"], 0)
            base_lrs = [_checks.real(name, f"base_lrs[{i}]", lr, minimum=0.0) for i, lr in enumerate(saved_lrs)]
        except TypeError as err:   # a wrong type is a bad value in a saved state too
            raise ValueError(str(err)) from None
        self.last_epoch, self.base_lrs = last_epoch, base_lrs
        self._apply()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self.get_last_lr()})"


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    lr(e) = lr₀ · gamma^⌊e / step_size⌋

    Example:
        >>> import numpy as np
        >>> from minibnn import Parameter
        >>> from minibnn.optim import SGD
        >>> s = StepLR(SGD([Parameter(np.zeros(1))], lr=0.1), step_size=10, gamma=0.1)
        >>> s.lr_at(0.1, 9), s.lr_at(0.1, 10)
        (0.1, 0.010000000000000002)
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = _checks.integer("StepLR", "step_size", step_size, 1)
        self.gamma = _checks.real("StepLR", "gamma", gamma, minimum=0.0, finite=False)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each epoch listed in ``milestones``.

    lr(e) = lr₀ · gamma^(number of milestones m with m <= e)

    Example:
        >>> import numpy as np
        >>> from minibnn import Parameter
        >>> from minibnn.optim import SGD
        >>> s = MultiStepLR(SGD([Parameter(np.zeros(1))], lr=1.0), milestones=[2, 4], gamma=0.5)
        >>> [s.lr_at(1.0, e) for e in range(6)]
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1):
        milestones = [_checks.integer("MultiStepLR", "milestones[i]", m, 1) for m in milestones]
        if milestones != sorted(set(milestones)):
            raise ValueError(f"MultiStepLR: milestones must be strictly increasing, got {milestones}")
        self.milestones = milestones
        self.gamma = _checks.real("MultiStepLR", "gamma", gamma, minimum=0.0, finite=False)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class CosineAnnealingLR(LRScheduler):
    """Lower the learning rate from lr₀ to ``eta_min`` along half a cosine over ``T_max`` epochs.

    lr(e) = eta_min + (lr₀ - eta_min) · (1 + cos(π · min(e, T_max) / T_max)) / 2

    (the annealing of Loshchilov & Hutter 2017, SGDR, without restarts). After ``T_max`` epochs the rate stays
    at ``eta_min``.

    Example:
        >>> import numpy as np
        >>> from minibnn import Parameter
        >>> from minibnn.optim import SGD
        >>> s = CosineAnnealingLR(SGD([Parameter(np.zeros(1))], lr=1.0), T_max=4, eta_min=0.0)
        >>> [round(s.lr_at(1.0, e), 4) for e in range(6)]
        [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803 - the usual name
        self.T_max = _checks.integer("CosineAnnealingLR", "T_max", T_max, 1)
        self.eta_min = _checks.real("CosineAnnealingLR", "eta_min", eta_min, minimum=0.0, finite=False)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        progress = min(epoch, self.T_max) / self.T_max
        return self.eta_min + (base_lr - self.eta_min) * (1.0 + math.cos(math.pi * progress)) / 2.0
