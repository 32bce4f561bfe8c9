"""The library's random number generator, so that one seed makes a whole run repeatable.

Layers draw their initial weights and Dropout its masks from ``get_rng()`` unless they are handed a generator
of their own. ``manual_seed(s)`` resets it: the same seed then gives bit-identical models and training runs.
(A shuffling ``DataLoader`` does not use it: each epoch's order comes from the loader's own ``seed`` and the
epoch number, so nothing else that draws random numbers can shift it.)

Example:
    >>> _ = manual_seed(0); a = get_rng().normal()
    >>> _ = manual_seed(0); b = get_rng().normal()
    >>> a == b
    True
"""
from __future__ import annotations

from typing import Optional

import numpy as np

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the library's generator to ``numpy.random.default_rng(seed)`` and return it."""
    global _rng
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative integer, got {seed!r}")
    _rng = np.random.default_rng(int(seed))
    return _rng


def get_rng(rng: Optional[np.random.Generator] = None) -> np.random.Generator:
    """``rng`` if one is given, else the library's generator (set by :func:`manual_seed`)."""
    if rng is None:
        return _rng
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng
