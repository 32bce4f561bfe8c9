/* conv_float.c -- the float32 "shift-GEMM" of minibnn.fastconv: a sum of shifted matrix products.
 *
 *     out[r, j] = sum_t sum_k src[(r + shift[t]) * k_dim + k] * w[(t * k_dim + k) * n + j]
 *
 * for the rows r of a row set, columns j < n (n a multiple of 16), taps t < taps. A row set is a grid of
 * contiguous runs: r = offset + img * img_stride + y * run_stride + x for y < runs, x < run_len (the output
 * pixels of padded images flattened to rows: the rows between runs, which only the shifted layout creates, are
 * skipped). A stride-1 convolution of padded
 * channels-last images flattened to rows is exactly this (minibnn/fastconv.py explains the row arithmetic), and
 * so is its input gradient (the transposed convolution). One pass, no im2col: a register tile of MB_ROWS rows x
 * 32 columns accumulates over every tap and every k, then is stored once.
 *
 * AVX-512F only (chosen per function with a target attribute, as in the other kernels, and dispatched at run
 * time); mb_shift_gemm_f32 returns 1 when it cannot run here (no AVX-512, another compiler), and the caller then
 * uses NumPy. Threads follow the kernels' policy (mb_threads): several only from MB_PARALLEL_MIN_FLOAT_MACS
 * multiply-accumulates on -- the runs of output rows are independent; dW sums per-thread partial results.
 */
#include <stdint.h>
#include <stddef.h>

#include "mb_internal.h"

/* ~120 us of float32 work on one AVX-512 core (~50 G MAC/s), the time the binary kernels' bar stands for */
#define MB_PARALLEL_MIN_FLOAT_MACS ((int64_t)6 * 1024 * 1024)

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define MB_SHIFT_GEMM_AVX512 1
#endif

#define MB_ROWS 8   /* rows per register tile: 8 rows x 2 vectors = 16 accumulators */

typedef struct {
    int64_t offset, img_stride, runs, run_stride, run_len, total_runs;   /* total_runs = images * runs */
} mb_rowset_t;

static inline int64_t run_start(const mb_rowset_t *set, int64_t q)
{
    return set->offset + (q / set->runs) * set->img_stride + (q % set->runs) * set->run_stride;
}

#ifdef MB_SHIFT_GEMM_AVX512
/* The full tile: MB_ROWS rows x 32 columns, every index a compile-time constant after unrolling so that the 16
 * accumulators live in registers. */
__attribute__((target("avx512f")))
static void tile_full_avx512(const float *src, int64_t k_dim, const float *w, int64_t n, const int64_t *shift,
                             int64_t taps, float *out, int64_t r0, int64_t j0)
{
    __m512 acc[MB_ROWS][2];
#pragma GCC unroll 8
    for (int i = 0; i < MB_ROWS; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
    for (int64_t t = 0; t < taps; t++) {
        const float *a = src + (r0 + shift[t]) * k_dim;
        const float *b = w + t * k_dim * n + j0;
        for (int64_t k = 0; k < k_dim; k++, a++, b += n) {
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
            for (int i = 0; i < MB_ROWS; i++) {
                __m512 x = _mm512_set1_ps(a[i * k_dim]);
                acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MB_ROWS; i++) {
        _mm512_storeu_ps(out + (r0 + i) * n + j0, acc[i][0]);
        _mm512_storeu_ps(out + (r0 + i) * n + j0 + 16, acc[i][1]);
    }
}

/* A partial tile: nr <= MB_ROWS rows, 32 columns (two) or 16; one row at a time (the edges only). */
__attribute__((target("avx512f")))
static void tile_any_avx512(const float *src, int64_t k_dim, const float *w, int64_t n, const int64_t *shift,
                            int64_t taps, float *out, int64_t r0, int64_t nr, int64_t j0, int two)
{
    for (int64_t i = 0; i < nr; i++) {
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        for (int64_t t = 0; t < taps; t++) {
            const float *a = src + (r0 + i + shift[t]) * k_dim;
            const float *b = w + t * k_dim * n + j0;
            for (int64_t k = 0; k < k_dim; k++, b += n) {
                __m512 x = _mm512_set1_ps(a[k]);
                acc0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(b), acc0);
                if (two)
                    acc1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(b + 16), acc1);
            }
        }
        _mm512_storeu_ps(out + (r0 + i) * n + j0, acc0);
        if (two)
            _mm512_storeu_ps(out + (r0 + i) * n + j0 + 16, acc1);
    }
}

__attribute__((target("avx512f")))
static void shift_gemm_avx512(const float *src, int64_t k_dim, const float *w, int64_t n, const int64_t *shift,
                              int64_t taps, float *out, const mb_rowset_t *set)
{
    int64_t q, threads = mb_threads(set->total_runs * set->run_len * taps * k_dim * n, MB_PARALLEL_MIN_FLOAT_MACS, 0);
    (void)threads; /* read by the OpenMP pragma only */
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads) if (threads > 1)
#endif
    for (q = 0; q < set->total_runs; q++) {
        int64_t start = run_start(set, q), len = set->run_len;
        for (int64_t j0 = 0; j0 < n; j0 += 32) {
            int two = j0 + 32 <= n;
            for (int64_t x0 = 0; x0 < len; x0 += MB_ROWS) {
                if (two && x0 + MB_ROWS <= len)
                    tile_full_avx512(src, k_dim, w, n, shift, taps, out, start + x0, j0);
                else
                    tile_any_avx512(src, k_dim, w, n, shift, taps, out, start + x0,
                                    len - x0 < MB_ROWS ? len - x0 : MB_ROWS, j0, two);
            }
        }
    }
}

