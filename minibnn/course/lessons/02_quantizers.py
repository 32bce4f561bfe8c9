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
# # 02 · Quantizers: sign, and gradients that lie usefully
#
# > Needs the course install: `pip install "minibnn[course]"` (matplotlib, jupytext, JupyterLab). Run it as a
# > script (`python 02_quantizers.py`; figures are saved to `./lesson_out/`) or open it as a notebook (`jupyter lab`,
# > then *Open With → Notebook*; figures show below their cells).
#
# A binary neural network (BNN) computes with weights and activations in {-1, +1}, obtained with the sign
# function. This tutorial is about the one obstacle to training such a network — **sign has no useful
# gradient** — and the standard way around it, the *straight-through estimator* (STE).
#
# You will
#
# 1. see why gradient descent cannot move a weight through sign;
# 2. implement the clipped STE of BinaryNet (Hubara et al. 2016) yourself;
# 3. compare the pseudo-gradients of the literature: hardtanh, tanh, Bi-Real's ApproxSign and BNN+'s
#    SignSwish (Darabi et al. 2018), and redraw BNN+'s Fig. 4;
# 4. meet the magnitude-aware sign, trainable β, and the Larq names minibnn understands.
#
# **Exercises**: 2.1 `ClippedSteSign.forward` (2 points), 2.2 `ClippedSteSign.backward` (2 points), 2.3 `signswish_derivative` (2 points). Check your work with `minibnn assignments grade 02_quantizers.py`
# (or `python -m minibnn.course grade 02_quantizers.py`).

# %%
import matplotlib.pyplot as plt
import numpy as np

from minibnn import Function, Tensor, gradcheck
from minibnn import quantizers, theory
from minibnn.course.notebook import show
from minibnn.plotting import plot_quantizers
from minibnn.quantizers import get, sign_swish


# %% [markdown]
# ## 1. sign has derivative 0 almost everywhere
#
# minibnn's convention is sign(0) = +1 (so the output is always ±1). Away from 0 the function is flat, so its
# derivative is 0; at 0 it jumps and has no derivative at all. Finite differences say the same:

# %%
def sign(x):
    """sign with sign(0) = +1, on NumPy arrays."""
    return np.where(np.asarray(x) >= 0, 1.0, -1.0)


eps = 1e-4
for x0 in (-0.7, 0.3, 1.5):
    slope = (sign(x0 + eps) - sign(x0 - eps)) / (2 * eps)
    print(f"d sign/dx at {x0:+.1f} ≈ {slope}")

# %% [markdown]
# What does that do to learning? One weight w, one input x = 1, and a target t = -1: the loss
# (sign(w)·x - t)² is 4 while w > 0 and 0 once w < 0. With the *true* derivative the gradient is 0 and w
# never moves:

# %%
class TrueSign(Function):
    """out = sign(x);  d/dx = 0 (the honest derivative, almost everywhere)."""

    def forward(self, x):
        return sign(x).astype(x.dtype)

    def backward(self, grad):
        return np.zeros_like(grad)


def train_one_weight(sign_op, steps=5, lr=0.3):
    w = Tensor([0.5], requires_grad=True)
    for _ in range(steps):
        loss = ((sign_op(w) * 1.0 - (-1.0)) ** 2).sum()
        w.grad = None
        loss.backward()
        w.data -= lr * w.grad
    return w.data[0], loss.item()


print("true derivative: w = %.2f, last loss = %.1f" % train_one_weight(TrueSign.apply))

# %% [markdown]
# ## 2. The straight-through estimator
#
# The fix (Hinton's lectures; Bengio et al. 2013; BinaryNet, Hubara et al. 2016): keep sign in the forward
# pass, but in the backward pass pretend it was hardtanh(x) = clip(x, -1, 1), whose derivative is 1 on
# [-1, 1] and 0 outside:
#
# $$\text{forward: } q = \operatorname{sign}(x), \qquad \text{backward: } \frac{\partial L}{\partial x} \approx \frac{\partial L}{\partial q}\,\mathbb 1_{|x| \le c}.$$
#
# The window |x| ≤ c (c = `clip_value`, 1 by default) matters: outside it the gradient is cancelled, so a
# latent weight far from 0 stops moving (Sari et al. 2019 call it the clipped STE 1_[-1,1]).
#
# ### Exercises 2.1 — `ClippedSteSign.forward` (2 points) and 2.2 — `ClippedSteSign.backward` (2 points)
#
# Write `forward` (sign with sign(0) = +1, in the input's dtype; remember what backward needs) and `backward`
# (the upstream gradient where |x| ≤ clip_value, **edges included**, 0 elsewhere; `clip_value=None` lets the
# gradient through everywhere).

