"""Bop, the binary optimizer, and CaseOptimizer, which lets several optimizers share one model.

**Bop** (Helwegen et al. 2019, "Latent weights do not exist: rethinking binarized neural network
optimization"). A binary weight w ∈ {-1, +1} can only do one thing: flip. Bop keeps, per weight, an
exponential moving average m of its gradient g and flips w when that average is both strong and pushing the
same way as w:

    m ← (1 - γ)·m + γ·g                                  (γ = ``gamma``, the adaptivity rate)
    w ← -w   where |m| > τ and sign(m) = sign(w)          (τ = ``threshold``), else w stays

Why "sign(m) = sign(w)": gradient descent moves w against its gradient, so a gradient of w's own sign pushes w
towards the other value; a consistent push (|m| above τ) flips it. γ sets how far back the average looks
(≈ 1/γ steps); τ how strong a push must be. There is no learning rate, and no latent float weight: the
parameters Bop owns *are* the ±1 weights. At construction Bop writes sign(w) (sign(0) = +1) into each of its
parameters, which leaves the forward pass of a sign-quantized layer unchanged (its kernel quantizer gives
sign(w) either way) and keeps the clipped STE's gradient flowing (its window |w| <= 1 includes ±1).

**CaseOptimizer** routes each parameter of a model to the first optimizer whose predicate accepts it (Larq's
CaseOptimizer): typically the binary kernels of the quantized layers to Bop, everything else (BatchNorm,
biases, full-precision first and last layers) to Adam. ``zero_grad``, ``step``, ``state_dict`` and
``load_state_dict`` cover all of them; ``param_groups`` lists all their groups.

Example:
    >>> import numpy as np
    >>> from minibnn import Parameter
    >>> w = Parameter(np.array([1.0, 1.0, -1.0, -1.0], dtype=np.float32))
    >>> opt = Bop([w], gamma=0.5, threshold=0.2)
    >>> w.grad = np.array([1.0, -1.0, -1.0, 0.2], dtype=np.float32)
    >>> opt.step()       # m = 0.5·g = [0.5, -0.5, -0.5, 0.1]: flips where |m| > 0.2 and sign(m) = sign(w)
    >>> w.data
    array([-1.,  1.,  1., -1.], dtype=float32)
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .module import Module, Parameter
from . import _checks
from .optim import Optimizer

__all__ = ["Bop", "CaseOptimizer", "is_binary_kernel"]


class Bop(Optimizer):
    """The binary optimizer of Helwegen et al. 2019: flip a ±1 weight when its gradient's moving average
    m is stronger than τ and has the weight's sign.

        m ← (1 - γ)·m + γ·g;    w ← -w  where |m| > τ and sign(m) = sign(w)

    Args:
        params: the binary weights (tensors or parameter groups, see :class:`~minibnn.optim.Optimizer`).
            Bop sets each to sign(w) (sign(0) = +1) when it is constructed.
        threshold: τ >= 0 (default 1e-8, the paper's CIFAR-10 value).
        gamma: γ in [0, 1] (default 1e-4, likewise).

    State per weight: ``"momentum"`` (m, zeros at the start) and ``"step"``.

    Only the *latent-free* weights belong here: hand everything else to another optimizer (see
    :class:`CaseOptimizer`). Gradients reach the weights through the layer's kernel quantizer, e.g. the
    clipped STE of ``ste_sign``, whose window |w| <= 1 includes ±1.

    Example:
        >>> from minibnn import Parameter
        >>> w = Parameter(np.array([0.3, -0.7], dtype=np.float32))
        >>> opt = Bop([w])
        >>> w.data                     # made binary at construction
        array([ 1., -1.], dtype=float32)
    """

    def __init__(self, params, threshold: float = 1e-8, gamma: float = 1e-4):
        super().__init__(params, dict(threshold=threshold, gamma=gamma))
        for p in self.parameters():
            p.data[...] = np.where(p.data < 0, -1, 1)  # sign, with sign(0) = sign(NaN) = +1 as in packing

    def _check_group(self, group):
        _checks.interval("Bop", "threshold", group["threshold"])
        _checks.interval("Bop", "gamma", group["gamma"], 0.0, 1.0)

    def _init_state(self, p):
        return {"step": 0, "momentum": np.zeros(p.shape, dtype=p.dtype)}

    def _update(self, w, g, state, group):
        gamma, threshold, m = float(group["gamma"]), float(group["threshold"]), state["momentum"]
        m *= 1.0 - gamma                               # m = (1 - γ)·m + γ·g
        m += gamma * g
        np.negative(w, out=w, where=m * w > threshold)  # w = -w where |m| > τ and sign(m) = sign(w),
        state["step"] += 1                             # i.e. where m·w > τ, as w = ±1


# --------------------------------------------------------------------------------------------------------------
# CaseOptimizer
# --------------------------------------------------------------------------------------------------------------
Predicate = Callable[[Module, str], bool]
Factory = Callable[[List[Parameter]], Optimizer]


def is_binary_kernel(module: Module, name: str) -> bool:
    """True for the ``weight`` of a layer whose ``kernel_quantizer`` has 1-bit precision (the weights Bop owns).

    A predicate for :class:`CaseOptimizer`: it receives the module that holds a parameter and the parameter's
    attribute name in it.
    """
    quantizer = getattr(module, "kernel_quantizer", None)
    return name == "weight" and quantizer is not None and getattr(quantizer, "precision", None) == 1


class CaseOptimizer:
    """Several optimizers over one model: each parameter goes to the first optimizer whose predicate accepts it.

    Args:
        model: the :class:`~minibnn.module.Module` whose parameters are routed (each once, in
            ``named_parameters`` order).
        *cases: ``(predicate, factory)`` pairs. ``predicate(module, name) -> bool`` sees the module holding the
            parameter and its attribute name there (e.g. :func:`is_binary_kernel`); ``factory(params)`` builds
            the optimizer for the parameters routed to it, e.g. ``lambda ps: Bop(ps, gamma=1e-3)`` or
            ``functools.partial(Bop, gamma=1e-3)``. A case that receives no parameter builds no optimizer.
        default: the factory for the parameters no predicate accepts (e.g. ``lambda ps: Adam(ps, lr=1e-2)``);
            None leaves them untrained (their names are in ``untrained``).

    Attributes:
        optimizers: one entry per case, then the default: the optimizer, or None where no parameter went.
        routes: the dotted parameter names each entry received (same order as ``optimizers``).
        untrained: names of parameters no optimizer received (only when ``default`` is None).

    A learning-rate scheduler needs an :class:`~minibnn.optim.Optimizer` whose groups all have ``"lr"``:
    schedule the one you mean, e.g. ``StepLR(case.optimizers[-1], ...)`` for the default Adam.

    Example:
        >>> from minibnn import Sequential
        >>> from minibnn.layers import BatchNorm1d
        >>> from minibnn.optim import Adam
        >>> from minibnn.quantized import BinaryLinear
        >>> model = Sequential(BinaryLinear(4, 3, bias=False), BatchNorm1d(3))
        >>> opt = CaseOptimizer(model, (is_binary_kernel, lambda ps: Bop(ps)), default=lambda ps: Adam(ps))
        >>> opt.routes
        [['0.weight'], ['1.weight', '1.bias']]
    """

    def __init__(self, model: Module, *cases: Tuple[Predicate, Factory], default: Optional[Factory] = None):
        if not isinstance(model, Module):
            raise TypeError(f"CaseOptimizer: model must be a minibnn Module, got {type(model).__name__}")
        for i, case in enumerate(cases):
            if not (isinstance(case, (tuple, list)) and len(case) == 2 and all(callable(c) for c in case)):
                raise TypeError(f"CaseOptimizer: case {i} must be a pair (predicate, factory) of callables, "
                                f"got {case!r}")
        if default is not None and not callable(default):
            raise TypeError(f"CaseOptimizer: default must be a factory (a callable taking a list of parameters) "
                            f"or None, got {default!r}")
        buckets: List[List[Tuple[str, Parameter]]] = [[] for _ in range(len(cases) + 1)]
        for full, module, attr, p in model._parameter_slots():
            index = next((i for i, (predicate, _) in enumerate(cases) if predicate(module, attr)), len(cases))
            buckets[index].append((full, p))
        factories = [factory for _, factory in cases] + [default]
        self.routes: List[List[str]] = []
        self.optimizers: List[Optional[Optimizer]] = []
        self.untrained: List[str] = []
        for i, (bucket, factory) in enumerate(zip(buckets, factories)):
            names = [n for n, _ in bucket]
            if factory is None or not bucket:
                self.untrained += names
                self.routes.append([] if factory is None else names)
                self.optimizers.append(None)
                continue
            optimizer = factory([p for _, p in bucket])
            if not isinstance(optimizer, Optimizer):
                which = "default" if i == len(cases) else f"case {i}"
                raise TypeError(f"CaseOptimizer: the factory of {which} must return a minibnn Optimizer, got "
                                f"{type(optimizer).__name__}")
            self.routes.append(names)
            self.optimizers.append(optimizer)
        if not any(o is not None for o in self.optimizers):
            raise ValueError(f"CaseOptimizer: no optimizer received any parameter of {type(model).__name__} "
                             f"(predicates matched nothing and there is no default)")

    # ---- the Optimizer interface -------------------------------------------------------------------------
    @property
    def param_groups(self) -> List[Dict[str, Any]]:
        """Every group of every optimizer (the dicts themselves, so changes reach the optimizers)."""
        return [g for o in self.optimizers if o is not None for g in o.param_groups]

    def parameters(self) -> List[Parameter]:
        return [p for o in self.optimizers if o is not None for p in o.parameters()]

    def zero_grad(self) -> None:
        """Forget every routed parameter's gradient."""
        for o in self.optimizers:
            if o is not None:
                o.zero_grad()

    def step(self) -> None:
        """One step of every optimizer, each on its own parameters."""
        for o in self.optimizers:
            if o is not None:
                o.step()

    def state_dict(self) -> Dict[str, Any]:
        """``{"routes": [[names]...], "optimizers": [{"class": name, "state": state_dict} or None, ...]}``:
        arrays, numbers, strings, lists and dicts only (a checkpoint stores it without pickle)."""
        return {"routes": [list(r) for r in self.routes],
                "optimizers": [None if o is None else {"class": type(o).__name__, "state": o.state_dict()}
                               for o in self.optimizers]}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore a ``state_dict()`` of a CaseOptimizer built the same way over the same model.

        Raises:
            ValueError: the routes or the optimizers' classes differ.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {"routes", "optimizers"}:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"CaseOptimizer.load_state_dict: expected a dict with keys ['optimizers', 'routes'], "
                             f"got {keys}")
        routes = [list(r) for r in state_dict["routes"]]
        if routes != self.routes:
            raise ValueError(f"CaseOptimizer.load_state_dict: the saved state routes the parameters as {routes}, "
                             f"this optimizer as {self.routes}")
        saved = list(state_dict["optimizers"])
        for i, (entry, o) in enumerate(zip(saved, self.optimizers)):
            if (entry is None) != (o is None) or (o is not None and entry.get("class") != type(o).__name__):
                mine = None if o is None else type(o).__name__
                theirs = None if entry is None else entry.get("class")
                raise ValueError(f"CaseOptimizer.load_state_dict: entry {i} holds a {theirs} state, this "
                                 f"optimizer has {mine} there")
        for entry, o in zip(saved, self.optimizers):
            if o is not None:
                o.load_state_dict(entry["state"])

    def __repr__(self) -> str:
        lines = ["CaseOptimizer("]
        for names, o in zip(self.routes, self.optimizers):
            if o is not None:
                body = repr(o).replace("\n", "\n  ")
                lines.append(f"  {len(names)} tensors -> {body}")
        if self.untrained:
            lines.append(f"  untrained: {self.untrained}")
        return "\n".join(lines) + "\n)"
