"""The compiled kernels are safe on their own (issue 10, defects 1-3): huge strides, paddings and kernel sizes
never crash, hang or return garbage, whatever the Python layer above lets through.

Each reproduction calls the extension ``minibnn._xnor`` directly, in a subprocess with a time limit, so that a
segfault, a SIGFPE or a hang fails the test instead of killing or stalling the suite. Also here: the naive C
reference GEMM against every blocked path, and the thread controls (same bits on 1 and 2 threads).
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

_xnor = pytest.importorskip("minibnn._xnor")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = [p for p in ("avx512", "avx2", "neon", "scalar") if _xnor.path_supported(p)]
PRELUDE = """
import numpy as np
from minibnn import _xnor
z = lambda *s: np.zeros(s, np.uint64)
def conv(path, stride, padding, pad_value, out_pixels):
    out = np.empty((out_pixels, 1), np.int32)
    _xnor.conv2d(path, z(1, 1, 1, 1), z(1, 1, 1, 1), 1, stride, stride, padding, padding, pad_value, out,
                 None, None, None, None, 0)
    return out.ravel().tolist()
def error(fn, *args):
    try:
        fn(*args)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return "no error"
"""


def run(code: str, timeout: float = 60.0, **environ: str) -> str:
    """Run `code` (after PRELUDE) in a fresh interpreter; a crash or a hang fails the test. Returns stdout."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    env.update(environ)
    try:
        proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], capture_output=True,
                              text=True, timeout=timeout, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the kernel call did not return within {timeout} s (hang):\n{code}")
    assert proc.returncode == 0, f"the subprocess died (exit code {proc.returncode}):\n{code}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("path", PATHS)
def test_conv2d_huge_stride_and_padding_is_refused_by_name(path):
    """Defect 1: stride/padding 2**62 (SIGSEGV on main), 2**62 + 1 (SIGFPE), and >= 2**63 (OverflowError)."""
    out = run(f"""
        for value in (2**62, 2**62 + 1, 2**63, 2**64 + 5):
            print(error(conv, {path!r}, value, value, 0, 9))
        print(error(conv, {path!r}, 1, -1, 1, 1))
    """)
    lines = out.splitlines()
    for line, value in zip(lines, (2**62, 2**62 + 1, 2**63, 2**64 + 5)):
        assert line == f"ValueError: minibnn._xnor.conv2d: stride_h must be an int <= 2147483647, got {value}"
    assert lines[4] == "ValueError: minibnn._xnor.conv2d: pad_h must be an int >= 0, got -1"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("pad_value", [1, -1, 0])
def test_conv2d_largest_stride_and_padding_compute_the_right_answer(path, pad_value):
    """At the largest accepted stride and padding (2**31 - 1) a 1x1 input gives a 3x3 output whose centre is
    the real pixel (+1 * +1) and whose border pixels see only padding (pad_value * +1)."""
    big = 2**31 - 1
    out = run(f"print(conv({path!r}, {big}, {big}, {pad_value}, 9))")
    expected = [pad_value] * 9
    expected[4] = 1
    assert out.strip() == str(expected)


@pytest.mark.parametrize("kernel, padding", [(2**62, 2**61), (2**32, 0), (2**63, 0)])
def test_maxpool2d_huge_kernel_is_refused_by_name(kernel, padding):
    """Defect 2: kernel_size 2**62 hung, 2**32 took 6-16 s on a 1x1 input."""
    out = run(f"""
        print(error(_xnor.maxpool2d, z(1, 1, 1, 1), {kernel}, {kernel}, 1, 1, {padding}, {padding}, z(1, 1, 1, 1), 0))
    """, timeout=20)
    assert out.strip() == f"ValueError: minibnn._xnor.maxpool2d: kernel_h must be an int <= 2147483647, got {kernel}"


