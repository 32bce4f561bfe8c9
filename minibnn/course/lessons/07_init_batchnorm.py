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
# # 07 · Initialization and BatchNorm in binary networks (Sari et al. 2019)
#
# > Needs the course install: `pip install "minibnn[course]"` (matplotlib, jupytext, JupyterLab). Run it as a
# > script (`python 07_init_batchnorm.py`; figures are saved to `./lesson_out/`) or open it as a notebook
# > (`jupyter lab`, then *Open With → Notebook*; figures show below their cells).
#
# Every binary network so far had a BatchNorm before each sign. Sari, Belbahri & Partovi Nia (2019) ask what
# it is for, since sign ignores the scale of its input anyway. In this lesson you
#
# 1. compute how the variance of the pre-activations grows through the layers without BatchNorm, and check
#    it against a simulation;
# 2. try the four BatchNorm variants of their ablation (full, centred only, fixed scale, Glorot-like scale);
# 3. see why a *constant* initial variance is enough for binary weights;
# 4. fold BatchNorm + sign into one integer threshold per channel (their eq. 2).
#
# **Exercises**: 7.1 `preactivation_variance` (2 points), 7.2 `centred_norm` (2 points), 7.3 `fold_bn_sign`
# (3 points). Check your work with `minibnn assignments grade 07_init_batchnorm.py`.

# %%
import matplotlib.pyplot as plt
import numpy as np

import minibnn
from minibnn import Sequential, Tensor, no_grad, theory
from minibnn.course.notebook import show
from minibnn.data import ArrayDataset, DataLoader, load_digits
from minibnn.init import ConstantVariance
from minibnn.nn import BatchNorm1d, Linear
from minibnn.losses import CrossEntropyLoss
from minibnn.metrics import FlipRatio
from minibnn.normalization import CentredNorm, make_norm
from minibnn.optim import Adam
from minibnn.nn import BinaryLinear
from minibnn.training import fit

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Variance through depth, without BatchNorm
#
# A layer computes s = Σₖ wₖ xₖ over its K_{l−1} inputs. With independent, centred inputs and weights,
# V(s) = K_{l−1}·V(w)·V(x): every layer multiplies the variance by its fan-in times the weight variance. With
# identity activations between layers (the paper's simplification),
#
# $$V(s^l) = V(x)\prod_{l'=1}^{l} K_{l'-1}\,V(w^{l'}).$$
#
# (The paper prints the product with shifted indices; `theory.preactivation_variance`'s docstring explains
# the correction, and a measurement settles it.)
#
# ### Exercise 7.1 — `preactivation_variance` (2 points)
#
# Given the widths (K₀, …, K_L), the weight variance (one number, or one per layer) and V(x), return the
# array V(s¹), …, V(s^L). Hint: `np.cumprod`.

# %%
def preactivation_variance(widths, weight_var, input_var=1.0):
    """V(s^l) = V(x)·Π_{l'<=l} K_{l'-1}·V(w^{l'}) for l = 1..L (no BatchNorm, identity activations)."""
    # BEGIN SOLUTION: 7.1 preactivation_variance
    fan_in = np.asarray(widths[:-1], dtype=np.float64)
    weight_var = np.broadcast_to(np.asarray(weight_var, dtype=np.float64), fan_in.shape)
    return input_var * np.cumprod(fan_in * weight_var)
    # END SOLUTION


# %% [markdown]
# Simulate it: a stack of layers with ±1 weights (V(w) = 1), Gaussian inputs, measured over many inputs.

# %%
def simulate(widths, normalise, n=2000):
    x = rng.standard_normal((n, widths[0]))
    variances = []
    for k_in, k_out in zip(widths[:-1], widths[1:]):
        w = np.where(rng.random((k_in, k_out)) < 0.5, -1.0, 1.0)
        x = x @ w
        variances.append(x.var())
        if normalise:                                   # BatchNorm with γ = 1, β = 0
            x = (x - x.mean(axis=0)) / x.std(axis=0)
    return np.array(variances)


widths = (32, 64, 64, 64, 64)
predicted = preactivation_variance(widths, 1.0)
without_bn = simulate(widths, normalise=False)
with_bn = simulate(widths, normalise=True)
for layer, (p, m, b) in enumerate(zip(predicted, without_bn, with_bn), start=1):
    print(f"layer {layer}: predicted {p:12.0f}  measured {m:12.0f}   with BatchNorm before it: {b:6.1f}")

