"""What a lesson needs around its figures: shown inline in a notebook, saved as PNG files when run as a script.

    fig, ax = plt.subplots()
    ...
    show(fig, "06_training_curves.png")

saves the figure in :func:`output_dir` (``$MINIBNN_TUTORIAL_OUT``, default ``./lesson_out``), displays it below
the cell when the lesson runs in a Jupyter kernel, and closes it (so a notebook shows it once and a script does
not pile figures up in memory). Nothing ever opens a window: lessons run headless.

Example:
    >>> import os, tempfile
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> os.environ["MINIBNN_TUTORIAL_OUT"] = tempfile.mkdtemp()
    >>> fig, ax = plt.subplots()
    >>> show(fig, "demo.png").name
    'demo.png'
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["OUT_VAR", "output_dir", "in_notebook", "show"]

#: the environment variable naming the folder figures are saved to
OUT_VAR = "MINIBNN_TUTORIAL_OUT"


def output_dir() -> Path:
    """The folder the lessons save their figures to (created if needed)."""
    folder = Path(os.environ.get(OUT_VAR) or "lesson_out")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where a figure can be displayed below its cell)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def show(fig, name: str, dpi: int = 80) -> Path:
    """Save ``fig`` as ``output_dir()/name``, display it inline in a notebook, close it; return the file's path."""
    import matplotlib.pyplot as plt

    path = output_dir() / name
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    if in_notebook():                 # the saved PNG itself: works for pyplot figures and bare Figure() alike
        from IPython.display import Image, display
        display(Image(filename=str(path)))
    plt.close(fig)
    return path
