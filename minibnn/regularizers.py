"""BNN+ regularizers: pull each latent weight towards ±α_c, the scale of its filter (Darabi et al. 2018, Sec. 3.2.1).

    R1(W, α) = Σ_c Σ_i |α_c - |W_ci||      (Manhattan, eq. 4)
    R2(W, α) = Σ_c Σ_i (α_c - |W_ci|)²     (Euclidean, eq. 5)

Each has two minima per weight, at -α_c and +α_c; unlike L1/L2 they do not pull weights to zero. The loss is
J = L + λ_t Σ_layers R(W_h, α_h) (eq. 6), where λ_t may change during training ("added and increased
gradually", Sec. 4.3; the paper uses λ = 5e-7 on CIFAR-10 and 1e-7 to 1e-5 on ImageNet). Both W and α get
gradients: dR1/dα_c = Σ_i sign(α_c - |W_ci|), dR1/dW_ci = -sign(α_c - |W_ci|)·sign(W_ci);
dR2/dα_c = 2Σ_i (α_c - |W_ci|), dR2/dW_ci = -2(α_c - |W_ci|)·sign(W_ci).

The layers it finds (duck-typed, so any layer can opt in): every module with a Parameter ``weight`` of shape
(out, ...) and a Parameter ``alpha`` of shape (out,) — the names :mod:`minibnn.scales` documents.

Example:
    >>> import numpy as np
    >>> from minibnn import Module, Parameter
    >>> from minibnn.scales import init_alpha
    >>> class Scaled(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.weight = Parameter(np.array([[0.5, -1.0, 2.0]], dtype=np.float32))
    ...         self.alpha = init_alpha(self.weight, "median")
    >>> reg = BNNPlusRegularizer("r1", coefficient=0.1)
    >>> reg(Scaled()).item()          # 0.1 · (|1 - 0.5| + |1 - 1| + |1 - 2|)
    0.15000000596046448
"""
from __future__ import annotations

from typing import Callable, List, Tuple, Union

from .module import Module, Parameter
from .scales import filter_view
from .tensor import Tensor

__all__ = ["r1", "r2", "scaled_layers", "RegularizerSchedule", "BNNPlusRegularizer"]


def _check_pair(alpha: Tensor, weight: Tensor, who: str) -> None:
    if weight.ndim < 2:
        raise ValueError(f"{who}: weight must have shape (out, in) or (out, in, kh, kw), got {weight.shape}")
    if alpha.shape != (weight.shape[0],):
        raise ValueError(f"{who}: alpha must have shape ({weight.shape[0]},), one per output filter of the weight "
                         f"of shape {weight.shape}; got {alpha.shape}")


def r1(alpha: Tensor, weight: Tensor) -> Tensor:
    """R1 = Σ_c Σ_i |α_c - |W_ci||, a scalar tensor (Darabi et al. 2018, eq. 4)."""
    _check_pair(alpha, weight, "r1")
    return (filter_view(alpha, weight.ndim) - weight.abs()).abs().sum()


def r2(alpha: Tensor, weight: Tensor) -> Tensor:
    """R2 = Σ_c Σ_i (α_c - |W_ci|)², a scalar tensor (Darabi et al. 2018, eq. 5)."""
    _check_pair(alpha, weight, "r2")
    d = filter_view(alpha, weight.ndim) - weight.abs()
    return (d * d).sum()


def scaled_layers(model: Module) -> List[Tuple[str, Module]]:
    """Every (name, module) in ``model`` with a Parameter ``weight`` and a Parameter ``alpha`` (a BNN+ scale).

    Raises:
        ValueError: if such a module's ``alpha`` does not have shape (weight.shape[0],).
    """
    if not isinstance(model, Module):
        raise TypeError(f"scaled_layers: expected a Module, got {type(model).__name__}")
    found = []
    for name, m in model.named_modules():
        weight, alpha = getattr(m, "weight", None), getattr(m, "alpha", None)
        if isinstance(weight, Parameter) and isinstance(alpha, Parameter):
            _check_pair(alpha, weight, f"layer {name or type(m).__name__!r}")
            found.append((name, m))
    return found


