# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""minibnn._xnor -- the compiled XNOR-popcount kernels (C sources in kernels/), called by minibnn.xnor.

minibnn.xnor validates shapes, sizes and values and is the usual caller. This module is nevertheless safe on its
own: integers are checked against the range the C code indexes safely (minibnn._checks.MAX_EXTENT) and a bad
one raises the library's ValueError naming it; arrays are checked for consistent shapes; the C drivers check
their sizes once more (MB_ERR_RANGE). Every kernel runs without the GIL.

Threads: a kernel call runs on up to ``get_num_threads()`` OpenMP threads (``set_num_threads``; the
``nthreads`` argument of a call, when > 0, overrides it), and on several only when its work passes
``get_parallel_min_macs()`` binary multiply-accumulates (``PARALLEL_MIN_MACS`` by default). Idle threads never
spin between calls: libgomp reads its wait policy when this extension loads it, so the importer must put
``OMP_WAIT_POLICY=PASSIVE`` in ``os.environ`` first (minibnn does); without a passive (or explicitly active)
policy every call runs on one thread (see ``idle_threads_sleep``).
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t

from minibnn import _checks

cdef extern from "mb_kernels.h" nogil:
    enum:
        MB_PATH_SCALAR
        MB_PATH_AVX2
        MB_PATH_AVX512
        MB_PATH_NEON
        MB_OUT_INT32
        MB_OUT_FLOAT32
        MB_OUT_BITS
        MB_OK
        MB_ERR_NOMEM
        MB_ERR_RANGE
        MB_DTYPE_F32
        MB_DTYPE_F64
        MB_DTYPE_I8
    ctypedef struct mb_epilogue_t:
        int mode
        int32_t k
        void *out
        int64_t ldo
        const float *scale
        const float *bias
        const int32_t *threshold
        const int8_t *direction
    ctypedef struct mb_cpu_t:
        int popcnt, avx, avx2, avx512f, avx512bw, avx512vl, avx512vpopcntdq, neon, os_ymm, os_zmm
    const mb_cpu_t *mb_cpu()
    int mb_path_compiled(int path)
    int mb_path_supported(int path)
    int mb_best_path()
    int mb_openmp_enabled()
    int mb_max_threads()
    void mb_set_num_threads(int n)
    int mb_get_num_threads()
    void mb_set_parallel_min_macs(int64_t macs)
    int64_t mb_get_parallel_min_macs()
    int mb_idle_threads_sleep()
    int mb_pack_f32(int path, const float *x, int64_t rows, int64_t k, uint64_t *out, int nthreads)
    int mb_pack_f64(int path, const double *x, int64_t rows, int64_t k, uint64_t *out, int nthreads)
    int mb_pack_i8(int path, const int8_t *x, int64_t rows, int64_t k, uint64_t *out, int nthreads)
    int mb_pack_scaled_f32(int path, const float *x, int64_t rows, int64_t k, uint64_t *out, float *mag,
                           int nthreads)
    int mb_pack_scaled_f64(int path, const double *x, int64_t rows, int64_t k, uint64_t *out, double *mag,
                           int nthreads)
    int mb_gemm_reference(const uint64_t *a, int64_t m_rows, const uint64_t *b, int64_t n_rows, int64_t w,
                          int32_t k, int32_t *out)
    int mb_gemm_real(int path, int dtype, const void *a, int64_t m_rows, int64_t k, const uint64_t *b,
                     int64_t n_rows, const mb_epilogue_t *epi, int nthreads)
    int mb_gemm(int path, const uint64_t *a, int64_t m_rows, const uint64_t *b, int64_t n_rows, int64_t w,
                const mb_epilogue_t *epi, int nthreads)
    int mb_conv2d(int path, const uint64_t *x, int64_t batch, int64_t h, int64_t w, int64_t wc,
                  const uint64_t *weights, int64_t o, int64_t kh, int64_t kw, int64_t channels,
                  int64_t sh, int64_t sw, int64_t ph, int64_t pw, int pad_value, int64_t oh, int64_t ow,
                  const mb_epilogue_t *epi, int nthreads)
    int mb_maxpool2d(const uint64_t *x, int64_t batch, int64_t h, int64_t w, int64_t wc, int64_t kh, int64_t kw,
                     int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh, int64_t ow, uint64_t *out,
                     int nthreads)
    int64_t MB_PARALLEL_MIN_MACS_DEFAULT "MB_PARALLEL_MIN_MACS"

