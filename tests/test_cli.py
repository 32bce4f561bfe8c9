"""The command line: ``minibnn demo`` in-process and as ``python -m minibnn``, and the subcommand registry."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from minibnn import cli
from minibnn.registry import Registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACCURACY = re.compile(r"^test accuracy: (\d+\.\d+)% \((\d+)/359\), test loss \d+\.\d+; packed model "
                      r"(\d+\.\d) KiB vs (\d+\.\d) KiB in float32", re.MULTILINE)


def test_demo_in_process_prints_epochs_and_test_accuracy(capsys):
    assert cli.main(["demo", "--epochs", "2", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert re.search(r"^epoch 1/2  train loss \d\.\d{4} acc", out, re.MULTILINE)
    assert re.search(r"^epoch 2/2 ", out, re.MULTILINE)
    match = ACCURACY.search(out)
    assert match and float(match.group(1)) > 80.0  # 2 epochs; chance is 10%
    assert "batch/s" not in err  # --no-progress: no bar


def test_demo_with_default_epochs_reaches_90_percent(capsys):
    assert cli.main(["demo", "--no-progress"]) == 0
    match = ACCURACY.search(capsys.readouterr().out)
    assert match and float(match.group(1)) >= 90.0
    assert float(match.group(3)) < float(match.group(4)) / 4  # the binary hidden layers pack 32 weights a word


def test_demo_is_repeatable_for_a_seed(capsys):
    outputs = []
    for _ in range(2):
        cli.main(["demo", "--epochs", "1", "--seed", "7", "--no-progress"])
        outputs.append(ACCURACY.search(capsys.readouterr().out).group(0))
    assert outputs[0] == outputs[1]


def test_python_dash_m_minibnn_demo():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "minibnn", "demo", "--epochs", "1"], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert ACCURACY.search(done.stdout), done.stdout
    assert "epoch 1/1" in done.stdout


def test_no_command_prints_help_and_bad_options_exit_2(capsys):
    assert cli.main([]) == 2
    assert "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--epochs", "many"])
    assert exit_info.value.code == 2
    capsys.readouterr()
    for bad in (["--epochs", "0"], ["--batch-size", "-1"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["demo", *bad])
        assert exit_info.value.code == 2
        assert f"argument {bad[0]}: must be an integer >= 1, got '{bad[1]}'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0 and "minibnn" in capsys.readouterr().out


def test_a_registered_command_is_a_subcommand(capsys, monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", Registry("command"))

    @cli.COMMANDS.register("hello")
    class Hello:
        help = "say hello"

        @staticmethod
        def add_arguments(parser):
            parser.add_argument("name")

        @staticmethod
        def run(args):
            print(f"hello {args.name}")
            return 3

    assert cli.main(["hello", "world"]) == 3
    assert capsys.readouterr().out == "hello world\n"
    cli.COMMANDS.register("two words")(Hello)
    with pytest.raises(ValueError, match="letters, digits and dashes"):
        cli.main(["hello", "world"])


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert all(name in out for name in cli.COMMANDS.names()) and {"demo", "experiment"} <= set(cli.COMMANDS.names())


def test_cli_and_experiments_import_without_a_cycle():
    code = ("import minibnn.experiments.command, sys; "
            "assert 'minibnn.cli' not in sys.modules, 'experiments imports the cli'; "
            "import minibnn.cli; print(minibnn.cli.COMMANDS.names())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert done.returncode == 0, done.stderr
    assert "'demo', 'experiment'" in done.stdout


def test_demo_model_is_a_binary_mlp_with_float_first_and_last_layers():
    model = cli.build_demo_model()
    assert [type(m).__name__ for m in model] == ["Flatten", "Linear", "BatchNorm1d", "QuantLinear", "BatchNorm1d",
                                                 "QuantLinear", "BatchNorm1d", "Hardtanh", "Linear"]
    assert model[1].in_features == 64 and model[-1].out_features == 10
    assert all(m.is_binary for m in model if type(m).__name__ == "QuantLinear")


def test_demo_prints_the_same_accuracy_with_and_without_the_progress_bar(capsys):
    outputs = []
    for flags in ([], ["--no-progress"]):
        assert cli.main(["demo", "--epochs", "2", "--seed", "5"] + flags) == 0
        outputs.append(ACCURACY.search(capsys.readouterr().out).group(0))
    assert outputs[0] == outputs[1]
