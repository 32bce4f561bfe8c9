"""Dispatch of the XNOR-popcount kernels: check every argument, then run the compiled extension or NumPy.

The data layout (bit convention, word order, padding of K) is documented once, in :mod:`minibnn.xnor.packing`,
whose readable NumPy functions are also the specification these kernels are tested against. This module adds
speed and safety:

* every argument is checked here (dtype, C-contiguity, shapes, K against the number of words, clean padding
  bits, empty and absurd sizes) and a bad one raises a TypeError/ValueError that names it, with what was
  expected and what was given; the compiled code below this line does no checking at all;
* the work goes to the compiled extension ``minibnn._xnor`` (C with SIMD intrinsics, built from ``kernels/``,
  run without the GIL and on OpenMP threads) or, when it is not built, to the NumPy fallback. Importing this
  module never needs a compiler.

The operations: :func:`pack` / :func:`unpack`; :func:`pack_scaled` (pack, and tell which rows are exactly
c·(±1): how a binary layer checks its operands in the same pass); :func:`gemm` (on packed rows, or on real
activations packed on the fly inside the kernel) and :func:`conv2d`, each with a fused output transform (float
scale and bias, or a threshold that writes the next layer's bits: :func:`fold_threshold`); :func:`maxpool2d`
on bits.

Paths, fastest first: ``avx512`` (AVX-512 VPOPCNTDQ), ``avx2`` (nibble-table popcount with VPSHUFB), ``neon``
(ARM), ``scalar`` (64-bit popcount, any CPU) and ``numpy``. The best one this CPU supports is picked at run
time; the environment variable ``MINIBNN_KERNEL=avx512|avx2|neon|scalar|numpy`` (read at import and by
``set_path(None)``) or :func:`set_path` / :func:`use_path` force one (forcing a path the CPU or the build lacks
raises a RuntimeError saying why).

Example::

    >>> import numpy as np
    >>> from minibnn import xnor
    >>> a = np.where(np.arange(12).reshape(3, 4) % 3 == 0, -1.0, 1.0).astype(np.float32)
    >>> w = np.ones((2, 4), dtype=np.float32)
    >>> xnor.gemm(xnor.pack(a), xnor.pack(w), k=4)           # == a @ w.T
    array([[0, 0],
           [2, 2],
           [2, 2]], dtype=int32)
"""
from __future__ import annotations

import contextlib
import os
from typing import Dict, Iterator, Optional, Tuple, Union

import numpy as np

from .. import _checks
from . import packing

# Idle OpenMP threads must sleep, not spin, after a kernel call: a spinning thread steals the core of whatever
# else runs on a shared machine. libgomp reads this when the extension loads it (minibnn.threads has the policy).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
try:
    from .. import _xnor as _ext
    EXTENSION_ERROR: Optional[str] = None
except ImportError as _exc:  # not built (no compiler, or a plain source checkout): NumPy serves every call
    _ext = None
    EXTENSION_ERROR = str(_exc)

#: every path name, fastest first
PATHS = ("avx512", "avx2", "neon", "scalar", "numpy")
ENV_VAR = "MINIBNN_KERNEL"
#: the largest K an int32 accumulator holds
MAX_K = 2**31 - 1
#: the largest stride, padding, kernel size, channel count or array extent accepted (see minibnn._checks)
MAX_EXTENT = _checks.MAX_EXTENT

_forced: Optional[str] = None
_env_choice = os.environ.get(ENV_VAR, "").strip()   # read at import, and again by set_path(None)
_best: Optional[str] = None   # the fastest path this machine runs, found once

IntPair = Union[int, Tuple[int, int]]


# --- which path runs -----------------------------------------------------------------------------------------

def extension_available() -> bool:
    """True when the compiled kernels (minibnn._xnor) are importable."""
    return _ext is not None


def cpu_features() -> Dict[str, bool]:
    """The CPU features the kernels care about (popcnt, avx2, avx512f/bw/vl, avx512vpopcntdq, neon).

    Taken from CPUID/XGETBV by the extension; without it, from /proc/cpuinfo where that exists.
    """
    if _ext is not None:
        return dict(_ext.cpu_features())
    flags: set = set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    names = {"popcnt": "popcnt", "avx": "avx", "avx2": "avx2", "avx512f": "avx512f", "avx512bw": "avx512bw",
             "avx512vl": "avx512vl", "avx512vpopcntdq": "avx512_vpopcntdq", "neon": "asimd"}
    return {key: flag in flags for key, flag in names.items()}


def _unavailable_reason(name: str) -> Optional[str]:
    """Why path `name` cannot run here, or None if it can."""
    if name == "numpy":
        return None
    if _ext is None:
        return f"the compiled extension minibnn._xnor is not built ({EXTENSION_ERROR}); only 'numpy' runs"
    if not _ext.path_compiled(name):
        return f"this build of minibnn._xnor has no {name!r} kernels (the compiler did not target that ISA)"
    if not _ext.path_supported(name):
        have = ", ".join(k for k, v in _ext.cpu_features().items() if v) or "none"
        return f"this CPU does not support the {name!r} kernels (its features: {have})"
    return None


def available_paths() -> Tuple[str, ...]:
    """The paths that can run on this machine with this build, fastest first (always ends with 'numpy')."""
    return tuple(p for p in PATHS if _unavailable_reason(p) is None)


def _check_path_name(name: str, source: str) -> str:
    if not isinstance(name, str) or name not in PATHS:
        raise ValueError(f"{source} must be one of {', '.join(PATHS)}; got {name!r}")
    reason = _unavailable_reason(name)
    if reason is not None:
        raise RuntimeError(f"{source}={name!r} cannot be used: {reason}")
    return name


def set_path(name: Optional[str]) -> None:
    """Force kernel path `name` for every later call; None goes back to automatic: $MINIBNN_KERNEL (read again
    now) or else the best path."""
    global _forced, _env_choice
    if name is None:
        _env_choice = os.environ.get(ENV_VAR, "").strip()
        _forced = None
    else:
        _forced = _check_path_name(name, "set_path(name)")


@contextlib.contextmanager
def use_path(name: str) -> Iterator[str]:
    """Context manager: run the block on path `name`, then restore the previous choice."""
    global _forced
    previous = _forced
    set_path(name)
    try:
        yield name
    finally:
        _forced = previous


def active_path() -> str:
    """The path the next call will run: set_path's choice, else $MINIBNN_KERNEL, else the best available."""
    if _forced is not None:
        return _forced
    if _env_choice:
        return _check_path_name(_env_choice, f"the environment variable {ENV_VAR}")
    global _best
    if _best is None:
        _best = available_paths()[0]
    return _best


def set_kernel_threads(n: int) -> None:
    """The most threads a compiled kernel call may use; :func:`minibnn.set_num_threads` calls it (the one knob)."""
    if _ext is not None:
        _ext.set_num_threads(n)


def kernel_threads() -> int:
    """The most threads a compiled kernel call uses (set by :func:`minibnn.set_num_threads`; a call whose work is
    below the crossover runs on one); 1 without OpenMP or without the extension."""
    if _ext is None or not _ext.openmp_enabled():
        return 1
    n = int(_ext.get_num_threads())
    return n if n > 0 else int(_ext.max_threads())


def kernel_info() -> Dict[str, object]:
    """A summary for benchmark and bug reports: active path, available paths, CPU features, threads."""
    return {"active_path": active_path(), "available_paths": available_paths(), "cpu_features": cpu_features(),
            "extension": extension_available(), "openmp": bool(_ext is not None and _ext.openmp_enabled()),
            "threads": kernel_threads(),
            "idle_threads_sleep": bool(_ext is not None and _ext.openmp_enabled() and _ext.idle_threads_sleep())}


# --- argument checks -------------------------------------------------------------------------------------------

def _physical_memory() -> Optional[int]:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


