"""Training loops: ``fit`` a model for some epochs, ``evaluate`` it, and keep a per-epoch ``History``.

One training step, the whole idea:

    out = model(Tensor(x));  loss = loss_fn(out, y) [+ extra_loss(model)]
    optimizer.zero_grad();  loss.backward();  optimizer.step();  apply_constraints(model)

``fit`` wraps that step in the loops over batches and epochs and adds what a real run needs: train/eval modes,
a tqdm progress bar, per-epoch lines, validation, a learning-rate scheduler, callbacks (e.g. saving a checkpoint
every epoch), a clear error when the loss stops being a finite number, and seeding for repeatable runs.

Batches come from any iterable of ``(x, y)`` NumPy pairs, such as :class:`minibnn.data.DataLoader`: ``x`` is
wrapped in a Tensor of the model's dtype (float32 by default), ``y`` is passed to the loss as a NumPy array
(integer class labels for classification).

Repeatable runs: call ``minibnn.manual_seed(s)`` before building the model (initial weights), give the
DataLoader a ``seed`` (shuffling), and pass ``seed=s`` to ``fit`` (dropout masks and anything else drawn from
the library's generator during training). The same seeds then give bit-identical weights and histories.

Example:
    >>> import numpy as np
    >>> import minibnn
    >>> from minibnn.data import ArrayDataset, DataLoader, make_blobs
    >>> from minibnn.layers import Linear
    >>> from minibnn.losses import CrossEntropyLoss
    >>> from minibnn.optim import Adam
    >>> x, y = make_blobs(200, centers=3, dim=2, seed=0)
    >>> loader = DataLoader(ArrayDataset(x, y), batch_size=50, shuffle=True, seed=0)
    >>> _ = minibnn.manual_seed(0)
    >>> model = Linear(2, 3)
    >>> history = fit(model, loader, CrossEntropyLoss(), Adam(model.parameters(), lr=0.1), epochs=5,
    ...               progress=False, verbose=False)
    >>> history.train_acc[-1] > 0.9
    True
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import _checks
from .constraints import apply_constraints
from .checkpoint import save_checkpoint
from .module import Module
from .random import manual_seed
from .tensor import Tensor, no_grad

__all__ = ["History", "fit", "evaluate", "SaveCheckpoint"]

#: ``metric(outputs, labels) -> float``: the batch's value of a metric (a mean over the batch's samples).
Metric = Callable[[np.ndarray, np.ndarray], float]


class History:
    """What happened in each epoch of a ``fit``: one list per quantity, one entry per epoch.

    Attributes:
        epoch: the epoch numbers (from 1).
        train_loss, train_acc: means over the epoch's training batches, weighted by batch size (the loss
            without ``extra_loss``; the accuracy is None when the outputs are not class scores).
        val_loss, val_acc: on ``val_loader`` after the epoch, in evaluation mode (None without one).
        extra_loss: mean of ``extra_loss(model)`` over the batches (None without one).
        lr: the learning rate of each parameter group during the epoch (a list per epoch).
        time: seconds spent in the epoch (training and validation).
        metrics: ``{"train_<name>": [...], "val_<name>": [...]}`` for the ``metrics`` given to ``fit``.
    """

    FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "extra_loss", "lr", "time")

    def __init__(self):
        for name in self.FIELDS:
            setattr(self, name, [])
        self.metrics: Dict[str, List[Optional[float]]] = {}

    def __len__(self) -> int:
        return len(self.epoch)

    def append(self, metrics: Optional[Dict[str, Optional[float]]] = None, **row: Any) -> None:
        """Add one epoch: a value for each of ``FIELDS`` (as keywords), and the epoch's ``metrics``."""
        missing = [name for name in self.FIELDS if name not in row]
        unknown = [name for name in row if name not in self.FIELDS]
        if missing or unknown:
            raise ValueError(f"History.append: missing fields {missing}, unknown fields {unknown}")
        for name in self.FIELDS:
            getattr(self, name).append(row[name])
        for name, value in (metrics or {}).items():
            self.metrics.setdefault(name, [None] * (len(self) - 1)).append(value)

    def to_dict(self) -> Dict[str, Any]:
        """Plain lists and numbers (JSON-able; storable in a checkpoint's ``extra``)."""
        out = {name: list(getattr(self, name)) for name in self.FIELDS}
        out["metrics"] = {k: list(v) for k, v in self.metrics.items()}
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "History":
        """The inverse of ``to_dict`` (e.g. to continue a run restored from a checkpoint)."""
        history = cls()
        for name in cls.FIELDS:
            setattr(history, name, list(data[name]))
        history.metrics = {k: list(v) for k, v in data.get("metrics", {}).items()}
        return history

    def plot(self, title: Optional[str] = None):
        """Loss (left) and accuracy (right) per epoch, training and validation; returns the matplotlib Figure.

        Needs matplotlib (``pip install "minibnn[course]"``). Curves without values (no validation, no accuracy)
        are left out. In a notebook the figure shows below the cell; ``fig.savefig(path)`` saves it.

        Example:
            >>> import matplotlib
            >>> matplotlib.use("Agg")
            >>> h = History()
            >>> for e in (1, 2):
            ...     h.append(epoch=e, train_loss=1.0 / e, train_acc=0.5 + 0.1 * e, val_loss=1.2 / e, val_acc=0.5,
            ...              extra_loss=None, lr=[0.01], time=0.1)
            >>> [ax.get_ylabel() for ax in h.plot().axes]
            ['loss', 'accuracy']
        """
        import matplotlib.pyplot as plt  # optional dependency: imported only when a plot is asked for

        fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(8, 3))
        for ax, kind in ((loss_ax, "loss"), (acc_ax, "acc")):
            for split, style in (("train", "-o"), ("val", "--s")):
                values = getattr(self, f"{split}_{kind}")
                points = [(e, v) for e, v in zip(self.epoch, values) if v is not None]
                if points:
                    ax.plot(*zip(*points), style, markersize=3, label=split)
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss" if kind == "loss" else "accuracy")
            if ax.lines:
                ax.legend()
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        if not len(self):
            return "History(0 epochs)"
        last = {k: getattr(self, k)[-1] for k in ("train_loss", "train_acc", "val_loss", "val_acc")}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if v is not None)
        return f"History({len(self)} epochs, last: {shown})"


