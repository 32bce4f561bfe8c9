"""Sphinx configuration of minibnn's documentation site.

Build (offline, warnings are errors):  python -m sphinx -W -b html docs docs/_build/html
Dependencies: python -m pip install -e ".[docs]"

The lessons are the tutorials' jupytext percent scripts, converted to notebooks under docs/lessons/ at the start
of every build and executed by myst-nb (their outputs and figures are computed, never stored). To point the site at
lessons somewhere else, change LESSON_GLOBS below.
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# --- where the lessons are: globs relative to the repository root, in reading order ----------------------------
LESSON_GLOBS = ["minibnn/course/lessons/[0-9][0-9]_*.py"]
LESSON_DIR = HERE / "lessons"          # generated notebooks go here (git-ignored, rewritten only when changed)

# The library documented and executed is the one in this source tree, installed or not. Its compiled kernels are
# used when they were built in place (pip install -e, or setup.py build_ext --inplace); otherwise the lessons
# run on the NumPy fallback, which gives the same results more slowly.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE / "_ext"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # the lessons' small products; keeps a shared machine usable
os.environ.setdefault("PYTHONHASHSEED", "0")

# The lessons' kernels start with matplotlib's inline backend, as `%matplotlib inline` would: a lesson cell that
# ends with a Figure then shows it even when the figure was made without pyplot (minibnn's plots use Figure()).
# The IPython profile lives under _build, so the build writes nothing else into the source tree.
_IPYTHON = HERE / "_build" / ".ipython"
(_IPYTHON / "profile_default").mkdir(parents=True, exist_ok=True)
(_IPYTHON / "profile_default" / "ipython_kernel_config.py").write_text(
    'c.InteractiveShellApp.matplotlib = "inline"\nc.HistoryManager.enabled = False\n', encoding="utf-8")
os.environ["IPYTHONDIR"] = str(_IPYTHON)

import minibnn  # noqa: E402

from apipages import write_api_pages  # noqa: E402  (docs/_ext/apipages.py)
from lessons import convert_lessons  # noqa: E402  (docs/_ext/lessons.py)

LESSONS = convert_lessons(ROOT, LESSON_GLOBS, LESSON_DIR)
API_MODULES = write_api_pages("minibnn", HERE / "api")   # generated, git-ignored

# --- project ---------------------------------------------------------------------------------------------------
project = "minibnn"
author = "the minibnn authors"
copyright = "the minibnn authors"
release = minibnn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_nb",                      # MyST Markdown pages and executed notebooks (also provides myst_parser)
    "plain_math",                   # docs/_ext: the docstrings' plain-text formulas (|x|, indented lines) as reST
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "offline_mathjax",              # docs/_ext: a bundled MathJax, so pages render math with no network
    "canonical_refs",               # docs/_ext: minibnn.Tensor -> minibnn.tensor.Tensor for cross-references
]
exclude_patterns = ["_build", "results/**/README.md", "**.ipynb_checkpoints", "jupyter_execute"]
root_doc = "index"
nitpicky = True
suppress_warnings = ["myst.header"]   # the lessons start at "# NN · title" then use "##"; keeps their structure

# --- MyST and notebooks ------------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3
# Every build runs every lesson, so a page always shows what today's library gives. While editing prose, add
# -D nb_execution_mode=cache to re-run a lesson only when its own text changed (the cache does not see changes
# to the library).
nb_execution_mode = "force"
nb_execution_cache_path = str(HERE / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True     # a lesson that raises fails the build
nb_execution_in_temp = True            # lessons write tutorial_out/ in a temporary folder, not in docs/
nb_merge_streams = True

# --- API reference -----------------------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True,
                           "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True

# Names from outside the project: no intersphinx (the build is offline), so these stay plain text.
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|scipy|matplotlib|tqdm|threadpoolctl|typing|collections|os|pathlib|io|abc|argparse"
               r"|concurrent|multiprocessing|dask|distributed|types)\..*"),
    # private base classes named by "Bases:" and type aliases used in annotations: not documented, on purpose
    (r"py:.*", r"(minibnn(\.\w+)*\.)?_\w+"),
    (r"py:.*", r"(InitSpec|Factory|Predicate|QuantizerSpec|ConstraintSpec)"),
    (r"py:.*", r"(ndarray|array_like|array-like|ArrayLike|DTypeLike|Generator|Path|PathLike|Axes|Figure)"),
    (r"py:class", r"(optional|default.*|callable|iterable|sequence|mapping|dict-like|file-like|.*\bor\b.*)"),
    # pieces of a quoted annotation (Union[str, "os.PathLike[str]"]) as autodoc splits it
    (r"py:class", r"'.*"),
    # "Raises: error: ..." where ``error`` is the argument naming the exception type to raise (minibnn.archive)
    (r"py:exc", r"error"),
]

# --- HTML --------------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"minibnn {release}"
html_static_path = ["_static"]
html_css_files = ["minibnn.css"]
html_theme_options = {"navigation_with_keys": True}
html_show_sourcelink = False
html_last_updated_fmt = None
