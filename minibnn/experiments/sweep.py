"""Running a study's sweep: one task per (config, seed), in this process or in a pool of worker processes.

:func:`run_study` does the same for every study:

1. one *task* per (config, seed); every task seeds itself (see :mod:`~minibnn.experiments.recipe`), so its
   numbers do not depend on which process runs it or when: the same seed gives bit-identical numbers;
2. the tasks run in a ``ProcessPoolExecutor`` of ``workers`` processes (default ``os.cpu_count()``; started
   with ``spawn`` and ``OPENBLAS_NUM_THREADS=1``, one BLAS thread per process), or in this process when
   ``workers=1``, with a tqdm bar over the runs;
3. the runs are put back in task order and summarised per config: mean, standard deviation (``ddof=1``; 0 for a
   single seed), min and max over the seeds;
4. :func:`~minibnn.experiments.report.write_outputs` writes the files.

Example:
    >>> result = run_study("init-variance", size="tiny", seeds=1, workers=1, progress=False, write=False)
    >>> [row["label"] for row in result.summary]
    ['mlp/glorot', 'mlp/0.01']
    >>> result.summary[0]["n"], "best_acc_mean" in result.summary[0], "best_acc_std" in result.summary[0]
    (1, True, True)
"""
from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _checks
from .report import fmt_pm, is_scalar, write_outputs
from .studies import get_study

__all__ = ["Result", "run_study"]

_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


@dataclass
class Result:
    """Everything a sweep produced.

    Attributes:
        study, size: what ran.
        seeds: the seeds (the same for every config).
        options: the study's options for this run (size defaults plus overrides, dataset included).
        configs: the sweep's points, in order.
        runs: one dict per (config, seed), in config-then-seed order: the config's fields, ``seed``, and the
            numbers ``run_one`` returned (lists are per-epoch curves).
        summary: one dict per config: its fields, ``n`` and ``<metric>_mean/_std/_min/_max`` for every scalar
            metric.
        analysis: the study's derived numbers (:meth:`Study.analyse`).
        seconds: wall time of the sweep; ``run_seconds``: wall time of each run (same order as ``runs``).
        workers: processes used.
        files: ``{kind: path}`` of the files written.
    """

    study: str
    size: str
    seeds: List[int]
    options: Dict[str, Any]
    configs: List[Dict[str, Any]]
    runs: List[Dict[str, Any]]
    summary: List[Dict[str, Any]] = field(default_factory=list)
    analysis: Dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    run_seconds: List[float] = field(default_factory=list)
    workers: int = 1
    files: Dict[str, str] = field(default_factory=dict)

    def row(self, label: str) -> Dict[str, Any]:
        """The summary row of the config labelled ``label``."""
        for row in self.summary:
            if row["label"] == label:
                return row
        raise KeyError(f"{self.study}: no config labelled {label!r}; labels: {[r['label'] for r in self.summary]}")

    def values(self, label: str, metric: str) -> List[Any]:
        """``metric`` of every seed of the config labelled ``label``."""
        return [r[metric] for r in self.runs if r["label"] == label]

    def pm(self, label: str, metric: str, digits: int = 2) -> str:
        """"mean ± std" of ``metric`` over the seeds of config ``label``."""
        row = self.row(label)
        return fmt_pm(row[f"{metric}_mean"], row[f"{metric}_std"], digits)


