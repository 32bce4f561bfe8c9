"""The one checks module: the argument validators every public entry point of minibnn shares.

Each helper takes ``who`` (the public function or class being called, e.g. ``"Conv2d"``), ``name`` (the
argument) and the value, and either returns the value in its canonical Python form or raises an error that names
all three and says what was expected::

    Conv2d: stride must be an int >= 1 or a pair of them, got 0

Arguments are checked once, at the public boundary (a layer's constructor, a functional op, a file reader); the
code behind it trusts what it is handed. This is the only module other modules may import private-looking
helpers from; everything here is a plain function without side effects.

Integers that reach the compiled kernels are bounded by :data:`MAX_EXTENT` so that the C index arithmetic
(``y * stride - padding``, ``2 * padding``, products of shapes) can never overflow a signed 64-bit integer.

Example:
    >>> positive_int("Linear", "in_features", 3)
    3
    >>> pair("Conv2d", "stride", 2, minimum=1)
    (2, 2)
    >>> real("SGD", "lr", 0.1)
    0.1
    >>> choice("BatchNorm", "mode", "train", ("train", "eval"))
    'train'
    >>> positive_int("Linear", "in_features", 0)
    Traceback (most recent call last):
    ...
    ValueError: Linear: in_features must be an int >= 1, got 0
"""
from __future__ import annotations

import numbers
import operator
from typing import Any, Iterable, Optional, Sequence, Tuple

import numpy as np

#: The largest stride, padding, kernel size, dilation or spatial/feature extent minibnn accepts (2**31 - 1):
#: any product or sum of two such numbers fits in int64, so the kernels' index arithmetic cannot overflow.
MAX_EXTENT = 2 ** 31 - 1

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def integer(who: str, name: str, value: Any, minimum: Optional[int] = None,
            maximum: Optional[int] = MAX_EXTENT) -> int:
    """``value`` as a Python int in ``[minimum, maximum]`` (bools refused; NumPy integers accepted)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{who}: {name} must be an int, got the bool {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{who}: {name} must be an int, got {value!r} ({type(value).__name__})") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{who}: {name} must be an int >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{who}: {name} must be an int <= {maximum}, got {value}")
    return value


def positive_int(who: str, name: str, value: Any, maximum: Optional[int] = MAX_EXTENT) -> int:
    """``value`` as an int >= 1."""
    return integer(who, name, value, 1, maximum)


def nonnegative_int(who: str, name: str, value: Any, maximum: Optional[int] = MAX_EXTENT) -> int:
    """``value`` as an int >= 0."""
    return integer(who, name, value, 0, maximum)


def pair(who: str, name: str, value: Any, minimum: int, maximum: int = MAX_EXTENT) -> Tuple[int, int]:
    """An int or a pair of ints, as (vertical, horizontal), each in ``[minimum, maximum]``."""
    values = (value, value) if isinstance(value, numbers.Integral) else value
    ok = (isinstance(values, (tuple, list)) and len(values) == 2 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and minimum <= v <= maximum
        for v in values))
    if not ok:
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{who}: {name} must be an int {bound} or a pair of them, got {value!r}")
    return int(values[0]), int(values[1])


def real(who: str, name: str, value: Any, minimum: Optional[float] = None, maximum: Optional[float] = None,
         finite: bool = True) -> float:
    """``value`` as a Python float (a NumPy float64 scalar would promote float32 arrays), optionally bounded."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if finite and not np.isfinite(value):
        raise ValueError(f"{who}: {name} must be finite, got {value!r}")
    if minimum is not None and not value >= minimum:
        raise ValueError(f"{who}: {name} must be >= {minimum}, got {value!r}")
    if maximum is not None and not value <= maximum:
        raise ValueError(f"{who}: {name} must be <= {maximum}, got {value!r}")
    return value