cdef extern from "mb_internal.h":
    pass

cdef extern from "mb_bench.h" nogil:
    uint64_t mb_clock_probe(uint64_t n)

#: path name -> the C path number
PATHS = {"scalar": MB_PATH_SCALAR, "avx2": MB_PATH_AVX2, "avx512": MB_PATH_AVX512, "neon": MB_PATH_NEON}
#: the default crossover: a GEMM or convolution of fewer binary multiply-accumulates runs on one thread
PARALLEL_MIN_MACS = MB_PARALLEL_MIN_MACS_DEFAULT
MAX_EXTENT = _checks.MAX_EXTENT

mb_cpu()                  # CPUID once, at import, under the GIL
mb_idle_threads_sleep()   # the wait policy libgomp read when it was loaded


# --- the machine and the threads ----------------------------------------------------------------------------------

def cpu_features():
    """What this CPU (and its OS) offers, as detected by CPUID/XGETBV (x86) or the compiler target (ARM)."""
    cdef const mb_cpu_t *c = mb_cpu()
    return {"popcnt": bool(c.popcnt), "avx": bool(c.avx), "avx2": bool(c.avx2 and c.os_ymm),
            "avx512f": bool(c.avx512f and c.os_zmm), "avx512bw": bool(c.avx512bw and c.os_zmm),
            "avx512vl": bool(c.avx512vl and c.os_zmm), "avx512vpopcntdq": bool(c.avx512vpopcntdq and c.os_zmm),
            "neon": bool(c.neon)}


def path_compiled(str name):
    return bool(mb_path_compiled(PATHS[name]))


def path_supported(str name):
    return bool(mb_path_supported(PATHS[name]))


def best_path():
    cdef int p = mb_best_path()
    for name, value in PATHS.items():
        if value == p:
            return name


def openmp_enabled():
    return bool(mb_openmp_enabled())


def max_threads():
    """OpenMP's default thread count (OMP_NUM_THREADS, else every core); 1 without OpenMP."""
    return mb_max_threads()


def set_num_threads(n):
    """Threads for every later kernel call (0: back to OpenMP's default, max_threads()). A call still runs on
    one thread when its work is below the crossover (get_parallel_min_macs)."""
    mb_set_num_threads(_checks.integer("minibnn._xnor.set_num_threads", "n", n, 0, 1 << 16))


def get_num_threads():
    """The most threads a kernel call uses (1 without OpenMP)."""
    return mb_get_num_threads()


def set_parallel_min_macs(macs):
    """Override the crossover (benchmarks measure it with 0); None restores PARALLEL_MIN_MACS."""
    mb_set_parallel_min_macs(-1 if macs is None else
                             _checks.integer("minibnn._xnor.set_parallel_min_macs", "macs", macs, 0, 2**62))


def get_parallel_min_macs():
    """Binary multiply-accumulates from which a GEMM or convolution uses several threads."""
    return mb_get_parallel_min_macs()


def idle_threads_sleep():
    """True when the kernels may use several threads: OMP_WAIT_POLICY=passive or GOMP_SPINCOUNT=0 was in the
    environment when the extension was loaded, so idle OpenMP threads sleep at once (or OMP_WAIT_POLICY=active:
    the user asked for spinning threads). False: libgomp's default policy would spin after every call, so every
    call runs on one thread."""
    return bool(mb_idle_threads_sleep())


def clock_probe(uint64_t n):
    """Spend a known number of core cycles (a chain of dependent multiplies) and return it; 0 if unsupported.

    Timing this call gives the core clock actually running, turbo included, which nominal MHz does not."""
    cdef uint64_t r
    with nogil:
        r = mb_clock_probe(n)
    return r


# --- checks -------------------------------------------------------------------------------------------------------

