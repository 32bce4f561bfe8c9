"""Hyperplane geometry of a layer: which data points make which units pass gradient (Li & Partovi Nia 2020).

A layer z = W x + b with W of shape (m, d) cuts the input space with m hyperplanes w_j·x + b_j = 0. A unit
passes gradient back only for points in its *active region* (Li & Partovi Nia 2020, Sec. 3, eqs. 4-6):

    ReLU:   A_ij = 1[z_ij > 0]        a half-space (the gradient of max(z, 0) is 0 at z = 0)
    htanh:  A_ij = 1[|z_ij| <= 1]     a band of width 2/||w_j|| around the hyperplane (edges included, as in
                                      minibnn's Hardtanh, clip and the clipped STE 1_[-1,1] of Sari et al. 2019)

where z_ij = w_j·x_i + b_j. The n x m boolean *activation pattern* A is all this module needs; three measures
read it, one per property the paper names (its words are qualitative, so the precise definitions are ours):

* data equality: how many units each point activates, k_i = Σ_j A_ij ("an arbitrary data point is located on
  activated regions of approximately half of the total hyper-planes"). With ReLU and zero-centred z, k_i/m is
  near 1/2 for every point; with htanh and zero bias, points near the origin activate many more units.
* hyperplane equality: how many points activate each unit, c_j = Σ_i A_ij ("an arbitrary hyper-plane is
  affected by the backward gradients from approximately 50% of the total data points").
* region diversity: how differently the units split the data ("different hyper-planes learn from a different
  subset of data points"): the number of distinct patterns A_i. (the cells of the arrangement that hold data),
  their entropy, and the mean Jaccard distance between the point sets of two units.

Each equality is summarised by its mean share, standard deviation, coefficient of variation and Gini
coefficient (see :class:`Equality`). Closed forms for the *expected* shares live in
:mod:`minibnn.theory.random_bias` (``expected_active_share``, ``datum_hyperplane_share``,
``hyperplane_data_share``); this module *measures* them on given weights and data. ``model_geometry`` does it
for every Linear layer of a model, and ``plot_active_regions`` / ``plot_relu_vs_htanh`` draw the paper's
Figs. 1 and 3 for 2-D inputs.

Example:
    >>> import numpy as np
    >>> W = np.array([[1.0, 0.0], [0.0, 1.0]]); b = np.zeros(2)         # the two axes
    >>> x = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [2.0, -3.0]])
    >>> A = activation_pattern(pre_activations((W, b), x), "relu")
    >>> A.astype(int).tolist()
    [[1, 1], [0, 1], [0, 0], [1, 0]]
    >>> data_equality(A).counts.tolist(), region_diversity(A).n_regions
    ([2, 1, 0, 1], 4)
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Optional, Union

import numpy as np

from .. import _checks
from ..atomic import atomic_write
from ..probes import ActivationRecorder
from ..tensor import Tensor, no_grad

__all__ = [
    "ACTIVATIONS", "pre_activations", "activation_pattern", "gini",
    "Equality", "data_equality", "hyperplane_equality", "RegionDiversity", "region_diversity",
    "LayerGeometry", "layer_geometry", "linear_layers", "model_geometry", "format_geometry",
    "plot_active_regions", "plot_relu_vs_htanh",
]

#: The activations whose active region this module knows (the sign function with the clipped STE has the
#: same active region as htanh: gradient flows where |z| <= 1).
ACTIVATIONS = ("relu", "htanh")


# --------------------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------------------
def _array(value) -> np.ndarray:
    """The float64 NumPy array of a Tensor, Parameter or array-like."""
    return np.asarray(getattr(value, "data", value), dtype=np.float64)


def _weight_and_bias(who: str, layer):
    """(W, b) from a ``(W, b)`` / ``(W,)`` pair or a module with ``.weight`` (m, d) and ``.bias`` (m,) or None."""
    if isinstance(layer, (tuple, list)):
        if len(layer) not in (1, 2):
            raise ValueError(f"{who}: layer must be (W, b), (W,) or a module with .weight and .bias, "
                             f"got a sequence of length {len(layer)}")
        weight, bias = layer[0], (layer[1] if len(layer) == 2 else None)
    elif hasattr(layer, "weight"):
        weight, bias = layer.weight, getattr(layer, "bias", None)
    else:
        raise TypeError(f"{who}: layer must be (W, b), (W,) or a module with .weight and .bias, "
                        f"got {type(layer).__name__}")
    W = _array(weight)
    if W.ndim != 2:
        raise ValueError(f"{who}: the weight must have shape (out_features, in_features), got shape {W.shape}")
    b = np.zeros(W.shape[0]) if bias is None else _array(bias)
    if b.shape != (W.shape[0],):
        raise ValueError(f"{who}: the bias must have shape ({W.shape[0]},) to match the weight of shape "
                         f"{W.shape}, got shape {b.shape}")
    return W, b


def _check_pattern(who: str, pattern) -> np.ndarray:
    A = np.asarray(pattern)
    if A.ndim != 2 or A.dtype != np.bool_:
        raise ValueError(f"{who}: pattern must be a boolean array of shape (n_points, n_units) as returned by "
                         f"activation_pattern, got {A.dtype} array of shape {A.shape}")
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise ValueError(f"{who}: pattern must have at least one point and one unit, got shape {A.shape}")
    return A


# --------------------------------------------------------------------------------------------------------------
# Pre-activations and activation patterns
# --------------------------------------------------------------------------------------------------------------
def pre_activations(layer, x) -> np.ndarray:
    """z = x Wᵀ + b in float64: z[i, j] = w_j·x_i + b_j, the signed position of point i w.r.t. hyperplane j.

    Args:
        layer: ``(W, b)``, ``(W,)`` (no bias) or a module with a ``.weight`` of shape (m, d) and a ``.bias`` of
            shape (m,) or None (a minibnn ``Linear``). Arrays, Tensors and Parameters are all accepted. A module
            is read through its stored parameters: for a layer that binarizes its weight in ``forward``, pass the
            weight it really uses, or measure its outputs with :func:`model_geometry`.
        x: data of shape (n, d).

    Returns:
        float64 array of shape (n, m).

    Example:
        >>> pre_activations((np.array([[2.0, 0.0]]), np.array([-1.0])), np.array([[1.0, 5.0]])).tolist()
        [[1.0]]
    """
    W, b = _weight_and_bias("pre_activations", layer)
    X = _array(x)
    if X.ndim != 2 or X.shape[1] != W.shape[1]:
        raise ValueError(f"pre_activations: x has shape {X.shape}, expected (n, {W.shape[1]}) to match the weight "
                         f"of shape {W.shape}")
    return X @ W.T + b


def activation_pattern(z, activation: str) -> np.ndarray:
    """A = 1[z > 0] for "relu", A = 1[|z| <= 1] for "htanh": where the unit passes gradient (Li & Partovi Nia 2020).

    The boundary conventions follow minibnn's own derivatives: ReLU's gradient is 0 at z = 0 (the paper's eq. 5,
    "W x + b <= 0" is inactive), htanh's is 1 at z = ±1 (the clipped STE 1_[-1,1] includes its edges).

    Args:
        z: pre-activations, any shape (a Tensor or an array).
        activation: "relu" or "htanh".

    Returns:
        boolean array of the shape of ``z``.

    Example:
        >>> z = np.array([-1.5, -1.0, 0.0, 1.0, 1.5])
        >>> activation_pattern(z, "relu").astype(int).tolist(), activation_pattern(z, "htanh").astype(int).tolist()
        ([0, 0, 0, 1, 1], [0, 1, 1, 1, 0])
    """
    activation = _checks.choice("activation_pattern", "activation", activation, ACTIVATIONS)
    z = _array(z)
    return z > 0 if activation == "relu" else np.abs(z) <= 1


# --------------------------------------------------------------------------------------------------------------
# Equality of points and of hyperplanes
# --------------------------------------------------------------------------------------------------------------
def gini(counts) -> float:
    """G = Σ_i Σ_k |c_i - c_k| / (2 N² mean(c)): 0 when all N counts are equal, (N-1)/N when one holds everything.

    The population Gini coefficient (no small-sample correction) of non-negative numbers; NaN when all are 0
    (0/0: no item has anything, so "equal" is meaningless). Computed in O(N log N) from the sorted values:
    G = 2 Σ_i i c_(i) / (N Σ c) - (N + 1) / N, with c_(1) <= ... <= c_(N).

    Example:
        >>> gini([3, 3, 3]), gini([0, 0, 0, 8])
        (0.0, 0.75)
    """
    c = np.sort(np.asarray(counts, dtype=np.float64).ravel())
    if c.size == 0 or np.any(c < 0):
        raise ValueError(f"gini: counts must be a non-empty array of non-negative numbers, got {counts!r}")
    total = c.sum()
    if total == 0:
        return math.nan
    n = c.size
    g = 2.0 * np.dot(np.arange(1, n + 1), c) / (n * total) - (n + 1) / n
    return float(max(g, 0.0))  # clamp the -1e-16 of rounding when all counts are equal


@dataclass(frozen=True)
class Equality:
    """How evenly active units are shared out: per-point counts (data equality) or per-unit counts (hyperplane).

    With ``counts`` c_1..c_N (each between 0 and ``total``) and shares s_i = c_i / total:

    Attributes:
        counts: int64 array (N,), the count of each point (units it activates) or unit (points activating it).
        total: the largest possible count (m units for points, n points for units).
        mean: mean share  (1/N) Σ s_i  — the share of active (point, unit) pairs.
        std: population standard deviation of the shares (ddof=0).
        cv: coefficient of variation std / mean (scale-free; NaN when every count is 0). 0 = perfect equality.
        gini: Gini coefficient of the counts (see :func:`gini`; NaN when every count is 0). 0 = perfect equality.
        min, max: smallest and largest share.
        zero_fraction: share of items with count 0 (points that send no gradient back / dead units).
        full_fraction: share of items with count ``total`` (points that reach every unit / units every point uses).
    """

    counts: np.ndarray
    total: int
    mean: float
    std: float
    cv: float
    gini: float
    min: float
    max: float
    zero_fraction: float
    full_fraction: float

    @classmethod
    def from_counts(cls, counts, total: int) -> "Equality":
        """Summarise integer ``counts`` out of ``total``."""
        counts = np.asarray(counts, dtype=np.int64)
        shares = counts / float(total)
        mean, std = float(shares.mean()), float(shares.std())
        return cls(counts=counts, total=int(total), mean=mean, std=std,
                   cv=std / mean if mean > 0 else math.nan, gini=gini(counts),
                   min=float(shares.min()), max=float(shares.max()),
                   zero_fraction=float(np.mean(counts == 0)), full_fraction=float(np.mean(counts == total)))

    def histogram(self) -> np.ndarray:
        """h[k] = how many items have count k, for k = 0..total (the distribution the paper's Fig. 3 colours)."""
        return np.bincount(self.counts, minlength=self.total + 1)


def data_equality(pattern) -> Equality:
    """Per point i, k_i = Σ_j A_ij: how many of the m units point i activates (so sends gradient through).

    Li & Partovi Nia 2020, Sec. 3 (ii): with ReLU every point activates about half the units; with htanh and
    zero bias, points near the origin activate (almost) all, far points (almost) none.

    Args:
        pattern: boolean array (n, m) from :func:`activation_pattern`.

    Returns:
        :class:`Equality` over the n points, with ``total = m``.

    Example:
        >>> data_equality(np.array([[True, True], [True, False]])).counts.tolist()
        [2, 1]
    """
    A = _check_pattern("data_equality", pattern)
    return Equality.from_counts(A.sum(axis=1), A.shape[1])


def hyperplane_equality(pattern) -> Equality:
    """Per unit j, c_j = Σ_i A_ij: how many of the n points activate unit j (so update its hyperplane).

    Li & Partovi Nia 2020, Sec. 3 (iii): with zero bias every unit sees a similar share of the data (ReLU about
    half); random biases break this (a unit with a large bias sees less data).

    Args:
        pattern: boolean array (n, m) from :func:`activation_pattern`.

    Returns:
        :class:`Equality` over the m units, with ``total = n``.

    Example:
        >>> hyperplane_equality(np.array([[True, True], [True, False]])).counts.tolist()
        [2, 1]
    """
    A = _check_pattern("hyperplane_equality", pattern)
    return Equality.from_counts(A.sum(axis=0), A.shape[0])


# --------------------------------------------------------------------------------------------------------------
# Region diversity
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegionDiversity:
    """How differently the units split the data.

    Attributes:
        n_regions: number of distinct rows of A, i.e. of cells of the arrangement (for htanh: of the overlaps of
            bands, each unit being "in" or "out" of its band) that hold at least one point. At most min(n, 2^m).
        region_sizes: int64 array, the number of points in each of those cells, largest first.
        entropy: Shannon entropy in bits of the points' distribution over cells, -Σ p_r log2 p_r, p_r = size_r/n.
            0 when all points share one pattern, log2(n) when every point has its own.
        mean_jaccard_distance: mean over unit pairs j < k of 1 - |S_j ∩ S_k| / |S_j ∪ S_k|, S_j the set of points
            activating unit j (two empty sets count as identical, distance 0). 1 = the units learn from disjoint
            subsets of the data, 0 = all from the same subset. NaN with a single unit.
    """

    n_regions: int
    region_sizes: np.ndarray
    entropy: float
    mean_jaccard_distance: float


def region_diversity(pattern) -> RegionDiversity:
    """Distinct activation patterns among the points, their entropy, and the mean Jaccard distance between units.

    Li & Partovi Nia 2020, Sec. 3 (i): ReLU's active regions "solely depend on the direction of the weight
    vector", so different units learn from different subsets of the data; htanh's zero-bias bands all cover
    the dense area near the origin. Cost O(n m²) for the Jaccard distances (a Gram matrix of A).

    Args:
        pattern: boolean array (n, m) from :func:`activation_pattern`.

    Returns:
        :class:`RegionDiversity`.

    Example:
        >>> r = region_diversity(np.array([[True, False], [False, True], [True, False], [False, True]]))
        >>> r.n_regions, r.entropy, r.mean_jaccard_distance
        (2, 1.0, 1.0)
    """
    A = _check_pattern("region_diversity", pattern)
    n, m = A.shape
    _, sizes = np.unique(np.packbits(A, axis=1), axis=0, return_counts=True)
    sizes = np.sort(sizes)[::-1].astype(np.int64)
    p = sizes / float(n)
    entropy = float(-np.sum(p * np.log2(p)))
    if m < 2:
        jaccard = math.nan
    else:
        F = A.astype(np.float64)
        inter = F.T @ F
        size = np.diag(inter)
        union = size[:, None] + size[None, :] - inter
        j, k = np.triu_indices(m, 1)
        u = union[j, k]
        similarity = np.where(u > 0, inter[j, k] / np.where(u > 0, u, 1.0), 1.0)
        jaccard = float(np.mean(1.0 - similarity))
    return RegionDiversity(n_regions=int(sizes.size), region_sizes=sizes, entropy=max(entropy, 0.0),
                           mean_jaccard_distance=jaccard)


# --------------------------------------------------------------------------------------------------------------
# A layer, a model
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerGeometry:
    """The three measures of one layer on one data set, and the pattern they were read from."""

    activation: str
    pattern: np.ndarray
    data: Equality
    hyperplanes: Equality
    regions: RegionDiversity

    def summary(self) -> Dict[str, float]:
        """The scalar measures as a flat dict (for printing or logging)."""
        return {
            "active_share": self.data.mean,
            "data_cv": self.data.cv, "data_gini": self.data.gini, "dead_points": self.data.zero_fraction,
            "hyperplane_cv": self.hyperplanes.cv, "hyperplane_gini": self.hyperplanes.gini,
            "dead_units": self.hyperplanes.zero_fraction,
            "regions": float(self.regions.n_regions), "region_entropy": self.regions.entropy,
            "jaccard": self.regions.mean_jaccard_distance,
        }


def _geometry_of(z: np.ndarray, activation: str) -> LayerGeometry:
    A = activation_pattern(z, activation)
    return LayerGeometry(activation=activation, pattern=A, data=data_equality(A),
                         hyperplanes=hyperplane_equality(A), regions=region_diversity(A))


def layer_geometry(layer, x, activation: str) -> LayerGeometry:
    """The activation pattern of ``layer`` on ``x`` and its data equality, hyperplane equality and region diversity.

    Args:
        layer: ``(W, b)``, ``(W,)`` or a module with ``.weight`` (m, d) and ``.bias`` (see :func:`pre_activations`).
        x: data (n, d).
        activation: "relu" or "htanh".

    Example:
        >>> rng = np.random.default_rng(0)
        >>> g = layer_geometry((rng.standard_normal((64, 2)), np.zeros(64)), rng.standard_normal((500, 2)), "relu")
        >>> round(g.data.mean, 1)
        0.5
    """
    _checks.choice("layer_geometry", "activation", activation, ACTIVATIONS)
    return _geometry_of(pre_activations(layer, x), activation)


def linear_layers(model) -> "OrderedDict[str, object]":
    """Every sub-module of ``model`` (itself included) with a 2-D ``.weight``: the Linear-like layers, by name.

    Example:
        >>> from minibnn.layers import Linear, ReLU
        >>> from minibnn import Sequential
        >>> list(linear_layers(Sequential(Linear(2, 3), ReLU(), Linear(3, 1))))
        ['0', '2']
    """
    return OrderedDict((name, module) for name, module in model.named_modules()
                       if getattr(getattr(module, "weight", None), "ndim", None) == 2)


def model_geometry(model, x, activation: Union[str, Mapping[str, str]],
                   layers: Optional[Iterable[str]] = None) -> "OrderedDict[str, LayerGeometry]":
    """Feed ``x`` through ``model`` once (under ``no_grad``) and measure the geometry of each chosen layer's output.

    The output of a Linear layer is the pre-activation z = x_l Wᵀ + b of its units, where x_l is what the
    layer really received from the layers before it (and W what it really used, binarized or not). It is
    captured with a forward hook (:class:`minibnn.probes.ActivationRecorder`) and read with
    :func:`activation_pattern`. Pass ``layers`` to measure other outputs, e.g. the BatchNorm that sits between a
    Linear and its activation (then that BatchNorm's output is what the activation sees).

    The model runs in its current mode: call ``model.eval()`` first if BatchNorm should use running statistics.

    Args:
        model: a minibnn Module.
        x: input batch (an array or Tensor) of shape (n, ...); converted to the dtype of the model's parameters.
        activation: "relu" or "htanh" for every layer, or a dict from layer name to one of those.
        layers: names (as in ``model.named_modules()``) of the modules whose outputs to measure; default
            every Linear-like module (:func:`linear_layers`). Each output must have shape (n, units).

    Returns:
        OrderedDict from layer name to :class:`LayerGeometry`, in the order of the model's tree.

    Example:
        >>> from minibnn.layers import Linear, Hardtanh
        >>> from minibnn import Sequential
        >>> model = Sequential(Linear(2, 16), Hardtanh(), Linear(16, 16), Hardtanh())
        >>> geo = model_geometry(model, np.random.default_rng(0).standard_normal((200, 2)), "htanh")
        >>> list(geo), geo["0"].pattern.shape
        (['0', '2'], (200, 16))
    """
    names = list(linear_layers(model)) if layers is None else list(layers)
    if not names:
        raise ValueError("model_geometry: the model has no Linear-like layer (a module with a 2-D .weight); "
                         "name the modules to measure with layers=[...]")
    if isinstance(activation, str):
        activation = _checks.choice("model_geometry", "activation", activation, ACTIVATIONS)
        per_layer = {name: activation for name in names}
    else:
        missing = [name for name in names if name not in activation]
        if missing:
            raise KeyError(f"model_geometry: activation has no entry for layer(s) {missing}; it names "
                           f"{sorted(activation)}")
        per_layer = {name: _checks.choice("model_geometry", f"activation[{name!r}]", activation[name], ACTIVATIONS)
                     for name in names}
    params = model.parameters()
    dtype = params[0].dtype if params else np.dtype(np.float32)
    data = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=dtype))
    with no_grad(), ActivationRecorder(model, layers=names, keep_arrays=True) as recorder:
        model(data)
    result = OrderedDict()
    for name in recorder.names:
        outputs = recorder[name].outputs
        if not outputs:
            raise RuntimeError(f"model_geometry: layer {name!r} was not called by model.forward")
        z = np.concatenate(outputs, axis=0) if len(outputs) > 1 else outputs[0]
        if z.ndim != 2:
            raise ValueError(f"model_geometry: layer {name!r} returned shape {z.shape}; only outputs of shape "
                             f"(n, units) have one hyperplane per unit")
        result[name] = _geometry_of(z, per_layer[name])
    return result


