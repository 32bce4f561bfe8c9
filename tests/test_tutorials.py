"""The tutorials run top to bottom as plain Python, headless and offline, and open as Jupyter notebooks.

Each tutorial (tutorials/NN_name.py, a jupytext percent script) runs in a fresh interpreter in a temporary
working directory, with matplotlib's Agg backend and its figures written to a temporary folder
($MINIBNN_TUTORIAL_OUT). The whole file takes some seconds: the tutorials train for a few epochs only.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minibnn.assignments import BEGIN, END, find_tutorials

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS_DIR = ROOT / "tutorials"
TUTORIALS = find_tutorials(TUTORIALS_DIR)
#: figures each tutorial saves (a tutorial that stops saving one should fail here, not silently)
FIGURES = {
    "02_quantizers.py": ["02_quantizers_fig4.png", "02_signswish.png"],
    "03_binary_mlp.py": ["03_digits.png", "03_latent_weights.png"],
    "05_checking_theory.py": ["05_relu_vs_htanh.png"],
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _ids(paths):
    return [p.name for p in paths]


def run_script(path: Path, workdir: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run one script as a user would (``python path``) in ``workdir``, headless, figures into workdir/out."""
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", MINIBNN_TUTORIAL_OUT=str(workdir / "out"), PYTHONHASHSEED="0",
               OPENBLAS_NUM_THREADS=env.get("OPENBLAS_NUM_THREADS", "1"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, str(path)], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_there_are_five_tutorials_in_order():
    assert [p.name[:2] for p in TUTORIALS] == ["01", "02", "03", "04", "05"], _ids(TUTORIALS)


@pytest.mark.parametrize("path", TUTORIALS, ids=_ids(TUTORIALS))
def test_tutorial_runs_top_to_bottom(path, tmp_path):
    result = run_script(path, tmp_path)
    assert result.returncode == 0, (f"{path.name} failed (exit {result.returncode}).\n--- stdout (tail) ---\n"
                                    f"{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-6000:]}")
    assert result.stdout.strip(), f"{path.name} printed nothing"
    for name in FIGURES.get(path.name, []):
        figure = tmp_path / "out" / name
        assert figure.is_file(), f"{path.name} did not save {name}; saved: {sorted(os.listdir(tmp_path / 'out'))}"
        assert figure.read_bytes()[:8] == PNG_MAGIC, f"{figure} is not a PNG file"
    # nothing is written outside the output folder (e.g. no stray files in the user's working directory)
    assert sorted(os.listdir(tmp_path)) == (["out"] if (tmp_path / "out").exists() else [])


@pytest.mark.parametrize("path", TUTORIALS, ids=_ids(TUTORIALS))
def test_tutorial_is_a_percent_notebook(path):
    """Plain-text structure: a markdown title cell first, prose and code cells, solutions properly marked."""
    text = path.read_text(encoding="utf-8")
    cells = re.findall(r"^# %%(.*)$", text, flags=re.MULTILINE)
    markdown = [c for c in cells if "[markdown]" in c]
    assert cells and "[markdown]" in cells[0], f"{path.name}: the first cell should be the markdown title"
    assert len(markdown) >= 5 and len(cells) - len(markdown) >= 5, f"{path.name}: {len(cells)} cells"
    assert text.count(BEGIN) == text.count(END), f"{path.name}: unbalanced solution markers"
    assert "plt.show()" not in text, f"{path.name}: show() blocks a headless run; save figures instead"


@pytest.mark.parametrize("path", TUTORIALS, ids=_ids(TUTORIALS))
def test_tutorial_converts_to_a_notebook(path):
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(path)
    kinds = [cell.cell_type for cell in notebook.cells]
    text = path.read_text(encoding="utf-8")
    assert kinds.count("markdown") == len(re.findall(r"^# %% \[markdown\]", text, flags=re.MULTILINE))
    assert kinds.count("code") == len(re.findall(r"^# %%(?! \[markdown\])", text, flags=re.MULTILINE))
    assert notebook.cells[0].source.startswith("# "), "the first cell should be the title"
    assert notebook.metadata["kernelspec"]["language"] == "python"
    # and back: the notebook's code is the script's code
    again = jupytext.reads(jupytext.writes(notebook, fmt="ipynb"), fmt="ipynb")
    assert [c.source for c in again.cells] == [c.source for c in notebook.cells]


def test_readme_lists_every_tutorial():
    readme = (TUTORIALS_DIR / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in TUTORIALS if p.name not in readme]
    assert not missing, f"tutorials/README.md does not mention {missing}"
    assert "jupytext --to notebook" in readme
