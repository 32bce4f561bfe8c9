"""The lessons and their handouts: student versions made by cutting out the solution blocks.

The lessons are jupytext percent scripts shipped inside the package, in ``minibnn/course/lessons/NN_name.py``
(:data:`LESSONS_DIR`; the one place they live). Each exercise has ONE identity, ``"L.N name"`` -- lesson number,
exercise number, name -- used in its heading (``### Exercise 2.1 — `ClippedSteSign.forward` (2 points)``), in
its solution block, in the stub's message, in its grader (:mod:`minibnn.course.graders`) and in the score report:

    def forward(self, x, clip_value=1.0):
        # BEGIN SOLUTION: 2.1 ClippedSteSign.forward
        return np.where(x >= 0, 1, -1).astype(x.dtype)
        # END SOLUTION

:func:`make` writes each lesson again with every block replaced by one line at the marker's indentation,

        raise NotImplementedError("exercise 2.1 ClippedSteSign.forward")

so a student's notebook runs up to the first exercise left undone.

Example:
    >>> source = '''def f(x):
    ...     # BEGIN SOLUTION: 7.1 double
    ...     return 2 * x
    ...     # END SOLUTION
    ... '''
    >>> text, n = strip_solutions(source)
    >>> print(text, end="")
    def f(x):
        raise NotImplementedError("exercise 7.1 double")
    >>> n
    1
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, List, NamedTuple, Optional, Tuple, Union

from ..atomic import atomic_write

__all__ = ["BEGIN", "END", "LESSONS_DIR", "Exercise", "parse_id", "lessons", "lesson_number", "exercises",
           "replace_solutions", "strip_solutions", "stub_line", "script_text", "make"]

BEGIN = "# BEGIN SOLUTION:"
END = "# END SOLUTION"
#: where the lessons live (shipped with the package)
LESSONS_DIR = Path(__file__).resolve().parent / "lessons"
LESSON_NAME = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.py$")
_ID = re.compile(r"^(\d+)\.(\d+) ([A-Za-z_][A-Za-z0-9_.]*)$")
PathLike = Union[str, "os.PathLike[str]"]


class Exercise(NamedTuple):
    """One exercise of a lesson: its identity ("2.1 ClippedSteSign.forward"), lesson file and lines (1-based)."""

    id: str
    lesson: str        # the lesson's file name, "02_quantizers.py"
    first_line: int
    last_line: int

    @property
    def number(self) -> Tuple[int, int]:
        """(lesson, exercise) numbers, for sorting: "2.10 x" comes after "2.9 y"."""
        return parse_id(self.id)[:2]


def parse_id(exercise_id: str) -> Tuple[int, int, str]:
    """("2.1 ClippedSteSign.forward") -> (2, 1, "ClippedSteSign.forward"); ValueError if it is not of that form."""
    match = _ID.match(exercise_id)
    if match is None:
        raise ValueError(f"parse_id: an exercise id is 'L.N name' (e.g. '2.1 ClippedSteSign.forward'), "
                         f"got {exercise_id!r}")
    return int(match.group(1)), int(match.group(2)), match.group(3)


def lesson_number(path: PathLike) -> int:
    """The lesson number of a lesson or submission file: "02_quantizers.py" (or .ipynb) -> 2."""
    name = Path(path).name
    match = re.match(r"^(\d\d)_[A-Za-z0-9_]+\.(py|ipynb)$", name)
    if match is None:
        raise ValueError(f"lesson_number: a lesson's file name is NN_name.py or NN_name.ipynb (e.g. "
                         f"02_quantizers.py), got {name!r}")
    return int(match.group(1))


def lessons(source: Optional[PathLike] = None) -> List[Path]:
    """The lesson files ``NN_name.py`` of ``source`` (default :data:`LESSONS_DIR`), in order."""
    folder = LESSONS_DIR if source is None else Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"lessons: {folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and LESSON_NAME.match(p.name))


def _blocks(text: str, where: str) -> List[Tuple[int, int, str, str]]:
    """(begin index, end index, indentation, exercise id) of every solution block, 0-based line indices.

    Raises ValueError (naming the line) for a BEGIN inside a block, an END outside one, a block never closed, an
    empty block, or a BEGIN without a valid exercise id.
    """
    blocks, open_at = [], None
    indent = title = ""
    for i, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if stripped.startswith("# BEGIN SOLUTION"):
            if open_at is not None:
                raise ValueError(f"{where}:{i + 1}: '# BEGIN SOLUTION' inside the block opened on line "
                                 f"{open_at + 1}; close it with '{END}' first")
            if not stripped.startswith(BEGIN):
                raise ValueError(f"{where}:{i + 1}: expected '{BEGIN} L.N name', got {stripped!r}")
            title = stripped[len(BEGIN):].strip()
            try:
                parse_id(title)
            except ValueError:
                raise ValueError(f"{where}:{i + 1}: expected '{BEGIN} L.N name' (e.g. '{BEGIN} 2.1 "
                                 f"ClippedSteSign.forward'), got {stripped!r}") from None
            open_at, indent = i, line[:len(line) - len(line.lstrip())]
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


def stub_line(exercise_id: str) -> str:
    """The student's placeholder: ``raise NotImplementedError("exercise 2.1 ClippedSteSign.forward")``."""
    return f'raise NotImplementedError("exercise {exercise_id}")'


