"""Data for minibnn: datasets, a batching loader, the bundled digits, MNIST/CIFAR-10 file readers, toy sets.

Everything here is plain NumPy and returns NumPy arrays; turning a batch into a Tensor is the caller's job.
The module reads four kinds of data:

* ``ArrayDataset`` + ``DataLoader``: (x, y) arrays cut into shuffled mini-batches by fancy indexing;
* ``load_digits``: the UCI 8x8 handwritten digits (1797 images), shipped inside the package, no download;
* ``read_idx`` / ``load_mnist`` and ``read_cifar10_batch`` / ``load_cifar10``: the official MNIST,
  Fashion-MNIST and CIFAR-10 (binary version) files, optionally downloaded and checksum-verified;
* ``make_blobs``, ``make_spirals``, ``make_gaussian_points``: seeded synthetic sets for quick experiments.

Nothing is ever unpickled: the bundled set is read with ``np.load(..., allow_pickle=False)`` and CIFAR-10 is
read from its binary (not its pickled Python) distribution.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import operator
import os
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from typing import Iterator, Sequence

import numpy as np

from .atomic import atomic_write

__all__ = [
    "Dataset", "ArrayDataset", "Subset", "random_split", "DataLoader",
    "stratified_split", "load_digits", "DIGITS_PATH", "DIGITS_SHA256",
    "read_idx", "load_mnist", "read_cifar10_batch", "load_cifar10", "DownloadError",
    "MNIST_CLASSES", "FASHION_MNIST_CLASSES", "CIFAR10_CLASSES",
    "make_blobs", "make_spirals", "make_gaussian_points",
]


# ----------------------------------------------------------------------------------------------------------
# Argument checks shared by the functions below
# ----------------------------------------------------------------------------------------------------------

def _as_int(where: str, name: str, value) -> int:
    """Return `value` as a Python int, or raise TypeError naming the argument (bools are refused)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be an integer, got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{where}: {name} must be an integer, got {value!r} of type {type(value).__name__}") from None


def _positive_int(where: str, name: str, value) -> int:
    value = _as_int(where, name, value)
    if value <= 0:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value}")
    return value