# --------------------------------------------------------------------------------------------------------------
# One pass over a loader
# --------------------------------------------------------------------------------------------------------------
def _model_dtype(model: Module) -> np.dtype:
    params = model.parameters()
    return params[0].dtype if params else np.dtype(np.float32)


def _correct(out: np.ndarray, y: np.ndarray) -> Optional[int]:
    """How many rows of class scores ``out`` (N, C) have their maximum at the label ``y`` (N,); None if the
    outputs are not class scores for integer labels."""
    if out.ndim != 2 or y.ndim != 1 or y.shape[0] != out.shape[0] or y.dtype.kind not in "iu":
        return None
    return int(np.count_nonzero(out.argmax(axis=1) == y))


class _Totals:
    """Sums over the batches of one pass, turned into means at the end."""

    def __init__(self, metric_names: Iterable[str]):
        self.n = 0
        self.loss = 0.0
        self.extra = 0.0
        self.correct: Optional[int] = 0
        self.metrics = {name: 0.0 for name in metric_names}

    def add(self, n: int, loss: float, correct: Optional[int], metrics: Dict[str, float], extra: float = 0.0):
        self.n += n
        self.loss += loss * n
        self.extra += extra * n
        self.correct = None if correct is None or self.correct is None else self.correct + correct
        for name, value in metrics.items():
            self.metrics[name] += float(value) * n

    def mean(self, what: str) -> Optional[float]:
        if self.n == 0:
            return None
        if what == "acc":
            return None if self.correct is None else self.correct / self.n
        return (self.loss if what == "loss" else self.extra) / self.n

    def mean_metrics(self) -> Dict[str, Optional[float]]:
        return {name: (total / self.n if self.n else None) for name, total in self.metrics.items()}


def _batch(xb, yb, dtype) -> Tuple[Tensor, np.ndarray]:
    return Tensor(np.asarray(xb, dtype=dtype)), np.asarray(yb)


def _evaluate(model: Module, loader: Iterable, loss_fn: Callable, metrics: Dict[str, Metric]) -> _Totals:
    was_training = model.training
    model.eval()
    dtype = _model_dtype(model)
    totals = _Totals(metrics)
    try:
        with no_grad():
            for xb, yb in loader:
                x, y = _batch(xb, yb, dtype)
                out = model(x)
                loss = float(loss_fn(out, y).item())
                totals.add(len(y), loss, _correct(out.data, y), {k: f(out.data, y) for k, f in metrics.items()})
    finally:
        model.train(was_training)
    return totals


