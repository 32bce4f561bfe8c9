"""The autograd engine: a ``Tensor`` over a NumPy array, the ``Function`` base class of ops, and backward.

How it works, in four sentences:

1. Every op is a :class:`Function` subclass with a ``forward`` on NumPy arrays and a ``backward`` that maps the
   gradient of the output to the gradients of the inputs; the two sit side by side.
2. ``Function.apply`` runs ``forward`` and, when gradients are wanted, remembers the op (its *context*) on the
   output tensor, so the tensors form a graph.
3. ``Tensor.backward`` walks that graph once in reverse topological order, calls each op's ``backward`` and
   adds (``+``) the results into the inputs' gradients.
4. Broadcasting is undone in exactly one place, :func:`unbroadcast`, so no op has to think about it.

Conventions: float32 by default, float64 allowed (for gradcheck); the operands of an op must share a dtype
(no silent promotion); Python numbers and NumPy arrays mixed with a tensor take the tensor's dtype, and an op
given only arrays works in float32 (wrap an array in ``Tensor`` to keep float64), so a float32 model accepts
NumPy's default float64 arrays; an operand that is not real (None, a complex number, strings, objects) is
refused with a TypeError naming the op. The engine never writes into a gradient array in place.

The op classes (``AddFn``, ``MatMulFn``, ``SumFn``...) live in :mod:`minibnn.ops`, which also attaches
Tensor's operators and methods (``+``, ``@``, ``.sum()``...): each is one line applying one op.

Example:
    >>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    array([2., 4., 6.], dtype=float32)
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_grad_enabled = True


# --------------------------------------------------------------------------------------------------------------
# Gradient mode
# --------------------------------------------------------------------------------------------------------------
def is_grad_enabled() -> bool:
    """True when ops record the graph for ``backward`` (the default); False inside ``no_grad``."""
    return _grad_enabled


class _GradMode:
    """Sets gradient recording on or off for a ``with`` block or a decorated function, then restores it."""

    enabled = True

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = self.enabled
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous
        return False

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Turn off graph recording: as ``with no_grad(): ...`` or as the decorator ``@no_grad()``.

    Inside, ops return tensors with ``requires_grad=False`` and keep no references for backward, which saves
    memory and time at evaluation. The previous mode is restored on exit, so blocks nest.
    """

    enabled = False


class enable_grad(_GradMode):
    """Turn graph recording back on inside a ``no_grad`` block (context manager or decorator)."""

    enabled = True


# --------------------------------------------------------------------------------------------------------------
# Function: the base class of every op
# --------------------------------------------------------------------------------------------------------------
def unbroadcast(grad: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, so it gets back ``shape``.

    If ``y = x + b`` broadcast ``b`` from shape (3,) to (4, 3), every row of y depends on b, so
    dL/db = sum over rows of dL/dy. This is the only place in minibnn where broadcasting is undone.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


class Function:
    """Base class of a differentiable op. Subclasses write ``forward`` and ``backward`` side by side.

    ``forward(self, *arrays, **options)`` receives the NumPy arrays of the tensor arguments (positional) and
    the non-differentiable options (keywords), and returns the output array. It may store on ``self`` whatever
    ``backward`` needs (``self`` is the op's context).
    ``backward(self, grad)`` receives dL/d(output) and returns dL/d(input) for each positional input, in order
    (a single array if there is one input); ``None`` for an input that needs no gradient.
    ``self.needs_input_grad[i]`` tells whether input i wants a gradient (known already in ``forward``), so
    costly work and saved arrays can be skipped.
    """

    needs_input_grad: Tuple[bool, ...] = ()
    inputs: Tuple["Tensor", ...] = ()

    def forward(self, *args: np.ndarray, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad: np.ndarray):
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> "Tensor":
        """Run the op on tensors (or numbers / arrays, taken as constants) and record it for backward."""
        tensors = _as_operands(cls.__name__, inputs)
        ctx = cls()
        ctx.needs_input_grad = tuple(_grad_enabled and t.requires_grad for t in tensors)
        out = ctx.forward(*(t.data for t in tensors), **options)
        requires_grad = any(ctx.needs_input_grad)
        result = Tensor(out, requires_grad=requires_grad)
        if requires_grad:
            ctx.inputs = tensors
            result._ctx = ctx
        return result

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def _as_operands(op: str, inputs: Sequence[Any]) -> Tuple["Tensor", ...]:
    """Tensors pass through; numbers and arrays become constant tensors of the first tensor's dtype."""
    dtype = next((x.dtype for x in inputs if isinstance(x, Tensor)), np.dtype(np.float32))
    tensors = []
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor):
            if x.dtype != dtype:
                raise TypeError(
                    f"{op}: operands must share one dtype, got {dtype} and {x.dtype} (argument {i}); "
                    f"convert one with .astype(np.{dtype}) or .astype(np.{x.dtype})"
                )
            tensors.append(x)
        else:
            array = np.asarray(x)
            if array.dtype.kind not in "fiub":   # None, complex, strings, objects: refused, never cast
                raise TypeError(f"{op}: operand {i} must be a Tensor, a real number or an array of them, got "
                                f"{_describe(x, array)}")
            tensors.append(Tensor(array.astype(dtype, copy=False)))
    return tuple(tensors)


