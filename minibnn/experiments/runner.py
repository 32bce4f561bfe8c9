"""What every study shares: sizes, seeds, data, one training run, the parallel sweep, and the files written.

A *study* (one module of this package per paper experiment) is a :class:`Study` with

* ``sizes``: its hyperparameters for each size, ``"tiny"`` (seconds, for the test suite), ``"quick"``
  (minutes on 2 cores, for classrooms) and ``"full"`` (the closest this engine gets to the paper);
* ``configs(opts)``: the points of its sweep, each a dict of JSON values with a unique ``"label"``;
* ``run_one(config, seed, opts)``: train one model on ``self.data(opts)`` and return its numbers (scalars, or
  per-epoch lists);
* ``markdown(result)`` and ``plot(result, fig)``: its table laid out like the paper's, and its figure.

:func:`run_study` then does the rest, the same way for every study:

1. one *task* per (config, seed); every task seeds itself (``minibnn.manual_seed(seed)`` before the model is
   built, ``DataLoader(seed=seed)`` for the shuffles, ``fit(seed=seed)``), so its numbers do not depend on
   which process runs it or when: the same seed gives bit-identical numbers;
2. the tasks run in a ``ProcessPoolExecutor`` of ``workers`` processes (default ``os.cpu_count()``; started
   with ``spawn`` and ``OPENBLAS_NUM_THREADS=1``, one BLAS thread per process), or in this process when
   ``workers=1``, with a tqdm bar over the runs;
3. the runs are put back in task order and summarised per config: mean, standard deviation (``ddof=1``; 0 for a
   single seed), min and max over the seeds;
4. into ``out_dir/<study>/`` go ``runs.csv`` (one row per run), ``summary.csv`` (one row per config),
   ``results.json`` (everything, per-epoch curves included), ``table.md`` (the paper-style table, with the
   paper's numbers beside ours) and ``plot.png`` (skipped, with a note in ``table.md``, without matplotlib).
   Files are written atomically; CSV and JSON floats are written with ``repr``, so they load back bit-exact.
   Timings go to ``results.json`` only, so ``runs.csv`` and ``summary.csv`` are byte-identical across reruns.

Example:
    >>> from minibnn.experiments import run
    >>> result = run("init-variance", size="tiny", seeds=1, workers=1, progress=False, write=False)
    >>> [row["label"] for row in result.summary]
    ['mlp/glorot', 'mlp/0.01']
    >>> result.summary[0]["n"], "best_acc_mean" in result.summary[0], "best_acc_std" in result.summary[0]
    (1, True, True)
"""
from __future__ import annotations

import csv
import functools
import io
import json
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ..atomic import atomic_write

__all__ = ["SIZES", "DATASETS", "Study", "Result", "Data", "register_study", "get_study", "study_names",
           "run_study", "load_data", "train", "ARCHS", "build_model", "norm_layers",
           "randomize_norm_bias", "binary_layers", "width_of", "lr_of", "ARCH_TITLES", "fmt_pm", "md_table",
           "write_text", "COMMON_OPTIONS"]

#: the three sizes of every study: seconds (tests), minutes (classrooms), the long run
SIZES = ("tiny", "quick", "full")
#: ``--dataset`` choices: the bundled digits and synthetic sets (offline), or real sets read from ``data_root``
DATASETS = ("digits", "spirals", "gaussian", "mnist", "fashion", "cifar10")
_SYNTHETIC = ("spirals", "gaussian")
_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
#: options every study has (its sizes add the rest): the data, and how many samples to keep of it
COMMON_OPTIONS: Dict[str, Any] = {"dataset": "digits", "data_root": None, "train_limit": None, "test_limit": None}