cdef int _check(str fn, int status) except -1:
    if status == MB_ERR_NOMEM:
        raise MemoryError(f"minibnn._xnor.{fn}: could not allocate a scratch buffer")
    if status == MB_ERR_RANGE:
        raise ValueError(f"minibnn._xnor.{fn}: sizes out of the range the kernels index safely (every extent "
                         f"<= {MAX_EXTENT}, every array <= 2**48 elements) or inconsistent with each other")
    return 0


cdef int64_t _int(str fn, str name, value, int64_t minimum) except? -1:
    """value as an int in [minimum, MAX_EXTENT]: the library's ValueError naming it otherwise (never an
    OverflowError from the conversion to int64). A plain int in range takes the fast lane."""
    if type(value) is int and minimum <= value <= 2147483647:
        return value
    return _checks.integer(f"minibnn._xnor.{fn}", name, value, minimum)


cdef int _same(str fn, str what, got, expected) except -1:
    if got != expected:
        raise ValueError(f"minibnn._xnor.{fn}: {what} must be {expected}, got {got}")
    return 0


cdef int _path(str fn, str path) except -1:
    p = PATHS.get(path)
    if p is None:
        raise ValueError(f"minibnn._xnor.{fn}: path must be one of {', '.join(PATHS)}, got {path!r}")
    return p


# --- kernels ------------------------------------------------------------------------------------------------------

