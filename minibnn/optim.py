"""Optimizers: the rules that turn gradients into weight updates (SGD and Adam).

An optimizer holds *parameter groups*: a list of dicts, each with its own ``"params"`` and hyperparameters
(``"lr"``, ``"weight_decay"``, ...), so that, for instance, biases can skip weight decay or binary weights can
get another learning rate. ``step()`` updates every parameter that has a gradient (``p.grad is None`` means
"not used this step" and is skipped); ``zero_grad()`` forgets the gradients.

Each update rule is written as its formula: a handful of in-place NumPy lines (``m *= β1; m += (1 - β1)·g``)
into the parameter's own array and into per-parameter state arrays allocated once, with the formula beside
each line (the reference form, as PyTorch's ``_single_tensor_adam``). Hyperparameters enter as Python floats:
under NumPy's promotion rules (NEP 50) a Python float takes the array's dtype, so float32 stays float32 (a
``np.float64`` scalar would make every ufunc compute in float64 and cast back, about 3x slower).

A new optimizer subclasses :class:`Optimizer` and writes two methods: ``_init_state(p)`` (the state arrays of
one parameter) and ``_update(w, g, state, group)`` (one step: the parameter's array w, its gradient g). Because
every optimizer takes any list of parameters, several can share a model: one for the binary weights, one for
the rest.

``state_dict()`` holds only NumPy arrays, Python scalars, strings, lists and dicts, so a checkpoint can store
it without pickle (see :mod:`minibnn.checkpoint`).

Example:
    >>> import numpy as np
    >>> from minibnn import Parameter
    >>> w = Parameter(np.array([1.0, -2.0], dtype=np.float32))
    >>> opt = SGD([w], lr=0.1)
    >>> w.grad = np.array([0.5, 0.5], dtype=np.float32)
    >>> opt.step()
    >>> w.data
    array([ 0.95, -2.05], dtype=float32)
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Iterable, List, Tuple

import numpy as np

from . import _checks
from .tensor import FLOAT_DTYPES, Tensor

__all__ = ["Optimizer", "SGD", "Adam"]


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step`` and a pickle-free ``state_dict``.

    Args:
        params: an iterable of tensors (one group), or of dicts ``{"params": [...], "lr": ..., ...}`` (one
            group each; keys a group leaves out take the optimizer's defaults). Extra keys (e.g. a
            ``"name"``) are kept and saved.
        defaults: the hyperparameters of the subclass, with their values for groups that do not set them.

    Attributes:
        param_groups: the list of group dicts; a scheduler changes ``group["lr"]`` here between steps.
        state: per-parameter state dicts (e.g. Adam's moment arrays), created at the parameter's first step.
    """

    def __init__(self, params: Iterable, defaults: Dict[str, Any]):
        self.defaults = dict(defaults)
        self.param_groups: List[Dict[str, Any]] = []
        self.state: Dict[Tensor, Dict[str, Any]] = {}
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of tensors or of dicts, got a "
                            "single Tensor; wrap it in a list: [param]")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list (did the model define any "
                             f"Parameter? model.parameters() returned nothing)")
        groups = params if all(isinstance(p, dict) for p in params) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for i, group in enumerate(self.param_groups):
            options = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} tensors, {options}")
        return "\n".join(lines) + "\n)"

    # ---- groups ------------------------------------------------------------------------------------------
    def add_param_group(self, group: Dict[str, Any]) -> None:
        """Add a group ``{"params": [...], **hyperparameters}``; missing hyperparameters take the defaults."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' key, got {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: params must be Tensors (e.g. model.parameters()), got an object of type "
                                f"{type(p).__name__} at position {i}")
            if p.dtype not in FLOAT_DTYPES:
                raise TypeError(f"{name}: parameter {i} has dtype {p.dtype}, expected float32 or float64")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError(f"{name}: a parameter appears twice (in one group or in two groups); each "
                             f"parameter must belong to exactly one group")
        full = dict(self.defaults)
        full.update((k, v) for k, v in group.items() if k != "params")
        self._check_group(full)
        full["params"] = params
        self.param_groups.append(full)

    def _check_group(self, group: Dict[str, Any]) -> None:
        """Validate the hyperparameters of a group (subclasses check theirs); raise naming the bad one."""

    def parameters(self) -> List[Tensor]:
        """Every parameter of every group, in group order."""
        return [p for group in self.param_groups for p in group["params"]]

    # ---- stepping ----------------------------------------------------------------------------------------
    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``p.grad = None``), so the next backward starts afresh."""
        for p in self.parameters():
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = np.asarray(p.grad)
                if grad.shape != p.shape or grad.dtype != p.dtype:
                    raise ValueError(f"{type(self).__name__}.step: a parameter of shape {p.shape} and dtype "
                                     f"{p.dtype} has a gradient of shape {grad.shape} and dtype {grad.dtype}")
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = self._init_state(p)
                self._check_state(p, state)
                self._update(p.data, grad, state, group)

    def _init_state(self, p: Tensor) -> Dict[str, Any]:
        """The state of one parameter before its first step (arrays the shape and dtype of ``p``)."""
        return {}

    def _update(self, w: np.ndarray, g: np.ndarray, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        """One step for one parameter: write the new values into its array ``w`` and ``state`` in place."""
        raise NotImplementedError(f"{type(self).__name__} must define _update")

    def _check_state(self, p: Tensor, state: Dict[str, Any]) -> None:
        for key, value in state.items():
            if isinstance(value, np.ndarray) and (value.shape != p.shape or value.dtype != p.dtype):
                raise ValueError(
                    f"{type(self).__name__}: state '{key}' has shape {value.shape} and dtype {value.dtype}, but "
                    f"its parameter now has shape {p.shape} and dtype {p.dtype} (was the model converted with "
                    f"astype after the optimizer was made? make the optimizer after converting)")

    # ---- saving ------------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """A copy of the optimizer's state: arrays, numbers and strings only (no pickle needed).

        ``{"state": [one dict per parameter, in group order ({} before its first step)],
        "param_groups": [each group's hyperparameters, with "params" as a list of parameter indices]}``.
        """
        params = self.parameters()
        index = {id(p): i for i, p in enumerate(params)}
        state = [{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.state.get(p, {}).items()}
                 for p in params]
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore a ``state_dict()`` taken from an optimizer of the same kind over the same parameters.

        Everything is checked before anything changes, so a state that does not fit (or a crafted one) is
        refused here, with the key, the value and what was expected, instead of failing at a later ``step()``.

        Raises:
            ValueError: the number of groups or parameters differs, a group lacks a hyperparameter or holds an
                invalid one, a state key is missing or extra, a step count is not an int >= 0, or a state array
                is not numeric or has another shape.
        """
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}: expected a dict with keys ['param_groups', 'state'], got {keys}")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        for key, value in (("param_groups", saved_groups), ("state", saved_state)):
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{name}: '{key}' must be a list, got {value!r} ({type(value).__name__})")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}: the saved state has {len(saved_groups)} parameter groups, this optimizer "
                             f"has {len(self.param_groups)}")
        params = self.parameters()
        if len(saved_state) != len(params):
            raise ValueError(f"{name}: the saved state has {len(saved_state)} parameter entries, expected "
                             f"{len(params)}")
        new_state = {}
        for i, (p, saved) in enumerate(zip(params, saved_state)):
            if not isinstance(saved, dict):
                raise ValueError(f"{name}: state[{i}] must be a dict, got {saved!r} ({type(saved).__name__})")
            if saved:
                new_state[p] = self._restored_state(name, i, saved, p)
        new_groups = [self._restored_group(name, i, saved, group)
                      for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups))]
        self.param_groups[:] = new_groups
        self.state = new_state

    def _restored_group(self, name: str, i: int, saved: Any, group: Dict[str, Any]) -> Dict[str, Any]:
        """Group ``i`` of a saved state, checked against this optimizer's group ``i``: same parameter indices,
        every hyperparameter present and valid (extra keys, e.g. a "name", are kept)."""
        where = f"param_groups[{i}]"
        if not isinstance(saved, dict):
            raise ValueError(f"{name}: {where} must be a dict, got {saved!r} ({type(saved).__name__})")
        first = sum(len(g["params"]) for g in self.param_groups[:i])
        indices = list(range(first, first + len(group["params"])))
        if not isinstance(saved.get("params"), (list, tuple)) or list(saved["params"]) != indices:
            raise ValueError(f"{name}: {where}['params'] must be the indices of group {i}'s parameters here, "
                             f"{indices}, got {saved.get('params')!r}")
        missing = sorted(set(self.defaults) - set(saved))
        if missing:
            raise ValueError(f"{name}: {where} has no {missing[0]!r}; every {type(self).__name__} group needs "
                             f"{sorted(self.defaults)}")
        restored = {k: (tuple(v) if isinstance(self.defaults.get(k), tuple) and isinstance(v, (list, tuple)) else v)
                    for k, v in saved.items() if k != "params"}
        try:
            self._check_group(restored)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name}: in {where}, {err}") from None
        return {**restored, "params": group["params"]}

    def _restored_state(self, name: str, i: int, saved: Dict[str, Any], p: Tensor) -> Dict[str, Any]:
        """The state of parameter ``i`` from a saved one, in the form of a fresh ``_init_state(p)``: the same
        keys, an int >= 0 where it holds an int (the step count), a numeric array of p's shape (converted to
        p's dtype, copied) where it holds an array."""
        expected = self._init_state(p)
        if set(saved) != set(expected):
            raise ValueError(f"{name}: parameter {i} has state keys {sorted(saved)}, expected {sorted(expected)}")
        entry = {}
        for key, value in saved.items():
            where, like = f"state[{i}][{key!r}]", expected[key]
            if isinstance(like, np.ndarray):
                try:
                    array = np.asarray(value) if isinstance(value, (np.ndarray, list, tuple)) else None
                except ValueError:  # a ragged list
                    array = None
                if array is None or array.dtype.kind not in "fiu":
                    raise ValueError(f"{name}: {where} must be a numeric array of shape {p.shape}, got {value!r}")
                if array.shape != p.shape:
                    raise ValueError(f"{name}: state '{key}' of parameter {i} has shape {array.shape}, "
                                     f"expected {p.shape}")
                value = array.astype(p.dtype, copy=True)
            elif isinstance(like, int) and not isinstance(like, bool):
                if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)) or value < 0:
                    raise ValueError(f"{name}: {where} must be an int >= 0 (a step count), got {value!r}")
                value = int(value)
            entry[key] = value
        return entry


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum (heavy-ball or Nesterov) and weight decay.

    For a parameter w with gradient g at step t (hyperparameters lr, μ = momentum, τ = dampening,
    λ = weight_decay):

        d = g + λ·w                                       (L2 weight decay)
        b = d  at the first step,  b = μ·b + (1 - τ)·d  after      (the momentum buffer, when μ > 0)
        d = d + μ·b  (nesterov)   or   d = b   (heavy ball)          (when μ > 0)
        w = w - lr·d

    Nesterov momentum as in Sutskever et al. 2013; it needs μ > 0 and τ = 0.

    Args:
        params: tensors or parameter groups (see :class:`Optimizer`).
        lr: learning rate (> 0 is usual; 0 allowed).
        momentum: μ in [0, 1).  dampening: τ in [0, 1].  nesterov: use Nesterov momentum.
        weight_decay: λ >= 0.

    Example:
        >>> import numpy as np
        >>> from minibnn import Parameter
        >>> w = Parameter(np.zeros(1, dtype=np.float32))
        >>> opt = SGD([w], lr=0.5, momentum=0.9)
        >>> for _ in range(2):
        ...     w.grad = np.ones(1, dtype=np.float32); opt.step()
        >>> w.data  # -0.5·1, then -0.5·(0.9·1 + 1)
        array([-1.45], dtype=float32)
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, dampening: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                                      dampening=dampening))

    def _check_group(self, group):
        _checks.interval("SGD", "lr", group["lr"])
        _checks.interval("SGD", "momentum", group["momentum"], 0.0, 1.0, high_open=True)
        _checks.interval("SGD", "dampening", group["dampening"], 0.0, 1.0)
        _checks.interval("SGD", "weight_decay", group["weight_decay"])
        _checks.boolean("SGD", "nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum="
                             f"{group['momentum']} and dampening={group['dampening']}")

    def _init_state(self, p):
        return {"step": 0, "momentum_buffer": np.zeros(p.shape, dtype=p.dtype)}

    def _update(self, w, g, state, group):
        lr, mu, decay = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        d = g + decay * w if decay else g              # d = g + λ·w
        if mu:
            b = state["momentum_buffer"]
            if state["step"] == 0:
                b[...] = d                             # b = d            (first step)
            else:
                b *= mu                                # b = μ·b + (1 - τ)·d
                b += (1.0 - float(group["dampening"])) * d
            d = d + mu * b if group["nesterov"] else b  # d = d + μ·b (Nesterov)  or  d = b
        w -= lr * d                                    # w = w - lr·d
        state["step"] += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), with L2 weight decay or decoupled weight decay (Loshchilov & Hutter 2019).

    For a parameter w with gradient g at step t = 1, 2, ... (hyperparameters lr, β1, β2, ε, λ = weight_decay,
    λd = decoupled_weight_decay):

        w = w - lr·λd·w                                   (decoupled decay, as in AdamW)
        g = g + λ·w                                       (L2 decay, added to the gradient)
        m = β1·m + (1 - β1)·g                             (first moment, "exp_avg")
        v = β2·v + (1 - β2)·g²                            (second moment, "exp_avg_sq")
        w = w - lr · (m / (1 - β1^t)) / (sqrt(v / (1 - β2^t)) + ε)

    The last line is computed as ``w -= [lr·sqrt(1-β2^t)/(1-β1^t)] · m / (sqrt(v) + ε·sqrt(1-β2^t))``, the
    same quantity with the bias corrections folded into two scalars.

    Args:
        params: tensors or parameter groups (see :class:`Optimizer`).
        lr: learning rate.  betas: (β1, β2), each in [0, 1).  eps: ε > 0 (added for numerical stability).
        weight_decay: λ, L2 penalty coupled with the adaptive scaling (classic Adam).
        decoupled_weight_decay: λd, shrinks the weights directly, independent of the gradient scale (the
            "AdamW" of Loshchilov & Hutter; set weight_decay=0 and this instead).

    Example:
        >>> import numpy as np
        >>> from minibnn import Parameter
        >>> w = Parameter(np.array([1.0], dtype=np.float32))
        >>> opt = Adam([w], lr=0.1)
        >>> w.grad = np.array([3.0], dtype=np.float32); opt.step()
        >>> w.data  # the first Adam step moves each weight by about lr, against the gradient's sign
        array([0.9], dtype=float32)
    """

    def __init__(self, params, lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled_weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check_group(self, group):
        name = type(self).__name__
        _checks.interval(name, "lr", group["lr"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        _checks.interval(name, "betas[0]", betas[0], 0.0, 1.0, high_open=True)
        _checks.interval(name, "betas[1]", betas[1], 0.0, 1.0, high_open=True)
        _checks.interval(name, "eps", group["eps"])
        _checks.interval(name, "weight_decay", group["weight_decay"])
        _checks.interval(name, "decoupled_weight_decay", group["decoupled_weight_decay"])

    def _init_state(self, p):
        return {"step": 0, "exp_avg": np.zeros(p.shape, dtype=p.dtype), "exp_avg_sq": np.zeros(p.shape, dtype=p.dtype)}

    def _update(self, w, g, state, group):
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        lr, eps = float(group["lr"]), float(group["eps"])
        beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
        l2, decoupled = float(group["weight_decay"]), float(group["decoupled_weight_decay"])
        if decoupled:
            w *= 1.0 - lr * decoupled                  # w = w - lr·λd·w
        if l2:
            g = g + l2 * w                             # g = g + λ·w
        root_c2 = math.sqrt(1.0 - beta2 ** t)          # the bias corrections m̂ = m / (1 - β1^t) and
        step_size = lr * root_c2 / (1.0 - beta1 ** t)  # v̂ = v / (1 - β2^t), folded into two scalars
        u = np.empty_like(w)                           # one scratch array for the whole update
        np.multiply(g, 1.0 - beta1, out=u)             # m = β1·m + (1 - β1)·g
        m *= beta1
        m += u
        np.multiply(g, g, out=u)                       # v = β2·v + (1 - β2)·g²
        u *= 1.0 - beta2
        v *= beta2
        v += u
        np.sqrt(v, out=u)                              # w = w - lr·m̂ / (sqrt(v̂) + ε)
        u += eps * root_c2                             #   = w - step_size·m / (sqrt(v) + ε·sqrt(1 - β2^t))
        np.divide(m, u, out=u)
        u *= step_size
        w -= u