# --------------------------------------------------------------------------------------------------------------
# Studies and their registry
# --------------------------------------------------------------------------------------------------------------
class Study:
    """Base class of a study; see the module docstring for what a subclass defines.

    Attributes:
        name: the command name (``minibnn experiment NAME``).
        title: one line naming the experiment and its paper.
        metric: the headline number of ``run_one`` (the one its table reports).
        sizes: ``{size: {option: value}}``; every size has the same option names.
        default_seeds: ``{size: number of seeds}``.
    """

    name = ""
    title = ""
    metric = "test_acc"
    sizes: Dict[str, Dict[str, Any]] = {}
    default_seeds = {"tiny": 2, "quick": 3, "full": 5}

    def options(self, size: str, overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """The options of ``size`` with ``overrides`` applied (unknown names raise a ValueError listing them)."""
        if size not in SIZES:
            raise ValueError(f"{self.name}: size must be one of {', '.join(SIZES)}, got {size!r}")
        opts = dict(self.sizes[size])
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        unknown = sorted(set(overrides) - set(opts))
        if unknown:
            raise ValueError(f"experiment {self.name!r}: unknown option(s) {unknown}; its options are "
                             f"{sorted(opts)}")
        opts.update(overrides)
        opts["size"] = size
        return opts

    def images(self, opts: Dict[str, Any]) -> bool:
        """Whether the runs need images (N, C, H, W): True unless every arch of ``opts`` is the MLP, which also
        takes flat points (so the synthetic sets ``spirals`` and ``gaussian`` work with MLP-only sweeps)."""
        archs = opts.get("archs") or (opts.get("arch"),)
        return any(a != "mlp" for a in archs)

    def data(self, opts: Dict[str, Any]) -> "Data":
        """The dataset of the runs, as ``opts`` names it (:func:`load_data`, cached per process)."""
        return load_data(opts["dataset"], opts.get("data_root"), self.images(opts), opts.get("train_limit"),
                         opts.get("test_limit"))

    def configs(self, opts: Dict[str, Any]) -> List[Dict[str, Any]]:
        raise NotImplementedError

    def run_one(self, config: Dict[str, Any], seed: int, opts: Dict[str, Any]) -> Dict[str, Any]:
        raise NotImplementedError

    def analyse(self, result: "Result") -> Dict[str, Any]:
        """Derived numbers over the whole sweep (e.g. the shift chosen from first-epoch accuracy); default none."""
        return {}

    def markdown(self, result: "Result") -> str:
        raise NotImplementedError

    def plot(self, result: "Result", fig) -> None:
        raise NotImplementedError


_STUDIES: Dict[str, Study] = {}


def register_study(study: Study) -> Study:
    """Add a study to the registry that :func:`run_study` and ``minibnn experiment`` look names up in."""
    if not study.name or study.name in _STUDIES:
        raise ValueError(f"register_study: the name {study.name!r} is empty or taken")
    missing = [s for s in SIZES if s not in study.sizes]
    if missing:
        raise ValueError(f"register_study: study {study.name!r} has no options for size(s) {missing}")
    _STUDIES[study.name] = study
    return study


def study_names() -> List[str]:
    """The registered study names, in registration order (the order of the papers' sections)."""
    return list(_STUDIES)


def get_study(name: str) -> Study:
    if name not in _STUDIES:
        raise ValueError(f"unknown experiment {name!r}; the experiments are: {', '.join(_STUDIES)}")
    return _STUDIES[name]


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
    from .. import data as D

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
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
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
    from ..data import ArrayDataset, DataLoader
    from ..losses import CrossEntropyLoss
    from ..optim import SGD, Adam
    from ..schedulers import MultiStepLR
    from ..training import History, evaluate, fit

    params = model.parameters()
    if optimizer == "adam":
        opt = Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"train: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
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
    from .. import models

    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
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
    from ..layers import BatchNorm1d, BatchNorm2d
    from ..normalization import FixedScaleNorm

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
    from ..init import RandomBias

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
    from ..quantized import QuantConv2d, QuantLinear

    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, (QuantLinear, QuantConv2d)) and m.input_quantizer is not None]


# --------------------------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Result:
    """Everything a sweep produced.

    Attributes:
        study, size: what ran.
        seeds: the seeds (the same for every config).
        options: the study's options for this run (size defaults plus overrides, dataset included).
        configs: the sweep's points, in order.
        runs: one dict per (config, seed), in config-then-seed order: the config's fields, ``seed``, and the
            numbers ``run_one`` returned (lists are per-epoch curves).
        summary: one dict per config: its fields, ``n`` and ``<metric>_mean/_std/_min/_max`` for every scalar
            metric.
        analysis: the study's derived numbers (:meth:`Study.analyse`).
        seconds: wall time of the sweep; ``run_seconds``: wall time of each run (same order as ``runs``).
        workers: processes used.
        files: ``{kind: path}`` of the files written.
    """

    study: str
    size: str
    seeds: List[int]
    options: Dict[str, Any]
    configs: List[Dict[str, Any]]
    runs: List[Dict[str, Any]]
    summary: List[Dict[str, Any]] = field(default_factory=list)
    analysis: Dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    run_seconds: List[float] = field(default_factory=list)
    workers: int = 1
    files: Dict[str, str] = field(default_factory=dict)

    def row(self, label: str) -> Dict[str, Any]:
        """The summary row of the config labelled ``label``."""
        for row in self.summary:
            if row["label"] == label:
                return row
        raise KeyError(f"{self.study}: no config labelled {label!r}; labels: {[r['label'] for r in self.summary]}")

    def values(self, label: str, metric: str) -> List[Any]:
        """``metric`` of every seed of the config labelled ``label``."""
        return [r[metric] for r in self.runs if r["label"] == label]

    def pm(self, label: str, metric: str, digits: int = 2) -> str:
        """"mean ± std" of ``metric`` over the seeds of config ``label``."""
        row = self.row(label)
        return fmt_pm(row[f"{metric}_mean"], row[f"{metric}_std"], digits)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, np.integer, np.floating))


