"""Archives: the one place minibnn writes and reads its ``.npz`` files (checkpoints, packed models, data sets).

An archive is an ordinary NumPy ``.npz`` (a zip of ``.npy`` members, readable with ``np.load``) with one extra
member, ``__metadata__``: a uint8 array holding UTF-8 JSON::

    {"format": "minibnn-checkpoint", "version": 1, ...the caller's metadata...,
     "members": {"model/0.weight": {"dtype": "<f4", "shape": [6, 4], "sha256": "9f86d0..."}, ...}}

Reading trusts nothing in the file. :func:`read_archive` raises the caller's error type (e.g.
``CheckpointError``), naming the file and what is wrong, for every way a file can be truncated, corrupted or
crafted:

* the zip is opened with the standard library and every member is checked before it is read: a known name,
  no duplicates, stored or deflated only, sizes that fit in the file (a deflated member at most 1032 times its
  compressed size, deflate's limit), at most ``max_bytes`` in all;
* ``.npy`` headers are parsed by a strict pattern, never by ``eval`` or ``ast``: plain numeric dtypes only
  (no objects, so no pickle ever), and ``header + prod(shape) * itemsize`` must equal the member's size, so a
  header claiming shape ``(2**40,)`` is refused before anything is allocated;
* the JSON is at most ``max_metadata_bytes``, UTF-8, nested at most ``max_depth`` deep (a file nested deeper
  than Python's stack is refused like any other), without duplicate keys; ``members`` lists exactly the
  arrays in the zip;
* each array's dtype and shape match its entry and the SHA-256 of its bytes matches the recorded one, so an
  altered array, an array swapped in from another file, or two same-shape arrays swapped inside one file are
  refused (the name is bound to the hash).

The caller then checks its own schema with :meth:`Archive.array` (an array by name, dtype and shape),
:meth:`Archive.value` (a metadata entry of given types) and :meth:`Archive.fail` (any other complaint): all raise
the same error type with the same file name.

Writing (:func:`write_archive`) goes through :func:`minibnn.atomic.atomic_write`: the previous file stays whole
if anything fails midway.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "demo.npz")
    >>> write_archive(path, {"w": np.arange(6, dtype=np.int32).reshape(2, 3)}, {"note": "hi"},
    ...               format="demo", version=1)
    >>> archive = read_archive(path, format="demo", version=1, kind="demo file", error=ValueError)
    >>> archive.metadata
    {'note': 'hi'}
    >>> archive.array("w", dtype=np.int32, shape=(2, 3))
    array([[0, 1, 2],
           [3, 4, 5]], dtype=int32)
    >>> archive.array("w", dtype=np.float32)
    Traceback (most recent call last):
    ...
    ValueError: .../demo.npz: the array 'w' has dtype int32, expected float32
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
import zipfile
import zlib
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Type

import numpy as np

from . import _checks
from .atomic import atomic_write

__all__ = ["write_archive", "read_archive", "Archive", "METADATA", "RESERVED_KEYS", "MAX_BYTES",
           "MAX_METADATA_BYTES", "MAX_DEPTH", "MAX_MEMBERS", "array_sha256"]

METADATA = "__metadata__"                      #: the member holding the JSON
RESERVED_KEYS = ("format", "version", "members")  #: metadata keys the archive itself writes
MAX_BYTES = 2 ** 36                            #: default bound on the arrays' bytes in one archive (64 GiB)
MAX_METADATA_BYTES = 2 ** 26                   #: default bound on the JSON (64 MiB)
MAX_DEPTH = 64                                 #: default bound on the JSON's nesting
MAX_MEMBERS = 100_000                          #: default bound on the number of arrays
_MAX_HEADER = 65_536                           # an .npy header longer than this is not one we wrote
_MAX_NDIM = 32
_DEFLATE_RATIO = 1032                          # deflate cannot expand more than this (RFC 1951 limit)
_CHUNK = 1 << 22
_DTYPE = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|c(8|16))\Z")
_HEADER = re.compile(r"\{'descr': '([^']{1,8})', 'fortran_order': (True|False), 'shape': \(([0-9, ]{0,400})\), \}"
                     r"[ \n]*\Z")
_SHAPE = re.compile(r"(\d{1,20},|\d{1,20}(, \d{1,20})+)?\Z")   # (), (5,), (6, 4)
# The many exception types the zip layer of the standard library raises on a crafted file; all mean "corrupt".
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, struct.error,
               zlib.error, EOFError, OSError, ValueError, OverflowError, KeyError, IndexError)


def array_sha256(array: np.ndarray) -> str:
    """The hex SHA-256 of an array's bytes in C order (dtype and shape are recorded beside it)."""
    return hashlib.sha256(_c_order(array).reshape(-1).view(np.uint8)).hexdigest()