def _describe(x: Any, array: np.ndarray) -> str:
    """How an unacceptable operand is named in an error: None, a complex number, an array of dtype <U3..."""
    if isinstance(x, np.ndarray):
        return f"an array of dtype {x.dtype}"
    if array.dtype.kind == "c" and array.ndim == 0:
        return f"the complex number {x!r}"
    return f"{x!r} ({type(x).__name__})" if array.ndim == 0 else f"a {type(x).__name__} of dtype {array.dtype}"


# --------------------------------------------------------------------------------------------------------------
# Tensor
# --------------------------------------------------------------------------------------------------------------
ArrayLike = Union["Tensor", np.ndarray, float, int, Sequence]


class Tensor:
    """An n-dimensional array that remembers how it was computed, so it can be differentiated.

    Args:
        data: array-like; float32 and float64 NumPy arrays keep their dtype (and are shared, not copied);
            Python numbers, lists and other numeric arrays become float32.
        requires_grad: whether ``backward`` should compute ``.grad`` for this tensor.
        dtype: force a dtype (float32 or float64).

    Attributes:
        data: the NumPy array.
        grad: dL/d(self) as a NumPy array after ``backward`` (leaves only), else None.
    """

    __array_priority__ = 100  # make ndarray <op> Tensor call the Tensor's reflected operator

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype not in FLOAT_DTYPES:
                raise TypeError(f"Tensor: dtype must be float32 or float64, got {dtype}")
        array = np.asarray(data)
        if dtype is None and not isinstance(data, (np.ndarray, np.generic)):
            dtype = np.dtype(np.float32)  # Python numbers and lists become float32
        if array.dtype not in FLOAT_DTYPES or dtype is not None:
            if array.dtype.kind not in "fiub":
                raise TypeError(
                    f"Tensor: data must be numeric (float, int or bool), got an array of dtype {array.dtype}"
                )
            array = array.astype(dtype or np.float32, copy=False)
        self.data: np.ndarray = array
        self.requires_grad = bool(requires_grad)
        self.grad: Optional[np.ndarray] = None
        self._ctx: Optional[Function] = None
        self._hooks: list = []

    # ---- basic properties --------------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape, doc="The shape of the data.")
    ndim = property(lambda self: self.data.ndim, doc="The number of axes.")
    size = property(lambda self: self.data.size, doc="The number of elements.")
    dtype = property(lambda self: self.data.dtype, doc="float32 or float64.")
    is_leaf = property(lambda self: self._ctx is None, doc="True if no recorded op produced this tensor.")

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", prefix="Tensor(")
        extra = f", dtype={self.dtype}" if self.dtype != np.float32 else ""
        if self._ctx is not None:
            extra += f", grad_fn={type(self._ctx).__name__}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        if self.size != 1:
            raise ValueError(f"item(): only a one-element tensor converts to a number, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> "Tensor":
        """A tensor sharing the same data but cut from the graph (no gradient flows through it)."""
        return Tensor(self.data)

    def register_hook(self, hook: Callable[[np.ndarray], Optional[np.ndarray]]) -> Callable[[], None]:
        """Call ``hook(grad)`` when dL/d(self) is computed; a returned array replaces the gradient.

        Returns a function that removes the hook.
        """
        self._hooks.append(hook)
        return lambda: self._hooks.remove(hook) if hook in self._hooks else None

    # ---- backward ------------------------------------------------------------------------------------------
    def backward(self, grad: Optional[ArrayLike] = None) -> None:
        """Compute dL/dx for every leaf x with ``requires_grad`` that this tensor depends on.

        Args:
            grad: dL/d(self). May be omitted only for a one-element tensor (then it is 1).

        Gradients are *added* to existing ``.grad`` values (call ``zero_grad`` between steps).
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad; no input with requires_grad=True was used "
                "to compute it (or it was computed under no_grad)"
            )
        if grad is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward(): a gradient must be given for a non-scalar tensor of shape {self.shape}; "
                    f"call .sum().backward() or pass backward(grad) with grad of shape {self.shape}"
                )
            grad = np.ones(self.shape, dtype=self.dtype)
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"backward(): grad has shape {grad.shape}, expected the tensor's shape {self.shape}")

        grads = {id(self): grad}
        for node in reversed(_topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            for hook in node._hooks:
                replaced = hook(g)
                if replaced is not None:
                    g = np.asarray(replaced, dtype=node.dtype)
            if node._ctx is None:
                if node.requires_grad:
                    if not g.flags.writeable:
                        g = g.copy()
                    node.grad = g if node.grad is None else node.grad + g
                continue
            ctx = node._ctx
            in_grads = ctx.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) != len(ctx.inputs):
                raise RuntimeError(
                    f"{type(ctx).__name__}.backward returned {len(in_grads)} gradients for {len(ctx.inputs)} inputs"
                )
            for parent, pg in zip(ctx.inputs, in_grads):
                if pg is None or not parent.requires_grad:
                    continue
                pg = np.asarray(pg)
                if pg.dtype != parent.dtype:
                    raise RuntimeError(f"{type(ctx).__name__}.backward returned a {pg.dtype} gradient for a "
                                       f"{parent.dtype} input: an op must keep its inputs' dtype")
                pg = unbroadcast(pg, parent.shape)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg

    # ---- comparisons: not differentiable, they return plain boolean NumPy arrays -----------------------------
    def __lt__(self, other): return self.data < array_of(other)
    def __le__(self, other): return self.data <= array_of(other)
    def __gt__(self, other): return self.data > array_of(other)
    def __ge__(self, other): return self.data >= array_of(other)
    __hash__ = object.__hash__

    # The arithmetic operators and methods (+, -, *, /, **, @, [], sum, mean, max, var, reshape, transpose, exp,
    # log, abs, sqrt, clip, astype, flatten...) each apply one op class of minibnn.ops; they are attached to
    # Tensor there, beside the ops, so that this module does not import ops (ops imports Function from here).


def array_of(x):
    """The array of a tensor; anything else as it is."""
    return x.data if isinstance(x, Tensor) else x


def shape_of(x: ArrayLike) -> Tuple[int, ...]:
    """The shape of a tensor, an array, a number or a nested list (without converting it)."""
    return x.shape if isinstance(x, Tensor) else np.shape(x)


def as_tensor(x: ArrayLike, dtype=np.float32) -> Tensor:
    """A tensor as it is; anything else a constant tensor of ``dtype`` (float32, as arrays become in an op)."""
    return x if isinstance(x, Tensor) else Tensor(x, dtype=dtype)


def _topological_order(root: Tensor) -> list:
    """Every tensor ``root`` depends on, each after its inputs (iterative depth-first search, no recursion)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            stack.extend((p, False) for p in node._ctx.inputs if p.requires_grad and id(p) not in seen)
    return order
