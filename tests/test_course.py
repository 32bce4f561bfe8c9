"""Graders of the tutorial exercises, and tests of the assignment generator (minibnn.assignments).

Graders: every test named ``test_stepNN_...`` and tagged ``@pytest.mark.assignment("NN")`` grades the exercises
of tutorial NN. It reads the submission named by $MINIBNN_SUBMISSION (a student's file, or a folder with one
file per step); without it, the tutorial itself, i.e. the solutions, which must pass. An instructor runs

    MINIBNN_SUBMISSION=alice/01_autograd.py python -m pytest tests/test_assignments.py -m assignment

(or ``python -m minibnn.assignments grade alice/01_autograd.py``). The graders load only the submission's
imports, functions and classes (``minibnn.assignments.load_definitions``), so each exercise is graded on its
own; ``test_notebook_runs_top_to_bottom`` (run only with a submission) runs the whole file.

The other tests check the generator: the student versions it writes hold no solution code, and they fail every
grader of their step, while a solution file passes its step's graders and skips the others.
"""
from __future__ import annotations

import ast
import functools
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import Phase, given, settings, strategies as st

import strategies as S
from minibnn import Sequential, Tensor, gradcheck, packing, quantizers, theory
from minibnn import assignments
from minibnn.constraints import apply_constraints
from minibnn.layers import BatchNorm1d
from minibnn.losses import CrossEntropyLoss
from minibnn.optim import SGD
from minibnn.quantized import BinaryLinear

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS_DIR = ROOT / "tutorials"
TUTORIALS = assignments.find_tutorials(TUTORIALS_DIR)
STEPS = [assignments.step_of(p) for p in TUTORIALS]
THIS_FILE = Path(__file__).resolve()


@functools.lru_cache(maxsize=None)
def _load(path: str):
    return assignments.load_definitions(path)


def grader_settings(max_examples: int) -> settings:
    """Hypothesis settings of the graders: no "explain" phase (it rewrites the failing test with libcst, which
    costs seconds per failing grader and tells a student nothing the shrunk example does not)."""
    return settings(max_examples=max_examples, phases=[p for p in Phase if p != Phase.explain])


def submission(step: str):
    """The definitions of the file graded for ``step`` (skips the test when $MINIBNN_SUBMISSION is another
    step's file)."""
    path = assignments.submission_path(step, TUTORIALS_DIR)
    if path is None:
        pytest.skip(f"${assignments.ENV_VAR} is a file of another step, not {step}")
    return _load(str(path))


# ==============================================================================================================
# Graders. Each one must fail on the placeholder of at least one solution block of its step.
# ==============================================================================================================

# ---- 01 autograd --------------------------------------------------------------------------------------------
@pytest.mark.assignment("01")
@grader_settings(S.MEDIUM)
@given(x=S.arrays(S.shapes(), -20.0, 20.0))
def test_step01_softplus_backward(x):
    mod = submission("01")
    assert gradcheck(mod.Softplus.apply, x)
    t = Tensor(x, requires_grad=True)
    upstream = np.linspace(-2.0, 2.0, x.size).reshape(x.shape)
    mod.Softplus.apply(t).backward(upstream)
    np.testing.assert_allclose(t.grad, upstream / (1 + np.exp(-x)), rtol=1e-10, atol=0)


@pytest.mark.assignment("01")
@grader_settings(S.MEDIUM)
@given(pair=S.broadcastable_pair(max_dims=3, max_side=3))
def test_step01_hypot_backward_with_broadcasting(pair):
    a, b = (np.where(v >= 0, v + 0.2, v - 0.2) for v in pair)   # shifted off the kink at a = b = 0
    mod = submission("01")
    assert gradcheck(mod.Hypot.apply, a, b)


# ---- 02 quantizers ------------------------------------------------------------------------------------------
CLIPS = [1.0, 0.5, 2.0, None]


@pytest.mark.assignment("02")
@grader_settings(S.CHEAP)
@given(data=st.data(), clip=st.sampled_from(CLIPS), dtype=st.sampled_from([np.float32, np.float64]))
def test_step02_ste_sign_forward(data, clip, dtype):
    edge = 1.0 if clip is None else clip
    x = data.draw(S.arrays_with(S.shapes(), specials=(0.0, -0.0, edge, -edge))).astype(dtype)
    mod = submission("02")
    out = mod.ClippedSteSign.apply(Tensor(x), clip_value=clip)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.data, np.where(x >= 0, 1, -1).astype(dtype))   # sign(0) = sign(-0) = +1


