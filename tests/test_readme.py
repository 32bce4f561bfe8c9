"""The README's Python examples run, in order, as a reader would paste them (quick start, deploy, theory)."""
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_python_examples_run_in_order(tmp_path, monkeypatch, capsys):
    blocks = python_blocks()
    assert len(blocks) >= 3, "the README lost its quick start, deploy or theory example"
    monkeypatch.chdir(tmp_path)          # the deploy example writes model.npz
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "acc" in out and "binary dot variance" in out and "agrees" in out
    assert (tmp_path / "model.npz").is_file()
