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
# # 06 · A binary convolutional network on the digits
#
# > Needs the course install: `pip install "minibnn[course]"` (matplotlib, jupytext, JupyterLab). Run it as a
# > script (`python 06_binary_cnn.py`; figures are saved to `./lesson_out/`) or open it as a notebook (`jupyter lab`,
# > then *Open With → Notebook*; figures show below their cells).
#
# Lesson 03 flattened each image. A convolutional network keeps the 8×8 grid and slides small filters over
# it. Here the filters are **binary**: `BinaryConv2d` multiplies sign(x) by sign(W) in every 3×3 window. You
# will
#
# 1. compute the output size of a convolution, and see why a binary convolution pads with ±1, not 0;
# 2. train a small binary CNN and watch its training curves;
# 3. write a 2×2 max-pool, and measure what max-pooling does to the share of +1 after the next sign
#    (Kim et al. 2021): fewer +1 than average pooling;
# 4. shift the sign's threshold to bring the share back, with a formula you write.
#
# **Exercises**: 6.1 `conv_output_size` (1 point), 6.2 `max_pool2d` (2 points), 6.3 `shifted_sign_fraction`
# (2 points). Check your work with `minibnn assignments grade 06_binary_cnn.py`.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

import minibnn
from minibnn import Sequential, Tensor, no_grad
from minibnn import functional as F
from minibnn import theory
from minibnn.course.notebook import show
from minibnn.data import ArrayDataset, DataLoader, load_digits
from minibnn.nn import AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Flatten, MaxPool2d
from minibnn.losses import CrossEntropyLoss
from minibnn.metrics import PlusOneFraction
from minibnn.optim import Adam
from minibnn.nn import BinaryConv2d, BinaryLinear
from minibnn.quantizers import ShiftedThreshold
from minibnn.training import fit

EPOCHS = 2

# %% [markdown]
# ## 1. Images, not vectors
#
# `load_digits` gives (N, 8, 8) images; a convolution wants (N, C, H, W), here with one channel.

# %%
x_train, y_train = load_digits("train")
x_test, y_test = load_digits("test")
x_train, x_test = x_train[:, None], x_test[:, None]
print("train", x_train.shape, " test", x_test.shape)
train_loader = DataLoader(ArrayDataset(x_train, y_train), batch_size=64, shuffle=True, seed=0)
test_loader = DataLoader(ArrayDataset(x_test, y_test), batch_size=512)

# %% [markdown]
# ## 2. How big is the output?
#
# A k×k filter moved by `stride` s over an input of side n padded by p on each border fits in
# ⌊(n + 2p − k)/s⌋ + 1 positions per side. "Same" padding (p = 1 for k = 3, s = 1) keeps the side.
#
# ### Exercise 6.1 — `conv_output_size` (1 point)
#
# Return the output side for input side `size`, filter side `kernel`, `stride` and `padding` (integers).

# %%
def conv_output_size(size, kernel, stride=1, padding=0):
    """⌊(size + 2·padding − kernel) / stride⌋ + 1."""
    # BEGIN SOLUTION: 6.1 conv_output_size
    return (size + 2 * padding - kernel) // stride + 1
    # END SOLUTION


for args in [(8, 3, 1, 1), (8, 3, 1, 0), (8, 2, 2, 0)]:
    out = F.conv2d(np.zeros((1, 1, 8, 8)), np.zeros((1, 1, args[1], args[1])), stride=args[2], padding=args[3])
    print(f"side 8, kernel {args[1]}, stride {args[2]}, padding {args[3]}: yours {conv_output_size(*args)}, "
          f"minibnn's conv2d {out.shape[-1]}")

# %% [markdown]
# ### Padding a binary input
#
# A float convolution pads with 0. But the input of a binary convolution is sign(x) ∈ {−1, +1}: a 0 border
# makes it *ternary*, and the XNOR-popcount kernels (lesson 04) have no bit for 0. So binary convolutions pad
# with +1 (or −1) — Larq's `pad_values=1.0` — which keeps every input ±1 at the price of a slightly different
# function at the border.

# %%
signs = np.where(np.random.default_rng(0).random((1, 1, 4, 4)) < 0.5, -1.0, 1.0)
for pad in (0.0, 1.0):
    padded = np.pad(signs, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=pad)
    print(f"pad with {pad:+.0f}: values in the padded input {np.unique(padded)}")
layer = BinaryConv2d(16, 32, 3, padding=1, pad_values=1.0, bias=False)
print(layer)

# %% [markdown]
# ## 3. A small binary CNN
#
# The recipe of lesson 03, with convolutions: a **full-precision first convolution** (binarizing 8×8 grey
# pixels would lose most of them), a BatchNorm before every sign, binary layers without bias, a max-pool, and
# a binary classifier scaled by a last BatchNorm. (`models.vgg_small` is the same idea at CIFAR size.)

# %%
def binary_cnn(pool):
    return Sequential(
        Conv2d(1, 16, 3, padding=1, bias=False), BatchNorm2d(16),               # float in, normalised
        BinaryConv2d(16, 32, 3, padding=1, pad_values=1.0, bias=False),           # sign(x) ⋆ sign(W), ±1 border
        pool(2), BatchNorm2d(32),                                                  # 8×8 -> 4×4
        Flatten(), BinaryLinear(32 * 4 * 4, 10, bias=False), BatchNorm1d(10))     # binary classifier


minibnn.manual_seed(0)
model = binary_cnn(MaxPool2d)
history = fit(model, train_loader, CrossEntropyLoss(), Adam(model.parameters(), lr=1e-2), epochs=EPOCHS,
              val_loader=test_loader, progress=False, seed=0)
