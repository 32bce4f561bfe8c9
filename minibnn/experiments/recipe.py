"""The training recipe every study shares: the data, the models, and one training run.

* :func:`load_data`: a dataset as a :class:`Data` (the bundled 8x8 digits, two synthetic sets, or MNIST,
  Fashion-MNIST and CIFAR-10 read from local files), standardised with the training statistics;
* :func:`build_model`: one of the papers' architectures (:data:`ARCHS`) from :mod:`minibnn.models`, sized for
  the data, with the per-architecture width and learning rate a study may override (:func:`width_of`,
  :func:`lr_of`);
* :func:`train`: the common recipe (Adam or SGD, the papers' step schedules, seeded shuffles) returning the
  per-epoch curves;
* helpers the studies use to reach into a model: :func:`norm_layers`, :func:`randomize_norm_bias` (Li & Partovi
  Nia's random bias) and :func:`binary_layers`.

Every run seeds itself (``minibnn.manual_seed(seed)`` before the model is built, ``DataLoader(seed=seed)`` for
the shuffles, ``fit(seed=seed)``), so its numbers do not depend on which process runs it or when.

Example:
    >>> from minibnn import manual_seed
    >>> data = load_data("digits", train_limit=200, test_limit=100)
    >>> _ = manual_seed(0)
    >>> model = build_model("mlp", data, width=1 / 64)
    >>> curves = train(model, data, epochs=1, lr=1e-3, batch_size=50, seed=0)
    >>> len(curves["test_acc"]), 0.0 <= curves["final_acc"] <= 100.0, curves["diverged_epoch"]
    (1, True, None)
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .. import _checks
from .. import data as D
from .. import models
from ..data import ArrayDataset, DataLoader
from ..init import RandomBias
from ..layers import BatchNorm1d, BatchNorm2d
from ..losses import CrossEntropyLoss
from ..normalization import FixedScaleNorm
from ..optim import SGD, Adam
from ..quantized import QuantConv2d, QuantLinear
from ..schedulers import MultiStepLR
from ..training import History, evaluate, fit

__all__ = ["DATASETS", "Data", "load_data", "train", "ARCHS", "ARCH_TITLES", "DEFAULT_WIDTHS", "DEFAULT_LRS",
           "width_of", "lr_of", "build_model", "norm_layers", "randomize_norm_bias", "binary_layers"]

#: ``--dataset`` choices: the bundled digits and synthetic sets (offline), or real sets read from ``data_root``
DATASETS = ("digits", "spirals", "gaussian", "mnist", "fashion", "cifar10")
_SYNTHETIC = ("spirals", "gaussian")


# --------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------
class Data(NamedTuple):
    """A train/test split ready for training: float32 inputs standardised with the training statistics."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _raw_data(dataset: str, data_root: Optional[str]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if dataset == "digits":
        (x, y), (xt, yt) = D.load_digits("train"), D.load_digits("test")
        return x[:, None], y, xt[:, None], yt
    if dataset in _SYNTHETIC:
        n_train, n_test = 1500, 500
        if dataset == "spirals":  # three interleaved arms in the plane
            x, y = D.make_spirals(n_train + n_test, classes=3, noise=0.08, seed=1234, turns=1.25)
        else:  # Li & Partovi Nia's data model: N(0, I) points, inside vs outside the median radius
            x, y = D.make_gaussian_points(n_train + n_test, dim=8, seed=1234)
        return x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    if data_root is None:
        raise ValueError(f"dataset {dataset!r} is read from local files: give data_root (--data-root DIR), the "
                         f"folder holding {'cifar-10-batches-bin/' if dataset == 'cifar10' else dataset + '/'}; "
                         f"or use one of the offline sets: digits, {', '.join(_SYNTHETIC)}")
    if dataset == "cifar10":
        (x, y), (xt, yt) = D.load_cifar10(data_root, "train"), D.load_cifar10(data_root, "test")
        return x, y, xt, yt
    kind = "mnist" if dataset == "mnist" else "fashion"
    (x, y), (xt, yt) = D.load_mnist(data_root, "train", kind), D.load_mnist(data_root, "test", kind)
    return x[:, None], y, xt[:, None], yt