/* dW: dw[t, c, j] += sum_r src[(r + shift) * k_dim + c] * g[r * n + j] over the rows r of runs [q0, q1), for
 * MB_ROWS channels c from c0 and 32 columns j from j0 -- the register tile of the products with rows and inner
 * index swapped. */
__attribute__((target("avx512f")))
static void dw_tile_full_avx512(const float *src, int64_t k_dim, const float *g, int64_t n, int64_t shift,
                                float *dw, const mb_rowset_t *set, int64_t q0, int64_t q1, int64_t c0, int64_t j0)
{
    __m512 acc[MB_ROWS][2];
#pragma GCC unroll 8
    for (int i = 0; i < MB_ROWS; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
    }
    for (int64_t q = q0; q < q1; q++) {
        int64_t r0 = run_start(set, q);
        const float *b = g + r0 * n + j0;
        const float *a = src + (r0 + shift) * k_dim + c0;
        for (int64_t x = 0; x < set->run_len; x++, a += k_dim, b += n) {
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
            for (int i = 0; i < MB_ROWS; i++) {
                __m512 v = _mm512_set1_ps(a[i]);
                acc[i][0] = _mm512_fmadd_ps(v, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(v, b1, acc[i][1]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MB_ROWS; i++) {
        float *d = dw + (c0 + i) * n + j0;
        _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), acc[i][0]));
        _mm512_storeu_ps(d + 16, _mm512_add_ps(_mm512_loadu_ps(d + 16), acc[i][1]));
    }
}

/* A partial dW tile: nc <= MB_ROWS channels, 32 columns (two) or 16; one channel at a time (the edges only). */
__attribute__((target("avx512f")))
static void dw_tile_any_avx512(const float *src, int64_t k_dim, const float *g, int64_t n, int64_t shift,
                               float *dw, const mb_rowset_t *set, int64_t q0, int64_t q1, int64_t c0, int64_t nc,
                               int64_t j0, int two)
{
    for (int64_t i = 0; i < nc; i++) {
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        for (int64_t q = q0; q < q1; q++) {
            int64_t r0 = run_start(set, q);
            const float *b = g + r0 * n + j0;
            const float *a = src + (r0 + shift) * k_dim + c0 + i;
            for (int64_t x = 0; x < set->run_len; x++, a += k_dim, b += n) {
                __m512 v = _mm512_set1_ps(*a);
                acc0 = _mm512_fmadd_ps(v, _mm512_loadu_ps(b), acc0);
                if (two)
                    acc1 = _mm512_fmadd_ps(v, _mm512_loadu_ps(b + 16), acc1);
            }
        }
        float *d = dw + (c0 + i) * n + j0;
        _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), acc0));
        if (two)
            _mm512_storeu_ps(d + 16, _mm512_add_ps(_mm512_loadu_ps(d + 16), acc1));
    }
}

