"""The course machinery: handouts made from the lessons, graders that can't be gamed, grading a class.

The heavy tests grade whole folders in worker processes, as an instructor would: the solutions (the lessons
themselves) score full marks, the student handout scores 0 everywhere, and a student who calls minibnn's own
answers (:data:`CHEATS`) scores 0 on exactly those exercises.
"""
from __future__ import annotations

import ast
import csv
import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from minibnn.course import FORBIDDEN, GRADERS, LESSONS_DIR, exercises, lessons, make, strip_solutions
from minibnn.course import command, grading, guard, handout

LESSONS = lessons()
TOTAL = sum(g.points for g in GRADERS.values())

#: a student who calls minibnn's answer instead of writing it, for every exercise whose answer minibnn has
CHEATS = {
    "1.1 Softplus.backward": "from minibnn import functional as F\nreturn grad * F.sigmoid(self.x).data",
    "2.1 ClippedSteSign.forward": "from minibnn import quantizers\nself.x, self.clip = x, clip_value\n"
                                  "return quantizers.ste_sign(x, clip_value=clip_value).data",
    "2.2 ClippedSteSign.backward": "from minibnn import Tensor, quantizers\nt = Tensor(self.x, requires_grad=True)\n"
                                   "quantizers.ste_sign(t, clip_value=self.clip).backward(grad)\nreturn t.grad",
    "2.3 signswish_derivative": "from minibnn import theory\nreturn theory.signswish_grad(x, beta)",
    "3.1 train_step": "from minibnn.training import fit\nh = fit(model, [(x, y)], loss_fn, optimizer, epochs=1, "
                      "progress=False, verbose=False)\nreturn float(h.train_loss[-1])",
    "3.2 flip_ratio": "from minibnn import Tensor\nfrom minibnn.metrics import FlipRatio\n"
                      "t = Tensor(np.array(before))\nf = FlipRatio([t])\nt.data = np.array(after)\nreturn f.update()",
    "4.1 pack_rows": "from minibnn.xnor import packing\nreturn packing.pack(x)",
    "4.2 xnor_matmul": "from minibnn.xnor import packing\nreturn packing.gemm(a, b, k).astype(np.int64)",
    "5.1 transformed_bernoulli_variance": "from minibnn import theory\nreturn theory.bernoulli_variance(p)",
    "5.2 binary_dot_variance": "from minibnn import theory\nreturn theory.binary_dot_variance(k, p_w, p_x)",
    "6.2 max_pool2d": "from minibnn import functional as F\nreturn F.max_pool2d(x, 2).data",
    "6.3 shifted_sign_fraction": "from minibnn import theory\nreturn theory.shifted_sign_fraction(threshold, mu, sigma)",
    "7.1 preactivation_variance": "from minibnn import theory\n"
                                  "return theory.preactivation_variance(widths, weight_var, input_var)",
    "7.2 centred_norm": "from minibnn.normalization import CentredNorm\n"
                        "layer = CentredNorm(x.shape[1], dtype=np.float64)\nlayer.weight.data[...] = gamma\n"
                        "layer.bias.data[...] = beta\nreturn layer(x).data",
    "7.3 fold_bn_sign": "from minibnn import theory\nf = theory.fold_bn_sign(gamma, beta, mean, std)\n"
                        "return f.threshold, f.direction",
    "8.1 signswish": "from minibnn import theory\nreturn theory.signswish(x, beta)",
    "8.2 bnn_plus_regularizer": "from minibnn import theory\n"
                                "return float(theory.regularizer(alpha, weight, kind, channel_axis=0).sum())",
    "8.3 initial_alpha": "from minibnn import theory\nreturn theory.optimal_scale(weight, kind, channel_axis=0)",
    "9.1 activation_pattern": "from minibnn.theory import geometry\nreturn geometry.activation_pattern(z, activation)",
    "9.2 gini": "from minibnn.theory import geometry\nreturn geometry.gini(c)",
    "10.1 binary_dense": "from minibnn.xnor import packing\ns = packing.gemm(packed_x, packed_w, k)\n"
                         "return np.where(s >= threshold, 1, -1)",
    "10.2 packed_bytes": "from minibnn.xnor import packing\n"
                         "return shape[0] * packing.packed_width(int(np.prod(shape[1:]))) * 8",
}


