"""Checkpoints: a model, its optimizer and scheduler in one ``.npz`` file, written atomically, read without pickle.

File layout (an ordinary NumPy ``.npz``, i.e. a zip of ``.npy`` arrays, readable with ``np.load``):

* ``model/<name>``: each parameter and buffer of ``model.state_dict()`` (e.g. ``model/0.weight``);
* ``optimizer/...``, ``scheduler/...``, ``extra/...``: the arrays found inside those state dicts;
* ``__metadata__``: a uint8 array holding UTF-8 JSON: the format name and version, the epoch, the state
  dicts with every array replaced by ``{"__array__": "<its name in the file>"}``, and the dtype, shape and
  SHA-256 of every array (see :mod:`minibnn.archive`). Numbers, strings, lists and dicts are stored in the
  JSON (Python floats round-trip exactly through ``repr``).

So nothing is ever pickled, and ``np.load(path, allow_pickle=False)`` reads the file too.

Writing is atomic (:func:`minibnn.atomic.atomic_write`): a crash or an error in the middle leaves any previous
checkpoint at ``path`` untouched. Reading (:func:`minibnn.archive.read_archive`) trusts nothing in the file:
every failure, whether a truncation, a flipped byte, crafted metadata (wrong types, missing entries, deep
nesting, non-UTF-8), a header claiming a huge array, or an array altered or swapped (each array's name is bound
to its SHA-256, and each ``{"__array__": name}`` must name the array stored for that place), raises
:class:`CheckpointError` naming the file and what is wrong. Names, shapes and dtypes are then checked against
the model, and nothing is loaded unless everything fits.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from minibnn import Parameter, Sequential
    >>> from minibnn.layers import Linear
    >>> from minibnn.optim import Adam
    >>> model = Sequential(Linear(3, 2)); opt = Adam(model.parameters())
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> save_checkpoint(path, model, opt, epoch=4, extra={"note": "first try"})
    >>> load_checkpoint(path, model, opt)
    {'epoch': 4, 'extra': {'note': 'first try'}}
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Dict, Optional

import numpy as np

from . import _checks
from .archive import Archive, read_archive, write_archive
from .atomic import atomic_write
from .module import Module

__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint", "CheckpointError", "FORMAT", "VERSION"]

FORMAT = "minibnn-checkpoint"
VERSION = 1
_ARRAY = "__array__"
_KIND = "minibnn checkpoint"


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupt, or does not fit the objects it is loaded into."""


# --------------------------------------------------------------------------------------------------------------
# State dicts <-> (JSON skeleton, named arrays)
# --------------------------------------------------------------------------------------------------------------
def _encode(value: Any, name: str, arrays: Dict[str, np.ndarray]) -> Any:
    """Replace every array inside ``value`` by ``{"__array__": name}`` (collected in ``arrays``)."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject or value.dtype.kind == "V":
            raise TypeError(f"save_checkpoint: the array at '{name}' has dtype {value.dtype}, which cannot be "
                            f"saved without pickle; use a numeric dtype")
        if name in arrays:
            raise ValueError(f"save_checkpoint: two arrays would be stored under the same name '{name}'")
        arrays[name] = value
        return {_ARRAY: name}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"save_checkpoint: dict keys must be strings (JSON), got {key!r} inside '{name}'")
            if key == _ARRAY:
                raise ValueError(f"save_checkpoint: the key '{_ARRAY}' inside '{name}' is reserved")
            out[key] = _encode(item, f"{name}/{key}", arrays)
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(item, f"{name}/{i}", arrays) for i, item in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"save_checkpoint: cannot store an object of type {type(value).__name__} at '{name}': "
                    f"only arrays, numbers, strings, None, lists and dicts are saved (never pickled)")


def _decode(value: Any, archive: Archive, name: str, used: set) -> Any:
    """Inverse of :func:`_encode` (lists stay lists). A reference must name the array stored for its own place
    (``name``), so references cannot be swapped in the metadata; every array is used once."""
    if isinstance(value, dict):
        if _ARRAY in value:
            if value != {_ARRAY: name}:
                raise archive.fail(f"its metadata at '{name}' holds {str(value)[:60]}, expected "
                                   f"{{'{_ARRAY}': '{name}'}}")
            used.add(name)
            return archive.array(name)
        return {k: _decode(v, archive, f"{name}/{k}", used) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, archive, f"{name}/{i}", used) for i, v in enumerate(value)]
    return value


# --------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------
def write_npz_atomically(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """``np.savez(path, **arrays)`` done atomically. Kept only for ``minibnn.deploy`` until its files move to
    :func:`minibnn.archive.write_archive` (which also records a SHA-256 per array); do not use it elsewhere."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def save_checkpoint(path, model: Module, optimizer=None, scheduler=None, epoch: Optional[int] = None,
                    extra: Any = None) -> None:
    """Save the model's parameters and buffers, and optionally the optimizer, scheduler, epoch and extras.

    Args:
        path: the file to write (str or os.PathLike), conventionally ending in ``.npz``; its directory must
            exist. An existing file is replaced atomically.
        model: a :class:`~minibnn.module.Module`.
        optimizer, scheduler: objects with ``state_dict()`` (arrays, numbers, strings, lists, dicts), or None.
        epoch: an int (e.g. the number of finished epochs), or None.
        extra: anything made of arrays, numbers, strings, None, lists and string-keyed dicts (e.g. a
            ``History.to_dict()``, a config); tuples come back as lists.

    Raises:
        TypeError: something in a state dict or ``extra`` cannot be stored without pickle.
        OSError: the file could not be written (the previous file, if any, is left as it was).
    """
    who = "save_checkpoint"
    _checks.one_of_types(who, "model", model, (Module,), "a minibnn Module")
    if epoch is not None:
        if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, (int, np.integer)):
            raise TypeError(f"save_checkpoint: epoch must be an int or None, got {epoch!r}")
        epoch = _checks.integer(who, "epoch", epoch, None, None)
    arrays: Dict[str, np.ndarray] = OrderedDict()
    meta = {"epoch": epoch, "model_class": type(model).__name__,
            "model": _encode(dict(model.state_dict()), "model", arrays)}
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        meta[key] = None if obj is None else {"class": type(obj).__name__,
                                              "state": _encode(obj.state_dict(), key, arrays)}
    meta["extra"] = _encode(extra, "extra", arrays)
    write_archive(os.fspath(path), arrays, meta, format=FORMAT, version=VERSION)