def pack_f32(str path, const float[:, ::1] x, uint64_t[:, ::1] out, int nthreads):
    cdef int p = _path("pack_f32", path), s
    if out.shape[0] != x.shape[0] or out.shape[1] != (x.shape[1] + 63) // 64:
        _same("pack_f32", "out's shape", (out.shape[0], out.shape[1]), (x.shape[0], (x.shape[1] + 63) // 64))
    with nogil:
        s = mb_pack_f32(p, &x[0, 0], x.shape[0], x.shape[1], &out[0, 0], nthreads)
    _check("pack_f32", s)


def pack_f64(str path, const double[:, ::1] x, uint64_t[:, ::1] out, int nthreads):
    cdef int p = _path("pack_f64", path), s
    if out.shape[0] != x.shape[0] or out.shape[1] != (x.shape[1] + 63) // 64:
        _same("pack_f64", "out's shape", (out.shape[0], out.shape[1]), (x.shape[0], (x.shape[1] + 63) // 64))
    with nogil:
        s = mb_pack_f64(p, &x[0, 0], x.shape[0], x.shape[1], &out[0, 0], nthreads)
    _check("pack_f64", s)


def pack_i8(str path, const int8_t[:, ::1] x, uint64_t[:, ::1] out, int nthreads):
    cdef int p = _path("pack_i8", path), s
    if out.shape[0] != x.shape[0] or out.shape[1] != (x.shape[1] + 63) // 64:
        _same("pack_i8", "out's shape", (out.shape[0], out.shape[1]), (x.shape[0], (x.shape[1] + 63) // 64))
    with nogil:
        s = mb_pack_i8(p, &x[0, 0], x.shape[0], x.shape[1], &out[0, 0], nthreads)
    _check("pack_i8", s)


def pack_scaled_f32(str path, const float[:, ::1] x, uint64_t[:, ::1] out, float[::1] mag, int nthreads):
    cdef int p = _path("pack_scaled_f32", path), s
    _same("pack_scaled_f32", "out's shape", (out.shape[0], out.shape[1]), (x.shape[0], (x.shape[1] + 63) // 64))
    _same("pack_scaled_f32", "mag's length", mag.shape[0], x.shape[0])
    if x.shape[0] == 0:
        return
    with nogil:
        s = mb_pack_scaled_f32(p, &x[0, 0], x.shape[0], x.shape[1], &out[0, 0], &mag[0], nthreads)
    _check("pack_scaled_f32", s)


def pack_scaled_f64(str path, const double[:, ::1] x, uint64_t[:, ::1] out, double[::1] mag, int nthreads):
    cdef int p = _path("pack_scaled_f64", path), s
    _same("pack_scaled_f64", "out's shape", (out.shape[0], out.shape[1]), (x.shape[0], (x.shape[1] + 63) // 64))
    _same("pack_scaled_f64", "mag's length", mag.shape[0], x.shape[0])
    if x.shape[0] == 0:
        return
    with nogil:
        s = mb_pack_scaled_f64(p, &x[0, 0], x.shape[0], x.shape[1], &out[0, 0], &mag[0], nthreads)
    _check("pack_scaled_f64", s)


cdef int _epilogue(str fn, mb_epilogue_t *e, int64_t k, int64_t m, int64_t n, object out, object scale,
                   object bias, object threshold, object direction) except -1:
    """Fill e from the output array (checked to be (m, n), or (m, ceil(n/64)) words for a threshold) and the
    optional transform vectors (None when absent; length n)."""
    cdef int32_t[:, ::1] oi
    cdef float[:, ::1] of
    cdef uint64_t[:, ::1] ob
    cdef const float[::1] sv
    cdef const float[::1] bv
    cdef const int32_t[::1] tv
    cdef const int8_t[::1] dv
    e.k = <int32_t>k
    e.scale = NULL
    e.bias = NULL
    e.threshold = NULL
    e.direction = NULL
    if threshold is not None:
        e.mode = MB_OUT_BITS
        ob = out
        if ob.shape[0] != m or ob.shape[1] != (n + 63) // 64:
            _same(fn, "out's shape", (ob.shape[0], ob.shape[1]), (m, (n + 63) // 64))
        e.out = &ob[0, 0] if m > 0 and n > 0 else NULL
        e.ldo = ob.shape[1]
        tv = threshold
        _same(fn, "threshold's length", tv.shape[0], n)
        e.threshold = &tv[0] if n > 0 else NULL
        if direction is not None:
            dv = direction
            _same(fn, "direction's length", dv.shape[0], n)
            e.direction = &dv[0] if n > 0 else NULL
    elif scale is not None or bias is not None:
        e.mode = MB_OUT_FLOAT32
        of = out
        if of.shape[0] != m or of.shape[1] != n:
            _same(fn, "out's shape", (of.shape[0], of.shape[1]), (m, n))
        e.out = &of[0, 0] if m > 0 and n > 0 else NULL
        e.ldo = of.shape[1]
        if scale is not None:
            sv = scale
            _same(fn, "scale's length", sv.shape[0], n)
            e.scale = &sv[0] if n > 0 else NULL
        if bias is not None:
            bv = bias
            _same(fn, "bias's length", bv.shape[0], n)
            e.bias = &bv[0] if n > 0 else NULL
    else:
        e.mode = MB_OUT_INT32
        oi = out
        if oi.shape[0] != m or oi.shape[1] != n:
            _same(fn, "out's shape", (oi.shape[0], oi.shape[1]), (m, n))
        e.out = &oi[0, 0] if m > 0 and n > 0 else NULL
        e.ldo = oi.shape[1]
    return 0


def gemm_reference(const uint64_t[:, ::1] a, const uint64_t[:, ::1] b, k, int32_t[:, ::1] out):
    """out[m, n] = k - 2 popcount(a[m] ^ b[n]) by the plain triple loop of kernels/gemm.c (for reading, testing)."""
    cdef int64_t kk = _int("gemm_reference", "k", k, 1), m = a.shape[0], n = b.shape[0], w = a.shape[1]
    cdef int s
    _same("gemm_reference", "b's words per row", b.shape[1], w)
    _same("gemm_reference", "out's shape", (out.shape[0], out.shape[1]), (m, n))
    if m == 0 or n == 0:
        return
    with nogil:
        s = mb_gemm_reference(&a[0, 0], m, &b[0, 0], n, w, <int32_t>kk, &out[0, 0])
    _check("gemm_reference", s)


def gemm(str path, const uint64_t[:, ::1] a, const uint64_t[:, ::1] b, k, out, scale, bias, threshold,
         direction, int nthreads):
    """out <- transform(k - 2 popcount(a[m] ^ b[n])); `out` is (M, N) int32/float32 or (M, ceil(N/64)) uint64
    (zero-filled), with the arrays already validated by minibnn.xnor.gemm."""
    cdef mb_epilogue_t e
    cdef int p = _path("gemm", path), s
    cdef int64_t kk = _int("gemm", "k", k, 1)
    if b.shape[1] != a.shape[1]:
        _same("gemm", "b's words per row", b.shape[1], a.shape[1])
    _epilogue("gemm", &e, kk, a.shape[0], b.shape[0], out, scale, bias, threshold, direction)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return
    with nogil:
        s = mb_gemm(p, &a[0, 0], a.shape[0], &b[0, 0], b.shape[0], a.shape[1], &e, nthreads)
    _check("gemm", s)


def gemm_real(str path, a, const uint64_t[:, ::1] b, k, out, scale, bias, threshold, direction, int nthreads):
    """As gemm, with a given as real values (M, k) -- float32, float64 or int8, C-contiguous -- packed on the fly."""
    cdef mb_epilogue_t e
    cdef int p = _path("gemm_real", path), s, dtype
    cdef const float[:, ::1] af
    cdef const double[:, ::1] ad
    cdef const int8_t[:, ::1] ai
    cdef const void *ptr = NULL
    cdef int64_t m_rows, cols
    cdef int64_t kk = _int("gemm_real", "k", k, 1)
    code = a.dtype.char
    if code == "f":
        af = a
        m_rows, cols, dtype = af.shape[0], af.shape[1], MB_DTYPE_F32
        if m_rows > 0:
            ptr = &af[0, 0]
    elif code == "d":
        ad = a
        m_rows, cols, dtype = ad.shape[0], ad.shape[1], MB_DTYPE_F64
        if m_rows > 0:
            ptr = &ad[0, 0]
    elif code == "b":
        ai = a
        m_rows, cols, dtype = ai.shape[0], ai.shape[1], MB_DTYPE_I8
        if m_rows > 0:
            ptr = &ai[0, 0]
    else:
        raise TypeError(f"minibnn._xnor.gemm_real: a must be float32, float64 or int8, got {a.dtype}")
    _same("gemm_real", "a's columns", cols, kk)
    _same("gemm_real", "b's words per row", b.shape[1], (kk + 63) // 64)
    _epilogue("gemm_real", &e, kk, m_rows, b.shape[0], out, scale, bias, threshold, direction)
    if m_rows == 0 or b.shape[0] == 0:
        return
    with nogil:
        s = mb_gemm_real(p, dtype, ptr, m_rows, kk, &b[0, 0], b.shape[0], &e, nthreads)
    _check("gemm_real", s)


def conv2d(str path, const uint64_t[:, :, :, ::1] x, const uint64_t[:, :, :, ::1] w, channels, stride_h, stride_w,
           pad_h, pad_w, int pad_value, out, scale, bias, threshold, direction, int nthreads):
    """NHWC binary convolution into `out` viewed as (B*OH*OW, O) or (B*OH*OW, ceil(O/64)); validated inputs."""
    cdef mb_epilogue_t e
    cdef int p = _path("conv2d", path), s
    cdef int64_t c = _int("conv2d", "channels", channels, 1)
    cdef int64_t sh = _int("conv2d", "stride_h", stride_h, 1), sw = _int("conv2d", "stride_w", stride_w, 1)
    cdef int64_t ph = _int("conv2d", "pad_h", pad_h, 0), pw = _int("conv2d", "pad_w", pad_w, 0)
    cdef int64_t oh, ow
    _same("conv2d", "w's words per pixel", w.shape[3], x.shape[3])
    # sizes as Python ints: no overflow whatever they are
    batch, height, width, out_ch, kh, kw = [int(v) for v in (x.shape[0], x.shape[1], x.shape[2], w.shape[0],
                                                             w.shape[1], w.shape[2])]
    if height + 2 * ph < kh or width + 2 * pw < kw:
        raise ValueError(f"minibnn._xnor.conv2d: kernel {w.shape[1]}x{w.shape[2]} does not fit the input "
                         f"{x.shape[1]}x{x.shape[2]} with padding ({ph}, {pw})")
    if kh * kw * c > 2**31 - 1:
        raise ValueError(f"minibnn._xnor.conv2d: kernel {w.shape[1]}x{w.shape[2]} over {c} channels is too long "
                         f"for int32 accumulators")
    oh = (height + 2 * ph - kh) // sh + 1
    ow = (width + 2 * pw - kw) // sw + 1
    if batch * oh * ow > 2**48:
        raise ValueError(f"minibnn._xnor.conv2d: the output of {batch}x{oh}x{ow} pixels is too large")
    _epilogue("conv2d", &e, kh * kw * c, batch * oh * ow, out_ch, out, scale, bias, threshold, direction)
    if x.shape[0] == 0 or w.shape[0] == 0:
        return
    with nogil:
        s = mb_conv2d(p, &x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3], &w[0, 0, 0, 0],
                      w.shape[0], w.shape[1], w.shape[2], c, sh, sw, ph, pw, pad_value, oh, ow, &e, nthreads)
    _check("conv2d", s)


def maxpool2d(const uint64_t[:, :, :, ::1] x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
              uint64_t[:, :, :, ::1] out, int nthreads):
    """out[b, y, x] = AND of the window's words (max-pool of ±1 values); padding pixels are skipped."""
    cdef int s
    cdef int64_t kh = _int("maxpool2d", "kernel_h", kernel_h, 1), kw = _int("maxpool2d", "kernel_w", kernel_w, 1)
    cdef int64_t sh = _int("maxpool2d", "stride_h", stride_h, 1), sw = _int("maxpool2d", "stride_w", stride_w, 1)
    cdef int64_t ph = _int("maxpool2d", "pad_h", pad_h, 0), pw = _int("maxpool2d", "pad_w", pad_w, 0)
    if ph >= kh or pw >= kw or x.shape[1] + 2 * ph < kh or x.shape[2] + 2 * pw < kw:
        raise ValueError(f"minibnn._xnor.maxpool2d: kernel {kh}x{kw} with padding ({ph}, {pw}) must fit the input "
                         f"{x.shape[1]}x{x.shape[2]}, with padding smaller than the kernel")
    _same("maxpool2d", "out's shape", (out.shape[0], out.shape[1], out.shape[2], out.shape[3]),
          (x.shape[0], (x.shape[1] + 2 * ph - kh) // sh + 1, (x.shape[2] + 2 * pw - kw) // sw + 1, x.shape[3]))
    if x.shape[0] == 0 or x.shape[3] == 0:
        return
    with nogil:
        s = mb_maxpool2d(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3], kh, kw, sh, sw, ph, pw,
                         out.shape[1], out.shape[2], &out[0, 0, 0, 0], nthreads)
    _check("maxpool2d", s)


# --- the float32 shift-GEMM of minibnn.fastconv (kernels/conv_float.c) --------------------------------------------
cdef extern from *:
    """
    int mb_shift_gemm_f32(const float *src, int64_t k_dim, const float *w, int64_t n, const int64_t *shift,
                          int64_t taps, float *out, const int64_t *rows);
    int mb_shift_gemm_dw_f32(const float *src, int64_t k_dim, const float *g, int64_t n, const int64_t *shift,
                             int64_t taps, float *dw, const int64_t *rows);
    """
    int mb_shift_gemm_f32(const float *src, int64_t k_dim, const float *w, int64_t n, const int64_t *shift,
                          int64_t taps, float *out, const int64_t *rows) nogil
    int mb_shift_gemm_dw_f32(const float *src, int64_t k_dim, const float *g, int64_t n, const int64_t *shift,
                             int64_t taps, float *dw, const int64_t *rows) nogil


def shift_gemm_f32(const float[:, ::1] src, const float[:, :, ::1] w, const int64_t[::1] shift,
                   float[:, ::1] out, const int64_t[::1] rows):
    """out[r] = sum_t src[r + shift[t]] @ w[t] for the rows r of the row set ``rows`` = (offset, img_stride,
    runs, run_stride, run_len, images): r = offset + i·img_stride + y·run_stride + x, y < runs, x < run_len.
    False (out untouched) when the kernel cannot run here (no AVX-512, or w.shape[2] not a multiple of 16).
    minibnn.fastconv checks the shapes and that every row read or written exists."""
    cdef int s
    with nogil:
        s = mb_shift_gemm_f32(&src[0, 0], src.shape[1], &w[0, 0, 0], w.shape[2], &shift[0], w.shape[0],
                              &out[0, 0], &rows[0])
    return s == 0


def shift_gemm_dw_f32(const float[:, ::1] src, const float[:, ::1] g, const int64_t[::1] shift,
                      float[:, :, ::1] dw, const int64_t[::1] rows):
    """dw[t] = sum_r src[r + shift[t]]ᵀ g[r] over the rows r of the row set (as in shift_gemm_f32); False (dw
    untouched) when the kernel cannot run here. minibnn.fastconv checks the shapes."""
    cdef int s
    with nogil:
        s = mb_shift_gemm_dw_f32(&src[0, 0], src.shape[1], &g[0, 0], g.shape[1], &shift[0], shift.shape[0],
                                 &dw[0, 0, 0], &rows[0])
    return s == 0


cdef extern from *:
    """
    void mb_maxpool_tiles_backward_f32(const float *x, const float *out, const float *grad, float *dx,
                                       int64_t planes, int64_t h, int64_t w, int64_t kh, int64_t kw);
    """
    void mb_maxpool_tiles_backward_f32(const float *x, const float *out, const float *grad, float *dx,
                                       int64_t planes, int64_t h, int64_t w, int64_t kh, int64_t kw) nogil


def maxpool_tiles_backward_f32(const float[:, :, ::1] x, const float[:, :, ::1] out, const float[:, :, ::1] grad,
                               float[:, :, ::1] dx, int64_t kh, int64_t kw):
    """dx <- the gradient of the tiled max pooling (kernel == stride, no padding) of x (planes, h, w): grad
    (planes, h // kh, w // kw) goes to the first maximum of each window. minibnn.fastconv checks the shapes."""
    with nogil:
        mb_maxpool_tiles_backward_f32(&x[0, 0, 0], &out[0, 0, 0], &grad[0, 0, 0], &dx[0, 0, 0], x.shape[0],
                                      x.shape[1], x.shape[2], kh, kw)


cdef extern from *:
    """
    void mb_planes_to_rows_f32(const float *planes, int64_t n, int64_t c, int64_t h, int64_t w, float *rows,
                               int64_t offset, int64_t img_stride, int64_t row_stride);
    void mb_rows_to_planes_f32(const float *rows, int64_t n, int64_t c, int64_t h, int64_t w, float *planes,
                               int64_t offset, int64_t img_stride, int64_t row_stride);
    """
    void mb_planes_to_rows_f32(const float *planes, int64_t n, int64_t c, int64_t h, int64_t w, float *rows,
                               int64_t offset, int64_t img_stride, int64_t row_stride) nogil
    void mb_rows_to_planes_f32(const float *rows, int64_t n, int64_t c, int64_t h, int64_t w, float *planes,
                               int64_t offset, int64_t img_stride, int64_t row_stride) nogil


def planes_to_rows_f32(const float[:, :, :, ::1] planes, float[:, ::1] rows, int64_t offset, int64_t img_stride,
                       int64_t row_stride):
    """rows[offset + i·img_stride + y·row_stride + x, ch] = planes[i, ch, y, x]; minibnn.fastconv checks that
    every row written exists and that rows has planes.shape[1] columns."""
    with nogil:
        mb_planes_to_rows_f32(&planes[0, 0, 0, 0], planes.shape[0], planes.shape[1], planes.shape[2],
                              planes.shape[3], &rows[0, 0], offset, img_stride, row_stride)


def rows_to_planes_f32(const float[:, ::1] rows, float[:, :, :, ::1] planes, int64_t offset, int64_t img_stride,
                       int64_t row_stride):
    """planes[i, ch, y, x] = rows[offset + i·img_stride + y·row_stride + x, ch] (the inverse layout change)."""
    with nogil:
        mb_rows_to_planes_f32(&rows[0, 0], planes.shape[0], planes.shape[1], planes.shape[2], planes.shape[3],
                              &planes[0, 0, 0, 0], offset, img_stride, row_stride)
