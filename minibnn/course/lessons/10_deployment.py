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
# # 10 · From training to deployment
#
# > Needs the course install: `pip install "minibnn[course]"` (matplotlib, jupytext, JupyterLab). Run it as a
# > script (`python 10_deployment.py`; figures and files are saved to `./lesson_out/`) or open it as a notebook
# > (`jupyter lab`, then *Open With → Notebook*; figures show below their cells).
#
# The point of a binary network is the model you ship: bits instead of floats, XNOR-popcount instead of
# multiply-adds. In this lesson you take one network all the way:
#
# 1. train it with a learning-rate schedule, saving a checkpoint every epoch, and resume from one;
# 2. **freeze** it: `minibnn.deploy.freeze` packs the binary weights and folds every BatchNorm + sign
#    between binary layers into an integer threshold (lesson 07);
# 3. write a packed binary layer yourself;
# 4. measure the packed size and the speed, save and load the packed model, and check that it predicts
#    exactly what the trained network predicts.
#
# **Exercises**: 10.1 `binary_dense` (3 points), 10.2 `packed_bytes` (1 point). Check your work with
# `minibnn assignments grade 10_deployment.py`.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import minibnn
from minibnn import Tensor, deploy, no_grad
from minibnn.xnor import packing
from minibnn.checkpoint import load_checkpoint, save_checkpoint
from minibnn.course.notebook import output_dir, show
from minibnn.data import ArrayDataset, DataLoader, load_digits
from minibnn.losses import CrossEntropyLoss
from minibnn.models import bnn_mlp
from minibnn.optim import Adam
from minibnn.schedulers import CosineAnnealingLR
from minibnn.training import SaveCheckpoint, fit

out_dir = output_dir()
EPOCHS = 2

# %% [markdown]
# ## 1. Train, with a schedule and checkpoints
#
# `bnn_mlp` is BinaryNet's MLP at any size: a float first layer, binary hidden layers each followed by a
# BatchNorm, a float classifier. A cosine schedule lowers the learning rate to 0 over the run, and
# `SaveCheckpoint` writes model, optimizer and scheduler after every epoch (atomically: a crash never leaves
# half a file).

# %%
x_train, y_train = load_digits("train", flatten=True)
x_test, y_test = load_digits("test", flatten=True)
train_loader = DataLoader(ArrayDataset(x_train, y_train), batch_size=64, shuffle=True, seed=0)
test_loader = DataLoader(ArrayDataset(x_test, y_test), batch_size=512)

minibnn.manual_seed(0)
model = bnn_mlp(in_features=64, num_classes=10, hidden_units=128, num_hidden=3)
optimizer = Adam(model.parameters(), lr=1e-2)
scheduler = CosineAnnealingLR(optimizer, T_max=EPOCHS)
history = fit(model, train_loader, CrossEntropyLoss(), optimizer, epochs=EPOCHS, val_loader=test_loader,
              scheduler=scheduler, callbacks=[SaveCheckpoint(out_dir / "10_mlp-{epoch}.npz")], progress=False, seed=0)
print("learning rate per epoch:", [round(lr[0], 5) for lr in history.lr])
show(history.plot("binary MLP, cosine schedule"), "10_training_curves.png")

# %% [markdown]
# A checkpoint restores everything a run needs to continue: here we rebuild the model from scratch, load the
# epoch-1 checkpoint into it — weights, optimizer moments and the scheduler's position, so a resumed run gets
# the same learning rates as an uninterrupted one.

# %%
restored = bnn_mlp(in_features=64, num_classes=10, hidden_units=128, num_hidden=3)
restored_opt = Adam(restored.parameters(), lr=1e-2)
restored_sched = CosineAnnealingLR(restored_opt, T_max=EPOCHS)
info = load_checkpoint(out_dir / "10_mlp-1.npz", restored, restored_opt, restored_sched)
print("restored epoch", info["epoch"], " learning rate now", restored_sched.get_last_lr())
save_checkpoint(out_dir / "10_final.npz", model, optimizer, scheduler, epoch=EPOCHS)

# %% [markdown]
# ## 2. Freeze
#
# `deploy.freeze(model, input_shape)` reads the model in eval mode and builds a `PackedModel`, a list of
# stages. Float layers stay float; the signs entering a binary layer become bits (one threshold comparison
# per channel); a binary layer keeps only its packed weights; and between two binary layers the BatchNorm and
# the next sign become one **integer** threshold per output (`-> bits`).

# %%
packed = deploy.freeze(model, (64,))
print(packed)