_MEMORY = _physical_memory() or 2**48


def _check_output_size(fn: str, shape: Tuple[int, ...], itemsize: int) -> None:
    nbytes = itemsize
    for s in shape:
        nbytes *= int(s)
    if nbytes > _MEMORY:
        raise ValueError(f"{fn}: the output of shape {tuple(shape)} would need {nbytes / 2**30:.1f} GiB, more than "
                         f"this machine's {_MEMORY / 2**30:.1f} GiB of memory")


def _packed(fn: str, name: str, arr, ndim: int, layout: str, batch: bool = False) -> np.ndarray:
    """A packed operand: uint64, `ndim`-D, C-contiguous, aligned, no empty axis (but axis 0 when `batch`)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy array of packed uint64 words {layout}, got "
                        f"{type(arr).__name__}")
    if arr.dtype != np.uint64:
        raise TypeError(f"{fn}: {name} must have dtype uint64 (packed words, see minibnn.xnor.packing), got "
                        f"{arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D {layout}, got shape {arr.shape}")
    return _contiguous(fn, name, arr, layout, batch)


def _real_rows(fn: str, name: str, arr: np.ndarray, layout: str) -> np.ndarray:
    """A real operand to be packed on the fly: 2-D, C-contiguous, aligned (dtype already checked)."""
    if arr.ndim != 2:
        raise ValueError(f"{fn}: {name} must be 2-D {layout} (real values) or packed words, got shape {arr.shape}")
    return _contiguous(fn, name, arr, layout, batch=True)


def _contiguous(fn: str, name: str, arr: np.ndarray, layout: str, batch: bool) -> np.ndarray:
    """What the compiled code needs of every operand it reads: C order, aligned, every extent in
    [1, MAX_EXTENT] -- except the batch axis 0, which may be empty when `batch` (an empty batch)."""
    inner = arr.shape[1:] if batch else arr.shape
    if 0 in inner:
        allowed = "; only axis 0 (the batch) may be 0" if batch else ""
        raise ValueError(f"{fn}: {name} is empty (shape {arr.shape}); expected every axis of {layout} >= 1"
                         f"{allowed}")
    if max(arr.shape, default=0) > MAX_EXTENT:
        raise ValueError(f"{fn}: {name} has shape {arr.shape}; every extent must be <= {MAX_EXTENT}")
    if not (arr.flags.c_contiguous and arr.flags.aligned):
        raise ValueError(f"{fn}: {name} must be C-contiguous and aligned (strides {arr.strides} for shape "
                         f"{arr.shape}); pass np.ascontiguousarray({name})")
    return arr


def _to_pack(fn: str, x) -> np.ndarray:
    """The array x of pack / pack_scaled: at least one axis, a non-empty last axis, C-contiguous (dtype checked
    by each). Leading axes may be empty (an empty batch packs to an empty batch)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: x must be a numpy array, got {type(x).__name__}")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"{fn}: x must have at least one axis and a non-empty last axis (no empty axis to pack), "
                         f"got shape {x.shape}")
    if max(x.shape) > MAX_EXTENT:
        raise ValueError(f"{fn}: x has shape {x.shape}; every extent must be <= {MAX_EXTENT}")
    if not (x.flags.c_contiguous and x.flags.aligned):
        raise ValueError(f"{fn}: x must be C-contiguous (strides {x.strides} for shape {x.shape}); pass "
                         f"np.ascontiguousarray(x)")
    return x


def _k(fn: str, name: str, k) -> int:
    """K, the length of the dot products: an int in [1, MAX_K] (an int32 accumulator holds -K..K)."""
    k = _checks.integer(fn, name, k, 1, maximum=None)
    if k > MAX_K:
        raise ValueError(f"{fn}: {name}={k} is too large for int32 accumulators (at most {MAX_K})")
    return k


