"""The lessons (minibnn/course/lessons/NN_name.py) run as scripts and as executed notebooks, and agree with the graders.

Each lesson runs twice, in a fresh temporary working directory: as ``python NN_name.py`` (headless, figures
saved to $MINIBNN_TUTORIAL_OUT) and as a Jupyter notebook executed by nbclient (figures shown inline). The
lessons train for a few epochs on small data, so each run takes seconds.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minibnn.course import FORBIDDEN, GRADERS, LESSONS_DIR, exercises, lessons
from minibnn.course.handout import BEGIN, END, parse_id

ROOT = Path(__file__).resolve().parent.parent
LESSONS = lessons()
IDS = [p.name for p in LESSONS]
#: the figures each lesson saves (a lesson that stops saving one fails here, not silently)
FIGURES = {
    "02_quantizers.py": ["02_quantizers_fig4.png", "02_signswish.png"],
    "03_binary_mlp.py": ["03_digits.png", "03_float_curves.png", "03_latent_weights.png"],
    "05_checking_theory.py": ["05_relu_vs_htanh.png"],
    "06_binary_cnn.py": ["06_training_curves.png", "06_threshold_shift.png"],
    "07_init_batchnorm.py": ["07_variance_depth.png"],
    "08_bnn_plus.py": ["08_signswish.png", "08_regularizers.png", "08_ste_comparison.png"],
    "09_random_bias_geometry.py": ["09_active_units.png", "09_decision_regions.png"],
    "10_deployment.py": ["10_training_curves.png", "10_model_size.png"],
    "11_running_a_study.py": ["11_confidence_intervals.png"],
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _env(out: Path) -> dict:
    env = dict(os.environ, MINIBNN_TUTORIAL_OUT=str(out), PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_there_are_eleven_lessons_in_order():
    assert [p.name[:2] for p in LESSONS] == [f"{n:02d}" for n in range(1, 12)], IDS
    assert LESSONS[0].parent == LESSONS_DIR


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_lesson_runs_as_a_script(path, tmp_path):
    env = _env(tmp_path / "out")
    env["MPLBACKEND"] = "Agg"
    result = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, (f"{path.name} failed (exit {result.returncode}).\n--- stdout (tail) ---\n"
                                    f"{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-6000:]}")
    assert result.stdout.strip(), f"{path.name} printed nothing"
    for name in FIGURES.get(path.name, []):
        figure = tmp_path / "out" / name
        assert figure.is_file(), f"{path.name} did not save {name}; saved: {sorted(os.listdir(tmp_path / 'out'))}"
        assert figure.read_bytes()[:8] == PNG_MAGIC, f"{figure} is not a PNG file"
    # nothing is written outside the output folder (no stray files in the student's working directory)
    assert sorted(os.listdir(tmp_path)) == (["out"] if (tmp_path / "out").exists() else [])


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_lesson_runs_as_an_executed_notebook_with_inline_figures(path, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext", reason="needs the [course] extra (jupytext)")
    nbclient = pytest.importorskip("nbclient", reason="needs the [course] extra (nbclient, ipykernel)")
    for name, value in _env(tmp_path / "out").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MPLBACKEND", raising=False)           # the kernel's own inline backend
    notebook = jupytext.read(path)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = sum("image/png" in output.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
                 for output in cell.get("outputs", []))
    assert images >= len(FIGURES.get(path.name, [])), f"{path.name}: {images} inline figures"
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_lesson_is_a_percent_notebook(path):
    """Plain-text structure: a markdown title first, the install note, prose and code cells, marked solutions."""
    text = path.read_text(encoding="utf-8")
    cells = re.findall(r"^# %%(.*)$", text, flags=re.MULTILINE)
    markdown = [c for c in cells if "[markdown]" in c]
    assert cells and "[markdown]" in cells[0], f"{path.name}: the first cell should be the markdown title"
    assert len(markdown) >= 5 and len(cells) - len(markdown) >= 5, f"{path.name}: {len(cells)} cells"
    assert text.count(BEGIN) == text.count(END), f"{path.name}: unbalanced solution markers"
    assert "plt.show()" not in text, f"{path.name}: show() blocks a headless run; use minibnn.course.notebook.show"
    assert 'pip install "minibnn[course]"' in text.split("# %%\n")[0], f"{path.name}: no install note at its top"


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_each_exercise_has_one_identity_in_heading_intro_and_grader(path):
    found = exercises(path)
    assert len(found) >= 2, f"{path.name}: {len(found)} exercises"
    text = path.read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("# ###") and "Exercise" in line]
    intro = text.split("# %%\n")[0]
    for ex in found:
        lesson, number, name = parse_id(ex.id)
        points = GRADERS[ex.id].points
        label = f"{lesson}.{number} — `{name}` ({points} point{'s' if points != 1 else ''})"
        assert any(label in h for h in headings), f"{path.name}: no heading with {label!r}"
        assert re.search(rf"{lesson}\.{number} `{re.escape(name)}` \({points} point", intro.replace("\n# ", " ")), \
            f"{path.name}: the intro does not list {ex.id} with its points"


def test_graders_and_the_forbidden_table_cover_exactly_the_exercises():
    ids = [ex.id for p in LESSONS for ex in exercises(p)]
    assert len(ids) >= 25 and len(set(ids)) == len(ids)
    assert list(GRADERS) == ids
    assert sorted(FORBIDDEN) == sorted(ids)


def test_readme_lists_every_lesson():
    readme = (LESSONS_DIR / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in LESSONS if p.name not in readme]
    assert not missing, f"minibnn/course/lessons/README.md does not mention {missing}"
    assert "minibnn[course]" in readme
