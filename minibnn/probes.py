"""Probes: record what chosen layers output in forward and receive in backward, and their statistics.

Sari et al. 2019 follow the variance of each layer's pre-activations s^l and of their gradients dL/ds^l through
a network (V(s^l) = V(x) Π K_l' V(w^l'), and the same product backwards for the gradient): at initialization
it tells whether signals explode or vanish, during training whether BatchNorm keeps them in check. Kim et al.
2020 follow the share of +1 among a binary layer's outputs. An :class:`ActivationRecorder` measures both:

* in forward, a hook on each chosen module (``Module.register_forward_hook``) adds the module's output to a
  running :class:`RunningStats` (mean, variance, min/max, shares of positive values, zeros, +1 and -1);
* on that output it registers a Tensor hook (``Tensor.register_hook``), so in backward dL/d(output) is added
  to a second RunningStats. Under ``no_grad`` outputs carry no graph, so only forward statistics are kept.

Statistics are merged batch after batch (Chan et al.'s pairwise update), so memory stays constant however long
you record; ``keep_arrays=True`` also keeps copies of every output and gradient, for your own analysis.
Leaving the ``with`` block removes every hook, forward and backward.

Example:
    >>> import numpy as np
    >>> from minibnn import Sequential, Tensor
    >>> from minibnn.layers import Linear, Hardtanh
    >>> model = Sequential(Linear(4, 8, dtype=np.float64), Hardtanh(), Linear(8, 2, dtype=np.float64))
    >>> with ActivationRecorder(model, layers=["0", "2"]) as rec:
    ...     out = model(Tensor(np.random.default_rng(0).standard_normal((32, 4))))
    ...     (out * out).sum().backward()
    >>> rec["0"].output.count, rec["0"].grad.count, model[0]._forward_hooks
    (256, 256, [])
"""
from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence

import numpy as np

from .module import Module
from .tensor import Tensor

__all__ = ["RunningStats", "LayerRecord", "ActivationRecorder", "LayerVariance", "variance_profile"]


class RunningStats:
    """Mean, variance, extremes and value shares of every number seen so far, updated one array at a time.

    Merging a batch b into the running totals a (Chan, Golub & LeVeque 1979), in float64:
        n = n_a + n_b,  mean = mean_a + δ n_b / n,  M2 = M2_a + M2_b + δ² n_a n_b / n,  δ = mean_b - mean_a,
    so ``var = M2 / n`` equals ``np.var`` (ddof=0) of all values concatenated, without keeping them.

    Example:
        >>> s = RunningStats(); s.update(np.array([1.0, -1.0, 1.0])); s.update(np.array([1.0]))
        >>> s.count, s.mean, round(s.var, 12), s.plus_one_fraction, s.is_binary
        (4, 0.5, 0.75, 0.75, True)
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Forget everything seen."""
        self.count = 0
        self.mean = math.nan
        self._m2 = 0.0
        self.min = math.nan
        self.max = math.nan
        self._positive = self._zero = self._plus_one = self._minus_one = 0

    def update(self, values) -> None:
        """Add every element of ``values`` (any shape; a Tensor or an array)."""
        a = np.asarray(getattr(values, "data", values), dtype=np.float64).ravel()
        n_b = a.size
        if n_b == 0:
            return
        mean_b = float(a.mean())
        m2_b = float(np.dot(a - mean_b, a - mean_b))
        if self.count == 0:
            self.mean, self._m2 = mean_b, m2_b
            self.min, self.max = float(a.min()), float(a.max())
        else:
            n = self.count + n_b
            delta = mean_b - self.mean
            self.mean += delta * n_b / n
            self._m2 += m2_b + delta * delta * self.count * n_b / n
            self.min, self.max = min(self.min, float(a.min())), max(self.max, float(a.max()))
        self.count += n_b
        self._positive += int(np.count_nonzero(a > 0))
        self._zero += int(np.count_nonzero(a == 0))
        self._plus_one += int(np.count_nonzero(a == 1))
        self._minus_one += int(np.count_nonzero(a == -1))

    def _share(self, k: int) -> float:
        return k / self.count if self.count else math.nan

    var = property(lambda self: self._m2 / self.count if self.count else math.nan,
                   doc="Population variance (ddof=0) of all values seen; NaN before any.")
    std = property(lambda self: math.sqrt(self.var) if self.count else math.nan, doc="sqrt(var).")
    positive_fraction = property(lambda self: self._share(self._positive), doc="Share of values > 0.")
    zero_fraction = property(lambda self: self._share(self._zero), doc="Share of values == 0 (e.g. ReLU's).")
    plus_one_fraction = property(lambda self: self._share(self._plus_one), doc="Share of values == +1.")
    minus_one_fraction = property(lambda self: self._share(self._minus_one), doc="Share of values == -1.")
    is_binary = property(lambda self: self.count > 0 and self._plus_one + self._minus_one == self.count,
                         doc="True if every value seen was +1 or -1 (a sign layer's output).")

    def as_dict(self) -> Dict[str, float]:
        """The statistics as a plain dict."""
        return {"count": self.count, "mean": self.mean, "var": self.var, "std": self.std, "min": self.min,
                "max": self.max, "positive_fraction": self.positive_fraction, "zero_fraction": self.zero_fraction,
                "plus_one_fraction": self.plus_one_fraction, "minus_one_fraction": self.minus_one_fraction}

    def __repr__(self) -> str:
        return f"RunningStats(count={self.count}, mean={self.mean:.4g}, var={self.var:.4g})"


