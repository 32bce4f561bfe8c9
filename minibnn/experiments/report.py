"""The files a sweep writes: CSV, JSON, the paper-style Markdown table and the PNG plot, and the table helpers.

Into ``out_dir/<study>/`` go ``runs.csv`` (one row per run), ``summary.csv`` (one row per config),
``results.json`` (everything, per-epoch curves included), ``table.md`` (the study's paper-style table, with the
paper's numbers beside ours) and ``plot.png`` (skipped, with a note in ``table.md``, without matplotlib); the
runs themselves are stored one file each in ``runs/`` (:mod:`~minibnn.experiments.store`). The table and plot
of the ``tiny`` size are marked as a smoke test whose numbers mean nothing. Files are written atomically; CSV
and JSON floats are written with ``repr``, so they load back bit-exact. Timings and the executor go to
``results.json`` only, so ``runs.csv``, ``summary.csv`` and ``table.md`` are byte-identical across reruns and
executors.

Example:
    >>> print(md_table(["config", "accuracy"], [["glorot", fmt_pm(91.234, 0.5)]]))
    | config | accuracy |
    | --- | --- |
    | glorot | 91.23 ± 0.50 |
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

from .. import __version__
from ..atomic import atomic_write
from .store import plain

if TYPE_CHECKING:  # pragma: no cover
    from .studies import Study
    from .sweep import Result

__all__ = ["write_outputs", "write_text", "fmt_pm", "md_table", "is_scalar", "SMOKE_TEST_NOTE", "SMOKE_TEST_PLOT"]

#: the first line of a ``tiny`` table: the size checks that the code runs, not what the paper claims
SMOKE_TEST_NOTE = ("> **Smoke test (size tiny): these numbers mean nothing.** A few hundred samples and one epoch "
                   "check that the study runs end to end; accuracies are near chance and differences between rows "
                   "are noise. Run the quick (default) or full size for results.")
#: the title of a ``tiny`` plot
SMOKE_TEST_PLOT = "SMOKE TEST (size tiny): these numbers mean nothing"


def is_scalar(value: Any) -> bool:
    """Whether ``value`` is a number, a bool or None (a CSV cell and a summarised metric; lists are curves)."""
    return value is None or isinstance(value, (bool, int, float, np.integer, np.floating))


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, then ``os.replace``)."""
    with atomic_write(path, "w") as f:
        f.write(text)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def _csv(rows: List[Dict[str, Any]]) -> str:
    columns: List[str] = []
    for row in rows:
        columns += [k for k, v in row.items() if k not in columns and _is_scalar_or_text(v)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def _is_scalar_or_text(value: Any) -> bool:
    return is_scalar(value) or isinstance(value, str)


def _environment() -> Dict[str, Any]:
    return {"minibnn": __version__, "numpy": np.__version__, "python": sys.version.split()[0],
            "cpu_count": os.cpu_count()}


def write_outputs(study: "Study", result: "Result", folder: str) -> Dict[str, str]:
    """Write runs.csv, summary.csv, results.json, table.md and plot.png into ``folder``; fill ``result.files``."""
    files = {"runs": os.path.join(folder, "runs.csv"), "summary": os.path.join(folder, "summary.csv"),
             "json": os.path.join(folder, "results.json"), "markdown": os.path.join(folder, "table.md")}
    write_text(files["runs"], _csv(result.runs))
    write_text(files["summary"], _csv(result.summary))
    plot_path = os.path.join(folder, "plot.png")
    plot_note = _save_plot(study, result, plot_path)
    if plot_note is None:
        files["plot"] = plot_path
    markdown = study.markdown(result).rstrip() + "\n"
    if result.size == "tiny":
        markdown = SMOKE_TEST_NOTE + "\n\n" + markdown
    footer = (f"\n_{result.study}, size {result.size}, seeds {result.seeds}, dataset {result.options['dataset']}, "
              f"{len(result.runs)} runs, minibnn {__version__}; mean ± std over seeds (std with ddof=1)._\n")
    if plot_note is not None:
        footer += f"\n_{plot_note}_\n"
    write_text(files["markdown"], markdown + footer)
    document = {"study": result.study, "title": study.title, "size": result.size, "seeds": result.seeds,
                "options": result.options, "configs": result.configs, "summary": result.summary,
                "analysis": result.analysis, "runs": result.runs,
                "timing": {"seconds": result.seconds, "workers": result.workers, "executor": result.executor,
                           "stored_runs": result.stored, "run_seconds": result.run_seconds},
                "environment": _environment(), "files": {k: os.path.basename(v) for k, v in files.items()}}
    write_text(files["json"], json.dumps(plain(document, finite_only=True), indent=1, allow_nan=False) + "\n")
    result.files = files
    return files


def _save_plot(study: "Study", result: "Result", path: str) -> Optional[str]:
    """Draw the study's figure into ``path`` (atomically); return None, or a note saying why it was skipped."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return "plot.png skipped: matplotlib is not installed (pip install matplotlib)."
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    study.plot(result, fig)
    seeds = len(result.seeds)
    fig.supxlabel(f"{result.study}, size {result.size}, dataset {result.options['dataset']}: mean over {seeds} "
                  f"seed{'s' * (seeds > 1)}; error bars, where drawn: ±1 standard deviation over the seeds (ddof=1).\n"
                  "The paper's numbers (its datasets: CIFAR-10 / ImageNet) are labelled \"paper\" in the legends, "
                  "or in brackets.", fontsize=8)
    if result.size == "tiny":
        fig.suptitle(SMOKE_TEST_PLOT, color="firebrick", fontweight="bold")
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    return None


# --------------------------------------------------------------------------------------------------------------
# Formatting helpers for the studies' tables
# --------------------------------------------------------------------------------------------------------------
def fmt_pm(mean: float, std: float, digits: int = 2) -> str:
    """"mean ± std" with ``digits`` decimals ("–" for a missing value).

    Example:
        >>> fmt_pm(91.234, 0.5)
        '91.23 ± 0.50'
    """
    if mean is None or not math.isfinite(mean):
        return "–"
    if std is None or not math.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table: a header row, a separator and one line per row (cells converted with ``str``)."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
