"""The API reference's pages: one per public module of minibnn, found by walking the package (called from conf.py).

Every module and subpackage whose dotted name has no part starting with an underscore gets ``api/<name>.rst``
with an ``automodule`` directive (the options are conf.py's ``autodoc_default_options``); a package's page lists
its submodules. New subpackages appear by themselves. The modules are walked here rather than with autosummary's
``:recursive:`` because a package may re-export a function under a submodule's name (``minibnn.gradcheck`` is
both), and autosummary would then document the function instead of the module.
"""
import importlib
import pkgutil
import re
from pathlib import Path


def public_modules(package: str):
    """Dotted names of ``package`` and all its public submodules, sorted."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        parts = info.name.split(".")
        # private modules, and files that are not importable names (a lesson "01_autograd.py" kept as package
        # data: importing it would run it)
        if any(part.startswith("_") or not part.isidentifier() for part in parts):
            continue
        names.append(info.name)
    return sorted(names)


_ROLE = re.compile(r":(\w+):`(~?)([A-Za-z_][\w.]*)`")


def summary_line(name: str) -> str:
    """The first line of the module's docstring, its short references (``:func:`freeze```) made absolute, since
    the index page has no module of its own to look them up in."""
    doc = (importlib.import_module(name).__doc__ or "").strip()
    line = doc.splitlines()[0].strip() if doc else ""

    def absolute(match):
        role, tilde, target = match.groups()
        if target.startswith("minibnn") or role == "mod":
            return match.group(0)
        return f":{role}:`~{name}.{target}`"

    return _ROLE.sub(absolute, line)


def write_api_pages(package: str, out_dir: Path):
    out_dir.mkdir(parents=True, exist_ok=True)
    names = public_modules(package)
    pages = {}
    for name in names:
        children = [n for n in names if n.rpartition(".")[0] == name]
        text = f"{name}\n{'=' * len(name)}\n\n.. automodule:: {name}\n"
        if children:
            text += "\n.. rubric:: Submodules\n\n.. toctree::\n   :maxdepth: 1\n\n"
            text += "".join(f"   {c}\n" for c in children)
        pages[f"{name}.rst"] = text
    rows = "".join("   * - :mod:`%s`\n     - %s\n" % (n, summary_line(n).replace("|", "\\|")) for n in names)
    pages["index.rst"] = (
        "API reference\n=============\n\n"
        "One page per public module, generated from the docstrings: the formula, the paper it comes from and a\n"
        "runnable example are in each. Modules whose name starts with an underscore (the compiled kernels, the\n"
        "shared validators) are private and not listed. Each object is documented once, in the module that\n"
        "defines it; the shorter public names (``minibnn.Tensor`` ...) are the same objects.\n\n"
        ".. list-table::\n   :header-rows: 1\n   :widths: 30 70\n\n   * - module\n     - what it is for\n"
        + rows + "\n.. toctree::\n   :hidden:\n\n   " + package + "\n"
    )
    for stale in out_dir.glob("*.rst"):
        if stale.name not in pages:
            stale.unlink()
    for fname, text in pages.items():
        path = out_dir / fname
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return names
