"""The ``minibnn`` command line: ``minibnn demo``, ``minibnn experiment NAME``, ``minibnn assignments ...`` (or
``python -m minibnn ...``).

A subcommand is a class with a one-line ``help`` (and optionally an ``epilog`` of examples),
``add_arguments(parser)`` declaring its options on an ``argparse`` parser, and ``run(args) -> int`` returning
the exit code. It is defined where its code lives
(``minibnn experiment`` in :mod:`minibnn.experiments.command`, ``minibnn assignments`` in
:mod:`minibnn.course.command`, ``minibnn demo`` below) and registered in the
registry :data:`COMMANDS`, the same :class:`~minibnn.registry.Registry` that names quantizers, models and
studies. :func:`main` builds the parser from the registry, so ``minibnn --help`` lists every subcommand.

Example:
    >>> COMMANDS.names()
    ['assignments', 'demo', 'experiment']
    >>> main(["demo", "--epochs", "1", "--no-progress"])  # doctest: +ELLIPSIS
    minibnn demo: 151562 parameters, ...
    epoch 1/1  train loss ...
    test accuracy: ...
    0
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from typing import List, Optional

from . import __version__
from ._checks import count_argument
from .course.command import Assignments
from .data import ArrayDataset, DataLoader, load_digits
from .experiments.command import Experiment
from .losses import CrossEntropyLoss
from .models import bnn_mlp
from .optim import Adam
from .random import manual_seed
from .registry import Registry
from .schedulers import CosineAnnealingLR
from .model_summary import summary
from .training import evaluate, fit

__all__ = ["COMMANDS", "build_parser", "main", "Demo", "build_demo_model"]

#: The subcommands of ``minibnn``: name -> a class with ``help``, ``add_arguments(parser)`` and ``run(args)``.
COMMANDS = Registry("command")
COMMANDS.register("experiment")(Experiment)
COMMANDS.register("assignments")(Assignments)

_NAME = re.compile(r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one subparser per name in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="minibnn", description="minibnn: a from-scratch NumPy engine for "
                                     "binary neural networks.")
    parser.add_argument("--version", action="version", version=f"minibnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        if not _NAME.match(name):
            raise ValueError(f"minibnn: a command name must be letters, digits and dashes, got {name!r}")
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help,
                                             epilog=getattr(command, "epilog", None),
                                             formatter_class=argparse.RawDescriptionHelpFormatter))
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``minibnn ARGS`` (``argv`` defaults to ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(COMMANDS.create(args.command).run(args) or 0)


# --------------------------------------------------------------------------------------------------------------
# minibnn demo
# --------------------------------------------------------------------------------------------------------------
def build_demo_model(hidden: int = 256):
    """The demo's binary MLP for the 8x8 digits (BinaryNet's layout, Courbariaux/Hubara et al. 2016).

    ``Flatten -> Linear(64, hidden) -> BatchNorm1d -> [sign -> BinaryLinear(hidden, hidden) -> BatchNorm1d] x 2
    -> Hardtanh -> Linear(hidden, 10)``: binary weights and activations in the hidden layers, full-precision
    first and last layers as in the papers.
    """
    return bnn_mlp(in_features=64, num_classes=10, hidden_units=hidden, num_hidden=3)


@COMMANDS.register("demo")
class Demo:
    """The subcommand ``minibnn demo``: train the demo model on the bundled digits and print its accuracy."""

    help = "train a small binary MLP on the bundled 8x8 digits and print its test accuracy and packed size"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--epochs", type=count_argument, default=15, help="training epochs (default: 15)")
        parser.add_argument("--seed", type=int, default=0, help="seed of weights and shuffling (default: 0)")
        parser.add_argument("--batch-size", type=count_argument, default=32, help="batch size (default: 32)")
        parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 0.001)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (per-epoch lines only)")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        """Train the demo model on the bundled digits (Adam, cosine schedule) and print the test accuracy.

        Threads follow minibnn's one policy (:mod:`minibnn.threads`): one BLAS thread, kernels on several cores
        only for calls large enough to pay, so the demo is as fast next to a busy process as alone.
        """
        return _train_demo(args)


def _train_demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    x_train, y_train = load_digits("train", flatten=True)
    x_test, y_test = load_digits("test", flatten=True)
    train = DataLoader(ArrayDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True, seed=args.seed)
    test = DataLoader(ArrayDataset(x_test, y_test), batch_size=256)
    manual_seed(args.seed)
    model = build_demo_model()
    optimizer = Adam(model.parameters(), lr=args.lr)
    scheduler = CosineAnnealingLR(optimizer, T_max=args.epochs)
    n_params = sum(p.size for p in model.parameters())
    print(f"minibnn demo: {n_params} parameters, {len(y_train)} training and {len(y_test)} test digits (8x8), "
          f"{args.epochs} epoch{'s' if args.epochs > 1 else ''} (val = the test digits)", flush=True)
    loss_fn = CrossEntropyLoss()
    fit(model, train, loss_fn, optimizer, args.epochs, val_loader=test, scheduler=scheduler,
        progress=not args.no_progress, seed=args.seed)
    loss, accuracy = evaluate(model, test, loss_fn)
    correct = int(round(accuracy * len(y_test)))
    size = summary(model, (64,), print_fn=None)
    print(f"test accuracy: {100 * accuracy:.2f}% ({correct}/{len(y_test)}), test loss {loss:.4f}; "
          f"packed model {size.packed_bytes / 1024:.1f} KiB vs {size.float32_bytes / 1024:.1f} KiB in float32 "
          f"({size.compression_ratio:.1f}x smaller); {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
