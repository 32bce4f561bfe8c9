"""Datasets and the mini-batch loader: ``(x, y)`` NumPy arrays cut into shuffled batches by fancy indexing.

A :class:`Dataset` is a sized collection whose item ``i`` is a pair of arrays ``(x, y)``; :class:`ArrayDataset`
holds two whole arrays, :class:`Subset` a selection of another dataset (``random_split``, ``stratified_split``
make them). A :class:`DataLoader` iterates over a dataset in mini-batches; with ``shuffle``, epoch k visits the
samples in an order that is a pure function of ``(seed, k)``, so how often something calls ``iter()`` on it (a
progress bar, a ``len()``-then-iterate wrapper) never changes the run.

Example:
    >>> import numpy as np
    >>> loader = DataLoader(ArrayDataset(np.arange(6), np.arange(6) % 2), batch_size=4)
    >>> [xb.tolist() for xb, yb in loader]
    [[0, 1, 2, 3], [4, 5]]
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np

from .. import _checks

def _stack_samples(dataset, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Build a batch one sample at a time: ``dataset[i]`` for each i, stacked along a new axis 0."""
    if len(indices) == 0:
        raise ValueError("cannot stack an empty batch: indices is empty")
    xs, ys = zip(*(dataset[int(i)] for i in indices))
    return np.stack([np.asarray(x) for x in xs]), np.stack([np.asarray(y) for y in ys])


class Dataset:
    """A sized collection of samples: ``len(ds)`` samples, ``ds[i]`` is the pair of arrays ``(x, y)``.

    Subclasses define ``__len__`` and ``__getitem__``. ``get_batch(indices)`` stacks the samples one by one;
    a subclass that can do better (like ``ArrayDataset``, which fancy-indexes its arrays) overrides it.

    Example:
        >>> import numpy as np
        >>> class Squares(Dataset):
        ...     def __len__(self):
        ...         return 4
        ...     def __getitem__(self, i):
        ...         return np.array([i, i * i]), np.array(i % 2)
        >>> x, y = Squares().get_batch(np.array([1, 3]))
        >>> x.tolist(), y.tolist()
        ([[1, 1], [3, 9]], [1, 1])
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__ (Dataset is a base class)")

    def __getitem__(self, index) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__ (Dataset is a base class)")

    def get_batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x_batch, y_batch)`` for the integer array `indices`, samples stacked along axis 0."""
        return _stack_samples(self, np.asarray(indices))


class ArrayDataset(Dataset):
    """A dataset held in two arrays: sample i is ``(x[i], y[i])``.

    Args:
        x: array of shape (n, ...), the inputs.
        y: array of shape (n, ...), the targets; same n as `x`.

    The arrays are kept as given (no copy). ``ds[index]`` accepts anything NumPy accepts along axis 0 (an
    int, a slice, an integer array), and ``get_batch`` is one fancy-indexing call per array.

    Example:
        >>> import numpy as np
        >>> ds = ArrayDataset(np.arange(12).reshape(6, 2), np.arange(6) % 3)
        >>> len(ds), ds[1]
        (6, (array([2, 3]), np.int64(1)))
        >>> ds.get_batch(np.array([5, 0]))[1]
        array([2, 0])
    """

    def __init__(self, x, y):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError(f"ArrayDataset: x and y need a sample axis (axis 0), got x of shape {x.shape} "
                             f"and y of shape {y.shape}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"ArrayDataset: x and y must have the same number of samples (axis 0), got x of "
                             f"shape {x.shape} ({x.shape[0]} samples) and y of shape {y.shape} "
                             f"({y.shape[0]} samples)")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index) -> tuple[np.ndarray, np.ndarray]:
        return self.x[index], self.y[index]

    def get_batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        indices = np.asarray(indices, dtype=np.intp)
        return self.x[indices], self.y[indices]

    def __repr__(self) -> str:
        return (f"ArrayDataset(x: {self.x.dtype}{list(self.x.shape)}, "
                f"y: {self.y.dtype}{list(self.y.shape)})")