def _c_order(array: np.ndarray) -> np.ndarray:
    """``array`` in C order, shape kept (``np.ascontiguousarray`` turns a 0-d array into 1-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


# --------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------
def write_archive(path, arrays: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, Any]] = None, *,
                  format: str, version: int) -> None:
    """Write ``arrays`` and ``metadata`` to ``path`` as an ``.npz`` archive, atomically, never pickled.

    Args:
        path: the file (str or os.PathLike); written via :func:`minibnn.atomic.atomic_write`.
        arrays: member name -> array of a plain numeric dtype (bool, int, uint, float, complex); names are
            non-empty strings without NUL (``/`` is fine: ``"model/0.weight"``).
        metadata: a JSON-able dict (strings as keys); must not use the keys in :data:`RESERVED_KEYS`.
        format, version: the file's format name and version number, checked by :func:`read_archive`.

    Raises:
        TypeError, ValueError: an argument or array cannot be stored (before anything is written).
        OSError: the file could not be written (a previous file at ``path`` is left as it was).
    """
    who = "write_archive"
    _checks.one_of_types(who, "format", format, (str,), "a string")
    version = _checks.integer(who, "version", version, None, None)
    metadata = {} if metadata is None else dict(_checks.one_of_types(who, "metadata", metadata, (Mapping,),
                                                                     "a dict"))
    taken = [key for key in RESERVED_KEYS if key in metadata]
    if taken:
        raise ValueError(f"{who}: metadata must not use the reserved keys {taken}")
    _checks.one_of_types(who, "arrays", arrays, (Mapping,), "a dict of name -> array")
    members, table = {}, {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name or "\0" in name or name == METADATA:
            raise ValueError(f"{who}: array names must be non-empty strings other than {METADATA!r}, got {name!r}")
        value = _c_order(_checks.one_of_types(who, f"arrays[{name!r}]", value, (np.ndarray,),
                                                          "a NumPy array"))
        if not _DTYPE.match(value.dtype.str):
            raise TypeError(f"{who}: the array {name!r} has dtype {value.dtype}, which cannot be stored without "
                            f"pickle; use a bool, integer, float or complex dtype")
        members[name] = value
        table[name] = {"dtype": value.dtype.str, "shape": list(value.shape), "sha256": array_sha256(value)}
    meta = {"format": format, "version": version, **metadata, "members": table}
    if _depth(meta) > MAX_DEPTH:
        raise ValueError(f"{who}: metadata is nested {_depth(meta)} deep; read_archive allows {MAX_DEPTH}")
    text = json.dumps(meta, allow_nan=True).encode("utf-8")
    members[METADATA] = np.frombuffer(text, dtype=np.uint8)
    with atomic_write(path) as f:
        with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, value in members.items():
                with zf.open(name + ".npy", "w", force_zip64=value.nbytes >= 2 ** 31) as member:
                    np.lib.format.write_array(member, value, allow_pickle=False)


# --------------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------------
class Archive:
    """An archive read and verified by :func:`read_archive`.

    Attributes:
        path: the file name; every error names it.
        metadata: the caller's metadata (the JSON without ``format``, ``version`` and ``members``).
        arrays: member name -> array (each verified against its recorded dtype, shape and SHA-256).
        error: the error type every complaint raises.
    """

    def __init__(self, path: str, metadata: Dict[str, Any], arrays: Dict[str, np.ndarray],
                 error: Type[Exception]):
        self.path, self.metadata, self.arrays, self.error = path, metadata, arrays, error

    def fail(self, what: str) -> Exception:
        """The error ``"<path>: <what>"`` of the caller's type (to ``raise archive.fail(...)``)."""
        return self.error(f"{self.path}: {what}")

    def array(self, name: str, dtype=None, shape: Optional[Sequence[Optional[int]]] = None,
              ndim: Optional[int] = None) -> np.ndarray:
        """The array ``name``, checked: present, of ``dtype`` (if given, compared as a NumPy dtype), of
        ``shape`` (if given; ``None`` in it matches any extent) and with ``ndim`` dimensions (if given)."""
        if name not in self.arrays:
            raise self.fail(f"it has no array {name!r}")
        value = self.arrays[name]
        if dtype is not None and value.dtype != np.dtype(dtype):
            raise self.fail(f"the array {name!r} has dtype {value.dtype}, expected {np.dtype(dtype)}")
        if ndim is not None and value.ndim != ndim:
            raise self.fail(f"the array {name!r} has shape {value.shape}, expected {ndim} dimensions")
        if shape is not None and (len(shape) != value.ndim or
                                  any(want is not None and want != got for want, got in zip(shape, value.shape))):
            raise self.fail(f"the array {name!r} has shape {value.shape}, expected {tuple(shape)}")
        return value

    def value(self, key: str, types: Tuple[type, ...], expected: str, within: Optional[Mapping] = None) -> Any:
        """``metadata[key]`` (or ``within[key]``) if present and of one of ``types`` (a bool is not an int
        unless ``bool`` is listed); ``expected`` says what in words for the error."""
        source = self.metadata if within is None else within
        if not isinstance(source, Mapping) or key not in source:
            raise self.fail(f"its metadata lacks the entry {key!r}")
        return self.check(source[key], types, f"its metadata's {key!r}", expected)

    def check(self, value: Any, types: Tuple[type, ...], what: str, expected: str) -> Any:
        """``value`` if it is of one of ``types`` (bools only if ``bool`` is listed), else the error."""
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise self.fail(f"{what} must be {expected}, got {_short(value)}")
        return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def read_archive(path, *, format: str, version: int, kind: str, error: Type[Exception] = ValueError,
                 max_bytes: int = MAX_BYTES, max_metadata_bytes: int = MAX_METADATA_BYTES,
                 max_depth: int = MAX_DEPTH, max_members: int = MAX_MEMBERS) -> Archive:
    """Read and verify an archive written by :func:`write_archive`; see the module docstring for the checks.

    Args:
        path: the file.
        format, version: what the file must say it is.
        kind: the file's kind in words, for messages (e.g. ``"minibnn checkpoint"``).
        error: the exception type raised for every problem with the file (e.g. ``CheckpointError``).
        max_bytes, max_metadata_bytes, max_depth, max_members: bounds on what the file may hold.

    Returns:
        an :class:`Archive`.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        error: the file is truncated, corrupt, crafted or not of this format; the message names the file.
    """
    who = "read_archive"
    path = os.fspath(path)
    _checks.one_of_types(who, "format", format, (str,), "a string")
    version = _checks.integer(who, "version", version, None, None)
    limits = {name: _checks.positive_int(who, name, value, None) for name, value in
              (("max_bytes", max_bytes), ("max_metadata_bytes", max_metadata_bytes), ("max_depth", max_depth),
               ("max_members", max_members))}
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{who}: no {kind} at {path}")
    reader = _Reader(path, kind, error, **limits)
    meta, arrays = reader.read()
    if not isinstance(meta, dict) or meta.get("format") != format:
        raise error(f"{path} is not a {kind} (its metadata has no format {format!r})")
    if meta.get("version") != version or isinstance(meta.get("version"), bool):
        raise error(f"{path} has format version {_short(meta.get('version'))}; this minibnn reads version "
                    f"{version}")
    reader.verify(meta.get("members"), arrays)
    return Archive(path, {k: v for k, v in meta.items() if k not in RESERVED_KEYS}, arrays, error)


