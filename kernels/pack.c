/* pack.c -- packing real or +-1 rows into sign bits, and max-pooling packed bits.
 *
 * Bit j of word w of a row is (x[64 w + j] < 0): -1 (and any negative) -> 1, +1, +0.0, -0.0 and NaN -> 0,
 * so sign(0) = +1. The unused high bits of a row's last word stay 0. The SIMD versions compare with an ordered
 * "less than" (never the raw sign bit, which is set for -0.0) and must agree with the scalar loop exactly. */
#include "mb_internal.h"

#include <math.h>

#if MB_HAVE_X86_SIMD
#include <immintrin.h>
#endif

#define SCALAR_PACK_ROW(T)                                                                                        \
    static void pack_row_##T(const T *x, int64_t k, uint64_t *out)                                               \
    {                                                                                                             \
        int64_t w, nw = (k + 63) / 64;                                                                            \
        for (w = 0; w < nw; w++) {                                                                                \
            const T *p = x + 64 * w;                                                                              \
            int64_t j, len = (k - 64 * w < 64) ? k - 64 * w : 64;                                                 \
            uint64_t word = 0;                                                                                    \
            for (j = 0; j < len; j++) word |= (uint64_t)(p[j] < 0) << j;                                          \
            out[w] = word;                                                                                        \
        }                                                                                                         \
    }
SCALAR_PACK_ROW(float)
SCALAR_PACK_ROW(double)
SCALAR_PACK_ROW(int8_t)

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
/* SSE2 is part of every x86-64 CPU: the scalar path packs with it (4 floats / 2 doubles / 16 bytes a compare) */
#include <emmintrin.h>
static void pack_row_f32_base(const float *x, int64_t k, uint64_t *out)
{
    const __m128 zero = _mm_setzero_ps();
    int64_t w, full = k / 64;
    for (w = 0; w < full; w++) {
        const float *p = x + 64 * w;
        uint64_t word = 0;
        int c;
        for (c = 0; c < 16; c++) word |= (uint64_t)_mm_movemask_ps(_mm_cmplt_ps(_mm_loadu_ps(p + 4 * c), zero)) << (4 * c);
        out[w] = word;
    }
    if (k % 64) pack_row_float(x + 64 * full, k - 64 * full, out + full);
}
static void pack_row_f64_base(const double *x, int64_t k, uint64_t *out)
{
    const __m128d zero = _mm_setzero_pd();
    int64_t w, full = k / 64;
    for (w = 0; w < full; w++) {
        const double *p = x + 64 * w;
        uint64_t word = 0;
        int c;
        for (c = 0; c < 32; c++) word |= (uint64_t)_mm_movemask_pd(_mm_cmplt_pd(_mm_loadu_pd(p + 2 * c), zero)) << (2 * c);
        out[w] = word;
    }
    if (k % 64) pack_row_double(x + 64 * full, k - 64 * full, out + full);
}
static void pack_row_i8_base(const int8_t *x, int64_t k, uint64_t *out)
{
    int64_t w, full = k / 64;
    for (w = 0; w < full; w++) {
        const int8_t *p = x + 64 * w;
        uint64_t word = 0;
        int c;
        for (c = 0; c < 4; c++)
            word |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * c))) << (16 * c);
        out[w] = word;
    }
    if (k % 64) pack_row_int8_t(x + 64 * full, k - 64 * full, out + full);
}
#else
#define pack_row_f32_base pack_row_float
#define pack_row_f64_base pack_row_double
#define pack_row_i8_base pack_row_int8_t
#endif

#if MB_HAVE_X86_SIMD
static MB_TARGET_AVX512 void pack_row_f32_avx512(const float *x, int64_t k, uint64_t *out)
{
    const __m512 zero = _mm512_setzero_ps();
    int64_t w, full = k / 64, rest = k % 64;
    /* each 16-bit mask goes straight from its mask register to its quarter of the word (little-endian x86):
     * no mask-to-GPR moves, shifts or ORs on the ALU ports that the fused GEMM's popcounts need */
    __mmask16 *o = (__mmask16 *)out;
    for (w = 0; w < full; w++) {
        const float *p = x + 64 * w;
        o[4 * w] = _mm512_cmp_ps_mask(_mm512_loadu_ps(p), zero, _CMP_LT_OQ);
        o[4 * w + 1] = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 16), zero, _CMP_LT_OQ);
        o[4 * w + 2] = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 32), zero, _CMP_LT_OQ);
        o[4 * w + 3] = _mm512_cmp_ps_mask(_mm512_loadu_ps(p + 48), zero, _CMP_LT_OQ);
    }
    if (rest) { /* masked loads never touch memory past the row */
        const float *p = x + 64 * full;
        uint64_t word = 0;
        int c;
        for (c = 0; c < 4; c++) {
            int64_t cnt = rest - 16 * c;
            __mmask16 lm;
            if (cnt <= 0) break;
            lm = (__mmask16)(cnt >= 16 ? 0xFFFF : ((1u << cnt) - 1));
            word |= (uint64_t)_mm512_mask_cmp_ps_mask(lm, _mm512_maskz_loadu_ps(lm, p + 16 * c), zero, _CMP_LT_OQ)
                    << (16 * c);
        }
        out[full] = word;
    }
}