def write_cheater(folder: Path) -> Path:
    """The lessons with each exercise of CHEATS answered by calling minibnn (the others keep their solution)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in LESSONS:
        def answer(exercise_id: str, text=path.read_text(encoding="utf-8")) -> str:
            if exercise_id in CHEATS:
                return CHEATS[exercise_id]
            block = re.search(rf"^[ \t]*# BEGIN SOLUTION: {re.escape(exercise_id)}\n(.*?)^[ \t]*# END SOLUTION",
                              text, re.S | re.M)
            return textwrap.dedent(block.group(1))
        text, _ = handout.replace_solutions(path.read_text(encoding="utf-8"), answer, str(path))
        (folder / path.name).write_text(text, encoding="utf-8")
    return folder


# ==============================================================================================================
# Handouts
# ==============================================================================================================
def test_strip_solutions_replaces_each_block_at_its_indentation():
    source = ("def f(x):\n"
              "    y = 1\n"
              "    # BEGIN SOLUTION: 7.1 f\n"
              "    y = 2 * x\n"
              "    # END SOLUTION\n"
              "    return y\n"
              "\n"
              "# BEGIN SOLUTION: 7.2 Z\n"
              "Z = 3\n"
              "# END SOLUTION\n")
    text, n = strip_solutions(source)
    assert n == 2
    assert text == ("def f(x):\n"
                    "    y = 1\n"
                    '    raise NotImplementedError("exercise 7.1 f")\n'
                    "    return y\n"
                    "\n"
                    'raise NotImplementedError("exercise 7.2 Z")\n')
    assert strip_solutions("x = 1\n") == ("x = 1\n", 0)


@pytest.mark.parametrize("source, line, fragment", [
    ("# BEGIN SOLUTION: 1.1 a\n# BEGIN SOLUTION: 1.2 b\nx\n# END SOLUTION\n", 2, "inside the block opened on line 1"),
    ("x\n# END SOLUTION\n", 2, "without a '# BEGIN SOLUTION:' before it"),
    ("x\n  # BEGIN SOLUTION: 1.1 a\n  y\n", 2, "is never closed"),
    ("# BEGIN SOLUTION: 1.1 a\n# END SOLUTION\n", 1, "the solution block is empty"),
    ("# BEGIN SOLUTION: a\nx\n# END SOLUTION\n", 1, "expected '# BEGIN SOLUTION: L.N name'"),
    ("# BEGIN SOLUTIONS\nx\n# END SOLUTION\n", 1, "expected '# BEGIN SOLUTION: L.N name'"),
])
def test_strip_solutions_rejects_bad_markers(source, line, fragment):
    with pytest.raises(ValueError) as info:
        strip_solutions(source, where="lesson.py")
    assert str(info.value).startswith(f"lesson.py:{line}: ") and fragment in str(info.value), str(info.value)


def test_an_exercise_id_must_name_its_own_lesson(tmp_path):
    path = tmp_path / "03_x.py"
    path.write_text("# BEGIN SOLUTION: 2.1 f\nx = 1\n# END SOLUTION\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is in lesson 3"):
        exercises(path)


def _solution_lines(path: Path):
    """The code lines inside the solution blocks that appear nowhere else in the lesson."""
    inside, outside, in_block = [], [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith(handout.BEGIN):
            in_block = True
        elif stripped.startswith(handout.END):
            in_block = False
        elif stripped:
            (inside if in_block else outside).append(stripped)
    return [line for line in inside if line not in outside]


def test_make_writes_student_versions_without_solution_code(tmp_path):
    jupytext = pytest.importorskip("jupytext", reason="make --notebooks needs the [course] extra")
    written = make(tmp_path, notebooks=True)
    assert sorted(p.name for p in written if p.suffix == ".py") == [p.name for p in LESSONS]
    for path in LESSONS:
        student = (tmp_path / path.name).read_text(encoding="utf-8")
        blocks = exercises(path)
        assert "# BEGIN SOLUTION" not in student and handout.END not in student
        stubs = re.findall(r'raise NotImplementedError\("exercise ([^"]*)"\)', student)
        assert stubs == [e.id for e in blocks]
        leaked = [line for line in _solution_lines(path) if line in {s.strip() for s in student.splitlines()}]
        assert not leaked, f"{path.name}: solution lines in the student version: {leaked}"
        ast.parse(student, filename=path.name)
        notebook = jupytext.read(tmp_path / (path.stem + ".ipynb"))
        code = "".join(c.source for c in notebook.cells if c.cell_type == "code")
        assert code.count('NotImplementedError("exercise') == len(blocks)


def test_make_refuses_to_overwrite_the_solutions():
    with pytest.raises(ValueError, match="lessons folder itself"):
        make(LESSONS_DIR)


def test_load_definitions_runs_only_imports_functions_classes_and_constants(tmp_path):
    script = tmp_path / "01_demo.py"
    script.write_text("import math\n"
                      "SCALE = 2\n"
                      "ratio = 1 / 0            # a cell that would fail\n"
                      "def double(x):\n"
                      "    return SCALE * x\n"
                      "class Box:\n"
                      "    value = math.pi\n"
                      "raise RuntimeError('top-level code must not run')\n", encoding="utf-8")
    mod = grading.load_definitions(script)
    assert mod.double(3) == 6 and mod.Box.value == pytest.approx(np.pi)
    assert not hasattr(mod, "ratio") and mod.__name__.startswith(guard.SUBMISSION_PREFIX)


def test_submission_files_are_found_by_their_two_digits(tmp_path):
    (tmp_path / "06_mine.ipynb").write_text("{}", encoding="utf-8")
    (tmp_path / "06_binary_cnn.py").write_text("", encoding="utf-8")
    (tmp_path / "2_wrong.py").write_text("", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("", encoding="utf-8")
    assert grading.find_submission_files(tmp_path) == {6: tmp_path / "06_binary_cnn.py"}   # script first
    assert grading.find_submission_files(tmp_path / "06_mine.ipynb") == {6: tmp_path / "06_mine.ipynb"}
    assert not grading.is_class_folder(tmp_path) and grading.is_class_folder(tmp_path.parent)


# ==============================================================================================================
# The guard
# ==============================================================================================================
@pytest.mark.parametrize("exercise_id", sorted(FORBIDDEN))
def test_every_forbidden_path_resolves_to_a_function(exercise_id):
    for path in FORBIDDEN[exercise_id]:
        _, _, raw = guard.resolve(path)
        raw = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
        assert callable(raw), path


def test_a_trap_stops_the_submission_but_not_the_grader(tmp_path):
    from minibnn import xnor
    from minibnn.xnor import packing

    (tmp_path / "04_x.py").write_text("from minibnn.xnor.packing import pack as library_pack\n"
                                      "from minibnn import xnor\n"
                                      "def direct(x):\n    return library_pack(x)\n"
                                      "def via_alias(x):\n    return xnor.pack(x)\n", encoding="utf-8")
    x = np.array([[1.0, -1.0, 2.0]])
    original = packing.pack
    with guard.forbid("4.1 pack_rows") as calls:
        sub = grading.load_definitions(tmp_path / "04_x.py", guard.SUBMISSION_PREFIX + "trap_test")
        for fn in (sub.direct, sub.via_alias):
            with pytest.raises(guard.ForbiddenCall, match="implements the answer of exercise 4.1 pack_rows"):
                fn(x)
        np.testing.assert_array_equal(packing.pack(x), original(x))      # the grader's own call goes through
    assert calls == ["minibnn.xnor.packing.pack", "minibnn.xnor.pack"]
    assert packing.pack is original and sub.direct(x).dtype == np.uint64 and xnor.pack(x).shape == (1, 1)


def test_catching_the_error_still_scores_zero(tmp_path):
    solution = LESSONS[3].read_text(encoding="utf-8")       # 04_xnor_popcount.py, its real solution inside
    sneaky = solution.replace("    # BEGIN SOLUTION: 4.1 pack_rows\n",
                              "    # BEGIN SOLUTION: 4.1 pack_rows\n"
                              "    try:\n        from minibnn.xnor import packing as P\n        return P.pack(x)\n"
                              "    except Exception:\n        pass\n")
    (tmp_path / LESSONS[3].name).write_text(sneaky, encoding="utf-8")
    report = grading.grade(tmp_path, exercise_ids=["4.1 pack_rows"], isolated=False)
    [result] = report.results
    assert result.score == 0 and "minibnn.xnor.packing.pack" in result.feedback


# ==============================================================================================================
# Grading a class, from the command line
# ==============================================================================================================
def test_grading_a_class_of_three_writes_a_gradebook(tmp_path, capsys):
    """Untouched stubs score 0, the solutions full marks, calling minibnn's answers 0 on those exercises."""
    class_dir = tmp_path / "class"
    make(class_dir / "amy")
    for path in LESSONS:
        (class_dir / "ben").mkdir(parents=True, exist_ok=True)
        (class_dir / "ben" / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    write_cheater(class_dir / "cat")
    assert command.main(["grade", str(class_dir)]) == 0
    assert "wrote" in capsys.readouterr().out
    with open(class_dir / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == ["amy", "ben", "cat"]
    ids = list(GRADERS)
    assert [int(rows["amy"][i]) for i in ids] == [0] * len(ids)
    assert [int(rows["ben"][i]) for i in ids] == [GRADERS[i].points for i in ids]
    assert [int(rows["cat"][i]) for i in ids] == [0 if i in CHEATS else GRADERS[i].points for i in ids]
    assert (rows["amy"]["total"], rows["ben"]["total"], rows["ben"]["out_of"]) == ("0", str(TOTAL), str(TOTAL))
    assert len(CHEATS) >= 20


def test_one_student_gets_a_table_and_gradescope_json(tmp_path, capsys):
    student = tmp_path / "dana"
    student.mkdir()
    stub, _ = strip_solutions(LESSONS[4].read_text(encoding="utf-8"))
    (student / "05_theory.py").write_text(stub.replace(
        'raise NotImplementedError("exercise 5.1 transformed_bernoulli_variance")', "return 4 * p * (1 - p)"),
        encoding="utf-8")
    assert command.main(["grade", str(student)]) == 0
    table = capsys.readouterr().out
    assert re.search(r"5\.1 transformed_bernoulli_variance\s+1/1\s+ok", table)
    assert re.search(r"5\.2 binary_dot_variance\s+0/2\s+not done yet: the stub of 5\.2 binary_dot_variance", table)
    assert re.search(r"total\s+1/3", table) and "Traceback" not in table
    assert command.main(["grade", str(student), "--verbose"]) == 0
    assert "Traceback" in capsys.readouterr().out
    out = tmp_path / "results.json"
    assert command.main(["grade", str(student / "05_theory.py"), "--format", "gradescope", "--out", str(out)]) == 0
    results = json.loads(out.read_text(encoding="utf-8"))
    assert results["score"] == 1
    assert [(t["name"], t["score"], t["max_score"]) for t in results["tests"]] == [
        ("5.1 transformed_bernoulli_variance", 1, 1), ("5.2 binary_dot_variance", 0, 2)]
    capsys.readouterr()
    assert command.main(["grade", str(student), "--exercise", "5.1"]) == 0
    assert "5.2" not in capsys.readouterr().out


def test_nothing_to_grade_exits_nonzero_naming_the_files_it_looked_for(tmp_path, capsys):
    (tmp_path / "autograd.py").write_text("x = 1\n", encoding="utf-8")
    assert command.main(["grade", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "nothing graded" in err and "01_autograd.py" in err and "11_running_a_study.ipynb" in err
    assert command.main(["grade", str(tmp_path / "missing")]) == 2
    assert "no submission at" in capsys.readouterr().err


def test_list_and_make_from_the_command_line(tmp_path, capsys):
    assert command.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert all(p.name in listing for p in LESSONS) and f"{len(GRADERS)} exercises" in listing
    assert command.main(["make", str(tmp_path / "handout")]) == 0
    assert sorted(p.name for p in (tmp_path / "handout").iterdir()) == [p.name for p in LESSONS]
