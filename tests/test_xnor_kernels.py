"""One specification, run against every kernel path: AVX-512, AVX2, NEON, scalar, NumPy (all through minibnn.xnor
with the path forced), minibnn.xnor as it runs when the extension is not built, and the NumPy reference
(minibnn.xnor.packing) itself.

Every result must equal float arithmetic on the same ±1 data -- matmul, convolution, max-pool -- bit for bit.
A new path is one line in PATHS. Paths this machine or this build cannot run are skipped (with the reason).
"""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minibnn
from minibnn import xnor
from minibnn.xnor import dispatch, packing

#: (name, how to run it): a path of minibnn.xnor forced with use_path, or the reference module itself
PATHS = [
    "avx512",
    "avx2",
    "neon",
    "scalar",
    "numpy",       # the NumPy path forced with the extension present
    "fallback",    # no extension at all: what runs when minibnn._xnor is not built
    "reference",   # minibnn.xnor.packing, the readable specification
]


@contextmanager
def without_extension():
    """minibnn.xnor in the state its import leaves when minibnn._xnor cannot be imported, for the block."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dispatch, "_ext", None)
        mp.setattr(dispatch, "EXTENSION_ERROR", "hidden by the test")
        mp.setattr(dispatch, "_forced", None)
        mp.setattr(dispatch, "_env_choice", "")
        mp.setattr(dispatch, "_best", None)
        assert xnor.available_paths() == ("numpy",) and xnor.active_path() == "numpy"
        yield xnor


@contextmanager
def kernels(path):
    """The module whose pack/gemm/conv2d/maxpool2d implement `path`."""
    if path == "reference":
        yield packing
        return
    if path == "fallback":
        with without_extension() as kern:
            yield kern
        return
    if path not in xnor.available_paths():
        reason = dispatch._unavailable_reason(path)
        pytest.skip(f"path {path!r} is not available here: {reason}")
    with xnor.use_path(path):
        yield xnor


SIDES = st.sampled_from([1, 2, 3, 5, 6, 7, 8, 13, 31, 32, 33, 64, 65, 70])
K_VALUES = st.one_of(st.sampled_from([1, 2, 63, 64, 65, 127, 128, 129, 576, 1000]), st.integers(1, 300))


def signs(rng, shape, dtype=np.float32):
    return rng.choice(np.array([-1, 1], dtype=dtype), size=shape)


def float_conv(x, w, stride, padding, pad_value):
    """The float convolution (NHWC, cross-correlation) of ±1 data, padded with pad_value (+1, -1 or 0)."""
    (sh, sw), (ph, pw) = stride, padding
    batch, height, width, _ = x.shape
    _, kh, kw, _ = w.shape
    xp = np.full((batch, height + 2 * ph, width + 2 * pw, x.shape[3]), float(pad_value))
    xp[:, ph:ph + height, pw:pw + width] = x
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    out = np.empty((batch, oh, ow, w.shape[0]))
    for y in range(oh):
        for z in range(ow):
            patch = xp[:, y * sh:y * sh + kh, z * sw:z * sw + kw, :]
            out[:, y, z, :] = np.einsum("bijc,oijc->bo", patch, w)
    return out


def float_maxpool(x, kernel, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    batch, height, width, channels = x.shape
    xp = np.full((batch, height + 2 * ph, width + 2 * pw, channels), -np.inf)
    xp[:, ph:ph + height, pw:pw + width] = x
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    out = np.empty((batch, oh, ow, channels))
    for y in range(oh):
        for z in range(ow):
            out[:, y, z] = xp[:, y * sh:y * sh + kh, z * sw:z * sw + kw].max(axis=(1, 2))
    return out


# --- the specification ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=30)
@given(m=SIDES, n=SIDES, k=K_VALUES, seed=st.integers(0, 2**32 - 1))
def test_gemm_equals_float_matmul(path, m, n, k, seed):
    rng = np.random.default_rng(seed)
    a, b = signs(rng, (m, k)), signs(rng, (n, k))
    with kernels(path) as kern:
        out = kern.gemm(kern.pack(a), kern.pack(b), k)
    assert out.dtype == np.int32 and out.shape == (m, n)
    np.testing.assert_array_equal(out, (a @ b.T).astype(np.int32))


@pytest.mark.parametrize("path", PATHS)
def test_gemm_large_k_and_tile_edges(path):
    rng = np.random.default_rng(1)
    a, b = signs(rng, (37, 4608)), signs(rng, (70, 4608))
    with kernels(path) as kern:
        np.testing.assert_array_equal(kern.gemm(kern.pack(a), kern.pack(b), 4608), (a @ b.T).astype(np.int32))
        # K beyond the 31-word byte-counter rounds of the AVX2/NEON kernels and not a multiple of 64
        a, b = signs(rng, (5, 2049)), signs(rng, (9, 2049))
        np.testing.assert_array_equal(kern.gemm(kern.pack(a), kern.pack(b), 2049), (a @ b.T).astype(np.int32))


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=20)
@given(m=SIDES, n=SIDES, k=K_VALUES, seed=st.integers(0, 2**32 - 1), use_scale=st.booleans(),
       use_bias=st.booleans())
def test_gemm_scale_bias_equal_float32_epilogue(path, m, n, k, seed, use_scale, use_bias):
    rng = np.random.default_rng(seed)
    a, b = signs(rng, (m, k)), signs(rng, (n, k))
    scale = rng.standard_normal(n).astype(np.float32) if use_scale else None
    bias = (rng.standard_normal(n) * 3).astype(np.float32) if use_bias or not use_scale else None
    expected = (a @ b.T).astype(np.float32)
    if scale is not None:
        expected = expected * scale
    if bias is not None:
        expected = expected + bias
    with kernels(path) as kern:
        out = kern.gemm(kern.pack(a), kern.pack(b), k, scale=scale, bias=bias)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.view(np.uint32), expected.view(np.uint32))   # bit for bit


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=20)
@given(m=SIDES, n=SIDES, k=K_VALUES, seed=st.integers(0, 2**32 - 1))
def test_gemm_threshold_emits_the_packed_signs(path, m, n, k, seed):
    rng = np.random.default_rng(seed)
    a, b = signs(rng, (m, k)), signs(rng, (n, k))
    scale = (rng.standard_normal(n) * rng.choice([0, 1, 1, 1], n)).astype(np.float32)   # some zero, some negative
    bias = rng.uniform(-k, k, n).astype(np.float32)
    bias[: n // 3] = np.round(bias[: n // 3])          # boundaries that the accumulators hit exactly
    threshold, direction = xnor.fold_threshold(scale, bias, k)
    expected_signs = np.where((a @ b.T).astype(np.float32) * scale + bias >= 0, 1.0, -1.0)
    with kernels(path) as kern:
        bits = kern.gemm(kern.pack(a), kern.pack(b), k, threshold=threshold, direction=direction)
    assert bits.dtype == np.uint64 and bits.shape == (m, packing.packed_width(n))
    np.testing.assert_array_equal(packing.unpack(bits, n), expected_signs)
    np.testing.assert_array_equal(bits, packing.pack(expected_signs))          # padding bits clean too


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=25)
@given(batch=st.integers(1, 2), hw=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       channels=st.sampled_from([1, 3, 63, 64, 65, 130]), out_ch=st.sampled_from([1, 5, 32, 33, 64, 70]),
       kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)), stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), pad_value=st.sampled_from([1, -1, 0]),
       seed=st.integers(0, 2**32 - 1))
def test_conv2d_equals_float_conv(path, batch, hw, channels, out_ch, kernel, stride, padding, pad_value, seed):
    height, width = max(hw[0], kernel[0]), max(hw[1], kernel[1])
    rng = np.random.default_rng(seed)
    x, w = signs(rng, (batch, height, width, channels)), signs(rng, (out_ch,) + kernel + (channels,))
    expected = float_conv(x, w, stride, padding, pad_value)
    with kernels(path) as kern:
        out = kern.conv2d(kern.pack(x), kern.pack(w), channels, stride=stride, padding=padding, pad_value=pad_value)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, expected.astype(np.int32))


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=10)
@given(channels=st.sampled_from([3, 64, 100]), out_ch=st.sampled_from([1, 40, 65]), seed=st.integers(0, 2**32 - 1),
       pad_value=st.sampled_from([1, 0]))
def test_conv2d_fused_transforms(path, channels, out_ch, seed, pad_value):
    rng = np.random.default_rng(seed)
    x, w = signs(rng, (2, 6, 5, channels)), signs(rng, (out_ch, 3, 3, channels))
    acc = float_conv(x, w, (1, 1), (1, 1), pad_value).astype(np.float32)
    scale = rng.standard_normal(out_ch).astype(np.float32)
    bias = rng.standard_normal(out_ch).astype(np.float32) * 5
    threshold, direction = xnor.fold_threshold(scale, bias, 9 * channels)
    with kernels(path) as kern:
        px, pw = kern.pack(x), kern.pack(w)
        y = kern.conv2d(px, pw, channels, padding=1, pad_value=pad_value, scale=scale, bias=bias)
        bits = kern.conv2d(px, pw, channels, padding=1, pad_value=pad_value, threshold=threshold,
                           direction=direction)
    np.testing.assert_array_equal(y.view(np.uint32), (acc * scale + bias).view(np.uint32))
    np.testing.assert_array_equal(bits, packing.pack(np.where(acc * scale + bias >= 0, 1, -1).astype(np.int8)))


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=20)
@given(batch=st.integers(1, 2), hw=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       channels=st.sampled_from([1, 63, 64, 65, 130]), kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))),
       pad=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_maxpool2d_equals_float_maxpool(path, batch, hw, channels, kernel, stride, pad, seed):
    height, width = max(hw[0], kernel[0]), max(hw[1], kernel[1])
    padding = (kernel[0] // 2, kernel[1] // 2) if pad else (0, 0)
    rng = np.random.default_rng(seed)
    x = signs(rng, (batch, height, width, channels))
    expected = float_maxpool(x, kernel, stride or kernel, padding)
    with kernels(path) as kern:
        out = kern.maxpool2d(kern.pack(x), kernel, stride, padding)
    np.testing.assert_array_equal(out, packing.pack(expected))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.int32])
@settings(max_examples=15)
@given(rows=st.integers(1, 4), k=K_VALUES, seed=st.integers(0, 2**32 - 1))
def test_pack_follows_the_bit_convention(path, dtype, rows, k, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, k)) * 3).astype(dtype)
    x.flat[rng.integers(0, x.size, size=min(5, x.size))] = 0          # sign(0) = +1
    if np.issubdtype(dtype, np.floating):
        x.flat[rng.integers(0, x.size)] = -0.0                       # also +1 (the sign bit is not the sign)
    expected = np.zeros((rows, packing.packed_width(k)), dtype=np.uint64)
    for r, j in zip(*np.nonzero(x < 0)):
        expected[r, j // 64] |= np.uint64(1) << np.uint64(j % 64)
    with kernels(path) as kern:
        np.testing.assert_array_equal(kern.pack(x), expected)
        np.testing.assert_array_equal(kern.pack(x[0]), expected[0])


# --- paths and dispatch -------------------------------------------------------------------------------------------

def test_extension_is_built_and_every_supported_path_is_available():
    if not xnor.extension_available():
        if os.environ.get("MINIBNN_ALLOW_NO_EXTENSION"):
            pytest.skip("testing the NumPy fallback only (MINIBNN_ALLOW_NO_EXTENSION is set)")
        pytest.fail(f"minibnn._xnor is not built ({xnor.EXTENSION_ERROR}); build it with `pip install -e .` or "
                    f"`python setup.py build_ext --inplace`, or set MINIBNN_ALLOW_NO_EXTENSION=1")
    features = xnor.cpu_features()
    available = xnor.available_paths()
    assert "scalar" in available and available[-1] == "numpy"
    if features["avx512vpopcntdq"] and features["avx512bw"] and features["avx512vl"]:
        assert "avx512" in available
    if features["avx2"]:
        assert "avx2" in available
    assert available[0] == xnor.kernel_info()["active_path"] or os.environ.get(xnor.ENV_VAR)


def test_forcing_paths(monkeypatch):
    monkeypatch.delenv(xnor.ENV_VAR, raising=False)
    xnor.set_path(None)
    best = xnor.active_path()
    with xnor.use_path("numpy"):
        assert xnor.active_path() == "numpy"
    assert xnor.active_path() == best
    with pytest.raises(ValueError, match="one of avx512, avx2, neon, scalar, numpy; got 'sse9'"):
        xnor.set_path("sse9")
    missing = [p for p in xnor.PATHS if p not in xnor.available_paths()]
    for p in missing:   # e.g. neon on x86: a clear refusal, never a crash
        with pytest.raises(RuntimeError, match=f"{p!r} cannot be used"):
            xnor.set_path(p)
    try:   # the variable is read at import and by set_path(None)
        monkeypatch.setenv(xnor.ENV_VAR, "numpy")
        xnor.set_path(None)
        assert xnor.active_path() == "numpy"
        monkeypatch.setenv(xnor.ENV_VAR, "fastest")
        xnor.set_path(None)
        with pytest.raises(ValueError, match="MINIBNN_KERNEL"):
            xnor.gemm(np.zeros((1, 1), np.uint64), np.zeros((1, 1), np.uint64), 1)
        if missing:
            monkeypatch.setenv(xnor.ENV_VAR, missing[0])
            xnor.set_path(None)
            with pytest.raises(RuntimeError, match="MINIBNN_KERNEL"):
                xnor.active_path()
    finally:
        monkeypatch.undo()
        xnor.set_path(None)


def test_import_without_extension_falls_back_to_numpy(tmp_path):
    """`import minibnn.xnor` must work when minibnn._xnor cannot be imported (no compiler at install time)."""
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'minibnn._xnor': raise ImportError('blocked for the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np\n"
        "from minibnn import xnor\n"
        "assert not xnor.extension_available() and xnor.active_path() == 'numpy'\n"
        "assert xnor.available_paths() == ('numpy',)\n"
        "a = np.array([[1., -1., 1.]], dtype=np.float32)\n"
        "assert xnor.gemm(xnor.pack(a), xnor.pack(a), 3)[0, 0] == 3\n"
        "info = xnor.kernel_info()\n"
        "assert info['threads'] == 1 and not info['openmp'] and set(info['cpu_features']) >= {'avx2', 'neon'}\n"
        "from minibnn.xnor import backend\n"
        "assert not backend.kernels_enabled()   # automatic: off, the NumPy path is slower than a float matmul\n"
        "try:\n"
        "    xnor.set_path('scalar')\n"
        "except RuntimeError as e:\n"
        "    assert 'not built' in str(e)\n"
        "else:\n"
        "    raise SystemExit('forcing a compiled path without the extension did not raise')\n"
        "print('ok')\n")
    env = dict(os.environ)
    env.pop(xnor.ENV_VAR, None)
    env.pop("MINIBNN_USE_KERNELS", None)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(xnor.__file__))))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_fallback_packs_scaled_rows_and_real_activations():
    """The entry points outside the specification table (pack_scaled; gemm on real values) without the extension."""
    rng = np.random.default_rng(5)
    x = signs(rng, (4, 70)) * np.float32(0.5)
    x[1, 3] = 2.0                                                  # not a scaled sign row: magnitude NaN
    w = xnor.pack(signs(rng, (3, 70)))
    with without_extension() as kern:
        bits, mag = kern.pack_scaled(x)
        fused = kern.gemm(x, w, 70)
    ref_bits, ref_mag = packing.pack_scaled(x)
    np.testing.assert_array_equal(bits, ref_bits)
    np.testing.assert_array_equal(mag, ref_mag)
    np.testing.assert_array_equal(fused, packing.gemm(packing.pack(x), w, 70))


def test_threads_give_identical_results():
    if not xnor.extension_available():
        pytest.skip("the NumPy path has no threads")
    rng = np.random.default_rng(3)
    a, b = xnor.pack(signs(rng, (300, 700))), xnor.pack(signs(rng, (200, 700)))
    with minibnn.num_threads(1):
        one = xnor.gemm(a, b, 700)
    with minibnn.num_threads(2):
        two = xnor.gemm(a, b, 700)
    np.testing.assert_array_equal(one, two)
    with pytest.raises(ValueError, match="set_num_threads: n must be an int >= 1"):
        minibnn.set_num_threads(0)


def test_fold_threshold_is_exact_at_every_accumulator():
    rng = np.random.default_rng(4)
    k = 101
    scale = np.concatenate([rng.standard_normal(50), [0.0, 0.0, -1e-30, 1e-30, 3.0, -3.0]]).astype(np.float32)
    bias = np.concatenate([rng.uniform(-120, 120, 50), [1.0, -1.0, 0.5, -0.5, 3.0 * 7, 3.0 * 7]]).astype(np.float32)
    threshold, direction = xnor.fold_threshold(scale, bias, k)
    acc = np.arange(-k, k + 1, dtype=np.int32)[:, None]
    wanted = acc.astype(np.float32) * scale + bias >= 0
    got = np.where(direction > 0, acc >= threshold, acc <= threshold)
    np.testing.assert_array_equal(got, wanted)


# --- bad input: a clear error naming the argument, never a crash ----------------------------------------------------

def _w(*shape):
    return np.zeros(shape, dtype=np.uint64)


@pytest.mark.parametrize("path", [p for p in PATHS if p != "reference"])
@pytest.mark.parametrize("call, error, message", [
    (lambda: xnor.gemm(_w(2, 1).astype(np.int64), _w(3, 1), 10), TypeError, "a must have dtype uint64.*int64"),
    (lambda: xnor.gemm([[0]], _w(3, 1), 10), TypeError, "a must be a numpy array"),
    (lambda: xnor.gemm(_w(2, 1), _w(3, 1).astype(">u8"), 10), TypeError, "b must have dtype uint64"),
    (lambda: xnor.gemm(_w(2, 4)[:, ::2], _w(3, 2), 100), ValueError, "a must be C-contiguous"),
    (lambda: xnor.gemm(_w(2, 1), _w(3, 2), 64), ValueError, "ceil\\(64/64\\) = 1 words.*b has shape \\(3, 2\\)"),
    (lambda: xnor.gemm(_w(2, 2), _w(3, 2), 64), ValueError, "k=64 needs ceil\\(64/64\\) = 1 words.*a"),
    (lambda: xnor.gemm(_w(2, 1) + 8, _w(3, 1), 3), ValueError, "a has set bits past k=3"),
    (lambda: xnor.gemm(_w(2, 0), _w(3, 1), 10), ValueError, "a is empty \\(shape \\(2, 0\\)\\)"),
    (lambda: xnor.gemm(_w(2, 1), _w(0, 1), 10), ValueError, "b is empty \\(shape \\(0, 1\\)\\)"),
    (lambda: xnor.gemm(_w(2, 1), _w(3, 1), 0), ValueError, "k must be an int >= 1, got 0"),
    (lambda: xnor.gemm(_w(2, 1), _w(3, 1), 2.0), TypeError, "k must be an int, got 2.0"),
    (lambda: xnor.gemm(_w(2, 1), _w(3, 1), 2**31), ValueError, "too large for int32"),
    (lambda: xnor.gemm(_w(2, 1), _w(3), 10), ValueError, "b must be 2-D"),
    (lambda: xnor.gemm(_w(2**20, 1), _w(2**20, 1), 10), ValueError, "output of shape \\(1048576, 1048576\\)"),
    (lambda: xnor.gemm(_w(2, 1), _w(3, 1), 10, scale=np.ones(3)), TypeError, "scale must be .* float32.*float64"),
    (lambda: xnor.gemm(_w(2, 1), _w(3, 1), 10, bias=np.ones(4, np.float32)), ValueError, "bias must have shape \\(3,\\)"),
    (lambda: xnor.gemm(_w(2, 1), _w(3, 1), 10, threshold=np.ones(3, np.int32), scale=np.ones(3, np.float32)),
     ValueError, "either threshold"),
    (lambda: xnor.gemm(_w(2, 1), _w(3, 1), 10, threshold=np.ones(3, np.int32), direction=np.zeros(3, np.int8)),
     ValueError, "direction must hold only \\+1 or -1, got 0"),
    (lambda: xnor.gemm(_w(2, 1), _w(3, 1), 10, direction=np.ones(3, np.int8)), ValueError, "only applies"),
    (lambda: xnor.conv2d(_w(1, 4, 4, 1), _w(2, 3, 3, 2), 64), ValueError, "x has 1 words per pixel.*w has 2"),
    (lambda: xnor.conv2d(_w(1, 4, 4, 1), _w(2, 3, 3, 1), 65), ValueError, "channels=65 needs ceil\\(65/64\\) = 2"),
    (lambda: xnor.conv2d(_w(1, 2, 2, 1), _w(2, 3, 3, 1), 8), ValueError, "kernel 3x3 does not fit the input 2x2"),
    (lambda: xnor.conv2d(_w(1, 4, 4, 1), _w(2, 3, 3, 1), 8, stride=0), ValueError,
     "stride must be an int in \\[1, 2147483647\\] or a pair of them, got 0"),
    (lambda: xnor.conv2d(_w(1, 4, 4, 1), _w(2, 3, 3, 1), 8, padding=(1, 2, 3)), ValueError, "padding must be an int"),
    (lambda: xnor.conv2d(_w(1, 4, 4, 1), _w(2, 3, 3, 1), 8, pad_value=2), ValueError, "pad_value must be"),
    (lambda: xnor.conv2d(_w(1, 4, 4), _w(2, 3, 3, 1), 8), ValueError, "x must be 4-D"),
    (lambda: xnor.conv2d(_w(1, 1024, 1024, 1), _w(2**16, 1, 1, 1), 8), ValueError, "output of shape"),
    (lambda: xnor.maxpool2d(_w(1, 4, 4, 1), 2, padding=2), ValueError, "padding \\(2, 2\\) must be at most half"),
    (lambda: xnor.maxpool2d(_w(1, 4, 4, 1), 0), ValueError, "kernel_size must be an int in \\[1, "),
    (lambda: xnor.pack(np.zeros((2, 0), np.float32)), ValueError, "no empty axis"),
    (lambda: xnor.pack(np.zeros((4, 4), np.float32)[:, ::2]), ValueError, "x must be C-contiguous"),
    (lambda: xnor.pack(np.zeros(4, np.uint8)), TypeError, "x must be real.*uint8"),
    (lambda: xnor.pack(np.zeros(4, bool)), TypeError, "x must be real.*bool"),
    (lambda: xnor.unpack(_w(2, 1), 65), ValueError, "k=65 needs ceil\\(65/64\\) = 2 words"),
    (lambda: xnor.fold_threshold(np.ones(3), np.ones(2), 5), ValueError, "same length"),
    (lambda: xnor.fold_threshold(np.array([np.nan]), np.ones(1), 5), ValueError, "finite"),
])
def test_bad_input_raises_a_clear_error(path, call, error, message):
    with kernels(path):
        with pytest.raises(error, match=message):
            call()


# --- issue 10: huge integers, empty batches, unpack's dtype, byte order ----------------------------------------------

KERNEL_PATHS = [p for p in PATHS if p != "reference"]
HUGE = [2**31, 2**40, 2**62, 2**62 + 1, 2**63, 2**64 + 5, 2**100]


@pytest.mark.parametrize("path", KERNEL_PATHS)
@pytest.mark.parametrize("huge", HUGE)
@pytest.mark.parametrize("call, name", [
    (lambda v: xnor.conv2d(_w(1, 1, 1, 1), _w(1, 1, 1, 1), 1, stride=v, padding=v, pad_value=0), "stride"),
    (lambda v: xnor.conv2d(_w(1, 1, 1, 1), _w(1, 1, 1, 1), 1, padding=(1, v)), "padding"),
    (lambda v: xnor.conv2d(_w(1, 1, 1, 1), _w(1, 1, 1, 1), v), "channels"),
    (lambda v: xnor.maxpool2d(_w(1, 1, 1, 1), kernel_size=v, padding=v // 2), "kernel_size"),
    (lambda v: xnor.maxpool2d(_w(1, 1, 1, 1), 1, stride=(1, v)), "stride"),
    (lambda v: xnor.maxpool2d(_w(1, 1, 1, 1), 3, padding=v), "padding"),
    (lambda v: xnor.gemm(_w(1, 1), _w(1, 1), v), "k"),
    (lambda v: xnor.unpack(_w(1, 1), v), "k"),
    (lambda v: xnor.fold_threshold(np.ones(1, np.float32), np.ones(1, np.float32), v), "k"),
])
def test_huge_integers_get_the_librarys_error_naming_the_argument(path, huge, call, name):
    """Defects 1-3: never a crash, an OverflowError or a 64 TiB allocation; the same refusal on every path."""
    with kernels(path):
        with pytest.raises(ValueError, match=rf"xnor\.\w+: {name}\b"):
            call(huge)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stride, padding, pad_value", [
    ((2**30, 2**30), (2**30, 2**30), 1), ((2**30, 2**29), (2**30, 2**30), 0),
    ((xnor.MAX_EXTENT, 2**30 + 1), (2**30, 1), -1), ((xnor.MAX_EXTENT,) * 2, (xnor.MAX_EXTENT,) * 2, 0)])
def test_extreme_but_valid_stride_and_padding_are_computed_alike(path, stride, padding, pad_value):
    """The largest accepted strides and paddings give the exact answer on every path (the NumPy one included,
    which never builds the padded input): output pixel (y, x) reads the one real +1 pixel iff y*s == p."""
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = 2 * ph // sh + 1, 2 * pw // sw + 1
    assert oh * ow <= 16                                     # a few output pixels, computed from huge offsets
    expected = np.full((1, oh, ow, 1), pad_value, dtype=np.int32)
    for y in range(oh):
        for x in range(ow):
            if y * sh == ph and x * sw == pw:
                expected[0, y, x, 0] = 1
    with kernels(path) as kern:
        got = kern.conv2d(_w(1, 1, 1, 1), _w(1, 1, 1, 1), 1, stride=stride, padding=padding, pad_value=pad_value)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("path", PATHS)
def test_maxpool_with_a_kernel_far_larger_than_the_input(path):
    """Defect 2: only a window's real pixels take part, so a huge kernel costs no more than the input."""
    x = xnor.pack(np.array([[[[-1.0], [-1.0]], [[-1.0], [1.0]]]], dtype=np.float32))
    with kernels(path) as kern:
        out = kern.maxpool2d(x, kernel_size=2**20 + 1, padding=2**19)
        assert out.shape == (1, 1, 1, 1) and kern.unpack(out, 1)[0, 0, 0, 0] == 1
        all_minus = kern.maxpool2d(xnor.pack(-np.ones((1, 2, 2, 1), np.float32)), kernel_size=2**20 + 1,
                                   padding=2**19)
        assert all_minus[0, 0, 0, 0] == 1                       # -1 everywhere: the max is -1 (bit set)


