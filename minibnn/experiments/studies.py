"""The studies: what one paper experiment defines, and the registry ``minibnn experiment NAME`` looks names up in.

A *study* (one module of this package per paper experiment) is a subclass of :class:`Study` registered with
``@STUDIES.register(NAME)``. It defines

* ``sizes``: its hyperparameters for each size, ``"tiny"`` (seconds, a smoke test for the test suite),
  ``"quick"`` (minutes on 2 cores, for classrooms) and ``"full"`` (the closest this engine gets to the paper);
* ``configs(opts)``: the points of its sweep, each a dict of JSON values with a unique ``"label"``;
* ``run_one(config, seed, opts)``: train one model on ``self.data(opts)`` and return its numbers (scalars, or
  per-epoch lists), with the recipe of :mod:`~minibnn.experiments.recipe`;
* ``markdown(result)`` and ``plot(result, fig)``: its table laid out like the paper's, and its figure.

:func:`~minibnn.experiments.sweep.run_study` runs the sweep and :mod:`~minibnn.experiments.report` writes the
files, the same way for every study.

Example:
    >>> class Coin(Study):
    ...     name, title = "coin", "a fair coin"
    ...     sizes = {size: {"flips": 10} for size in SIZES}
    >>> registry = Registry("study", base=Study)
    >>> _ = registry.register("coin")(Coin)
    >>> registry.create("coin").options("tiny", {"flips": 3})
    {'flips': 3, 'size': 'tiny'}
    >>> study_names()
    ['random-bias', 'init-variance', 'bn-ablation', 'threshold-shift', 'ste-ablation']
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ..registry import Registry
from .recipe import Data, load_data

if TYPE_CHECKING:  # pragma: no cover
    from .sweep import Result

__all__ = ["SIZES", "COMMON_OPTIONS", "Study", "STUDIES", "get_study", "study_names"]

#: the three sizes of every study: seconds (a smoke test), minutes (classrooms), the long run
SIZES = ("tiny", "quick", "full")
#: options every study has (its sizes add the rest): the data, and how many samples to keep of it
COMMON_OPTIONS: Dict[str, Any] = {"dataset": "digits", "data_root": None, "train_limit": None, "test_limit": None}


class Study:
    """Base class of a study; see the module docstring for what a subclass defines.

    Attributes:
        name: the command name (``minibnn experiment NAME``).
        title: one line naming the experiment and its paper.
        metric: the headline number of ``run_one`` (the one its table reports).
        sizes: ``{size: {option: value}}``; every size has the same option names.
        default_seeds: ``{size: number of seeds}``.
    """

    name = ""
    title = ""
    #: where the study comes in :func:`study_names` (the order of the papers' sections)
    position = 0
    metric = "test_acc"
    sizes: Dict[str, Dict[str, Any]] = {}
    default_seeds = {"tiny": 2, "quick": 3, "full": 5}

    def options(self, size: str, overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """The options of ``size`` with ``overrides`` applied (unknown names raise a ValueError listing them)."""
        if size not in SIZES:
            raise ValueError(f"{self.name}: size must be one of {', '.join(SIZES)}, got {size!r}")
        opts = dict(self.sizes[size])
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        unknown = sorted(set(overrides) - set(opts))
        if unknown:
            raise ValueError(f"experiment {self.name!r}: unknown option(s) {unknown}; its options are "
                             f"{sorted(opts)}")
        opts.update(overrides)
        opts["size"] = size
        return opts

    def images(self, opts: Dict[str, Any]) -> bool:
        """Whether the runs need images (N, C, H, W): True unless every arch of ``opts`` is the MLP, which also
        takes flat points (so the synthetic sets ``spirals`` and ``gaussian`` work with MLP-only sweeps)."""
        archs = opts.get("archs") or (opts.get("arch"),)
        return any(a != "mlp" for a in archs)

    def data(self, opts: Dict[str, Any]) -> "Data":
        """The dataset of the runs, as ``opts`` names it (:func:`~minibnn.experiments.recipe.load_data`, cached per
        process)."""
        return load_data(opts["dataset"], opts.get("data_root"), self.images(opts), opts.get("train_limit"),
                         opts.get("test_limit"))

    def configs(self, opts: Dict[str, Any]) -> List[Dict[str, Any]]:
        raise NotImplementedError

    def run_one(self, config: Dict[str, Any], seed: int, opts: Dict[str, Any]) -> Dict[str, Any]:
        raise NotImplementedError

    def analyse(self, result: "Result") -> Dict[str, Any]:
        """Derived numbers over the whole sweep (e.g. the shift chosen from first-epoch accuracy); default none."""
        return {}

    def markdown(self, result: "Result") -> str:
        raise NotImplementedError

    def plot(self, result: "Result", fig) -> None:
        raise NotImplementedError


#: The studies by name: ``@STUDIES.register("random-bias")`` on a :class:`Study` subclass adds one.
STUDIES = Registry("study", base=Study)


def get_study(name: str) -> Study:
    """The study registered as ``name`` (a new instance; a study holds no state).

    Raises:
        ValueError: for an unknown name, or a study that lacks the options of a size.
    """
    if name not in STUDIES:
        raise ValueError(f"unknown experiment {name!r}; the experiments are: {', '.join(study_names())}")
    study = STUDIES.create(name)
    missing = [s for s in SIZES if s not in study.sizes]
    if missing:
        raise ValueError(f"study {name!r} has no options for size(s) {missing}")
    return study


def study_names() -> List[str]:
    """The registered study names, in the order of the papers' sections."""
    return sorted(STUDIES.names(), key=lambda name: STUDIES.get(name).position)
