"""The UCI 8x8 handwritten digits (1797 images, 10 classes), bundled with minibnn in ``datasets/digits.npz``.

The file is checked against its SHA-256 every time it is read, and read with ``np.load(..., allow_pickle=False)``;
its source and licence are in ``datasets/README.md`` and ``datasets/LICENSE`` next to this module.

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
from .loader import stratified_split
from .readers import finish_images

DIGITS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "datasets", "digits.npz")
#: SHA-256 of the bytes of ``minibnn/data/datasets/digits.npz``, checked every time the file is loaded.
DIGITS_SHA256 = "b2dab7b501728c22e9119ad76740b2e17c77a231e42d1e592380d90886f1a05e"



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


