"""Assignments: the student versions of the tutorials, made by cutting out their solution blocks.

A tutorial (``tutorials/NN_name.py``, a jupytext percent script) marks the answer of each exercise:

    def backward(self, grad):
        # BEGIN SOLUTION: Softplus.backward
        return grad * sigmoid(self.x)
        # END SOLUTION

:func:`make` writes every tutorial again with each block replaced by one line at the marker's indentation,

        raise NotImplementedError("exercise 01: Softplus.backward")

so a student's notebook runs up to the first exercise left undone. The text after ``BEGIN SOLUTION:`` names
the exercise; the step (``01``) is the tutorial's number. Tutorials without a block are copied unchanged.

Grading is done by the tests of ``tests/test_assignments.py``, each tagged ``@pytest.mark.assignment("NN")``.
They read the submission named by the environment variable ``MINIBNN_SUBMISSION`` (a student's file, .py or
.ipynb, or a folder of them; without it, the tutorials themselves, i.e. the solutions) through
:func:`load_definitions`, which runs only the file's imports, functions and classes, so each exercise is graded
on its own even when another one is unfinished. :func:`grade` runs that test file on a submission.

Command line:

    python -m minibnn.assignments list                  # the solution blocks of each tutorial
    python -m minibnn.assignments make OUT_DIR          # write the student versions (add --notebooks for .ipynb)
    python -m minibnn.assignments grade SUBMISSION      # run the graders on a student's file or folder

Example:
    >>> source = '''def f(x):
    ...     # BEGIN SOLUTION: double it
    ...     return 2 * x
    ...     # END SOLUTION
    ... '''
    >>> text, n = strip_solutions(source, step="01")
    >>> print(text, end="")
    def f(x):
        raise NotImplementedError("exercise 01: double it")
    >>> n
    1
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union
from .atomic import atomic_write

__all__ = ["BEGIN", "END", "ENV_VAR", "Exercise", "strip_solutions", "exercises", "find_tutorials", "step_of",
           "script_text", "default_source", "make", "load_definitions", "submission_path", "grade", "main"]

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
#: the environment variable the graders read: a student's file, or a folder holding one file per step
ENV_VAR = "MINIBNN_SUBMISSION"

_TUTORIAL_NAME = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.py$")
_SUBMISSION_NAME = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.(py|ipynb)$")
PathLike = Union[str, "os.PathLike[str]"]


class Exercise(NamedTuple):
    """One solution block: its step ("01"), its title, and its lines in the source (1-based, markers included)."""

    step: str
    title: str
    first_line: int
    last_line: int


def _blocks(text: str, where: str) -> List[Tuple[int, int, str, str]]:
    """(begin index, end index, indentation, title) of every block of ``text``, 0-based line indices.

    Raises ValueError for a BEGIN inside a block, an END outside one, a BEGIN never closed, or an empty block.
    """
    blocks, open_at = [], None
    indent = title = ""
    for i, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if open_at is not None:
                raise ValueError(f"{where}:{i + 1}: '{BEGIN}' inside the block opened on line {open_at + 1}; "
                                 f"close it with '{END}' first")
            rest = stripped[len(BEGIN):].strip()
            if rest and not rest.startswith(":"):
                raise ValueError(f"{where}:{i + 1}: expected '{BEGIN}' or '{BEGIN}: title', got {stripped!r}")
            open_at, indent, title = i, line[:len(line) - len(line.lstrip())], rest[1:].strip()
        elif stripped.startswith(END):
            if open_at is None:
                raise ValueError(f"{where}:{i + 1}: '{END}' without a '{BEGIN}' before it")
            if i == open_at + 1:
                raise ValueError(f"{where}:{open_at + 1}: the solution block is empty")
            blocks.append((open_at, i, indent, title))
            open_at = None
    if open_at is not None:
        raise ValueError(f"{where}:{open_at + 1}: '{BEGIN}' is never closed by '{END}'")
    return blocks


def step_of(path: PathLike) -> str:
    """The step of a tutorial or submission: the two digits its name starts with ("01_autograd.py" -> "01")."""
    name = Path(path).name
    match = _SUBMISSION_NAME.match(name)
    if match is None:
        raise ValueError(f"step_of: a tutorial's file name is NN_name.py or NN_name.ipynb (e.g. 01_autograd.py), "
                         f"got {name!r}")
    return match.group(1)


def script_text(path: PathLike) -> str:
    """The Python source of a submission: a .py file as it is, a .ipynb notebook converted by jupytext."""
    path = Path(path)
    if path.suffix == ".ipynb":
        try:
            import jupytext
        except ImportError:
            raise ImportError(f"reading the notebook {path.name} needs jupytext: pip install jupytext") from None
        return jupytext.writes(jupytext.read(path), fmt="py:percent")
    return path.read_text(encoding="utf-8")


def strip_solutions(text: str, step: str = "", where: str = "<text>") -> Tuple[str, int]:
    """Replace each solution block of ``text`` by ``raise NotImplementedError("exercise STEP: TITLE")``.

    Args:
        text: the source of a tutorial.
        step: the step named in the placeholders ("01").
        where: how errors name the source (a file name).

    Returns:
        (the student version, the number of blocks replaced).

    Raises:
        ValueError: for badly nested or unclosed markers, naming the line.
    """
    lines = text.splitlines(keepends=True)
    out, start = [], 0
    blocks = _blocks(text, where)
    for begin, end, indent, title in blocks:
        out.extend(lines[start:begin])
        label = f"exercise {step}".strip() if step else "exercise"
        message = f"{label}: {title}" if title else label
        quoted = '"' + message.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(f"{indent}raise NotImplementedError({quoted})\n")
        start = end + 1
    out.extend(lines[start:])
    return "".join(out), len(blocks)


def exercises(path: PathLike) -> List[Exercise]:
    """The exercises (solution blocks) of one tutorial file."""
    path = Path(path)
    step = step_of(path)
    text = path.read_text(encoding="utf-8")
    return [Exercise(step, title or "(untitled)", b + 1, e + 1) for b, e, _, title in _blocks(text, str(path))]


def default_source() -> Path:
    """The ``tutorials/`` folder next to the package (present in a source checkout or an editable install)."""
    folder = Path(__file__).resolve().parent.parent / "tutorials"
    if not folder.is_dir():
        raise FileNotFoundError(f"no tutorials folder at {folder} (minibnn is installed without its sources); "
                                f"pass the folder explicitly (--source DIR)")
    return folder


def find_tutorials(source: Optional[PathLike] = None) -> List[Path]:
    """The tutorial files ``NN_name.py`` of ``source`` (default :func:`default_source`), sorted by step."""
    folder = default_source() if source is None else Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"find_tutorials: {folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and _TUTORIAL_NAME.match(p.name))


def _write_atomic(path: Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def make(out_dir: PathLike, source: Optional[PathLike] = None, notebooks: bool = False) -> List[Path]:
    """Write the student version of every tutorial of ``source`` into ``out_dir`` (created if needed).

    Args:
        out_dir: where the student files go (same names as the tutorials).
        source: the tutorials folder (default :func:`default_source`).
        notebooks: also write each as a Jupyter notebook ``NN_name.ipynb`` (needs jupytext).

    Returns:
        The files written.
    """
    tutorials = find_tutorials(source)
    if not tutorials:
        raise FileNotFoundError(f"make: no tutorial files NN_name.py in {source or default_source()}")
    if notebooks:
        try:
            import jupytext
        except ImportError:
            raise ImportError("make(notebooks=True) needs jupytext: pip install jupytext") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.resolve() == p.parent.resolve() for p in tutorials):
        raise ValueError(f"make: out_dir {out} is the tutorials folder itself; the solutions would be overwritten")
    written = []
    for path in tutorials:
        text, _ = strip_solutions(path.read_text(encoding="utf-8"), step_of(path), str(path))
        target = out / path.name
        _write_atomic(target, text)
        written.append(target)
        if notebooks:
            notebook = out / (path.stem + ".ipynb")
            _write_atomic(notebook, jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="ipynb"))
            written.append(notebook)
    return written


_KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _is_constant(node: ast.stmt) -> bool:
    """An assignment to UPPER_CASE names only (a constant the definitions may use)."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) \
        else []
    return bool(targets) and all(isinstance(t, ast.Name) and t.id.isupper() for t in targets)