@functools.lru_cache(maxsize=8)
def load_data(dataset: str = "digits", data_root: Optional[str] = None, images: bool = False,
              train_limit: Optional[int] = None, test_limit: Optional[int] = None) -> Data:
    """A dataset as a :class:`Data`: images (N, C, H, W) if ``images`` else flat vectors (N, D).

    Inputs are standardised per channel with the training set's mean and standard deviation (as the papers do
    for CIFAR-10). ``train_limit`` / ``test_limit`` keep the first samples of a fixed permutation (seed 0, the
    same for every run and seed). Cached per process; the arrays are read-only.

    Args:
        dataset: one of :data:`DATASETS`; ``digits`` (bundled, 1438 train / 359 test 8x8 images), ``spirals``
            (3 arms in 2-D, 1500/500) and ``gaussian`` (8-D N(0, I), inside/outside the median radius,
            1500/500) need no files; ``mnist``, ``fashion`` and ``cifar10`` are read from ``data_root``.
        data_root: the folder of the real datasets (see :func:`minibnn.data.load_mnist`, ``load_cifar10``).
        images: keep the image layout (needed by convolutional models).
        train_limit, test_limit: at most this many samples (None: all).

    Example:
        >>> d = load_data("digits", images=True)
        >>> d.input_shape, d.num_classes, len(d.y_train), len(d.y_test)
        ((1, 8, 8), 10, 1438, 359)
    """
    _checks.choice("load_data", "dataset", dataset, DATASETS)
    if images and dataset in _SYNTHETIC:
        raise ValueError(f"dataset {dataset!r} holds points, not images, and this experiment's models are "
                         f"convolutional; use digits, mnist, fashion or cifar10")
    x, y, xt, yt = _raw_data(dataset, None if data_root is None else os.fspath(data_root))

    def limit(a, b, n):
        if n is None or n >= len(b):
            return a, b
        keep = np.sort(np.random.default_rng(0).permutation(len(b))[:n])
        return a[keep], b[keep]

    x, y = limit(x, y, train_limit)
    xt, yt = limit(xt, yt, test_limit)
    x, xt = np.asarray(x, np.float32), np.asarray(xt, np.float32)
    axes = (0, 2, 3) if x.ndim == 4 else (0,)
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = x.std(axis=axes, keepdims=True, dtype=np.float64) + 1e-8
    x, xt = ((x - mean) / std).astype(np.float32), ((xt - mean) / std).astype(np.float32)
    if not images:
        x, xt = x.reshape(len(x), -1), xt.reshape(len(xt), -1)
    arrays = [x, np.asarray(y, np.int64), xt, np.asarray(yt, np.int64)]
    for a in arrays:
        a.flags.writeable = False
    return Data(dataset, *arrays, int(max(y.max(), yt.max())) + 1)


# --------------------------------------------------------------------------------------------------------------
# One training run
# --------------------------------------------------------------------------------------------------------------
def train(model, data: Data, *, epochs: int, lr: float, batch_size: int, seed: int, optimizer: str = "adam",
          momentum: float = 0.9, weight_decay: float = 0.0, milestones: Sequence[float] = (),
          extra_loss: Optional[Callable] = None) -> Dict[str, Any]:
    """Train ``model`` on ``data`` with the runs' common recipe and return its per-epoch curves.

    Recipe: mini-batches shuffled by ``DataLoader(seed=seed)``, ``fit(seed=seed)``, Adam (or SGD with momentum)
    at ``lr``, divided by 10 at each fraction of ``epochs`` in ``milestones`` (the papers' step schedules, e.g.
    (80/150, 120/150, 140/150) for Sari et al.), weight constraints applied after each step. A loss that
    stops being finite ends the run early: the curves stop there, ``diverged_epoch`` says when, and the test
    numbers are those of the last finite weights.

    Returns:
        ``{"train_loss", "train_acc", "test_loss", "test_acc": per-epoch lists, "final_acc", "best_acc",
        "diverged_epoch"}`` (accuracies in percent; ``diverged_epoch`` None if the loss stayed finite).
    """
    params = model.parameters()
    if _checks.choice("train", "optimizer", optimizer, ("adam", "sgd")) == "adam":
        opt = Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        opt = SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps = sorted({max(1, int(round(f * epochs))) for f in milestones if int(round(f * epochs)) < epochs})
    scheduler = MultiStepLR(opt, steps, gamma=0.1) if steps else None
    train_loader = DataLoader(ArrayDataset(data.x_train, data.y_train), batch_size, shuffle=True, seed=seed)
    test_loader = DataLoader(ArrayDataset(data.x_test, data.y_test), 512)
    loss_fn = CrossEntropyLoss()
    history, diverged = History(), None
    try:
        fit(model, train_loader, loss_fn, opt, epochs, val_loader=test_loader,
            scheduler=scheduler, extra_loss=extra_loss, progress=False, verbose=False,
            seed=seed, history=history)
    except FloatingPointError:
        diverged = len(history) + 1
    test_acc = [100.0 * a for a in history.val_acc]
    if diverged is None and test_acc:
        final = test_acc[-1]
    else:
        with np.errstate(all="ignore"):
            final = 100.0 * evaluate(model, test_loader, loss_fn)[1]
    return {"train_loss": list(history.train_loss), "train_acc": [100.0 * a for a in history.train_acc],
            "test_loss": list(history.val_loss), "test_acc": test_acc, "final_acc": final,
            "best_acc": max(test_acc + [final]), "diverged_epoch": diverged}


