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
# # 09 · The geometry of random bias (Li & Partovi Nia)
#
# > Needs the course install: `pip install "minibnn[course]"` (matplotlib, jupytext, JupyterLab). Run it as a
# > script (`python 09_random_bias_geometry.py`; figures are saved to `./lesson_out/`) or open it as a notebook
# > (`jupyter lab`, then *Open With → Notebook*; figures show below their cells).
#
# The clipped STE passes gradient only where |w·x + b| ≤ 1 — the same *active region* as hardtanh (htanh).
# Li & Partovi Nia compare it with ReLU, whose active region is a half-space w·x + b > 0, and find that with
# zero biases htanh shares gradient out badly: every band passes through the origin, so points near it train
# every unit and far points train none. Their fix is a one-liner: **random biases** b ~ U[−λ, λ]. You will
#
# 1. compute activation patterns and the Gini coefficient that measures "data equality";
# 2. compare ReLU and htanh as λ grows: which points activate which units;
# 3. train tiny classifiers on a 2-D problem and look at their decision regions.
#
# **Exercises**: 9.1 `activation_pattern` (1 point), 9.2 `gini` (2 points). Check your work with
# `minibnn assignments grade 09_random_bias_geometry.py`.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minibnn
from minibnn import Sequential, Tensor, no_grad, theory
from minibnn.theory import geometry
from minibnn.course.notebook import show
from minibnn.init import RandomBias
from minibnn.nn import Hardtanh, Linear, ReLU
from minibnn.losses import CrossEntropyLoss
from minibnn.optim import Adam

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Activation patterns
#
# For n points and m units, z_ij = w_j·x_i + b_j. The activation pattern A (n × m, boolean) says where unit
# j passes gradient for point i.
#
# ### Exercise 9.1 — `activation_pattern` (1 point)
#
# Return A for "relu" (active iff z > 0; ReLU's gradient at 0 is 0) and for "htanh" (active iff |z| ≤ 1,
# edges included as in the clipped STE).

# %%
def activation_pattern(z, activation):
    """A = 1[z > 0] for "relu", 1[|z| <= 1] for "htanh"."""
    z = np.asarray(z)
    # BEGIN SOLUTION: 9.1 activation_pattern
    return z > 0 if activation == "relu" else np.abs(z) <= 1
    # END SOLUTION


x = 2.0 * rng.standard_normal((2000, 2))               # data: a 2-D Gaussian cloud, wider than the bands
weights = rng.standard_normal((32, 2)) / np.sqrt(2)          # 32 units, weights N(0, 1/2)
z = geometry.pre_activations((weights, np.zeros(32)), x)
for act in ("relu", "htanh"):
    A = activation_pattern(z, act)
    print(f"{act:5s}: share of active (point, unit) pairs {A.mean():.3f}   "
          f"same as minibnn: {np.array_equal(A, geometry.activation_pattern(z, act))}")

# %% [markdown]
# ## 2. Data equality, measured by a Gini coefficient
#
# Point i activates k_i = Σ_j A_ij units. If every point activated about the same number, every point would
# send gradient to about as many units: *data equality*. The Gini coefficient of the counts measures how
# unequal they are: 0 when all are equal, (N − 1)/N when one holds everything,
#
# $$G = \frac{\sum_i \sum_k |c_i - c_k|}{2 N^2 \bar c}.$$
#
# ### Exercise 9.2 — `gini` (2 points)
#
# Implement G for a 1-D array of non-negative counts (not all zero). The double sum is fine for the sizes
# here; the sorted form G = 2Σᵢ i·c₍ᵢ₎/(N Σc) − (N + 1)/N is faster.

# %%
def gini(counts):
    """G = Σ_i Σ_k |c_i − c_k| / (2 N² mean(c))."""
    c = np.asarray(counts, dtype=np.float64).ravel()
    # BEGIN SOLUTION: 9.2 gini
    c = np.sort(c)
    n = c.size
    return float(2.0 * np.dot(np.arange(1, n + 1), c) / (n * c.sum()) - (n + 1) / n)
    # END SOLUTION


print("gini([3, 3, 3]) =", gini([3, 3, 3]), "  gini([0, 0, 0, 8]) =", gini([0, 0, 0, 8]))

# %% [markdown]
# Now the comparison. For each activation and λ we draw the biases from U[−λ, λ] and measure: the mean share
# of active pairs (its expectation for Gaussian data and weights is a closed form,
# `theory.expected_active_share`), the Gini coefficient of the points' counts (data equality) and of the units'
# counts (hyperplane equality), and how many distinct patterns the points have (region diversity).

