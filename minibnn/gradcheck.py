"""gradcheck: compare the gradients autograd computes with central finite differences, in float64.

For a function f of tensors x_1..x_n with output y, :func:`jacobian` gets the Jacobian from autograd row by row
(one ``backward`` per output element, with a one-hot upstream gradient); :func:`numerical_jacobian` gets it
from finite differences column by column:

    dy/dx[k] ≈ (f(x + eps·e_k) - f(x - eps·e_k)) / (2·eps)        (error O(eps²))

The two must agree element by element within ``atol + rtol·|numerical|``. gradcheck also checks what a
correct backward must satisfy besides the values: gradients have the inputs' shapes and dtypes, a zero
upstream gradient gives zero, and running backward twice gives the same answer.

Example:
    >>> import numpy as np
    >>> from minibnn import Tensor, gradcheck
    >>> x = np.random.default_rng(0).normal(size=(3, 4))
    >>> gradcheck(lambda t: (t * t).sum(axis=1), x)
    True
"""
from __future__ import annotations

from typing import Callable, List

import numpy as np

from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when autograd and finite differences disagree."""


def _name(fn) -> str:
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):  # Function.apply of an op class: name the op
        return f"{owner.__name__}.{fn.__name__}"
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def jacobian(fn: Callable[..., Tensor], *inputs: Tensor) -> List[np.ndarray]:
    """The Jacobians of ``fn`` computed by autograd: one (out.size, x.size) matrix per input x.

    Row j is the gradient of output element j: one ``backward`` with the one-hot upstream gradient e_j.
    An input the output does not depend on gets a zero matrix. ``inputs`` are tensors with
    ``requires_grad=True``; their ``.grad`` is overwritten.

    Example:
        >>> x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        >>> jacobian(lambda t: t * t, x)[0]           # d(x²)/dx = diag(2x)
        array([[2., 0.],
               [0., 4.]])
    """
    out = fn(*inputs)
    rows = [np.zeros((out.size, x.size)) for x in inputs]
    for j in range(out.size):
        onehot = np.zeros(out.shape)
        onehot.flat[j] = 1.0
        for x in inputs:
            x.grad = None
        out.backward(onehot)
        for i, x in enumerate(inputs):
            if x.grad is not None:
                rows[i][j] = x.grad.ravel()
    return rows


def numerical_jacobian(fn: Callable[..., Tensor], *inputs: Tensor, eps: float = 1e-6) -> List[np.ndarray]:
    """The Jacobians of ``fn`` by central finite differences: one (out.size, x.size) matrix per input x.

    Column k of input x is  (fn(x + eps·e_k) - fn(x - eps·e_k)) / (2·eps)  (error O(eps²)), computed under
    ``no_grad`` by changing ``x.data`` in place and putting it back.

    Example:
        >>> x = Tensor(np.array([1.0, 2.0]))
        >>> numerical_jacobian(lambda t: t * t, x)[0].round(6)
        array([[2., 0.],
               [0., 4.]])
    """
    columns = []
    with no_grad():
        size = fn(*inputs).size
        for x in inputs:
            jac = np.zeros((size, x.size))
            flat = x.data.reshape(-1)
            for k in range(x.size):
                saved = flat[k]
                flat[k] = saved + eps
                plus = np.array(fn(*inputs).data, dtype=np.float64).ravel()
                flat[k] = saved - eps
                minus = np.array(fn(*inputs).data, dtype=np.float64).ravel()
                flat[k] = saved
                jac[:, k] = (plus - minus) / (2 * eps)
            columns.append(jac)
    return columns


def gradcheck(fn: Callable[..., Tensor], *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Check ``fn``'s autograd gradients against central finite differences in float64.

    The checks, in order: the output is a float64 tensor that depends on the inputs; a zero upstream gradient
    gives zero gradients; a second backward adds the same gradients again (re-entrant); every gradient has
    its input's shape and dtype; and :func:`jacobian` equals :func:`numerical_jacobian` element by element.

    Args:
        fn: a function of tensors returning a tensor (any shape). It must only use differentiable ops on its
            inputs; constants may be closed over. It is called with float64 copies of ``inputs``.
        *inputs: arrays or tensors; each is differentiated.
        eps: the finite-difference step.
        atol, rtol: an element passes if |autograd - numerical| <= atol + rtol·|numerical|.
        raise_exception: raise :class:`GradcheckError` on failure (default) instead of returning False.

    Returns:
        True if every check passes.

    Raises:
        GradcheckError: naming the function, the input, the element and the two values that differ most.
    """
    name = _name(fn)
    xs = [Tensor(np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64), requires_grad=True)
          for x in inputs]

    def fail(message: str) -> bool:
        if raise_exception:
            raise GradcheckError(f"gradcheck of {name}: {message}")
        return False

    out = fn(*xs)
    if not isinstance(out, Tensor):
        return fail(f"the function must return a Tensor, got {type(out).__name__}")
    if out.dtype != np.float64:
        return fail(f"the output is {out.dtype}; every op must keep float64 inputs in float64")
    if not out.requires_grad:
        return fail("the output does not depend on any input through differentiable ops")

    for x in xs:
        x.grad = None
    out.backward(np.zeros(out.shape))
    for i, x in enumerate(xs):
        if x.grad is not None and np.any(x.grad != 0):
            return fail(f"input {i}: a zero upstream gradient gave a non-zero gradient")
    upstream = np.random.default_rng(0).normal(size=out.shape)
    for x in xs:
        x.grad = None
    out.backward(upstream)
    once = [None if x.grad is None else x.grad.copy() for x in xs]
    out.backward(upstream)
    for i, (x, g) in enumerate(zip(xs, once)):
        if g is not None and not np.allclose(x.grad, 2 * g, rtol=1e-12, atol=1e-12):
            return fail(f"input {i}: a second backward did not add the same gradient again (not re-entrant)")
        if g is not None and (g.shape != x.shape or g.dtype != x.dtype):
            return fail(f"input {i}: gradient has shape {g.shape} and dtype {g.dtype}, "
                        f"expected shape {x.shape} and dtype {x.dtype}")

    analytic, numerical = jacobian(fn, *xs), numerical_jacobian(fn, *xs, eps=eps)
    for i, (a, n) in enumerate(zip(analytic, numerical)):
        excess = np.abs(a - n) - (atol + rtol * np.abs(n))
        if excess.size and (excess > 0).any():
            j, k = np.unravel_index(np.argmax(excess), excess.shape)
            element = np.unravel_index(k, xs[i].shape) if xs[i].ndim else ()
            out_element = np.unravel_index(j, out.shape) if out.ndim else ()
            return fail(
                f"input {i} (shape {xs[i].shape}), element {tuple(int(e) for e in element)}, "
                f"output element {tuple(int(e) for e in out_element)}: autograd gives {a[j, k]:.6g}, finite "
                f"differences give {n[j, k]:.6g} (difference {abs(a[j, k] - n[j, k]):.3g}, allowed "
                f"{atol + rtol * abs(n[j, k]):.3g}); {int((excess > 0).sum())} of {excess.size} entries differ"
            )

    return True


def gradcheck_module(module, *inputs, **kwargs) -> bool:
    """:func:`gradcheck` of a module with respect to its inputs *and* every one of its parameters, in float64.

    The module is converted to float64 in place (``module.astype(np.float64)``). For the check, the tensors
    gradcheck differentiates are put in place of the module's parameters during each call, and the
    parameters are put back afterwards. Keyword arguments go to :func:`gradcheck`.

    Example:
        >>> from minibnn.layers import Linear
        >>> gradcheck_module(Linear(3, 2), np.ones((4, 3)))
        True
    """
    module.astype(np.float64)
    found = list(module._parameter_slots())
    slots = [(mod, attr) for _, mod, attr, _ in found]

    def call(*args):
        xs, params = args[:len(inputs)], args[len(inputs):]
        saved = [getattr(mod, attr) for mod, attr in slots]
        try:
            for (mod, attr), p in zip(slots, params):
                object.__setattr__(mod, attr, p)
            return module(*xs)
        finally:
            for (mod, attr), p in zip(slots, saved):
                object.__setattr__(mod, attr, p)

    call.__qualname__ = f"{type(module).__name__}(...)"
    return gradcheck(call, *inputs, *[p.data for _, _, _, p in found], **kwargs)
