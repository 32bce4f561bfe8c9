"""The papers' studies (minibnn.experiments): every study runs in its tiny size and writes its files, the same
seed gives bit-identical numbers in any process, the summaries are the statistics of the runs, and the
command line works. Each tiny run takes about a second."""
from __future__ import annotations

import csv
import json
import math
import os
import sys

import numpy as np
import pytest

import minibnn
import minibnn.experiments as ex
from minibnn import cli
from minibnn.experiments import command, recipe, report, sweep

try:
    import matplotlib  # noqa: F401
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False

STUDIES = ["random-bias", "init-variance", "bn-ablation", "threshold-shift", "ste-ablation"]
FILES = ("runs.csv", "summary.csv", "results.json", "table.md")


def _tiny(name, tmp_path=None, **kwargs):
    kwargs.setdefault("seeds", 2)
    kwargs.setdefault("workers", 1)
    return ex.run(name, tiny=True, progress=False, out_dir=None if tmp_path is None else tmp_path,
                  write=tmp_path is not None, **kwargs)


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_five_studies_are_registered_in_the_papers_order():
    assert ex.names() == STUDIES
    assert "experiment" in cli.COMMANDS


@pytest.mark.parametrize("name", STUDIES)
def test_tiny_study_writes_csv_json_markdown_and_plot(name, tmp_path):
    result = _tiny(name, tmp_path)
    folder = tmp_path / name
    for file in FILES:
        assert (folder / file).is_file(), file
    if HAVE_MATPLOTLIB:
        assert (folder / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # one run per (config, seed), in config-then-seed order
    assert len(result.runs) == len(result.configs) * 2
    assert [r["seed"] for r in result.runs] == [0, 1] * len(result.configs)
    rows = _read_csv(folder / "runs.csv")
    assert [r["label"] for r in rows] == [r["label"] for r in result.runs]

    # the summary is mean, std (ddof=1), min and max over the seeds, also in the CSV and the JSON
    metric = ex.get_study(name).metric
    summary_csv = {r["label"]: r for r in _read_csv(folder / "summary.csv")}
    document = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    summary_json = {r["label"]: r for r in document["summary"]}
    for row in result.summary:
        values = np.array(result.values(row["label"], metric), dtype=np.float64)
        assert row["n"] == 2
        assert row[f"{metric}_mean"] == values.mean()
        assert row[f"{metric}_std"] == values.std(ddof=1)
        assert (row[f"{metric}_min"], row[f"{metric}_max"]) == (values.min(), values.max())
        assert float(summary_csv[row["label"]][f"{metric}_mean"]) == row[f"{metric}_mean"]  # bit-exact repr
        assert summary_json[row["label"]][f"{metric}_std"] == row[f"{metric}_std"]
    assert document["study"] == name and document["size"] == "tiny" and document["seeds"] == [0, 1]
    assert len(document["timing"]["run_seconds"]) == len(result.runs)

    # the Markdown table: the smoke-test warning of the tiny size, a title, at least one table with mean ± std
    # cells, and the run footer
    markdown = (folder / "table.md").read_text(encoding="utf-8")
    assert markdown.startswith(report.SMOKE_TEST_NOTE + "\n\n# ")
    assert "| --- |" in markdown and " ± " in markdown
    assert f"_{name}, size tiny, seeds [0, 1]" in markdown


@pytest.mark.parametrize("name", STUDIES)
def test_same_seed_gives_bit_identical_numbers(name, tmp_path):
    first = _tiny(name, tmp_path / "a", seeds=[5])
    second = _tiny(name, tmp_path / "b", seeds=[5])
    for file in ("runs.csv", "summary.csv"):
        assert (tmp_path / "a" / name / file).read_bytes() == (tmp_path / "b" / name / file).read_bytes()
    assert json.dumps(first.runs) == json.dumps(second.runs)
    other = _tiny(name, seeds=[6])
    metric = ex.get_study(name).metric
    assert [r[metric] for r in other.runs] != [r[metric] for r in first.runs]  # the seed matters


def test_worker_processes_give_the_numbers_of_the_in_process_run():
    in_process = _tiny("threshold-shift", seeds=[0, 1], workers=1)
    pooled = _tiny("threshold-shift", seeds=[0, 1], workers=2)
    assert pooled.workers == 2
    assert json.dumps(pooled.runs) == json.dumps(in_process.runs)


def test_summary_statistics_skip_non_finite_values():
    configs = [{"label": "a"}, {"label": "b"}]
    runs = [{"label": "a", "seed": 0, "x": 1.0}, {"label": "a", "seed": 1, "x": 3.0},
            {"label": "b", "seed": 0, "x": math.nan}, {"label": "b", "seed": 1, "x": 2.0}]
    a, b = sweep._summarise(configs, runs)
    assert (a["x_mean"], a["x_std"], a["x_min"], a["x_max"], a["n"]) == (2.0, math.sqrt(2.0), 1.0, 3.0, 2)
    assert (b["x_mean"], b["x_std"]) == (2.0, 0.0)  # one finite value: std 0


def test_csv_and_json_floats_load_back_bit_exact(tmp_path):
    values = [0.1, 1 / 3, 2.0 ** -40, 123456.789e10]
    text = report._csv([{"label": "x", "v": v} for v in values])
    assert [float(r["v"]) for r in csv.DictReader(text.splitlines())] == values
    assert json.loads(json.dumps(report.plain({"v": values + [math.nan]}, finite_only=True)))["v"] == values + [None]
    path = tmp_path / "sub" / "f.txt"
    report.write_text(str(path), "hello")
    assert path.read_text() == "hello" and os.listdir(path.parent) == ["f.txt"]  # no temporary file left


def test_bad_arguments_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        ex.run("nope", tiny=True)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['bogus'\]"):
        _tiny("init-variance", bogus=1)
    with pytest.raises(ValueError, match="data-root"):
        _tiny("init-variance", dataset="mnist")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        _tiny("init-variance", dataset="mnist", data_root=str(tmp_path))
    with pytest.raises(ValueError, match="not images"):
        _tiny("threshold-shift", dataset="spirals")
    with pytest.raises(ValueError, match="choose one size"):
        ex.run("init-variance", tiny=True, quick=True)
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        _tiny("init-variance", seeds=0)


def test_without_matplotlib_the_plot_is_skipped_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    result = _tiny("init-variance", tmp_path, seeds=1)
    assert "plot" not in result.files and not (tmp_path / "init-variance" / "plot.png").exists()
    assert "plot.png skipped: matplotlib is not installed" in (tmp_path / "init-variance" / "table.md").read_text()


def test_mlp_only_sweeps_run_on_the_synthetic_sets():
    result = _tiny("bn-ablation", seeds=1, dataset="spirals", kinds=("batchnorm",))
    assert result.options["dataset"] == "spirals" and len(result.runs) == 1
    assert 0.0 <= result.runs[0]["final_acc"] <= 100.0


# ---- the studies' own mechanisms ------------------------------------------------------------------------------
def test_random_bias_draws_norm_shifts_and_keeps_the_weights():
    data = recipe.load_data("digits", images=True, train_limit=64, test_limit=32)
    models = []
    for lam in (0.0, 2.0):
        minibnn.manual_seed(3)
        model = recipe.build_model("resnet", data, 0.25)
        assert recipe.randomize_norm_bias(model, lam, seed=3) == (0 if lam == 0 else len(recipe.norm_layers(model)))
        models.append(model)
    plain, shifted = models
    biases = np.concatenate([m.bias.data for _, m in recipe.norm_layers(shifted)])
    assert np.all(np.abs(biases) <= 2.0) and biases.std() > 0.5  # U[-2, 2]: std 2/sqrt(3)
    assert all(np.all(m.bias.data == 0) for _, m in recipe.norm_layers(plain))
    for (name, p), (_, q) in zip(plain.named_parameters(), shifted.named_parameters()):
        if name.endswith("weight"):
            assert np.array_equal(p.data, q.data), name  # the same initial weights for every λ
    assert not any(".shortcut" in f".{n}" for n, _ in recipe.norm_layers(shifted))


def test_threshold_shift_trainable_threshold_is_minus_the_batchnorm_bias():
    result = _tiny("threshold-shift", seeds=1)
    trainable = result.runs[-1]
    assert trainable["label"] == "trainable/0"
    # Kim et al. Fig. 7: β and th get opposite gradients, so after training β = -th (up to rounding)
    assert trainable["bias_plus_threshold_change_maxabs"] < 1e-5
    assert trainable["corr_bias_threshold"] < -0.999
    # a positive shift makes -1 the majority in the first binary activation layer
    at_0, at_1 = result.row("shift/max/0"), result.row("shift/max/1")
    assert at_1["plus1_layer1_mean"] < at_0["plus1_layer1_mean"] - 0.2
    assert {"max", "avg"} == set(result.analysis)


def test_bn_ablation_measures_exploding_gradients_without_a_scale():
    result = _tiny("bn-ablation", seeds=1)
    growth = {row["norm"]: row["grad_growth_log10_mean"] for row in result.summary}
    # Sari et al., Theorem 1: without a scale the gradient grows towards the input; BatchNorm bounds it
    assert growth["none"] > growth["batchnorm"] + 0.5
    assert growth["centred"] > growth["fixed"] + 0.5


def test_ste_ablation_trains_signswish_beta_and_uses_the_regularizer():
    result = _tiny("ste-ablation", seeds=1, stes=("ss_t",), scales=("r2",), reg_coefficient=1e-2)
    run = result.runs[0]
    assert math.isfinite(run["trained_beta"]) and run["trained_beta"] != 5.0  # β started at 5 and moved


# ---- the command line -----------------------------------------------------------------------------------------
def test_cli_runs_a_tiny_experiment_in_process(tmp_path, capsys):
    code = cli.main(["experiment", "random-bias", "--tiny", "--seeds", "1", "--workers", "1", "--out",
                     str(tmp_path), "--no-progress", "--set", "binary_lams=[0, 1]"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Table 2: binary training" in out and "| 1.0 |" in out
    for file in FILES:
        assert (tmp_path / "random-bias" / file).is_file()
    assert f"markdown: {tmp_path / 'random-bias' / 'table.md'}" in out


def test_cli_lists_studies_and_reports_errors(tmp_path, capsys):
    assert cli.main(["experiment", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}: " in out for name in STUDIES)
    assert cli.main(["experiment", "init-variance", "--tiny", "--out", str(tmp_path), "--set", "bogus=1"]) == 2
    assert "unknown option(s) ['bogus']" in capsys.readouterr().err


# ---- a command line that explains itself (issue 11, part 3) ---------------------------------------------------
@pytest.mark.parametrize("setting, option, expected", [
    ("lrs=0.1", "lrs", "a JSON object of numbers > 0 by architecture"),
    ("epochs=abc", "epochs", "an integer >= 1"),
    ("lrs={'mlp': 0.1}", "lrs", "a JSON object of numbers > 0 by architecture"),
    ("epochs=0", "epochs", "an integer >= 1"),
    ("archs=mlp", "archs", "a non-empty JSON list of names from mlp, "),
    ("archs=[]", "archs", "a non-empty JSON list of names from mlp, "),
    ("milestones=[0.5, \"x\"]", "milestones", "a non-empty JSON list of numbers"),
    ("batch_size=2.5", "batch_size", "an integer >= 1"),
    ("train_limit=0", "train_limit", "an integer >= 1"),
    ("dataset=imagenet", "dataset", "one of digits, spirals"),
])
def test_a_bad_set_value_is_one_line_naming_option_value_and_form_before_any_run(setting, option, expected,
                                                                                   tmp_path, capsys, monkeypatch):
    def no_run(*args, **kwargs):
        raise AssertionError("a run started")

    monkeypatch.setattr(sweep, "_sweep", no_run)
    code = cli.main(["experiment", "init-variance", "--tiny", "--out", str(tmp_path), "--set", setting])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("minibnn experiment: ")
    assert f"option {option} must be {expected}" in err and "e.g. --set " in err
    unquoted = str.maketrans("", "", "'\"")
    assert f"got {setting.partition('=')[2].translate(unquoted)[:3]}" in err.translate(unquoted)
    assert not (tmp_path / "init-variance").exists()


def test_bad_counts_and_malformed_set_exit_2_with_one_line(tmp_path, capsys):
    for bad in (["--epochs", "0"], ["--seeds", "0"], ["--workers", "-2"], ["--seeds", "two"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["experiment", "init-variance", "--tiny", *bad])
        assert exit_info.value.code == 2
        assert f"argument {bad[0]}: must be an integer >= 1, got '{bad[1]}'" in capsys.readouterr().err
    assert cli.main(["experiment", "init-variance", "--tiny", "--out", str(tmp_path), "--set", "epochs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--set expects KEY=VALUE, got 'epochs'" in err
    assert cli.main(["experiment"]) == 2
    assert "name a study" in capsys.readouterr().err


def test_set_values_are_json_and_the_syntax_is_documented(capsys, monkeypatch):
    seen = {}

    def fake_run_study(name, **kwargs):
        seen.update(kwargs, name=name)
        raise ValueError("stop here")

    monkeypatch.setattr(command, "run_study", fake_run_study)
    cli.main(["experiment", "bn-ablation", "--set", 'archs=["mlp"]', "--set", 'lrs={"mlp": 0.01}', "--set",
              "train_limit=500", "--set", "optimizer=sgd"])
    assert seen["size"] == "quick"  # the default size
    assert (seen["archs"], seen["lrs"], seen["train_limit"], seen["optimizer"]) == (
        ["mlp"], {"mlp": 0.01}, 500, "sgd")
    opts = ex.get_study("bn-ablation").options("tiny", {"archs": ["mlp"], "lrs": {"mlp": 0.01}})
    assert opts["archs"] == ("mlp",) and opts["lrs"] == {"mlp": 0.01}
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["experiment", "--help"])
    help_text = capsys.readouterr().out
    assert "VALUE is JSON" in help_text and "--set 'lrs={\"mlp\": 0.01}'" in help_text
    assert "--quick" in help_text and "(the default)" in help_text
    assert cli.main(["experiment", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "VALUE is JSON" in listing and 'archs=["mlp"]' in listing


def test_quick_is_the_default_size(monkeypatch):
    sizes = []
    monkeypatch.setattr(ex, "run_study", lambda name, **kwargs: sizes.append(kwargs["size"]))
    ex.run("init-variance")
    ex.run("init-variance", full=True)
    ex.run("init-variance", tiny=True)
    assert sizes == ["quick", "full", "tiny"]
    with pytest.raises(ValueError, match="choose one size"):
        ex.run("init-variance", full=True, quick=True)


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="needs matplotlib")
def test_a_tiny_plot_is_titled_as_a_smoke_test(tmp_path, monkeypatch):
    figures = []
    study = ex.get_study("init-variance")
    monkeypatch.setattr(type(study), "plot", lambda self, result, fig: figures.append(fig))
    _tiny("init-variance", tmp_path, seeds=1)
    assert figures[0].get_suptitle() == report.SMOKE_TEST_PLOT
    figures.clear()
    result = _tiny("init-variance", seeds=1)
    result.size = "quick"  # the same numbers written as a quick run carry no warning
    report.write_outputs(study, result, str(tmp_path / "quick"))
    assert figures[0].get_suptitle() == ""
    assert not (tmp_path / "quick" / "table.md").read_text().startswith(report.SMOKE_TEST_NOTE)
