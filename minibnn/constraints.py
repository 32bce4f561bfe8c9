"""Constraints: rules that put a weight back into an allowed set after each optimizer step.

A binary layer trains a *latent* float weight W and uses sign(W) in its forward pass. The clipped
straight-through estimator passes no gradient where |W| > 1 (Hubara et al. 2016), so a latent weight that
drifts beyond ±1 would never come back; BinaryConnect and BinaryNet therefore clip W to [-1, 1] after every
update (Courbariaux et al. 2015; Darabi et al. 2018, Sec. 2). That is :class:`WeightClip`, Larq's
``kernel_constraint="weight_clip"``.

The protocol, shared with :mod:`minibnn.quantized`:

* a constraint is a callable ``constraint(w: np.ndarray) -> np.ndarray`` (the constrained values, same shape);
  :class:`Constraint` subclasses also offer ``constraint.apply_(tensor)``, which writes into the tensor's own
  array (no new array, so optimizer state and views of it stay valid);
* a layer holds its weight constraint as the attribute ``kernel_constraint`` (and optionally a bias
  constraint as ``bias_constraint``);
* :func:`apply_constraints` walks a model and applies every one of them; call it right after
  ``optimizer.step()``:

      optimizer.zero_grad(); loss.backward(); optimizer.step(); apply_constraints(model)

Example:
    >>> import numpy as np
    >>> from minibnn import Parameter
    >>> from minibnn.module import Module
    >>> class Layer(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.weight = Parameter(np.array([-1.5, 0.25, 3.0], dtype=np.float32))
    ...         self.kernel_constraint = get("weight_clip")
    >>> layer = Layer()
    >>> apply_constraints(layer)          # number of tensors constrained
    1
    >>> layer.weight.data
    array([-1.  ,  0.25,  1.  ], dtype=float32)
"""
from __future__ import annotations

import numbers
from typing import Callable, Optional

import numpy as np

from .registry import Registry
from .module import Module
from .tensor import Tensor

__all__ = ["Constraint", "WeightClip", "weight_clip", "get", "register", "names", "apply_constraints"]


class Constraint:
    """Base class: ``constraint(w)`` returns the constrained values; ``apply_(tensor)`` writes them in place."""

    name = "constraint"

    def __call__(self, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define __call__")

    def apply_(self, tensor: Tensor) -> None:
        """Replace ``tensor``'s values by the constrained ones, in its own array."""
        tensor.data[...] = self(tensor.data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# --------------------------------------------------------------------------------------------------------------
# Registry: names -> constraints
# --------------------------------------------------------------------------------------------------------------
_REGISTRY = Registry("constraint", base=Constraint)
register = _REGISTRY.register
names = _REGISTRY.names


def get(identifier, **kwargs) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    """Turn a constraint identifier into a constraint.

    Args:
        identifier: a registered name (a new object each call, e.g. ``"weight_clip"``), a callable
            ``w -> constrained w`` (returned as it is), or None (returned as None: no constraint).
        **kwargs: passed to the constructor with a name, e.g. ``get("weight_clip", clip_value=0.5)``.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
        TypeError: for anything else.

    Example:
        >>> get("weight_clip", clip_value=2)
        WeightClip(clip_value=2)
    """
    return _REGISTRY.resolve(identifier, **kwargs)


@register("weight_clip", "WeightClip")
class WeightClip(Constraint):
    """w ← clip(w, -c, c) with c = ``clip_value`` (BinaryConnect's clipping of the latent weights).

    Args:
        clip_value: c > 0 (default 1, the window of the clipped straight-through estimator).

    Example:
        >>> WeightClip(0.5)(np.array([-2.0, 0.1, 0.7]))
        array([-0.5,  0.1,  0.5])
    """

    name = "weight_clip"

    def __init__(self, clip_value: float = 1.0):
        if isinstance(clip_value, bool) or not isinstance(clip_value, numbers.Real) or not clip_value > 0 \
                or not np.isfinite(clip_value):
            raise ValueError(f"WeightClip: clip_value must be a finite number > 0, got {clip_value!r}")
        self.clip_value = float(clip_value)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return np.clip(w, -self.clip_value, self.clip_value)

    def apply_(self, tensor: Tensor) -> None:
        np.clip(tensor.data, -self.clip_value, self.clip_value, out=tensor.data)

    def __repr__(self) -> str:
        return f"WeightClip(clip_value={self.clip_value:g})"

    def __eq__(self, other) -> bool:
        return isinstance(other, WeightClip) and other.clip_value == self.clip_value

    def __hash__(self) -> int:
        return hash(("WeightClip", self.clip_value))


def weight_clip(clip_value: float = 1.0) -> WeightClip:
    """The constraint clip(w, -clip_value, clip_value) (Larq's name for :class:`WeightClip`)."""
    return WeightClip(clip_value)


# --------------------------------------------------------------------------------------------------------------
# Applying every constraint of a model
# --------------------------------------------------------------------------------------------------------------
_CONSTRAINED = (("kernel_constraint", "weight"), ("bias_constraint", "bias"))


def _apply(constraint, tensor: Tensor, where: str) -> None:
    if isinstance(constraint, Constraint):
        constraint.apply_(tensor)
        return
    values = np.asarray(constraint(tensor.data))
    if values.shape != tensor.shape:
        raise ValueError(f"apply_constraints: the constraint {constraint!r} of {where} returned shape "
                         f"{values.shape} for a tensor of shape {tensor.shape}")
    tensor.data[...] = values


def apply_constraints(model: Module) -> int:
    """Apply every layer's ``kernel_constraint`` (to its ``weight``) and ``bias_constraint`` (to its ``bias``).

    Call it after each ``optimizer.step()``. Writes in place; constraints that are None are skipped.

    Args:
        model: any :class:`~minibnn.module.Module`.

    Returns:
        How many tensors were constrained (0 for a model without constraints).
    """
    if not isinstance(model, Module):
        raise TypeError(f"apply_constraints: expected a minibnn Module, got {type(model).__name__}")
    count = 0
    for name, module in model.named_modules():
        for constraint_attr, tensor_attr in _CONSTRAINED:
            constraint = getattr(module, constraint_attr, None)
            tensor = getattr(module, tensor_attr, None)
            if constraint is None or not isinstance(tensor, Tensor):
                continue
            _apply(constraint, tensor, f"{name or type(module).__name__}.{tensor_attr}")
            count += 1
    return count