class Subset(Dataset):
    """The samples of `dataset` at positions `indices`, in that order: ``Subset(ds, idx)[i] == ds[idx[i]]``.

    Args:
        dataset: any object with ``__len__`` and ``__getitem__``.
        indices: 1-D integer array-like, each in ``[0, len(dataset))``.

    Batches are delegated to ``dataset.get_batch`` when it has one, so a subset of an ``ArrayDataset`` keeps
    the fast fancy-indexing path.

    Example:
        >>> import numpy as np
        >>> sub = Subset(ArrayDataset(np.arange(5) * 10, np.arange(5)), [4, 0])
        >>> len(sub), sub[0]
        (2, (np.int64(40), np.int64(4)))
    """

    def __init__(self, dataset, indices):
        indices = np.asarray(indices)
        if indices.ndim != 1 or not (indices.size == 0 or np.issubdtype(indices.dtype, np.integer)):
            raise ValueError(f"Subset: indices must be a 1-D array of integers, got dtype {indices.dtype} "
                             f"and shape {indices.shape}")
        n = len(dataset)
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            bad = indices[(indices < 0) | (indices >= n)][0]
            raise IndexError(f"Subset: index {bad} is out of range for a dataset of {n} samples "
                             f"(expected 0 <= index < {n})")
        self.dataset, self.indices = dataset, indices.astype(np.intp)

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, index) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(index, (int, np.integer)):
            return self.dataset[int(self.indices[index])]
        return self.get_batch(np.arange(len(self))[index])  # a slice or an index array: a batch

    def get_batch(self, indices) -> tuple[np.ndarray, np.ndarray]:
        inner = self.indices[np.asarray(indices, dtype=np.intp)]
        if hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(inner)
        return _stack_samples(self.dataset, inner)