def format_geometry(results: Mapping[str, LayerGeometry]) -> str:
    """A plain-text table of :meth:`LayerGeometry.summary`, one row per layer.

    Example:
        >>> print(format_geometry({"fc": layer_geometry((np.eye(2),), np.eye(2), "relu")}).splitlines()[0].split()[:3])
        ['layer', 'act', 'active_share']
    """
    columns = ["active_share", "data_cv", "data_gini", "dead_points", "hyperplane_cv", "hyperplane_gini",
               "dead_units", "regions", "region_entropy", "jaccard"]
    width = max([5] + [len(str(name)) for name in results])
    lines = [f"{'layer':<{width}}  {'act':<5}  " + "  ".join(f"{c:>{len(c)}}" for c in columns)]
    for name, geo in results.items():
        s = geo.summary()
        cells = [f"{int(s[c]):>{len(c)}d}" if c == "regions" else f"{s[c]:>{len(c)}.3f}" for c in columns]
        lines.append(f"{name:<{width}}  {geo.activation:<5}  " + "  ".join(cells))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Pictures (matplotlib, optional)
# --------------------------------------------------------------------------------------------------------------
def _matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("minibnn.theory.geometry: plotting needs matplotlib, an optional dependency of minibnn; "
                          "install it with `pip install matplotlib`") from error
    return matplotlib, Figure