# --------------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------------
#: short architecture names -> (builder in minibnn.models, what it is)
ARCHS = {
    "mlp": ("bnn_mlp", "BinaryNet's MLP: 3 hidden layers of 4096·width units"),
    "vgg-small": ("vgg_small", "Kim et al.'s vgg-small: 64C3-64C3-MP2-128C3-128C3-MP2-512FC-512FC (·width)"),
    "vgg7": ("vgg7", "BinaryNet's VGG-7: 2x128C3-MP2-2x256C3-MP2-2x512C3-MP2-2x1024FC (·width)"),
    "resnet": ("bireal_resnet", "a binary ResNet with Bi-Real shortcuts: 3 stages of 2 blocks, 16-32-64 (·width)"),
}
#: the names used in tables
ARCH_TITLES = {"mlp": "MLP", "vgg-small": "vgg-small", "vgg7": "VGG-7", "resnet": "ResNet"}
#: width multipliers for 8x8 digits when a study's ``widths`` option does not name the arch
DEFAULT_WIDTHS = {"mlp": 1 / 16, "vgg-small": 1 / 4, "vgg7": 1 / 8, "resnet": 0.5}


#: Adam learning rates when a study's ``lrs`` option does not name the arch: Sari et al.'s (5e-3 for the VGG
#: nets, 1e-3 otherwise)
DEFAULT_LRS = {"mlp": 1e-3, "vgg-small": 5e-3, "vgg7": 5e-3, "resnet": 1e-3}


def width_of(opts: Dict[str, Any], arch: str) -> float:
    """The width multiplier of ``arch``: ``opts["widths"][arch]``, else :data:`DEFAULT_WIDTHS`."""
    return float(dict(opts.get("widths") or {}).get(arch, DEFAULT_WIDTHS[arch]))


def lr_of(opts: Dict[str, Any], arch: str) -> float:
    """The learning rate of ``arch``: ``opts["lrs"][arch]``, else :data:`DEFAULT_LRS`."""
    return float(dict(opts.get("lrs") or {}).get(arch, DEFAULT_LRS[arch]))


def build_model(arch: str, data: Data, width: float, **options: Any):
    """``arch`` (a key of :data:`ARCHS`) for ``data``'s input shape and classes, from :mod:`minibnn.models`.

    ``options`` are the builders' common options (quantizers, inits, norm, pool, ...). Call
    ``minibnn.manual_seed(seed)`` first: the initial weights come from the library's generator.
    """
    _checks.choice("build_model", "arch", arch, ARCHS)
    shape = data.input_shape
    if arch == "mlp":
        return models.bnn_mlp(int(np.prod(shape)), data.num_classes, width=width, **options)
    if len(shape) != 3:
        raise ValueError(f"arch {arch!r} is convolutional and needs images, got inputs of shape {shape}")
    if shape[1] != shape[2]:
        raise ValueError(f"arch {arch!r} needs square images, got {shape[1]}x{shape[2]}")
    return models.get(ARCHS[arch][0], in_channels=shape[0], num_classes=data.num_classes, image_size=shape[1],
                      width=width, **options)


def norm_layers(model) -> List[Tuple[str, Any]]:
    """(name, module) of every normalisation with a shift β (``bias``) that feeds an activation.

    That is every BatchNorm / FixedScaleNorm / CentredNorm with an affine bias, except the norms on the
    projection shortcuts of a ResNet (their output is added to the main path's, whose β already shifts the sum).
    """
    found = []
    for name, m in model.named_modules():
        if isinstance(m, (BatchNorm1d, BatchNorm2d, FixedScaleNorm)) and m.bias is not None \
                and ".shortcut" not in f".{name}":
            found.append((name, m))
    return found


def randomize_norm_bias(model, lam: float, seed: int) -> int:
    """Li & Partovi Nia's random bias: every norm shift β (see :func:`norm_layers`) drawn from U[-λ, λ].

    The draws come from their own generator, ``numpy.random.default_rng([seed, 2020])``, so models built from
    the same seed keep identical weights whatever λ is (the paper, Sec. 5: "the same random seed for all
    experiments, so they have identical weight initialization"). λ = 0 leaves β = 0. Returns the number of
    norms changed.
    """
    if lam == 0:
        return 0
    rng = np.random.default_rng([int(seed), 2020])
    layers = norm_layers(model)
    for _, m in layers:
        m.bias.data[...] = RandomBias(lam=lam)(m.bias.shape, rng, m.bias.dtype)
    return len(layers)


def binary_layers(model) -> List[Tuple[str, Any]]:
    """(name, layer) of every QuantLinear / QuantConv2d whose input is quantized (the layers with a binary
    activation in front), in forward order."""
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, (QuantLinear, QuantConv2d)) and m.input_quantizer is not None]
