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
# # 03 · Training a binary MLP on handwritten digits
#
# > Needs the course install: `pip install "minibnn[course]"` (matplotlib, jupytext, JupyterLab). Run it as a
# > script (`python 03_binary_mlp.py`; figures are saved to `./lesson_out/`) or open it as a notebook (`jupyter lab`,
# > then *Open With → Notebook*; figures show below their cells).
#
# We train two networks on the 8×8 digits bundled with minibnn (1797 images, no download): an ordinary
# float MLP, then a **binary** MLP whose hidden layers multiply ±1 activations by ±1 weights (BinaryNet,
# Hubara et al. 2016). Along the way:
#
# * the difference between **latent** (float, trained) and **binary** (±1, used) weights;
# * the BinaryNet training step: STE gradients, an optimizer step on the latent weights, then clipping them
#   back to [-1, 1];
# * the **flip ratio** (how many binary weights change sign per step) and the share of +1 activations;
# * `summary(model)`: how many bits the model really needs once packed;
# * Bop, an optimizer without latent weights, against a baseline whose binary weights never change;
# * training curves with `History.plot()`.
#
# **Exercises**: 3.1 `train_step` (3 points), 3.2 `flip_ratio` (2 points). Check your work with `minibnn assignments grade 03_binary_mlp.py`
# (or `python -m minibnn.course grade 03_binary_mlp.py`).
#
# The whole notebook trains in a few seconds, on a busy machine too: minibnn keeps NumPy's BLAS to one thread
# and its kernels from spinning (`minibnn.set_num_threads` is the one knob).

# %%
import matplotlib.pyplot as plt
import numpy as np

import minibnn
from minibnn import Sequential, Tensor
from minibnn.constraints import apply_constraints
from minibnn.course.notebook import show
from minibnn.data import ArrayDataset, DataLoader, load_digits
from minibnn.nn import BatchNorm1d, Linear, ReLU
from minibnn.losses import CrossEntropyLoss
from minibnn.metrics import FlipRatio, PlusOneFraction
from minibnn.optim import Adam
from minibnn.nn import BinaryLinear
from minibnn import summary
from minibnn.training import evaluate, fit

EPOCHS = 4

# %% [markdown]
# ## 1. The data
#
# `load_digits` returns a fixed, stratified 80/20 split: 1438 training and 359 test images, pixels scaled
# to [0, 1]. We flatten each image to 64 numbers.

# %%
x_train, y_train = load_digits("train", flatten=True)
x_test, y_test = load_digits("test", flatten=True)
print("train", x_train.shape, x_train.dtype, " test", x_test.shape, " classes", np.bincount(y_train))

train_loader = DataLoader(ArrayDataset(x_train, y_train), batch_size=64, shuffle=True, seed=0)
test_loader = DataLoader(ArrayDataset(x_test, y_test), batch_size=512)

fig, axes = plt.subplots(1, 10, figsize=(8, 1.2))
for digit, ax in enumerate(axes):
    ax.imshow(x_train[y_train == digit][0].reshape(8, 8), cmap="gray_r")
    ax.set_title(str(digit))
    ax.axis("off")
show(fig, "03_digits.png")

# %% [markdown]
# ## 2. A float baseline
#
# Two `Linear` layers with a ReLU between them, trained by `fit` with Adam and cross-entropy.

# %%
minibnn.manual_seed(0)
float_model = Sequential(Linear(64, 128), ReLU(), Linear(128, 10))
history = fit(float_model, train_loader, CrossEntropyLoss(), Adam(float_model.parameters(), lr=1e-2),
              epochs=EPOCHS, val_loader=test_loader, progress=False)
print(f"float MLP: test accuracy {history.val_acc[-1]:.1%}")
show(history.plot("float MLP on the 8×8 digits"), "03_float_curves.png")

# %% [markdown]
# `fit` returns a `History`: one entry per epoch for the training and validation loss and accuracy.
# `History.plot()` draws them. The validation curve still climbs after four epochs: this baseline is *not*
# converged, which matters when we compare it with the binary network below.

# %% [markdown]
# ## 3. A binary MLP
#
# `BinaryLinear` is BinaryNet's layer: y = sign(x) @ sign(W)ᵀ, both signs with the clipped STE of
# tutorial 02. We follow the usual recipe:
#
# * the **first layer stays full precision**, as in XNOR-Net and BNN+ (Darabi et al. 2018, Algorithm 1);
#   BinaryNet binarizes its weights but never the raw input — binarizing 64 pixels would lose most of them;
# * a **BatchNorm** comes before every sign, so that about half the activations are +1 (Sari et al. 2019
#   show it also keeps gradient variance under control);
# * the binary layers have no bias: the BatchNorm's β does that job.

