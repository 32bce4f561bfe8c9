"""The documentation site builds offline with no warning, and shows what a reader expects.

Runs the README's command, ``python -m sphinx -W -b html docs OUT`` (warnings are errors: a broken docstring, a
cross-reference to a name that does not exist or a lesson that raises fails it), once per session into a temporary
folder, then checks the result as a reader would: every lesson has a page showing its figures, every public module
has an API page, and no page loads anything from the network. Skipped, with the command that installs them, when the
docs extra is not installed. The build executes the lessons, so it takes about a minute.
"""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NEEDED = ("sphinx", "myst_nb", "furo", "jupytext", "ipykernel")
MISSING = [name for name in NEEDED if importlib.util.find_spec(name) is None]

pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"docs extra not installed (no {', '.join(MISSING)}): pip install \".[docs]\"")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """(output folder, CompletedProcess) of one build; --keep-going writes every page even when one warns."""
    out = tmp_path_factory.mktemp("html")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(out / ".doctrees"), str(DOCS), str(out)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert (out / "index.html").is_file(), f"the docs build wrote no site:\n{result.stderr[-4000:]}"
    return out, result


def test_the_site_builds_without_a_warning(build):
    _, result = build
    # the Jupyter kernels' own log lines (e.g. "[IPKernelApp] WARNING | ...") are not Sphinx warnings
    warnings = [line for line in result.stderr.splitlines()
                if ("WARNING" in line or "ERROR" in line) and not line.startswith("[")]
    assert result.returncode == 0, "the docs build failed:\n" + "\n".join(warnings[:40] or [result.stderr[-4000:]])


@pytest.fixture(scope="module")
def site(build):
    return build[0]


def lesson_sources():
    """The lesson scripts the site renders: LESSON_GLOBS at the top of docs/conf.py (a literal list)."""
    import ast
    text = (DOCS / "conf.py").read_text(encoding="utf-8")
    globs = ast.literal_eval(re.search(r"^LESSON_GLOBS = (\[.*\])$", text, re.M).group(1))
    return [path for pattern in globs for path in sorted(ROOT.glob(pattern))]


def test_every_lesson_has_a_page_that_shows_its_figures(site):
    sources = lesson_sources()
    assert sources, "no lesson found: check LESSON_GLOBS in docs/conf.py"
    for source in sources:
        page = site / "lessons" / f"{source.stem}.html"
        assert page.is_file(), f"{source.name} has no page"
        html = page.read_text(encoding="utf-8")
        saved = set(re.findall(r"(\w+\.png)", source.read_text(encoding="utf-8")))
        shown = len(re.findall(r"<img [^>]*src=\"[^\"]*_images/", html))
        assert shown >= len(saved), (f"{source.name} saves {len(saved)} figure(s) ({', '.join(sorted(saved))}) but its "
                                     f"page shows {shown}: a figure shows in a notebook only if its cell displays it "
                                     f"(end the cell with the figure)")
        assert "cell_output" in html, f"{source.name}'s page has no executed output"


def test_every_public_module_has_an_api_page(site):
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from apipages import public_modules
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    missing = [name for name in public_modules("minibnn") if not (site / "api" / f"{name}.html").is_file()]
    assert not missing, f"modules without an API page: {missing}"
    assert not (site / "api" / "minibnn._xnor.html").exists()


def test_the_studies_and_the_results_have_pages(site):
    studies = (site / "studies.html").read_text(encoding="utf-8")
    for name in ("random-bias", "init-variance", "bn-ablation", "threshold-shift", "ste-ablation"):
        assert name in studies, name
    assert (site / "results" / "index.html").is_file()


def test_no_page_loads_anything_from_the_network(site):
    remote = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.I)
    offenders = [str(page.relative_to(site)) for page in site.rglob("*.html")
                 if remote.search(page.read_text(encoding="utf-8"))]
    assert not offenders, f"pages that load from the network: {offenders[:10]}"
    assert (site / "_static" / "mathjax" / "tex-svg.js").is_file(), "the bundled MathJax is missing"
