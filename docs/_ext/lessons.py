"""The lessons: jupytext percent scripts converted to notebooks for myst-nb (called from conf.py).

A notebook is rewritten only when its text changes, so an unchanged lesson keeps its execution cache. Notebooks
of lessons that no longer exist are removed, so the site never shows a lesson the repository lost.
"""
from pathlib import Path


def convert_lessons(root: Path, globs, out_dir: Path):
    """Convert every script matched by ``globs`` (relative to ``root``) into ``out_dir/<stem>.ipynb``."""
    import jupytext

    out_dir.mkdir(parents=True, exist_ok=True)
    sources = []
    for pattern in globs:
        sources.extend(sorted(root.glob(pattern)))
    if not sources:
        raise RuntimeError(f"docs: no lesson matches {globs} under {root}; fix LESSON_GLOBS in docs/conf.py")
    written = set()
    for src in sources:
        notebook = jupytext.read(src, fmt="py:percent")
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        text = jupytext.writes(notebook, fmt="ipynb")
        target = out_dir / f"{src.stem}.ipynb"
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.add(target.name)
    for stale in out_dir.glob("*.ipynb"):
        if stale.name not in written:
            stale.unlink()
    return [s.stem for s in sources]
