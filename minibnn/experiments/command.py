"""``minibnn experiment NAME``: run one of the papers' studies from the command line.

    minibnn experiment --list
    minibnn experiment random-bias --seeds 3 --out results --workers 2
    minibnn experiment threshold-shift --tiny --no-progress
    minibnn experiment ste-ablation --full --dataset mnist --data-root ~/data --set train_limit=10000
    minibnn experiment bn-ablation --set 'archs=["mlp"]' --set 'lrs={"mlp": 0.01}' --epochs 10
    minibnn experiment ste-ablation --full --executor dask --workers 8
    minibnn experiment ste-ablation --full --scheduler tcp://scheduler-host:8786 --out /shared/results

Sizes: ``--quick`` (the default: minutes on 2 cores), ``--full`` (the closest to the paper; 10-20 minutes)
or ``--tiny`` (seconds: a smoke test whose numbers mean nothing). ``--set KEY=VALUE`` overrides any option of
the study; VALUE is JSON (a bare word is a string). Every value is checked against the option's form before any
run starts; a mistake ends with a one-line error naming the option, the value and the expected form, and exit
status 2. The options of each study are listed by ``--list``. Prints the Markdown table and the paths written.

Where the runs go: ``--executor processes`` (the default: ``--workers`` processes, 1 = this process) or
``--executor dask`` (a Dask LocalCluster of ``--workers`` processes); ``--scheduler ADDRESS`` sends them to an
existing Dask cluster (Dask: ``pip install "minibnn[cluster]"``). Every run is stored in ``DIR/NAME/runs/`` as
it finishes, so the same command run again skips the finished runs (``--no-resume`` redoes them): an
interrupted sweep continues, and several machines can share one ``--out`` folder. A failing run is reported
once with its configuration and error; the others go on and the command ends with exit status 1.

:class:`Experiment` is registered as the subcommand ``experiment`` in :mod:`minibnn.cli`.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="minibnn experiment")
    >>> Experiment.add_arguments(parser)
    >>> Experiment.run(parser.parse_args(["--list"]))  # doctest: +ELLIPSIS
    --set KEY=VALUE overrides an option; VALUE is JSON ...
    random-bias: ...
    0
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List

from .._checks import count_argument
from .executors import executor_names
from .recipe import DATASETS
from .studies import SET_SYNTAX, SIZES, get_study, study_names
from .sweep import SweepError, run_study

__all__ = ["Experiment"]


def _parse_sets(items: List[str]) -> Dict[str, Any]:
    """``["KEY=VALUE", ...]`` -> ``{key: value}``, VALUE read as JSON (else as a string)."""
    out: Dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}; {SET_SYNTAX}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        out[key.strip().replace("-", "_")] = value
    return out


def _list() -> None:
    """Print the syntax of --set and every study's options for each size, in the form --set reads them."""
    print(SET_SYNTAX + ". Sizes: --quick (default), --full, --tiny (a smoke test).\n")
    for name in study_names():
        study = get_study(name)
        print(f"{name}: {study.title}")
        for size in SIZES:
            opts = " ".join(f"{k}={json.dumps(v)}" for k, v in study.sizes[size].items())
            print(f"    {size} ({study.default_seeds[size]} seeds): {opts}")


