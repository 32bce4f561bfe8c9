"""The autograd engine: every op against finite differences, broadcasting, modes, errors."""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import minibnn as mb
from minibnn import Function, Tensor, gradcheck, no_grad
from minibnn.tensor import unbroadcast
from strategies import CHEAP, MEDIUM, arrays, broadcastable_pair, positive_arrays, separated, shapes

# ---- elementwise binary ops with broadcasting --------------------------------------------------------------
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "maximum": mb.maximum,
    "minimum": mb.minimum,
}


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=MEDIUM)
@given(pair=broadcastable_pair())
def test_binary_ops_gradcheck_with_broadcasting(name, pair):
    a, b = pair
    if name in ("maximum", "minimum"):  # the kink of max/min is at a == b: keep the operands apart
        assume(np.all(np.abs(np.subtract(a, b)) > 1e-3))
    assert gradcheck(BINARY[name], a, b)


@settings(max_examples=MEDIUM)
@given(pair=broadcastable_pair())
def test_div_gradcheck_with_broadcasting(pair):
    a, b = pair
    assert gradcheck(lambda x, y: x / y, a, np.abs(b) + 0.5)


@settings(max_examples=MEDIUM)
@given(pair=broadcastable_pair(low=0.5, high=2.0))
def test_pow_gradcheck_both_operands(pair):
    a, b = pair
    assert gradcheck(lambda x, y: x ** y, a, b)


# ---- elementwise unary ops ----------------------------------------------------------------------------------
UNARY = {
    "neg": (lambda x: -x, arrays),
    "exp": (lambda x: x.exp(), arrays),
    "log": (lambda x: x.log(), positive_arrays),
    "sqrt": (lambda x: x.sqrt(), positive_arrays),
    "abs": (lambda x: (x + 10.0).abs() + (x - 10.0).abs(), arrays),  # shifted off the kink at 0
    "square": (lambda x: x ** 2.0, arrays),
    "clip": (lambda x: mb.clip(x * 0.5 + 0.05, -1.0, 1.0), arrays),
    "cast": (lambda x: x.astype(np.float32).astype(np.float64) * 1.0, arrays),
}


@pytest.mark.parametrize("name", sorted(set(UNARY) - {"cast"}))
@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_unary_ops_gradcheck(name, data):
    fn, strategy = UNARY[name]
    x = data.draw(strategy(shapes()))
    if name == "clip":  # keep values off the clip edges ±1 (in x*0.5 + 0.05 units)
        x = np.where(np.abs(np.abs(x * 0.5 + 0.05) - 1) < 1e-3, x + 0.01, x)
    assert gradcheck(fn, x)


def test_clip_gradient_is_one_on_the_edges_and_zero_outside():
    x = Tensor([-2.0, -1.0, 0.0, 1.0, 2.0], requires_grad=True)
    mb.clip(x, -1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 1, 1, 1, 0])


def test_abs_gradient_at_zero_is_zero():
    x = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_array_equal(x.grad, [-1, 0, 1])


def test_maximum_shares_the_gradient_on_ties():
    a, b = Tensor([1.0, 2.0], requires_grad=True), Tensor([1.0, 3.0], requires_grad=True)
    mb.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.5, 0])
    np.testing.assert_array_equal(b.grad, [0.5, 1])


@settings(max_examples=MEDIUM)
@given(pair=broadcastable_pair(), data=st.data())
def test_where_gradcheck(pair, data):
    a, b = pair
    shape = np.broadcast_shapes(a.shape, b.shape)
    cond = data.draw(st.lists(st.booleans(), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    cond = np.array(cond, dtype=bool).reshape(shape)
    assert gradcheck(lambda x, y: mb.where(cond, x, y), a, b)


# ---- reductions ---------------------------------------------------------------------------------------------
def _axis_strategy(ndim):
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                     st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple))


@pytest.mark.parametrize("reduction", ["sum", "mean", "var", "max"])
@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_reductions_gradcheck(reduction, data):
    shape = data.draw(shapes(max_side=3))
    x = data.draw(separated(shape)) if reduction == "max" else data.draw(arrays(shape))
    axis = data.draw(_axis_strategy(len(shape)))
    keepdims = data.draw(st.booleans())
    if reduction == "var":
        n = x.size if axis is None else int(np.prod([shape[a] for a in np.atleast_1d(axis)]))
        if n < 2:
            return
        ddof = data.draw(st.integers(0, 1))
        fn = lambda t: t.var(axis=axis, keepdims=keepdims, ddof=ddof)  # noqa: E731
        np.testing.assert_allclose(fn(Tensor(x)).data, np.var(x, axis=axis, keepdims=keepdims, ddof=ddof))
    else:
        fn = lambda t: getattr(t, reduction)(axis=axis, keepdims=keepdims)  # noqa: E731
        np.testing.assert_allclose(fn(Tensor(x)).data, getattr(np, reduction)(x, axis=axis, keepdims=keepdims))
    assert gradcheck(fn, x)


def test_max_shares_gradient_between_ties():
    x = Tensor([[1.0, 3.0, 3.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0.5, 0.5]])