def _summarise(configs: List[Dict[str, Any]], runs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    summary = []
    for config in configs:
        mine = [r for r in runs if r["label"] == config["label"]]
        row = dict(config)
        row["n"] = len(mine)
        metrics = [k for k in mine[0] if k not in config and k != "seed" and _is_scalar(mine[0][k])]
        for m in metrics:
            values = np.array([np.nan if r[m] is None else float(r[m]) for r in mine], dtype=np.float64)
            finite = values[np.isfinite(values)]
            row[f"{m}_mean"] = float(finite.mean()) if finite.size else math.nan
            row[f"{m}_std"] = float(finite.std(ddof=1)) if finite.size > 1 else (0.0 if finite.size else math.nan)
            row[f"{m}_min"] = float(finite.min()) if finite.size else math.nan
            row[f"{m}_max"] = float(finite.max()) if finite.size else math.nan
        summary.append(row)
    return summary


def _run_task(task: Tuple[str, Dict[str, Any], int, Dict[str, Any]]) -> Tuple[Dict[str, Any], float]:
    """Run one (config, seed) of a study; module-level so a worker process can unpickle it."""
    name, config, seed, opts = task
    started = time.perf_counter()
    numbers = get_study(name).run_one(config, seed, opts)
    return numbers, time.perf_counter() - started


def _worker_init() -> None:
    for var in _BLAS_VARIABLES:
        os.environ[var] = "1"


class _SingleThreadedBlasEnv:
    """Set the BLAS thread variables to 1 while worker processes start (spawned children read them at import)."""

    def __enter__(self):
        self.saved = {v: os.environ.get(v) for v in _BLAS_VARIABLES}
        for v in _BLAS_VARIABLES:
            os.environ[v] = "1"

    def __exit__(self, *exc):
        for v, old in self.saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


def _progress(total: int, description: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is an optional extra
        print(f"{description}: {total} runs (install tqdm for a progress bar)", file=sys.stderr)
        return None
    return tqdm(total=total, desc=description, unit="run", dynamic_ncols=True)


def _execute(tasks: List[tuple], workers: int, progress: bool, description: str) -> List[Tuple[dict, float]]:
    """Run the tasks, in this process (workers=1) or in a pool; return their outputs in task order."""
    bar = _progress(len(tasks), description, progress)
    outputs: List[Optional[Tuple[dict, float]]] = [None] * len(tasks)
    try:
        if workers == 1:
            for i, task in enumerate(tasks):
                outputs[i] = _run_task(task)
                if bar is not None:
                    bar.update(1)
        else:
            with _SingleThreadedBlasEnv():
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                         initializer=_worker_init) as pool:
                    futures = {pool.submit(_run_task, task): i for i, task in enumerate(tasks)}
                    for future in as_completed(futures):
                        outputs[futures[future]] = future.result()
                        if bar is not None:
                            bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return outputs  # type: ignore[return-value]


def _check_seeds(seeds, default: int) -> List[int]:
    if seeds is None:
        seeds = default
    if isinstance(seeds, (bool, np.bool_)):
        raise TypeError(f"seeds must be a number of seeds or a list of seeds, got {seeds!r}")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 (the number of seeds), got {seeds}")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct non-negative integers, got {list(seeds)}")
    return out