def load_definitions(path: PathLike, module_name: Optional[str] = None) -> types.ModuleType:
    """Run only the imports, functions, classes and UPPER_CASE constants of a script; return them as a module.

    This is how a grader reads a notebook: the cells that train, plot or call an unfinished exercise are not
    run, so each exercise is tested on its own.

    Args:
        path: a Python file (a tutorial or a student's version of it), or a .ipynb notebook (via jupytext).
        module_name: the module's name (default ``minibnn_submission_<file stem>``).

    Raises:
        SyntaxError: if the file does not parse (with the file name and line).
    """
    path = Path(path)
    tree = ast.parse(script_text(path), filename=str(path))
    tree.body = [node for node in tree.body if isinstance(node, _KEPT) or _is_constant(node)]
    name = module_name or f"minibnn_submission_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    previous = sys.modules.get(name)
    sys.modules[name] = module  # classes (dataclasses, typing) look their module up while being created
    try:
        exec(compile(tree, str(path), "exec"), module.__dict__)
    except BaseException:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
        raise
    return module


def submission_path(step: str, source: Optional[PathLike] = None,
                    submission: Optional[PathLike] = None) -> Optional[Path]:
    """The file to grade for ``step``.

    ``submission`` (default: the environment variable ``MINIBNN_SUBMISSION``) may be
    a file (``.py``, or a ``.ipynb`` notebook): graded if its name starts with the step (``01_...``), else
    None (it belongs to another step);
    a folder: its file ``NN_*.py`` for the step, else its notebook ``NN_*.ipynb`` (FileNotFoundError if
    there is neither);
    unset: the tutorial itself, from ``source`` (the solutions).
    """
    if submission is None:
        submission = os.environ.get(ENV_VAR) or None
    if submission is None:
        matches = [p for p in find_tutorials(source) if step_of(p) == step]
        if not matches:
            raise FileNotFoundError(f"submission_path: no tutorial for step {step} in {source or default_source()}")
        return matches[0]
    path = Path(submission)
    if path.is_dir():
        matches = sorted(p for p in path.glob(f"{step}_*") if _SUBMISSION_NAME.match(p.name))
        matches.sort(key=lambda p: p.suffix != ".py")       # a script before a notebook
        if not matches:
            raise FileNotFoundError(f"{ENV_VAR}={path} is a folder without a file {step}_*.py or {step}_*.ipynb "
                                    f"for step {step}")
        return matches[0]
    if not path.is_file():
        raise FileNotFoundError(f"{ENV_VAR}={path}: no such file or folder")
    return path if path.name.startswith(f"{step}_") else None


def _default_tests() -> Path:
    return Path(__file__).resolve().parent.parent / "tests" / "test_assignments.py"


def grade(submission: PathLike, tests: Optional[PathLike] = None, extra_args: Sequence[str] = ()) -> int:
    """Run the graders (pytest, tests tagged ``assignment``) on a student's file or folder; return pytest's code.

    Args:
        submission: a student's file (only its step is graded) or a folder of them (every step).
        tests: the grader file (default ``tests/test_assignments.py`` of the source checkout).
        extra_args: more pytest arguments (e.g. ``["-k", "step01"]``, ``["-x"]``).
    """
    if not Path(submission).exists():
        raise FileNotFoundError(f"grade: no submission at {submission} (expected a file NN_name.py / .ipynb or a "
                                f"folder of them)")
    tests = Path(tests) if tests is not None else _default_tests()
    if not tests.is_file():
        raise FileNotFoundError(f"grade: no grader file at {tests}; pass --tests PATH")
    env = dict(os.environ)
    env[ENV_VAR] = str(Path(submission).resolve())
    command = [sys.executable, "-m", "pytest", str(tests), "-m", "assignment", "-p", "no:cacheprovider",
               *extra_args]
    return subprocess.call(command, env=env)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line: ``list``, ``make OUT_DIR`` and ``grade SUBMISSION``."""
    parser = argparse.ArgumentParser(prog="python -m minibnn.assignments",
                                     description="Student versions of the minibnn tutorials, and their graders.")
    commands = parser.add_subparsers(dest="command", required=True)
    p_list = commands.add_parser("list", help="list the exercises of each tutorial")
    p_list.add_argument("--source", help="the tutorials folder (default: the one next to the package)")
    p_make = commands.add_parser("make", help="write the student versions into OUT_DIR")
    p_make.add_argument("out_dir")
    p_make.add_argument("--source", help="the tutorials folder (default: the one next to the package)")
    p_make.add_argument("--notebooks", action="store_true", help="also write .ipynb notebooks (needs jupytext)")
    p_grade = commands.add_parser("grade", help="run the graders on a student's file or folder")
    p_grade.add_argument("submission")
    p_grade.add_argument("--tests", help="the grader file (default: tests/test_assignments.py)")
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "grade":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return _run(args, rest)
    except (FileNotFoundError, ValueError, ImportError) as error:
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, rest: Sequence[str]) -> int:
    if args.command == "list":
        for path in find_tutorials(args.source):
            found = exercises(path)
            print(f"{path.name}: {len(found)} solution block{'s' if len(found) != 1 else ''}")
            for e in found:
                print(f"    line {e.first_line}: {e.title}")
        return 0
    if args.command == "make":
        written = make(args.out_dir, args.source, args.notebooks)
        total = sum(len(exercises(p)) for p in find_tutorials(args.source))
        print(f"wrote {len(written)} files to {args.out_dir} ({total} solution blocks replaced)")
        return 0
    return grade(args.submission, args.tests, rest)


if __name__ == "__main__":
    sys.exit(main())