def replace_solutions(text: str, replacement: Callable[[str], str], where: str = "<text>") -> Tuple[str, int]:
    """Replace each solution block by ``replacement(exercise_id)`` (one or more lines, indented like the block).

    Returns (the new text, the number of blocks replaced).
    """
    lines = text.splitlines(keepends=True)
    out, start = [], 0
    blocks = _blocks(text, where)
    for begin, end, indent, exercise_id in blocks:
        out.extend(lines[start:begin])
        out.extend(indent + line + "\n" for line in replacement(exercise_id).splitlines())
        start = end + 1
    out.extend(lines[start:])
    return "".join(out), len(blocks)


def strip_solutions(text: str, where: str = "<text>") -> Tuple[str, int]:
    """The student version of a lesson: each solution block replaced by :func:`stub_line`."""
    return replace_solutions(text, stub_line, where)


def exercises(path: PathLike) -> List[Exercise]:
    """The exercises of one lesson file; ValueError if an id's lesson number is not the file's."""
    path = Path(path)
    number = lesson_number(path)
    found = []
    for begin, end, _, exercise_id in _blocks(path.read_text(encoding="utf-8"), str(path)):
        if parse_id(exercise_id)[0] != number:
            raise ValueError(f"{path}:{begin + 1}: exercise {exercise_id!r} is in lesson {number}; its id must "
                             f"start with '{number}.'")
        found.append(Exercise(exercise_id, path.name, begin + 1, end + 1))
    return found


def script_text(path: PathLike) -> str:
    """The Python source of a lesson or submission: a .py file as it is, a .ipynb notebook through jupytext."""
    path = Path(path)
    if path.suffix == ".ipynb":
        try:
            import jupytext
        except ImportError:
            raise ImportError(f"reading the notebook {path.name} needs jupytext: pip install "
                              f"\"minibnn[course]\"") from None
        return jupytext.writes(jupytext.read(path), fmt="py:percent")
    return path.read_text(encoding="utf-8")


def make(out_dir: PathLike, source: Optional[PathLike] = None, notebooks: bool = False) -> List[Path]:
    """Write the student version of every lesson into ``out_dir`` (created if needed); return the files written.

    Args:
        out_dir: where the student files go (same names as the lessons).
        source: the lessons folder (default :data:`LESSONS_DIR`).
        notebooks: also write each as a Jupyter notebook ``NN_name.ipynb`` (needs jupytext).
    """
    files = lessons(source)
    if not files:
        raise FileNotFoundError(f"make: no lesson files NN_name.py in {source or LESSONS_DIR}")
    if notebooks:
        try:
            import jupytext
        except ImportError:
            raise ImportError("make --notebooks needs jupytext: pip install \"minibnn[course]\"") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.resolve() == p.parent.resolve() for p in files):
        raise ValueError(f"make: out_dir {out} is the lessons folder itself; the solutions would be overwritten")
    written = []
    for path in files:
        text, _ = strip_solutions(path.read_text(encoding="utf-8"), str(path))
        targets = [(out / path.name, text)]
        if notebooks:
            targets.append((out / (path.stem + ".ipynb"),
                            jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="ipynb")))
        for target, content in targets:
            with atomic_write(target, "w") as f:
                f.write(content)
            written.append(target)
    return written
