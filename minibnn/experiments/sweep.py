"""Running a study's sweep: one run per (config, seed), each stored as it finishes, the tables built from the store.

:func:`run_study` does the same for every study:

1. one *run* (:class:`~minibnn.experiments.store.RunSpec`) per (config, seed); every run seeds itself (see
   :mod:`~minibnn.experiments.recipe`), so its numbers do not depend on which process or machine runs it or
   when: the same seed gives bit-identical numbers;
2. the runs already in the store (``out_dir/<study>/runs/``, :mod:`~minibnn.experiments.store`) are skipped
   (``resume=False`` redoes them), so an interrupted sweep continues where it stopped;
3. the others go to an executor (:mod:`~minibnn.experiments.executors`): this process, ``workers`` spawned
   processes (the default), a Dask LocalCluster, or an existing Dask cluster at ``scheduler``; one tqdm bar
   counts them all, and each is written to the store as soon as it finishes;
4. a run that fails is reported once, with its configuration and error, and the others go on; at the end a
   :class:`SweepError` says how many failed (the finished ones stay stored for the rerun);
5. the runs are read back from the store in config-then-seed order and summarised per config: mean, standard
   deviation (``ddof=1``; 0 for a single seed), min and max over the seeds;
6. :func:`~minibnn.experiments.report.write_outputs` writes the files.

Because the tables come from the stored numbers only, the same runs give byte-identical ``runs.csv``,
``summary.csv`` and ``table.md`` whichever executor ran them, and whether they ran today or were resumed.

Example:
    >>> result = run_study("init-variance", size="tiny", seeds=1, workers=1, progress=False, write=False)
    >>> [row["label"] for row in result.summary]
    ['mlp/glorot', 'mlp/0.01']
    >>> result.summary[0]["n"], "best_acc_mean" in result.summary[0], "best_acc_std" in result.summary[0]
    (1, True, True)
    >>> result.executor, result.stored
    ('this process', 0)
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .. import __version__
from .executors import make_executor
from .report import fmt_pm, is_scalar, write_outputs
from .store import InvalidRecord, RunSpec, RunStore, decode, encode, make_record
from .studies import get_study

__all__ = ["Result", "run_study", "SweepError"]


class SweepError(RuntimeError):
    """Some runs of a sweep failed (each was reported when it failed); the others finished and are stored.

    Attributes:
        failures: ``[(run description, "ErrorType: message"), ...]``.
    """

    def __init__(self, message: str, failures: List[tuple]):
        super().__init__(message)
        self.failures = failures


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
        seconds: wall time of this call; ``run_seconds``: wall time of each run when it ran (same order as
            ``runs``; read from the store for the runs done earlier).
        workers: runs at once; ``executor``: where they ran, in words; ``stored``: how many runs were read
            from the store instead of run now.
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
    executor: str = "this process"
    stored: int = 0
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


def _progress(total: int, done: int, description: str, enabled: bool):
    """One tqdm bar over all the runs (the stored ones already counted), or None."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency, but a bar is not worth a crash
        print(f"{description}: {total} runs (install tqdm for a progress bar)", file=sys.stderr)
        return None
    return tqdm(total=total, initial=done, desc=description, unit="run", dynamic_ncols=True)


def _say(bar, message: str) -> None:
    """One line on stderr, above the progress bar if there is one."""
    if bar is not None:
        bar.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr)


def _record(store: Optional[RunStore], spec: RunSpec, outcome: Dict[str, Any]) -> Dict[str, Any]:
    """Check a finished run's outcome, store it, and return the record as read back (raises ValueError)."""
    if "error" in outcome:
        raise ValueError(outcome["error"])
    if outcome.get("minibnn") != __version__:
        raise ValueError(f"the worker runs minibnn {outcome.get('minibnn')}, this process {__version__}")
    numbers = outcome["numbers"]
    if not isinstance(numbers, dict):
        raise ValueError(f"run_one returned {type(numbers).__name__}, not a dict")
    clash = set(numbers) & (set(spec.config) | {"seed"})
    if clash:
        raise ValueError(f"run_one returned keys {sorted(clash)} that clash with the config")
    try:
        if store is None:
            return decode(encode(make_record(spec, numbers, outcome["seconds"])), spec.key)
        return store.save(spec, numbers, outcome["seconds"])
    except (TypeError, InvalidRecord, OSError) as error:  # numbers that are not JSON values, a full disk...
        raise ValueError(f"its numbers cannot be stored: {error}") from None


