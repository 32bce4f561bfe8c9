"""minibnn's docstrings write formulas as plain text, read as such in ``help()``; this makes them valid reST too.

Two habits of plain-text math clash with reStructuredText, and are translated here, before autodoc renders a
docstring (after napoleon has turned ``Args:``/``Returns:`` into fields):

* ``|x|`` (an absolute value, a norm) would be a substitution reference: every ``|`` outside inline literals,
  doctests and literal blocks is escaped;
* a formula on its own, indented line under the sentence that introduces it would be an "unexpected
  indentation" or a definition list: a blank line is put where the indentation of plain text changes, so the
  formula becomes an indented block;
* napoleon turns ``Attributes: a, b: text`` into ``:ivar a, b:``, which reST reads as type ``a,`` and name
  ``b``: the names are joined (``a,b``);
* a plural of a literal (````Subset````\\ ``s``) would be an unterminated literal: it gets reST's escaped space.

Module-level data and attributes documented with ``#:`` comments are plain sentences ("Darabi et al.'s Table 1
(CIFAR-10 top-1 %): ..."): napoleon would read the text before the first colon as a type, so it is not run on
them.

Everything else (roles, fields, lists, doctests, literal blocks) is left as written, so genuine reST mistakes
still fail the ``-W`` build.
"""
import re

LITERAL = re.compile(r"``(?:(?!``).)+``(?=([A-Za-z])?)")
PIPE = re.compile(r"(``.*?``|:[a-z:]+:`[^`]*`|`[^`]*`_?)|(?<!\\)\|")
STRUCTURE = re.compile(r"^\s*(:[^:]+:|[-*+] |\d+[.)] |#\. |\.\. |>>>|\.\.\.|\+[-=+]+\+|=+(\s+=+)*\s*$|-+(\s+-+)*\s*$)")


def _indent(line):
    return len(line) - len(line.lstrip())


def _escape_pipes(line):
    return PIPE.sub(lambda m: m.group(1) if m.group(1) else r"\|", line)


def _table_lines(lines):
    """Indices of the lines inside reST tables (simple: ``===  ===`` borders; grid: ``+---+`` and ``|`` rows)."""
    inside, i = set(), 0
    simple_border = re.compile(r"^\s*=+(\s+=+)+\s*$")
    while i < len(lines):
        if simple_border.match(lines[i]):
            borders, j = 1, i + 1
            while j < len(lines) and borders < 3:
                if simple_border.match(lines[j]):
                    borders += 1
                    if j + 1 >= len(lines) or not lines[j + 1].strip():
                        break
                j += 1
            inside.update(range(i, j + 1))
            i = j + 1
        elif re.match(r"^\s*\+[-=+]+\+\s*$", lines[i]):
            j = i
            while j < len(lines) and lines[j].lstrip()[:1] in ("+", "|"):
                j += 1
            inside.update(range(i, j))
            i = j
        else:
            i += 1
    return inside


IVAR_NAMES = re.compile(r"^(\s*:ivar )([\w, ]+?):")


def plain_math(lines):
    """Rewrite ``lines`` (a docstring, after napoleon) in place; see the module docstring."""
    out, literal_indent, in_doctest, prev = [], None, False, None
    tables = _table_lines(lines)
    for number, line in enumerate(lines):
        stripped = line.strip()
        line = IVAR_NAMES.sub(lambda m: m.group(1) + m.group(2).replace(", ", ",") + ":", line)
        if number in tables:
            out.append(line)
            prev = None
            continue
        if not stripped:
            in_doctest = False
            out.append(line)
            prev = None if literal_indent is None else prev
            continue
        indent = _indent(line)
        if literal_indent is not None:
            if indent > literal_indent:
                out.append(line)
                continue
            literal_indent = None
        if stripped.startswith(">>>") or in_doctest:
            in_doctest = True
            out.append(line)
            prev = None
            continue
        if (prev is not None and indent != _indent(prev) and not STRUCTURE.match(prev)
                and not STRUCTURE.match(line) and not prev.rstrip().endswith("::")):
            out.append("")
        out.append(LITERAL.sub(lambda m: m.group(0) + ("\\ " if m.group(1) else ""), _escape_pipes(line)))
        if stripped.endswith("::"):
            literal_indent = indent
        prev = line
    lines[:] = out


def process(app, what, name, obj, options, lines):
    if name.startswith("minibnn"):
        plain_math(lines)


def _no_napoleon_on_data(napoleon_process):
    def process_docstring(app, what, name, obj, options, lines):
        if what in ("data", "attribute", "property") and name.startswith("minibnn"):
            return
        napoleon_process(app, what, name, obj, options, lines)
    return process_docstring


def setup(app):
    import sphinx.ext.napoleon as napoleon
    if "sphinx.ext.napoleon" in app.extensions:
        raise RuntimeError("docs: list plain_math before sphinx.ext.napoleon in conf.py's extensions")
    app.setup_extension("sphinx.ext.autodoc")
    napoleon._process_docstring = _no_napoleon_on_data(napoleon._process_docstring)
    app.connect("autodoc-process-docstring", process, priority=600)   # after napoleon (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