# ---- matmul -------------------------------------------------------------------------------------------------
@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_matmul_gradcheck_batched_and_vectors(data):
    m, k, n = (data.draw(st.integers(1, 4)) for _ in range(3))
    batch = data.draw(st.sampled_from([(), (2,), (1,), (2, 1)]))
    batch_b = data.draw(st.sampled_from([(), batch[-1:] if batch else ()]))
    a_shape = data.draw(st.sampled_from([(k,), batch + (m, k)]))
    b_shape = data.draw(st.sampled_from([(k,), batch_b + (k, n)]))
    a, b = data.draw(arrays(a_shape)), data.draw(arrays(b_shape))
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b)
    assert gradcheck(lambda x, y: x @ y, a, b)


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(32, 783\) and \(784, 10\)"):
        Tensor(np.zeros((32, 783))) @ Tensor(np.zeros((784, 10)))


# ---- shape ops ----------------------------------------------------------------------------------------------
@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_shape_ops_gradcheck(data):
    shape = data.draw(shapes(min_dims=2, max_dims=3))
    x = data.draw(arrays(shape))
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    assert gradcheck(lambda t: t.reshape(-1) * 2.0, x)
    assert gradcheck(lambda t: t.transpose(perm), x)
    assert gradcheck(lambda t: t.flatten(1), x)
    assert gradcheck(lambda t: t.T, x)


@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_getitem_gradcheck_basic_and_advanced(data):
    shape = data.draw(shapes(min_dims=2, max_dims=2, min_side=2))
    x = data.draw(arrays(shape))
    rows = np.array(data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=5)))
    assert gradcheck(lambda t: t[1:, ::2], x)
    assert gradcheck(lambda t: t[rows], x)  # repeated rows accumulate
    assert gradcheck(lambda t: t[..., 0], x)
    assert gradcheck(lambda t: t[x > 0] if (x > 0).any() else t[0], x)


def test_getitem_repeated_indices_accumulate():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[np.array([0, 0, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad, [2, 0, 1])


@settings(max_examples=MEDIUM)
@given(data=st.data())
def test_concatenate_stack_pad_gradcheck(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    axis = data.draw(st.integers(0, len(shape) - 1))
    other = shape[:axis] + (data.draw(st.integers(1, 3)),) + shape[axis + 1:]
    a, b, c = data.draw(arrays(shape)), data.draw(arrays(other)), data.draw(arrays(shape))
    assert gradcheck(lambda x, y: mb.concatenate([x, y], axis=axis), a, b)
    assert gradcheck(lambda x, y: mb.stack([x, y], axis=axis), a, c)
    widths = [tuple(data.draw(st.integers(0, 2)) for _ in range(2)) for _ in shape]
    assert gradcheck(lambda x: mb.pad(x, widths, value=1.5), a)


# ---- the engine itself --------------------------------------------------------------------------------------
def test_gradient_accumulates_over_shared_subexpressions():
    x = Tensor([2.0], requires_grad=True)
    y = x * x  # used twice below
    (y + y * x).sum().backward()  # d/dx (x² + x³) = 2x + 3x²
    np.testing.assert_allclose(x.grad, [2 * 2 + 3 * 4])


def test_backward_twice_accumulates_into_leaves():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * 3.0).sum()
    y.backward()
    y.backward()
    np.testing.assert_array_equal(x.grad, [6, 6])


def test_deep_chain_does_not_recurse():
    x = Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0])


def test_unbroadcast_sums_added_and_stretched_axes():
    g = np.ones((4, 2, 3))
    np.testing.assert_array_equal(unbroadcast(g, (2, 1)), np.full((2, 1), 12.0))
    np.testing.assert_array_equal(unbroadcast(g, ()), 24.0)


def test_no_grad_context_and_decorator_restore_the_mode():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        assert not (x * 2.0).requires_grad
        with mb.enable_grad():
            assert (x * 2.0).requires_grad
        assert not mb.is_grad_enabled()
    assert mb.is_grad_enabled()

    @no_grad()
    def f(t):
        return t * 2.0

    assert not f(x).requires_grad
    assert mb.is_grad_enabled()
    assert (x * 2.0).requires_grad


def test_detach_cuts_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x.detach() * x).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, [1, 2])


def test_tensor_hook_sees_and_can_replace_the_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    seen = []
    h.register_hook(lambda g: seen.append(g.copy()) or g * 0.0)
    h.sum().backward()
    np.testing.assert_array_equal(seen[0], [1, 1])
    np.testing.assert_array_equal(x.grad, [0, 0])


def test_float32_stays_float32():
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    y = ((x * 2 + 1.5) / 3 - x.mean(axis=0) + mb.maximum(x, 0.5) + x.var(axis=1, keepdims=True)) ** 2
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    assert Tensor([1, 2]).dtype == np.float32 and Tensor(3.0).dtype == np.float32


def test_float64_is_kept_when_given():
    assert Tensor(np.ones(2)).dtype == np.float64


