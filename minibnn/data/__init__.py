"""Data for minibnn: datasets and a batching loader, the bundled digits, MNIST/CIFAR-10 file readers, toy sets.

Everything here is plain NumPy and returns NumPy arrays; turning a batch into a Tensor is the caller's job.
One module per kind of data:

* :mod:`~minibnn.data.loader`: ``Dataset``, ``ArrayDataset``, ``Subset``, ``random_split``,
  ``stratified_split`` and the ``DataLoader`` (shuffled mini-batches by fancy indexing);
* :mod:`~minibnn.data.digits`: ``load_digits``, the UCI 8x8 handwritten digits (1797 images) shipped inside
  the package in ``datasets/``, no download;
* :mod:`~minibnn.data.readers`: ``read_idx`` / ``load_mnist`` and ``read_cifar10_batch`` / ``load_cifar10``,
  the official MNIST, Fashion-MNIST and CIFAR-10 (binary version) files, optionally downloaded and
  checksum-verified;
* :mod:`~minibnn.data.synthetic`: ``make_blobs``, ``make_spirals``, ``make_gaussian_points``, seeded toy sets.

Nothing is ever unpickled: the bundled set is a :mod:`minibnn.archive` (read without pickle, every array
checked) and CIFAR-10 is read from its binary (not its pickled Python) distribution. Every problem with a data
file is a ``DataFormatError`` (a ``ValueError``) naming the file.

Example:
    >>> from minibnn.data import ArrayDataset, DataLoader, load_digits
    >>> x, y = load_digits("train", flatten=True)
    >>> loader = DataLoader(ArrayDataset(x, y), batch_size=256, shuffle=True, seed=0)
    >>> xb, yb = next(iter(loader))
    >>> xb.shape, yb.shape, len(loader)
    ((256, 64), (256,), 6)
"""
from .loader import ArrayDataset, DataLoader, Dataset, Subset, random_split, stratified_split
from .digits import DIGITS_PATH, DIGITS_SHA256, load_digits
from .readers import (CIFAR10_CLASSES, FASHION_MNIST_CLASSES, MNIST_CLASSES, DataFormatError, DownloadError,
                      load_cifar10, load_mnist, read_cifar10_batch, read_idx)
from .synthetic import make_blobs, make_gaussian_points, make_spirals

__all__ = [
    "Dataset", "ArrayDataset", "Subset", "random_split", "DataLoader",
    "stratified_split", "load_digits", "DIGITS_PATH", "DIGITS_SHA256",
    "read_idx", "load_mnist", "read_cifar10_batch", "load_cifar10", "DownloadError", "DataFormatError",
    "MNIST_CLASSES", "FASHION_MNIST_CLASSES", "CIFAR10_CLASSES",
    "make_blobs", "make_spirals", "make_gaussian_points",
]