def test_maxpool2d_largest_kernel_returns_at_once():
    """The window is clamped to the input: a 2**31 - 1 kernel over a 3x3 input costs nine reads per output."""
    big = 2**31 - 1
    out = run(f"""
        import time
        x = np.arange(1, 10, dtype=np.uint64).reshape(1, 3, 3, 1) | np.uint64(1 << 40)
        out = z(1, 1, 1, 1)   # (3 + 2 * (2**30 - 1) - k) // k + 1 = 1 window, over all nine pixels
        t = time.perf_counter()
        _xnor.maxpool2d(x, {big}, {big}, {big}, {big}, {big // 2}, {big // 2}, out, 0)
        print(time.perf_counter() - t)
        print(out.ravel().tolist())
    """, timeout=20)
    seconds, values = out.splitlines()
    assert float(seconds) < 1.0
    assert values == str([1 << 40])   # the AND of 1..9 is 0; bit 40 is set in every pixel


def test_maxpool2d_window_clamped_matches_reference():
    """Clamped windows give what the NumPy reference gives, with padding and strides that cut windows at the
    borders."""
    from minibnn.xnor import packing
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2**63, size=(2, 7, 6, 2), dtype=np.uint64)
    for kernel, stride, padding in [((3, 3), (2, 2), (1, 1)), ((7, 6), (1, 1), (3, 3)), ((5, 2), (3, 1), (2, 1))]:
        expected = packing.maxpool2d(x, kernel, stride, padding)
        out = np.empty_like(expected)
        _xnor.maxpool2d(x, *kernel, *stride, *padding, out, 0)
        assert np.array_equal(out, expected)


def test_oversized_ints_raise_value_error_naming_the_argument():
    """Defect 3: ints >= 2**63 gave a bare 'OverflowError: Python int too large to convert to C long'."""
    out = run("""
        a = z(2, 1)
        print(error(_xnor.gemm, "scalar", a, a, 2**63, np.empty((2, 2), np.int32), None, None, None, None, 0))
        print(error(_xnor.maxpool2d, z(1, 1, 1, 1), 1, 1, 2**70, 1, 0, 0, z(1, 1, 1, 1), 0))
        print(error(_xnor.set_num_threads, 2**64))
    """)
    assert out.splitlines() == [
        "ValueError: minibnn._xnor.gemm: k must be an int <= 2147483647, got 9223372036854775808",
        "ValueError: minibnn._xnor.maxpool2d: stride_h must be an int <= 2147483647, got "
        "1180591620717411303424",
        "ValueError: minibnn._xnor.set_num_threads: n must be an int <= 65536, got 18446744073709551616",
    ]


def test_inconsistent_shapes_are_refused_not_read_out_of_bounds():
    out = run("""
        a, b = z(4, 2), z(3, 1)
        print(error(_xnor.gemm, "scalar", a, b, 100, np.empty((4, 3), np.int32), None, None, None, None, 0))
        print(error(_xnor.gemm, "scalar", a, z(3, 2), 100, np.empty((5, 3), np.int32), None, None, None, None, 0))
        print(error(_xnor.gemm, "scalar", a, z(3, 2), 200, np.empty((4, 3), np.int32), None, None, None, None, 0))
        print(error(_xnor.conv2d, "scalar", z(1, 2, 2, 1), z(1, 1, 1, 1), 1, 1, 1, 0, 0, 1,
                    np.empty((3, 1), np.int32), None, None, None, None, 0))
    """)
    lines = out.splitlines()
    assert lines[0] == "ValueError: minibnn._xnor.gemm: b's words per row must be 2, got 1"
    assert lines[1] == "ValueError: minibnn._xnor.gemm: out's shape must be (4, 3), got (5, 3)"
    assert lines[2].startswith("ValueError: minibnn._xnor.gemm: sizes out of the range")
    assert lines[3] == "ValueError: minibnn._xnor.conv2d: out's shape must be (4, 1), got (3, 1)"