class _Reader:
    """The checks of :func:`read_archive`, one method per layer (zip, .npy header, JSON, members)."""

    def __init__(self, path, kind, error, max_bytes, max_metadata_bytes, max_depth, max_members):
        self.path, self.kind, self.error = path, kind, error
        self.max_bytes, self.max_metadata_bytes = max_bytes, max_metadata_bytes
        self.max_depth, self.max_members = max_depth, max_members
        self.size = os.path.getsize(path)

    def fail(self, what: str) -> Exception:
        return self.error(f"{self.path}: {what}")

    def corrupt(self, err: BaseException) -> Exception:
        return self.error(f"{self.path} is truncated or corrupt ({self.size} bytes): {type(err).__name__}: "
                          f"{_short(str(err))}")

    # ---- zip -------------------------------------------------------------------------------------------------
    def read(self) -> Tuple[Any, Dict[str, np.ndarray]]:
        try:
            with open(self.path, "rb") as f:
                magic = f.read(6)
        except OSError as err:
            raise self.error(f"{self.path} could not be read: {err}") from err
        if magic == b"\x93NUMPY":
            raise self.error(f"{self.path} is not a {self.kind}: it holds a single array, not an .npz archive")
        try:
            with zipfile.ZipFile(self.path) as zf:
                infos = self.members(zf)
                arrays = {name: self.member(zf, info) for name, info in infos.items()}
        except self.error:
            raise
        except _ZIP_ERRORS as err:
            raise self.corrupt(err) from err
        if METADATA not in arrays:
            names = sorted(arrays)
            raise self.error(f"{self.path} is not a {self.kind}: it has no {METADATA!r} entry (entries: "
                             f"{names[:5]}{' ...' if len(names) > 5 else ''})")
        return self.metadata(arrays.pop(METADATA)), arrays

    def members(self, zf: zipfile.ZipFile) -> Dict[str, zipfile.ZipInfo]:
        infos = zf.infolist()
        if len(infos) > self.max_members + 1:
            raise self.fail(f"it has {len(infos)} members, more than the {self.max_members} allowed")
        out, total = {}, 0
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise self.fail(f"its member {info.filename!r} is not an .npy array")
            name = info.filename[:-4]
            if name in out:
                raise self.fail(f"it has two members named {info.filename!r}")
            if info.flag_bits & 0x1:
                raise self.fail(f"its member {info.filename!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self.fail(f"its member {info.filename!r} uses compression method {info.compress_type}; "
                                f"only stored and deflated members are read")
            stored = info.compress_type == zipfile.ZIP_STORED
            limit = info.compress_size if stored else _DEFLATE_RATIO * info.compress_size + 1024
            if info.compress_size > self.size or info.file_size > limit:
                raise self.fail(f"its member {info.filename!r} claims {info.file_size} bytes from "
                                f"{info.compress_size} compressed bytes in a file of {self.size} bytes")
            total += info.file_size
            if total > self.max_bytes:
                raise self.fail(f"its members hold more than the {self.max_bytes} bytes allowed")
            out[name] = info
        return out

    # ---- one .npy member --------------------------------------------------------------------------------------
    def member(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
        with zf.open(info) as f:
            dtype, shape, fortran, offset = self.header(info.filename, f)
            nbytes = dtype.itemsize * math.prod(shape)
            if offset + nbytes != info.file_size:
                raise self.fail(f"its member {info.filename!r} claims shape {shape} of {dtype} ({nbytes} bytes) "
                                f"but holds {info.file_size - offset} bytes of data")
            data = bytearray(nbytes)
            view, done = memoryview(data), 0
            while done < nbytes:
                chunk = f.read(min(_CHUNK, nbytes - done))
                if not chunk:
                    raise self.fail(f"its member {info.filename!r} ends after {done} of {nbytes} bytes")
                view[done:done + len(chunk)] = chunk
                done += len(chunk)
            if f.read(1):   # also makes zipfile check the member's CRC-32
                raise self.fail(f"its member {info.filename!r} is longer than its header says")
        array = np.frombuffer(data, dtype=dtype) if nbytes else np.zeros(0, dtype)
        return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)

    def header(self, member: str, f) -> Tuple[np.dtype, Tuple[int, ...], bool, int]:
        magic = f.read(8)
        if len(magic) != 8 or magic[:6] != b"\x93NUMPY" or magic[6:] not in (b"\x01\x00", b"\x02\x00",
                                                                              b"\x03\x00"):
            raise self.fail(f"its member {member!r} is not an .npy array (bad magic {bytes(magic[:8])!r})")
        size_bytes = 2 if magic[6] == 1 else 4
        raw = f.read(size_bytes)
        if len(raw) != size_bytes:
            raise self.fail(f"its member {member!r} ends inside its header")
        length = int.from_bytes(raw, "little")
        if length > _MAX_HEADER:
            raise self.fail(f"its member {member!r} claims a header of {length} bytes")
        text = f.read(length)
        try:
            text = text.decode("utf-8" if magic[6] == 3 else "latin1")
        except UnicodeDecodeError:
            raise self.fail(f"its member {member!r} has a header that is not text") from None
        match = _HEADER.match(text) if len(text) == length else None
        if match is None:
            raise self.fail(f"its member {member!r} has a malformed header {_short(text)}")
        descr, fortran, dims = match.groups()
        if not _DTYPE.match(descr):
            raise self.fail(f"its member {member!r} has dtype {descr!r}; only bool, integer, float and complex "
                            f"arrays are read (never objects or pickles)")
        parts = re.findall(r"\d{1,20}", dims)
        if not _SHAPE.match(dims) or len(parts) > _MAX_NDIM:
            raise self.fail(f"its member {member!r} has a malformed shape ({dims})")
        return np.dtype(descr), tuple(int(p) for p in parts), fortran == "True", 8 + size_bytes + length

    # ---- the JSON --------------------------------------------------------------------------------------------
    def metadata(self, raw: np.ndarray) -> Any:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise self.fail(f"its {METADATA!r} entry is a {raw.dtype} array of shape {raw.shape}, not UTF-8 bytes")
        if raw.size > self.max_metadata_bytes:
            raise self.fail(f"its metadata has {raw.size} bytes, more than the {self.max_metadata_bytes} allowed")
        try:
            meta = json.loads(raw.tobytes().decode("utf-8"), object_pairs_hook=_unique_keys)
        except UnicodeDecodeError as err:
            raise self.fail(f"its metadata is not UTF-8 ({err.reason} at byte {err.start})") from None
        except (ValueError, RecursionError) as err:   # RecursionError: nested deeper than Python's stack
            raise self.fail(f"its metadata is not valid JSON: {_short(str(err))}") from None
        depth = _depth(meta)
        if depth > self.max_depth:
            raise self.fail(f"its metadata is nested {depth} deep, more than the {self.max_depth} allowed")
        return meta

    # ---- members against the metadata's table ----------------------------------------------------------------
    def verify(self, table: Any, arrays: Dict[str, np.ndarray]) -> None:
        if not isinstance(table, dict):
            raise self.fail("its metadata has no 'members' table (name -> dtype, shape, sha256)")
        if set(table) != set(arrays):
            missing, unknown = sorted(set(table) - set(arrays)), sorted(set(arrays) - set(table))
            raise self.fail(f"its members do not match its metadata: missing {missing[:5]}, unlisted "
                            f"{unknown[:5]}")
        for name, entry in table.items():
            if not (isinstance(entry, dict) and set(entry) == {"dtype", "shape", "sha256"}):
                raise self.fail(f"its metadata's entry for member {name!r} is malformed: {_short(entry)}")
            array = arrays[name]
            if entry["dtype"] != array.dtype.str or entry["shape"] != list(array.shape):
                raise self.fail(f"its member {name!r} is {array.dtype.str} {list(array.shape)}, but the metadata "
                                f"records {_short(entry['dtype'])} {_short(entry['shape'])}")
            if entry["sha256"] != array_sha256(array):
                raise self.fail(f"its member {name!r} does not match its recorded SHA-256: the array was "
                                f"altered or swapped")


def _unique_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (0 for a scalar), walked with a stack, never recursively."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest
