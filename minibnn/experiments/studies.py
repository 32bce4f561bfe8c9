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

import math
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from ..registry import Registry
from .recipe import ARCHS, DATASETS, Data, load_data

if TYPE_CHECKING:  # pragma: no cover
    from .sweep import Result

__all__ = ["SIZES", "COMMON_OPTIONS", "SET_SYNTAX", "Study", "STUDIES", "get_study", "study_names", "check_option"]

#: the three sizes of every study: seconds (a smoke test), minutes (classrooms), the long run
SIZES = ("tiny", "quick", "full")
#: options every study has (its sizes add the rest): the data, and how many samples to keep of it
COMMON_OPTIONS: Dict[str, Any] = {"dataset": "digits", "data_root": None, "train_limit": None, "test_limit": None}

#: how ``minibnn experiment --set`` reads a value (shown by ``--help`` and ``--list``)
SET_SYNTAX = ("--set KEY=VALUE overrides an option; VALUE is JSON (a bare word is a string), e.g. "
              "--set epochs=3 --set 'archs=[\"mlp\"]' --set 'lrs={\"mlp\": 0.01}' --set train_limit=500")

#: options whose value is one of a few names
_CHOICES = {"dataset": DATASETS, "arch": tuple(ARCHS), "archs": tuple(ARCHS), "optimizer": ("adam", "sgd")}
#: options whose default is None: what else they accept
_OPTIONAL = {"data_root": "text", "train_limit": "count", "test_limit": "count"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _kind(value: Any) -> str:
    """What a default value is: 'count', 'number', 'text', 'flag', 'list of numbers/text', 'table'."""
    if isinstance(value, bool):
        return "flag"
    if isinstance(value, int):
        return "count"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "table"
    kinds = {"number" if _is_number(v) else "text" for v in value}
    return "list of " + "/".join(sorted(kinds))


_FORMS = {
    "count": ("an integer >= 1", "3"),
    "number": ("a number >= 0", "0.001"),
    "text": ("a word", "adam"),
    "flag": ("true or false", "true"),
    "table": ("a JSON object of numbers > 0 by architecture", '{"mlp": 0.01}'),
    "list of number": ("a non-empty JSON list of numbers", "[0, 1.5]"),
    "list of text": ("a non-empty JSON list of words", '["mlp"]'),
    "list of number/text": ("a non-empty JSON list of words and numbers", '["glorot", 0.01]'),
}


def check_option(who: str, name: str, value: Any, default: Any, choices: Optional[Sequence[str]] = None) -> Any:
    """``value`` for the option ``name`` if it has the form of the option's ``default``, else a ValueError.

    The form is read off the default: an int is a count >= 1 (epochs, batch_size...), a float a number >= 0, a
    tuple a non-empty list of the same kind of elements (a JSON list), a dict a table of positive numbers by
    architecture (a JSON object); ``dataset``, ``arch(s)`` and ``optimizer`` must name one of their choices, as
    must an option given ``choices`` (a study's :attr:`Study.choices`).
    The error is one line naming the option, the value and the expected form, with an example.

    Example:
        >>> check_option("experiment", "archs", ["mlp"], ("vgg7", "resnet"))
        ('mlp',)
        >>> check_option("experiment", "lrs", 0.1, {"mlp": 1e-3})
        Traceback (most recent call last):
        ...
        ValueError: experiment: option lrs must be a JSON object of numbers > 0 by architecture, e.g. \
--set 'lrs={"mlp": 0.01}'; got 0.1
    """
    kind = _OPTIONAL.get(name, "text") if default is None else _kind(default)
    choices = tuple(choices) if choices is not None else _CHOICES.get(name)
    if kind == "count":
        ok = _is_count(value)
    elif kind == "number":
        ok = _is_number(value) and value >= 0
        value = float(value) if ok else value
    elif kind == "text":
        ok = isinstance(value, str) and (choices is None or value in choices)
    elif kind == "flag":
        ok = isinstance(value, bool)
    elif kind == "table":
        ok = (isinstance(value, dict) and all(k in ARCHS for k in value)
              and all(_is_number(v) and v > 0 for v in value.values()))
    else:  # a list
        allowed = kind[len("list of "):].split("/")
        ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(
            ("number" in allowed and _is_number(v)) or ("text" in allowed and isinstance(v, str)) for v in value)
        ok = ok and (choices is None or all(v in choices for v in value))
        value = tuple(value) if ok else value
    if not ok:
        form, example = _FORMS[kind]
        if choices is not None:
            form = (f"a non-empty JSON list of names from {', '.join(choices)}" if kind.startswith("list")
                    else f"one of {', '.join(choices)}")
            example = f'["{choices[0]}"]' if kind.startswith("list") else choices[0]
        if example[0] in "[{":
            example = f"'{name}={example}'"
        else:
            example = f"{name}={example}"
        raise ValueError(f"{who}: option {name} must be {form}, e.g. --set {example}; got {value!r}")
    return value


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
    #: ``{option: the names its values may take}`` for the study's own named options (``kinds``, ``stes``...)
    choices: Dict[str, Tuple[str, ...]] = {}

    def options(self, size: str, overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """The options of ``size`` with ``overrides`` applied, each checked by :func:`check_option`.

        Raises:
            ValueError: for an unknown size or option name (the message lists the known ones), or a value of
                the wrong form (the message names the option, the value and the expected form).
        """
        if size not in SIZES:
            raise ValueError(f"{self.name}: size must be one of {', '.join(SIZES)}, got {size!r}")
        opts = dict(self.sizes[size])
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        unknown = sorted(set(overrides) - set(opts))
        if unknown:
            raise ValueError(f"experiment {self.name!r}: unknown option(s) {unknown}; its options are "
                             f"{sorted(opts)}")
        for key, value in overrides.items():
            opts[key] = check_option(f"experiment {self.name!r}", key, value, opts[key], self.choices.get(key))
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
