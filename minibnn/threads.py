"""One thread policy: how many cores minibnn's XNOR kernels (OpenMP) and NumPy's BLAS may use.

minibnn runs on shared machines and busy laptops. Two pools of threads compete there: the compiled kernels'
OpenMP threads and the BLAS library behind ``numpy.matmul``. Left alone, each takes every core, and with another
busy process on the machine they oversubscribe the cores and a small model trains several times slower. So
there is one knob, and one policy behind it:

- ``set_num_threads(n)`` (or the environment variable ``MINIBNN_NUM_THREADS=n``, read at import) gives the
  kernels ``n`` threads. Without it, the kernels may use every core this process may run on, but a call uses
  more than one thread only when its work pays for waking them (the crossover ``minibnn._xnor.PARALLEL_MIN_MACS``,
  measured on the kernels), and idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=passive``), so
  a neighbour keeps its core.
- BLAS gets one thread unless ``set_num_threads(n, blas=m)`` asks for more. One reason is speed on a busy
  machine: BLAS threads spin while they wait, and a training step's matrices are too small to pay for a
  second core next to a busy process. The other is reproducibility: the kernels give the same bits on any
  thread count, BLAS does not (OpenBLAS sums in another order when threaded: a float MLP 784-256-10 trained
  three Adam steps on one and on two BLAS threads ends with other weights). With one BLAS thread, results
  are bit-identical whatever ``n``; ``blas=n`` trades that for speed on large float matrices (a 784-2048-2048-10
  MLP training step on 2 quiet cores: 65 ms with one BLAS thread, 45 ms with two).
- minibnn's ops run one after the other, so BLAS and the kernels never both run every core inside one op.

:func:`num_threads` sets the count for a block and restores it afterwards; the experiment runner starts its
worker processes with one thread each (:func:`worker_environment`).

Example:
    >>> import minibnn
    >>> with minibnn.num_threads(1):
    ...     minibnn.get_num_threads()
    1
    >>> minibnn.get_num_threads() >= 1
    True
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

from . import _checks

ENV_VAR = "MINIBNN_NUM_THREADS"

__all__ = ["ENV_VAR", "available_cores", "set_num_threads", "get_num_threads", "num_threads", "worker_environment"]


def available_cores() -> int:
    """The number of cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _from_environment() -> Optional[int]:
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return None
    try:
        return _checks.positive_int(ENV_VAR, "the environment variable", int(text), maximum=4096)
    except (TypeError, ValueError):
        raise ValueError(f"{ENV_VAR} must be a whole number >= 1, got {text!r}") from None


_num_threads: int = _from_environment() or available_cores()    # the kernels' threads
_blas_count: int = 1                                             # BLAS's threads


def _apply(kernels: int, blas: int) -> None:
    """Give the compiled kernels ``kernels`` threads and every BLAS library NumPy loaded ``blas`` threads."""
    global _num_threads, _blas_count
    from threadpoolctl import ThreadpoolController
    from .xnor import dispatch
    dispatch.set_kernel_threads(kernels)
    # a new controller each time: it finds the BLAS libraries loaded since (SciPy's, PyTorch's...)
    ThreadpoolController().limit(limits=blas, user_api="blas")
    _num_threads, _blas_count = kernels, blas


def set_num_threads(n: int, blas: int = 1) -> None:
    """Use ``n`` threads in the XNOR kernels and ``blas`` threads in NumPy's BLAS from now on.

    One BLAS thread (the default) keeps results bit-identical whatever ``n``; more make large float matrix
    products faster but change their last bits (see the module's docstring).

    Raises:
        TypeError, ValueError: unless ``n`` and ``blas`` are ints >= 1.
    """
    n = _checks.positive_int("set_num_threads", "n", n, maximum=4096)
    blas = _checks.positive_int("set_num_threads", "blas", blas, maximum=4096)
    _apply(n, blas)


def get_num_threads() -> int:
    """The most threads a kernel call may use (a call below the crossover uses one)."""
    return _num_threads


@contextlib.contextmanager
def num_threads(n: int, blas: int = 1) -> Iterator[int]:
    """Use ``n`` kernel threads and ``blas`` BLAS threads inside the ``with`` block, then restore the previous
    policy."""
    previous = _num_threads, _blas_count
    set_num_threads(n, blas)
    try:
        yield n
    finally:
        _apply(*previous)


@contextlib.contextmanager
def worker_environment(n: int = 1) -> Iterator[None]:
    """While worker processes start inside this block, they run with ``n`` threads each: ``MINIBNN_NUM_THREADS``
    is set for them (a spawned child reads it when it imports minibnn), then restored."""
    n = _checks.positive_int("worker_environment", "n", n, maximum=4096)
    saved = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(n)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved


# The policy at import: the environment's count, or every core, for the kernels; one BLAS thread.
# SciPy ships a BLAS of its own (minibnn.theory uses SciPy): load it first, so that the limit covers it too.
import scipy.linalg  # noqa: E402,F401

_apply(_num_threads, _blas_count)