fig, ax = plt.subplots(figsize=(5, 3))
depth = np.arange(1, len(widths))
ax.semilogy(depth, predicted, "k-", label="formula (no BatchNorm)")
ax.semilogy(depth, without_bn, "o", label="measured, no BatchNorm")
ax.semilogy(depth, with_bn, "s", label="measured, BatchNorm in between")
ax.set_xlabel("layer")
ax.set_ylabel("V(s)")
ax.legend(fontsize=7)
show(fig, "07_variance_depth.png")

# %% [markdown]
# Without BatchNorm the variance grows by the fan-in at every layer; with a BatchNorm before each layer it
# stays at the fan-in K_{l−1} (each layer then sees inputs of variance 1). In the forward pass the growth is harmless
# for sign, but the same products appear in the gradients. Sari et al.'s Theorem 1 gives the gradient
# variance per layer: it explodes towards the input without BatchNorm and stays bounded with it.

# %%
net = (64, 128, 128, 128, 10)
print("gradient variance, no BatchNorm:  ", theory.theorem1_gradient_variance(net, batchnorm=False))
print("gradient variance, with BatchNorm:", theory.theorem1_gradient_variance(net, batchnorm=True))

# %% [markdown]
# ## 2. What in BatchNorm matters? Four variants
#
# BatchNorm subtracts the batch mean μ_B and divides by the batch standard deviation. Sari et al. ablate it
# (their Table 2): "centred only" γ·(x − μ_B) + β; "fixed" divides by a constant √(c·K_{l−1}) instead of the
# measured σ_B; "Glorot" by √K_{l+1}. `minibnn.normalization.make_norm` builds each by name.
#
# ### Exercise 7.2 — `centred_norm` (2 points)
#
# Write the "centred only" variant's training-mode forward pass on an array x of shape (N, C): subtract each
# channel's batch mean (over axis 0), then scale by γ and shift by β (arrays of shape (C,)).

# %%
def centred_norm(x, gamma, beta):
    """γ·(x − μ_B) + β, μ_B the mean of each channel over the batch (axis 0)."""
    # BEGIN SOLUTION: 7.2 centred_norm
    x = np.asarray(x)
    return gamma * (x - x.mean(axis=0)) + beta
    # END SOLUTION


s = np.where(rng.random((256, 256)) < 0.5, -1.0, 1.0) @ np.where(rng.random((256, 8)) < 0.5, -1.0, 1.0)
s = s.astype(np.float32)                          # binary dot products, K = 256: V(s) ≈ 256
layer = CentredNorm(8)
print("yours == CentredNorm:", np.allclose(centred_norm(s, np.ones(8), np.zeros(8)), layer(s).data, atol=1e-4))
for kind in ("batchnorm", "centred", "fixed", "glorot", "none"):
    norm = make_norm(kind, 8, variance=256.0)
    with no_grad():
        out = norm(Tensor(s)).data
    print(f"{kind:10s} {type(norm).__name__:15s} output std {out.std():7.3f}   mean {out.mean():+.3f}")

# %% [markdown]
# All five leave sign(out) almost unchanged when β = 0 (centring moves the threshold a little); they differ in
# the *scale* the gradients see. The "fixed" scale √(K_{l−1}) does the job of σ_B without measuring it —
# the paper's point: what BatchNorm contributes to a binary network is mostly the division by √K.
#
# ## 3. Constant-variance initialization
#
# sign(W) forgets the scale of W, so the forward pass of a binary layer is the same whether its latent
# weights start at variance 10⁻¹ or 10⁻⁴. What changes is *training*: small latent weights sit close to 0,
# so a few updates flip them. Sari et al. therefore use the same variance in every layer
# (`init.ConstantVariance`) instead of fan-scaled laws. A short run with each, counting flips:

# %%
x_train, y_train = load_digits("train", flatten=True)
x_test, y_test = load_digits("test", flatten=True)
train_loader = DataLoader(ArrayDataset(x_train, y_train), batch_size=64, shuffle=True, seed=0)
test_loader = DataLoader(ArrayDataset(x_test, y_test), batch_size=512)


