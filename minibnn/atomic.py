"""Atomic file writing: a file minibnn writes is either the old one or the complete new one, never half.

Checkpoints, packed models, downloads, experiment results, plots and assignment handouts are all written the
same way: into a temporary file ``.<name>.<pid>-<random>.tmp`` in the destination's folder, flushed and
``fsync``-ed, then renamed over the destination with ``os.replace``, which is atomic on POSIX and Windows. If
anything fails before the rename, the temporary file is removed and the previous file is left as it was.

Three details make repeated saves behave like plain ``open(path, "w")``:

* **Nothing is left behind.** A process killed midway (SIGKILL, power loss) cannot remove its temporary file;
  the next save of the same destination removes the temporary files of that destination whose writing process
  is gone (the process id is in the name, so a save running concurrently in another live process is spared;
  "gone" is judged on this machine, so on a folder shared between machines or PID namespaces a concurrent save
  of the *same* file elsewhere may lose its temporary file and fail loudly, never leaving a half file).
* **Permissions are kept.** Re-saving over an existing file keeps its mode (a ``chmod 600`` checkpoint stays
  600); a new file gets the usual ``0o666 & ~umask``.
* **Symlinks are followed.** Saving to a symbolic link replaces the file it points to; the link stays a link.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_write(path, "w") as f:
    ...     _ = f.write("hello")
    >>> open(path).read()
    'hello'
    >>> sorted(os.listdir(os.path.dirname(path)))   # no temporary file left
    ['notes.txt']
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import threading
from typing import IO, Iterator, Optional

__all__ = ["atomic_write", "stale_temporaries"]

_MAX_PREFIX = 180          # keeps ".<name>.<pid>-<random>.tmp" under the usual 255-byte name limit
_LIVE = set()              # this process's temporary files being written right now
_LIVE_LOCK = threading.Lock()


def _prefix(name: str) -> str:
    return f".{name[:_MAX_PREFIX]}."


def _alive(pid: int) -> bool:
    """Is process ``pid`` running (on this machine)? Unknown counts as alive, so its file is spared."""
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def stale_temporaries(path) -> list:
    """The temporary files a killed save of ``path`` left behind (in ``path``'s folder, of a process that is
    gone, or of this process but no longer being written)."""
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(re.escape(_prefix(name)) + r"(\d+)-[0-9a-f]{16}\.tmp\Z")
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    stale = []
    for entry in entries:
        match = pattern.match(entry)
        if match is None:
            continue
        full = os.path.join(directory, entry)
        pid = int(match.group(1))
        with _LIVE_LOCK:
            live = full in _LIVE
        if not live and (pid == os.getpid() or not _alive(pid)):
            stale.append(full)
    return stale


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


def _create_temporary(directory: str, name: str) -> tuple:
    """Create ``.<name>.<pid>-<random>.tmp`` exclusively with mode 0o666 (the umask applies, as for open())."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = os.path.join(directory, f"{_prefix(name)}{os.getpid()}-{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:   # pragma: no cover -- 64 random bits
            continue
        with _LIVE_LOCK:
            _LIVE.add(tmp)
        return fd, tmp


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: Optional[str] = None) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it replaces ``path``, on an error it vanishes.

    Args:
        path: the destination; its folder is created if needed. If it is a symbolic link, the file it points
            to is replaced (the link stays). Its permission bits are kept if it exists.
        mode: "wb" (binary, default) or "w" (text, UTF-8 unless ``encoding`` says otherwise, no newline
            translation).
        encoding: the text encoding for mode "w".

    Stale temporary files of ``path`` left by killed saves (see :func:`stale_temporaries`) are removed first.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    if encoding is not None and mode != "w":
        raise ValueError(f"atomic_write: encoding is only for mode 'w', got encoding={encoding!r} with {mode!r}")
    target = os.path.realpath(os.fspath(path))     # through symlinks: the link stays, its target is replaced
    directory, name = os.path.split(target)
    os.makedirs(directory, exist_ok=True)
    for stale in stale_temporaries(target):
        with contextlib.suppress(OSError):
            os.unlink(stale)
    try:
        keep_mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        keep_mode = None
    fd, tmp = _create_temporary(directory, name)
    try:
        text = {"encoding": encoding or "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as f:
            if keep_mode is not None:
                os.chmod(tmp, keep_mode)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(tmp)
    _fsync_directory(directory)