# %% [markdown]
# ## 3. A packed binary layer, by hand
#
# A binary dense stage gets packed inputs (M rows of ⌈K/64⌉ `uint64` words, lesson 04), packed weights
# (N rows), K and one integer threshold per output. It computes the dot products s = K − 2·popcount(x XOR w)
# and outputs +1 where s ≥ threshold, −1 elsewhere.
#
# ### Exercise 10.1 — `binary_dense` (3 points)
#
# Return the (M, N) array of ±1 (any integer dtype). `np.bitwise_count` counts the ones of each word.

# %%
def binary_dense(packed_x, packed_w, k, threshold):
    """±1 where K − 2·popcount(x XOR w) >= threshold (one threshold per output), else −1."""
    # BEGIN SOLUTION: 10.1 binary_dense
    differ = np.bitwise_count(packed_x[:, None, :] ^ packed_w[None, :, :]).sum(axis=-1, dtype=np.int64)
    s = k - 2 * differ
    return np.where(s >= np.asarray(threshold)[None, :], 1, -1).astype(np.int8)
    # END SOLUTION


rng = np.random.default_rng(0)
signs_x = np.where(rng.random((5, 100)) < 0.5, -1.0, 1.0)
signs_w = np.where(rng.random((7, 100)) < 0.5, -1.0, 1.0)
thresholds = rng.integers(-10, 11, size=7)
mine = binary_dense(packing.pack(signs_x), packing.pack(signs_w), 100, thresholds)
print("equals sign-threshold of x @ wᵀ:", np.array_equal(mine, np.where(signs_x @ signs_w.T >= thresholds, 1, -1)))

# %% [markdown]
# ## 4. Size
#
# A binary layer's weight of shape (out, in, ...) is packed filter by filter: each of the `out` filters takes
# ⌈(in·…)/64⌉ words of 8 bytes.
#
# ### Exercise 10.2 — `packed_bytes` (1 point)
#
# Return the bytes of the packed signs of a weight of the given shape.

# %%
def packed_bytes(shape):
    """out · ⌈prod(shape[1:]) / 64⌉ · 8 bytes."""
    # BEGIN SOLUTION: 10.2 packed_bytes
    per_filter = int(np.prod(shape[1:]))
    return shape[0] * ((per_filter + 63) // 64) * 8
    # END SOLUTION


binary_layers = [m for m in model.modules() if getattr(m, "is_binary", False)]
print("your count of the packed binary weights:", sum(packed_bytes(m.weight.shape) for m in binary_layers), "bytes")
report = packed.size_report()          # its packed sizes also count each layer's integer thresholds

# %% [markdown]
# The binary layers shrink 32×; the whole model less, because its first and last layers stay float — which is
# why the papers keep them small.
#
# ## 5. Same predictions, and speed
#
# The packed model must predict exactly what the trained model predicts in eval mode (the folding is exact:
# lesson 07). Then we time both on the test set.

# %%
model.eval()
with no_grad():
    float_logits = model(Tensor(x_test)).data
packed_logits = packed(x_test)
print("same predictions:", np.array_equal(float_logits.argmax(axis=1), packed.predict(x_test)))
print(f"largest logit difference: {np.abs(float_logits - packed_logits).max():.2e}")


def best_time(fn, repeat=5):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def float_forward():
    with no_grad():
        model(Tensor(x_test))


t_float, t_packed = best_time(float_forward), best_time(lambda: packed(x_test))
print(f"float model {t_float * 1e3:.2f} ms, packed {t_packed * 1e3:.2f} ms for {len(x_test)} images")

fig, ax = plt.subplots(figsize=(5, 2.5))
ax.barh(["float32", "packed"], [report.float_total / 1024, report.packed_total / 1024])
ax.set_xlabel("model size (KiB)")
show(fig, "10_model_size.png")

# %% [markdown]
# (At this size the float layers and Python overhead dominate the time; the packed kernels pay off on wide
# layers, as lesson 04's timing showed.)
#
# ## 6. Save, load, check
#
# A packed model saves to one `.npz` file (no pickle) and loads without the training code or the model's
# class. Loaded, it must give the same logits bit for bit.

# %%
path = out_dir / "10_packed.npz"
packed.save(path)
loaded = deploy.load(path)
print(f"{path.name}: {path.stat().st_size / 1024:.1f} KiB on disk")
print("loaded model gives the same logits:", np.array_equal(loaded(x_test), packed_logits))

# %% [markdown]
# **What to remember.** Deployment is a translation with a proof obligation: pack the weights, fold
# BatchNorm + sign into integer thresholds, and *check* that the packed model predicts what the trained one
# does. Checkpoints (with the optimizer and scheduler) make training resumable; the packed file is what you
# ship. Next, `11_running_a_study.py` asks how sure we can be of a result.
