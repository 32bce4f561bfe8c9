"""The op classes of the autograd engine: elementwise arithmetic, reductions, the matrix product, shape ops.

Each op is one :class:`~minibnn.tensor.Function` subclass named ``<Op>Fn``, with ``forward`` (on NumPy arrays)
and ``backward`` (dL/d(output) -> dL/d(inputs), before :func:`~minibnn.tensor.unbroadcast`) side by side and
the derivative in the docstring. The end of the file attaches Tensor's operators and methods, one line each:
``a + b`` is ``AddFn.apply(a, b)``, ``a.sum(axis)`` is ``SumFn.apply(a, axis=..., keepdims=...)``.
The operations of neural networks (linear, conv2d, pooling, activations) are in :mod:`minibnn.functional`.

Example:
    >>> import numpy as np
    >>> from minibnn import Tensor
    >>> a = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = MatMulFn.apply(a, np.ones((2, 1)))       # the same as a @ np.ones((2, 1))
    >>> y
    Tensor([[3.],
           [7.]], grad_fn=MatMulFn)
    >>> y.sum().backward()
    >>> a.grad                                        # dL/da = g @ bᵀ
    array([[1., 1.],
           [1., 1.]], dtype=float32)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .tensor import FLOAT_DTYPES, ArrayLike, Function, Tensor, array_of


# --------------------------------------------------------------------------------------------------------------
# Elementwise ops. Each backward returns d(out)/d(input) * grad, before unbroadcasting.
# --------------------------------------------------------------------------------------------------------------
def _check_broadcast(op: str, a: np.ndarray, b: np.ndarray) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None


class AddFn(Function):
    """out = a + b;  d/da = 1, d/db = 1."""

    def forward(self, a, b):
        _check_broadcast("add", a, b)
        return a + b

    def backward(self, grad):
        return grad, grad


class SubFn(Function):
    """out = a - b;  d/da = 1, d/db = -1."""

    def forward(self, a, b):
        _check_broadcast("sub", a, b)
        return a - b

    def backward(self, grad):
        return grad, -grad


class MulFn(Function):
    """out = a * b;  d/da = b, d/db = a."""

    def forward(self, a, b):
        _check_broadcast("mul", a, b)
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        da = grad * self.b if self.needs_input_grad[0] else None
        db = grad * self.a if self.needs_input_grad[1] else None
        return da, db


class DivFn(Function):
    """out = a / b;  d/da = 1/b, d/db = -a/b²."""

    def forward(self, a, b):
        _check_broadcast("div", a, b)
        self.a, self.b = a, b
        return a / b

    def backward(self, grad):
        da = grad / self.b if self.needs_input_grad[0] else None
        db = -grad * self.a / (self.b * self.b) if self.needs_input_grad[1] else None
        return da, db


class NegFn(Function):
    """out = -a;  d/da = -1."""

    def forward(self, a):
        return -a

    def backward(self, grad):
        return -grad


class PowFn(Function):
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


class ExpFn(Function):
    """out = exp(a);  d/da = exp(a) = out."""

    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, grad):
        return grad * self.out


class LogFn(Function):
    """out = log(a);  d/da = 1/a."""

    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, grad):
        return grad / self.a


class SqrtFn(Function):
    """out = sqrt(a);  d/da = 1 / (2·sqrt(a))."""

    def forward(self, a):
        self.out = np.sqrt(a)
        return self.out

    def backward(self, grad):
        return grad / (2 * self.out)


class AbsFn(Function):
    """out = |a|;  d/da = sign(a), taken as 0 at a = 0 (the subgradient closest to zero)."""

    def forward(self, a):
        self.a = a
        return np.abs(a)

    def backward(self, grad):
        return grad * np.sign(self.a)


class MaximumFn(Function):
    """out = max(a, b);  the gradient goes to the larger input; on a tie it is shared half and half."""

    def forward(self, a, b):
        _check_broadcast("maximum", a, b)
        self.a, self.b = a, b
        return np.maximum(a, b)

    def backward(self, grad):
        share = np.where(self.a > self.b, 1.0, np.where(self.a == self.b, 0.5, 0.0)).astype(grad.dtype)
        return grad * share, grad * (1 - share)


class MinimumFn(Function):
    """out = min(a, b);  the gradient goes to the smaller input; on a tie it is shared half and half."""

    def forward(self, a, b):
        _check_broadcast("minimum", a, b)
        self.a, self.b = a, b
        return np.minimum(a, b)

    def backward(self, grad):
        share = np.where(self.a < self.b, 1.0, np.where(self.a == self.b, 0.5, 0.0)).astype(grad.dtype)
        return grad * share, grad * (1 - share)


class WhereFn(Function):
    """out = a where condition else b;  d/da = condition, d/db = not condition."""

    def forward(self, a, b, condition):
        self.condition = np.asarray(condition, dtype=bool)
        return np.where(self.condition, a, b)

    def backward(self, grad):
        return np.where(self.condition, grad, 0), np.where(self.condition, 0, grad)


class ClipFn(Function):
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


class CastFn(Function):
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


class SumFn(Function):
    """out = Σ_axis a;  d/da = 1 for every summed element."""

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return np.sum(a, axis=axis, keepdims=keepdims)

    def backward(self, grad):
        return np.broadcast_to(_expand(grad, self.shape, self.axis, self.keepdims), self.shape)


class MeanFn(Function):
    """out = (1/n) Σ_axis a;  d/da = 1/n."""

    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return np.mean(a, axis=axis, keepdims=keepdims)

    def backward(self, grad):
        n = _count(self.shape, self.axis)
        return np.broadcast_to(_expand(grad, self.shape, self.axis, self.keepdims) / n, self.shape)


class VarFn(Function):
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


class MaxFn(Function):
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
class MatMulFn(Function):
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
class ReshapeFn(Function):
    """out = a with a new shape (same elements, same order);  d/da = grad reshaped back."""

    def forward(self, a, shape):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} into {shape}") from None

    def backward(self, grad):
        return grad.reshape(self.shape)


class TransposeFn(Function):
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


class GetItemFn(Function):
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


class ConcatenateFn(Function):
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


class StackFn(Function):
    """out = the inputs stacked along a new ``axis``;  each input's gradient is its index along that axis."""

    def forward(self, *arrays, axis=0):
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"stack: all inputs must have the same shape, got {[a.shape for a in arrays]}")
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, grad):
        return tuple(np.moveaxis(grad, self.axis, 0))


