"""Grading a student, or a class: a score per exercise, a table, a CSV gradebook, Gradescope's results.json.

A submission is a student's folder of lesson files (``02_quantizers.py`` or ``02_quantizers.ipynb``: any name
starting with the lesson's two digits) or one such file. For each exercise of each lesson found:

1. :func:`minibnn.course.guard.forbid` turns the library functions that implement the answer into traps;
2. :func:`load_definitions` runs only the file's imports, functions, classes and UPPER_CASE constants (not its
   training or plotting cells), so each exercise is graded on its own;
3. the exercise's grader (:data:`minibnn.course.graders.GRADERS`) runs; full points if it passes and no trap
   was called, else 0 with a one-line feedback.

Each student is graded in a fresh Python process (:func:`_worker`), so one student's code
can't affect another's grade or hang the class: a grader that runs longer than ``timeout`` seconds scores 0.

Example:
    >>> from minibnn.course.handout import LESSONS_DIR
    >>> report = grade(LESSONS_DIR / "05_checking_theory.py")       # the solutions score full marks
    >>> [(r.id, r.score, r.points) for r in report.results]
    [('5.1 transformed_bernoulli_variance', 1, 1), ('5.2 binary_dot_variance', 2, 2)]
"""
from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import traceback
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from ..atomic import atomic_write
from .graders import GRADERS
from .guard import SUBMISSION_PREFIX, ForbiddenCall, forbid
from .handout import LESSON_NAME, exercises, lesson_number, lessons, script_text

__all__ = ["ExerciseResult", "Report", "load_definitions", "find_submission_files", "expected_names",
           "grade", "grade_class", "is_class_folder", "format_table", "gradebook_csv", "gradescope_json"]

PathLike = Union[str, "os.PathLike[str]"]
_SUBMISSION_FILE = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.(py|ipynb)$")
_KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass
class ExerciseResult:
    """The grade of one exercise: id, score out of points, a one-line feedback and the full log."""

    id: str
    points: int
    score: int
    feedback: str
    log: str = ""


@dataclass
class Report:
    """The grades of one student (``name``): one :class:`ExerciseResult` per exercise graded."""

    name: str
    results: List[ExerciseResult] = field(default_factory=list)
    files: List[str] = field(default_factory=list)
    looked_for: List[str] = field(default_factory=list)
    output: str = ""

    @property
    def score(self) -> int:
        return sum(r.score for r in self.results)

    @property
    def points(self) -> int:
        return sum(r.points for r in self.results)


