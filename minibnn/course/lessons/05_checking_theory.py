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
# # 05 · Checking the theory of binary networks with Monte-Carlo
#
# > Needs the course install: `pip install "minibnn[course]"` (matplotlib, jupytext, JupyterLab). Run it as a
# > script (`python 05_checking_theory.py`; figures are saved to `./lesson_out/`) or open it as a notebook (`jupyter lab`,
# > then *Open With → Notebook*; figures show below their cells).
#
# Papers about BNNs state formulas: the variance of a binary dot product, where a derivative vanishes, what
# share of activations is +1 after pooling. A formula is a prediction, and a prediction can be *measured*:
# simulate the situation, estimate the quantity, and ask whether the prediction lies inside the measurement's
# confidence interval. `minibnn.theory` pairs each closed form with a `measure_...` twin that does exactly
# that and returns a `Check`.
#
# Checked here: Sari et al. 2019 (transformed Bernoulli moments, binary dot products, variance through
# depth), Darabi et al. 2018 (the zeros of SignSwish's derivative), Kim et al. 2021 (the +1 share after max
# pooling), and Li & Partovi Nia 2020 (ReLU vs hardtanh geometry).
#
# **Exercises**: 5.1 `transformed_bernoulli_variance` (1 point), 5.2 `binary_dot_variance` (2 points). Check your work with `minibnn assignments grade 05_checking_theory.py`
# (or `python -m minibnn.course grade 05_checking_theory.py`).

# %%
import numpy as np
from scipy import stats

from minibnn import theory
from minibnn.course.notebook import show
from minibnn.theory import geometry
from minibnn.nn import BatchNorm2d, MaxPool2d
from minibnn.metrics import plus_one_fraction
from minibnn.quantizers import get, ste_sign

rng = np.random.default_rng(2024)

# %% [markdown]
# ## 1. Anatomy of a check
#
# Draw n signs x̃ = 2·Bernoulli(p) − 1. Sari et al. 2019 give E(x̃) = 2p − 1 and V(x̃) = 4p(1 − p). A `Check`
# holds the prediction, the measured value, its standard error, and the confidence interval
# measured ± z·stderr. The default z ≈ 3.89 is a two-sided test at level α = 10⁻⁴: a *correct* formula is
# rejected once in ten thousand runs, while a wrong one is rejected with certainty once n is large enough.

# %%
mean_check, var_check = theory.measure_bernoulli(0.3, n=100_000, rng=rng)
print(mean_check)
print(var_check)
print("agrees:", mean_check.agrees, var_check.agrees, "  z =", round(theory.DEFAULT_Z, 3))

# %% [markdown]
# ## 2. The variance of a binary dot product
#
# A binary layer computes s = Σₖ wₖxₖ over K independent signs with P(w = +1) = p_w, P(x = +1) = p_x.
# Each product wₖxₖ is itself a sign, with mean (2p_w − 1)(2p_x − 1), and the K terms are independent.
#
# ### Exercises 5.1 — `transformed_bernoulli_variance` (1 point) and 5.2 — `binary_dot_variance` (2 points)
#
# 1. `transformed_bernoulli_variance(p)`: the variance of x̃ = 2·Bernoulli(p) − 1. (Hint: x̃² = 1.)
# 2. `binary_dot_variance(k, p_w, p_x)`: the variance of s. (Hint: use 1. on the product wₖxₖ, whose
#    probability of being +1 is p = (1 + (2p_w − 1)(2p_x − 1)) / 2.)

# %%
def transformed_bernoulli_variance(p):
    """V(2·Bernoulli(p) - 1)  (Sari et al. 2019, section 2)."""
    # BEGIN SOLUTION: 5.1 transformed_bernoulli_variance
    return 4 * p * (1 - p)
    # END SOLUTION


def binary_dot_variance(k, p_w=0.5, p_x=0.5):
    """V(Σ_{k=1}^K w_k x_k) for independent signs with P(w=+1) = p_w, P(x=+1) = p_x."""
    # BEGIN SOLUTION: 5.2 binary_dot_variance
    p_product = (1 + (2 * p_w - 1) * (2 * p_x - 1)) / 2
    return k * transformed_bernoulli_variance(p_product)
    # END SOLUTION


# %% [markdown]
# Measure, and put **your** prediction into a `Check`: the measurement (with its standard error) comes from
# `theory.measure_binary_dot`, the prediction from your function.

# %%
def check_mine(k, p_w, p_x, predicted, n=40_000):
    measured = theory.measure_binary_dot(k, p_w, p_x, n=n, rng=rng)[1]
    return theory.Check(f"V(s), K={k}, p_w={p_w}, p_x={p_x}", predicted, measured.measured, measured.stderr, n)


for k, p_w, p_x in [(64, 0.5, 0.5), (64, 0.9, 0.9), (100, 0.7, 0.2)]:
    print(check_mine(k, p_w, p_x, binary_dot_variance(k, p_w, p_x)))

# %% [markdown]
# For p = 1/2 the variance is K, the paper's case. A tempting shortcut borrowed from Glorot & Bengio,
# V(s) = K·V(w)·V(x), is only right when a mean is zero. The measurement rejects it decisively:

# %%
glorot_style = 64 * transformed_bernoulli_variance(0.9) ** 2
print(check_mine(64, 0.9, 0.9, glorot_style))

