"""The autograd engine: a ``Tensor`` over a NumPy array and the differentiable ops on it.

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
NumPy's default float64 arrays. The engine
never writes into a gradient array in place.

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
            tensors.append(Tensor(np.asarray(x, dtype=dtype)))
    return tuple(tensors)


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

    def astype(self, dtype) -> "Tensor":
        """Convert to float32 or float64 (differentiable)."""
        return Cast.apply(self, dtype=np.dtype(dtype))

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

    # ---- operators -----------------------------------------------------------------------------------------
    def __add__(self, other): return Add.apply(self, other)
    def __radd__(self, other): return Add.apply(other, self)
    def __sub__(self, other): return Sub.apply(self, other)
    def __rsub__(self, other): return Sub.apply(other, self)
    def __mul__(self, other): return Mul.apply(self, other)
    def __rmul__(self, other): return Mul.apply(other, self)
    def __truediv__(self, other): return Div.apply(self, other)
    def __rtruediv__(self, other): return Div.apply(other, self)
    def __neg__(self): return Neg.apply(self)
    def __pow__(self, other): return Pow.apply(self, other)
    def __rpow__(self, other): return Pow.apply(other, self)
    def __matmul__(self, other): return MatMul.apply(self, other)
    def __rmatmul__(self, other): return MatMul.apply(other, self)
    def __getitem__(self, index): return GetItem.apply(self, index=_plain_index(index))

    # Comparisons are not differentiable: they return plain boolean NumPy arrays.
    def __lt__(self, other): return self.data < _raw(other)
    def __le__(self, other): return self.data <= _raw(other)
    def __gt__(self, other): return self.data > _raw(other)
    def __ge__(self, other): return self.data >= _raw(other)
    __hash__ = object.__hash__

    # ---- elementwise ---------------------------------------------------------------------------------------
    def exp(self): return Exp.apply(self)
    def log(self): return Log.apply(self)
    def abs(self): return Abs.apply(self)
    def sqrt(self): return Sqrt.apply(self)
    def clip(self, min_value=None, max_value=None): return Clip.apply(self, low=min_value, high=max_value)

    # ---- reductions ----------------------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False): return Sum.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)
    def mean(self, axis=None, keepdims=False): return Mean.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)
    def max(self, axis=None, keepdims=False): return Max.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def var(self, axis=None, keepdims=False, ddof=0):
        return Var.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims, ddof=ddof)

    def argmax(self, axis=None) -> np.ndarray:
        """Indices of the maxima (not differentiable)."""
        return np.argmax(self.data, axis=axis)

    # ---- shape ---------------------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Reshape.apply(self, shape=tuple(shape))

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return Transpose.apply(self, axes=tuple(axes) if axes else None)

    @property
    def T(self):
        """The transpose (axes reversed)."""
        return self.transpose()

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        """Merge axes start_dim..end_dim into one (``x.flatten(1)`` turns (N, C, H, W) into (N, C*H*W))."""
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
        shape = self.shape[:start] + (int(np.prod(self.shape[start:end + 1])),) + self.shape[end + 1:]
        return self.reshape(shape)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _axes(axis, ndim: int):
    """Normalise an axis argument to None or a sorted tuple of non-negative ints, with a clear error."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(out))


def _plain_index(index):
    """Replace tensors inside an index by their arrays (indices are never differentiated)."""
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


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


# --------------------------------------------------------------------------------------------------------------
# Elementwise ops. Each backward returns d(out)/d(input) * grad, before unbroadcasting.
# --------------------------------------------------------------------------------------------------------------
def _check_broadcast(op: str, a: np.ndarray, b: np.ndarray) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None


class Add(Function):
    """out = a + b;  d/da = 1, d/db = 1."""

    def forward(self, a, b):
        _check_broadcast("add", a, b)
        return a + b

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    """out = a - b;  d/da = 1, d/db = -1."""

    def forward(self, a, b):
        _check_broadcast("sub", a, b)
        return a - b

    def backward(self, grad):
        return grad, -grad


class Mul(Function):
    """out = a * b;  d/da = b, d/db = a."""

    def forward(self, a, b):
        _check_broadcast("mul", a, b)
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        da = grad * self.b if self.needs_input_grad[0] else None
        db = grad * self.a if self.needs_input_grad[1] else None
        return da, db