print(history)
show(history.plot("binary CNN on the 8×8 digits"), "06_training_curves.png")

# %% [markdown]
# `History.plot()` draws the loss and accuracy of each epoch: training (averaged while the weights moved)
# and validation (after the epoch). The binary CNN reaches the binary MLP's accuracy with far fewer
# parameters: 16·9 float and 32·16·9 + 512·10 binary weights.

# %% [markdown]
# ## 4. Max-pooling a binary network
#
# ### Exercise 6.2 — `max_pool2d` (2 points)
#
# Write a 2×2 max-pool with stride 2 on a NumPy array (N, C, H, W): each output is the maximum of a 2×2
# block. When H or W is odd, the last row or column is dropped (as minibnn's `MaxPool2d` does). Hint: crop to
# even sides, `reshape` to (N, C, H/2, 2, W/2, 2) and take the max over two axes.

# %%
def max_pool2d(x):
    """2×2 max-pool, stride 2, on (N, C, H, W); an odd last row/column is dropped."""
    x = np.asarray(x)
    # BEGIN SOLUTION: 6.2 max_pool2d
    n, c, h, w = x.shape
    x = x[:, :, :h // 2 * 2, :w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    # END SOLUTION


features = np.random.default_rng(1).normal(size=(2, 3, 5, 7)).astype(np.float32)
print("same as MaxPool2d:", np.array_equal(max_pool2d(features), MaxPool2d(2)(features).data))

# %% [markdown]
# Kim et al. 2021 point out an asymmetry. After a BatchNorm, about half of the values are ≥ 0, so sign gives
# +1 half of the time. Put a max-pool *before* the BatchNorm and the maximum of four values is right-skewed:
# BatchNorm centres at its *mean*, which lies above its *median*, so fewer than half end up ≥ 0. For four
# independent normals the share is 48.2% (`theory.pooled_sign_fraction`); average pooling stays at 50%.
#
# We measure it on the digits: `PlusOneFraction` records the share of +1 at every binary layer's input. The
# networks are freshly built (BatchNorm's γ = 1, β = 0, so sign sees exactly the normalised pooled values) and
# BatchNorm runs in training mode, i.e. with the statistics of the batch, as in the paper's argument. Layer
# `6` is the classifier, right after pooling; layer `2` comes before any pooling. (Training moves β, which
# shifts the share further: that is the trainable threshold of section 5.)

# %%
def plus_one_shares(net):
    tracker = PlusOneFraction(net)
    net.train()
    with no_grad():
        net(Tensor(x_test))
    shares = tracker.fractions()
    tracker.detach()
    return shares


for name, pool in (("max-pool", MaxPool2d), ("avg-pool", AvgPool2d)):
    minibnn.manual_seed(1)
    net = binary_cnn(pool)
    print(f"{name}: share of +1 at each binary layer's input",
          {layer: round(share, 3) for layer, share in plus_one_shares(net).items()})
print(f"closed form for iid normals: max {theory.pooled_sign_fraction(2, 'max'):.3f}, "
      f"avg {theory.pooled_sign_fraction(2, 'avg'):.3f}")

# %% [markdown]
# Max-pooling lowers the share, average pooling does not. The drop is smaller than the closed form's
# because neighbouring pixels of a real image are correlated, so the four values of a window are not
# independent draws.
#
# ## 5. Shifting the threshold
#
# Kim et al. propose to binarize with sign(x − t) instead of sign(x). If x ~ N(μ, σ²), the share of +1 is
# P(x ≥ t).
#
# ### Exercise 6.3 — `shifted_sign_fraction` (2 points)
#
# Return P(x ≥ t) for x ~ N(μ, σ²). Hint: the standard normal tail is ½·erfc(z/√2) (`math.erfc`).

# %%
def shifted_sign_fraction(threshold, mu=0.0, sigma=1.0):
    """P(sign(x - t) = +1) = P(x >= t) for x ~ N(mu, sigma²)."""
    # BEGIN SOLUTION: 6.3 shifted_sign_fraction
    return 0.5 * math.erfc((threshold - mu) / (sigma * math.sqrt(2.0)))
    # END SOLUTION


# %% [markdown]
# Check it against `ShiftedThreshold`, minibnn's sign(x − t) quantizer, on normal samples; then plot how the
# share of +1 moves with t. A negative shift raises it: t ≈ −0.05 undoes the 48.2% of a max-pool.

# %%
z = np.random.default_rng(2).standard_normal(200_000).astype(np.float32)
shifts = np.linspace(-1.0, 1.0, 9)
measured = [float(np.mean(ShiftedThreshold(shift=t)(z).data > 0)) for t in shifts]
formula = [shifted_sign_fraction(t) for t in shifts]
for t, m, f in zip(shifts, measured, formula):
    print(f"t = {t:+.2f}: measured {m:.4f}  formula {f:.4f}")

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(shifts, formula, label="your formula")
ax.plot(shifts, measured, "o", label="ShiftedThreshold on N(0, 1)")
ax.axhline(theory.pooled_sign_fraction(2, "max"), color="gray", ls=":", label="after a 2×2 max-pool")
ax.set_xlabel("threshold shift t")
ax.set_ylabel("share of +1")
ax.legend(fontsize=7)
show(fig, "06_threshold_shift.png")

# %% [markdown]
# **What to remember.** A binary convolution is a binary matrix product per window; it pads with ±1 so that
# its input stays binary. Pooling changes the balance of +1 and −1 that follows it — max-pooling skews it
# down — and shifting the sign's threshold is a one-number fix. Next, `07_init_batchnorm.py` asks why the
# BatchNorm before each sign matters so much.
