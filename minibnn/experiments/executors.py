"""Executors: where a sweep's runs go — this process, a pool of worker processes, or a Dask cluster.

An executor is a context manager whose :meth:`~Executor.map` takes the runs still to do
(:class:`~minibnn.experiments.store.RunSpec`) and yields ``(index, outcome)`` as each run finishes, in whatever
order they finish. The outcome comes from :func:`run_task`, which runs in the worker: ``{"numbers", "seconds",
"minibnn"}`` for a run that finished, ``{"error": "Type: message"}`` for one that raised. A worker that dies
gives an error outcome too, so one bad run never stops the others. The sweep
(:func:`~minibnn.experiments.sweep.run_study`) stores each outcome as it arrives and builds the tables from the
store, so the executor changes where the runs go, never the numbers.

=============  ===================================================================================================
``processes``  the default: ``workers`` spawned processes (``concurrent.futures``), or this process if
               ``workers=1``
``dask``       a ``dask.distributed`` LocalCluster of ``workers`` processes with one thread each, or, given
               ``scheduler="tcp://host:8786"``, an existing Dask cluster (its workers need the same minibnn
               version, and the data files at the same ``data_root``). Needs ``pip install "minibnn[cluster]"``.
=============  ===================================================================================================

Every worker process that minibnn starts runs with one thread (:func:`minibnn.threads.worker_environment`), so
``workers`` processes use ``workers`` cores; with ``--workers 1`` the runs go in this process under minibnn's
thread policy (:mod:`minibnn.threads`).

Example:
    >>> from minibnn.experiments.store import RunSpec
    >>> from minibnn.experiments.studies import get_study
    >>> opts = get_study("init-variance").options("tiny")
    >>> runs = [RunSpec("init-variance", opts, config, seed=0) for config in get_study("init-variance").configs(opts)]
    >>> with make_executor("processes", workers=1) as executor:
    ...     outcomes = dict(executor.map(runs))
    >>> sorted(outcomes), sorted(outcomes[0])
    ([0, 1], ['minibnn', 'numbers', 'seconds'])
    >>> EXECUTORS.names()
    ['dask', 'processes']
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .. import __version__, _checks
from ..threads import worker_environment
from ..registry import Registry
from .store import RunSpec
from .studies import get_study

__all__ = ["EXECUTORS", "Executor", "ProcessExecutor", "DaskExecutor", "make_executor", "run_task",
           "import_distributed", "executor_names", "CLUSTER_INSTALL"]

#: what installs the optional Dask executor
CLUSTER_INSTALL = 'pip install "minibnn[cluster]"'

Outcome = Dict[str, Any]


def run_task(spec: RunSpec) -> Outcome:
    """Run one (config, seed) of a study, in whatever process this is; never raises.

    Returns:
        ``{"numbers": run_one's dict, "seconds": wall time, "minibnn": this worker's version}``, or
        ``{"error": "ExceptionType: message"}`` if the run raised.
    """
    started = time.perf_counter()
    try:
        numbers = get_study(spec.study).run_one(spec.config, spec.seed, spec.options)
    except Exception as error:  # reported by the sweep with the run's configuration; the others go on
        return {"error": _error_text(error)}
    return {"numbers": numbers, "seconds": time.perf_counter() - started, "minibnn": __version__}


def _error_text(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else '(no message)'}"


class Executor:
    """Base class: ``with executor: for index, outcome in executor.map(specs): ...``.

    Attributes:
        description: where the runs go, in words ("2 processes", "Dask LocalCluster of 2 workers"...).
        workers: how many runs go at once (as far as this process knows).
    """

    description = ""
    workers = 1

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def map(self, specs: Sequence[RunSpec]) -> Iterator[Tuple[int, Outcome]]:
        raise NotImplementedError


#: The executors by name: ``minibnn experiment --executor NAME``.
EXECUTORS = Registry("executor", base=Executor)


@EXECUTORS.register("processes")
class ProcessExecutor(Executor):
    """``workers`` spawned processes with one BLAS thread each (``workers=1``: this process, no pool)."""

    def __init__(self, workers: int = 1):
        self.workers = workers
        self.description = "this process" if workers == 1 else f"{workers} processes"
        self._pool: Optional[ProcessPoolExecutor] = None

    def __enter__(self) -> "ProcessExecutor":
        if self.workers > 1:
            with worker_environment(1):
                self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                                 mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(self, kind, *exc) -> None:
        if self._pool is not None:  # on Ctrl-C, do not wait for the runs going on
            self._pool.shutdown(wait=kind is None, cancel_futures=True)
            self._pool = None

    def map(self, specs: Sequence[RunSpec]) -> Iterator[Tuple[int, Outcome]]:
        if self._pool is None:
            for i, spec in enumerate(specs):
                yield i, run_task(spec)
            return
        with worker_environment(1):  # the pool starts its processes as the tasks come
            futures = {self._pool.submit(run_task, spec): i for i, spec in enumerate(specs)}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as error:  # the worker died (BrokenProcessPool) or the result did not unpickle
                outcome = {"error": _error_text(error)}
            yield futures[future], outcome


def import_distributed():
    """``dask.distributed``, or an ImportError whose one-line message says how to install it."""
    try:
        import distributed
    except ImportError:
        raise ImportError(f"the Dask executor needs dask.distributed, which is not installed: "
                          f"{CLUSTER_INSTALL}") from None
    return distributed


@EXECUTORS.register("dask")
class DaskExecutor(Executor):
    """The runs as Dask tasks: on a LocalCluster of ``workers`` processes (one thread each), started here and
    closed at the end, or on the existing cluster whose scheduler is at ``scheduler``.

    Raises:
        ImportError: at construction, if ``dask.distributed`` is not installed (the message names the command
            that installs it).
    """

    def __init__(self, workers: int = 1, scheduler: Optional[str] = None):
        self._distributed = import_distributed()
        self.workers, self.scheduler = workers, scheduler
        self.description = (f"the Dask cluster at {scheduler}" if scheduler
                            else f"a Dask LocalCluster of {workers} worker process{'es' * (workers > 1)}")
        self._cluster = self._client = None

    def __enter__(self) -> "DaskExecutor":
        distributed = self._distributed
        if self.scheduler:
            try:
                self._client = distributed.Client(self.scheduler, timeout=30, set_as_default=False)
            except (OSError, TimeoutError) as error:
                raise ConnectionError(f"cannot reach the Dask scheduler at {self.scheduler}: "
                                      f"{_error_text(error)}") from None
            self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))
        else:
            with worker_environment(1):
                self._cluster = distributed.LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=True, scheduler_port=0,
                    dashboard_address=None, silence_logs=logging.CRITICAL)
            self._client = distributed.Client(self._cluster, set_as_default=False)
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def map(self, specs: Sequence[RunSpec]) -> Iterator[Tuple[int, Outcome]]:
        distributed = self._distributed
        futures = [self._client.submit(run_task, spec, pure=False, key=f"minibnn-run-{spec.key[:16]}-{i}")
                   for i, spec in enumerate(specs)]
        index = {future.key: i for i, future in enumerate(futures)}
        for future in distributed.as_completed(futures, loop=self._client.loop):
            try:
                outcome = future.result()
            except Exception as error:  # e.g. KilledWorker: the run's worker died
                outcome = {"error": _error_text(error)}
            yield index[future.key], outcome
            future.release()


def make_executor(name: Optional[str] = None, workers: Optional[int] = None,
                  scheduler: Optional[str] = None) -> Executor:
    """The executor ``name`` (``"processes"``, the default, or ``"dask"``) for ``workers`` at once (default: the
    cores); nothing starts before ``with``.

    ``scheduler`` (an address such as ``"tcp://host:8786"``) sends the runs to an existing Dask cluster and
    implies ``name="dask"``; it does not go with ``workers``, since the cluster has its own.

    Raises:
        ValueError: for an unknown name, or ``scheduler`` with ``processes`` or with ``workers``.
        ImportError: for ``dask`` without Dask installed (the message says ``pip install "minibnn[cluster]"``).
    """
    if name is None:
        name = "processes" if scheduler is None else "dask"
    if name not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS.names())}, got {name!r}")
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise ValueError(f"scheduler must be the address of a Dask scheduler, e.g. tcp://host:8786, "
                             f"got {scheduler!r}")
        if name != "dask":
            raise ValueError(f"--scheduler sends the runs to a Dask cluster: it goes with --executor dask, "
                             f"not {name}")
        if workers is not None:
            raise ValueError("--workers sizes a local pool; with --scheduler the cluster's own workers run the "
                             "runs")
        return DaskExecutor(scheduler=scheduler.strip())
    if workers is None:
        workers = os.cpu_count() or 1
    workers = _checks.positive_int("executor", "workers", workers)
    return EXECUTORS.create(name, workers=workers)


def executor_names() -> List[str]:
    """The executor names, the default first."""
    return sorted(EXECUTORS.names(), key=lambda n: n != "processes")