# %%
print(f"{'':14s}{'share':>8s}{'expected':>10s}{'data Gini':>11s}{'unit Gini':>11s}{'regions':>9s}")
for act in ("relu", "htanh"):
    for lam in (0.0, 1.0, 2.0, 4.0):
        b = RandomBias(lam)((32,), rng)
        A = activation_pattern(geometry.pre_activations((weights, b), x), act)
        per_point, per_unit = A.sum(axis=1), A.sum(axis=0)
        expected = theory.expected_active_share(act, 2, lam=lam, weight_std=np.sqrt(2))   # w·x ~ N(0, 2|x|²/2)
        print(f"{act:5s} λ = {lam:3.1f}{A.mean():8.3f}{expected:10.3f}{gini(per_point):11.3f}"
              f"{gini(per_unit):11.3f}{geometry.region_diversity(A).n_regions:9d}")

# %% [markdown]
# With λ = 0, htanh's points are much less equal than ReLU's (a higher data Gini): the bands all cross the
# origin, so central points activate most units and far points few. Random biases spread the bands out and
# lower the data Gini — at a price: as λ grows some bands drift away from the data and their units see less
# of it (the unit Gini rises). Li & Partovi Nia suggest λ ≈ 2 after a BatchNorm. (The "expected" column is
# the closed form for Gaussian data and weights; it matches the measured share up to the randomness of one
# draw of 32 units.) The map below shows, for every point of the plane, how many htanh units it activates:

# %%
grid = np.stack(np.meshgrid(np.linspace(-5, 5, 121), np.linspace(-5, 5, 121)), axis=-1).reshape(-1, 2)
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, lam in zip(axes, (0.0, 2.0, 4.0)):
    b = RandomBias(lam)((32,), np.random.default_rng(1))
    counts = activation_pattern(geometry.pre_activations((weights, b), grid), "htanh").sum(axis=1)
    image = ax.imshow(counts.reshape(121, 121), origin="lower", extent=(-5, 5, -5, 5), vmin=0, vmax=32)
    ax.set_title(f"htanh, λ = {lam:g}")
    ax.axis("off")
fig.colorbar(image, ax=axes, shrink=0.8, label="active units")
show(fig, "09_active_units.png")

# %% [markdown]
# ## 3. Decision regions as λ grows
#
# Does it matter for learning? A 2-D toy problem: is the point inside the unit circle? A network with one
# hidden layer of 16 units, htanh or ReLU, biases started at U[−λ, λ], trained with full-batch Adam.

# %%
points = rng.uniform(-2.5, 2.5, size=(600, 2)).astype(np.float32)
labels = (np.hypot(points[:, 0], points[:, 1]) < 1.3).astype(np.int64)


def train(activation, lam, steps=150):
    minibnn.manual_seed(0)
    model = Sequential(Linear(2, 16, bias_init=RandomBias(lam)), Hardtanh() if activation == "htanh" else ReLU(),
                       Linear(16, 2))
    optimizer, loss_fn = Adam(model.parameters(), lr=0.05), CrossEntropyLoss()
    for _ in range(steps):
        loss = loss_fn(model(Tensor(points)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with no_grad():
        accuracy = float(np.mean(model(Tensor(points)).data.argmax(axis=1) == labels))
        regions = model(Tensor(grid.astype(np.float32))).data.argmax(axis=1)
    return accuracy, regions


fig, axes = plt.subplots(2, 3, figsize=(9, 6))
for row, activation in enumerate(("htanh", "relu")):
    for col, lam in enumerate((0.0, 1.0, 3.0)):
        accuracy, regions = train(activation, lam)
        ax = axes[row, col]
        ax.imshow(regions.reshape(121, 121), origin="lower", extent=(-5, 5, -5, 5), cmap="Pastel1")
        ax.scatter(*points[::4].T, c=labels[::4], s=3, cmap="coolwarm")
        ax.set_title(f"{activation}, λ = {lam:g}: {accuracy:.0%}", fontsize=9)
        ax.axis("off")
        print(f"{activation:5s} λ = {lam:g}: training accuracy {accuracy:.1%}")
show(fig, "09_decision_regions.png")

# %% [markdown]
# On a problem this easy every network learns the circle; what changes is *how*: look at where the boundary
# is made of straight pieces far from the data (units that were never in a band there) and where it is
# smooth. The gains the paper reports come from deep binary networks, where a unit starved of gradient stays
# useless for the whole run — the `random-bias` study (lesson 11) measures them.

# %% [markdown]
# **What to remember.** An STE unit learns only from the points inside its band |w·x + b| ≤ 1. Zero biases put
# every band through the origin; random biases U[−λ, λ] spread them so that data points share the gradient
# more equally — a Gini coefficient makes "more equally" a number. Next, `10_deployment.py` turns a trained
# binary network into bits.
