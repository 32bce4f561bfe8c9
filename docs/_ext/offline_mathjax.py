"""MathJax served from the built site itself, so math renders from a file:// page with no network.

The MathJax 3 files come from the PyPI package ``sphinx-mathjax-offline`` (a ``[docs]`` dependency); only the
parts a page needs are copied: the SVG output component (self-contained: no web fonts to fetch), the TeX
extensions it may autoload, and the menu and accessibility modules it loads on demand.
"""
import shutil
from importlib import metadata
from pathlib import Path

PARTS = ["tex-svg.js", "input/tex/extensions", "ui", "a11y", "sre", "adaptors"]


def mathjax_source() -> Path:
    try:
        dist = metadata.distribution("sphinx-mathjax-offline")
    except metadata.PackageNotFoundError:
        raise RuntimeError('docs: the bundled MathJax is missing; install the docs extra: pip install ".[docs]"')
    return Path(dist.locate_file("sphinx-mathjax-offline/static/mathjax"))


def copy_mathjax(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    src, dst = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in PARTS:
        s, d = src / part, dst / part
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        else:
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, d)


def setup(app):
    mathjax_source()   # fail early, with the command that fixes it
    app.config.mathjax_path = "mathjax/tex-svg.js"
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