# %%
class ClippedSteSign(Function):
    """out = sign(x) (sign(0) = +1);  d/dx ≈ 1 on |x| <= clip_value (all x if None), 0 elsewhere."""

    def forward(self, x, clip_value=1.0):
        # BEGIN SOLUTION: 2.1 ClippedSteSign.forward
        if clip_value is None:
            self.mask = np.ones(x.shape, dtype=x.dtype)
        else:
            self.mask = (np.abs(x) <= clip_value).astype(x.dtype)
        return np.where(x >= 0, 1, -1).astype(x.dtype)
        # END SOLUTION

    def backward(self, grad):
        # BEGIN SOLUTION: 2.2 ClippedSteSign.backward
        return grad * self.mask
        # END SOLUTION


print("clipped STE:     w = %.2f, last loss = %.1f" % train_one_weight(ClippedSteSign.apply))

# %% [markdown]
# The weight now crosses zero and the loss drops to 0. Compare your op with the library's `ste_sign`
# on the values where mistakes hide: exact zeros (including -0.0) and the clip edges ±1.

# %%
xs = np.array([-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0], dtype=np.float32)
mine = Tensor(xs, requires_grad=True)
ClippedSteSign.apply(mine).sum().backward()
reference = Tensor(xs, requires_grad=True)
quantizers.ste_sign(reference).sum().backward()
print("x        ", xs)
print("forward  ", ClippedSteSign.apply(xs).data, " library:", quantizers.ste_sign(xs).data)
print("backward ", mine.grad, " library:", reference.grad)
assert np.array_equal(mine.grad, reference.grad)

# %% [markdown]
# ## 3. A zoo of pseudo-gradients
#
# The clipped STE is a crude approximation of sign's "derivative". Others were proposed, all with sign in the
# forward pass and a different backward. Every quantizer module has `pseudo_gradient(x)`, returning the
# forward values and the backward slope at each x. Names (the strings BNN+'s Table 1 uses are aliases):
#
# | name | pseudo-gradient | source |
# | --- | --- | --- |
# | `ste_sign` = `htanh` | 1 on abs(x) ≤ 1 | Hubara et al. 2016 |
# | `tanh_sign` = `tanh` | 1 - tanh²(x) | |
# | `approx_sign` = `bireal` | 2 - 2·abs(x) on abs(x) ≤ 1 | Bi-Real Net, Liu et al. 2018 |
# | `swish_sign` = `ss_5`, `ss_10` | dSS_β/dx, β = 5, 10 | BNN+, Darabi et al. 2018, eq. 3 |

# %%
grid = np.array([-1.5, -1.0, -0.5, -0.1, 0.0, 0.1, 0.5, 1.0, 1.5], dtype=np.float32)
print("x".ljust(12) + "".join(f"{v:>7.1f}" for v in grid))
for name in ("htanh", "tanh", "bireal", "ss_5", "ss_10"):
    _, slope = get(name).pseudo_gradient(grid)
    print(name.ljust(12) + "".join(f"{v:>7.2f}" for v in slope))

# %% [markdown]
# ## 4. SignSwish (BNN+)
#
# Darabi et al. 2018 (eq. 2) smooth the sign with SignSwish, SS_β(x) = 2σ(βx)[1 + βx(1 - σ(βx))] - 1, and use
# its derivative as the pseudo-gradient. With z = βx it is (eq. 3)
#
# $$\frac{d\,SS_\beta}{dx} = \frac{\beta\,\bigl(2 - \beta x \tanh(\beta x / 2)\bigr)}{1 + \cosh(\beta x)}.$$
#
# Unlike the STEs above it turns **negative** for |x| beyond a zero near 2.4/β: a weight pushed far out is
# pulled back a little.
#
# ### Exercise 2.3 — `signswish_derivative` (2 points)
#
# Implement eq. 3 on NumPy arrays (x an array, β > 0 a number). cosh overflows to inf for |βx| > 710; the
# formula then correctly gives 0, so silencing the overflow warning is enough.

# %%
def signswish_derivative(x, beta=5.0):
    """dSS_β/dx = β(2 - βx·tanh(βx/2)) / (1 + cosh βx)  (Darabi et al. 2018, eq. 3)."""
    x = np.asarray(x, dtype=np.float64)
    # BEGIN SOLUTION: 2.3 signswish_derivative
    z = beta * x
    with np.errstate(over="ignore"):
        return beta * (2 - z * np.tanh(z / 2)) / (1 + np.cosh(z))
    # END SOLUTION