def run(weight_init):
    minibnn.manual_seed(0)
    model = Sequential(Linear(64, 96, bias=False), BatchNorm1d(96),
                       BinaryLinear(96, 96, bias=False, weight_init=weight_init), BatchNorm1d(96),
                       BinaryLinear(96, 10, bias=False, weight_init=weight_init), BatchNorm1d(10))
    flips = FlipRatio(model)
    history = fit(model, train_loader, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-3), epochs=2,
                  val_loader=test_loader, progress=False, verbose=False, seed=0)
    return history.val_acc[-1], flips.update()


for variance in (1e-1, 1e-4):
    accuracy, flipped = run(ConstantVariance(variance))
    print(f"constant variance {variance:g}: test acc {accuracy:.1%}, signs flipped in 2 epochs {flipped:.1%}")
accuracy, flipped = run("glorot_uniform")
print(f"Glorot uniform:          test acc {accuracy:.1%}, signs flipped in 2 epochs {flipped:.1%}")

# %% [markdown]
# With Adam the step size doesn't depend on the weight scale, so weights that start near 0 change sign much
# more often early on. Which variance is best is an empirical question (their Table 1; lesson 11 runs the
# study).
#
# ## 4. BatchNorm + sign = an integer threshold
#
# At inference, BatchNorm is a fixed affine map per channel, z = γ(s − μ)/σ + β, and the next layer only
# sees sign(z). For γ > 0, sign(z) = +1 iff s ≥ τ with τ = μ − σβ/γ; since s is an *integer* (a binary dot
# product), that is s ≥ ⌈τ⌉. For γ < 0 dividing by γ flips the comparison: +1 iff s ≤ ⌊τ⌋. (The paper's
# eq. 2 rounds τ to the nearest integer and forgets the flip; both are wrong for some s — see
# `theory.sign_bn_as_printed`.) No float is left: one integer comparison per output.
#
# ### Exercise 7.3 — `fold_bn_sign` (3 points)
#
# Given arrays γ (never 0), β, μ and σ > 0, one entry per channel, return `(threshold, direction)`: integer
# thresholds and directions +1 (output +1 iff s ≥ threshold) or −1 (output +1 iff s ≤ threshold).

# %%
def fold_bn_sign(gamma, beta, mean, std):
    """Integer thresholds and directions such that sign(γ(s − μ)/σ + β) is a comparison of the integer s."""
    gamma, beta, mean, std = (np.asarray(v, dtype=np.float64) for v in (gamma, beta, mean, std))
    # BEGIN SOLUTION: 7.3 fold_bn_sign
    tau = mean - std * beta / gamma
    direction = np.where(gamma > 0, 1, -1)
    threshold = np.where(gamma > 0, np.ceil(tau), np.floor(tau)).astype(np.int64)
    return threshold, direction
    # END SOLUTION


# %% [markdown]
# Check it on a binary layer and a BatchNorm with made-up statistics: the folded comparison must give
# exactly the signs of the float computation, for every integer s.

# %%
bn = BatchNorm1d(6)
bn.weight.data[...] = [1.5, -0.7, 0.3, 2.0, -1.0, 0.8]
bn.bias.data[...] = [0.2, -0.4, 0.0, 1.1, 0.3, -0.9]
bn.running_mean[...] = [3.0, -2.0, 0.5, 7.0, 0.0, -5.0]
bn.running_var[...] = [16.0, 9.0, 4.0, 25.0, 1.0, 36.0]
bn.eval()
s_all = np.arange(-32, 33, dtype=np.float32)[:, None].repeat(6, axis=1)      # every s of a K = 32 layer
with no_grad():
    float_signs = np.where(bn(Tensor(s_all)).data >= 0, 1, -1)
threshold, direction = fold_bn_sign(bn.weight.data, bn.bias.data, bn.running_mean,
                                    np.sqrt(bn.running_var + bn.eps))
folded = np.where(np.where(direction > 0, s_all >= threshold, s_all <= threshold), 1, -1)
print("thresholds", threshold, "directions", direction)
print("folded == sign(BatchNorm(s)) for every s:", np.array_equal(folded, float_signs))

# %% [markdown]
# **What to remember.** Without BatchNorm the variance of a binary network multiplies by the fan-in at every
# layer; BatchNorm's useful part is the division by that scale, which a constant can do. Initial variance is
# free for the forward pass but sets how easily weights flip. And at inference BatchNorm + sign is one integer
# comparison, which lesson 10 uses to deploy. Next, `08_bnn_plus.py` improves the STE itself.