@pytest.mark.assignment("02")
@grader_settings(S.CHEAP)
@given(data=st.data(), clip=st.sampled_from(CLIPS))
def test_step02_ste_sign_backward(data, clip):
    edge = 1.0 if clip is None else clip
    x = data.draw(S.arrays_with(S.shapes(), specials=(0.0, -0.0, edge, -edge, edge + 1e-9, -edge - 1e-9)))
    upstream = data.draw(S.arrays(x.shape))
    mod = submission("02")
    mine, reference = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    mod.ClippedSteSign.apply(mine, clip_value=clip).backward(upstream)
    quantizers.ste_sign(reference, clip_value=clip).backward(upstream)
    np.testing.assert_array_equal(mine.grad, reference.grad)       # window closed: 1 at ±clip, 0 beyond


@pytest.mark.assignment("02")
@pytest.mark.parametrize("beta", [1.0, 2.5, 5.0, 10.0])
def test_step02_signswish_derivative(beta):
    mod = submission("02")
    x = np.concatenate([np.linspace(-4.0, 4.0, 161), [0.0, 80.0, -80.0, 500.0]])   # 500β overflows cosh
    np.testing.assert_allclose(mod.signswish_derivative(x, beta), theory.signswish_grad(x, beta),
                               rtol=1e-9, atol=1e-12)
    zero = theory.signswish_grad_zero(beta)
    assert np.all(np.abs(mod.signswish_derivative(np.array([-zero, zero]), beta)) < 1e-9)
    assert mod.signswish_derivative(np.array([0.0]), beta)[0] == pytest.approx(beta)


# ---- 03 binary MLP --------------------------------------------------------------------------------------------
def _binary_net(seed: int):
    rng = np.random.default_rng(seed)
    model = Sequential(BinaryLinear(6, 5, bias=False, rng=rng), BatchNorm1d(5), BinaryLinear(5, 3, rng=rng))
    for layer in (model[0], model[2]):                      # start close to the clip edges
        layer.weight.data[...] = rng.uniform(-1.0, 1.0, layer.weight.shape).astype(np.float32)
    return model