class PadFn(Function):
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
# Functional forms of the ops (exported at the top level: minibnn.maximum, minibnn.clip...)
# --------------------------------------------------------------------------------------------------------------
def maximum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise maximum of two tensors (broadcasting)."""
    return MaximumFn.apply(a, b)


def minimum(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Elementwise minimum of two tensors (broadcasting)."""
    return MinimumFn.apply(a, b)


def where(condition, a: ArrayLike, b: ArrayLike) -> Tensor:
    """Pick from ``a`` where ``condition`` is true, else from ``b`` (the condition is not differentiated)."""
    return WhereFn.apply(a, b, condition=array_of(condition))


def clip(a: ArrayLike, min_value=None, max_value=None) -> Tensor:
    """Clamp to [min_value, max_value]; the gradient passes where the value is inside, edges included."""
    return ClipFn.apply(a, low=min_value, high=max_value)


def matmul(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Matrix product with NumPy's rules (batched over leading axes)."""
    return MatMulFn.apply(a, b)


def concatenate(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    if len(tensors) == 0:
        raise ValueError("concatenate: needs at least one tensor")
    return ConcatenateFn.apply(*tensors, axis=axis)


def stack(tensors: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    if len(tensors) == 0:
        raise ValueError("stack: needs at least one tensor")
    return StackFn.apply(*tensors, axis=axis)


def pad(a: ArrayLike, pad_width, value: float = 0.0) -> Tensor:
    """Pad with a constant; ``pad_width`` as in ``numpy.pad`` (per axis (before, after))."""
    return PadFn.apply(a, pad_width=pad_width, value=value)


def exp(a): return ExpFn.apply(a)
def log(a): return LogFn.apply(a)
def sqrt(a): return SqrtFn.apply(a)
def abs(a): return AbsFn.apply(a)  # noqa: A001 - mirrors numpy.abs


# --------------------------------------------------------------------------------------------------------------
# Tensor's operators and methods: each applies one op above
# --------------------------------------------------------------------------------------------------------------
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
        return tuple(array_of(i) for i in index)
    return array_of(index)


def _reshape(self, *shape):
    """The same elements in a new shape: ``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return ReshapeFn.apply(self, shape=tuple(shape))


def _transpose(self, *axes):
    """Permute the axes (reverse them when none are given)."""
    axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    return TransposeFn.apply(self, axes=tuple(axes) if axes else None)


def _flatten(self, start_dim: int = 0, end_dim: int = -1):
    """Merge axes start_dim..end_dim into one (``x.flatten(1)`` turns (N, C, H, W) into (N, C*H*W))."""
    if self.ndim == 0:
        return self.reshape(1)
    start, end = start_dim % self.ndim, end_dim % self.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
    return self.reshape(self.shape[:start] + (int(np.prod(self.shape[start:end + 1])),) + self.shape[end + 1:])


def _var(self, axis=None, keepdims=False, ddof=0):
    """Σ (x - mean)² / (n - ddof) over ``axis`` (all axes by default)."""
    return VarFn.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims, ddof=ddof)


def _argmax(self, axis=None) -> np.ndarray:
    """Indices of the maxima (not differentiable)."""
    return np.argmax(self.data, axis=axis)


def _astype(self, dtype) -> Tensor:
    """Convert to float32 or float64 (differentiable)."""
    return CastFn.apply(self, dtype=np.dtype(dtype))


Tensor.__add__ = lambda self, other: AddFn.apply(self, other)
Tensor.__radd__ = lambda self, other: AddFn.apply(other, self)
Tensor.__sub__ = lambda self, other: SubFn.apply(self, other)
Tensor.__rsub__ = lambda self, other: SubFn.apply(other, self)
Tensor.__mul__ = lambda self, other: MulFn.apply(self, other)
Tensor.__rmul__ = lambda self, other: MulFn.apply(other, self)
Tensor.__truediv__ = lambda self, other: DivFn.apply(self, other)
Tensor.__rtruediv__ = lambda self, other: DivFn.apply(other, self)
Tensor.__neg__ = lambda self: NegFn.apply(self)
Tensor.__pow__ = lambda self, other: PowFn.apply(self, other)
Tensor.__rpow__ = lambda self, other: PowFn.apply(other, self)
Tensor.__matmul__ = lambda self, other: MatMulFn.apply(self, other)
Tensor.__rmatmul__ = lambda self, other: MatMulFn.apply(other, self)
Tensor.__getitem__ = lambda self, index: GetItemFn.apply(self, index=_plain_index(index))
Tensor.exp = lambda self: ExpFn.apply(self)
Tensor.log = lambda self: LogFn.apply(self)
Tensor.abs = lambda self: AbsFn.apply(self)
Tensor.sqrt = lambda self: SqrtFn.apply(self)
Tensor.clip = lambda self, min_value=None, max_value=None: ClipFn.apply(self, low=min_value, high=max_value)
Tensor.sum = lambda self, axis=None, keepdims=False: SumFn.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)
Tensor.mean = lambda self, axis=None, keepdims=False: MeanFn.apply(self, axis=_axes(axis, self.ndim),
                                                                   keepdims=keepdims)
Tensor.max = lambda self, axis=None, keepdims=False: MaxFn.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)
Tensor.var = _var
Tensor.argmax = _argmax
Tensor.astype = _astype
Tensor.reshape = _reshape
Tensor.transpose = _transpose
Tensor.T = property(lambda self: self.transpose(), doc="The transpose (axes reversed).")
Tensor.flatten = _flatten