/* dw += the gradient tile u (tap t, channels c0.., columns j0..) over the runs [q0, q1) */
__attribute__((target("avx512f")))
static void dw_tile_avx512(const float *src, int64_t k_dim, const float *g, int64_t n, const int64_t *shift,
                           float *dw, const mb_rowset_t *set, int64_t q0, int64_t q1, int64_t u)
{
    int64_t c_tiles = (k_dim + MB_ROWS - 1) / MB_ROWS, j_tiles = (n + 31) / 32;
    int64_t t = u / (c_tiles * j_tiles), c0 = (u / j_tiles) % c_tiles * MB_ROWS, j0 = u % j_tiles * 32;
    if (c0 + MB_ROWS <= k_dim && j0 + 32 <= n)
        dw_tile_full_avx512(src, k_dim, g, n, shift[t], dw + t * k_dim * n, set, q0, q1, c0, j0);
    else
        dw_tile_any_avx512(src, k_dim, g, n, shift[t], dw + t * k_dim * n, set, q0, q1, c0,
                           k_dim - c0 < MB_ROWS ? k_dim - c0 : MB_ROWS, j0, j0 + 32 <= n);
}

/* Blocks of runs one after the other (about 512 rows: the block of g and src stays in cache across the tiles),
 * the tiles of a block shared among the threads: each dw element is summed by one thread in the same order
 * whatever the thread count, so dW has the same bits on 1 or several threads. */
__attribute__((target("avx512f")))
static void shift_gemm_dw_avx512(const float *src, int64_t k_dim, const float *g, int64_t n,
                                 const int64_t *shift, int64_t taps, float *dw, const mb_rowset_t *set)
{
    int64_t per_block = set->run_len >= 512 ? 1 : 512 / set->run_len;
    int64_t tiles = taps * ((k_dim + MB_ROWS - 1) / MB_ROWS) * ((n + 31) / 32);
    int64_t threads = mb_threads(set->total_runs * set->run_len * taps * k_dim * n, MB_PARALLEL_MIN_FLOAT_MACS, 0);
    (void)threads; /* read by the OpenMP pragma only */
    for (int64_t i = 0; i < taps * k_dim * n; i++)
        dw[i] = 0.0f;
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads) if (threads > 1 && tiles > 1)
#endif
    for (int64_t q0 = 0; q0 < set->total_runs; q0 += per_block) {
        int64_t q1 = q0 + per_block < set->total_runs ? q0 + per_block : set->total_runs;
        int64_t u;
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
        for (u = 0; u < tiles; u++)
            dw_tile_avx512(src, k_dim, g, n, shift, dw, set, q0, q1, u);
    }
}
#endif

/* The row set of the public functions: `rows` = {offset, img_stride, runs, run_stride, run_len, images}. */
static int rowset(const int64_t *rows, mb_rowset_t *set)
{
    set->offset = rows[0];
    set->img_stride = rows[1];
    set->runs = rows[2];
    set->run_stride = rows[3];
    set->run_len = rows[4];
    set->total_runs = rows[5] * rows[2];
    return set->runs > 0 && set->run_len > 0 && rows[5] > 0;
}

/* out[r] <- sum_t src[r + shift[t]] @ w[t] for the rows r of the row set (other rows untouched); src, w (taps,
 * k_dim, n) and out C-contiguous float32, n % 16 == 0, every row read and written in bounds (the caller checks).
 * Returns 0 on success, 1 when this build or CPU cannot run it. */
int mb_shift_gemm_f32(const float *src, int64_t k_dim, const float *w, int64_t n, const int64_t *shift,
                      int64_t taps, float *out, const int64_t *rows)
{
#ifdef MB_SHIFT_GEMM_AVX512
    mb_rowset_t set;
    if (n % 16 != 0 || !__builtin_cpu_supports("avx512f"))
        return 1;
    if (rowset(rows, &set))
        shift_gemm_avx512(src, k_dim, w, n, shift, taps, out, &set);
    return 0;
#else
    (void)src; (void)k_dim; (void)w; (void)n; (void)shift; (void)taps; (void)out; (void)rows;
    return 1;
#endif
}

/* dw (taps, k_dim, n) <- sum_r src[r + shift[t]]^T g[r] over the rows r of the row set, per tap t; C-contiguous
 * float32, n % 16 == 0, rows in bounds. Returns 0 on success, 1 when it cannot run here. */