def _reference_step(model, optimizer, loss_fn, x, y) -> float:
    loss = loss_fn(model(Tensor(x)), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    apply_constraints(model)
    return loss.item()


@pytest.mark.assignment("03")
@pytest.mark.parametrize("seed", [0, 1])
def test_step03_train_step_is_the_binarynet_step(seed):
    mod = submission("03")
    rng = np.random.default_rng(100 + seed)
    batches = [(rng.normal(size=(8, 6)).astype(np.float32), rng.integers(0, 3, size=8)) for _ in range(3)]
    mine, reference = _binary_net(seed), _binary_net(seed)
    opt_mine, opt_ref = SGD(mine.parameters(), lr=2.0), SGD(reference.parameters(), lr=2.0)
    loss_fn = CrossEntropyLoss()
    for x, y in batches:     # three steps: gradients left over from a previous step would show
        got = mod.train_step(mine, opt_mine, loss_fn, x, y)
        want = _reference_step(reference, opt_ref, loss_fn, x, y)
        assert isinstance(got, float), f"train_step must return a Python float, got {type(got).__name__}"
        assert got == pytest.approx(want, rel=1e-5)
    for (name, p), (_, q) in zip(mine.named_parameters(), reference.named_parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-5, atol=1e-6, err_msg=name)
    clipped = [np.abs(q.data) for q in (reference[0].weight, reference[2].weight)]
    assert any(np.any(c == 1.0) for c in clipped), "test setup: the reference step should clip some weights"
    for layer in (mine[0], mine[2]):
        assert np.all(np.abs(layer.weight.data) <= 1.0), "latent weights must be clipped back to [-1, 1]"


# ---- 04 XNOR-popcount ---------------------------------------------------------------------------------------
@pytest.mark.assignment("04")
@grader_settings(S.CHEAP)
@given(data=st.data(), lead=S.shapes(min_dims=0, max_dims=2, max_side=3), k=st.integers(1, 200))
def test_step04_pack_rows(data, lead, k):
    x = data.draw(S.arrays_with(tuple(lead) + (k,), specials=(0.0, -0.0, -1.0, 1.0)))
    mod = submission("04")
    packed = mod.pack_rows(x)
    assert packed.dtype == np.uint64 and packed.shape == tuple(lead) + (packing.packed_width(k),)
    np.testing.assert_array_equal(packed, packing.pack(x))
    signs = np.where(x < 0, -1, 1).astype(np.int8)                  # integer ±1 input too
    np.testing.assert_array_equal(mod.pack_rows(signs), packing.pack(signs))


@pytest.mark.assignment("04")
@grader_settings(S.CHEAP)
@given(m=st.integers(1, 6), n=st.integers(1, 6), k=st.sampled_from([1, 5, 63, 64, 65, 100, 128, 191]),
       seed=st.integers(0, 2**32 - 1))
def test_step04_xnor_matmul(m, n, k, seed):
    rng = np.random.default_rng(seed)
    a = np.where(rng.random((m, k)) < 0.5, -1.0, 1.0)
    b = np.where(rng.random((n, k)) < 0.5, -1.0, 1.0)
    mod = submission("04")
    got = np.asarray(mod.xnor_matmul(packing.pack(a), packing.pack(b), k))
    assert got.shape == (m, n)
    np.testing.assert_array_equal(got, (a @ b.T).astype(np.int64))


# ---- 05 theory ----------------------------------------------------------------------------------------------
@pytest.mark.assignment("05")
def test_step05_transformed_bernoulli_variance():
    mod = submission("05")
    for p in np.linspace(0.0, 1.0, 21):
        assert mod.transformed_bernoulli_variance(p) == pytest.approx(theory.bernoulli_variance(p), abs=1e-12)


@pytest.mark.assignment("05")
@grader_settings(S.CHEAP)
@given(k=st.integers(1, 4096), p_w=st.floats(0.0, 1.0), p_x=st.floats(0.0, 1.0))
def test_step05_binary_dot_variance_formula(k, p_w, p_x):
    mod = submission("05")
    assert mod.binary_dot_variance(k, p_w, p_x) == pytest.approx(theory.binary_dot_variance(k, p_w, p_x),
                                                                 rel=1e-9, abs=1e-9)


@pytest.mark.assignment("05")
@pytest.mark.parametrize("k, p_w, p_x", [(64, 0.9, 0.9), (33, 0.2, 0.65)])
def test_step05_binary_dot_variance_agrees_with_a_measurement(k, p_w, p_x):
    mod = submission("05")
    measured = theory.measure_binary_dot(k, p_w, p_x, n=40_000, rng=np.random.default_rng(k))[1]
    check = theory.Check("student's V(s)", mod.binary_dot_variance(k, p_w, p_x), measured.measured,
                         measured.stderr, measured.n)
    assert check.agrees, check


# ---- the whole notebook --------------------------------------------------------------------------------------
@pytest.mark.parametrize("step", [pytest.param(s, marks=pytest.mark.assignment(s), id=f"step{s}") for s in STEPS])
def test_notebook_runs_top_to_bottom(step, tmp_path):
    if not os.environ.get(assignments.ENV_VAR):
        pytest.skip(f"runs a submission's whole notebook; without ${assignments.ENV_VAR} the tutorials are run "
                    f"by test_tutorials.py")
    path = assignments.submission_path(step, TUTORIALS_DIR)
    if path is None:
        pytest.skip(f"${assignments.ENV_VAR} is a file of another step, not {step}")
    script = path if path.suffix == ".py" else tmp_path / (path.stem + ".py")
    if script != path:                                                # a notebook: run its code as a script
        script.write_text(assignments.script_text(path), encoding="utf-8")
    env = dict(os.environ, MPLBACKEND="Agg", MINIBNN_TUTORIAL_OUT=str(tmp_path / "out"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"{path.name} stopped with an error:\n{result.stderr[-4000:]}"


# ==============================================================================================================
# The generator
# ==============================================================================================================
def test_strip_solutions_replaces_each_block_at_its_indentation():
    source = ("def f(x):\n"
              "    y = 1\n"
              "    # BEGIN SOLUTION: the answer\n"
              "    y = 2 * x\n"
              "    # END SOLUTION\n"
              "    return y\n"
              "\n"
              "# BEGIN SOLUTION\n"
              "Z = 3\n"
              "# END SOLUTION\n")
    text, n = assignments.strip_solutions(source, step="07")
    assert n == 2
    assert text == ("def f(x):\n"
                    "    y = 1\n"
                    '    raise NotImplementedError("exercise 07: the answer")\n'
                    "    return y\n"
                    "\n"
                    'raise NotImplementedError("exercise 07")\n')
    assert assignments.strip_solutions("x = 1\n") == ("x = 1\n", 0)


@pytest.mark.parametrize("source, line, fragment", [
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\nx\n# END SOLUTION\n", 2, "inside the block opened on line 1"),
    ("x\n# END SOLUTION\n", 2, "without a '# BEGIN SOLUTION' before it"),
    ("x\n  # BEGIN SOLUTION\n  y\n", 2, "is never closed"),
    ("# BEGIN SOLUTION\n# END SOLUTION\n", 1, "the solution block is empty"),
    ("# BEGIN SOLUTIONS\nx\n# END SOLUTION\n", 1, "expected '# BEGIN SOLUTION' or '# BEGIN SOLUTION: title'"),
])
def test_strip_solutions_rejects_bad_markers(source, line, fragment):
    with pytest.raises(ValueError) as info:
        assignments.strip_solutions(source, where="lesson.py")
    assert str(info.value).startswith(f"lesson.py:{line}: ") and fragment in str(info.value), str(info.value)


def test_every_step_has_exercises_and_graders():
    graders = [name for name in globals() if name.startswith("test_step")]
    total = 0
    for path in TUTORIALS:
        step = assignments.step_of(path)
        found = assignments.exercises(path)
        total += len(found)
        assert found, f"{path.name} has no exercise"
        assert any(g.startswith(f"test_step{step}_") for g in graders), f"no grader for step {step}"
    assert total >= 3


def _solution_lines(path: Path):
    """The code lines inside the solution blocks that appear nowhere else in the tutorial."""
    lines = path.read_text(encoding="utf-8").splitlines()
    inside, outside, in_block = [], [], False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(assignments.BEGIN):
            in_block = True
        elif stripped.startswith(assignments.END):
            in_block = False
        elif stripped:
            (inside if in_block else outside).append(stripped)
    return [line for line in inside if line not in outside]


def test_make_writes_student_versions_without_solution_code(tmp_path):
    try:
        import jupytext
    except ImportError:
        jupytext = None
    written = assignments.make(tmp_path, TUTORIALS_DIR, notebooks=jupytext is not None)
    assert sorted(p.name for p in written if p.suffix == ".py") == [p.name for p in TUTORIALS]
    for path in TUTORIALS:
        student = (tmp_path / path.name).read_text(encoding="utf-8")
        blocks = assignments.exercises(path)
        assert assignments.BEGIN not in student and assignments.END not in student
        placeholders = re.findall(r'raise NotImplementedError\("exercise (\d\d): ([^"]*)"\)', student)
        assert placeholders == [(path.name[:2], e.title) for e in blocks]
        student_lines = {line.strip() for line in student.splitlines()}
        leaked = [line for line in _solution_lines(path) if line in student_lines]
        assert not leaked, f"{path.name}: solution lines in the student version: {leaked}"
        ast.parse(student, filename=path.name)
        if jupytext is not None:
            notebook = jupytext.read(tmp_path / (path.stem + ".ipynb"))
            assert "".join(c.source for c in notebook.cells if c.cell_type == "code").count(
                "NotImplementedError(\"exercise") == len(blocks)


def test_make_refuses_to_overwrite_the_solutions():
    with pytest.raises(ValueError, match="tutorials folder itself"):
        assignments.make(TUTORIALS_DIR, TUTORIALS_DIR)


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
    mod = assignments.load_definitions(script)
    assert mod.double(3) == 6 and mod.Box.value == pytest.approx(np.pi)
    assert not hasattr(mod, "ratio")


def test_submission_path_resolves_files_folders_and_other_steps(tmp_path, monkeypatch):
    monkeypatch.delenv(assignments.ENV_VAR, raising=False)
    assert assignments.submission_path("01", TUTORIALS_DIR) == TUTORIALS[0]          # the solutions
    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "01_autograd.py").write_text("x = 1\n", encoding="utf-8")
    assert assignments.submission_path("01", TUTORIALS_DIR, folder) == folder / "01_autograd.py"
    assert assignments.submission_path("01", TUTORIALS_DIR, folder / "01_autograd.py") == folder / "01_autograd.py"
    assert assignments.submission_path("02", TUTORIALS_DIR, folder / "01_autograd.py") is None
    with pytest.raises(FileNotFoundError, match="without a file 02_"):
        assignments.submission_path("02", TUTORIALS_DIR, folder)
    with pytest.raises(FileNotFoundError, match="no such file"):
        assignments.submission_path("01", TUTORIALS_DIR, tmp_path / "missing.py")


def test_notebook_submissions_are_read_through_jupytext(tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    folder = tmp_path / "bob"
    folder.mkdir()
    notebook = folder / (TUTORIALS[0].stem + ".ipynb")                 # a solved notebook, returned as .ipynb
    jupytext.write(jupytext.read(TUTORIALS[0]), notebook)
    step = assignments.step_of(TUTORIALS[0])
    assert assignments.submission_path(step, TUTORIALS_DIR, folder) == notebook
    mod = assignments.load_definitions(notebook)
    assert gradcheck(mod.Softplus.apply, np.linspace(-3.0, 3.0, 7))
    monkeypatch.setenv(assignments.ENV_VAR, str(folder))
    test_notebook_runs_top_to_bottom(step, tmp_path)                   # runs the notebook's code to the end


def _run_graders(submission: Path, workdir: Path):
    """Run this file's graders (``-m assignment``) on ``submission`` in a fresh pytest; return {test: outcome}."""
    report = workdir / "report.xml"
    env = dict(os.environ)
    env[assignments.ENV_VAR] = str(submission)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-m", "pytest", str(THIS_FILE), "-m", "assignment", "-q",
                             "-p", "no:cacheprovider", f"--junitxml={report}"],
                            cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        outcome = ("failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed")
        outcomes[case.get("name")] = outcome
    assert outcomes, f"no test ran:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return outcomes


def _step_of_test(name: str) -> str:
    match = re.match(r"test_step(\d\d)_", name) or re.search(r"\[step(\d\d)\]$", name)
    assert match, name
    return match.group(1)


def test_student_versions_fail_every_grader(tmp_path):
    handout = tmp_path / "handout"
    assignments.make(handout, TUTORIALS_DIR)
    outcomes = _run_graders(handout, tmp_path)
    not_failed = {name: outcome for name, outcome in outcomes.items() if outcome != "failed"}
    assert not not_failed, f"graders that did not fail on the student versions: {not_failed}"
    assert {_step_of_test(name) for name in outcomes} == set(STEPS)


def test_a_solution_file_passes_its_notebook_grader_and_skips_the_other_steps(tmp_path, monkeypatch):
    """File mode, in process (the pytest-level selection is covered by the test above)."""
    monkeypatch.setenv(assignments.ENV_VAR, str(TUTORIALS[0]))       # 01_autograd.py: the quickest notebook
    step = assignments.step_of(TUTORIALS[0])
    test_notebook_runs_top_to_bottom(step, tmp_path)                   # passes: the solution runs to the end
    assert submission(step).Softplus is not None
    for other in STEPS:
        if other != step:
            with pytest.raises(pytest.skip.Exception, match="another step"):
                submission(other)
            with pytest.raises(pytest.skip.Exception, match="another step"):
                test_notebook_runs_top_to_bottom(other, tmp_path)


def test_command_line_list_and_make(tmp_path, capsys):
    assert assignments.main(["list", "--source", str(TUTORIALS_DIR)]) == 0
    listing = capsys.readouterr().out
    for path in TUTORIALS:
        assert path.name in listing
    assert assignments.main(["make", str(tmp_path / "out"), "--source", str(TUTORIALS_DIR)]) == 0
    assert "solution blocks replaced" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in TUTORIALS]
    assert assignments.main(["grade", str(tmp_path / "nobody")]) == 2
    assert "no submission at" in capsys.readouterr().err
