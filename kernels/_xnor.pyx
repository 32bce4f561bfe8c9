# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""minibnn._xnor -- the compiled XNOR-popcount kernels (C sources in kernels/), called by minibnn.xnor.

Nothing here checks its arguments beyond what the typed memoryviews enforce (dtype, dimensions, C order):
minibnn.xnor validates shapes, sizes and values and is the only caller. Every kernel runs without the GIL.
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t

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
    void mb_cpu_detect(mb_cpu_t *cpu)
    int mb_path_compiled(int path)
    int mb_path_supported(int path)
    int mb_best_path()
    int mb_openmp_enabled()
    int mb_max_threads()
    uint64_t mb_clock_probe(uint64_t n)
    int mb_pack_f32(int path, const float *x, int64_t rows, int64_t k, uint64_t *out, int nthreads)
    int mb_pack_f64(int path, const double *x, int64_t rows, int64_t k, uint64_t *out, int nthreads)
    int mb_pack_i8(int path, const int8_t *x, int64_t rows, int64_t k, uint64_t *out, int nthreads)
    int mb_pack_scaled_f32(int path, const float *x, int64_t rows, int64_t k, uint64_t *out, float *mag,
                           int nthreads)
    int mb_pack_scaled_f64(int path, const double *x, int64_t rows, int64_t k, uint64_t *out, double *mag,
                           int nthreads)
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

#: path name -> the C path number
PATHS = {"scalar": MB_PATH_SCALAR, "avx2": MB_PATH_AVX2, "avx512": MB_PATH_AVX512, "neon": MB_PATH_NEON}


def cpu_features():
    """What this CPU (and its OS) offers, as detected by CPUID/XGETBV (x86) or the compiler target (ARM)."""
    cdef mb_cpu_t c
    mb_cpu_detect(&c)
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
    return mb_max_threads()


def clock_probe(uint64_t n):
    """Spend a known number of core cycles (a chain of dependent multiplies) and return it; 0 if unsupported.

    Timing this call gives the core clock actually running, turbo included, which nominal MHz does not."""
    cdef uint64_t r
    with nogil:
        r = mb_clock_probe(n)
    return r


cdef int _check(int status) except -1:
    if status == MB_ERR_NOMEM:
        raise MemoryError("minibnn._xnor: could not allocate a scratch buffer")
    return 0


def pack_f32(str path, const float[:, ::1] x, uint64_t[:, ::1] out, int nthreads):
    cdef int p = PATHS[path], s
    with nogil:
        s = mb_pack_f32(p, &x[0, 0], x.shape[0], x.shape[1], &out[0, 0], nthreads)
    _check(s)


def pack_f64(str path, const double[:, ::1] x, uint64_t[:, ::1] out, int nthreads):
    cdef int p = PATHS[path], s
    with nogil:
        s = mb_pack_f64(p, &x[0, 0], x.shape[0], x.shape[1], &out[0, 0], nthreads)
    _check(s)


def pack_i8(str path, const int8_t[:, ::1] x, uint64_t[:, ::1] out, int nthreads):
    cdef int p = PATHS[path], s
    with nogil:
        s = mb_pack_i8(p, &x[0, 0], x.shape[0], x.shape[1], &out[0, 0], nthreads)
    _check(s)


def pack_scaled_f32(str path, const float[:, ::1] x, uint64_t[:, ::1] out, float[::1] mag, int nthreads):
    cdef int p = PATHS[path], s
    with nogil:
        s = mb_pack_scaled_f32(p, &x[0, 0], x.shape[0], x.shape[1], &out[0, 0], &mag[0], nthreads)
    _check(s)


def pack_scaled_f64(str path, const double[:, ::1] x, uint64_t[:, ::1] out, double[::1] mag, int nthreads):
    cdef int p = PATHS[path], s
    with nogil:
        s = mb_pack_scaled_f64(p, &x[0, 0], x.shape[0], x.shape[1], &out[0, 0], &mag[0], nthreads)
    _check(s)