class Experiment:
    """The subcommand ``minibnn experiment``: one study, its sweep, its files."""

    help = ("run a study of the papers (random-bias, init-variance, bn-ablation, threshold-shift, ste-ablation) "
            "and write CSV, JSON, a Markdown table and a plot")
    epilog = """examples:
  minibnn experiment --list                          the studies, their options and sizes
  minibnn experiment random-bias                     the quick size (minutes on 2 cores)
  minibnn experiment init-variance --full --workers 2
  minibnn experiment bn-ablation --set 'archs=["mlp"]' --set 'lrs={"mlp": 0.01}' --epochs 10
  minibnn experiment threshold-shift --tiny          a smoke test (its numbers mean nothing)
  minibnn experiment ste-ablation --full --executor dask --workers 8      on a Dask LocalCluster
  minibnn experiment ste-ablation --full --scheduler tcp://host:8786      on an existing Dask cluster

Every run is stored in DIR/NAME/runs/ as it finishes; the same command run again skips the stored runs
(--no-resume redoes them), so an interrupted sweep continues where it stopped.

--set KEY=VALUE: VALUE is JSON; a bare word is a string. Lists are JSON lists, per-architecture tables JSON
objects; quote them for the shell. Every value is checked before any run starts."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name", nargs="?", help="the study: " + ", ".join(study_names()))
        size = parser.add_mutually_exclusive_group()
        size.add_argument("--quick", action="store_const", const="quick", dest="size",
                          help="minutes on 2 cores: the whole grid on small models (the default)")
        size.add_argument("--full", action="store_const", const="full", dest="size",
                          help="the closest to the paper: 10-20 minutes on 2 cores")
        size.add_argument("--tiny", action="store_const", const="tiny", dest="size",
                          help="seconds: a smoke test on a few hundred samples; its numbers mean nothing")
        parser.add_argument("--seeds", type=count_argument, default=None, metavar="N",
                            help="number of seeds 0..N-1 (default: the study's for the size)")
        parser.add_argument("--out", default="results", metavar="DIR",
                            help="output folder; files go to DIR/NAME/ (default: results)")
        parser.add_argument("--workers", type=count_argument, default=None, metavar="N",
                            help="processes running the sweep (default: all cores; 1 runs in this process)")
        parser.add_argument("--executor", choices=executor_names(), default=None,
                            help="processes (the default: a pool of --workers processes) or dask (a Dask "
                                 "LocalCluster of --workers processes; pip install \"minibnn[cluster]\")")
        parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                            help="send the runs to an existing Dask cluster, e.g. tcp://scheduler-host:8786")
        parser.add_argument("--no-resume", action="store_true",
                            help="run every run again, even those already stored in DIR/NAME/runs/")
        parser.add_argument("--dataset", choices=DATASETS, default=None,
                            help="digits (default, bundled), spirals / gaussian (synthetic, MLP studies only), or "
                                 "mnist / fashion / cifar10 read from --data-root")
        parser.add_argument("--data-root", default=None, metavar="DIR",
                            help="folder of the MNIST / CIFAR-10 files")
        parser.add_argument("--epochs", type=count_argument, default=None,
                            help="override the size's number of epochs")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override an option of the study (repeatable; --list shows them). "
                                 + SET_SYNTAX.replace("%", "%%"))
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument("--list", action="store_true", help="list the studies and their options, then exit")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        if args.list:
            _list()
            return 0
        if args.name is None:
            print(f"minibnn experiment: name a study ({', '.join(study_names())}) or use --list", file=sys.stderr)
            return 2
        try:
            overrides = _parse_sets(args.set)
            for key in ("dataset", "data_root", "epochs"):
                value = getattr(args, key)
                if value is not None:
                    overrides[key] = value
            result = run_study(args.name, seeds=args.seeds, size=args.size or "quick", out_dir=args.out,
                               workers=args.workers, executor=args.executor,
                               scheduler=args.scheduler, resume=not args.no_resume,
                               progress=not args.no_progress, **overrides)
        except (ValueError, FileNotFoundError, ImportError, ConnectionError) as error:
            print(f"minibnn experiment: {error}", file=sys.stderr)
            return 2
        except SweepError as error:
            print(f"minibnn experiment: {error}", file=sys.stderr)
            return 1
        with open(result.files["markdown"], encoding="utf-8") as f:
            print(f.read())
        for kind, path in result.files.items():
            print(f"{kind}: {path}")
        store = os.path.join(args.out, args.name, "runs")
        if result.stored == len(result.runs):
            print(f"all {len(result.runs)} runs read from {store} (--no-resume runs them again)")
        else:
            print(f"{len(result.runs)} runs: {result.stored} read from {store}, {len(result.runs) - result.stored} "
                  f"run on {result.executor} in {result.seconds:.1f} s")
        return 0
