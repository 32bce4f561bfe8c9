"""The README's Python examples run, in order, as a reader would paste them (quick start, deploy, theory), and
its links to files of the repository lead somewhere."""
import json
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


def test_the_readme_links_to_files_that_exist():
    root = README.parent
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    assert any(link.startswith("docs/results/") for link in local), "the README no longer links the results"
    missing = [link for link in local if not (root / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_every_study_has_published_full_size_results():
    results = README.parent / "docs" / "results"
    for name in ("random-bias", "init-variance", "bn-ablation", "threshold-shift", "ste-ablation"):
        page = (results / name / "index.md").read_text(encoding="utf-8")
        assert "**Verdict:" in page and "](plot.png)" in page, name
        for member in ("plot.png", "summary.csv", "runs.csv", "results.json"):
            assert (results / name / member).stat().st_size > 0, (name, member)
        stored = json.loads((results / name / "results.json").read_text(encoding="utf-8"))
        assert stored["study"] == name and stored["size"] == "full", name
        assert f"[{name}](docs/results/{name}/index.md)" in README.read_text(encoding="utf-8"), name
