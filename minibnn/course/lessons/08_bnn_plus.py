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
# # 08 · BNN+: SignSwish, regularizers that like ±α, and trainable scales (Darabi et al. 2018)
#
# > Needs the course install: `pip install "minibnn[course]"` (matplotlib, jupytext, JupyterLab). Run it as a
# > script (`python 08_bnn_plus.py`; figures are saved to `./lesson_out/`) or open it as a notebook (`jupyter lab`,
# > then *Open With → Notebook*; figures show below their cells).
#
# BNN+ (Darabi, Belbahri, Courbariaux & Partovi Nia 2018) changes three things in BinaryNet's recipe:
#
# 1. the pseudo-gradient: the derivative of **SignSwish** SS_β, a smooth sign, with β fixed or *trained*;
# 2. a **regularizer** R1 = Σ|α − |w|| or R2 = Σ(α − |w|)² that pulls each latent weight towards ±α instead
#    of towards 0;
# 3. a trainable **scale** α per output filter, shared by the layer and the regularizer, initialised to the
#    minimiser of the regularizer.
#
# Then we compare STEs by what matters: training.
#
# **Exercises**: 8.1 `signswish` (2 points), 8.2 `bnn_plus_regularizer` (2 points), 8.3 `initial_alpha`
# (2 points). Check your work with `minibnn assignments grade 08_bnn_plus.py`.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minibnn
from minibnn import Module, Sequential, Tensor
from minibnn.course.notebook import show
from minibnn.data import ArrayDataset, DataLoader, load_digits
from minibnn.nn import BatchNorm1d, Linear
from minibnn.losses import CrossEntropyLoss
from minibnn.optim import Adam
from minibnn.nn import QuantLinear
from minibnn.quantizers import get, sign_swish
from minibnn.regularizers import BNNPlusRegularizer
from minibnn.training import fit

# %% [markdown]
# ## 1. SignSwish
#
# With σ the logistic function, BNN+'s eq. 2 is
#
# $$SS_\beta(x) = 2\sigma(\beta x)\bigl[1 + \beta x\,(1 - \sigma(\beta x))\bigr] - 1 .$$
#
# It tends to sign(x) as β grows, overshoots ±1 a little near |x| ≈ 2.4/β, and its derivative (lesson 02,
# exercise 2.3) is the pseudo-gradient.
#
# ### Exercise 8.1 — `signswish` (2 points)
#
# Implement SS_β on NumPy arrays. σ(z) = 1/(1 + e^{−z}) overflows a warning for very negative z; a stable form
# is `0.5 * (1 + np.tanh(z / 2))`.

# %%
def signswish(x, beta=5.0):
    """SS_β(x) = 2σ(βx)[1 + βx(1 − σ(βx))] − 1  (Darabi et al. 2018, eq. 2)."""
    x = np.asarray(x, dtype=np.float64)
    # BEGIN SOLUTION: 8.1 signswish
    z = beta * x
    s = 0.5 * (1.0 + np.tanh(z / 2.0))
    return 2.0 * s * (1.0 + z * (1.0 - s)) - 1.0
    # END SOLUTION


xs = np.linspace(-3, 3, 601)
print("matches minibnn's sign_swish:", np.allclose(signswish(xs, 5.0), sign_swish(xs, beta=5.0).data, atol=1e-6))
fig, ax = plt.subplots(figsize=(5, 3))
for beta in (1.0, 2.5, 5.0, 10.0):
    ax.plot(xs, signswish(xs, beta), label=f"SS_{beta:g}")
ax.plot(xs, np.where(xs >= 0, 1, -1), "k", lw=0.8, label="sign")
ax.set_title("SignSwish")
ax.legend(fontsize=7)
show(fig, "08_signswish.png")

# %% [markdown]
# ### A trainable β
#
# The quantizer `ss_t` holds β as a `Parameter`: the optimizer moves it like any weight, trading a smooth,
# informative gradient (small β) against a faithful approximation of sign (large β).

# %%
q = get("ss_t")
print(q, "β =", float(q.beta.data))
x = Tensor(np.linspace(-1, 1, 11, dtype=np.float32), requires_grad=True)
(q(x) * Tensor(np.linspace(1, -1, 11, dtype=np.float32))).sum().backward()
print("dL/dβ =", float(q.beta.grad))

# %% [markdown]
# ## 2. Regularizers with two minima
#
# L1 or L2 weight decay pulls weights to 0 — the worst place for a binary weight, whose sign then flips at
# every step. BNN+ instead adds λ·R(W, α) to the loss with, per output filter c,
#
# $$R_1 = \sum_c\sum_i \bigl|\alpha_c - |W_{ci}|\bigr|, \qquad R_2 = \sum_c\sum_i (\alpha_c - |W_{ci}|)^2
# \quad \text{(eqs. 4–5)},$$
#
# whose minima are at W = ±α: weights are pushed away from 0, towards the two values that sign(W)·α stands
# for.
#
# ### Exercise 8.2 — `bnn_plus_regularizer` (2 points)
#
# Given a weight array W (filters on axis 0, any number of other axes), α of shape (filters,) and `kind`
# ("r1" or "r2"), return R as a float.