@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (7, 9, 63), (13, 70, 64), (33, 65, 200), (50, 17, 1000)])
def test_reference_gemm_equals_every_path(m, n, k):
    """The plain triple loop of kernels/gemm.c, the blocked drivers on every path and the NumPy spec agree."""
    from minibnn.xnor import packing
    rng = np.random.default_rng(m * 1000 + k)
    a = packing.pack(rng.choice([-1.0, 1.0], size=(m, k)))
    b = packing.pack(rng.choice([-1.0, 1.0], size=(n, k)))
    ref = np.empty((m, n), np.int32)
    _xnor.gemm_reference(a, b, k, ref)
    assert np.array_equal(ref, packing.gemm(a, b, k))
    for path in PATHS:
        out = np.empty((m, n), np.int32)
        _xnor.gemm(path, a, b, k, out, None, None, None, None, 0)
        assert np.array_equal(out, ref), path


def test_importing_minibnn_makes_idle_threads_sleep():
    """libgomp reads its wait policy when the extension loads it; minibnn.xnor sets OMP_WAIT_POLICY=passive
    first unless the user chose a policy, so the kernels may use several threads and none spins after a call."""
    code = "import os; print(_xnor.idle_threads_sleep(), os.environ['OMP_WAIT_POLICY'])"
    assert run(code).split() == ["True", "PASSIVE"]
    assert run(code, OMP_WAIT_POLICY="active").split() == ["True", "active"]    # the user's choice stands
    assert run(code, GOMP_SPINCOUNT="0").split() == ["True", "PASSIVE"]


@pytest.mark.skipif(not _xnor.openmp_enabled(), reason="built without OpenMP")
def test_same_bits_on_one_and_two_threads():
    """Every path gives the same bits on 1 and 2 threads (the crossover lifted so that small calls split)."""
    out = run("""
        from minibnn.xnor import packing
        rng = np.random.default_rng(1)
        k = 1100
        a = packing.pack(rng.choice([-1.0, 1.0], size=(300, k)))
        b = packing.pack(rng.choice([-1.0, 1.0], size=(130, k)))
        xr = rng.standard_normal((300, k)).astype(np.float32)
        x = packing.pack(rng.choice([-1.0, 1.0], size=(4, 9, 9, 70)))
        w = packing.pack(rng.choice([-1.0, 1.0], size=(20, 3, 3, 70)))
        _xnor.set_parallel_min_macs(0)
        results = []
        for n in (1, 2):
            _xnor.set_num_threads(n)
            for path in [p for p in _xnor.PATHS if _xnor.path_supported(p)]:
                g, r = np.empty((300, 130), np.int32), np.empty((300, 130), np.int32)
                _xnor.gemm(path, a, b, k, g, None, None, None, None, 0)
                _xnor.gemm_real(path, xr, b, k, r, None, None, None, None, 0)
                c = np.empty((4 * 9 * 9, 20), np.int32)
                _xnor.conv2d(path, x, w, 70, 1, 1, 1, 1, 0, c, None, None, None, None, 0)
                results.append((g, r, c))
        print(all(all(np.array_equal(u, v) for u, v in zip(res, results[0])) for res in results))
        print(_xnor.idle_threads_sleep(), _xnor.get_num_threads())
    """, OMP_WAIT_POLICY="PASSIVE")
    assert out.split() == ["True", "True", "2"]


def test_thread_controls():
    before = _xnor.get_num_threads()
    try:
        _xnor.set_parallel_min_macs(123)
        assert _xnor.get_parallel_min_macs() == 123
        _xnor.set_num_threads(3)
        assert _xnor.get_num_threads() == (3 if _xnor.openmp_enabled() else 1)
    finally:
        _xnor.set_parallel_min_macs(None)
        _xnor.set_num_threads(before)
    assert _xnor.get_parallel_min_macs() == _xnor.PARALLEL_MIN_MACS == 128 * 2**20
    assert _xnor.get_num_threads() == before
    with pytest.raises(ValueError, match="n must be an int >= 0"):
        _xnor.set_num_threads(-1)
