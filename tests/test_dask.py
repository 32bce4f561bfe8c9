"""The Dask executor (minibnn.experiments.executors): a real LocalCluster of 2 worker processes, and an existing
cluster reached with --scheduler, write the tables of the default process pool byte for byte; without Dask the
command says which pip command installs it. Tiny studies; each test takes a few seconds."""
from __future__ import annotations

import json
import sys

import pytest

from minibnn import cli
from minibnn.experiments import executors

TABLES = ("runs.csv", "summary.csv", "table.md")


def _tables(folder):
    return {name: (folder / name).read_bytes() for name in TABLES}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tables of init-variance, tiny, 2 seeds, from ``--executor processes`` (in this process: the pool gives
    the same numbers, see test_experiments.py)."""
    out = tmp_path_factory.mktemp("processes")
    assert cli.main(["experiment", "init-variance", "--tiny", "--seeds", "2", "--no-progress", "--executor",
                     "processes", "--workers", "1", "--out", str(out)]) == 0
    return _tables(out / "init-variance")


def test_a_local_dask_cluster_writes_the_tables_of_the_process_executor(reference, tmp_path, capsys):
    pytest.importorskip("distributed")
    capsys.readouterr()
    assert cli.main(["experiment", "init-variance", "--tiny", "--seeds", "2", "--no-progress", "--executor", "dask",
                     "--workers", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "4 runs: 0 read from" in out and "4 run on a Dask LocalCluster of 2 worker processes in" in out
    folder = tmp_path / "init-variance"
    assert _tables(folder) == reference
    assert json.loads((folder / "results.json").read_text())["timing"]["executor"] == \
        "a Dask LocalCluster of 2 worker processes"


def test_scheduler_sends_the_runs_to_an_existing_cluster(reference, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    # an in-process cluster (worker threads) starts fast; a cluster on other machines is reached the same way
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, scheduler_port=0,
                                  dashboard_address=None) as cluster:
        capsys.readouterr()
        assert cli.main(["experiment", "init-variance", "--tiny", "--seeds", "2", "--no-progress", "--scheduler",
                         cluster.scheduler_address, "--out", str(tmp_path)]) == 0
        out = capsys.readouterr().out
    assert f"4 run on the Dask cluster at {cluster.scheduler_address} in" in out
    assert _tables(tmp_path / "init-variance") == reference


@pytest.mark.parametrize("flags", [["--executor", "dask"], ["--scheduler", "tcp://scheduler-host:8786"]])
def test_without_dask_the_command_says_how_to_install_it(flags, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    code = cli.main(["experiment", "init-variance", "--tiny", "--out", str(tmp_path), *flags])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("minibnn experiment: the Dask executor needs dask.distributed")
    assert err.rstrip().endswith('pip install "minibnn[cluster]"')
    assert not (tmp_path / "init-variance").exists()  # nothing ran


def test_executor_arguments_are_checked_before_any_run(tmp_path, capsys):
    for flags, message in [
            (["--executor", "processes", "--scheduler", "tcp://h:8786"], "it goes with --executor dask"),
            (["--scheduler", "tcp://h:8786", "--workers", "2"], "--workers sizes a local pool"),
            (["--scheduler", " "], "scheduler must be the address of a Dask scheduler")]:
        assert cli.main(["experiment", "init-variance", "--tiny", "--out", str(tmp_path), *flags]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    with pytest.raises(SystemExit):
        cli.main(["experiment", "init-variance", "--executor", "threads"])
    assert "argument --executor: invalid choice: 'threads'" in capsys.readouterr().err
    assert not (tmp_path / "init-variance").exists()
    with pytest.raises(ValueError, match="executor must be one of dask, processes"):
        executors.make_executor("ray")
