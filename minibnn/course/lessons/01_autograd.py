# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Autograd: tensors, the graph, and checking gradients
#
# > Needs the course install: `pip install "minibnn[course]"` (matplotlib, jupytext, JupyterLab). Run it as a
# > script (`python 01_autograd.py`; figures are saved to `./lesson_out/`) or open it as a notebook (`jupyter lab`,
# > then *Open With → Notebook*; figures show below their cells).
#
# A neural network learns by following gradients. minibnn computes them the way PyTorch does, in about
# 900 readable lines (`minibnn/tensor.py`). In this tutorial you will
#
# 1. build a small computation with `Tensor`s and call `backward()`;
# 2. look at the graph that `backward()` walks;
# 3. check a gradient against finite differences with `gradcheck` — and watch it catch a wrong one;
# 4. write your own differentiable op, a `Function` with `forward` and `backward` side by side.
#
# **Exercises**: 1.1 `Softplus.backward` (2 points), 1.2 `Hypot.backward` (2 points). Check your work with `minibnn assignments grade 01_autograd.py`
# (or `python -m minibnn.course grade 01_autograd.py`).

# %%
import numpy as np

from minibnn import Function, GradcheckError, Tensor, gradcheck, no_grad

# %% [markdown]
# ## 1. A tensor that remembers how it was made
#
# A `Tensor` wraps a NumPy array. With `requires_grad=True`, every operation on it is recorded, so that
# `backward()` can later compute the derivative of a result with respect to it.

# %%
x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
y = (x * x).sum()          # y = x₀² + x₁² + x₂²
y.backward()               # dy/dx = 2x
print("y      =", y.item())
print("dy/dx  =", x.grad)
assert np.allclose(x.grad, 2 * x.data)

# %% [markdown]
# ## 2. The graph
#
# Each result remembers the op that produced it (its *context*, `_ctx`) and that op remembers its inputs.
# `backward()` visits this graph once, outputs before inputs (reverse topological order), calls each op's
# `backward`, and **adds** the gradients arriving at a tensor from every place it was used. Here is the graph
# of a slightly bigger expression, printed by walking it (with a stack, not recursion — exactly as
# `Tensor.backward` does).

# %%
a = Tensor([0.5, -1.0], requires_grad=True)
b = Tensor([2.0, 3.0], requires_grad=True)
loss = ((a * b + a) ** 2).mean()


def show_graph(root: Tensor) -> None:
    """Print every op of the graph below ``root``, one line per tensor, indented by depth."""
    stack = [(root, 0)]
    while stack:
        t, depth = stack.pop()
        op = type(t._ctx).__name__ if t._ctx is not None else ("leaf" if t.requires_grad else "constant")
        print("    " * depth + f"{op:<8} shape={t.shape}")
        if t._ctx is not None:
            stack.extend((parent, depth + 1) for parent in reversed(t._ctx.inputs))


show_graph(loss)

# %% [markdown]
# `a` is used twice (in `a * b` and in `+ a`), so its gradient is the sum of two contributions:
# d/da of mean((ab + a)²) = 2(ab + a)(b + 1)/2.

# %%
loss.backward()
expected = (a.data * b.data + a.data) * (b.data + 1)
print("autograd:", a.grad, "  by hand:", expected)
assert np.allclose(a.grad, expected)

# %% [markdown]
# Gradients **accumulate**: a second `backward()` adds to `.grad`. Training loops therefore clear the
# gradients before each step (`optimizer.zero_grad()`, or `x.grad = None` by hand). Under `no_grad()`
# nothing is recorded, which is what evaluation wants.

# %%
x.grad = None
for _ in range(2):
    (x * x).sum().backward()
print("after two backward passes:", x.grad, "(twice 2x)")

with no_grad():
    z = (x * x).sum()
print("recorded under no_grad?", z.requires_grad)

# %% [markdown]
# ## 3. Broadcasting, undone in one place
#
# Adding a bias of shape (3,) to a batch of shape (4, 3) copies it along the rows. Every row then depends on
# the bias, so its gradient is the *sum over rows* of the upstream gradient. No op handles this itself: the
# engine sums broadcast axes back in a single helper, `minibnn.tensor.unbroadcast`.

# %%
batch = Tensor(np.arange(12.0).reshape(4, 3))
bias = Tensor(np.zeros(3), requires_grad=True)
(batch + bias).sum().backward()
print("bias.grad =", bias.grad, "(one per row: 4)")