def _sweep(specs: List[RunSpec], done: Dict[int, Dict[str, Any]], store: Optional[RunStore], executor,
           progress: bool, description: str) -> List[tuple]:
    """Run the specs not in ``done`` on ``executor``, storing each as it finishes (into ``done`` too); return the
    failures, each reported once as it happened."""
    pending = [i for i in range(len(specs)) if i not in done]
    failures: List[tuple] = []
    bar = _progress(len(specs), len(done), description, progress)
    try:
        if pending:
            with executor:
                for j, outcome in executor.map([specs[i] for i in pending]):
                    spec = specs[pending[j]]
                    try:
                        done[pending[j]] = _record(store, spec, outcome)
                    except ValueError as error:
                        failures.append((spec.describe(), str(error)))
                        _say(bar, f"run failed: {spec.describe()}: {error}")
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return failures


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
              executor: Optional[str] = None, scheduler: Optional[str] = None, resume: bool = True,
              progress: bool = True, write: bool = True, **overrides: Any) -> Result:
    """Run study ``name`` over its configs and seeds; write its files; return the :class:`Result`.

    See :func:`minibnn.experiments.run` for the arguments; besides them:

    Args:
        executor: ``"processes"`` (the default) or ``"dask"`` (:mod:`~minibnn.experiments.executors`).
        scheduler: the address of an existing Dask scheduler (``"tcp://host:8786"``); implies ``"dask"``, and
            does not go with ``workers``.
        resume: skip the runs already stored in ``out_dir/name/runs/`` (False: run them again and overwrite).
            Without ``write`` nothing is stored and everything runs.

    Raises:
        ValueError: for bad arguments, before any run starts.
        ImportError: for the dask executor without Dask (the message says ``pip install "minibnn[cluster]"``).
        SweepError: if some runs failed (each reported on stderr as it failed); the others are stored.
    """
    study = get_study(name)
    opts = study.options(size, overrides)
    seeds = _check_seeds(seeds, study.default_seeds[size])
    make_executor(executor, workers, scheduler)  # checks the arguments (and that Dask is there) before any run
    if write and out_dir is None:
        raise ValueError("run_study: out_dir is None but write=True")
    # load (and check) the data once here, so a missing file fails before any worker starts
    study.data(opts)
    configs = study.configs(opts)
    labels = [c["label"] for c in configs]
    if len(set(labels)) != len(labels):
        raise RuntimeError(f"{name}: config labels are not unique: {labels}")
    specs = [RunSpec(name, opts, config, seed) for config in configs for seed in seeds]
    folder = os.path.join(os.fspath(out_dir), name) if write else None
    store = RunStore(os.path.join(folder, "runs")) if folder is not None else None
    done: Dict[int, Dict[str, Any]] = {}
    if store is not None and resume:
        for i, spec in enumerate(specs):
            try:
                record = store.load(spec)
            except InvalidRecord as error:
                print(f"minibnn experiment: ignoring an invalid stored run, it runs again: {error}", file=sys.stderr)
                continue
            if record is not None:
                done[i] = record
    stored = len(done)
    pending = len(specs) - stored
    if scheduler is None:
        workers = min((os.cpu_count() or 1) if workers is None else workers, max(pending, 1))
    runner = make_executor(executor, workers, scheduler)
    started = time.perf_counter()
    failures = _sweep(specs, done, store, runner, progress,
                      f"{name} ({size}, {len(seeds)} seed{'s' * (len(seeds) > 1)})")
    seconds = time.perf_counter() - started
    if failures:
        kept = f"; the {len(done)} finished runs are stored in {store.folder}: rerun the same command to run " \
            "only the others" if store is not None else ""
        raise SweepError(f"{name}: {len(failures)} of {len(specs)} runs failed (each reported above){kept}",
                         failures)
    records = [done[i] for i in range(len(specs))]
    runs = [{**spec.config, "seed": spec.seed, **record["numbers"]} for spec, record in zip(specs, records)]
    result = Result(study=name, size=size, seeds=seeds, options=opts, configs=configs, runs=runs,
                    summary=_summarise(configs, runs), seconds=seconds,
                    run_seconds=[record["seconds"] for record in records], workers=runner.workers,
                    executor=runner.description, stored=stored)
    result.analysis = study.analyse(result)
    if folder is not None:
        write_outputs(study, result, folder)
    return result