# %% [markdown]
# Three independent checks of your formula: against autograd of the smooth `sign_swish` (itself verified by
# gradcheck), against the pseudo-gradient of the `ss_5` quantizer, and the position of the zeros against
# `theory.signswish_grad_zero`, the root of u·tanh(u/2) = 2 solved to machine precision.

# %%
x = np.linspace(-2, 2, 41)
t = Tensor(x, requires_grad=True)
sign_swish(t, beta=5.0).sum().backward()
print("matches autograd of SS_5:     ", np.allclose(signswish_derivative(x, 5.0), t.grad))
print("matches the ss_5 quantizer:   ", np.allclose(signswish_derivative(x, 5.0),
                                                    get("ss_5").pseudo_gradient(x)[1], rtol=1e-5))
print("gradcheck of SS_5 itself:     ", gradcheck(lambda v: sign_swish(v, beta=5.0), x[::4]))

for beta in (2.0, 5.0, 10.0):
    fine = np.linspace(0.01, 3.0, 300_001)
    d = signswish_derivative(fine, beta)
    zero = fine[np.flatnonzero(np.diff(np.sign(d)))[0]]
    print(f"β = {beta:4.1f}: derivative changes sign at x ≈ {zero:.4f};  u*/β = "
          f"{theory.signswish_grad_zero(beta):.4f};  the paper's 2.4/β = {2.4 / beta:.4f}")

# %% [markdown]
# ## 5. BNN+'s Fig. 4, redrawn
#
# `plot_quantizers` draws each quantizer's forward pass (left) and pseudo-gradient (right). The figure is
# saved under `lesson_out/` (or `$MINIBNN_TUTORIAL_OUT`); in a notebook it also shows below the cell.

# %%
fig = plot_quantizers(("htanh", "tanh", "bireal", "ss_5", "ss_10"))
print("saved", show(fig, "02_quantizers_fig4.png"))

# %%
fig, ax = plt.subplots(figsize=(5, 3))
xx = np.linspace(-3, 3, 601)
ax.plot(xx, sign(xx), "k", lw=1, label="sign")
for beta in (1.0, 2.0, 5.0, 10.0):
    ax.plot(xx, theory.signswish(xx, beta), label=f"SS_{beta:g}")
ax.set_title("SignSwish tends to sign as β grows (and overshoots ±1)")
ax.legend(fontsize=7)
show(fig, "02_signswish.png")

# %% [markdown]
# ## 6. Magnitude-aware sign and trainable β
#
# Binarized weights lose their scale. Bi-Real Net multiplies sign(W) by the mean absolute weight of each
# output filter, α_c = mean|W_c| (the same scale XNOR-Net uses), computed fresh at every forward pass:

# %%
W = np.array([[0.9, -0.5, 0.1, -0.2],
              [0.02, 0.01, -0.03, 0.04]], dtype=np.float32)
print(quantizers.magnitude_aware_sign(W).data)
print("per-row mean |w|:", np.abs(W).mean(axis=1))

# %% [markdown]
# BNN+ also trains β itself ("SS_t"): the quantizer `ss_t` holds β as a `Parameter`, which receives
# dSS_β/dβ = x·dSS/dz in the backward pass and can be handed to an optimizer like any weight.

# %%
q = get("ss_t")
print(q, "parameters:", [name for name, _ in q.named_parameters()])
x = Tensor(np.linspace(0.05, 0.8, 8, dtype=np.float32), requires_grad=True)
q(x).sum().backward()
print("dL/dβ =", q.beta.grad, " (by eq. 3's sibling: Σ x·dSS/dz =",
      float(np.sum(x.data * theory.signswish_grad(x.data, 5.0) / 5.0)), ")")

# %% [markdown]
# ## 7. Names
#
# Quantized layers take a quantizer by name (`kernel_quantizer="ste_sign"`), as in Larq. `get(name)` returns
# a fresh module; `quantizers.names()` lists every registered name. Grouped by the module they build:

# %%
aliases = {}
for name in quantizers.names():
    aliases.setdefault(type(get(name)).__name__, []).append(name)
for cls, names in sorted(aliases.items()):
    print(f"{cls:20s} {', '.join(names)}")

# %% [markdown]
# **What to remember.** Binary networks train through a *pseudo*-gradient: sign forward, something smooth
# backward. The window of the clipped STE stops latent weights that drift beyond ±1, which is why BinaryNet
# clips them back (next tutorial). Next, `03_binary_mlp.py` trains a binary network on handwritten digits.