def evaluate(model: Module, loader: Iterable, loss_fn: Callable) -> Tuple[float, Optional[float]]:
    """Mean loss and accuracy of ``model`` over ``loader``, in evaluation mode and without recording a graph.

    The model's mode (train or eval) is restored afterwards.

    Args:
        model: the module (called on a Tensor batch).
        loader: an iterable of ``(x, y)`` NumPy batches.
        loss_fn: ``loss_fn(outputs, y) -> Tensor`` returning the batch mean (e.g. ``CrossEntropyLoss()``).

    Returns:
        ``(loss, accuracy)``: means over all samples, each batch weighted by its size; accuracy (in [0, 1])
        is None when the outputs are not (N, C) class scores for (N,) integer labels.

    Example:
        >>> import numpy as np
        >>> from minibnn.layers import Linear
        >>> from minibnn.losses import CrossEntropyLoss
        >>> model = Linear(2, 2)
        >>> loss, acc = evaluate(model, [(np.zeros((4, 2)), np.array([0, 1, 0, 1]))], CrossEntropyLoss())
        >>> round(loss, 4), acc   # zero inputs give equal scores: argmax picks class 0
        (0.6931, 0.5)
    """
    totals = _evaluate(model, loader, loss_fn, {})
    if totals.n == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    return totals.mean("loss"), totals.mean("acc")


# --------------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------------
def _fmt(value: Optional[float], percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if percent else f"{value:.4f}"


def _progress_bar(loader: Iterable, enabled: bool, description: str):
    if not enabled:
        return loader
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        raise ImportError("fit(progress=True) needs tqdm: pip install tqdm (or pass progress=False)") from None
    total = len(loader) if hasattr(loader, "__len__") else None
    return tqdm(loader, total=total, desc=description, leave=False, unit="batch", dynamic_ncols=True)


def _train_epoch(model: Module, loader: Iterable, loss_fn: Callable, optimizer, extra_loss, metrics, progress: bool,
                 epoch: str) -> _Totals:
    """One pass of training steps over ``loader``; ``epoch`` ("3/10") names it in the bar and in errors."""
    model.train()
    dtype = _model_dtype(model)
    totals = _Totals(metrics)
    n_batches = len(loader) if hasattr(loader, "__len__") else "?"
    bar = _progress_bar(loader, progress, f"epoch {epoch}")
    try:
        for b, (xb, yb) in enumerate(bar, start=1):
            x, y = _batch(xb, yb, dtype)
            out = model(x)
            loss = loss_fn(out, y)
            total, extra = loss, 0.0
            if extra_loss is not None:
                penalty = extra_loss(model)
                total = loss + penalty
                extra = float(penalty.item()) if isinstance(penalty, Tensor) else float(penalty)
            value = float(total.item())
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"fit: the loss became {value} in epoch {epoch}, batch {b}/{n_batches} (data loss "
                    f"{float(loss.item())}, extra loss {extra}); the parameters were not updated with this "
                    f"batch. Lower the learning rate, check the inputs for NaN/Inf, or clip the gradients.")
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            apply_constraints(model)
            totals.add(len(y), float(loss.item()), _correct(out.data, y),
                       {k: f(out.data, y) for k, f in metrics.items()}, extra)
            if progress:
                acc = totals.mean("acc")
                bar.set_postfix_str(f"loss {totals.mean('loss'):.4f}" + ("" if acc is None else
                                                                       f" acc {100 * acc:.1f}%"), refresh=False)
    finally:
        if progress:
            bar.close()
    if totals.n == 0:
        raise ValueError(f"fit: the training loader yielded no batches in epoch {epoch}")
    return totals