def _check_bool(where: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be True or False, got {value!r}")
    return bool(value)


def _check_choice(where: str, name: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{where}: {name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def _check_fraction(where: str, name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: {name} must be a number strictly between 0 and 1, got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{where}: {name} must be strictly between 0 and 1, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------------------------
# Datasets and the loader
# ----------------------------------------------------------------------------------------------------------

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
        counts = [_as_int("random_split", "lengths", v) for v in lengths]
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
        shuffle: visit the samples in a new random order each epoch (each ``iter(loader)``).
        drop_last: skip the final batch when it has fewer than `batch_size` samples.
        seed: seed of the loader's generator ``np.random.default_rng(seed)``, created once; epoch k uses the
            k-th permutation drawn from it, so the same seed gives the same sequence of epochs. ``None`` draws
            fresh entropy from the OS.

    ``len(loader)`` is the number of batches per epoch: ``ceil(n / batch_size)``, or ``n // batch_size`` with
    `drop_last`. Each epoch yields every sample exactly once (except the dropped tail).

    Example:
        >>> import numpy as np
        >>> loader = DataLoader(ArrayDataset(np.arange(10), np.arange(10) % 2), batch_size=4, shuffle=True, seed=0)
        >>> len(loader), [len(xb) for xb, yb in loader]
        (3, [4, 4, 2])
        >>> sorted(np.concatenate([xb for xb, yb in loader]).tolist()) == list(range(10))
        True
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: dataset must define __len__ and __getitem__, got an object of type "
                            f"{type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = _positive_int("DataLoader", "batch_size", batch_size)
        self.shuffle = _check_bool("DataLoader", "shuffle", shuffle)
        self.drop_last = _check_bool("DataLoader", "drop_last", drop_last)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = len(self.dataset)
        # The order is drawn now, when the epoch starts, not lazily at the first batch.
        order = self._rng.permutation(n) if self.shuffle else np.arange(n)
        return self._batches(order)

    def _batches(self, order: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        get_batch = getattr(self.dataset, "get_batch", None)
        for start in range(0, stop, self.batch_size):
            indices = order[start:start + self.batch_size]
            yield get_batch(indices) if get_batch is not None else _stack_samples(self.dataset, indices)

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.dataset)} samples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})")


# ----------------------------------------------------------------------------------------------------------
# The bundled 8x8 digits
# ----------------------------------------------------------------------------------------------------------

DIGITS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets", "digits.npz")
#: SHA-256 of the bytes of ``minibnn/datasets/digits.npz``, checked every time the file is loaded.
DIGITS_SHA256 = "b2dab7b501728c22e9119ad76740b2e17c77a231e42d1e592380d90886f1a05e"


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
    test_fraction = _check_fraction("stratified_split", "test_fraction", test_fraction)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test.append(members[:int(math.floor(test_fraction * len(members) + 0.5))])
    is_test = np.zeros(len(y), dtype=bool)
    is_test[np.concatenate(test) if test else np.empty(0, dtype=np.int64)] = True
    return np.flatnonzero(~is_test).astype(np.int64), np.flatnonzero(is_test).astype(np.int64)


def _read_digits_file() -> tuple[np.ndarray, np.ndarray]:
    with open(DIGITS_PATH, "rb") as f:
        blob = f.read()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != DIGITS_SHA256:
        raise ValueError(f"load_digits: {DIGITS_PATH} is corrupt: expected SHA-256 {DIGITS_SHA256}, got {digest} "
                         f"({len(blob)} bytes). Reinstall minibnn to restore the file.")
    with np.load(DIGITS_PATH, allow_pickle=False) as archive:
        images, labels = archive["images"], archive["labels"]
    return images, labels


def load_digits(split: str = "train", test_fraction: float = 0.2, normalize: bool = True,
                flatten: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The UCI 8x8 handwritten digits (1797 images, 10 classes), bundled with minibnn: no download.

    Source: "Optical Recognition of Handwritten Digits", E. Alpaydin and C. Kaynak (1998), UCI Machine Learning
    Repository, doi:10.24432/C50P49, licence CC BY 4.0. It is the 1797-image test part of that set, the copy
    scikit-learn ships as ``digits.csv.gz``; each pixel counts the "on" pixels of a 4x4 block of a 32x32
    bitmap, so it is an integer in 0..16. Classes hold 174 to 183 images each.

    The split is fixed by `seed` and stratified (see ``stratified_split``): with the defaults (test_fraction=0.2,
    seed=0) "train" has 1438 images and "test" 359, each class divided 80/20.

    Args:
        split: "train", "test" or "all" (all 1797 images in file order; `test_fraction` and `seed` unused).
        test_fraction: share of each class held out for "test", strictly between 0 and 1.
        normalize: if True, x is float32 ``pixel / 16`` in [0, 1]; if False, x is the raw uint8 counts 0..16.
        flatten: if True, x has shape (n, 64); otherwise (n, 8, 8).
        seed: seed of the stratified split.

    Returns:
        ``(x, y)``: x as described above, y the digits 0..9 as int64 of shape (n,).

    Raises:
        ValueError: bad arguments, or the bundled file does not match its SHA-256 (``DIGITS_SHA256``).

    Example:
        >>> x, y = load_digits("train")
        >>> x.shape, x.dtype, float(x.max()), y[:5].tolist()
        ((1438, 8, 8), dtype('float32'), 1.0, [0, 1, 2, 3, 4])
        >>> load_digits("test", flatten=True)[0].shape
        (359, 64)
    """
    _check_choice("load_digits", "split", split, ("train", "test", "all"))
    test_fraction = _check_fraction("load_digits", "test_fraction", test_fraction)
    normalize = _check_bool("load_digits", "normalize", normalize)
    flatten = _check_bool("load_digits", "flatten", flatten)
    images, labels = _read_digits_file()
    if split != "all":
        train_idx, test_idx = stratified_split(labels, test_fraction, seed)
        keep = train_idx if split == "train" else test_idx
        images, labels = images[keep], labels[keep]
    return _finish_images(images, labels, 16.0, normalize, flatten)


def _finish_images(images: np.ndarray, labels: np.ndarray, scale: float, normalize: bool,
                   flatten: bool) -> tuple[np.ndarray, np.ndarray]:
    """Shared tail of the loaders: optional [0, 1] scaling to float32, optional flattening, int64 labels."""
    x = (images.astype(np.float32) / np.float32(scale)) if normalize else np.array(images, dtype=np.uint8)
    if flatten:
        x = x.reshape(x.shape[0], -1)
    return x, labels.astype(np.int64)


# ----------------------------------------------------------------------------------------------------------
# File formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10 binary batches
# ----------------------------------------------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path, where: str) -> tuple[bytes, bool]:
    """Return the whole content of `path`, gunzipped if it starts with the gzip magic, and whether it was."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        blob = f.read()
    if not blob.startswith(_GZIP_MAGIC):
        return blob, False
    try:
        return gzip.decompress(blob), True
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{where}: {path} is a truncated or corrupt gzip file ({len(blob)} compressed bytes): "
                         f"{err}") from err


# IDX type codes (third byte of the magic number) -> NumPy dtype; multi-byte values are big-endian.
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzipped or not, into a NumPy array.

    Layout: magic number ``0x00 0x00 <type> <ndim>``, then `ndim` big-endian uint32 sizes, then the values in
    C order, big-endian. Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64. A file starting with the gzip magic bytes is decompressed first, whatever its name.

    Args:
        path: path of the file (str or os.PathLike).

    Returns:
        A new, writable array of shape ``(size_1, ..., size_ndim)`` in the file's type, native byte order.

    Raises:
        ValueError: bad magic number, unknown type code, or a file whose size does not match its header
            (truncated or with trailing bytes); the message names the file, the expected and the given size.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny-idx2-ubyte")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]))
        >>> read_idx(path)
        array([[1, 2, 3],
               [4, 5, 6]], dtype=uint8)
    """
    data, was_gzip = _read_bytes(path, "read_idx")
    path = os.fspath(path)
    what = "decompressed size" if was_gzip else "size"
    if len(data) < 4:
        raise ValueError(f"read_idx: {path} is truncated: an IDX file starts with a 4-byte magic number, "
                         f"but its {what} is {len(data)} bytes")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(f"read_idx: {path} is not an IDX file: its magic number 0x{data[:4].hex()} should start "
                         f"with two zero bytes (0x0000....)")
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02x} ({d.name})" for c, d in _IDX_DTYPES.items())
        raise ValueError(f"read_idx: {path} has unknown IDX type code 0x{code:02x}; expected one of {known}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"read_idx: {path} is truncated: its header declares {ndim} dimensions, so it needs "
                         f"{header} header bytes, but its {what} is {len(data)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "corrupt (it has trailing bytes)"
        raise ValueError(f"read_idx: {path} is {kind}: its header declares shape {shape} of {dtype.name}, so "
                         f"its {what} should be {expected} bytes, but it is {len(data)} bytes")
    values = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32  # one label byte, then 1024 red, 1024 green and 1024 blue pixel bytes


def read_cifar10_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch file (``data_batch_1.bin`` ... ``test_batch.bin``), gzipped or not.

    The file is a sequence of 3073-byte records: 1 label byte (0..9), then the 32x32 image as 1024 red, 1024
    green and 1024 blue bytes, each plane row by row. The official files hold 10000 records (30,730,000 bytes).

    Args:
        path: path of the file (str or os.PathLike).

    Returns:
        ``(images, labels)``: uint8 arrays of shapes (n, 3, 32, 32) (channels first) and (n,).

    Raises:
        ValueError: a file that is empty, not a whole number of records (truncated or corrupt), or holds a
            label above 9; the message names the file and the sizes expected and given.

    Example:
        >>> import os, tempfile, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "data_batch_1.bin")
        >>> record = np.concatenate([[7], np.full(3072, 200)]).astype(np.uint8)
        >>> record.tofile(path)
        >>> images, labels = read_cifar10_batch(path)
        >>> images.shape, labels.tolist(), int(images[0, 2, 31, 31])
        ((1, 3, 32, 32), [7], 200)
    """
    data, was_gzip = _read_bytes(path, "read_cifar10_batch")
    path = os.fspath(path)
    what = "decompressed size" if was_gzip else "size"
    n, extra = divmod(len(data), CIFAR10_RECORD_BYTES)
    if n == 0 or extra:
        raise ValueError(f"read_cifar10_batch: {path} is truncated or corrupt: a CIFAR-10 binary batch is a whole "
                         f"number of {CIFAR10_RECORD_BYTES}-byte records (the official files have 10000 records = "
                         f"{10000 * CIFAR10_RECORD_BYTES} bytes), but its {what} is {len(data)} bytes "
                         f"({n} records and {extra} bytes over)")
    records = np.frombuffer(data, dtype=np.uint8).reshape(n, CIFAR10_RECORD_BYTES)
    labels = records[:, 0].copy()
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise ValueError(f"read_cifar10_batch: {path} is corrupt: record {bad} has label {labels[bad]}, "
                         f"expected a class 0..9")
    return records[:, 1:].reshape(n, 3, 32, 32).copy(), labels


# ----------------------------------------------------------------------------------------------------------
# Downloads (optional) and the MNIST / Fashion-MNIST / CIFAR-10 loaders
# ----------------------------------------------------------------------------------------------------------

class DownloadError(OSError):
    """A dataset file could not be downloaded, or the download did not match its published checksum."""


def _md5_of(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # the published checksums are MD5: integrity, not security
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(urls: Sequence[str], dest: str, md5: str, timeout: float = 60.0) -> None:
    """Fetch the first of `urls` that works into `dest`, atomically, keeping it only if its MD5 is `md5`.

    The bytes go to a temporary file next to `dest`, which is renamed onto `dest` (``os.replace``) once the
    checksum matches, so `dest` either does not exist or is complete and verified. Raises ``DownloadError``
    listing what went wrong with each URL.
    """
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    failures = []
    for url in urls:
        print(f"minibnn: downloading {url} -> {dest}", file=sys.stderr)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(dest)}.", suffix=".part")
        try:
            digest = hashlib.md5(usedforsecurity=False)
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
            if digest.hexdigest() != md5:
                failures.append(f"{url}: checksum mismatch, expected MD5 {md5}, got {digest.hexdigest()}")
                continue
            os.chmod(tmp, 0o644)  # mkstemp makes the file private; a data file is for every user
            os.replace(tmp, dest)
            return
        except (OSError, ValueError, http.client.HTTPException) as err:
            # OSError covers URLError, HTTPError and timeouts; ValueError a malformed URL; HTTPException a
            # transfer cut short (IncompleteRead). Any of them means: try the next mirror.
            failures.append(f"{url}: {type(err).__name__}: {err}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DownloadError(f"could not download {os.path.basename(dest)}:\n  " + "\n  ".join(failures)
                        + f"\nDownload it by hand from {urls[0]} and save it as {dest} (expected MD5 {md5}).")


MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# kind -> (sub-folder of root, mirrors tried in order, {file name: published MD5})
_MNIST_SOURCES = {
    "mnist": ("mnist",
              ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
              {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
               "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
               "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
               "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
    "fashion": ("fashion-mnist",
                ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
                {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                 "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                 "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                 "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
}


def load_mnist(root, split: str = "train", kind: str = "mnist", download: bool = False,
               normalize: bool = True, flatten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """MNIST (LeCun et al. 1998) or Fashion-MNIST (Xiao et al. 2017) from the official IDX files in `root`.

    The files live in ``root/mnist/`` or ``root/fashion-mnist/`` (both use the same four file names):
    ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz``; gunzipped copies without the ``.gz`` suffix are read as well. When a file is
    missing and `download` is True it is fetched (urllib), checked against its published MD5 and written
    atomically; otherwise the error says which file to put where and where to get it.

    Args:
        root: data folder (str or os.PathLike).
        split: "train" (60000 images) or "test" (10000 images).
        kind: "mnist" (digits) or "fashion" (clothes; class names in ``FASHION_MNIST_CLASSES``).
        download: fetch missing files from the official mirrors.
        normalize: if True, x is float32 ``pixel / 255`` in [0, 1]; if False, the raw uint8 pixels.
        flatten: if True, x has shape (n, 784); otherwise (n, 28, 28).

    Returns:
        ``(x, y)``: images as described above and labels 0..9 as int64 of shape (n,).

    Raises:
        FileNotFoundError: files missing and `download` is False. DownloadError: a download failed.
        ValueError: bad arguments, or files that are corrupt or do not match each other.

    Example (needs the files, so not run here):
        >>> x, y = load_mnist("data", "train", download=True)  # doctest: +SKIP
        >>> x.shape, y.shape  # doctest: +SKIP
        ((60000, 28, 28), (60000,))
    """
    where = "load_mnist"
    _check_choice(where, "split", split, ("train", "test"))
    _check_choice(where, "kind", kind, tuple(_MNIST_SOURCES))
    download = _check_bool(where, "download", download)
    normalize = _check_bool(where, "normalize", normalize)
    flatten = _check_bool(where, "flatten", flatten)
    folder_name, mirrors, checksums = _MNIST_SOURCES[kind]
    folder = os.path.join(os.fspath(root), folder_name)
    prefix = "train" if split == "train" else "t10k"
    names = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]

    def existing(name: str):
        for candidate in (os.path.join(folder, name), os.path.join(folder, name[:-len(".gz")])):
            if os.path.isfile(candidate):
                return candidate
        return None

    missing = [name for name in names if existing(name) is None]
    if missing and not download:
        lines = "\n".join(f"  {os.path.join(folder, name)}   from {mirrors[0]}{name}" for name in missing)
        raise FileNotFoundError(
            f"{where}(kind={kind!r}, split={split!r}): missing file(s):\n{lines}\nPut them in {folder} (gzipped as "
            f"named, or gunzipped without .gz), or call load_mnist(..., download=True).")
    for name in missing:
        _download([m + name for m in mirrors], os.path.join(folder, name), checksums[name])
    image_path, label_path = existing(names[0]), existing(names[1])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{where}: {image_path} should hold uint8 images of shape (n, 28, 28), got "
                         f"{images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{where}: {label_path} should hold {images.shape[0]} uint8 labels (one per image in "
                         f"{image_path}), got {labels.dtype} of shape {labels.shape}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{where}: {label_path} is corrupt: it holds label {labels.max()}, expected 0..9")
    return _finish_images(images, labels, 255.0, normalize, flatten)


_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
_CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
_CIFAR10_DIR = "cifar-10-batches-bin"
_CIFAR10_FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}


def _extract_cifar10(archive: str, folder: str) -> None:
    """Copy the six batch files out of the official archive into `folder`, each written atomically.

    Only the expected member names are read (no ``extractall``), so a hostile archive cannot write elsewhere.
    """
    os.makedirs(folder, exist_ok=True)
    wanted = {f"{_CIFAR10_DIR}/{name}": name for names in _CIFAR10_FILES.values() for name in names}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.name not in wanted or not member.isfile():
                continue
            with atomic_write(os.path.join(folder, wanted[member.name])) as out:
                out.write(tar.extractfile(member).read())
            del wanted[member.name]
    if wanted:
        raise ValueError(f"load_cifar10: {archive} lacks {', '.join(sorted(wanted))}: it is not the CIFAR-10 binary "
                         f"archive ({_CIFAR10_URL})")


def load_cifar10(root, split: str = "train", download: bool = False, normalize: bool = True,
                 flatten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 (Krizhevsky 2009) from its official *binary* batch files in ``root/cifar-10-batches-bin/``.

    "train" reads ``data_batch_1.bin`` ... ``data_batch_5.bin`` (50000 images), "test" reads ``test_batch.bin``
    (10000 images); see ``read_cifar10_batch`` for the record layout. The pickled Python version of the set is
    never used. With `download`, the archive ``cifar-10-binary.tar.gz`` (162 MB) is fetched into `root`, its
    MD5 checked, and the batch files copied out of it; without, missing files raise an error that says where
    to put them.

    Args:
        root: data folder (str or os.PathLike); extracting the official archive there creates the right layout.
        split: "train" or "test".
        download: fetch and extract the archive when batch files are missing.
        normalize: if True, x is float32 ``pixel / 255`` in [0, 1]; if False, the raw uint8 pixels.
        flatten: if True, x has shape (n, 3072); otherwise (n, 3, 32, 32), channels first.

    Returns:
        ``(x, y)``: images as described above and labels 0..9 as int64 (names in ``CIFAR10_CLASSES``).

    Raises:
        FileNotFoundError: files missing and `download` is False. DownloadError: the download failed.
        ValueError: bad arguments, or a batch file that is corrupt.

    Example (needs the files, so not run here):
        >>> x, y = load_cifar10("data", "test", download=True)  # doctest: +SKIP
        >>> x.shape, CIFAR10_CLASSES[y[0]]  # doctest: +SKIP
        ((10000, 3, 32, 32), 'cat')
    """
    where = "load_cifar10"
    _check_choice(where, "split", split, ("train", "test"))
    download = _check_bool(where, "download", download)
    normalize = _check_bool(where, "normalize", normalize)
    flatten = _check_bool(where, "flatten", flatten)
    root = os.fspath(root)
    folder = os.path.join(root, _CIFAR10_DIR)
    paths = [os.path.join(folder, name) for name in _CIFAR10_FILES[split]]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing and not download:
        lines = "\n".join(f"  {p}" for p in missing)
        raise FileNotFoundError(
            f"{where}(split={split!r}): missing file(s):\n{lines}\nDownload {_CIFAR10_URL} (MD5 {_CIFAR10_MD5}) and "
            f"extract it in {root} (it unpacks into {_CIFAR10_DIR}/), or call load_cifar10(..., download=True).")
    if missing:
        archive = os.path.join(root, os.path.basename(_CIFAR10_URL))
        if not (os.path.isfile(archive) and _md5_of(archive) == _CIFAR10_MD5):
            _download([_CIFAR10_URL], archive, _CIFAR10_MD5)
        _extract_cifar10(archive, folder)
    batches = [read_cifar10_batch(p) for p in paths]
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    return _finish_images(images, labels, 255.0, normalize, flatten)


# ----------------------------------------------------------------------------------------------------------
# Synthetic sets
# ----------------------------------------------------------------------------------------------------------

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
    n = _positive_int(where, "n", n)
    rng = np.random.default_rng(seed)
    if isinstance(centers, (int, np.integer)) and not isinstance(centers, (bool, np.bool_)):
        k = _positive_int(where, "centers", centers)
        dim = 2 if dim is None else _positive_int(where, "dim", dim)
        means = rng.uniform(-5.0, 5.0, size=(k, dim))
    else:
        means = np.asarray(centers, dtype=np.float64)
        if means.ndim != 2 or means.shape[0] == 0 or means.shape[1] == 0:
            raise ValueError(f"{where}: centers must be a positive int or an array of shape (k, dim), got "
                             f"shape {means.shape}")
        if dim is not None and _positive_int(where, "dim", dim) != means.shape[1]:
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
    n = _positive_int(where, "n", n)
    classes = _positive_int(where, "classes", classes)
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
    n = _positive_int("make_gaussian_points", "n", n)
    dim = _positive_int("make_gaussian_points", "dim", dim)
    x = np.random.default_rng(seed).standard_normal((n, dim))
    radius = np.linalg.norm(x, axis=1)
    return x.astype(np.float32), (radius > np.median(radius)).astype(np.int64)