static MB_TARGET_AVX512 void pack_row_f64_avx512(const double *x, int64_t k, uint64_t *out)
{
    const __m512d zero = _mm512_setzero_pd();
    int64_t w, nw = (k + 63) / 64;
    for (w = 0; w < nw; w++) {
        const double *p = x + 64 * w;
        int64_t len = (k - 64 * w < 64) ? k - 64 * w : 64;
        uint64_t word = 0;
        int c;
        for (c = 0; c < 8; c++) {
            int64_t cnt = len - 8 * c;
            __mmask8 lm;
            if (cnt <= 0) break;
            lm = (__mmask8)(cnt >= 8 ? 0xFF : ((1u << cnt) - 1));
            word |= (uint64_t)_mm512_mask_cmp_pd_mask(lm, _mm512_maskz_loadu_pd(lm, p + 8 * c), zero, _CMP_LT_OQ)
                    << (8 * c);
        }
        out[w] = word;
    }
}

static MB_TARGET_AVX512 void pack_row_i8_avx512(const int8_t *x, int64_t k, uint64_t *out)
{
    int64_t w, full = k / 64, rest = k % 64;
    for (w = 0; w < full; w++) out[w] = (uint64_t)_mm512_movepi8_mask(_mm512_loadu_si512((const void *)(x + 64 * w)));
    if (rest) {
        __mmask64 lm = ((__mmask64)1 << rest) - 1;
        out[full] = (uint64_t)_mm512_movepi8_mask(_mm512_maskz_loadu_epi8(lm, x + 64 * full)) & lm;
    }
}

static MB_TARGET_AVX2 void pack_row_f32_avx2(const float *x, int64_t k, uint64_t *out)
{
    const __m256 zero = _mm256_setzero_ps();
    int64_t w, full = k / 64;
    for (w = 0; w < full; w++) {
        const float *p = x + 64 * w;
        uint64_t word = 0;
        int c;
        for (c = 0; c < 8; c++)
            word |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + 8 * c), zero, _CMP_LT_OQ))
                    << (8 * c);
        out[w] = word;
    }
    if (k % 64) pack_row_float(x + 64 * full, k - 64 * full, out + full);
}

static MB_TARGET_AVX2 void pack_row_f64_avx2(const double *x, int64_t k, uint64_t *out)
{
    const __m256d zero = _mm256_setzero_pd();
    int64_t w, full = k / 64;
    for (w = 0; w < full; w++) {
        const double *p = x + 64 * w;
        uint64_t word = 0;
        int c;
        for (c = 0; c < 16; c++)
            word |= (uint64_t)(unsigned)_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(p + 4 * c), zero, _CMP_LT_OQ))
                    << (4 * c);
        out[w] = word;
    }
    if (k % 64) pack_row_double(x + 64 * full, k - 64 * full, out + full);
}

static MB_TARGET_AVX2 void pack_row_i8_avx2(const int8_t *x, int64_t k, uint64_t *out)
{
    int64_t w, full = k / 64;
    for (w = 0; w < full; w++) {
        const int8_t *p = x + 64 * w;
        uint64_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_loadu_si256((const __m256i *)p));
        uint64_t hi = (uint32_t)_mm256_movemask_epi8(_mm256_loadu_si256((const __m256i *)(p + 32)));
        out[w] = lo | (hi << 32);
    }
    if (k % 64) pack_row_int8_t(x + 64 * full, k - 64 * full, out + full);
}
#endif

/* The row packer of each element type for a path: AVX-512 and AVX2 where compiled in and asked for, else the
 * baseline (SSE2 on x86-64, plain C elsewhere). */
typedef void (*pack_row_f32_fn)(const float *, int64_t, uint64_t *);
typedef void (*pack_row_f64_fn)(const double *, int64_t, uint64_t *);
typedef void (*pack_row_i8_fn)(const int8_t *, int64_t, uint64_t *);