# --------------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------------
def read_checkpoint(path) -> Dict[str, Any]:
    """Read a checkpoint into plain data, without a model: for inspection, or to load by hand.

    Returns:
        ``{"epoch", "model", "model_class", "optimizer", "scheduler", "extra"}``; ``model`` is the state dict
        (name -> array); ``optimizer`` / ``scheduler`` are ``{"class": name, "state": state_dict}`` or None.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated, corrupt, or not a minibnn checkpoint (the message names it).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_checkpoint: no checkpoint file at {path}")
    archive = read_archive(path, format=FORMAT, version=VERSION, kind=_KIND, error=CheckpointError)
    meta = archive.metadata
    for key in _PARTS:
        if key not in meta:
            raise archive.fail(f"is corrupt: its metadata lacks the entry '{key}'")
    archive.value("epoch", (int, type(None)), "an int or None")
    archive.value("model_class", (str,), "a class name")
    archive.value("model", (dict,), "a dict of arrays")
    for key in ("optimizer", "scheduler"):
        part = archive.value(key, (dict, type(None)), "a dict {'class': name, 'state': dict} or None")
        if part is not None:
            if set(part) != {"class", "state"}:
                raise archive.fail(f"its metadata's '{key}' must have exactly the entries 'class' and 'state', "
                                   f"got {sorted(part)[:5]}")
            archive.value("class", (str,), "a class name", within=part)
            archive.value("state", (dict,), "a dict", within=part)
    used: set = set()
    out = {key: _decode(meta[key], archive, key, used) for key in ("epoch", "model_class", "model", "extra")}
    for key in ("optimizer", "scheduler"):   # saved as {"class", "state"}, the state's arrays named "<key>/..."
        part = meta[key]
        out[key] = None if part is None else {"class": part["class"],
                                              "state": _decode(part["state"], archive, key, used)}
    for name, value in out["model"].items():
        archive.check(value, (np.ndarray,), f"its model entry '{name}'", "an array")
    unused = sorted(set(archive.arrays) - used)
    if unused:
        raise archive.fail(f"it holds arrays its metadata does not use: {unused[:5]}")
    return out


_PARTS = ("epoch", "model_class", "model", "optimizer", "scheduler", "extra")


def _check_model_state(where: str, model: Module, saved: Dict[str, Any]) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    if missing or unexpected:
        raise CheckpointError(f"{where} does not fit the model: missing entries {missing}, unexpected entries "
                              f"{unexpected}")
    for name, mine in own.items():
        value = saved[name]
        if not isinstance(value, np.ndarray) or value.shape != mine.shape or value.dtype != mine.dtype:
            got = (value.shape, value.dtype) if isinstance(value, np.ndarray) else type(value).__name__
            raise CheckpointError(f"{where}: '{name}' is {got}, the model expects shape {mine.shape} and dtype "
                                  f"{mine.dtype}")


def load_checkpoint(path, model: Module, optimizer=None, scheduler=None) -> Dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``, ``scheduler``).

    Everything is checked before anything is changed: entry names, shapes and dtypes against the model,
    the optimizer's and scheduler's classes against the saved ones. If loading still fails midway, the
    objects are put back as they were. Values load back bit-exact.

    Args:
        path: the checkpoint file.
        model: a module with the same parameter and buffer names, shapes and dtypes as the saved one.
        optimizer, scheduler: to restore as well, or None (the file may hold more than is asked for; asking
            for a part the file lacks is an error).

    Returns:
        ``{"epoch": the saved epoch or None, "extra": the saved extra (arrays as arrays, tuples as lists)}``.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated or corrupt, or does not fit the objects; the message names the
            file and the entry.
    """
    _checks.one_of_types("load_checkpoint", "model", model, (Module,), "a minibnn Module")
    where = f"checkpoint {os.fspath(path)}"
    data = read_checkpoint(path)
    _check_model_state(where, model, data["model"])
    parts = [(model, "model", data["model"])]
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is None:
            continue
        saved = data[key]
        if saved is None:
            raise CheckpointError(f"{where} holds no {key} state, but a {type(obj).__name__} was given to load")
        if saved.get("class") != type(obj).__name__:
            raise CheckpointError(f"{where} holds the state of a {saved.get('class')} {key}, but a "
                                  f"{type(obj).__name__} was given to load")
        parts.append((obj, key, saved["state"]))
    backups = [(obj, obj.state_dict()) for obj, _, _ in parts]
    try:
        for obj, key, state in parts:
            obj.load_state_dict(state)
    except Exception as err:
        for obj, backup in backups:
            obj.load_state_dict(backup)
        raise CheckpointError(f"{where}: could not load the {key} state: {err}") from err
    return {"epoch": data["epoch"], "extra": data["extra"]}