int mb_shift_gemm_dw_f32(const float *src, int64_t k_dim, const float *g, int64_t n, const int64_t *shift,
                         int64_t taps, float *dw, const int64_t *rows)
{
#ifdef MB_SHIFT_GEMM_AVX512
    mb_rowset_t set;
    if (n % 16 != 0 || !__builtin_cpu_supports("avx512f"))
        return 1;
    if (rowset(rows, &set))
        shift_gemm_dw_avx512(src, k_dim, g, n, shift, taps, dw, &set);
    else
        for (int64_t i = 0; i < taps * k_dim * n; i++)
            dw[i] = 0.0f;
    return 0;
#else
    (void)src; (void)k_dim; (void)g; (void)n; (void)shift; (void)taps; (void)dw; (void)rows;
    return 1;
#endif
}

/* The backward of a max pooling whose kh x kw windows tile the image (kernel == stride, no padding), float32:
 * dx[plane, i*kh + p, j*kw + q] = grad[plane, i, j] at the FIRST (p, q), in row-major order, where
 * x == out[plane, i, j] (or, when that maximum is NaN, where x is NaN), 0 elsewhere -- argmax's tie rule.
 * x and dx are (planes, h, w), out and grad (planes, oh, ow) with oh = h / kh, ow = w / kw; C-contiguous.
 * Plain C: the work is one pass over x. */
void mb_maxpool_tiles_backward_f32(const float *x, const float *out, const float *grad, float *dx, int64_t planes,
                                   int64_t h, int64_t w, int64_t kh, int64_t kw)
{
    int64_t oh = h / kh, ow = w / kw;
    for (int64_t i = 0; i < planes * h * w; i++)
        dx[i] = 0.0f;
    for (int64_t c = 0; c < planes; c++) {
        const float *xc = x + c * h * w;
        float *dc = dx + c * h * w;
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                float m = out[(c * oh + i) * ow + j];
                int nan = m != m, done = 0;
                for (int64_t p = 0; p < kh && !done; p++)
                    for (int64_t q = 0; q < kw; q++) {
                        int64_t at = (i * kh + p) * w + j * kw + q;
                        float v = xc[at];
                        if (v == m || (nan && v != v)) {
                            dc[at] = grad[(c * oh + i) * ow + j];
                            done = 1;
                            break;
                        }
                    }
            }
    }
}

/* Layout changes between NCHW planes and the channels-last rows of the shift-GEMM, float32, in 16 x 16 blocks
 * (NumPy's strided transposing copy runs ~20x slower than a plain copy). Pixel (y, x) of image i is row
 * r = offset + i * img_stride + y * row_stride + x of `rows` (row length c); planes are (n, c, h, w) contiguous.
 * to_rows writes those rows only (the others untouched); to_planes reads them only. */
#define MB_T 16
void mb_planes_to_rows_f32(const float *planes, int64_t n, int64_t c, int64_t h, int64_t w, float *rows,
                           int64_t offset, int64_t img_stride, int64_t row_stride)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t y = 0; y < h; y++) {
            float *dst = rows + (offset + i * img_stride + y * row_stride) * c;
            const float *src = planes + (i * c * h + y) * w;
            for (int64_t c0 = 0; c0 < c; c0 += MB_T)
                for (int64_t x0 = 0; x0 < w; x0 += MB_T) {
                    int64_t c1 = c0 + MB_T < c ? c0 + MB_T : c, x1 = x0 + MB_T < w ? x0 + MB_T : w;
                    for (int64_t x = x0; x < x1; x++)
                        for (int64_t ch = c0; ch < c1; ch++)
                            dst[x * c + ch] = src[ch * h * w + x];
                }
        }
}

void mb_rows_to_planes_f32(const float *rows, int64_t n, int64_t c, int64_t h, int64_t w, float *planes,
                           int64_t offset, int64_t img_stride, int64_t row_stride)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t y = 0; y < h; y++) {
            const float *src = rows + (offset + i * img_stride + y * row_stride) * c;
            float *dst = planes + (i * c * h + y) * w;
            for (int64_t c0 = 0; c0 < c; c0 += MB_T)
                for (int64_t x0 = 0; x0 < w; x0 += MB_T) {
                    int64_t c1 = c0 + MB_T < c ? c0 + MB_T : c, x1 = x0 + MB_T < w ? x0 + MB_T : w;
                    for (int64_t ch = c0; ch < c1; ch++)
                        for (int64_t x = x0; x < x1; x++)
                            dst[ch * h * w + x] = src[x * c + ch];
                }
        }
}