cdef int _epilogue(mb_epilogue_t *e, int64_t k, object out, object scale, object bias, object threshold,
                   object direction) except -1:
    """Fill e from the output array and the optional transform vectors (None when absent)."""
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
        e.out = &ob[0, 0]
        e.ldo = ob.shape[1]
        tv = threshold
        e.threshold = &tv[0]
        if direction is not None:
            dv = direction
            e.direction = &dv[0]
    elif scale is not None or bias is not None:
        e.mode = MB_OUT_FLOAT32
        of = out
        e.out = &of[0, 0]
        e.ldo = of.shape[1]
        if scale is not None:
            sv = scale
            e.scale = &sv[0]
        if bias is not None:
            bv = bias
            e.bias = &bv[0]
    else:
        e.mode = MB_OUT_INT32
        oi = out
        e.out = &oi[0, 0]
        e.ldo = oi.shape[1]
    return 0


def gemm(str path, const uint64_t[:, ::1] a, const uint64_t[:, ::1] b, int64_t k, out, scale, bias, threshold,
         direction, int nthreads):
    """out <- transform(k - 2 popcount(a[m] ^ b[n])); `out` is (M, N) int32/float32 or (M, ceil(N/64)) uint64
    (zero-filled), with the arrays already validated by minibnn.xnor.gemm."""
    cdef mb_epilogue_t e
    cdef int p = PATHS[path], s
    _epilogue(&e, k, out, scale, bias, threshold, direction)
    with nogil:
        s = mb_gemm(p, &a[0, 0], a.shape[0], &b[0, 0], b.shape[0], a.shape[1], &e, nthreads)
    _check(s)


def gemm_real(str path, a, const uint64_t[:, ::1] b, int64_t k, out, scale, bias, threshold, direction,
              int nthreads):
    """As gemm, with a given as real values (M, k) -- float32, float64 or int8, C-contiguous -- packed on the fly."""
    cdef mb_epilogue_t e
    cdef int p = PATHS[path], s, dtype
    cdef const float[:, ::1] af
    cdef const double[:, ::1] ad
    cdef const int8_t[:, ::1] ai
    cdef const void *ptr
    cdef int64_t m_rows
    code = a.dtype.char
    if code == "f":
        af = a
        ptr, m_rows, dtype = &af[0, 0], af.shape[0], MB_DTYPE_F32
    elif code == "d":
        ad = a
        ptr, m_rows, dtype = &ad[0, 0], ad.shape[0], MB_DTYPE_F64
    elif code == "b":
        ai = a
        ptr, m_rows, dtype = &ai[0, 0], ai.shape[0], MB_DTYPE_I8
    else:
        raise TypeError(f"gemm_real: a must be float32, float64 or int8, got {a.dtype}")
    _epilogue(&e, k, out, scale, bias, threshold, direction)
    with nogil:
        s = mb_gemm_real(p, dtype, ptr, m_rows, k, &b[0, 0], b.shape[0], &e, nthreads)
    _check(s)


def conv2d(str path, const uint64_t[:, :, :, ::1] x, const uint64_t[:, :, :, ::1] w, int64_t channels,
           int64_t sh, int64_t sw, int64_t ph, int64_t pw, int pad_value, out, scale, bias, threshold, direction,
           int nthreads):
    """NHWC binary convolution into `out` viewed as (B*OH*OW, O) or (B*OH*OW, ceil(O/64)); validated inputs."""
    cdef mb_epilogue_t e
    cdef int p = PATHS[path], s
    cdef int64_t oh = (x.shape[1] + 2 * ph - w.shape[1]) // sh + 1
    cdef int64_t ow = (x.shape[2] + 2 * pw - w.shape[2]) // sw + 1
    _epilogue(&e, w.shape[1] * w.shape[2] * channels, out, scale, bias, threshold, direction)
    with nogil:
        s = mb_conv2d(p, &x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3], &w[0, 0, 0, 0],
                      w.shape[0], w.shape[1], w.shape[2], channels, sh, sw, ph, pw, pad_value, oh, ow, &e, nthreads)
    _check(s)


def maxpool2d(const uint64_t[:, :, :, ::1] x, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
              int64_t pw, uint64_t[:, :, :, ::1] out, int nthreads):
    cdef int s
    with nogil:
        s = mb_maxpool2d(&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2], x.shape[3], kh, kw, sh, sw, ph, pw,
                         out.shape[1], out.shape[2], &out[0, 0, 0, 0], nthreads)
    _check(s)


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