class Div(Function):
    """out = a / b;  d/da = 1/b, d/db = -a/b²."""

    def forward(self, a, b):
        _check_broadcast("div", a, b)
        self.a, self.b = a, b
        return a / b

    def backward(self, grad):
        da = grad / self.b if self.needs_input_grad[0] else None
        db = -grad * self.a / (self.b * self.b) if self.needs_input_grad[1] else None
        return da, db


class Neg(Function):
    """out = -a;  d/da = -1."""

    def forward(self, a):
        return -a

    def backward(self, grad):
        return -grad


class Pow(Function):
    """out = a ** b;  d/da = b·a^(b-1), d/db = a^b·log(a) (needs a > 0)."""

    def forward(self, a, b):
        _check_broadcast("pow", a, b)
        self.a, self.b = a, b
        self.out = a ** b
        return self.out

    def backward(self, grad):
        da = grad * self.b * self.a ** (self.b - 1) if self.needs_input_grad[0] else None
        db = grad * self.out * np.log(self.a) if self.needs_input_grad[1] else None
        return da, db


class Exp(Function):
    """out = exp(a);  d/da = exp(a) = out."""

    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, grad):
        return grad * self.out


class Log(Function):
    """out = log(a);  d/da = 1/a."""

    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, grad):
        return grad / self.a


class Sqrt(Function):
    """out = sqrt(a);  d/da = 1 / (2·sqrt(a))."""

    def forward(self, a):
        self.out = np.sqrt(a)
        return self.out

    def backward(self, grad):
        return grad / (2 * self.out)


class Abs(Function):
    """out = |a|;  d/da = sign(a), taken as 0 at a = 0 (the subgradient closest to zero)."""

    def forward(self, a):
        self.a = a
        return np.abs(a)

    def backward(self, grad):
        return grad * np.sign(self.a)


class Maximum(Function):
    """out = max(a, b);  the gradient goes to the larger input; on a tie it is shared half and half."""

    def forward(self, a, b):
        _check_broadcast("maximum", a, b)
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, grad):
        share = np.where(self.a > self.b, 1.0, np.where(self.a == self.b, 0.5, 0.0)).astype(grad.dtype)
        return grad * share, grad * (1 - share)


class Minimum(Function):
    """out = min(a, b);  the gradient goes to the smaller input; on a tie it is shared half and half."""

    def forward(self, a, b):
        _check_broadcast("minimum", a, b)
        self.a, self.b = a, b
        return np.minimum(a, b)

    def backward(self, grad):
        share = np.where(self.a < self.b, 1.0, np.where(self.a == self.b, 0.5, 0.0)).astype(grad.dtype)
        return grad * share, grad * (1 - share)


class Where(Function):
    """out = a where condition else b;  d/da = condition, d/db = not condition."""

    def forward(self, a, b, condition):
        self.condition = np.asarray(condition, dtype=bool)
        return np.where(self.condition, a, b)

    def backward(self, grad):
        return np.where(self.condition, grad, 0), np.where(self.condition, 0, grad)


class Clip(Function):
    """out = min(max(a, low), high);  d/da = 1 where low <= a <= high (edges included), else 0."""

    def forward(self, a, low=None, high=None):
        if low is not None and high is not None and low > high:
            raise ValueError(f"clip: min_value ({low}) must not exceed max_value ({high})")
        self.inside = np.ones(a.shape, dtype=bool)
        if low is not None:
            self.inside &= a >= low
        if high is not None:
            self.inside &= a <= high
        return np.clip(a, low, high)

    def backward(self, grad):
        return grad * self.inside


class Cast(Function):
    """out = a converted to another float dtype;  d/da = 1 (converted back)."""

    def forward(self, a, dtype):
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"astype: dtype must be float32 or float64, got {dtype}")
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, grad):
        return grad.astype(self.in_dtype)


# --------------------------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------------------------
def _expand(grad: np.ndarray, shape, axis, keepdims: bool) -> np.ndarray:
    """Put back the reduced axes of ``grad`` (as size 1) so it broadcasts against the input of ``shape``."""
    if axis is not None and not keepdims:
        grad = np.expand_dims(grad, axis)
    elif axis is None and not keepdims:
        grad = np.reshape(grad, (1,) * len(shape))
    return grad