def positive(who: str, name: str, value: Any) -> float:
    """``value`` as a finite float > 0."""
    value = real(who, name, value)
    if not value > 0:
        raise ValueError(f"{who}: {name} must be > 0, got {value!r}")
    return value


def fraction(who: str, name: str, value: Any, closed: bool = False) -> float:
    """``value`` as a float in (0, 1), or in [0, 1] when ``closed``."""
    value = real(who, name, value)
    inside = 0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0
    if not inside:
        where = "in [0, 1]" if closed else "strictly between 0 and 1"
        raise ValueError(f"{who}: {name} must be {where}, got {value!r}")
    return value


def boolean(who: str, name: str, value: Any) -> bool:
    """``value`` as a bool (only True, False and NumPy bools)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{who}: {name} must be True or False, got {value!r}")
    return bool(value)


def choice(who: str, name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    try:
        ok = value in choices
    except TypeError:  # an unhashable or incomparable value is not a choice
        ok = False
    if not ok:
        raise ValueError(f"{who}: {name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def float_dtype(who: str, name: str, value: Any) -> np.dtype:
    """``value`` as the NumPy dtype float32 or float64."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"{who}: {name} must be float32 or float64, got {value!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{who}: {name} must be float32 or float64, got {dtype}")
    return dtype


def shape(who: str, name: str, value: Any, ndim: Optional[int] = None) -> Tuple[int, ...]:
    """``value`` (an int or a sequence of them, each >= 0 and <= :data:`MAX_EXTENT`) as a tuple of ints."""
    dims = (value,) if isinstance(value, numbers.Integral) else value
    try:
        dims = tuple(integer(who, name, d, 0) for d in dims)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: {name} must be a shape (ints >= 0 and <= {MAX_EXTENT}), got {value!r}") from None
    if ndim is not None and len(dims) != ndim:
        raise ValueError(f"{who}: {name} must have {ndim} dimensions, got {value!r}")
    return dims


def generator(who: str, name: str, value: Any) -> np.random.Generator:
    """``value`` if it is a ``numpy.random.Generator``."""
    if not isinstance(value, np.random.Generator):
        raise TypeError(f"{who}: {name} must be a numpy.random.Generator, e.g. np.random.default_rng(0); "
                        f"got {value!r} ({type(value).__name__})")
    return value


def one_of_types(who: str, name: str, value: Any, types: Sequence[type], expected: str) -> Any:
    """``value`` if it is an instance of one of ``types``; ``expected`` says what in words."""
    if not isinstance(value, tuple(types)):
        raise TypeError(f"{who}: {name} must be {expected}, got {value!r} ({type(value).__name__})")
    return value


# ---- binarize: optimizers, Bop and schedulers -----------------------------------------------------------------
def interval(who: str, name: str, value: Any, low: float = 0.0, high: float = float("inf"),
             high_open: bool = False) -> float:
    """``value`` as a float in ``[low, high]`` (``[low, high)`` when ``high_open``): a hyperparameter's range.

    Example:
        >>> interval("Adam", "betas[0]", 0.9, 0.0, 1.0, high_open=True)
        0.9
    """
    value = real(who, name, value, finite=False)
    too_high = value >= high if high_open else value > high
    if np.isnan(value) or value < low or too_high:
        raise ValueError(f"{who}: {name} must be in [{low}, {high}{')' if high_open else ']'}, got {value}")
    return value


# --------------------------------------------------------------------------------------------------------------
# Command-line arguments (the minibnn command: cli, experiments) [theoryexp]
# --------------------------------------------------------------------------------------------------------------
def count_argument(text: str) -> int:
    """``argparse`` ``type=`` for a count >= 1 (epochs, seeds, workers): ``"3"`` -> 3.

    Anything else raises ``argparse.ArgumentTypeError``, which argparse turns into a one-line error naming the
    option, and exit status 2.

    Example:
        >>> count_argument("3")
        3
    """
    import argparse  # only the command line needs it

    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value