# %% [markdown]
# ## 3. Variance through depth
#
# Stacking layers multiplies variances: without BatchNorm, V(sˡ) = V(x)·Π K_{l'−1}·V(w^{l'}) (Sari et al.
# 2019, section 2, with the product's indices corrected — see the docstring of
# `theory.preactivation_variance`; the form as printed is kept as `..._as_printed` and fails its check). With
# ±1 weights the variance grows by the fan-in at every layer, which is one reason BNNs need BatchNorm.

# %%
widths = (16, 32, 32, 8)
for check in theory.measure_preactivation_variance(widths, 1.0, n_nets=300, rng=rng):
    print(check)
printed = theory.preactivation_variance_as_printed(widths, 1.0)
print("as printed in the paper:", printed, " vs corrected:", theory.preactivation_variance(widths, 1.0))

# %% [markdown]
# ## 4. Where SignSwish's derivative vanishes
#
# BNN+ (Darabi et al. 2018) say the derivative of SS_β vanishes at x ≈ ±2.4/β. With u = βx the zero solves
# u·tanh(u/2) = 2; `theory.signswish_grad_zero` finds u* by root bracketing. This claim is deterministic, so
# the "measurement" is an evaluation: the derivative is 0 at ±u*/β to rounding, changes sign there, and the
# library's `ss_5` quantizer (whose backward is a separate implementation) agrees.

# %%
for beta in (1.0, 5.0, 10.0):
    x_star = theory.signswish_grad_zero(beta)
    at_zero = theory.signswish_grad(np.array([-x_star, x_star]), beta)
    around = theory.signswish_grad(np.array([x_star * 0.999, x_star * 1.001]), beta)
    print(f"β={beta:4.1f}: x* = {x_star:.6f} (2.4/β = {2.4 / beta:.6f}), "
          f"derivative there {np.abs(at_zero).max():.1e}, just before/after {around.round(5)}")
_, slope = get("ss_5").pseudo_gradient(np.array([theory.signswish_grad_zero(5.0)]))
print("ss_5 pseudo-gradient at its zero:", slope)

# %% [markdown]
# ## 5. Max pooling skews the signs (Kim et al. 2021)
#
# After a BatchNorm, sign gives +1 half of the time. Kim et al. observe fewer +1 when a max-pool comes
# between: the maximum of k² normals is right-skewed (mean above median), and BatchNorm centres at the mean,
# so the majority lands below it. The closed form for a 2×2 window is 48.2%; average pooling stays at 50%.

# %%
for mode in ("max", "avg"):
    print(theory.measure_pooled_sign_fraction(2, mode, n=100_000, rng=rng))

# %% [markdown]
# The same with minibnn's own layers, MaxPool2d → BatchNorm2d → ste_sign, on random pre-activations:

# %%
pre = rng.standard_normal((128, 4, 16, 16)).astype(np.float32)
signs = ste_sign(BatchNorm2d(4)(MaxPool2d(2)(pre)))
share = plus_one_fraction(signs)
print(f"+1 share through the layers: {share:.4f}  (closed form {theory.pooled_sign_fraction(2, 'max'):.4f}, "
      f"{signs.size} signs)")

# %% [markdown]
# ## 6. ReLU vs hardtanh: who gets gradient (Li & Partovi Nia 2020)
#
# A unit passes gradient for a data point only inside its *active region*: a half-space for ReLU, a band
# |w·x + b| ≤ 1 for hardtanh (the same region as the clipped STE). For Gaussian data the expected share of
# active (point, unit) pairs is exactly 1/2 for ReLU; for hardtanh it depends on the dimension, the weight
# scale and the bias range λ. The paper's point is *which* points get gradient: with zero bias every
# hardtanh band crosses the origin, so points near it are active for many units and far points for few
# (poor "data equality"); biases drawn from U[−λ, λ] spread the bands out. The figure shows both cases,
# with the data Gini coefficient of each panel in its title.

# %%
for lam in (0.0, 2.0):
    print(theory.measure_expected_active_share("htanh", 8, lam=lam, weights="gaussian", n_pairs=50_000, rng=rng))
print(theory.measure_expected_active_share("relu", 8, n_pairs=50_000, rng=rng))

fig = geometry.plot_relu_vs_htanh(n_units=8, lam=2.0, resolution=101)
print("saved", show(fig, "05_relu_vs_htanh.png"))

# %% [markdown]
# ## 7. Many checks at once
#
# Each check alone is wrong with probability α. Running m of them, use a stricter z (Bonferroni:
# α/m per check) so that the chance of *any* false alarm stays below α:

# %%
m = 20
z_bonferroni = stats.norm.isf(1e-4 / (2 * m))
checks = [theory.measure_shifted_sign_fraction(t, n=20_000, rng=rng, z=z_bonferroni)
          for t in np.linspace(-1.5, 1.5, m)]
print(f"z = {z_bonferroni:.2f}: {sum(c.agrees for c in checks)} of {m} shifted-threshold checks agree")

# %% [markdown]
# **What to remember.** A formula and a simulation should agree within the simulation's error bars; if they
# do not, one of them is wrong — and a big enough sample tells you which. Every formula minibnn implements is
# tested this way in `tests/test_theory.py`.
