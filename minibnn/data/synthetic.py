"""Seeded synthetic data sets for quick experiments: Gaussian blobs, interleaved spirals, a Gaussian cloud.

Each function takes ``seed`` and returns ``(x, y)``: float32 points and int64 labels; the same arguments always
give the same points.

Example:
    >>> x, y = make_spirals(4, classes=2, noise=0.0, seed=0)
    >>> x.shape, sorted(y.tolist())
    ((4, 2), [0, 0, 1, 1])
"""
from __future__ import annotations

import numpy as np

from .. import _checks

def _class_sizes(n: int, k: int) -> np.ndarray:
    """n samples over k classes as evenly as possible: the first ``n % k`` classes get one more."""
    return np.array([n // k + (c < n % k) for c in range(k)])


def make_blobs(n: int, centers=3, dim: int | None = None, std: float = 1.0,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian blobs: class c is ``N(center_c, std^2 I)``.

    Args:
        n: total number of points, shared out as evenly as possible (the first ``n % k`` classes get one more).
        centers: the number k of classes, whose centres are drawn uniformly in [-5, 5]^dim, or an array of
            shape (k, dim) giving the centres.
        dim: dimension of the points; defaults to 2 for an int `centers`, or to the array's width.
        std: standard deviation of each coordinate around its centre, >= 0.
        seed: seed of ``np.random.default_rng``; the same arguments always give the same points.

    Returns:
        ``(x, y)``: float32 points of shape (n, dim), int64 labels of shape (n,), in a shuffled order.

    Example:
        >>> import numpy as np
        >>> x, y = make_blobs(100, centers=4, std=0.5, seed=0)
        >>> x.shape, x.dtype, np.bincount(y).tolist()
        ((100, 2), dtype('float32'), [25, 25, 25, 25])
    """
    where = "make_blobs"
    n = _checks.positive_int(where, "n", n)
    rng = np.random.default_rng(seed)
    if isinstance(centers, (int, np.integer)) and not isinstance(centers, (bool, np.bool_)):
        k = _checks.positive_int(where, "centers", centers)
        dim = 2 if dim is None else _checks.positive_int(where, "dim", dim)
        means = rng.uniform(-5.0, 5.0, size=(k, dim))
    else:
        means = np.asarray(centers, dtype=np.float64)
        if means.ndim != 2 or means.shape[0] == 0 or means.shape[1] == 0:
            raise ValueError(f"{where}: centers must be a positive int or an array of shape (k, dim), got "
                             f"shape {means.shape}")
        if dim is not None and _checks.positive_int(where, "dim", dim) != means.shape[1]:
            raise ValueError(f"{where}: dim={dim} does not match centers of shape {means.shape} "
                             f"(expected dim={means.shape[1]} or None)")
        k, dim = means.shape
    if not std >= 0:
        raise ValueError(f"{where}: std must be >= 0, got {std}")
    y = np.repeat(np.arange(k), _class_sizes(n, k))
    x = means[y] + std * rng.standard_normal((n, dim))
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order].astype(np.int64)


def make_spirals(n: int, classes: int = 2, noise: float = 0.1, seed: int = 0,
                 turns: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved 2-D spiral arms, one per class: a classic set no linear model separates.

    Arm c holds points at radius ``r = t`` and angle ``2 pi (c / classes + turns * t)`` for t evenly spaced in
    [0, 1], plus Gaussian noise of standard deviation `noise` on each coordinate.

    Args:
        n: total number of points, shared out as evenly as possible between the arms.
        classes: number of arms (classes), >= 1.
        noise: standard deviation of the added noise, >= 0.
        seed: seed of ``np.random.default_rng``.
        turns: how many full turns each arm makes.

    Returns:
        ``(x, y)``: float32 points of shape (n, 2), int64 labels of shape (n,), in a shuffled order.

    Example:
        >>> import numpy as np
        >>> x, y = make_spirals(300, classes=3, noise=0.05, seed=0)
        >>> x.shape, np.bincount(y).tolist(), bool(np.abs(x).max() < 1.5)
        ((300, 2), [100, 100, 100], True)
    """
    where = "make_spirals"
    n = _checks.positive_int(where, "n", n)
    classes = _checks.positive_int(where, "classes", classes)
    if not noise >= 0:
        raise ValueError(f"{where}: noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c, m in enumerate(_class_sizes(n, classes)):
        t = np.linspace(0.0, 1.0, m)
        angle = 2.0 * np.pi * (c / classes + turns * t)
        xs.append(np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1))
        ys.append(np.full(m, c))
    x = np.concatenate(xs) + noise * rng.standard_normal((n, 2))
    y = np.concatenate(ys)
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order].astype(np.int64)


def make_gaussian_points(n: int, dim: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard Gaussian points ``x ~ N(0, I_dim)``, labelled inside (0) or outside (1) the median radius.

    The zero-centred Gaussian cloud is the data model of the hyperplane pictures of Li & Partovi Nia (2020,
    Sec. 3): points near the origin lie inside the activated region of many htanh units. The labels split the
    cloud into a disc and a ring at the sample median of ``||x||`` (balanced to within one point, and not
    linearly separable); ignore them when only the points are needed.

    Args:
        n: number of points.
        dim: dimension of the points (2 for plots).
        seed: seed of ``np.random.default_rng``.

    Returns:
        ``(x, y)``: float32 points of shape (n, dim), int64 labels ``||x_i|| > median ||x||`` of shape (n,).

    Example:
        >>> x, y = make_gaussian_points(1000, seed=0)
        >>> x.shape, int(y.sum()), bool(abs(float(x.mean())) < 0.1)
        ((1000, 2), 500, True)
    """
    n = _checks.positive_int("make_gaussian_points", "n", n)
    dim = _checks.positive_int("make_gaussian_points", "dim", dim)
    x = np.random.default_rng(seed).standard_normal((n, dim))
    radius = np.linalg.norm(x, axis=1)
    return x.astype(np.float32), (radius > np.median(radius)).astype(np.int64)

