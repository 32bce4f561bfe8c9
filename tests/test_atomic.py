"""atomic_write: the new file appears whole or not at all, with the usual permissions."""
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from minibnn import atomic
from minibnn.atomic import atomic_write, stale_temporaries


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


def test_encoding_is_only_for_text_mode(tmp_path):
    with pytest.raises(ValueError, match="encoding is only for mode 'w'"):
        with atomic_write(tmp_path / "x", "wb", encoding="latin-1"):
            pass


# --------------------------------------------------------------------------------------------------------------
# Issue 10, defect 10: leftovers of killed saves, lost permissions, symlinks replaced by files
# --------------------------------------------------------------------------------------------------------------
def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_dead_processes_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "run.npz"
    path.write_bytes(b"old")
    dead, alive = _dead_pid(), os.getppid()
    stale = [tmp_path / f".run.npz.{dead}-{i:016x}.tmp" for i in range(3)]
    spared = [tmp_path / f".run.npz.{alive}-{0:016x}.tmp",      # a live process may be saving right now
              tmp_path / f".other.npz.{dead}-{0:016x}.tmp",     # another destination's
              tmp_path / ".run.npz.notes.tmp", tmp_path / "run.npz.bak"]
    for p in stale + spared:
        p.write_bytes(b"half")
    assert sorted(stale_temporaries(path)) == sorted(map(str, stale))
    with atomic_write(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in spared + [path])


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444])
def test_re_saving_keeps_the_permissions_of_the_file(tmp_path, mode):
    path = tmp_path / "run.npz"
    with atomic_write(path) as f:
        f.write(b"one")
    os.chmod(path, mode)
    with atomic_write(path) as f:
        f.write(b"two")
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_saving_through_a_symlink_updates_its_target_and_the_link_stays(tmp_path):
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "epoch-3.npz"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    link = tmp_path / "latest.npz"
    os.symlink(os.path.join("runs", "epoch-3.npz"), link)          # relative, as people make them
    with atomic_write(link) as f:
        f.write(b"new")
    assert os.path.islink(link) and os.readlink(link) == os.path.join("runs", "epoch-3.npz")
    assert target.read_bytes() == b"new" and stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "runs"] and os.listdir(tmp_path / "runs") == ["epoch-3.npz"]

    dangling = tmp_path / "next.npz"
    os.symlink(tmp_path / "runs" / "epoch-4.npz", dangling)
    with atomic_write(dangling, "w") as f:
        f.write("four")
    assert os.path.islink(dangling) and (tmp_path / "runs" / "epoch-4.npz").read_text() == "four"


_SAVER = textwrap.dedent("""
    import importlib.util, sys, time
    spec = importlib.util.spec_from_file_location("atomic", sys.argv[3])   # atomic.py alone: a quick start
    atomic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(atomic)
    atomic_write = atomic.atomic_write
    path, version = sys.argv[1], int(sys.argv[2])
    with atomic_write(path) as f:          # a complete save of this version
        f.write(b"%d:" % version + bytes(1 << 16))
    with atomic_write(path) as f:          # the next one, killed midway
        f.write(b"%d:" % (version + 1) + bytes(1 << 15))
        f.flush()
        print("midway", flush=True)
        time.sleep(60)
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL")
def test_saves_killed_midway_leave_the_previous_file_and_no_orphan_after_the_next_save(tmp_path):
    path = tmp_path / "big.bin"
    for version in range(0, 40, 2):                    # 20 kills
        child = subprocess.Popen([sys.executable, "-S", "-c", _SAVER, str(path), str(version), atomic.__file__],
                                 stdout=subprocess.PIPE)
        assert child.stdout.readline() == b"midway\n"
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        blob = path.read_bytes()
        assert blob.startswith(b"%d:" % version) and len(blob) == len(b"%d:" % version) + (1 << 16)
        # the kill left its temporary file (so the test bites); the child's first save removed the earlier ones
        assert len([name for name in os.listdir(tmp_path) if name.endswith(".tmp")]) == 1
        assert len(stale_temporaries(path)) == 1
    with atomic_write(path) as f:
        f.write(b"final")
    assert os.listdir(tmp_path) == ["big.bin"] and path.read_bytes() == b"final"


_LOOPING_SAVER = _SAVER.split("path, version")[0] + textwrap.dedent("""
    path = sys.argv[1]
    print("started", flush=True)
    for version in range(10 ** 9):          # save after save until killed
        tag = b"%08d" % version
        with atomic_write(path) as f:
            f.write(tag)
            for _ in range(16):
                f.write(bytes(1 << 12))
            f.write(tag)
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL")
def test_saves_killed_at_random_moments_always_leave_a_whole_file(tmp_path):
    path = tmp_path / "loop.bin"
    delays = [0.001 * ((37 * i) % 60) for i in range(20)]        # 20 kills, spread over 0..60 ms
    for delay in delays:
        child = subprocess.Popen([sys.executable, "-S", "-c", _LOOPING_SAVER, str(path), "0", atomic.__file__],
                                 stdout=subprocess.PIPE)
        assert child.stdout.readline() == b"started\n"
        try:
            child.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            pass
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        if path.exists():
            blob = path.read_bytes()
            assert len(blob) == 16 + 16 * (1 << 12) and blob[:8] == blob[-8:]
        assert len([name for name in os.listdir(tmp_path) if name.endswith(".tmp")]) <= 1
    with atomic_write(path) as f:
        f.write(b"final")
    assert os.listdir(tmp_path) == ["loop.bin"]
