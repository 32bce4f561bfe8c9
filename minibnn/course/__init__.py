"""The minibnn course: lessons shipped in the package, the student handout made from them, and their graders.

* :mod:`.handout` -- the lessons (``minibnn/course/lessons/NN_name.py``, jupytext notebooks), their exercises,
  the student versions (:func:`make`);
* :mod:`.graders` -- one grader per exercise, with its points (:data:`GRADERS`);
* :mod:`.guard` -- THE table of the library functions that implement each answer (:data:`FORBIDDEN`) and the
  traps that make them unavailable to a submission while its exercise is graded;
* :mod:`.grading` -- grading a student or a class: score table, CSV gradebook, Gradescope's results.json;
* :mod:`.command` -- ``minibnn assignments list | make | grade`` (also ``python -m minibnn.course``).

Install the course with ``pip install "minibnn[course]"`` (matplotlib, jupytext, nbclient, ipykernel, JupyterLab).

Example:
    >>> from minibnn import course
    >>> len(course.lessons()) >= 10 and len(course.GRADERS) >= 25
    True
    >>> course.GRADERS["4.1 pack_rows"].points, course.FORBIDDEN["4.1 pack_rows"][0]
    (2, 'minibnn.xnor.packing.pack')
"""
from .handout import LESSONS_DIR, Exercise, exercises, lessons, make, strip_solutions
from .graders import GRADERS
from .guard import FORBIDDEN, ForbiddenCall, forbid
from .grading import Report, grade, grade_class, load_definitions
from .command import main

__all__ = ["LESSONS_DIR", "Exercise", "exercises", "lessons", "make", "strip_solutions", "GRADERS", "FORBIDDEN",
           "ForbiddenCall", "forbid", "Report", "grade", "grade_class", "load_definitions", "main"]