#if MB_HAVE_X86_SIMD
#define PACK_SELECT(T, BASE)                                                                                      \
    static pack_row_##T##_fn select_##T(int path)                                                                 \
    {                                                                                                             \
        if (path == MB_PATH_AVX512) return pack_row_##T##_avx512;                                                 \
        if (path == MB_PATH_AVX2) return pack_row_##T##_avx2;                                                     \
        return BASE;                                                                                              \
    }
#else
#define PACK_SELECT(T, BASE)                                                                                      \
    static pack_row_##T##_fn select_##T(int path)                                                                 \
    {                                                                                                             \
        (void)path;                                                                                               \
        return BASE;                                                                                              \
    }
#endif
PACK_SELECT(f32, pack_row_f32_base)
PACK_SELECT(f64, pack_row_f64_base)
PACK_SELECT(i8, pack_row_i8_base)

#if defined(_OPENMP)
#define PACK_PRAGMA _Pragma("omp parallel for schedule(static) num_threads(threads) if (threads > 1)")
#else
#define PACK_PRAGMA
#endif

/* rows x k elements within the bounds of mb_kernels.h */
static int pack_sizes_ok(int64_t rows, int64_t k)
{
    int64_t size = 1;
    return mb_grow(&size, rows) && mb_grow(&size, k);
}

#define PACK_DRIVER(NAME, T, TAG)                                                                                 \
    int NAME(int path, const T *x, int64_t rows, int64_t k, uint64_t *out, int nthreads)                         \
    {                                                                                                             \
        int64_t r, nw = (k + 63) / 64;                                                                            \
        const pack_row_##TAG##_fn row = select_##TAG(path);                                                       \
        int threads;                                                                                              \
        if (!pack_sizes_ok(rows, k)) return MB_ERR_RANGE;                                                         \
        threads = mb_threads(rows * k, MB_PARALLEL_MIN_ELEMENTS, nthreads);                                       \
        (void)threads; /* read by the OpenMP pragma only */                                                       \
        PACK_PRAGMA                                                                                               \
        for (r = 0; r < rows; r++) row(x + r * k, k, out + r * nw);                                               \
        return MB_OK;                                                                                             \
    }
PACK_DRIVER(mb_pack_f32, float, f32)
PACK_DRIVER(mb_pack_f64, double, f64)
PACK_DRIVER(mb_pack_i8, int8_t, i8)

void mb_pack_block(int path, int dtype, const void *x, int64_t rows, int64_t k, uint64_t *out)
{
    const int64_t nw = (k + 63) / 64;
    int64_t r;
    if (dtype == MB_DTYPE_F32) {
        const pack_row_f32_fn row = select_f32(path);
        for (r = 0; r < rows; r++) row((const float *)x + r * k, k, out + r * nw);
    } else if (dtype == MB_DTYPE_F64) {
        const pack_row_f64_fn row = select_f64(path);
        for (r = 0; r < rows; r++) row((const double *)x + r * k, k, out + r * nw);
    } else {
        const pack_row_i8_fn row = select_i8(path);
        for (r = 0; r < rows; r++) row((const int8_t *)x + r * k, k, out + r * nw);
    }
}

/* Is every |x[j]| equal to c? A plain loop that the compiler vectorises for each target (an unordered compare:
 * NaN is never equal). */
#define SCALED_ROW(NAME, T, ABS, ATTR)                                                                            \
    static ATTR int NAME(const T *x, int64_t k, T c)                                                              \
    {                                                                                                             \
        int64_t j;                                                                                                \
        int bad = 0;                                                                                              \
        for (j = 0; j < k; j++) bad |= (ABS(x[j]) != c);                                                          \
        return !bad;                                                                                              \
    }