def run_study(name: str, *, seeds: Union[int, Sequence[int], None] = None, size: str = "full",
              out_dir: Optional[Union[str, os.PathLike]] = "results", workers: Optional[int] = None,
              progress: bool = True, write: bool = True, **overrides: Any) -> Result:
    """Run study ``name`` over its configs and seeds; write its files; return the :class:`Result`.

    See :func:`minibnn.experiments.run` for the arguments.
    """
    study = get_study(name)
    opts = study.options(size, overrides)
    seeds = _check_seeds(seeds, study.default_seeds[size])
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    # load (and check) the data once here, so a missing file fails before any worker starts
    study.data(opts)
    configs = study.configs(opts)
    labels = [c["label"] for c in configs]
    if len(set(labels)) != len(labels):
        raise RuntimeError(f"{name}: config labels are not unique: {labels}")
    tasks = [(name, config, seed, opts) for config in configs for seed in seeds]
    workers = int(min(workers, len(tasks)))
    started = time.perf_counter()
    outputs = _execute(tasks, workers, progress, f"{name} ({size}, {len(seeds)} seed{'s' * (len(seeds) > 1)})")
    seconds = time.perf_counter() - started
    runs = []
    for (_, config, seed, _), (numbers, _) in zip(tasks, outputs):
        clash = set(numbers) & (set(config) | {"seed"})
        if clash:
            raise RuntimeError(f"{name}.run_one returned keys {sorted(clash)} that clash with the config")
        runs.append({**config, "seed": seed, **numbers})
    result = Result(study=name, size=size, seeds=seeds, options=opts, configs=configs, runs=runs,
                    summary=_summarise(configs, runs), seconds=seconds, run_seconds=[o[1] for o in outputs],
                    workers=workers)
    result.analysis = study.analyse(result)
    if write:
        if out_dir is None:
            raise ValueError("run_study: out_dir is None but write=True")
        write_outputs(study, result, os.path.join(os.fspath(out_dir), name))
    return result


# --------------------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------------------
def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, then ``os.replace``)."""
    with atomic_write(path, "w") as f:
        f.write(text)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def _csv(rows: List[Dict[str, Any]]) -> str:
    columns: List[str] = []
    for row in rows:
        columns += [k for k, v in row.items() if k not in columns and _is_scalar_or_text(v)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def _is_scalar_or_text(value: Any) -> bool:
    return _is_scalar(value) or isinstance(value, str)


def _jsonable(value: Any) -> Any:
    """Plain JSON values: NumPy scalars and arrays to Python ones, NaN and infinities to None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _environment() -> Dict[str, Any]:
    from .. import __version__

    return {"minibnn": __version__, "numpy": np.__version__, "python": sys.version.split()[0],
            "cpu_count": os.cpu_count()}


def write_outputs(study: Study, result: Result, folder: str) -> Dict[str, str]:
    """Write runs.csv, summary.csv, results.json, table.md and plot.png into ``folder``; fill ``result.files``."""
    files = {"runs": os.path.join(folder, "runs.csv"), "summary": os.path.join(folder, "summary.csv"),
             "json": os.path.join(folder, "results.json"), "markdown": os.path.join(folder, "table.md")}
    write_text(files["runs"], _csv(result.runs))
    write_text(files["summary"], _csv(result.summary))
    plot_path = os.path.join(folder, "plot.png")
    plot_note = _save_plot(study, result, plot_path)
    if plot_note is None:
        files["plot"] = plot_path
    markdown = study.markdown(result).rstrip() + "\n"
    footer = (f"\n_{result.study}, size {result.size}, seeds {result.seeds}, dataset {result.options['dataset']}, "
              f"{len(result.runs)} runs on {result.workers} process{'es' * (result.workers > 1)} in "
              f"{result.seconds:.1f} s; mean ± std over seeds (std with ddof=1)._\n")
    if plot_note is not None:
        footer += f"\n_{plot_note}_\n"
    write_text(files["markdown"], markdown + footer)
    document = {"study": result.study, "title": study.title, "size": result.size, "seeds": result.seeds,
                "options": result.options, "configs": result.configs, "summary": result.summary,
                "analysis": result.analysis, "runs": result.runs,
                "timing": {"seconds": result.seconds, "workers": result.workers, "run_seconds": result.run_seconds},
                "environment": _environment(), "files": {k: os.path.basename(v) for k, v in files.items()}}
    write_text(files["json"], json.dumps(_jsonable(document), indent=1, allow_nan=False) + "\n")
    result.files = files
    return files


def _save_plot(study: Study, result: Result, path: str) -> Optional[str]:
    """Draw the study's figure into ``path`` (atomically); return None, or a note saying why it was skipped."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return "plot.png skipped: matplotlib is not installed (pip install matplotlib)."
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    study.plot(result, fig)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    return None


# --------------------------------------------------------------------------------------------------------------
# Formatting helpers for the studies' tables
# --------------------------------------------------------------------------------------------------------------
def fmt_pm(mean: float, std: float, digits: int = 2) -> str:
    """"mean ± std" with ``digits`` decimals ("–" for a missing value).

    Example:
        >>> fmt_pm(91.234, 0.5)
        '91.23 ± 0.50'
    """
    if mean is None or not math.isfinite(mean):
        return "–"
    if std is None or not math.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table: a header row, a separator and one line per row (cells converted with ``str``)."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
