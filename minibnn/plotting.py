"""Plotting: the matplotlib figures of minibnn, in one place (quantizers today; training curves and others later).

matplotlib is an optional dependency: it is imported only when a figure is drawn, and a clear error says how to
install it. Every function returns the matplotlib objects it drew on, so a tutorial can add to them or save them.

Example:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> forward, slope = plot_quantizer("ss_5", num=41)
    >>> forward.get_title(), slope.get_title()
    ('ss_5: forward', 'ss_5: pseudo-gradient')
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from . import quantizers

__all__ = ["plot_quantizer", "plot_quantizers"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib, an optional dependency: pip install matplotlib") from None
    return plt


def plot_quantizer(quantizer, ax=None, x_range: Tuple[float, float] = (-2.0, 2.0), num: int = 801):
    """Draw a quantizer's forward function (left) and its pseudo-gradient (right), as in Darabi et al. 2018, Fig. 4.

    Args:
        quantizer: a name or a :class:`~minibnn.quantizers.Quantizer` (anything ``quantizers.get`` accepts but None).
        ax: None (a new figure) or a pair of matplotlib axes (forward, pseudo-gradient).
        x_range: the interval of x to draw.
        num: the number of points.

    Returns:
        The pair of axes. A :class:`~minibnn.quantizers.TrainableThreshold` draws one curve per channel.
    """
    plt = _pyplot()
    q = quantizers.get(quantizer)
    if not isinstance(q, quantizers.Quantizer):
        raise ValueError(f"plot_quantizer: quantizer must be a quantizer name or a Quantizer, got {quantizer!r}")
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(8, 3))
    if len(ax) != 2:
        raise ValueError(f"plot_quantizer: ax must be a pair of axes, got {len(ax)}")
    num = int(num)
    xs = np.linspace(float(x_range[0]), float(x_range[1]), num)
    grid = xs
    if isinstance(q, quantizers.TrainableThreshold):  # per-channel: the same grid in every channel
        grid = np.repeat(xs[:, None], q.threshold.shape[0], axis=1)
    out, grad = q.pseudo_gradient(grid)
    ax[0].plot(xs, out.reshape(num, -1))
    ax[0].set_title(f"{q.name}: forward")
    ax[1].plot(xs, grad.reshape(num, -1))
    ax[1].set_title(f"{q.name}: pseudo-gradient")
    for a in ax:
        a.axhline(0, color="0.8", lw=0.5)
        a.axvline(0, color="0.8", lw=0.5)
        a.set_xlabel("x")
    return ax


def plot_quantizers(names: Sequence = ("htanh", "tanh", "bireal", "ss_5", "ss_10"),
                    x_range: Tuple[float, float] = (-2.0, 2.0)):
    """One row per quantizer: forward (left) and pseudo-gradient (right), like Darabi et al. 2018, Fig. 4.

    Args:
        names: names or quantizer objects (anything ``quantizers.get`` accepts except None).
        x_range: the interval of x to draw.

    Returns:
        The matplotlib figure.
    """
    plt = _pyplot()
    qs = [quantizers.get(q) for q in names]
    if not qs or not all(isinstance(q, quantizers.Quantizer) for q in qs):
        raise ValueError(f"plot_quantizers: needs at least one quantizer name or Quantizer, got {list(names)}")
    fig, axes = plt.subplots(len(qs), 2, figsize=(8, 2.6 * len(qs)), squeeze=False)
    for q, row in zip(qs, axes):
        plot_quantizer(q, ax=row, x_range=x_range)
    fig.tight_layout()
    return fig