def _save_png(fig, path) -> None:
    """Write ``fig`` to ``path`` atomically: into a temporary file of the same folder, then renamed."""
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=fig.dpi)


def _draw_line(ax, w: np.ndarray, level: float, extent: float, **style) -> None:
    """Draw {x in R²: w·x = level} across the square [-extent, extent]² (nothing if w = 0)."""
    norm2 = float(w @ w)
    if norm2 == 0.0:
        return
    foot = level * w / norm2                       # the point of the line closest to the origin
    direction = np.array([-w[1], w[0]]) / math.sqrt(norm2)
    reach = 2.0 * extent + float(np.linalg.norm(foot))
    ends = np.stack([foot - reach * direction, foot + reach * direction])
    ax.plot(ends[:, 0], ends[:, 1], **style)


def plot_active_regions(layer, activation: str, x=None, extent: float = 3.0, resolution: int = 301,
                        ax=None, path=None, title: Optional[str] = None):
    """Colour the plane by how many units are active at each point, and draw the hyperplanes (Li & Partovi Nia
    2020, Figs. 1 and 3): for ReLU the lines w·x + b = 0, for htanh the band edges w·x + b = ±1.

    Args:
        layer: ``(W, b)``, ``(W,)`` or a module, with W of shape (m, 2) (2-D inputs only).
        activation: "relu" or "htanh".
        x: optional data (n, 2) drawn as dots.
        extent: the square [-extent, extent]² is shown.
        resolution: grid points per side for the colouring.
        ax: a matplotlib Axes to draw into; default a new Figure with one Axes.
        path: if given, the figure is saved there as PNG (atomically).
        title: the Axes title; default e.g. "htanh: 8 units".

    Returns:
        the matplotlib Figure.

    Raises:
        ImportError: if matplotlib is not installed.
    """
    activation = _checks.choice("plot_active_regions", "activation", activation, ACTIVATIONS)
    W, b = _weight_and_bias("plot_active_regions", layer)
    if W.shape[1] != 2:
        raise ValueError(f"plot_active_regions: needs 2-D inputs, i.e. a weight of shape (m, 2), got {W.shape}")
    if not (extent > 0 and math.isfinite(extent)):
        raise ValueError(f"plot_active_regions: extent must be a positive number, got {extent}")
    if int(resolution) < 2:
        raise ValueError(f"plot_active_regions: resolution must be at least 2, got {resolution}")
    matplotlib, Figure = _matplotlib()
    from matplotlib.colors import BoundaryNorm

    if ax is None:
        fig = Figure(figsize=(5.0, 4.3), dpi=100)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    m = W.shape[0]
    grid = np.linspace(-extent, extent, int(resolution))
    gx, gy = np.meshgrid(grid, grid)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    counts = activation_pattern(pre_activations((W, b), points), activation).sum(axis=1).reshape(gx.shape)
    cmap = matplotlib.colormaps["Reds"]
    norm = BoundaryNorm(np.arange(-0.5, m + 1.5), cmap.N)
    image = ax.imshow(counts, origin="lower", extent=(-extent, extent, -extent, extent), cmap=cmap, norm=norm,
                      interpolation="nearest")
    levels = (0.0,) if activation == "relu" else (-1.0, 1.0)
    for w, bias in zip(W, b):
        for level in levels:
            _draw_line(ax, w, level - bias, extent, color="0.15", linewidth=0.9,
                       linestyle="-" if activation == "relu" else "--")
    if x is not None:
        X = _array(x)
        if X.ndim != 2 or X.shape[1] != 2:
            raise ValueError(f"plot_active_regions: x must have shape (n, 2), got {X.shape}")
        ax.scatter(X[:, 0], X[:, 1], s=4, color="tab:blue", alpha=0.6, linewidths=0)
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_title(title if title is not None else f"{activation}: {m} units")
    ticks = np.unique(np.linspace(0, m, min(m, 8) + 1).round().astype(int))
    fig.colorbar(image, ax=ax, ticks=ticks, fraction=0.046, pad=0.04, label="active units")
    if path is not None:
        _save_png(fig, path)
    return fig