def _is_constant(node: ast.stmt) -> bool:
    """An assignment to UPPER_CASE names only (a constant the definitions may use)."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) \
        else []
    return bool(targets) and all(isinstance(t, ast.Name) and t.id.isupper() for t in targets)


def load_definitions(path: PathLike, module_name: Optional[str] = None) -> types.ModuleType:
    """Run only the imports, functions, classes and UPPER_CASE constants of a script; return them as a module.

    Args:
        path: a Python file (a lesson or a student's version of it), or a .ipynb notebook (via jupytext).
        module_name: the module's name; it must start with ``minibnn_submission_`` (the default,
            ``minibnn_submission_<file stem>``) for the traps of :mod:`minibnn.course.guard` to see its calls.

    Raises:
        SyntaxError: if the file does not parse (with the file name and line).
    """
    path = Path(path)
    tree = ast.parse(script_text(path), filename=str(path))
    tree.body = [node for node in tree.body if isinstance(node, _KEPT) or _is_constant(node)]
    name = module_name or SUBMISSION_PREFIX + re.sub(r"[^0-9A-Za-z_]", "_", path.stem)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module      # classes (dataclasses, typing) look their module up while being created
    try:
        exec(compile(tree, str(path), "exec"), module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def expected_names(numbers: Optional[Sequence[int]] = None) -> List[str]:
    """The file names a submission may use for the lessons ``numbers`` (default: every lesson)."""
    names = []
    for path in lessons():
        if numbers is None or lesson_number(path) in numbers:
            names += [path.name, path.stem + ".ipynb"]
    return names


def find_submission_files(submission: PathLike) -> Dict[int, Path]:
    """lesson number -> the file to grade, in a student's folder (or for a single file: its own lesson).

    A folder may hold ``NN_anything.py`` or ``NN_anything.ipynb``; a script wins over a notebook.
    """
    path = Path(submission)
    if path.is_file():
        if not _SUBMISSION_FILE.match(path.name):
            return {}
        return {lesson_number(path): path}
    if not path.is_dir():
        raise FileNotFoundError(f"grade: no submission at {path} (expected a student's folder of lesson files, a "
                                f"class folder of such folders, or one file NN_name.py / NN_name.ipynb)")
    found: Dict[int, Path] = {}
    for p in sorted(path.iterdir(), key=lambda p: (p.name[:2], p.suffix != ".py", p.name)):
        if p.is_file() and _SUBMISSION_FILE.match(p.name):
            found.setdefault(lesson_number(p), p)
    return found


def is_class_folder(path: PathLike) -> bool:
    """A folder without lesson files of its own whose subfolders hold some: one subfolder per student."""
    path = Path(path)
    return path.is_dir() and not find_submission_files(path) and any(
        sub.is_dir() and find_submission_files(sub) for sub in path.iterdir())


def _feedback(error: BaseException, exercise_id: str) -> str:
    if isinstance(error, NotImplementedError):
        text = str(error)
        if text == f"exercise {exercise_id}":
            return f"not done yet: the stub of {exercise_id} still raises NotImplementedError"
        if text.startswith("exercise "):
            return f"needs {text[len('exercise '):]} first (its stub still raises NotImplementedError)"
        return f"NotImplementedError: {text}"
    first = (str(error).strip().splitlines() or [""])[0]
    if isinstance(error, AssertionError):
        return first or "a check failed (no message)"
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


class _Timeout(Exception):
    pass


def _alarm(seconds: float):
    if not hasattr(signal, "setitimer"):
        return None

    def handler(signum, frame):
        raise _Timeout(f"stopped after {seconds:g} s")
    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return previous


def _grade_exercise(exercise_id: str, path: Path, timeout: float) -> ExerciseResult:
    grader = GRADERS[exercise_id]
    name = SUBMISSION_PREFIX + re.sub(r"[^0-9A-Za-z_]", "_", f"{path.stem}_{exercise_id}")
    previous = _alarm(timeout)
    try:
        with forbid(exercise_id) as calls:
            try:
                grader.check(load_definitions(path, name))
                error = None
            except BaseException as caught:       # noqa: B902  a submission may raise anything, even SystemExit
                if isinstance(caught, KeyboardInterrupt):
                    raise
                error = caught
    finally:
        if previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        sys.modules.pop(name, None)
    log = "".join(traceback.format_exception(type(error), error, error.__traceback__)) if error else ""
    if calls:
        used = ", ".join(dict.fromkeys(calls))
        return ExerciseResult(exercise_id, grader.points, 0, f"calls {used}, minibnn's own answer to this "
                              f"exercise: write it yourself", log)
    if error is None:
        return ExerciseResult(exercise_id, grader.points, grader.points, "ok")
    if isinstance(error, ForbiddenCall):
        return ExerciseResult(exercise_id, grader.points, 0, str(error), log)
    if isinstance(error, _Timeout):
        return ExerciseResult(exercise_id, grader.points, 0, f"too slow: {error}", log)
    return ExerciseResult(exercise_id, grader.points, 0, _feedback(error, exercise_id), log)


def _grade_here(submission: PathLike, numbers: Optional[Sequence[int]], only: Optional[Sequence[str]],
                timeout: float) -> Report:
    """Grade in this process (what the worker process runs)."""
    path = Path(submission)
    files = find_submission_files(path)
    wanted = sorted(files) if numbers is None else [n for n in numbers if n in files]
    report = Report(path.name, files=[files[n].name for n in wanted], looked_for=expected_names(numbers))
    for lesson in lessons():
        n = lesson_number(lesson)
        if n not in wanted:
            continue
        for ex in exercises(lesson):
            if only is None or ex.id in only:
                report.results.append(_grade_exercise(ex.id, files[n], timeout))
    return report


def grade(submission: PathLike, lessons_to_grade: Optional[Sequence[int]] = None,
          exercise_ids: Optional[Sequence[str]] = None, timeout: float = 60.0, isolated: bool = True) -> Report:
    """Grade one student's folder (or one file) and return the :class:`Report`.

    Args:
        submission: a folder of lesson files, or one file ``NN_name.py`` / ``.ipynb``.
        lessons_to_grade: lesson numbers to grade (default: every lesson with a file in the submission). A
            lesson asked for but not found scores 0 on each of its exercises.
        exercise_ids: only these exercises (e.g. ``["2.1 ClippedSteSign.forward"]``).
        timeout: seconds allowed to each exercise's grader.
        isolated: grade in a fresh Python process (the default; ``False`` grades in this one).
    """
    path = Path(submission)
    if not path.exists():
        raise FileNotFoundError(f"grade: no submission at {path}")
    if isolated:
        report = _grade_in_subprocess(path, lessons_to_grade, exercise_ids, timeout)
    else:
        report = _grade_here(path, lessons_to_grade, exercise_ids, timeout)
    if lessons_to_grade is not None:                       # asked for but missing: 0 on each exercise
        graded = {r.id for r in report.results}
        for lesson in lessons():
            if lesson_number(lesson) in lessons_to_grade:
                for ex in exercises(lesson):
                    if ex.id not in graded and (exercise_ids is None or ex.id in exercise_ids):
                        report.results.append(ExerciseResult(ex.id, GRADERS[ex.id].points, 0,
                                                             f"missing: no file {lesson.name} (or .ipynb)"))
        report.results.sort(key=lambda r: tuple(int(v) for v in r.id.split()[0].split(".")))
    return report


def _grade_in_subprocess(path: Path, numbers, only, timeout: float) -> Report:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        command = [sys.executable, "-c", _WORKER_CODE, str(path.resolve()), str(out), "--timeout", str(timeout)]
        if numbers is not None:
            command += ["--lessons", ",".join(str(n) for n in numbers)]
        if only is not None:
            command += ["--exercises", json.dumps(list(only))]
        env = dict(os.environ, MPLBACKEND="Agg")
        package_parent = str(Path(__file__).resolve().parents[2])       # the worker imports this very minibnn
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        limit = timeout * (len(GRADERS) + 2)
        try:
            done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=limit)
            output = done.stdout + done.stderr
        except subprocess.TimeoutExpired as expired:
            done, output = None, f"grading stopped after {limit:g} s\n{expired.stdout or ''}{expired.stderr or ''}"
        if done is None or not out.is_file():
            report = Report(path.name, looked_for=expected_names(numbers), output=output)
            report.results = [ExerciseResult("?", 0, 0, "the grader could not run: " +
                                             (output.strip().splitlines() or ["no output"])[-1], output)]
            return report
        data = json.loads(out.read_text(encoding="utf-8"))
    results = [ExerciseResult(**r) for r in data.pop("results")]
    return Report(results=results, output=output, **data)


def grade_class(folder: PathLike, lessons_to_grade: Optional[Sequence[int]] = None,
                exercise_ids: Optional[Sequence[str]] = None, timeout: float = 60.0) -> List[Report]:
    """Grade every student subfolder of ``folder`` (sorted by name); every report covers the same exercises."""
    folder = Path(folder)
    students = sorted(p for p in folder.iterdir() if p.is_dir() and find_submission_files(p))
    if lessons_to_grade is None:                 # the lessons anybody handed in: the same columns for everyone
        lessons_to_grade = sorted({n for s in students for n in find_submission_files(s)})
    return [grade(s, lessons_to_grade, exercise_ids, timeout) for s in students]


def format_table(report: Report, verbose: bool = False) -> str:
    """The score table of one student: exercise, points, feedback; then the total (and logs if ``verbose``)."""
    width = max([len(r.id) for r in report.results] + [8])
    lines = [f"{report.name}: graded {', '.join(report.files) or 'nothing'}", "",
             f"{'exercise':<{width}}  {'points':>7}  feedback"]
    lines += [f"{r.id:<{width}}  {f'{r.score}/{r.points}':>7}  {r.feedback}" for r in report.results]
    lines += [f"{'total':<{width}}  {f'{report.score}/{report.points}':>7}"]
    if verbose:
        for r in report.results:
            if r.log:
                lines += ["", f"---- {r.id} ----", r.log.rstrip()]
        if report.output.strip():
            lines += ["", "---- output of the submission ----", report.output.rstrip()]
    return "\n".join(lines)


def gradebook_csv(reports: Sequence[Report]) -> str:
    """One row per student: name, the score of each exercise, total, out of."""
    ids = list(dict.fromkeys(r.id for report in reports for r in report.results))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student"] + ids + ["total", "out_of"])
    for report in reports:
        scores = {r.id: r.score for r in report.results}
        writer.writerow([report.name] + [scores.get(i, 0) for i in ids] + [report.score, report.points])
    return buffer.getvalue()


def gradescope_json(report: Report) -> str:
    """Gradescope's autograder ``results.json``: the total score and one test per exercise."""
    tests = [{"name": r.id, "score": r.score, "max_score": r.points, "output": r.feedback,
              "status": "passed" if r.score == r.points else "failed"} for r in report.results]
    return json.dumps({"score": report.score, "tests": tests}, indent=2)


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (creating its folder)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        f.write(text)


_WORKER_CODE = "import sys; from minibnn.course.grading import _worker; sys.exit(_worker(sys.argv[1:]))"


def _worker(argv: Sequence[str]) -> int:
    """The grading process of one student: ``SUBMISSION OUT.json [--lessons 1,2] [--exercises JSON] [--timeout S]``."""
    parser = argparse.ArgumentParser(prog="minibnn.course.grading worker")
    parser.add_argument("submission")
    parser.add_argument("out")
    parser.add_argument("--lessons")
    parser.add_argument("--exercises")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    numbers = [int(n) for n in args.lessons.split(",")] if args.lessons else None
    only = json.loads(args.exercises) if args.exercises else None
    report = _grade_here(args.submission, numbers, only, args.timeout)
    data = asdict(report)
    data.pop("output")
    write_text(args.out, json.dumps(data))
    return 0