# %%
minibnn.manual_seed(0)
binary_model = Sequential(
    Linear(64, 128, bias=False), BatchNorm1d(128),          # full precision in, normalised
    BinaryLinear(128, 128, bias=False), BatchNorm1d(128),   # sign(x) · sign(W)
    BinaryLinear(128, 10, bias=False), BatchNorm1d(10),     # binary classifier, scaled by BN
)
print(binary_model)

# %% [markdown]
# **Latent and binary weights are different things.** `layer.weight` is a float `Parameter`: the optimizer
# updates it, checkpoints store it. The forward pass uses `layer.quantized_weight()` = sign(W), which is
# not a parameter and is never trained directly.

# %%
layer = binary_model[2]
print("latent weights W[0, :6]:   ", layer.weight.data[0, :6].round(3))
print("binary weights sign(W)[0, :6]:", layer.quantized_weight()[0, :6])
print("is_binary (1-bit input and 1-bit weights):", layer.is_binary)

# %% [markdown]
# ## 4. The BinaryNet training step
#
# The gradient reaches a latent weight W through the STE: 1 where |W| ≤ 1, 0 beyond. A weight pushed past ±1
# would therefore never get a gradient again and be stuck at its sign. BinaryNet prevents this by **clipping
# W back to [-1, 1] after every optimizer step**. In minibnn a layer carries this rule as its
# `kernel_constraint` (`"weight_clip"` for `BinaryLinear`), and `apply_constraints(model)` applies every
# layer's rule.
#
# ### Exercise 3.1 — `train_step` (3 points)
#
# Write one training step: run the model on `Tensor(x)`, compute `loss_fn(output, y)`, clear the old
# gradients, backpropagate, take the optimizer step, then apply the model's constraints. Return the loss as a
# Python float.