class LayerRecord:
    """What was recorded for one module.

    Attributes:
        name: the module's dotted name in the model ("" for the model itself).
        module: the module.
        output: :class:`RunningStats` of its outputs over every forward call.
        grad: :class:`RunningStats` of dL/d(output) over every backward pass that reached the output.
        outputs, grads: copies of each output / gradient array, in call order (only with ``keep_arrays``;
            else empty lists).
    """

    def __init__(self, name: str, module: Module):
        self.name, self.module = name, module
        self.output, self.grad = RunningStats(), RunningStats()
        self.outputs: List[np.ndarray] = []
        self.grads: List[np.ndarray] = []

    def reset(self) -> None:
        self.output.reset()
        self.grad.reset()
        self.outputs.clear()
        self.grads.clear()

    def __repr__(self) -> str:
        return f"LayerRecord({self.name!r}, output={self.output!r}, grad={self.grad!r})"


class ActivationRecorder:
    """Record the outputs (forward) and output gradients (backward) of chosen modules while the block runs.

    Args:
        model: the Module to probe.
        layers: names of modules to record, as in ``model.named_modules()`` ("0", "block.fc", ...).
        layer_types: a class or tuple of classes; every module of those types is recorded.
            With both ``layers`` and ``layer_types``, modules matching either are recorded. With neither, every
            leaf module (one without children) is; the model itself if it has no children.
        keep_arrays: also keep a copy of every output and gradient (memory grows with every call).
        record_grads: register the backward (Tensor) hooks; False records forward statistics only.

    Use it as a context manager (hooks are removed on exit, also when an exception leaves the block), or call
    :meth:`remove` yourself. Gradients are recorded for backward passes run while the hooks are in place.
    A module called several times in one forward is recorded once per call.

    Example:
        >>> from minibnn import Sequential, Tensor
        >>> from minibnn.layers import Linear, ReLU
        >>> model = Sequential(Linear(3, 5), ReLU())
        >>> with ActivationRecorder(model, layer_types=ReLU) as rec:
        ...     _ = model(Tensor(np.ones((2, 3), dtype=np.float32)))
        >>> rec.names, rec["1"].output.count
        (['1'], 10)
    """

    def __init__(self, model: Module, layers: Optional[Iterable[str]] = None, layer_types=None,
                 keep_arrays: bool = False, record_grads: bool = True):
        if not isinstance(model, Module):
            raise TypeError(f"ActivationRecorder: model must be a minibnn Module, got {type(model).__name__}")
        named = OrderedDict(model.named_modules())
        chosen = set()
        if layers is not None:
            if isinstance(layers, str):
                layers = [layers]
            for name in layers:
                if name not in named:
                    raise KeyError(f"ActivationRecorder: the model has no module named {name!r}; its modules are "
                                   f"{[n for n in named if n]}")
                chosen.add(name)
        if layer_types is not None:
            types = layer_types if isinstance(layer_types, tuple) else (layer_types,)
            if not types or not all(isinstance(t, type) for t in types):
                raise TypeError(f"ActivationRecorder: layer_types must be a class or a tuple of classes, "
                                f"got {layer_types!r}")
            chosen.update(name for name, m in named.items() if isinstance(m, types))
        if layers is None and layer_types is None:
            chosen.update(name for name, m in named.items() if not m._modules)
        if not chosen:
            raise ValueError(f"ActivationRecorder: no module of the model matches layers={layers!r}, "
                             f"layer_types={layer_types!r}")
        self.model = model
        self.keep_arrays, self.record_grads = bool(keep_arrays), bool(record_grads)
        self.records: "OrderedDict[str, LayerRecord]" = OrderedDict(
            (name, LayerRecord(name, m)) for name, m in named.items() if name in chosen)
        self._removers: List[Callable[[], None]] = []
        self._tensor_hooks: list = []   # (weakref to an output tensor, its hook): removed on exit
        self._active = False
        self._attach()

    # ---- hooks -------------------------------------------------------------------------------------------
    def _attach(self) -> None:
        for record in self.records.values():
            self._removers.append(record.module.register_forward_hook(self._forward_hook(record)))
        self._active = True

    def _forward_hook(self, record: LayerRecord):
        def hook(module, inputs, output):
            if not self._active:
                return None
            if not isinstance(output, Tensor):
                raise TypeError(f"ActivationRecorder: module {record.name!r} ({type(module).__name__}) returned "
                                f"{type(output).__name__}; only Tensor outputs can be recorded")
            record.output.update(output.data)
            if self.keep_arrays:
                record.outputs.append(np.array(output.data, copy=True))
            if self.record_grads and output.requires_grad:
                self._watch_gradient(record, output)
            return None

        return hook

    def _watch_gradient(self, record: LayerRecord, output: Tensor) -> None:
        def grad_hook(grad):
            if self._active:
                record.grad.update(grad)
                if self.keep_arrays:
                    record.grads.append(np.array(grad, copy=True))
            return None

        output.register_hook(grad_hook)
        # Weak references only: the recorder must not keep old graphs alive. Dead ones are dropped as we go.
        if len(self._tensor_hooks) >= 64:
            self._tensor_hooks = [(ref, h) for ref, h in self._tensor_hooks if ref() is not None]
        self._tensor_hooks.append((weakref.ref(output), grad_hook))

    def remove(self) -> None:
        """Remove every hook this recorder placed, on modules and on output tensors; the statistics stay."""
        self._active = False
        for remover in self._removers:
            remover()
        self._removers.clear()
        for ref, hook in self._tensor_hooks:
            tensor = ref()
            if tensor is not None and hook in tensor._hooks:
                tensor._hooks.remove(hook)
        self._tensor_hooks.clear()

    def __enter__(self) -> "ActivationRecorder":
        if not self._active:
            raise RuntimeError("ActivationRecorder: its hooks were removed; make a new recorder")
        return self

    def __exit__(self, *exc) -> bool:
        self.remove()
        return False

    # ---- reading -----------------------------------------------------------------------------------------
    @property
    def names(self) -> List[str]:
        """The recorded modules' names, in the order of the model's tree."""
        return list(self.records)

    def __getitem__(self, name: str) -> LayerRecord:
        if name not in self.records:
            raise KeyError(f"ActivationRecorder: {name!r} is not recorded; recorded layers are {self.names}")
        return self.records[name]

    def __iter__(self):
        return iter(self.records.values())

    def reset(self) -> None:
        """Forget the statistics (and arrays) recorded so far, e.g. at the start of each epoch."""
        for record in self.records.values():
            record.reset()

    def summary(self) -> "OrderedDict[str, Dict[str, Dict[str, float]]]":
        """``{name: {"output": stats, "grad": stats}}`` with :meth:`RunningStats.as_dict` statistics."""
        return OrderedDict((name, {"output": r.output.as_dict(), "grad": r.grad.as_dict()})
                           for name, r in self.records.items())

    def __repr__(self) -> str:
        state = "recording" if self._active else "removed"
        return f"ActivationRecorder({state}, layers={self.names})"


