"""atomic_write: the new file appears whole or not at all, with the usual permissions."""
import doctest
import os
import stat

import pytest

from minibnn import atomic
from minibnn.atomic import atomic_write


def test_writes_text_and_bytes_with_the_usual_permissions(tmp_path):
    with atomic_write(tmp_path / "a.txt", "w") as f:
        f.write("héllo\n")
    with atomic_write(tmp_path / "sub" / "b.bin") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o666 & ~umask  # not mkstemp's private 0600


def test_an_error_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(path, "w") as f:
            f.write("new, half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_bad_mode_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w', got 'a'"):
        with atomic_write(tmp_path / "x", "a"):
            pass


def test_docstring_example_runs():
    assert doctest.testmod(atomic).failed == 0
