"""Module and Parameter: the containers that hold a model's weights, buffers and sub-modules.

A :class:`Module` finds its parameters by looking at its own attributes: assign a :class:`Parameter`, another
Module or (through :meth:`Module.register_buffer`) a NumPy buffer such as BatchNorm's running mean, and it is
part of ``parameters()``, ``state_dict()``, ``train()``/``eval()`` and the printed tree.

Example:
    >>> import numpy as np
    >>> class Affine(Module):
    ...     def __init__(self, n):
    ...         super().__init__()
    ...         self.scale = Parameter(np.ones(n, dtype=np.float32))
    ...     def forward(self, x):
    ...         return x * self.scale
    >>> m = Affine(3)
    >>> [name for name, _ in m.named_parameters()]
    ['scale']
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Dict, Iterator, List, Tuple

import numpy as np

from . import _checks
from .tensor import FLOAT_DTYPES, Tensor


class Parameter(Tensor):
    """A tensor that is a learnable weight of a module: ``requires_grad`` is True by default."""

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor"):]


class Module:
    """Base class of every layer and model. Subclasses set attributes in ``__init__`` and define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_forward_hooks", [])
        object.__setattr__(self, "training", True)

    # ---- registration ------------------------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._parameters and value is not None and not isinstance(value, Parameter):
            raise TypeError(f"{type(self).__name__}.{name} is a Parameter; assign a Parameter (or None), got "
                            f"{type(value).__name__} (to change its values, assign to .{name}.data)")
        if isinstance(value, (Parameter, Module)) or name not in self._buffers:
            # A buffer stays a buffer when reassigned (BatchNorm updates its running mean this way).
            for table in (self._parameters, self._modules, self._buffers):
                table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._modules, self._buffers):
            table.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Keep a non-learnable array (e.g. running statistics) that is saved in ``state_dict``."""
        if not isinstance(value, np.ndarray):
            raise TypeError(f"register_buffer('{name}'): expected a NumPy array, got {type(value).__name__}")
        self._buffers[name] = True
        self.__setattr__(name, value)

    # ---- running -----------------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        for hook in self._forward_hooks:
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        return out

    def register_forward_hook(self, hook: Callable) -> Callable[[], None]:
        """Call ``hook(module, inputs, output)`` after each forward; a returned value replaces the output.

        Returns a function that removes the hook.
        """
        self._forward_hooks.append(hook)
        return lambda: self._forward_hooks.remove(hook) if hook in self._forward_hooks else None

    def train(self, mode: bool = True) -> "Module":
        """Set training mode (BatchNorm uses batch statistics, Dropout drops) on this module and its children."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Set evaluation mode: ``train(False)``."""
        return self.train(False)

    # ---- walking the tree --------------------------------------------------------------------------------
    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        return iter(self._modules.items())

    def children(self) -> Iterator["Module"]:
        return (m for _, m in self.named_children())

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        """This module and every module below it, with dotted names (this one is named ``prefix``)."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        return (m for _, m in self.named_modules())

    def _parameter_slots(self, prefix: str = "") -> Iterator[Tuple[str, "Module", str, Parameter]]:
        """(dotted name, owning module, attribute name, parameter) of every parameter, once: a parameter shared
        by several modules is reported with the first owner met (the walk of ``named_parameters``)."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{module_name}.{name}" if module_name else name), module, name, p

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        """Every parameter, once, with its dotted name (``"0.weight"``, ``"block.bn.bias"``)."""
        for name, _, _, p in self._parameter_slots(prefix):
            yield name, p

    def parameters(self) -> List[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[Tuple[str, np.ndarray]]:
        for module_name, module in self.named_modules(prefix):
            for name in module._buffers:
                yield (f"{module_name}.{name}" if module_name else name), getattr(module, name)

    def zero_grad(self) -> None:
        """Forget the gradients of every parameter (set ``.grad`` to None)."""
        for p in self.parameters():
            p.grad = None

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Call ``fn`` on every module of the tree (children first), e.g. to re-initialise weights."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def astype(self, dtype) -> "Module":
        """Convert every parameter and floating buffer to ``dtype`` (float32 or float64) in place."""
        dtype = _checks.float_dtype("astype", "dtype", dtype)
        for p in self.parameters():
            p.data, p.grad = p.data.astype(dtype), None
        for module in self.modules():
            for name in module._buffers:
                value = getattr(module, name)
                if isinstance(value, np.ndarray) and value.dtype in FLOAT_DTYPES:
                    object.__setattr__(module, name, value.astype(dtype))
        return self

    # ---- saving ------------------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """A copy of every parameter and buffer as NumPy arrays, keyed by dotted name."""
        state = OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())
        state.update((name, np.array(b, copy=True)) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state: Dict[str, np.ndarray], strict: bool = True) -> None:
        """Copy arrays from ``state`` into this module's parameters and buffers (in place).

        Raises:
            KeyError: with ``strict``, if a name is missing or unexpected.
            ValueError: if a shape does not match.
        """
        own = dict(self.named_parameters())
        buffers = {name: (module, attr) for module_name, module in self.named_modules()
                   for attr in module._buffers
                   for name in [f"{module_name}.{attr}" if module_name else attr]}
        missing = [k for k in list(own) + list(buffers) if k not in state]
        unexpected = [k for k in state if k not in own and k not in buffers]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, value in state.items():
            value = np.asarray(value)
            if name in own:
                p = own[name]
                if value.shape != p.shape:
                    raise ValueError(f"load_state_dict: '{name}' has shape {value.shape}, expected {p.shape}")
                p.data = value.astype(p.dtype, copy=True)
            elif name in buffers:
                module, attr = buffers[name]
                current = np.asarray(getattr(module, attr))
                if value.shape != current.shape:
                    raise ValueError(f"load_state_dict: '{name}' has shape {value.shape}, expected {current.shape}")
                object.__setattr__(module, attr, value.astype(current.dtype, copy=True))

    # ---- printing ----------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The arguments shown in the printed tree, e.g. ``in_features=784, out_features=10``."""
        return ""

    def __repr__(self) -> str:
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + (")" if not lines else "\n" + "\n".join(lines) + "\n)")


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(Linear(784, 100), ReLU(), Linear(100, 10))``."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            self.append(m, index=i)

    def append(self, module: Module, index: int = None) -> "Sequential":
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self._modules) if index is None else index), module)
        return self

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        items = list(self._modules.values())
        return Sequential(*items[i]) if isinstance(i, slice) else items[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleList(Module):
    """A list of modules whose parameters belong to the owner (for models that loop over blocks)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