def _count(shape, axis) -> int:
    return int(np.prod(shape)) if axis is None else int(np.prod([shape[a] for a in axis]))


class Sum(Function):
    """out = Σ_axis a;  d/da = 1 for every summed element."""

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return np.sum(a, axis=axis, keepdims=keepdims)

    def backward(self, grad):
        return np.broadcast_to(_expand(grad, self.shape, self.axis, self.keepdims), self.shape)


class Mean(Function):
    """out = (1/n) Σ_axis a;  d/da = 1/n."""

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return np.mean(a, axis=axis, keepdims=keepdims)

    def backward(self, grad):
        n = _count(self.shape, self.axis)
        return np.broadcast_to(_expand(grad, self.shape, self.axis, self.keepdims) / n, self.shape)


class Var(Function):
    """out = Σ_axis (a - mean)² / (n - ddof);  d/da = 2 (a - mean) / (n - ddof) (the mean's own term sums to 0)."""

    def forward(self, a, axis=None, keepdims=False, ddof=0):
        n = _count(a.shape, axis)
        if n - ddof <= 0:
            raise ValueError(f"var: needs more than ddof={ddof} elements along axis {axis}, got {n}")
        self.axis, self.keepdims, self.shape = axis, keepdims, a.shape
        self.centred = a - np.mean(a, axis=axis, keepdims=True)
        self.denominator = n - ddof
        return np.sum(self.centred ** 2, axis=axis, keepdims=keepdims) / self.denominator

    def backward(self, grad):
        g = _expand(grad, self.shape, self.axis, self.keepdims)
        return g * (2 / self.denominator) * self.centred


class Max(Function):
    """out = max_axis a;  the gradient goes to the maximal elements, shared equally between ties."""

    def forward(self, a, axis=None, keepdims=False):
        self.a, self.axis, self.keepdims = a, axis, keepdims
        self.out = np.max(a, axis=axis, keepdims=True)
        if keepdims:
            return self.out
        return self.out.reshape(() if axis is None else tuple(n for i, n in enumerate(a.shape) if i not in axis))

    def backward(self, grad):
        winners = self.a == self.out
        g = _expand(grad, self.a.shape, self.axis, self.keepdims)
        return g * winners / np.sum(winners, axis=self.axis, keepdims=True, dtype=grad.dtype)


# --------------------------------------------------------------------------------------------------------------
# Matrix product
# --------------------------------------------------------------------------------------------------------------
class MatMul(Function):
    """out = a @ b (batched, broadcasting over leading axes);  dL/da = g @ bᵀ, dL/db = aᵀ @ g."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}")
        k_a, k_b = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} do not align: the last axis of the first ({k_a}) must "
                f"equal the {'only' if b.ndim == 1 else 'second-to-last'} axis of the second ({k_b})"
            )
        self.a, self.b = a, b
        return np.matmul(a, b)

    def backward(self, grad):
        if self.a.ndim == 1 and self.b.ndim == 1:  # a dot product: out = Σ a_k b_k
            return grad * self.b, grad * self.a
        a = self.a[None, :] if self.a.ndim == 1 else self.a
        b = self.b[:, None] if self.b.ndim == 1 else self.b
        g = grad
        if self.a.ndim == 1:
            g = np.expand_dims(g, -2)
        if self.b.ndim == 1:
            g = np.expand_dims(g, -1)
        da = db = None
        if self.needs_input_grad[0]:
            da = np.matmul(g, np.swapaxes(b, -1, -2))
            da = da[..., 0, :] if self.a.ndim == 1 else da
        if self.needs_input_grad[1]:
            if a.ndim == 2 and g.ndim == 2:
                db = a.T @ g
            else:
                db = np.matmul(np.swapaxes(a, -1, -2), g)
            db = db[..., 0] if self.b.ndim == 1 else db
        return da, db


# --------------------------------------------------------------------------------------------------------------
# Shape ops
# --------------------------------------------------------------------------------------------------------------
class Reshape(Function):
    """out = a with a new shape (same elements, same order);  d/da = grad reshaped back."""

    def forward(self, a, shape):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} into {shape}") from None

    def backward(self, grad):
        return grad.reshape(self.shape)


class Transpose(Function):
    """out = a with permuted axes;  d/da = grad permuted back by the inverse permutation."""

    def forward(self, a, axes=None):
        self.axes = tuple(range(a.ndim))[::-1] if axes is None else axes
        if sorted(a_ % max(a.ndim, 1) for a_ in self.axes) != list(range(a.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the {a.ndim} axes of shape {a.shape}")
        return np.transpose(a, self.axes)

    def backward(self, grad):
        return np.transpose(grad, np.argsort(self.axes))


def _is_basic_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts)


class GetItem(Function):
    """out = a[index];  d/da = grad scattered back into zeros (added, so repeated indices accumulate)."""

    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, grad):
        out = np.zeros(self.shape, dtype=self.dtype)
        if _is_basic_index(self.index):
            out[self.index] = grad
        else:
            np.add.at(out, self.index, grad)
        return out


class Concatenate(Function):
    """out = the inputs joined along ``axis``;  each input's gradient is its slice of grad."""

    def forward(self, *arrays, axis=0):
        self.axis = axis
        self.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        try:
            return np.concatenate(arrays, axis=axis)
        except ValueError as e:
            shapes = [a.shape for a in arrays]
            raise ValueError(f"concatenate: shapes {shapes} must match except along axis {axis} ({e})") from None

    def backward(self, grad):
        return tuple(np.split(grad, self.splits, axis=self.axis))