@pytest.mark.parametrize("path", KERNEL_PATHS)
def test_empty_batches_give_empty_outputs_on_every_path(path):
    """Defect 5, the kernels' side: a (0, ...) input gives a (0, ...) output, with the dtype a batch would get."""
    w = xnor.pack(signs(np.random.default_rng(0), (3, 70)))
    cw = xnor.pack(signs(np.random.default_rng(1), (2, 3, 3, 5)))
    thr, d = np.zeros(3, np.int32), np.ones(3, np.int8)
    with kernels(path) as kern:
        for dtype in (np.float32, np.float64, np.int8, np.int32):
            assert kern.pack(np.zeros((0, 70), dtype)).shape == (0, 2)
        assert kern.pack(np.zeros((2, 0, 70), np.float32)).shape == (2, 0, 2)
        bits, mag = kern.pack_scaled(np.zeros((0, 70), np.float32))
        assert bits.shape == (0, 2) and mag.shape == (0,) and mag.dtype == np.float32
        assert kern.unpack(np.zeros((0, 2), np.uint64), 70).shape == (0, 70)
        out = kern.gemm(np.zeros((0, 2), np.uint64), w, 70)
        assert out.shape == (0, 3) and out.dtype == np.int32
        out = kern.gemm(np.zeros((0, 70), np.float32), w, 70, scale=np.ones(3, np.float32))
        assert out.shape == (0, 3) and out.dtype == np.float32
        out = kern.gemm(np.zeros((0, 2), np.uint64), w, 70, threshold=thr, direction=d)
        assert out.shape == (0, 1) and out.dtype == np.uint64
        out = kern.conv2d(np.zeros((0, 6, 5, 1), np.uint64), cw, 5, padding=1, pad_value=0)
        assert out.shape == (0, 6, 5, 2) and out.dtype == np.int32
        out = kern.maxpool2d(np.zeros((0, 6, 5, 1), np.uint64), 2)
        assert out.shape == (0, 3, 2, 1) and out.dtype == np.uint64
        with pytest.raises(ValueError, match="x is empty"):           # only the batch axis may be empty
            kern.conv2d(np.zeros((1, 0, 5, 1), np.uint64), cw, 5)