# %%
def bnn_plus_regularizer(weight, alpha, kind="r1"):
    """R1 = Σ_c Σ_i |α_c − |W_ci||  or  R2 = Σ_c Σ_i (α_c − |W_ci|)²  (Darabi et al. 2018, eqs. 4-5)."""
    w = np.abs(np.asarray(weight, dtype=np.float64)).reshape(len(alpha), -1)
    # BEGIN SOLUTION: 8.2 bnn_plus_regularizer
    diff = np.asarray(alpha, dtype=np.float64)[:, None] - w
    return float(np.abs(diff).sum() if kind == "r1" else (diff ** 2).sum())
    # END SOLUTION


w_grid = np.linspace(-2, 2, 401)
fig, ax = plt.subplots(figsize=(5, 3))
for kind in ("r1", "r2"):
    ax.plot(w_grid, [bnn_plus_regularizer(np.array([[v]]), np.array([1.0]), kind) for v in w_grid], label=kind)
ax.plot(w_grid, np.abs(w_grid), "k:", label="L1 (for comparison)")
ax.set_xlabel("w  (α = 1)")
ax.legend(fontsize=7)
show(fig, "08_regularizers.png")

# %% [markdown]
# ## 3. The scale α, and where it starts
#
# A layer with `weight_scale="trainable"` computes with α_c·sign(W_c) and holds α as a `Parameter` named
# `alpha` — the one the regularizer reads. Its starting value minimises the regularizer over α: for R2 the
# mean of |W_c|, for R1 the **median** (eqs. 7–9; the slope of Σ|α − a_i| is #{a_i < α} − #{a_i > α}, which
# changes sign at the middle value).
#
# ### Exercise 8.3 — `initial_alpha` (2 points)
#
# Return α, one value per filter (axis 0 of `weight`): the median of |W_c| for "r1", the mean for "r2".

# %%
def initial_alpha(weight, kind="r1"):
    """argmin_α R(W_c, α) per filter c: median |W_c| (R1) or mean |W_c| (R2)."""
    w = np.abs(np.asarray(weight, dtype=np.float64))
    w = w.reshape(w.shape[0], -1)
    # BEGIN SOLUTION: 8.3 initial_alpha
    return np.median(w, axis=1) if kind == "r1" else np.mean(w, axis=1)
    # END SOLUTION


layer = QuantLinear(20, 4, input_quantizer="ste_sign", kernel_quantizer="ste_sign", weight_scale="trainable",
                    alpha_init="median", rng=np.random.default_rng(0))
print("layer's α:       ", layer.alpha.data.round(4))
print("your initial α:  ", initial_alpha(layer.weight.data, "r1").round(4))


class Holder(Module):
    """A module with a weight and its α, which is all the regularizer looks for."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer


reg = BNNPlusRegularizer("r1", coefficient=1.0)
print(f"R1 by minibnn {reg(Holder(layer)).item():.4f}, yours "
      f"{bnn_plus_regularizer(layer.weight.data, layer.alpha.data, 'r1'):.4f}")

# %% [markdown]
# ## 4. STEs compared by training
#
# BNN+'s Table 1 trains the same network with each pseudo-gradient. Ours is tiny (2 epochs on the digits, a
# binary hidden layer of 64 units) and uses one seed, so read the numbers as a demonstration of the method,
# not as a ranking — lesson 11 runs the real study with seeds and confidence intervals.

# %%
x_train, y_train = load_digits("train", flatten=True)
x_test, y_test = load_digits("test", flatten=True)
train_loader = DataLoader(ArrayDataset(x_train, y_train), batch_size=64, shuffle=True, seed=0)
test_loader = DataLoader(ArrayDataset(x_test, y_test), batch_size=512)


def train_with(quantizer, regularizer=None):
    minibnn.manual_seed(0)
    model = Sequential(Linear(64, 64, bias=False), BatchNorm1d(64),
                       QuantLinear(64, 64, bias=False, input_quantizer=quantizer, kernel_quantizer=quantizer,
                                   kernel_constraint="weight_clip",
                                   weight_scale="trainable" if regularizer else None), BatchNorm1d(64),
                       Linear(64, 10))
    history = fit(model, train_loader, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-2), epochs=2,
                  val_loader=test_loader, extra_loss=regularizer, progress=False, verbose=False, seed=0)
    return history


results = {}
for name in ("htanh", "bireal", "ss_5", "ss_t"):
    results[name] = train_with(name)
results["ss_t + R1, α"] = train_with("ss_t", BNNPlusRegularizer("r1", coefficient=1e-4))
for name, history in results.items():
    print(f"{name:14s} test accuracy {history.val_acc[-1]:.1%}   final train loss {history.train_loss[-1]:.3f}")

fig, ax = plt.subplots(figsize=(5, 3))
for name, history in results.items():
    ax.plot(history.epoch, history.val_acc, "o-", label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("test accuracy")
ax.legend(fontsize=7)
show(fig, "08_ste_comparison.png")

# %% [markdown]
# **What to remember.** BNN+ keeps sign in the forward pass and changes what surrounds it: a smoother,
# optionally trainable pseudo-gradient; a regularizer whose minima are ±α rather than 0; and a per-filter
# scale α started at the regularizer's minimiser (median or mean of |W|). Comparing such choices needs
# training runs — several seeds of them. Next, `09_random_bias_geometry.py` looks at what the clipped STE's
# window does to which data points get gradient.