def plot_relu_vs_htanh(n_units: int = 8, lam: float = 2.0, n_points: int = 300, seed: int = 0,
                       extent: float = 3.0, resolution: int = 301, path=None):
    """The paper's comparison in one 2 x 2 figure: ReLU vs htanh (columns), zero bias vs b ~ U[-λ, λ] (rows).

    The same ``n_units`` unit-norm weight directions (Li & Partovi Nia 2020 assume ||w_j|| = 1, as BatchNorm
    makes the scale irrelevant) are used in all four panels, over ``n_points`` standard Gaussian points; each
    panel's title gives its data Gini and hyperplane coefficient of variation measured on those points.
    ``minibnn.init.RandomBias(lam)`` draws the same biases in a model.

    Returns:
        the matplotlib Figure (saved as PNG to ``path`` if given).

    Raises:
        ImportError: if matplotlib is not installed.
    """
    if not (isinstance(n_units, (int, np.integer)) and n_units >= 1):
        raise ValueError(f"plot_relu_vs_htanh: n_units must be a positive integer, got {n_units!r}")
    if not (lam >= 0 and math.isfinite(lam)):
        raise ValueError(f"plot_relu_vs_htanh: lam must be a finite number >= 0, got {lam!r}")
    _, Figure = _matplotlib()
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0.0, 2.0 * np.pi, n_units)
    W = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    biases = {"b = 0": np.zeros(n_units), f"b ~ U[-{lam:g}, {lam:g}]": rng.uniform(-lam, lam, n_units)}
    x = rng.standard_normal((int(n_points), 2))
    fig = Figure(figsize=(10.5, 9.0), dpi=100)
    axes = fig.subplots(2, 2)
    for row, (bias_name, b) in enumerate(biases.items()):
        for col, activation in enumerate(ACTIVATIONS):
            geo = layer_geometry((W, b), x, activation)
            title = (f"{activation}, {bias_name}\ndata Gini {geo.data.gini:.2f}, "
                     f"hyperplane CV {geo.hyperplanes.cv:.2f}")
            plot_active_regions((W, b), activation, x=x, extent=extent, resolution=resolution,
                                ax=axes[row, col], title=title)
    fig.tight_layout()
    if path is not None:
        _save_png(fig, path)
    return fig