@pytest.mark.parametrize("path", KERNEL_PATHS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint64, bool, np.dtype(">u2")])
def test_unpack_refuses_dtypes_that_cannot_hold_minus_one(path, dtype):
    """Defect 4: uint8 gave [255 1 255] and bool all True; now a clear TypeError naming the dtype."""
    with kernels(path) as kern:
        with pytest.raises(TypeError, match="xnor.unpack: dtype must be a floating or signed integer"):
            kern.unpack(np.array([[5]], dtype=np.uint64), 3, dtype=dtype)
        np.testing.assert_array_equal(kern.unpack(np.array([[5]], dtype=np.uint64), 3, dtype=np.int16),
                                      [[-1, 1, -1]])


@pytest.mark.parametrize("path", KERNEL_PATHS)
@pytest.mark.parametrize("dtype", [">f8", ">f4", "<f8", "<f4", np.float16])
def test_pack_scaled_accepts_every_byte_order_like_pack(path, dtype):
    """Defect 11: big-endian float64 was refused by pack_scaled and accepted by pack."""
    x = np.array([[0.5, -0.5, 0.5], [1.0, 2.0, 1.0]]).astype(dtype)
    with kernels(path) as kern:
        bits, mag = kern.pack_scaled(x)
        np.testing.assert_array_equal(bits, kern.pack(x))
    np.testing.assert_array_equal(mag, [0.5, np.nan])


@pytest.mark.parametrize("path", PATHS)
def test_nan_packs_as_plus_one(path):
    """The one sign convention (minibnn.xnor.packing): bit = x < 0, so NaN, 0.0 and -0.0 are +1 (bit 0)."""
    x = np.array([[np.nan, -0.0, 0.0, -np.inf, -1.0, np.inf, -np.nan]], dtype=np.float32)
    with kernels(path) as kern:
        np.testing.assert_array_equal(kern.pack(x), [[0b11000]])