def _check_k(fn: str, name: str, arr: np.ndarray, k: int, what: str) -> None:
    """The last axis must hold ceil(k/64) words whose bits past k are all 0 (padding with +1)."""
    words = packing.packed_width(k)
    if arr.shape[-1] != words:
        raise ValueError(f"{fn}: {what}={k} needs ceil({k}/64) = {words} words on the last axis of {name}, but "
                         f"{name} has shape {arr.shape}")
    if k % 64:
        if np.any(arr[..., -1] >> np.uint64(k % 64)):
            raise ValueError(f"{fn}: {name} has set bits past {what}={k} in its last word; the padding bits must "
                             f"be 0 (+1), as minibnn.xnor.packing.pack writes them")


def _vector(fn: str, name: str, v, n: int, dtype, what: str) -> Optional[np.ndarray]:
    if v is None:
        return None
    if not isinstance(v, np.ndarray) or v.dtype != dtype:
        got = v.dtype if isinstance(v, np.ndarray) else type(v).__name__
        raise TypeError(f"{fn}: {name} must be a numpy array of dtype {np.dtype(dtype)} ({what}), got {got}")
    if v.shape != (n,):
        raise ValueError(f"{fn}: {name} must have shape ({n},), one value per output, got {v.shape}")
    return np.ascontiguousarray(v)


_NO_TRANSFORM = {"scale": None, "bias": None, "threshold": None, "direction": None}


def _transform(fn: str, n: int, scale, bias, threshold, direction) -> dict:
    if scale is None and bias is None and threshold is None and direction is None:
        return _NO_TRANSFORM
    if threshold is not None and (scale is not None or bias is not None):
        raise ValueError(f"{fn}: give either threshold (packed ±1 outputs) or scale/bias (float32 outputs), not "
                         f"both; fold a BatchNorm into a threshold with minibnn.xnor.fold_threshold")
    if direction is not None and threshold is None:
        raise ValueError(f"{fn}: direction only applies together with threshold")
    t = {"scale": _vector(fn, "scale", scale, n, np.float32, "per-output scale"),
         "bias": _vector(fn, "bias", bias, n, np.float32, "per-output bias"),
         "threshold": _vector(fn, "threshold", threshold, n, np.int32, "per-output integer threshold"),
         "direction": _vector(fn, "direction", direction, n, np.int8, "+1 or -1 per output")}
    if t["direction"] is not None and not np.all((t["direction"] == 1) | (t["direction"] == -1)):
        bad = t["direction"][(t["direction"] != 1) & (t["direction"] != -1)][0]
        raise ValueError(f"{fn}: direction must hold only +1 or -1, got {bad}")
    return t


def _output_spec(fn: str, lead: Tuple[int, ...], n: int, t: dict) -> Tuple[Tuple[int, ...], type]:
    """Shape and dtype of the output for `lead` rows of n outputs (typed by the transform); refuses absurd sizes."""
    if t["threshold"] is not None:
        shape, dtype = lead + (packing.packed_width(n),), np.uint64
    else:
        shape = lead + (n,)
        dtype = np.float32 if (t["scale"] is not None or t["bias"] is not None) else np.int32
    _check_output_size(fn, shape, np.dtype(dtype).itemsize)
    return shape, dtype


def _allocate(shape: Tuple[int, ...], dtype) -> np.ndarray:
    """Packed outputs are OR-ed in by the kernels, so they start from zero."""
    return np.zeros(shape, dtype=dtype) if dtype == np.uint64 else np.empty(shape, dtype=dtype)


# --- kernels ---------------------------------------------------------------------------------------------------

_PACK_C = {np.dtype(np.float32): "pack_f32", np.dtype(np.float64): "pack_f64", np.dtype(np.int8): "pack_i8"}
_PACK_SCALED_C = {np.dtype(np.float32): "pack_scaled_f32", np.dtype(np.float64): "pack_scaled_f64"}