# %% [markdown]
# ## 4. gradcheck: trust, but verify
#
# A derivative can be approximated without any calculus by central finite differences,
#
# $$\frac{\partial f}{\partial x_k} \approx \frac{f(x + \varepsilon e_k) - f(x - \varepsilon e_k)}{2\varepsilon},$$
#
# with an error of order ε². `minibnn.gradcheck(fn, *inputs)` builds the whole Jacobian both ways in float64
# and compares them element by element (it also checks shapes, dtypes, that a zero upstream gradient gives
# zero, and that `backward` can run twice). It returns True or raises a `GradcheckError` naming the input
# and the element that differ.

# %%
rng = np.random.default_rng(0)
w = rng.normal(size=(3, 4))
v = rng.normal(size=(4, 2))
print(gradcheck(lambda p, q: (p @ q).abs().sum(axis=0), w, v))

# %% [markdown]
# Now an op with a **wrong** backward: the derivative of x² is 2x, but this one forgets the 2.
# Its forward is right, so nothing looks wrong — until gradcheck compares.

# %%
class BadSquare(Function):
    """out = x²; the backward below is deliberately wrong (it should be 2x·grad)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        return grad * self.x          # bug: missing factor 2


try:
    gradcheck(BadSquare.apply, rng.normal(size=5))
except GradcheckError as error:
    print("gradcheck caught it:\n ", error)
else:
    raise AssertionError("gradcheck should have rejected BadSquare")

# %% [markdown]
# ## 5. Your own op: a `Function`
#
# An op is a subclass of `minibnn.Function` with two methods written side by side:
#
# * `forward(self, *arrays, **options)` gets NumPy arrays and returns the output array. It may store on
#   `self` what the backward pass needs.
# * `backward(self, grad)` gets dL/d(output) and returns dL/d(input) — one array per input (a tuple when
#   there are several). Do **not** worry about broadcasting: the engine sums it back for you.
#
# `Op.apply(tensors...)` runs it and records it in the graph.
#
# ### Exercise 1.1 — `Softplus.backward` (2 points)
#
# softplus(x) = log(1 + eˣ) is a smooth ReLU. Its derivative is the logistic sigmoid σ(x) = 1 / (1 + e⁻ˣ).
# Write `backward` so that it returns dL/dx = grad · σ(x). A numerically safe `sigmoid` is given.

# %%
def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^-x), computed without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Softplus(Function):
    """out = log(1 + eˣ);  d/dx = σ(x)."""

    def forward(self, x):
        self.x = x
        return np.logaddexp(0, x)       # log(e⁰ + eˣ), stable for large x

    def backward(self, grad):
        # BEGIN SOLUTION: 1.1 Softplus.backward
        return grad * sigmoid(self.x)
        # END SOLUTION


x = rng.normal(size=(3, 4)) * 3
print("Softplus passes gradcheck:", gradcheck(Softplus.apply, x))

# %% [markdown]
# ### Exercise 1.2 — `Hypot.backward` (2 points), an op with two inputs
#
# hypot(a, b) = √(a² + b²). Its partial derivatives are a / hypot and b / hypot. Return **both** gradients
# as a tuple `(da, db)`. Then check that it also works when `b` is broadcast against `a` — you should not have
# to do anything for that.

# %%
class Hypot(Function):
    """out = √(a² + b²);  d/da = a / out,  d/db = b / out."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = np.hypot(a, b)
        return self.out

    def backward(self, grad):
        # BEGIN SOLUTION: 1.2 Hypot.backward
        return grad * self.a / self.out, grad * self.b / self.out
        # END SOLUTION


a = rng.normal(size=(4, 3))
b = rng.normal(size=(3,))              # broadcast along the rows of a
print("Hypot passes gradcheck:", gradcheck(Hypot.apply, a, b))

# %% [markdown]
# ## 6. Using the new ops
#
# Ops compose with everything else. Gradient descent on Σᵢ softplus(hypot(pᵢ, qᵢ) − 1), which grows with the
# distance of each point (pᵢ, qᵢ) from the origin, moves both points towards it (the distances hover near 0
# at the end: hypot has a kink there, and the step size is fixed).

# %%
p = Tensor([3.0, -2.0], requires_grad=True)
q = Tensor([1.0, 4.0], requires_grad=True)
for step in range(50):
    objective = Softplus.apply(Hypot.apply(p, q) - 1.0).sum()
    p.grad = q.grad = None
    objective.backward()
    p.data -= 0.5 * p.grad
    q.data -= 0.5 * q.grad
    if step % 10 == 0:
        print(f"step {step:2d}  objective {objective.item():.4f}  distances {np.hypot(p.data, q.data).round(3)}")

# %% [markdown]
# **What to remember.** An op is a forward and a backward side by side; the engine handles the graph, the
# accumulation and the broadcasting; and `gradcheck` is how you know a backward is right. Next,
# `02_quantizers.py` meets an op whose true derivative is useless: the sign function.