def _summarise(configs: List[Dict[str, Any]], runs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    summary = []
    for config in configs:
        mine = [r for r in runs if r["label"] == config["label"]]
        row = dict(config)
        row["n"] = len(mine)
        metrics = [k for k in mine[0] if k not in config and k != "seed" and is_scalar(mine[0][k])]
        for m in metrics:
            values = np.array([np.nan if r[m] is None else float(r[m]) for r in mine], dtype=np.float64)
            finite = values[np.isfinite(values)]
            row[f"{m}_mean"] = float(finite.mean()) if finite.size else math.nan
            row[f"{m}_std"] = float(finite.std(ddof=1)) if finite.size > 1 else (0.0 if finite.size else math.nan)
            row[f"{m}_min"] = float(finite.min()) if finite.size else math.nan
            row[f"{m}_max"] = float(finite.max()) if finite.size else math.nan
        summary.append(row)
    return summary


def _run_task(task: Tuple[str, Dict[str, Any], int, Dict[str, Any]]) -> Tuple[Dict[str, Any], float]:
    """Run one (config, seed) of a study; module-level so a worker process can unpickle it."""
    name, config, seed, opts = task
    started = time.perf_counter()
    numbers = get_study(name).run_one(config, seed, opts)
    return numbers, time.perf_counter() - started


def _worker_init() -> None:
    for var in _BLAS_VARIABLES:
        os.environ[var] = "1"


class _SingleThreadedBlasEnv:
    """Set the BLAS thread variables to 1 while worker processes start (spawned children read them at import)."""

    def __enter__(self):
        self.saved = {v: os.environ.get(v) for v in _BLAS_VARIABLES}
        for v in _BLAS_VARIABLES:
            os.environ[v] = "1"

    def __exit__(self, *exc):
        for v, old in self.saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


def _progress(total: int, description: str, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is an optional extra
        print(f"{description}: {total} runs (install tqdm for a progress bar)", file=sys.stderr)
        return None
    return tqdm(total=total, desc=description, unit="run", dynamic_ncols=True)


def _execute(tasks: List[tuple], workers: int, progress: bool, description: str) -> List[Tuple[dict, float]]:
    """Run the tasks, in this process (workers=1) or in a pool; return their outputs in task order."""
    bar = _progress(len(tasks), description, progress)
    outputs: List[Optional[Tuple[dict, float]]] = [None] * len(tasks)
    try:
        if workers == 1:
            for i, task in enumerate(tasks):
                outputs[i] = _run_task(task)
                if bar is not None:
                    bar.update(1)
        else:
            with _SingleThreadedBlasEnv():
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                         initializer=_worker_init) as pool:
                    futures = {pool.submit(_run_task, task): i for i, task in enumerate(tasks)}
                    for future in as_completed(futures):
                        outputs[futures[future]] = future.result()
                        if bar is not None:
                            bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return outputs  # type: ignore[return-value]


def _check_seeds(seeds, default: int) -> List[int]:
    if seeds is None:
        seeds = default
    if isinstance(seeds, (bool, np.bool_)):
        raise TypeError(f"seeds must be a number of seeds or a list of seeds, got {seeds!r}")
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 (the number of seeds), got {seeds}")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct non-negative integers, got {list(seeds)}")
    return out


def run_study(name: str, *, seeds: Union[int, Sequence[int], None] = None, size: str = "quick",
              out_dir: Optional[Union[str, os.PathLike]] = "results", workers: Optional[int] = None,
              progress: bool = True, write: bool = True, **overrides: Any) -> Result:
    """Run study ``name`` over its configs and seeds; write its files; return the :class:`Result`.

    See :func:`minibnn.experiments.run` for the arguments.
    """
    study = get_study(name)
    opts = study.options(size, overrides)
    seeds = _check_seeds(seeds, study.default_seeds[size])
    if workers is None:
        workers = os.cpu_count() or 1
    workers = _checks.positive_int("run_study", "workers", workers)
    # load (and check) the data once here, so a missing file fails before any worker starts
    study.data(opts)
    configs = study.configs(opts)
    labels = [c["label"] for c in configs]
    if len(set(labels)) != len(labels):
        raise RuntimeError(f"{name}: config labels are not unique: {labels}")
    tasks = [(name, config, seed, opts) for config in configs for seed in seeds]
    workers = int(min(workers, len(tasks)))
    started = time.perf_counter()
    outputs = _execute(tasks, workers, progress, f"{name} ({size}, {len(seeds)} seed{'s' * (len(seeds) > 1)})")
    seconds = time.perf_counter() - started
    runs = []
    for (_, config, seed, _), (numbers, _) in zip(tasks, outputs):
        clash = set(numbers) & (set(config) | {"seed"})
        if clash:
            raise RuntimeError(f"{name}.run_one returned keys {sorted(clash)} that clash with the config")
        runs.append({**config, "seed": seed, **numbers})
    result = Result(study=name, size=size, seeds=seeds, options=opts, configs=configs, runs=runs,
                    summary=_summarise(configs, runs), seconds=seconds, run_seconds=[o[1] for o in outputs],
                    workers=workers)
    result.analysis = study.analyse(result)
    if write:
        if out_dir is None:
            raise ValueError("run_study: out_dir is None but write=True")
        write_outputs(study, result, os.path.join(os.fspath(out_dir), name))
    return result