class RegularizerSchedule:
    """λ as a function of the epoch: from ``start`` up (or down) to ``final`` linearly over ``warmup_epochs``.

    λ(e) = start + (final - start)·min(1, e / warmup_epochs);  with ``warmup_epochs = 0`` it is ``final``.

    Example:
        >>> s = RegularizerSchedule(final=1e-6, warmup_epochs=4)
        >>> [s(e) for e in (0, 2, 4, 10)]
        [0.0, 5e-07, 1e-06, 1e-06]
    """

    def __init__(self, final: float, warmup_epochs: int = 0, start: float = 0.0):
        if not final >= 0 or not start >= 0:
            raise ValueError(f"RegularizerSchedule: start and final must be >= 0, got start={start!r}, "
                             f"final={final!r}")
        if warmup_epochs < 0:
            raise ValueError(f"RegularizerSchedule: warmup_epochs must be >= 0, got {warmup_epochs!r}")
        self.final, self.warmup_epochs, self.start = float(final), warmup_epochs, float(start)

    def __call__(self, epoch: int) -> float:
        if self.warmup_epochs == 0:
            return self.final
        return self.start + (self.final - self.start) * min(1.0, epoch / self.warmup_epochs)

    def __repr__(self) -> str:
        return f"RegularizerSchedule(final={self.final:g}, warmup_epochs={self.warmup_epochs}, start={self.start:g})"


class BNNPlusRegularizer:
    """λ_t · Σ_layers R(W_h, α_h) over every layer of a model that holds a BNN+ scale (Darabi et al. 2018, eq. 6).

    Use it as ``loss = loss + reg(model)``; call ``reg.set_epoch(epoch)`` at the start of each epoch when λ
    follows a schedule.

    Args:
        kind: ``"r1"`` (alias ``"manhattan"``) or ``"r2"`` (alias ``"euclidean"``).
        coefficient: λ, a number or a function of the epoch (e.g. a :class:`RegularizerSchedule`).

    Raises (when called):
        ValueError: if the model has no layer with both ``weight`` and ``alpha`` Parameters.
    """

    _KINDS = {"r1": r1, "manhattan": r1, "r2": r2, "euclidean": r2}

    def __init__(self, kind: str = "r1", coefficient: Union[float, Callable[[int], float]] = 5e-7):
        if kind not in self._KINDS:
            raise ValueError(f"BNNPlusRegularizer: kind must be one of {sorted(self._KINDS)}, got {kind!r}")
        if not callable(coefficient) and not coefficient >= 0:
            raise ValueError(f"BNNPlusRegularizer: coefficient must be >= 0 or a function of the epoch, "
                             f"got {coefficient!r}")
        self.kind, self.coefficient, self.epoch = kind, coefficient, 0

    def set_epoch(self, epoch: int) -> None:
        """Tell the schedule which epoch training is in."""
        self.epoch = int(epoch)

    @property
    def current_coefficient(self) -> float:
        """λ at the current epoch."""
        lam = self.coefficient(self.epoch) if callable(self.coefficient) else self.coefficient
        return float(lam)

    def penalty(self, model: Module) -> Tensor:
        """Σ_layers R(W_h, α_h) without λ."""
        layers = scaled_layers(model)
        if not layers:
            raise ValueError(f"BNNPlusRegularizer: found no layer with a Parameter 'weight' and a Parameter 'alpha' "
                             f"(shape (out,)) in {type(model).__name__}; give the quantized layers a BNN+ scale "
                             f"(minibnn.scales.init_alpha)")
        fn = self._KINDS[self.kind]
        total = fn(layers[0][1].alpha, layers[0][1].weight)
        for _, m in layers[1:]:
            total = total + fn(m.alpha, m.weight)
        return total

    def __call__(self, model: Module) -> Tensor:
        return self.penalty(model) * self.current_coefficient

    def __repr__(self) -> str:
        return f"BNNPlusRegularizer(kind={self.kind!r}, coefficient={self.coefficient!r}, epoch={self.epoch})"