def pack(x: np.ndarray) -> np.ndarray:
    """Pack the signs of `x` along its last axis (bit = x < 0: sign(0) = +1, NaN -> +1): (..., K) -> uint64
    (..., ceil(K/64)).

    float32, float64 and int8 in native byte order are packed by the compiled kernels; other floating and signed
    integer dtypes (big-endian ones included) by NumPy. Leading axes may be empty: (0, K) -> (0, ceil(K/64)).

    >>> pack(np.array([[-1., 2., 0., -0.5]], dtype=np.float32))
    array([[9]], dtype=uint64)
    """
    fn = "xnor.pack"
    if isinstance(x, np.ndarray) and not (np.issubdtype(x.dtype, np.floating)
                                          or np.issubdtype(x.dtype, np.signedinteger)):
        raise TypeError(f"{fn}: x must be real (float or signed integer), got dtype {x.dtype}")
    x = _to_pack(fn, x)
    path = active_path()
    kernel = _PACK_C.get(x.dtype) if x.dtype.isnative else None
    if path == "numpy" or kernel is None or x.size == 0:
        return packing.pack(x)
    k = x.shape[-1]
    out_shape = x.shape[:-1] + (packing.packed_width(k),)
    out = np.empty(out_shape, dtype=np.uint64)
    getattr(_ext, kernel)(path, x.reshape(-1, k), out.reshape(-1, out_shape[-1]), 0)
    return out


