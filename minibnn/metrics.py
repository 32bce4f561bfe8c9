"""Metrics of binary networks that look inside the model: weight flips and the balance of binary activations.

* :class:`FlipRatio`: the fraction of binary weights whose value changed since the previous step (Larq's
  ``flip_ratio``). Late in training few signs flip; a ratio that stays high means the latent weights hover
  around zero (the sign fluctuations Darabi et al. 2018 set out to damp).
* :class:`PlusOneFraction`: the fraction of +1 outputs of each binary activation, gathered by forward hooks on
  the quantizer modules (Kim et al. 2021, Fig. 4: about 1/2 for a plain sign after BatchNorm, less after a
  positive threshold shift, and skewed after max pooling).

Both find their targets by attribute names the quantized layers share: a layer's latent weight is the
Parameter ``weight`` and its weight quantizer the attribute ``kernel_quantizer``; activation quantizers are
:class:`~minibnn.quantizers.Quantizer` modules with ``precision == 1`` not held as ``kernel_quantizer``.

Example:
    >>> import numpy as np
    >>> from minibnn import Parameter
    >>> w = Parameter(np.array([0.5, -0.2, 0.1, -0.7], dtype=np.float32))
    >>> flips = FlipRatio([w])
    >>> w.data = np.array([-0.1, -0.3, 0.2, 0.4], dtype=np.float32)     # an optimizer step
    >>> flips.update()                                                   # signs of w[0] and w[3] changed
    0.5
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .module import Module, Parameter
from .quantizers import Quantizer
from .tensor import Tensor

__all__ = ["binary_weights", "FlipRatio", "plus_one_fraction", "binary_activations", "PlusOneFraction"]


def _default_binarize(a: np.ndarray) -> np.ndarray:
    return ~(a < 0)  # sign(w) as a boolean: True for +1 (w >= 0, and NaN, as in packing), False for -1


def binary_weights(model: Module) -> List[Tuple[str, Parameter]]:
    """(name, latent weight) of every layer holding a Parameter ``weight`` and a ``kernel_quantizer`` (not None)."""
    found = []
    for name, m in model.named_modules():
        weight = getattr(m, "weight", None)
        if isinstance(weight, Parameter) and getattr(m, "kernel_quantizer", None) is not None:
            found.append((f"{name}.weight" if name else "weight", weight))
    return found


class FlipRatio:
    """Fraction of binary weights whose value changed since the previous :meth:`update` (Larq's flip ratio).

        flip ratio at step t = #{i : b_i(t) != b_i(t-1)} / #weights,    b_i = sign(w_i) by default

    The baseline is taken when the tracker is created; call :meth:`update` after every optimizer step.

    Args:
        weights: a model (its :func:`binary_weights` are tracked) or a sequence of tensors (the latent weights).
        binarize: maps a latent weight array to the values compared between steps; default sign(w) with
            sign(0) = +1. Pass e.g. ``lambda a: ste_tern(a).data`` to count ternary changes.

    Attributes:
        history: the ratio of every update so far.
    """

    def __init__(self, weights: Union[Module, Sequence[Tensor]],
                 binarize: Optional[Callable[[np.ndarray], np.ndarray]] = None):
        if isinstance(weights, Module):
            named = binary_weights(weights)
            if not named:
                raise ValueError(f"FlipRatio: found no layer with a Parameter 'weight' and a 'kernel_quantizer' in "
                                 f"{type(weights).__name__}; pass the latent weights as a list instead")
            self.names, self.tensors = [n for n, _ in named], [t for _, t in named]
        else:
            self.tensors = list(weights)
            bad = [i for i, t in enumerate(self.tensors) if not isinstance(t, Tensor)]
            if not self.tensors or bad:
                raise TypeError(f"FlipRatio: weights must be a Module or a non-empty sequence of Tensors "
                                f"(entries {bad} are not)")
            self.names = [str(i) for i in range(len(self.tensors))]
        self.binarize = binarize or _default_binarize
        self.history: List[float] = []
        self._previous = self._snapshot()

    def _snapshot(self) -> List[np.ndarray]:
        return [np.array(self.binarize(t.data), copy=True) for t in self.tensors]

    def update(self) -> float:
        """Compare with the previous snapshot, record and return the fraction that changed, take a new snapshot."""
        current = self._snapshot()
        changed = total = 0
        for name, before, now in zip(self.names, self._previous, current):
            if before.shape != now.shape:
                raise ValueError(f"FlipRatio: weight {name} changed shape from {before.shape} to {now.shape}")
            changed += int(np.count_nonzero(before != now))
            total += now.size
        ratio = changed / total if total else 0.0
        self.history.append(ratio)
        self._previous = current
        return ratio

    def result(self) -> float:
        """The mean flip ratio over all updates so far (NaN before the first)."""
        return float(np.mean(self.history)) if self.history else float("nan")

    def reset(self) -> None:
        """Forget the history and take the current weights as the new baseline."""
        self.history = []
        self._previous = self._snapshot()

    def __repr__(self) -> str:
        return f"FlipRatio({len(self.tensors)} tensors, {len(self.history)} updates, mean {self.result():.4g})"


def plus_one_fraction(x) -> float:
    """The fraction of entries of a binary tensor that are +1 (or 1 for {0, 1} outputs): mean(x > 0)."""
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    return float(np.count_nonzero(data > 0) / data.size) if data.size else float("nan")


def binary_activations(model: Module) -> List[Tuple[str, Quantizer]]:
    """(name, quantizer) of every 1-bit activation quantizer of ``model``.

    That is every :class:`Quantizer` with ``precision == 1`` that is not held as a ``kernel_quantizer`` and is
    not inside another quantizer (a :class:`~minibnn.quantizers.TrainableThreshold` counts once, not also its
    inner sign). ``model`` itself counts if it is such a quantizer.
    """
    quantizer_names = [n for n, m in model.named_modules() if isinstance(m, Quantizer)]
    found = []
    for name, m in model.named_modules():
        if not isinstance(m, Quantizer) or m.precision != 1 or name.split(".")[-1] == "kernel_quantizer":
            continue
        if any(q != name and (q == "" or name.startswith(q + ".")) for q in quantizer_names):
            continue
        found.append((name or m.name, m))
    return found


class PlusOneFraction:
    """Fraction of +1 outputs of each binary activation, counted by forward hooks (Kim et al. 2021, Fig. 4).

    Counts accumulate over every forward pass until :meth:`reset`, so after one pass over a data set
    :meth:`fractions` gives each layer's share of +1 over that data set.

    Args:
        target: a model (hooks go on its :func:`binary_activations`), a module, or a sequence of modules.

    Example:
        >>> from minibnn import Tensor
        >>> from minibnn.quantizers import SteSign
        >>> q = SteSign()
        >>> tracker = PlusOneFraction([q])
        >>> _ = q(Tensor([-1.0, 0.0, 0.5, -2.0]))
        >>> tracker.fractions()
        {'0': 0.5}
    """

    def __init__(self, target: Union[Module, Sequence[Module], None] = None):
        self.counts: "OrderedDict[str, List[int]]" = OrderedDict()
        self._removers: List[Callable[[], None]] = []
        if target is not None:
            self.attach(target)

    def attach(self, target: Union[Module, Sequence[Module]]) -> "PlusOneFraction":
        """Put a counting hook on each binary activation of a model, or on each module of a sequence."""
        if isinstance(target, Module):
            named = binary_activations(target)
            if not named:
                raise ValueError(f"PlusOneFraction: found no 1-bit activation quantizer in {type(target).__name__}; "
                                 f"pass the modules to watch as a list")
        else:
            modules = list(target)
            bad = [i for i, m in enumerate(modules) if not isinstance(m, Module)]
            if not modules or bad:
                raise TypeError(f"PlusOneFraction: expected a Module or a non-empty sequence of Modules "
                                f"(entries {bad} are not)")
            named = [(str(len(self.counts) + i), m) for i, m in enumerate(modules)]
        for name, module in named:
            if name in self.counts:
                raise ValueError(f"PlusOneFraction: already watching a module named {name!r}")
            self.counts[name] = [0, 0]
            self._removers.append(module.register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name: str):
        def count(module, inputs, output):
            data = output.data if isinstance(output, Tensor) else np.asarray(output)
            self.counts[name][0] += int(np.count_nonzero(data > 0))
            self.counts[name][1] += int(data.size)
        return count

    def fractions(self) -> Dict[str, float]:
        """{name: fraction of +1 outputs seen so far} (NaN for a module that has not run)."""
        return {name: plus / total if total else float("nan") for name, (plus, total) in self.counts.items()}

    def reset(self) -> None:
        """Zero the counts (keep the hooks)."""
        for c in self.counts.values():
            c[0] = c[1] = 0

    def detach(self) -> None:
        """Remove every hook this tracker added."""
        for remove in self._removers:
            remove()
        self._removers = []

    def __repr__(self) -> str:
        body = ", ".join(f"{n}: {f:.3f}" for n, f in self.fractions().items())
        return f"PlusOneFraction({body})"
