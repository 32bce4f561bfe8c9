"""Atomic file writing: a file minibnn writes is either the old one or the complete new one, never half.

Checkpoints, packed models, downloads, experiment results, plots and assignment handouts are all written the
same way: into a temporary file in the destination's folder, flushed and ``fsync``-ed, given the usual
permissions (``mkstemp`` makes it private), then renamed over the destination with ``os.replace``, which is
atomic on POSIX and Windows. If anything fails before the rename, the temporary file is removed and the
previous file is left as it was.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_write(path, "w") as f:
    ...     _ = f.write("hello")
    >>> open(path).read()
    'hello'
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); skipped where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str = None) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it replaces ``path``, on an error it vanishes.

    Args:
        path: the destination; its folder is created if needed.
        mode: "wb" (binary, default) or "w" (text, UTF-8 unless ``encoding`` says otherwise, no newline
            translation).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        text = {"encoding": encoding or "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