class Stack(Function):
    """out = the inputs stacked along a new ``axis``;  each input's gradient is its index along that axis."""

    def forward(self, *arrays, axis=0):
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"stack: all inputs must have the same shape, got {[a.shape for a in arrays]}")
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, grad):
        return tuple(np.moveaxis(grad, self.axis, 0))


class Pad(Function):
    """out = a surrounded by a constant;  d/da = the central part of grad."""

    def forward(self, a, pad_width, value=0.0):
        pad_width = np.broadcast_to(np.asarray(pad_width, dtype=int), (a.ndim, 2))
        if (pad_width < 0).any():
            raise ValueError(f"pad: pad widths must be >= 0, got {pad_width.tolist()}")
        self.slices = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, a.shape))
        return np.pad(a, pad_width, mode="constant", constant_values=value)

    def backward(self, grad):
        return grad[self.slices]


# --------------------------------------------------------------------------------------------------------------
# Functional forms of the ops
# --------------------------------------------------------------------------------------------------------------
def tensor(data: ArrayLike, requires_grad: bool = False, dtype=None) -> Tensor:
    """Make a tensor (float32 unless the data is float64 or ``dtype`` says otherwise)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def maximum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise maximum of two tensors (broadcasting)."""
    return Maximum.apply(a, b)


def minimum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise minimum of two tensors (broadcasting)."""
    return Minimum.apply(a, b)


def where(condition, a: ArrayLike, b: ArrayLike) -> Tensor:
    """Pick from ``a`` where ``condition`` is true, else from ``b`` (the condition is not differentiated)."""
    return Where.apply(a, b, condition=_raw(condition))


def clip(a: ArrayLike, min_value=None, max_value=None) -> Tensor:
    """Clamp to [min_value, max_value]; the gradient passes where the value is inside, edges included."""
    return Clip.apply(a, low=min_value, high=max_value)


def matmul(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Matrix product with NumPy's rules (batched over leading axes)."""
    return MatMul.apply(a, b)


def concatenate(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    if len(tensors) == 0:
        raise ValueError("concatenate: needs at least one tensor")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    if len(tensors) == 0:
        raise ValueError("stack: needs at least one tensor")
    return Stack.apply(*tensors, axis=axis)


def pad(a: ArrayLike, pad_width, value: float = 0.0) -> Tensor:
    """Pad with a constant; ``pad_width`` as in ``numpy.pad`` (per axis (before, after))."""
    return Pad.apply(a, pad_width=pad_width, value=value)


def exp(a): return Exp.apply(a)
def log(a): return Log.apply(a)
def sqrt(a): return Sqrt.apply(a)
def abs(a): return Abs.apply(a)  # noqa: A001 - mirrors numpy.abs
