"""The result store: one JSON file per finished run, keyed by a hash of everything that determines its numbers.

A sweep writes each run's numbers as soon as the run finishes, to ``<out>/<study>/runs/<label>.s<seed>.<key>.json``
(atomically, with :func:`minibnn.atomic.atomic_write`), and builds its tables from these files. So

* an interrupted sweep (Ctrl-C, SIGKILL, a lost machine) continues where it stopped: a rerun of the same command
  finds the finished runs and runs only the others;
* the tables depend only on the stored numbers, so the same runs give byte-identical tables whichever executor
  (this process, a process pool, a Dask cluster) ran them;
* several machines can share one output folder: each skips what is stored when it starts, and a run written
  twice is written with the same numbers (every run seeds itself).

The *key* is the SHA-256 of the run's configuration as canonical JSON (sorted keys, no spaces):
``{"study", "options", "config", "seed", "minibnn"}`` (:func:`run_key`). ``options`` are the study's options
for the size (the size and the dataset included) minus ``data_root``, which says where the files are, not what
they hold; ``minibnn`` is the version, so an upgrade reruns everything. A change to the code that keeps the
version keeps the key: pass ``--no-resume`` to redo the runs after editing a study.

A file is JSON (floats written with ``repr``, so they load back bit-exact; NaN and infinities as Python's
``json`` writes them, ``NaN`` / ``Infinity``), never pickle, and is validated when read back
(:meth:`RunStore.load`): its format tag, its fields and their types, and its key recomputed from its own
configuration. A file that fails is reported and its run done again.

Example:
    >>> import tempfile
    >>> store = RunStore(tempfile.mkdtemp())
    >>> run = RunSpec("coin", {"flips": 3}, {"label": "fair"}, seed=0)
    >>> _ = store.save(run, {"heads": 2, "curve": (0.5, np.float64(1.0))}, seconds=0.1)
    >>> os.listdir(store.folder) == [run.filename], run.filename[:8]
    (True, 'fair.s0.')
    >>> store.load(run)["numbers"]
    {'curve': [0.5, 1.0], 'heads': 2}
    >>> store.load(RunSpec("coin", {"flips": 3}, {"label": "fair"}, seed=1)) is None   # seed 1 never ran
    True
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Union

import numpy as np

from .. import __version__
from ..atomic import atomic_write

__all__ = ["FORMAT", "RunSpec", "RunStore", "InvalidRecord", "run_key", "make_record", "encode", "decode", "plain"]

#: the format tag of a stored run; a file with another tag is not read
FORMAT = "minibnn-run/1"
#: options that say where things are, not what is computed: left out of the key
_LOCATION_OPTIONS = ("data_root",)
_FIELDS = {"format": str, "key": str, "study": str, "options": dict, "config": dict, "seed": int, "minibnn": str,
           "numbers": dict, "seconds": float}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class InvalidRecord(ValueError):
    """A stored run that is not a valid record of the run asked for."""


def plain(value: Any, finite_only: bool = False) -> Any:
    """``value`` as plain JSON values: NumPy scalars and arrays to Python ones, tuples to lists; NaN and
    infinities kept, or None with ``finite_only`` (for strict JSON).

    Example:
        >>> plain({"a": (np.float64(0.5), np.int64(2)), "b": np.array([1.0, np.nan])})
        {'a': [0.5, 2], 'b': [1.0, nan]}
        >>> plain([np.inf, 2.0], finite_only=True)
        [None, 2.0]
    """
    if isinstance(value, dict):
        return {str(k): plain(v, finite_only) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, finite_only) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist(), finite_only)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if finite_only and not math.isfinite(value) else float(value)
    return value


def _canonical(value: Any) -> str:
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), allow_nan=True)


def _key_options(options: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in options.items() if k not in _LOCATION_OPTIONS}


def run_key(study: str, options: Dict[str, Any], config: Dict[str, Any], seed: int,
            version: str = __version__) -> str:
    """The SHA-256 (hex) of one run's full configuration: study, options (minus ``data_root``), config, seed and
    minibnn version.

    Example:
        >>> a = run_key("coin", {"flips": 3, "data_root": "/here"}, {"label": "fair"}, 0)
        >>> a == run_key("coin", {"flips": 3, "data_root": "/there"}, {"label": "fair"}, 0), len(a)
        (True, 64)
        >>> a == run_key("coin", {"flips": 3}, {"label": "fair"}, 1)
        False
    """
    identity = {"study": study, "options": _key_options(options), "config": config, "seed": int(seed),
                "minibnn": version}
    return hashlib.sha256(_canonical(identity).encode("utf-8")).hexdigest()


@dataclass
class RunSpec:
    """One run of a sweep: study ``study`` at config ``config`` (with its ``"label"``) and seed ``seed``, under the
    study's ``options``. It is the task sent to a worker, and names the run's file in the store."""

    study: str
    options: Dict[str, Any]
    config: Dict[str, Any]
    seed: int

    @property
    def key(self) -> str:
        """:func:`run_key` of this run."""
        return run_key(self.study, self.options, self.config, self.seed)

    @property
    def filename(self) -> str:
        """``<label>.s<seed>.<first 16 hex digits of the key>.json`` (the label made safe for a file name)."""
        slug = _UNSAFE.sub("_", str(self.config.get("label", "run"))).strip("._")[:60] or "run"
        return f"{slug}.s{self.seed}.{self.key[:16]}.json"

    def describe(self) -> str:
        """The run in one line: study, config and seed, for messages."""
        return f"{self.study} {json.dumps(plain(self.config), sort_keys=True)} seed {self.seed}"


def make_record(spec: RunSpec, numbers: Dict[str, Any], seconds: float) -> Dict[str, Any]:
    """The record stored for one finished run: its configuration, its key, its numbers and its wall time."""
    return {"format": FORMAT, "key": spec.key, "study": spec.study, "options": plain(_key_options(spec.options)),
            "config": plain(spec.config), "seed": int(spec.seed), "minibnn": __version__,
            "numbers": plain(numbers), "seconds": float(seconds)}


def encode(record: Dict[str, Any]) -> str:
    """A record as the text of its file."""
    return json.dumps(record, indent=1, sort_keys=True, allow_nan=True) + "\n"


def _json_value(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_json_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_value(v) for k, v in value.items())
    return False


def decode(text: str, key: Optional[str] = None) -> Dict[str, Any]:
    """The record in ``text``, checked: format tag, fields and types, the key recomputed from the record's own
    configuration (and equal to ``key`` if given).

    Raises:
        InvalidRecord: saying what is wrong.
    """
    try:
        record = json.loads(text)
    except ValueError as error:
        raise InvalidRecord(f"not JSON ({error})") from None
    if not isinstance(record, dict):
        raise InvalidRecord(f"not a JSON object but {type(record).__name__}")
    if record.get("format") != FORMAT:
        raise InvalidRecord(f"format must be {FORMAT!r}, got {record.get('format')!r}")
    if set(record) != set(_FIELDS):
        raise InvalidRecord(f"fields must be {sorted(_FIELDS)}, got {sorted(record)}")
    for name, kind in _FIELDS.items():
        value = record[name]
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                and value >= 0
        if not ok:
            raise InvalidRecord(f"{name} must be {kind.__name__}, got {value!r}")
    if not all(_json_value(v) for v in (record["options"], record["config"], record["numbers"])):
        raise InvalidRecord("options, config and numbers must hold only JSON values")
    expected = run_key(record["study"], record["options"], record["config"], record["seed"], record["minibnn"])
    if record["key"] != expected:
        raise InvalidRecord(f"its key {record['key'][:12]}... is not the hash of its configuration "
                            f"({expected[:12]}...)")
    if key is not None and record["key"] != key:
        raise InvalidRecord(f"it holds run {record['key'][:12]}..., not {key[:12]}...")
    return record


class RunStore:
    """The folder of one study's stored runs: ``save`` a finished run, ``load`` it back, validated.

    Args:
        folder: where the files go (created on the first save).
    """

    def __init__(self, folder: Union[str, "os.PathLike[str]"]):
        self.folder = os.fspath(folder)

    def path(self, spec: RunSpec) -> str:
        """The file of run ``spec``."""
        return os.path.join(self.folder, spec.filename)

    def save(self, spec: RunSpec, numbers: Dict[str, Any], seconds: float) -> Dict[str, Any]:
        """Write the record of run ``spec`` atomically; return the record as read back (:func:`decode`).

        If the write fails but the run's file is there and valid (another machine sharing the folder stored the
        same run at the same moment), that record is returned.

        Raises:
            TypeError: if ``numbers`` holds something that is not a JSON value.
            OSError: if the file cannot be written (and no valid one is there).
        """
        text = encode(make_record(spec, numbers, seconds))
        try:
            os.makedirs(self.folder, exist_ok=True)
            with atomic_write(self.path(spec), "w") as f:
                f.write(text)
        except OSError:
            try:
                record = self.load(spec)
            except InvalidRecord:
                record = None
            if record is None:
                raise
            return record
        return decode(text, spec.key)

    def load(self, spec: RunSpec) -> Optional[Dict[str, Any]]:
        """The stored record of run ``spec``, or None if it never finished.

        Raises:
            InvalidRecord: if its file is there but does not hold a valid record of that run (the message names
                the file).
        """
        path = self.path(spec)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidRecord(f"{path}: {error}") from None
        try:
            return decode(text, spec.key)
        except InvalidRecord as error:
            raise InvalidRecord(f"{path}: {error}") from None