# %%
def train_step(model, optimizer, loss_fn, x, y) -> float:
    """One BinaryNet step on the batch (x, y); returns the batch loss (before the update)."""
    # BEGIN SOLUTION: 3.1 train_step
    loss = loss_fn(model(Tensor(x)), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    apply_constraints(model)
    return loss.item()
    # END SOLUTION


# %% [markdown]
# Now train. After each epoch, `FlipRatio` reports the share of binary weights whose sign changed since the
# previous epoch: many at first, fewer as training settles (Larq tracks the same metric, usually per step).
# A share that stays high would mean the latent weights hover around 0 and the network keeps changing its
# mind — the sign fluctuations BNN+ (Darabi et al. 2018) set out to damp.

# %% [markdown]
# ### Exercise 3.2 — `flip_ratio` (2 points)
#
# Write `flip_ratio(before, after)`: the share of weights whose *binary* value sign(w) (with sign(0) = +1)
# differs between two copies of the latent weights, as a Python float. (`-0.0` and `0.0` both binarize to
# +1: a weight moving from 0.0 to -0.0 has not flipped.)

# %%
def flip_ratio(before, after) -> float:
    """#{i : sign(before_i) != sign(after_i)} / #weights, with sign(0) = +1."""
    # BEGIN SOLUTION: 3.2 flip_ratio
    return float(np.mean((np.asarray(before) >= 0) != (np.asarray(after) >= 0)))
    # END SOLUTION


# %%
optimizer = Adam(binary_model.parameters(), lr=1e-2)
loss_fn = CrossEntropyLoss()
flips = FlipRatio(binary_model)
snapshot = layer.weight.data.copy()
for epoch in range(1, EPOCHS + 1):
    binary_model.train()
    losses = [train_step(binary_model, optimizer, loss_fn, xb, yb) for xb, yb in train_loader]
    flipped = flips.update()
    test_loss, test_acc = evaluate(binary_model, test_loader, loss_fn)
    print(f"epoch {epoch}: train loss {np.mean(losses):.3f}  test acc {test_acc:.1%}  "
          f"signs flipped this epoch {flipped:.2%}")
print(f"your flip_ratio over the whole run, hidden layer: {flip_ratio(snapshot, layer.weight.data):.2%}")

# %% [markdown]
# The binary MLP ends close to the float one, sometimes above it. Don't read that as "binary is better": both
# runs are four epochs long, the float baseline is not converged (see its curves above), and the binary one
# has BatchNorms the float one lacks. A fair comparison trains both to convergence with their own learning
# rates and several seeds — lesson 11 shows how.

# %% [markdown]
# ## 5. Looking inside
#
# Every latent weight stays inside [-1, 1] (in this short run few get near the edges; train longer or with a
# larger learning rate and a share of them sits exactly at ±1, held there by the constraint). The forward
# pass only ever saw their signs:

# %%
latent = layer.weight.data
print("latent weights in [-1, 1]:", bool(np.all(np.abs(latent) <= 1)))
print(f"largest |W|: {np.abs(latent).max():.3f}   share at the clip edges ±1: {np.mean(np.abs(latent) == 1):.2%}")
print("quantized_weight == sign(W):", np.array_equal(layer.quantized_weight(), np.where(latent >= 0, 1.0, -1.0)))

fig, ax = plt.subplots(figsize=(5, 2.5))
ax.hist(latent.ravel(), bins=60)
ax.set_title("latent weights of the hidden binary layer")
show(fig, "03_latent_weights.png")

# %% [markdown]
# Kim et al. 2021 watch the share of +1 among each binary activation. Here the signs come right after a
# BatchNorm, so the share should sit near one half. `PlusOneFraction` counts them with forward hooks:

# %%
tracker = PlusOneFraction(binary_model)
evaluate(binary_model, test_loader, loss_fn)
print({name: round(share, 3) for name, share in tracker.fractions().items()})
tracker.detach()

# %% [markdown]
# ## 6. What does the model cost?
#
# `summary` counts numbers per bit width and multiply-accumulates (MACs) per precision. The 1-bit numbers
# are stored as float32 latent weights while training, but a deployed model keeps only their signs, packed
# 64 to a machine word (tutorial 04): that is the "packed" memory. Here the full-precision first layer
# dominates the total; in a deep network the binary layers hold almost everything and the ratio nears 32.

# %%
info = summary(binary_model, (64,))
print(f"\npacked / float32 memory: {info.compression_ratio:.2f}x smaller")

# %% [markdown]
# ## 7. The same network from a builder
#
# `minibnn.models` builds the papers' networks at any size. `two_layer_mlp` (Kim et al. 2021) has the
# same shape as ours, with a hardtanh before a full-precision classifier:

# %%
from minibnn import models

built = models.two_layer_mlp(in_features=64, num_classes=10, hidden_units=128, rng=np.random.default_rng(0))
print(built)

# %% [markdown]
# ## 8. Without latent weights: Bop
#
# Helwegen et al. 2019 argue that latent weights are not weights at all but a kind of momentum: only their
# sign matters. Their optimizer, **Bop**, keeps the ±1 weights themselves and flips one when an exponential
# moving average m of its gradient is strong (|m| > τ) and points the weight's own way (gradient descent would
# push it to the other sign). `CaseOptimizer` sends the binary kernels to Bop and everything else (first
# layer, BatchNorms) to Adam. As a baseline, the same network with γ = 0, i.e. binary weights that never flip:
# on this small task a *random* ±1 layer after a trained full-precision one is already a fair feature map,
# which is worth knowing before crediting the binary layers with everything.

# %%
from minibnn.bop import Bop, CaseOptimizer, is_binary_kernel


def train_with_bop(gamma):
    minibnn.manual_seed(0)
    model = Sequential(Linear(64, 128, bias=False), BatchNorm1d(128),
                       BinaryLinear(128, 128, bias=False), BatchNorm1d(128),
                       BinaryLinear(128, 10, bias=False), BatchNorm1d(10))
    optimizer = CaseOptimizer(model, (is_binary_kernel, lambda ps: Bop(ps, gamma=gamma, threshold=1e-6)),
                              default=lambda ps: Adam(ps, lr=1e-2))
    flips = FlipRatio(model)
    for epoch in range(EPOCHS):
        model.train()
        for xb, yb in train_loader:
            train_step(model, optimizer, loss_fn, xb, yb)
        flips.update()
    weights = np.unique(model[2].weight.data)
    return evaluate(model, test_loader, loss_fn)[1], flips.history, weights


for gamma in (1e-3, 0.0):
    accuracy, flipped, values = train_with_bop(gamma)
    print(f"Bop γ={gamma:g}: test acc {accuracy:.1%}, weight values {values}, "
          f"share flipped per epoch {[round(f, 4) for f in flipped]}")

# %% [markdown]
# **What to remember.** A binary layer trains float latent weights and computes with their signs; the STE
# carries the gradient, and clipping keeps the latent weights where the STE can still move them. Next,
# `04_xnor_popcount.py` shows why ±1 products are so cheap.