def fit(model: Module, train_loader: Iterable, loss_fn: Callable, optimizer, epochs: int, *,
        val_loader: Optional[Iterable] = None, scheduler=None,
        extra_loss: Optional[Callable[[Module], Tensor]] = None, metrics: Optional[Dict[str, Metric]] = None,
        callbacks: Sequence[Callable[..., Optional[bool]]] = (), progress: bool = True, verbose: bool = True,
        seed: Optional[int] = None, history: Optional[History] = None) -> History:
    """Train ``model`` for ``epochs`` epochs; return the per-epoch :class:`History`.

    Each batch: ``loss = loss_fn(model(x), y) + extra_loss(model)``, then ``optimizer.zero_grad()``,
    ``loss.backward()``, ``optimizer.step()``, then each layer's weight constraint (e.g. the latent-weight clip of
    binary layers, :func:`minibnn.constraints.apply_constraints`). After each epoch: validation (if ``val_loader``), then
    ``scheduler.step()`` (if any), then the per-epoch line, then the callbacks.

    Args:
        model: the module to train (put in training mode at the start of every epoch).
        train_loader: an iterable of ``(x, y)`` NumPy batches, re-iterated every epoch (e.g. a DataLoader).
        loss_fn: ``loss_fn(outputs, y) -> Tensor``, the mean loss of a batch (e.g. ``CrossEntropyLoss()``).
        optimizer: an :class:`~minibnn.optim.Optimizer` (or any object with ``zero_grad()``, ``step()`` and
            ``param_groups``).
        epochs: how many epochs to run (>= 0).
        val_loader: batches to evaluate on after every epoch (eval mode, no graph).
        scheduler: a learning-rate scheduler, stepped once per epoch.
        extra_loss: ``extra_loss(model) -> Tensor``, a scalar added to every batch's loss, e.g. a weight
            regularizer: ``extra_loss=lambda m: 1e-4 * sum((p * p).sum() for p in m.parameters())``.
        metrics: ``{name: metric(outputs, y) -> float}``, batch means, averaged over the epoch for training and
            validation; recorded in ``history.metrics["train_<name>"]`` and ``["val_<name>"]``.
        callbacks: functions called after every epoch as ``callback(epoch=, model=, optimizer=, scheduler=,
            history=)``; a callback returning True stops the training after that epoch. See
            :class:`SaveCheckpoint`.
        progress: show a tqdm progress bar over each epoch's batches (running loss and accuracy).
        verbose: print one line per epoch (loss, accuracy, learning rate, time).
        seed: if given, ``minibnn.manual_seed(seed)`` first (the generator behind dropout and other random
            layers), for repeatable runs.
        history: a History to continue (its epochs are kept and numbering goes on from them).

    Returns:
        The History (the one given, extended, or a new one).

    Raises:
        FloatingPointError: the loss of a batch is NaN or infinite; the message names the epoch and batch.
            The parameters are not updated with that batch.
    """
    epochs = _checks.nonnegative_int("fit", "epochs", epochs)
    if not isinstance(model, Module):
        raise TypeError(f"fit: model must be a minibnn Module, got {type(model).__name__}")
    if seed is not None:
        manual_seed(seed)
    metrics = dict(metrics or {})
    history = History() if history is None else history
    first = len(history) + 1
    last = len(history) + int(epochs)
    for epoch in range(first, last + 1):
        started = time.perf_counter()
        lrs = [float(g["lr"]) for g in optimizer.param_groups if "lr" in g]
        totals = _train_epoch(model, train_loader, loss_fn, optimizer, extra_loss, metrics, progress,
                              f"{epoch}/{last}")
        val = _evaluate(model, val_loader, loss_fn, metrics) if val_loader is not None else None
        if scheduler is not None:
            scheduler.step()
        row_metrics = {f"train_{k}": v for k, v in totals.mean_metrics().items()}
        if val is not None:
            row_metrics.update((f"val_{k}", v) for k, v in val.mean_metrics().items())
        history.append(epoch=epoch, train_loss=totals.mean("loss"), train_acc=totals.mean("acc"),
                       val_loss=None if val is None else val.mean("loss"),
                       val_acc=None if val is None else val.mean("acc"),
                       extra_loss=None if extra_loss is None else totals.mean("extra"),
                       lr=lrs, time=time.perf_counter() - started, metrics=row_metrics)
        if verbose:
            line = (f"epoch {epoch:>{len(str(last))}}/{last}  train loss {_fmt(totals.mean('loss'))} "
                    f"acc {_fmt(totals.mean('acc'), True)}")
            if val is not None:
                line += f"  val loss {_fmt(val.mean('loss'))} acc {_fmt(val.mean('acc'), True)}"
            if extra_loss is not None:
                line += f"  extra {_fmt(totals.mean('extra'))}"
            line += f"  lr {lrs[0]:.3g}" if lrs else ""
            line += f"  {history.time[-1]:.1f}s"
            print(line, file=sys.stdout, flush=True)
        stop = False
        for callback in callbacks:
            stop = bool(callback(epoch=epoch, model=model, optimizer=optimizer, scheduler=scheduler,
                                 history=history)) or stop
        if stop:
            break
    return history


class SaveCheckpoint:
    """A ``fit`` callback that saves a checkpoint after every ``every`` epochs (atomically, see
    :func:`minibnn.checkpoint.save_checkpoint`), with the history in its ``extra`` (``{"history": ...}``).

    Args:
        path: the file; ``{epoch}`` in it is replaced by the epoch number to keep one file per epoch
            (``"runs/mlp-{epoch:03d}.npz"``), otherwise each save replaces the previous one.
        every: save after epochs every, 2·every, ...

    Example:
        >>> callback = SaveCheckpoint("runs/mlp-{epoch:03d}.npz")
        >>> callback.path_for(7)
        'runs/mlp-007.npz'
    """

    def __init__(self, path, every: int = 1):
        self.path, self.every = os.fspath(path), _checks.positive_int("SaveCheckpoint", "every", every)

    def path_for(self, epoch: int) -> str:
        return self.path.format(epoch=epoch)

    def __call__(self, epoch: int, model: Module, optimizer=None, scheduler=None,
                 history: Optional[History] = None) -> None:
        if epoch % self.every == 0:
            extra = {"history": history.to_dict()} if history is not None else None
            save_checkpoint(self.path_for(epoch), model, optimizer, scheduler, epoch=epoch, extra=extra)

    def __repr__(self) -> str:
        return f"SaveCheckpoint({self.path!r}, every={self.every})"