def random_split(dataset, lengths: Sequence, seed: int = 0) -> list[Subset]:
    """Split `dataset` into disjoint random ``Subset``s with the given sizes.

    Args:
        dataset: any object with ``__len__`` and ``__getitem__``.
        lengths: non-negative ints summing to ``len(dataset)``, or fractions summing to 1. Fractions become
            ``floor(f * n)`` samples each, and the samples left over go one each to the first parts.
        seed: the permutation is ``np.random.default_rng(seed).permutation(len(dataset))``; the same seed
            always gives the same split.

    Returns:
        A list of ``Subset``, one per entry of `lengths`, together covering every sample exactly once.

    Example:
        >>> import numpy as np
        >>> train, val = random_split(ArrayDataset(np.zeros((10, 3)), np.arange(10)), [0.8, 0.2], seed=1)
        >>> len(train), len(val)
        (8, 2)
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths is empty; expected at least one length")
    if all(isinstance(v, (float, np.floating)) for v in lengths):
        if any(not 0.0 <= v <= 1.0 for v in lengths) or not math.isclose(sum(lengths), 1.0, abs_tol=1e-6):
            raise ValueError(f"random_split: fractional lengths must lie in [0, 1] and sum to 1, got {lengths} "
                             f"(sum {sum(lengths)})")
        counts = [int(math.floor(v * n)) for v in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        counts = [_checks.integer("random_split", "lengths", v) for v in lengths]
        if any(c < 0 for c in counts) or sum(counts) != n:
            raise ValueError(f"random_split: lengths must be non-negative and sum to len(dataset) = {n}, "
                             f"got {counts} (sum {sum(counts)})")
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


class DataLoader:
    """Iterate over a dataset in mini-batches ``(x_batch, y_batch)`` of NumPy arrays.

    Args:
        dataset: a ``Dataset`` (or any object with ``__len__`` and ``__getitem__``). An ``ArrayDataset``, or a
            ``Subset`` of one, is batched by fancy indexing on its whole arrays: no Python loop per sample.
        batch_size: samples per batch, a positive int. The last batch may be smaller (see `drop_last`).
        shuffle: visit the samples in a new random order each epoch.
        drop_last: skip the final batch when it has fewer than `batch_size` samples.
        seed: an int >= 0: epoch k is shuffled by ``np.random.default_rng((seed, k)).permutation(n)``, a pure
            function of (seed, k), so the same seed gives the same sequence of epochs. ``None`` draws a seed
            from the OS once, when the loader is made.

    An epoch starts when an iteration yields its first batch, and ``loader.epoch`` counts the epochs started.
    Calling ``iter(loader)`` draws nothing: an iterator that is made and dropped (a progress bar may do that)
    uses up no epoch. Set ``loader.epoch`` to resume a run at a given epoch.

    ``len(loader)`` is the number of batches per epoch: ``ceil(n / batch_size)``, or ``n // batch_size`` with
    `drop_last`. Each epoch yields every sample exactly once (except the dropped tail).

    Example:
        >>> import numpy as np
        >>> loader = DataLoader(ArrayDataset(np.arange(10), np.arange(10) % 2), batch_size=4, shuffle=True, seed=0)
        >>> len(loader), [len(xb) for xb, yb in loader]
        (3, [4, 4, 2])
        >>> sorted(np.concatenate([xb for xb, yb in loader]).tolist()) == list(range(10))
        True
        >>> loader.epoch
        2
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: dataset must define __len__ and __getitem__, got an object of type "
                            f"{type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = _checks.positive_int("DataLoader", "batch_size", batch_size)
        self.shuffle = _checks.boolean("DataLoader", "shuffle", shuffle)
        self.drop_last = _checks.boolean("DataLoader", "drop_last", drop_last)
        self.seed = seed
        self._seed = (np.random.SeedSequence().entropy if seed is None
                      else _checks.nonnegative_int("DataLoader", "seed", seed, maximum=None))
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The order in which epoch `epoch` visits the samples: a permutation when shuffling, else 0..n-1."""
        n = len(self.dataset)
        return np.random.default_rng((self._seed, epoch)).permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # A generator: nothing below runs until the first batch is asked for.
        order = self.order(self.epoch)
        self.epoch += 1
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        get_batch = getattr(self.dataset, "get_batch", None)
        for start in range(0, stop, self.batch_size):
            indices = order[start:start + self.batch_size]
            yield get_batch(indices) if get_batch is not None else _stack_samples(self.dataset, indices)

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.dataset)} samples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})")


def stratified_split(y, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of sample indices into train and test, each class cut in the same proportion.

    With ``rng = np.random.default_rng(seed)``, for each class c in increasing order the indices of class c are
    permuted by ``rng.permutation``, and the first ``floor(test_fraction * n_c + 0.5)`` go to the test part.

    Args:
        y: 1-D array of integer class labels.
        test_fraction: share of each class sent to the test part, strictly between 0 and 1.
        seed: seed of the generator; the same (y, test_fraction, seed) always gives the same split.

    Returns:
        ``(train_indices, test_indices)``: sorted int64 arrays, disjoint, together covering ``range(len(y))``.

    Example:
        >>> tr, te = stratified_split([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], test_fraction=0.5, seed=0)
        >>> len(tr), len(te), sorted(set(range(10)) - set(tr.tolist())) == te.tolist()
        (5, 5, True)
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"stratified_split: y must be a 1-D array of integer labels, got dtype {y.dtype} and "
                         f"shape {y.shape}")
    test_fraction = _checks.fraction("stratified_split", "test_fraction", test_fraction)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test.append(members[:int(math.floor(test_fraction * len(members) + 0.5))])
    is_test = np.zeros(len(y), dtype=bool)
    is_test[np.concatenate(test) if test else np.empty(0, dtype=np.int64)] = True
    return np.flatnonzero(~is_test).astype(np.int64), np.flatnonzero(is_test).astype(np.int64)


