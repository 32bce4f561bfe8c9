"""The UCI 8x8 handwritten digits (1797 images, 10 classes), bundled with minibnn in ``datasets/digits.npz``.

The file is a :mod:`minibnn.archive` (format ``minibnn-dataset``): checked against its SHA-256 every time it is
read, then read by :func:`~minibnn.archive.read_archive` (never pickled; each array checked against its own
SHA-256, dtype and shape), its values checked (pixels 0..16, labels 0..9); any problem is a
:class:`~minibnn.data.readers.DataFormatError` naming the file. Its source and licence are in
``datasets/README.md`` and ``datasets/LICENSE`` next to this module.

Example:
    >>> x, y = load_digits("test", flatten=True)
    >>> x.shape, y.shape, x.dtype
    ((359, 64), (359,), dtype('float32'))
"""
from __future__ import annotations

import hashlib
import os

import numpy as np

from .. import _checks
from ..archive import read_archive
from .loader import stratified_split
from .readers import DataFormatError, finish_images

DIGITS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets", "digits.npz")
#: SHA-256 of the bytes of ``minibnn/data/datasets/digits.npz``, checked every time the file is loaded.
DIGITS_SHA256 = "a49fa11a58d2b89a0fc66410da9e81e205d2bda9780db7120d1eea6279cdcb1d"
DIGITS_COUNT = 1797


def _read_digits_file() -> tuple[np.ndarray, np.ndarray]:
    path, sha256 = DIGITS_PATH, DIGITS_SHA256
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as err:
        raise DataFormatError(f"load_digits: {path} could not be read: {err}. Reinstall minibnn to restore "
                              f"the file.") from err
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sha256:
        raise DataFormatError(f"load_digits: {path} is corrupt: expected SHA-256 {sha256}, got {digest} "
                              f"({len(blob)} bytes). Reinstall minibnn to restore the file.")
    archive = read_archive(path, format="minibnn-dataset", version=1, kind="minibnn data set",
                           error=DataFormatError)
    images = archive.array("images", dtype=np.uint8, shape=(DIGITS_COUNT, 8, 8))
    labels = archive.array("labels", dtype=np.uint8, shape=(DIGITS_COUNT,))
    if images.max() > 16 or labels.max() > 9:
        raise archive.fail("its pixels must be 0..16 and its labels 0..9")
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
        ValueError: bad arguments. DataFormatError (a ValueError): the bundled file does not match its SHA-256
            (``DIGITS_SHA256``) or is otherwise damaged.

    Example:
        >>> x, y = load_digits("train")
        >>> x.shape, x.dtype, float(x.max()), y[:5].tolist()
        ((1438, 8, 8), dtype('float32'), 1.0, [0, 1, 2, 3, 4])
        >>> load_digits("test", flatten=True)[0].shape
        (359, 64)
    """
    _checks.choice("load_digits", "split", split, ("train", "test", "all"))
    test_fraction = _checks.fraction("load_digits", "test_fraction", test_fraction)
    normalize = _checks.boolean("load_digits", "normalize", normalize)
    flatten = _checks.boolean("load_digits", "flatten", flatten)
    images, labels = _read_digits_file()
    if split != "all":
        train_idx, test_idx = stratified_split(labels, test_fraction, seed)
        keep = train_idx if split == "train" else test_idx
        images, labels = images[keep], labels[keep]
    return finish_images(images, labels, 16.0, normalize, flatten)