def pack_scaled(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Pack the signs of `x` (as :func:`pack`) and find the rows that are ``c_r · (±1, ..., ±1)``, in one pass.

    Returns (packed (..., ceil(K/64)), magnitudes (...) of x's dtype): ``|x[r, 0]|`` for a row whose every
    element has that magnitude, NaN for any other row. ±1 data has magnitudes 1; a weight row scaled by α has
    |α|. This is how a binary layer checks cheaply that its operands are exactly what the kernel computes with
    (see :mod:`minibnn.xnor.packing`, ``pack_scaled``). Any floating dtype is accepted, as by :func:`pack`
    (native float32 and float64 run compiled; the others, big-endian included, run in NumPy).

    >>> pack_scaled(np.array([[1., -1., 1.], [0.5, -2., 1.]], dtype=np.float32))
    (array([[2],
           [2]], dtype=uint64), array([ 1., nan], dtype=float32))
    """
    fn = "xnor.pack_scaled"
    if isinstance(x, np.ndarray) and not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{fn}: x must be a floating array (float32 or float64), got dtype {x.dtype}")
    x = _to_pack(fn, x)
    path = active_path()
    kernel = _PACK_SCALED_C.get(x.dtype) if x.dtype.isnative else None
    if path == "numpy" or kernel is None or x.size == 0:
        return packing.pack_scaled(x)
    k = x.shape[-1]
    out = np.empty(x.shape[:-1] + (packing.packed_width(k),), dtype=np.uint64)
    mag = np.empty(x.shape[:-1], dtype=x.dtype)
    getattr(_ext, kernel)(path, x.reshape(-1, k), out.reshape(-1, out.shape[-1]), mag.reshape(-1), 0)
    return out, mag


def unpack(packed: np.ndarray, k: int, dtype=np.float32) -> np.ndarray:
    """Packed words (..., ceil(k/64)) -> ±1 values (..., k) of `dtype` (the inverse of :func:`pack` on ±1 data).

    `dtype` must hold -1: a floating or signed integer dtype (uint8 or bool are refused: -1 has no value there).

    >>> unpack(pack(np.array([[1., -1., -1.]])), 3, dtype=np.int8)
    array([[ 1, -1, -1]], dtype=int8)
    """
    fn = "xnor.unpack"
    k = _k(fn, "k", k)
    dtype = packing.unpack_dtype(dtype, fn)
    if not isinstance(packed, np.ndarray) or packed.dtype != np.uint64:
        got = packed.dtype if isinstance(packed, np.ndarray) else type(packed).__name__
        raise TypeError(f"{fn}: packed must be a numpy array of dtype uint64, got {got}")
    if packed.ndim == 0 or packed.shape[-1] == 0:
        raise ValueError(f"{fn}: packed must have at least one axis and a non-empty last axis, got shape "
                         f"{packed.shape}")
    _check_k(fn, "packed", packed, k, "k")
    return packing.unpack(packed, k, dtype)


def gemm(a: np.ndarray, b: np.ndarray, k: int, *, scale: Optional[np.ndarray] = None,
         bias: Optional[np.ndarray] = None, threshold: Optional[np.ndarray] = None,
         direction: Optional[np.ndarray] = None) -> np.ndarray:
    """Binary GEMM on packed rows: ``acc[m, n] = sum_k a[m, k] b[n, k] = k - 2 popcount(a[m] XOR b[n])``.

    Args:
        a: packed uint64 (M, W) -- e.g. activations, one row per sample; or the real values themselves, float32,
            float64 or int8 (M, k), whose signs are then packed on the fly inside the kernel, block by block
            (bit = a < 0, as :func:`pack`): the same result as ``gemm(pack(a), b, k)``, without a pass over
            memory for the packed copy. M may be 0 (an empty batch gives an empty output).
        b: packed uint64 (N, W) -- e.g. weights, one row per output (like a Linear layer's weight).
        k: the true length of the rows; W must equal ceil(k / 64) (and a real `a` must have k columns).
        scale, bias: float32 (N,): return ``float32(acc) * scale + bias`` (BatchNorm folded in).
        threshold: int32 (N,), with optional direction int8 (N,) of ±1: return the ±1 outputs
            ``+1 if acc >= threshold else -1`` (``<=`` where direction is -1) packed along N, shape
            (M, ceil(N / 64)) -- the next binary layer's input, never unpacked (see :func:`fold_threshold`).
    Returns:
        int32 (M, N) by default; float32 (M, N) with scale/bias; packed uint64 (M, ceil(N/64)) with threshold.
    """
    fn = "xnor.gemm"
    real = isinstance(a, np.ndarray) and a.dtype in _PACK_C and a.dtype.isnative
    a = _real_rows(fn, "a", a, "(M, k)") if real else _packed(fn, "a", a, 2, "(M, W)", batch=True)
    b = _packed(fn, "b", b, 2, "(N, W)")
    k = _k(fn, "k", k)
    if real:
        if a.shape[1] != k:
            raise ValueError(f"{fn}: a holds real values of shape {a.shape}, so k must be {a.shape[1]}, got k={k}")
    else:
        _check_k(fn, "a", a, k, "k")
    _check_k(fn, "b", b, k, "k")
    t = _transform(fn, b.shape[0], scale, bias, threshold, direction)
    shape, dtype = _output_spec(fn, (a.shape[0],), b.shape[0], t)
    if a.shape[0] == 0:                                     # an empty batch: nothing to compute, on every path
        return _allocate(shape, dtype)
    path = active_path()
    if path == "numpy":
        return packing.gemm(packing.pack(a) if real else a, b, k, **t)
    out = _allocate(shape, dtype)
    kernel = _ext.gemm_real if real else _ext.gemm
    kernel(path, a, b, k, out, t["scale"], t["bias"], t["threshold"], t["direction"], 0)
    return out


def conv2d(x: np.ndarray, w: np.ndarray, channels: int, *, stride: IntPair = 1, padding: IntPair = 0,
           pad_value: int = 1, scale: Optional[np.ndarray] = None, bias: Optional[np.ndarray] = None,
           threshold: Optional[np.ndarray] = None, direction: Optional[np.ndarray] = None) -> np.ndarray:
    """Binary 2-D convolution of packed NHWC data (cross-correlation, like every deep-learning conv2d).

    ``acc[b, y, x, o] = sum_{i, j, c} x[b, y*sh - ph + i, x*sw - pw + j, c] * w[o, i, j, c]``

    Args:
        x: packed input (B, H, W, ceil(C/64)) -- channels last, packed (minibnn.xnor.packing); B may be 0.
        w: packed weights (O, KH, KW, ceil(C/64)).
        channels: C, the true number of input channels.
        stride, padding: int or (h, w) pair, each at most :data:`MAX_EXTENT`.
        pad_value: +1 (default, "one-padding"), -1, or 0 (exact zero padding via a correction term; see
            minibnn.xnor.packing.conv2d).
        scale, bias, threshold, direction: per output channel, as in :func:`gemm`.
    Returns:
        (B, OH, OW, O) int32 or float32, or packed uint64 (B, OH, OW, ceil(O/64)) with a threshold.

    >>> x = pack(np.ones((1, 3, 3, 5), np.float32)); w = pack(-np.ones((2, 3, 3, 5), np.float32))
    >>> conv2d(x, w, 5, padding=1, pad_value=0)[0, :, :, 0]      # -(5 channels x the taps on the image)
    array([[-20, -30, -20],
           [-30, -45, -30],
           [-20, -30, -20]], dtype=int32)
    """
    fn = "xnor.conv2d"
    x = _packed(fn, "x", x, 4, "(batch, height, width, ceil(channels/64))", batch=True)
    w = _packed(fn, "w", w, 4, "(out_channels, kernel_h, kernel_w, ceil(channels/64))")
    channels = _checks.integer(fn, "channels", channels, 1)
    (sh, sw), (ph, pw) = _checks.pair(fn, "stride", stride, 1), _checks.pair(fn, "padding", padding, 0)
    if isinstance(pad_value, (bool, np.bool_)) or pad_value not in (1, -1, 0):
        raise ValueError(f"{fn}: pad_value must be +1 (one-padding), -1 or 0 (zero padding), got {pad_value!r}")
    pad_value = int(pad_value)
    if x.shape[3] != w.shape[3]:
        raise ValueError(f"{fn}: x has {x.shape[3]} words per pixel (shape {x.shape}) but w has {w.shape[3]} "
                         f"(shape {w.shape}); both must be ceil(channels/64)")
    _check_k(fn, "x", x, channels, "channels")
    _check_k(fn, "w", w, channels, "channels")
    batch, height, width, _ = x.shape
    out_ch, kh, kw, _ = w.shape
    if kh * kw * channels > MAX_K:
        raise ValueError(f"{fn}: kernel {kh}x{kw} over {channels} channels gives dot products of length "
                         f"{kh * kw * channels}, too long for int32 accumulators (at most {MAX_K})")
    if height + 2 * ph < kh or width + 2 * pw < kw:
        raise ValueError(f"{fn}: kernel {kh}x{kw} does not fit the input {height}x{width} with padding "
                         f"({ph}, {pw})")
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    t = _transform(fn, out_ch, scale, bias, threshold, direction)
    shape, dtype = _output_spec(fn, (batch, oh, ow), out_ch, t)
    if batch == 0:                                          # an empty batch: nothing to compute, on every path
        return _allocate(shape, dtype)
    path = active_path()
    if path == "numpy":
        return packing.conv2d(x, w, channels, stride=(sh, sw), padding=(ph, pw), pad_value=pad_value, **t)
    out = _allocate(shape, dtype)
    _ext.conv2d(path, x, w, channels, sh, sw, ph, pw, pad_value, out.reshape(batch * oh * ow, out.shape[-1]),
                t["scale"], t["bias"], t["threshold"], t["direction"], 0)
    return out


def maxpool2d(x: np.ndarray, kernel_size: IntPair, stride: Optional[IntPair] = None,
              padding: IntPair = 0) -> np.ndarray:
    """Max-pool packed NHWC data (B, H, W, words) directly on the bits: the AND of each window's words.

    stride defaults to kernel_size; padding (skipped pixels) must be at most kernel_size // 2; B may be 0.

    >>> x = pack(np.array([[[[-1.], [1.]], [[-1.], [-1.]]]]))
    >>> unpack(maxpool2d(x, 2), 1).ravel()
    array([1.], dtype=float32)
    """
    fn = "xnor.maxpool2d"
    x = _packed(fn, "x", x, 4, "(batch, height, width, words)", batch=True)
    kh, kw = _checks.pair(fn, "kernel_size", kernel_size, 1)
    sh, sw = (kh, kw) if stride is None else _checks.pair(fn, "stride", stride, 1)
    ph, pw = _checks.pair(fn, "padding", padding, 0)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"{fn}: padding ({ph}, {pw}) must be at most half the kernel ({kh}, {kw})")
    batch, height, width, wc = x.shape
    if height + 2 * ph < kh or width + 2 * pw < kw:
        raise ValueError(f"{fn}: kernel {kh}x{kw} does not fit the input {height}x{width} with padding "
                         f"({ph}, {pw})")
    oh, ow = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    _check_output_size(fn, (batch, oh, ow, wc), 8)
    if batch == 0:                                          # an empty batch: nothing to compute, on every path
        return np.empty((0, oh, ow, wc), dtype=np.uint64)
    path = active_path()
    if path == "numpy":
        return packing.maxpool2d(x, (kh, kw), (sh, sw), (ph, pw))
    out = np.empty((batch, oh, ow, wc), dtype=np.uint64)
    _ext.maxpool2d(x, kh, kw, sh, sw, ph, pw, out, 0)
    return out


def fold_threshold(scale: np.ndarray, bias: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Fold ``sign(float32(acc) * scale + bias)`` into an integer threshold and a direction per output.

    For every integer acc in [-k, k], with sign(0) = +1 (Sari et al. 2019, eq. 2):
        ``float32(acc) * scale + bias >= 0``  <=>  ``acc >= threshold`` (direction +1, scale >= 0)
                                              <=>  ``acc <= threshold`` (direction -1, scale < 0),
    evaluated exactly as the float32 epilogue of :func:`gemm` rounds, so ``gemm(..., threshold=t,
    direction=d)`` equals ``pack(gemm(..., scale=scale, bias=bias))`` bit for bit.

    Args:
        scale, bias: float32 (N,) -- e.g. gamma / sqrt(var + eps) and beta - mean * scale of a BatchNorm.
        k: the length of the dot products.
    Returns:
        (threshold int32 (N,), direction int8 (N,)).
    """
    fn = "xnor.fold_threshold"
    k = _checks.integer(fn, "k", k, 1, maximum=MAX_K - 1)
    scale = np.asarray(scale)
    bias = np.asarray(bias)
    if scale.ndim != 1 or bias.shape != scale.shape:
        raise ValueError(f"{fn}: scale and bias must be 1-D of the same length, got {scale.shape} and {bias.shape}")
    scale, bias = scale.astype(np.float32), bias.astype(np.float32)
    if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(bias))):
        raise ValueError(f"{fn}: scale and bias must be finite")
    direction = np.where(scale < 0, -1, 1).astype(np.int8)

    def plus_one(acc: np.ndarray) -> np.ndarray:  # the float32 epilogue, exactly
        return acc.astype(np.float32) * scale + bias >= 0

    with np.errstate(divide="ignore", invalid="ignore"):
        real = -bias.astype(np.float64) / scale.astype(np.float64)
    t = np.where(direction > 0, np.ceil(real), np.floor(real))
    t = np.where(scale == 0, np.where(bias >= 0, -k, k + 1), t)      # constant output
    t = np.clip(np.nan_to_num(t), -k - 1, k + 1).astype(np.int64)
    # float32 rounding can move the boundary by a unit or two; the test is monotone in acc, so step to it:
    # direction +1 wants the smallest t with plus_one(t), direction -1 the largest.
    up, steps = direction > 0, scale != 0
    for _ in range(1024):
        at, below, above = plus_one(t), plus_one(t - 1), plus_one(t + 1)
        down = np.where(up, (t - 1 >= -k) & below, (t >= -k) & ~at) & steps
        rise = np.where(up, (t <= k) & ~at, (t + 1 <= k) & above) & steps
        if not (down.any() or rise.any()):
            break
        t = t - down + rise
    return t.astype(np.int32), direction