def test_mixed_dtypes_raise_instead_of_promoting():
    a = Tensor(np.ones(2, dtype=np.float32))
    b = Tensor(np.ones(2, dtype=np.float64))
    with pytest.raises(TypeError, match="float32 and float64"):
        a + b


def test_bad_data_dtype_is_rejected():
    with pytest.raises(TypeError, match="numeric"):
        Tensor(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="float32 or float64"):
        Tensor([1.0], dtype=np.int32)


def test_backward_of_non_scalar_needs_a_gradient():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(2, 2\)"):
        (x * 2.0).backward()
    with pytest.raises(ValueError, match=r"expected the tensor's shape \(2, 2\)"):
        (x * 2.0).backward(np.ones(3))
    (x * 2.0).backward(np.ones((2, 2)))
    np.testing.assert_array_equal(x.grad, np.full((2, 2), 2.0))


def test_backward_without_requires_grad_explains():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2.0).backward()


def test_incompatible_broadcast_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4,\)"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))


def test_reshape_and_axis_errors():
    with pytest.raises(ValueError, match=r"shape \(2, 3\) into \(4,\)"):
        Tensor(np.ones((2, 3))).reshape(4)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        Tensor(np.ones((2, 3))).sum(axis=2)


# ---- gradcheck checks itself ---------------------------------------------------------------------------------
class WrongSquare(Function):
    """out = a²  with a deliberately wrong backward (a instead of 2a)."""

    def forward(self, a):
        self.a = a
        return a * a

    def backward(self, grad):
        return grad * self.a


class LeakyZero(Function):
    """out = 2a with a backward that ignores the upstream gradient (returns 2 even when grad = 0)."""

    def forward(self, a):
        return 2 * a

    def backward(self, grad):
        return np.full_like(grad, 2.0)


def test_gradcheck_rejects_a_wrong_gradient_and_names_the_element():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(mb.GradcheckError, match=r"WrongSquare.apply: input 0 \(shape \(2, 2\)\), element \(1, 1\)"):
        gradcheck(WrongSquare.apply, x)
    assert gradcheck(WrongSquare.apply, x, raise_exception=False) is False


def test_gradcheck_rejects_a_backward_that_ignores_the_upstream_gradient():
    with pytest.raises(mb.GradcheckError, match="zero upstream gradient"):
        gradcheck(LeakyZero.apply, np.array([1.0, 2.0]))


def test_jacobian_and_numerical_jacobian_of_a_product():
    from minibnn.gradcheck import jacobian, numerical_jacobian
    a = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    b = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    analytic = jacobian(lambda x, y: x @ y, a, b)
    numerical = numerical_jacobian(lambda x, y: x @ y, a, b)
    expected_a = np.array([[0.5, -1.0, 0.0, 0.0], [0.0, 0.0, 0.5, -1.0]])   # d(a @ b)_i / d a_jk = δ_ij b_k
    np.testing.assert_allclose(analytic[0], expected_a)
    np.testing.assert_allclose(analytic[1], a.data)                          # d(a @ b) / db = a
    for j, n in zip(analytic, numerical):
        np.testing.assert_allclose(j, n, atol=1e-8)


def test_gradcheck_rejects_a_gradient_of_the_wrong_shape():
    def fn(t):
        t.register_hook(lambda g: np.full(3, g.sum()))   # replaces the leaf's (2,) gradient by a (3,) one
        return t * 1.0
    with pytest.raises(mb.GradcheckError, match=r"input 0: gradient has shape \(3,\)"):
        gradcheck(fn, np.ones(2))


def test_gradcheck_rejects_float32_outputs():
    with pytest.raises(mb.GradcheckError, match="float64"):
        gradcheck(lambda t: t.astype(np.float32), np.ones(2))


# ---- operands that are not real numbers are refused, naming the op (issue 10, defect 6) ---------------------
BAD_OPERANDS = [None, 1j, np.ones((2, 3), dtype=complex), np.array(["a", "b", "c"]), np.array([object()] * 3),
                "abc"]


@pytest.mark.parametrize("bad", BAD_OPERANDS, ids=["None", "complex", "complex array", "strings", "objects", "str"])
@pytest.mark.parametrize("op, name", [(lambda t, b: t + b, "AddFn"), (lambda t, b: b * t, "MulFn"),
                                      (lambda t, b: t @ b, "MatMulFn"), (lambda t, b: mb.maximum(t, b), "MaximumFn")])
def test_ops_refuse_operands_that_are_not_real(op, name, bad):
    t = Tensor(np.ones((2, 3), np.float32))
    with _no_warning():
        with pytest.raises(TypeError, match=rf"^{name}: operand [01] must be a Tensor, a real number or an array"):
            op(t, bad)


def test_none_operand_error_names_the_op_and_the_value():
    with pytest.raises(TypeError, match=r"AddFn: operand 1 .* got None \(NoneType\)"):
        Tensor(np.ones((2, 3), np.float32)) + None
    with pytest.raises(TypeError, match="the complex number 1j"):
        Tensor(np.ones(2)) - 1j


class _no_warning:
    """A context in which any warning (e.g. NumPy's ComplexWarning) is an error."""

    def __enter__(self):
        import warnings
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)