SCALED_ROW(scaled_row_f32_base, float, fabsf, )
SCALED_ROW(scaled_row_f64_base, double, fabs, )
#if MB_HAVE_X86_SIMD
SCALED_ROW(scaled_row_f32_avx2, float, fabsf, MB_TARGET_AVX2)
SCALED_ROW(scaled_row_f64_avx2, double, fabs, MB_TARGET_AVX2)
SCALED_ROW(scaled_row_f32_avx512, float, fabsf, MB_TARGET_AVX512)
SCALED_ROW(scaled_row_f64_avx512, double, fabs, MB_TARGET_AVX512)
#define SCALED_SELECT(T)                                                                                          \
    (path == MB_PATH_AVX512 ? scaled_row_##T##_avx512 : path == MB_PATH_AVX2 ? scaled_row_##T##_avx2           \
                                                                             : scaled_row_##T##_base)
#else
#define SCALED_SELECT(T) scaled_row_##T##_base
#endif

#define PACK_SCALED_DRIVER(NAME, T, TAG, ABS)                                                                     \
    int NAME(int path, const T *x, int64_t rows, int64_t k, uint64_t *out, T *mag, int nthreads)                 \
    {                                                                                                             \
        int64_t r, nw = (k + 63) / 64;                                                                            \
        const pack_row_##TAG##_fn row = select_##TAG(path);                                                       \
        int (*const check)(const T *, int64_t, T) = SCALED_SELECT(TAG);                                          \
        int threads;                                                                                              \
        if (!pack_sizes_ok(rows, k) || k < 1) return MB_ERR_RANGE;                                                \
        threads = mb_threads(rows * k, MB_PARALLEL_MIN_ELEMENTS, nthreads);                                       \
        (void)threads; /* read by the OpenMP pragma only */                                                       \
        PACK_PRAGMA                                                                                               \
        for (r = 0; r < rows; r++) {                                                                              \
            const T *p = x + r * k;                                                                               \
            const T c = ABS(p[0]);                                                                                \
            row(p, k, out + r * nw);                                                                              \
            mag[r] = check(p, k, c) ? c : (T)NAN;                                                                 \
        }                                                                                                         \
        return MB_OK;                                                                                             \
    }
PACK_SCALED_DRIVER(mb_pack_scaled_f32, float, f32, fabsf)
PACK_SCALED_DRIVER(mb_pack_scaled_f64, double, f64, fabs)

/* Max-pool on packed bits. Each window is clamped to the input first (rows i0..i1, columns j0..j1 of the kernel
 * that fall on real pixels), so a huge kernel or padding costs nothing beyond the input it covers. */
int mb_maxpool2d(const uint64_t *x, int64_t batch, int64_t h, int64_t w, int64_t wc, int64_t kh, int64_t kw,
                 int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh, int64_t ow, uint64_t *out,
                 int nthreads)
{
    int64_t row, size_x = 1, size_out = 1;
    double reads;
    int threads;
    if (!mb_grow(&size_x, batch) || !mb_grow(&size_x, h) || !mb_grow(&size_x, w) || !mb_grow(&size_x, wc) ||
        !mb_grow(&size_out, batch) || !mb_grow(&size_out, oh) || !mb_grow(&size_out, ow) ||
        !mb_grow(&size_out, wc) || kh < 1 || kw < 1 || kh > MB_MAX_EXTENT || kw > MB_MAX_EXTENT || sh < 1 ||
        sw < 1 || sh > MB_MAX_EXTENT || sw > MB_MAX_EXTENT || ph < 0 || pw < 0 || ph >= kh || pw >= kw ||
        h + 2 * ph < kh || w + 2 * pw < kw || oh != (h + 2 * ph - kh) / sh + 1 || ow != (w + 2 * pw - kw) / sw + 1)
        return MB_ERR_RANGE; /* ph < kh, pw < kw: every window holds a real pixel */
    reads = (double)size_out * (double)(kh < h ? kh : h) * (double)(kw < w ? kw : w); /* words read, at most */
    threads = mb_threads(reads < 4e18 ? (int64_t)reads : (int64_t)4e18, MB_PARALLEL_MIN_ELEMENTS, nthreads);
    (void)threads; /* read by the OpenMP pragma only */
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (row = 0; row < batch * oh; row++) {
        const int64_t b = row / oh, y = row % oh;
        const int64_t top = y * sh - ph, i0 = top < 0 ? -top : 0, i1 = (h - top < kh) ? h - top : kh;
        int64_t xo, i, j, c;
        for (xo = 0; xo < ow; xo++) {
            const int64_t left = xo * sw - pw, j0 = left < 0 ? -left : 0, j1 = (w - left < kw) ? w - left : kw;
            const int64_t corner = ((b * h + top) * w + left) * wc; /* pixel (top, left)'s index: may be < 0 */
            for (c = 0; c < wc; c++) { /* max of +-1 = -1 only if all are -1: the AND of the window's bits */
                uint64_t acc = ~(uint64_t)0; /* AND identity; every window holds a real pixel */
                for (i = i0; i < i1; i++)
                    for (j = j0; j < j1; j++) acc &= x[corner + (i * w + j) * wc + c];
                out[(row * ow + xo) * wc + c] = acc;
            }
        }
    }
    return MB_OK;
}
