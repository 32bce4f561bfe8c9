"""The result store behind every sweep (minibnn.experiments.store): each run is stored as it finishes, a rerun
skips the stored runs, a sweep killed midway resumes with the same tables, and a failing run is reported once
while the others go on. Tiny studies; each test takes a few seconds."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import minibnn
import minibnn.experiments as ex
from minibnn import cli
from minibnn.experiments import store as S
from minibnn.experiments.init_variance import InitVariance

TABLES = ("runs.csv", "summary.csv", "table.md")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(minibnn.__file__)))


def _run(out, **kwargs):
    kwargs.setdefault("seeds", 2)
    kwargs.setdefault("workers", 1)
    return ex.run("init-variance", tiny=True, progress=False, out_dir=str(out), **kwargs)


def _tables(folder):
    return {name: (folder / name).read_bytes() for name in TABLES}


def _stored(folder):
    runs = folder / "runs"
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in runs.iterdir()} if runs.is_dir() else {}


# ---- the store ------------------------------------------------------------------------------------------------
def test_the_key_hashes_study_options_config_seed_and_version_but_not_where_the_data_is():
    base = dict(study="init-variance", options={"epochs": 1, "dataset": "digits", "data_root": None},
                config={"label": "mlp/glorot"}, seed=0)
    key = S.run_key(**base)
    assert key == S.run_key(**{**base, "options": {**base["options"], "data_root": "/elsewhere"}})
    assert key == S.run_key(**{**base, "options": {"dataset": "digits", "epochs": 1}})  # order does not matter
    for change in ({"study": "bn-ablation"}, {"options": {**base["options"], "epochs": 2}},
                   {"options": {**base["options"], "dataset": "mnist"}}, {"config": {"label": "mlp/0.01"}},
                   {"seed": 1}, {"version": "0.0.0"}):
        assert S.run_key(**{**base, **change}) != key, change


def test_stored_numbers_load_back_bit_exact_and_bad_files_are_rejected(tmp_path):
    store = S.RunStore(tmp_path)
    spec = S.RunSpec("coin", {"flips": 3}, {"label": "a/b"}, seed=2)
    numbers = {"x": 1 / 3, "nan": float("nan"), "inf": float("-inf"), "curve": [0.1, 2.0 ** -40], "none": None}
    record = store.save(spec, numbers, seconds=0.5)
    assert record == store.load(spec)
    loaded = record["numbers"]
    assert loaded["x"] == 1 / 3 and loaded["curve"] == [0.1, 2.0 ** -40] and loaded["none"] is None
    assert loaded["nan"] != loaded["nan"] and loaded["inf"] == float("-inf")
    path = tmp_path / spec.filename
    assert spec.filename.startswith("a_b.s2.") and os.listdir(tmp_path) == [spec.filename]
    good = path.read_text()

    def broken(text):
        path.write_text(text)
        with pytest.raises(S.InvalidRecord, match=str(path)):
            store.load(spec)

    broken(good[:-20])                                              # cut short
    broken("[1, 2]")                                                # not an object
    broken(good.replace(S.FORMAT, "pickle"))                        # another format
    broken(good.replace('"seed": 2', '"seed": 3'))                  # its key is not the hash of its config
    other = S.RunSpec("coin", {"flips": 4}, {"label": "a/b"}, seed=2)
    broken(S.encode(S.make_record(other, numbers, 0.5)))            # a valid record of another run
    document = json.loads(good)
    del document["seconds"]
    broken(json.dumps(document))                                    # a field missing
    path.unlink()
    assert store.load(spec) is None


# ---- resuming -------------------------------------------------------------------------------------------------
def test_a_rerun_skips_the_stored_runs_and_no_resume_redoes_them(tmp_path):
    first = _run(tmp_path)
    folder = tmp_path / "init-variance"
    files, tables = _stored(folder), _tables(folder)
    assert first.stored == 0 and len(files) == len(first.runs) == 4

    again = _run(tmp_path)
    assert again.stored == 4 and _stored(folder) == files  # nothing run, nothing rewritten
    assert _tables(folder) == tables and again.runs == first.runs
    assert again.run_seconds == first.run_seconds  # the timings of the runs when they ran

    more = _run(tmp_path, seeds=3)  # a third seed: the first two are reused, only the new runs run
    assert more.stored == 4 and len(_stored(folder)) == 6

    redone = _run(tmp_path, resume=False)
    assert redone.stored == 0 and _tables(folder) == tables
    assert all(_stored(folder)[name] != stamp for name, stamp in files.items())  # written again

    changed = _run(tmp_path, epochs=2)  # another option is another run
    assert changed.stored == 0


def test_an_invalid_stored_file_is_reported_and_its_run_done_again(tmp_path, capsys):
    _run(tmp_path)
    folder = tmp_path / "init-variance"
    tables = _tables(folder)
    victim = sorted((folder / "runs").iterdir())[0]
    victim.write_text("{not json")
    result = _run(tmp_path)
    assert result.stored == 3
    err = capsys.readouterr().err
    assert err.count("ignoring an invalid stored run") == 1 and victim.name in err
    assert _tables(folder) == tables and json.loads(victim.read_text())["format"] == S.FORMAT


def test_a_sweep_killed_midway_resumes_and_gives_the_same_tables(tmp_path):
    """SIGKILL the command once some runs are stored; the rerun runs only the rest and
    writes the tables of an uninterrupted sweep."""
    # 10 seeds (20 runs): enough that a loaded machine can't finish them all before the kill lands
    options = ["--tiny", "--seeds", "10", "--set", "epochs=6", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = tmp_path / "killed"
    folder = out / "init-variance"
    process = subprocess.Popen([sys.executable, "-m", "minibnn", "experiment", "init-variance", *options,
                                "--workers", "1", "--out", str(out)], env=env, cwd=str(tmp_path),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len([n for n in _stored(folder) if not n.startswith(".")]) < 2:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no run stored within 120 s"
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    survivors = {n: stamp for n, stamp in _stored(folder).items() if not n.startswith(".")}
    total = 20
    assert 2 <= len(survivors) < total and not (folder / "table.md").exists()

    assert cli.main(["experiment", "init-variance", *options, "--workers", "1", "--out", str(out)]) == 0
    after = _stored(folder)
    assert all(after[n] == stamp for n, stamp in survivors.items())  # the stored runs were skipped
    assert len(after) == total  # and no temporary file of the killed writes is left
    assert json.loads((folder / "results.json").read_text())["timing"]["stored_runs"] == len(survivors)

    clean = tmp_path / "clean"
    assert cli.main(["experiment", "init-variance", *options, "--workers", "1", "--out", str(clean)]) == 0
    assert _tables(folder) == _tables(clean / "init-variance")


# ---- failures -------------------------------------------------------------------------------------------------
def test_a_failing_run_is_reported_once_the_others_finish_and_the_exit_status_is_1(tmp_path, capsys,
                                                                                     monkeypatch):
    real_run_one = InitVariance.run_one

    def flaky(self, config, seed, opts):
        if config["label"] == "mlp/0.01" and seed == 1:
            raise FloatingPointError("the loss exploded\nsecond line of the message")
        return real_run_one(self, config, seed, opts)

    monkeypatch.setattr(InitVariance, "run_one", flaky)
    command = ["experiment", "init-variance", "--tiny", "--seeds", "2", "--workers", "1", "--out", str(tmp_path),
               "--no-progress"]
    assert cli.main(command) == 1
    out, err = capsys.readouterr()
    assert out == ""
    failure = ('run failed: init-variance {"arch": "mlp", "init": "0.01", "label": "mlp/0.01"} seed 1: '
               'FloatingPointError: the loss exploded\n')
    assert err.startswith(failure) and err.count("run failed:") == 1 and err.count("\n") == 2
    assert "second line" not in err
    assert "1 of 4 runs failed (each reported above); the 3 finished runs are stored in" in err
    folder = tmp_path / "init-variance"
    assert len(_stored(folder)) == 3 and not (folder / "table.md").exists()

    monkeypatch.setattr(InitVariance, "run_one", real_run_one)  # fixed: the rerun runs only the failed run
    assert cli.main(command) == 0
    assert "4 runs: 3 read from" in capsys.readouterr().out
    with pytest.raises(ex.sweep.SweepError) as info:
        monkeypatch.setattr(InitVariance, "run_one", flaky)
        _run(tmp_path / "other")
    assert len(info.value.failures) == 1


@pytest.mark.parametrize("numbers, message", [
    ({"x": object()}, "its numbers cannot be stored: Object of type object is not JSON serializable"),
    ({"label": "x"}, "run_one returned keys ['label'] that clash with the config"),
    ([1.0], "run_one returned list, not a dict"),
])
def test_numbers_that_cannot_be_stored_fail_their_run_only(numbers, message, tmp_path, capsys, monkeypatch):
    real_run_one = InitVariance.run_one

    def odd(self, config, seed, opts):
        return numbers if config["label"] == "mlp/glorot" else real_run_one(self, config, seed, opts)

    monkeypatch.setattr(InitVariance, "run_one", odd)
    with pytest.raises(ex.sweep.SweepError, match="2 of 4 runs failed") as info:
        _run(tmp_path)
    assert [error for _, error in info.value.failures] == [message, message]
    assert capsys.readouterr().err.count(message) == 2  # once per failing run
    assert len(_stored(tmp_path / "init-variance")) == 2