class LayerVariance(NamedTuple):
    """Variance (ddof=0, over batch and units) of a layer's output and of dL/d(output)."""

    output_var: float
    grad_var: float


def variance_profile(model: Module, x, upstream=None, layers: Optional[Sequence[str]] = None, layer_types=None,
                     seed: int = 0) -> "OrderedDict[str, LayerVariance]":
    """One forward and one backward pass; V(output) and V(dL/d output) of each chosen layer (Sari et al. 2019).

    The backward pass starts from ``upstream`` = dL/d(model output); by default iid N(0, 1) entries, i.e.
    V(dL/ds^L) = 1 as in Sari et al.'s recursions, so each layer's gradient variance reads directly as the
    product of the factors K_l' V(w^l') (or the BatchNorm factors) between it and the output. The parameters'
    ``.grad`` are left as they were.

    Args:
        model: a minibnn Module whose parameters require gradients.
        x: input batch (array or Tensor); converted to the dtype of the model's parameters.
        upstream: dL/d(output), an array of the output's shape; default standard normal drawn from ``seed``.
        layers, layer_types: which modules, as in :class:`ActivationRecorder` (default: every leaf module).

    Returns:
        OrderedDict from layer name to :class:`LayerVariance`, in the order of the model's tree.

    Example:
        >>> from minibnn import Sequential
        >>> from minibnn.layers import Linear
        >>> model = Sequential(Linear(64, 64, dtype=np.float64), Linear(64, 64, dtype=np.float64))
        >>> profile = variance_profile(model, np.random.default_rng(0).standard_normal((256, 64)))
        >>> list(profile), profile["1"].grad_var > 0.9
        (['0', '1'], True)
    """
    params = model.parameters()
    dtype = params[0].dtype if params else np.dtype(np.float32)
    data = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=dtype))
    saved = [(p, p.grad) for p in params]
    try:
        with ActivationRecorder(model, layers=layers, layer_types=layer_types) as recorder:
            out = model(data)
            if not isinstance(out, Tensor) or not out.requires_grad:
                raise RuntimeError("variance_profile: the model's output does not require grad (are gradients "
                                   "disabled by no_grad, or do no parameters require grad?)")
            if upstream is None:
                upstream = np.random.default_rng(seed).standard_normal(out.shape)
            upstream = np.asarray(getattr(upstream, "data", upstream), dtype=out.dtype)
            if upstream.shape != out.shape:
                raise ValueError(f"variance_profile: upstream has shape {upstream.shape}, expected the model "
                                 f"output's shape {out.shape}")
            out.backward(upstream)
    finally:
        for p, grad in saved:
            p.grad = grad
    return OrderedDict((r.name, LayerVariance(r.output.var, r.grad.var)) for r in recorder)
