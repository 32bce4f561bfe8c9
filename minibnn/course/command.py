"""The command line of the course: ``minibnn assignments list | make | grade`` (also ``python -m minibnn.course``).

    minibnn assignments list                          # the lessons, their exercises and points
    minibnn assignments make handout/ [--notebooks]   # the student versions of every lesson
    minibnn assignments grade alice/                  # a score table for one student (folder or one file)
    minibnn assignments grade class/                  # one subfolder per student -> class/gradebook.csv
    minibnn assignments grade alice/ --format gradescope --out /autograder/results/results.json

``grade`` exits with status 0 when something was graded, 1 when no lesson file was found (it then names the file
names it looked for), 2 for a usage error. ``--verbose`` adds each failed exercise's traceback and the
submission's own output.

For the ``minibnn`` command: ``add_arguments(parser)`` declares the options and ``run(args)`` runs them.

Example:
    >>> main(["list"])  # doctest: +ELLIPSIS
    lesson...exercises
    01_autograd.py...1.1 Softplus.backward (2 points), 1.2 Hypot.backward (2 points)
    ...
    11 lessons, 26 exercises, ...
    0
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from .graders import GRADERS
from .grading import (expected_names, find_submission_files, format_table, grade, grade_class, gradebook_csv,
                      gradescope_json, is_class_folder, write_text)
from .handout import LESSONS_DIR, exercises, lessons, make

__all__ = ["add_arguments", "run", "main", "HELP", "Assignments"]

HELP = "the course: list the lessons' exercises, make the student handout, grade a student or a class"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``list``, ``make`` and ``grade`` on ``parser`` (the ``minibnn assignments`` subparser)."""
    commands = parser.add_subparsers(dest="course_command", metavar="{list,make,grade}", required=True)
    commands.add_parser("list", help="the lessons, their exercises and points")
    p_make = commands.add_parser("make", help="write the student versions of the lessons into OUT_DIR")
    p_make.add_argument("out_dir")
    p_make.add_argument("--notebooks", action="store_true", help="also write .ipynb notebooks")
    p_grade = commands.add_parser("grade", help="grade a student's folder or file, or a class folder")
    p_grade.add_argument("submission", help="a student's folder of lesson files (NN_name.py or .ipynb), one such "
                         "file, or a class folder with one subfolder per student")
    p_grade.add_argument("--lessons", help="lesson numbers to grade, e.g. 1,2,6 (default: those handed in)")
    p_grade.add_argument("--exercise", action="append", help="grade only this exercise (its id or number, "
                         "e.g. 2.1); may be repeated")
    p_grade.add_argument("--format", choices=("table", "csv", "gradescope"), default=None,
                         help="table (one student, the default), csv (the default for a class) or gradescope "
                         "(results.json for one student)")
    p_grade.add_argument("--out", help="the file to write (csv: default CLASS/gradebook.csv; gradescope: "
                         "default results.json)")
    p_grade.add_argument("--timeout", type=float, default=60.0, help="seconds per exercise (default 60)")
    p_grade.add_argument("--verbose", action="store_true", help="print each failure's full traceback")


def _exercise_ids(wanted: Optional[Sequence[str]]) -> Optional[List[str]]:
    if not wanted:
        return None
    ids = []
    for w in wanted:
        matches = [i for i in GRADERS if i == w or i.split()[0] == w]
        if not matches:
            raise ValueError(f"no exercise {w!r}; see 'list'")
        ids += matches
    return ids


def _points(n: int) -> str:
    return f"{n} point" if n == 1 else f"{n} points"


def _list() -> int:
    rows = [(p.name, ", ".join(f"{e.id} ({_points(GRADERS[e.id].points)})" for e in exercises(p))) for p in lessons()]
    width = max(len(name) for name, _ in rows) + 2
    print(f"{'lesson':<{width + 1}}exercises")
    for name, text in rows:
        print(f"{name:<{width + 1}}{text}")
    count = sum(len(exercises(p)) for p in lessons())
    print(f"{len(rows)} lessons, {count} exercises, {sum(g.points for g in GRADERS.values())} points "
          f"(sources: {LESSONS_DIR})")
    return 0


def _grade(args: argparse.Namespace) -> int:
    numbers = [int(n) for n in args.lessons.split(",")] if args.lessons else None
    only = _exercise_ids(args.exercise)
    target = Path(args.submission)
    if not target.exists():
        raise FileNotFoundError(f"no submission at {target}")
    if is_class_folder(target):
        if args.format == "gradescope":
            raise ValueError("--format gradescope grades one student; give a student's folder")
        reports = grade_class(target, numbers, only, args.timeout)
        for report in reports:
            print(f"{report.name:<24} {report.score:>4}/{report.points}")
            if args.verbose:
                print(format_table(report, verbose=True), "\n")
        out = Path(args.out) if args.out else target / "gradebook.csv"
        write_text(out, gradebook_csv(reports))
        print(f"wrote {out} ({len(reports)} students)")
        return 0
    report = grade(target, numbers, only, args.timeout) if find_submission_files(target) else None
    if report is None or not report.results:
        looked = ", ".join(expected_names(numbers))
        print(f"minibnn assignments grade: nothing graded in {target}: no lesson file found; looked for "
              f"{looked} (or, in a class folder, one subfolder per student holding them)", file=sys.stderr)
        return 1
    if args.format == "gradescope":
        out = Path(args.out or "results.json")
        write_text(out, gradescope_json(report))
        print(f"wrote {out}: {report.score}/{report.points}")
    elif args.format == "csv":
        text = gradebook_csv([report])
        write_text(args.out, text) if args.out else print(text, end="")
    else:
        print(format_table(report, verbose=args.verbose))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the parsed ``minibnn assignments`` command; return the exit status."""
    try:
        if args.course_command == "list":
            return _list()
        if args.course_command == "make":
            written = make(args.out_dir, notebooks=args.notebooks)
            print(f"wrote {len(written)} files to {args.out_dir} "
                  f"({sum(len(exercises(p)) for p in lessons())} exercises to do)")
            return 0
        return _grade(args)
    except (FileNotFoundError, ValueError, ImportError) as error:
        print(f"minibnn assignments {args.course_command}: error: {error}", file=sys.stderr)
        return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m minibnn.course ARGS``: the same as ``minibnn assignments ARGS``."""
    parser = argparse.ArgumentParser(prog="minibnn assignments", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


_EXAMPLES = __doc__.split("\n\n")[1]   # the usage lines at the top of this module


class Assignments:
    """The subcommand ``minibnn assignments`` (registered in :mod:`minibnn.cli`): this module's options and run."""

    help = HELP
    epilog = _EXAMPLES
    add_arguments = staticmethod(add_arguments)
    run = staticmethod(run)
