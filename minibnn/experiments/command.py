"""``minibnn experiment NAME``: run one of the papers' studies from the command line.

    minibnn experiment --list
    minibnn experiment random-bias --quick --seeds 3 --out results --workers 2
    minibnn experiment threshold-shift --tiny --no-progress
    minibnn experiment ste-ablation --dataset mnist --data-root ~/data --set train_limit=10000
    minibnn experiment bn-ablation --quick --set archs='["mlp"]' --epochs 10

Sizes: ``--tiny`` (seconds), ``--quick`` (minutes on 2 cores) or, by default, the full setting. ``--set
KEY=VALUE`` overrides any option of the study (VALUE is read as JSON when it parses, else as a string); the
options of a study are listed by ``--list``. Prints the Markdown table and the paths written.

:class:`Experiment` is registered as the subcommand ``experiment`` in :mod:`minibnn.cli`.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="minibnn experiment")
    >>> Experiment.add_arguments(parser)
    >>> Experiment.run(parser.parse_args(["--list"]))  # doctest: +ELLIPSIS
    random-bias: ...
    0
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List

from .recipe import DATASETS
from .studies import SIZES, get_study, study_names
from .sweep import run_study

__all__ = ["Experiment"]


def _parse_sets(items: List[str]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"minibnn experiment: --set expects KEY=VALUE, got {item!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        out[key.strip().replace("-", "_")] = value
    return out


def _list() -> None:
    for name in study_names():
        study = get_study(name)
        print(f"{name}: {study.title}")
        for size in SIZES:
            opts = ", ".join(f"{k}={v!r}" for k, v in study.sizes[size].items())
            print(f"    {size} ({study.default_seeds[size]} seeds): {opts}")


class Experiment:
    """The subcommand ``minibnn experiment``: one study, its sweep, its files."""

    help = ("run a study of the papers (random-bias, init-variance, bn-ablation, threshold-shift, ste-ablation) "
            "and write CSV, JSON, a Markdown table and a plot")

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name", nargs="?", help="the study: " + ", ".join(study_names()))
        size = parser.add_mutually_exclusive_group()
        size.add_argument("--tiny", action="store_const", const="tiny", dest="size",
                          help="seconds: a reduced grid on a few hundred samples (for tests)")
        size.add_argument("--quick", action="store_const", const="quick", dest="size",
                          help="minutes on 2 cores: the whole grid on small models")
        size.add_argument("--full", action="store_const", const="full", dest="size",
                          help="the full setting (the default)")
        parser.add_argument("--seeds", type=int, default=None, metavar="N",
                            help="number of seeds 0..N-1 (default: the study's for the size)")
        parser.add_argument("--out", default="results", metavar="DIR",
                            help="output folder; files go to DIR/NAME/ (default: results)")
        parser.add_argument("--workers", type=int, default=None, metavar="N",
                            help="processes running the sweep (default: all cores; 1 runs in this process)")
        parser.add_argument("--dataset", choices=DATASETS, default=None,
                            help="digits (default, bundled), spirals / gaussian (synthetic, MLP studies only), or "
                                 "mnist / fashion / cifar10 read from --data-root")
        parser.add_argument("--data-root", default=None, metavar="DIR",
                            help="folder of the MNIST / CIFAR-10 files")
        parser.add_argument("--epochs", type=int, default=None, help="override the size's number of epochs")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="override an option of the study (repeatable)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument("--list", action="store_true", help="list the studies and their options, then exit")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        if args.list:
            _list()
            return 0
        if args.name is None:
            raise SystemExit(f"minibnn experiment: name a study ({', '.join(study_names())}) or use --list")
        overrides = _parse_sets(args.set)
        for key in ("dataset", "data_root", "epochs"):
            value = getattr(args, key)
            if value is not None:
                overrides[key] = value
        try:
            result = run_study(args.name, seeds=args.seeds, size=args.size or "full", out_dir=args.out,
                               workers=args.workers, progress=not args.no_progress, **overrides)
        except (ValueError, FileNotFoundError) as error:
            print(f"minibnn experiment: {error}", file=sys.stderr)
            return 2
        with open(result.files["markdown"], encoding="utf-8") as f:
            print(f.read())
        for kind, path in result.files.items():
            print(f"{kind}: {path}")
        return 0
