/* gemm.c -- the blocked drivers of the binary GEMM and of the NHWC binary convolution.
 *
 * Blocking: b is regrouped once per call into 8-output panels (mb_internal.h), a cheap O(N * W) copy.
 * Work is cut into units of (up to ~256 KB of a rows) x (64 outputs); units are shared among threads. Inside a
 * unit, the micro-kernel's panels (np x 8 outputs x W words, L1-sized) stay put while the rows of a stream
 * past them from L2. A unit spans 64 outputs, so packed outputs (MB_OUT_BITS) of one word never come from two
 * threads.
 *
 * Real (unpacked) activations, mb_gemm_real: each unit is a block of rows of a over all N, packed by the thread
 * that multiplies it right before use, while the next block's real values are prefetched from memory during
 * the popcount work (the micro-kernels issue the prefetches, spread over their K loop).
 *
 * Convolution is the same GEMM on the fly: each unit first gathers its output pixels' receptive fields into a
 * thread-local im2col buffer of packed words (taps x ceil(C/64) words per pixel, a cheap copy next to the
 * popcount work), then runs the micro-kernel on it. Exact zero padding uses +1 padding and subtracts, for each
 * border pixel, the weights that fell on padding (a per-position, per-output correction; interior pixels
 * have none, so the cost is a few border rows). */
#include "mb_internal.h"

#include <stdlib.h>
#include <string.h>

#define MB_A_BLOCK_BYTES (256 * 1024)
#define MB_UNIT_COLS 64
#define MB_MIN_UNITS 8

static uint64_t popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (x * 0x0101010101010101ULL) >> 56;
}

/* panel[p][kw][j] = b[8p + j][kw], zero past the last row */
static void pack_panels(const uint64_t *b, int64_t n_rows, int64_t w, int64_t npanels, uint64_t *panels)
{
    int64_t p;
    for (p = 0; p < npanels; p++) {
        uint64_t *dst = panels + p * w * MB_PANEL;
        int j;
        for (j = 0; j < MB_PANEL; j++) {
            const int64_t n = p * MB_PANEL + j;
            int64_t kw;
            if (n < n_rows) {
                const uint64_t *src = b + n * w;
                for (kw = 0; kw < w; kw++) dst[kw * MB_PANEL + j] = src[kw];
            } else {
                for (kw = 0; kw < w; kw++) dst[kw * MB_PANEL + j] = 0;
            }
        }
    }
}

/* The micro-kernel of `path` (scalar if that path is not compiled in) in *uk, and b regrouped into its panels:
 * enough 8-output panels for whole micro-kernel calls over n_rows outputs. NULL when out of memory. */
static uint64_t *weight_panels(int path, const uint64_t *b, int64_t n_rows, int64_t w, mb_ukernel_t *uk)
{
    int64_t npanels;
    uint64_t *panels;
    if (!mb_get_ukernel(path, uk)) mb_get_ukernel(MB_PATH_SCALAR, uk);
    npanels = (n_rows + (int64_t)MB_PANEL * uk->np - 1) / ((int64_t)MB_PANEL * uk->np) * uk->np;
    panels = (uint64_t *)mb_aligned_alloc((size_t)(npanels * w * MB_PANEL) * sizeof(uint64_t));
    if (panels != NULL) pack_panels(b, n_rows, w, npanels, panels);
    return panels;
}

/* rows of a per unit: a multiple of the micro-kernel's rows whose `row_bytes` each fit `budget` bytes (at least
 * one micro-kernel's rows, at most all `rows` rounded up to them) */
static int64_t rows_per_block(const mb_ukernel_t *uk, int64_t row_bytes, int64_t budget, int64_t rows)
{
    int64_t mc = budget / row_bytes;
    mc = mc / uk->mr * uk->mr;
    if (mc < uk->mr) mc = uk->mr;
    if (mc > rows) mc = (rows + uk->mr - 1) / uk->mr * uk->mr;
    return mc;
}

int mb_gemm(int path, const uint64_t *a, int64_t m_rows, const uint64_t *b, int64_t n_rows, int64_t w,
            const mb_epilogue_t *epi, int nthreads)
{
    mb_ukernel_t uk;
    int64_t nt, mc, nmb, nnb, u;
    uint64_t *panels = weight_panels(path, b, n_rows, w, &uk);
    if (panels == NULL) return MB_ERR_NOMEM;
    nt = (int64_t)MB_PANEL * uk.np;

    mc = rows_per_block(&uk, w * 8, MB_A_BLOCK_BYTES, m_rows);
    nmb = (m_rows + mc - 1) / mc;
    nnb = (n_rows + MB_UNIT_COLS - 1) / MB_UNIT_COLS;
    (void)nthreads;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) num_threads(MB_THREADS(nthreads)) if (nmb * nnb > 1)
#endif
    for (u = 0; u < nmb * nnb; u++) {
        const int64_t m0 = (u / nnb) * mc, n0 = (u % nnb) * MB_UNIT_COLS;
        const int64_t m1 = (m0 + mc < m_rows) ? m0 + mc : m_rows;
        const int64_t n1 = (n0 + MB_UNIT_COLS < n_rows) ? n0 + MB_UNIT_COLS : n_rows;
        int64_t m, n;
        for (n = n0; n < n1; n += nt) {
            const uint64_t *pn = panels + (n / MB_PANEL) * w * MB_PANEL;
            const int nvalid = (int)((n1 - n < nt) ? n1 - n : nt);
            for (m = m0; m < m1; m += uk.mr) {
                const int mr = (int)((m1 - m < uk.mr) ? m1 - m : uk.mr);
                uk.fn(a + m * w, w, mr, pn, w, m, n, nvalid, epi, NULL, NULL);
            }
        }
    }
    mb_aligned_free(panels);
    return MB_OK;
}

/* Real a: blocks of rows are packed by the thread that multiplies them, into a buffer that stays in L1/L2. While
 * the micro-kernels work on block u, the real values of block u + 1 are prefetched into L2 a few cache lines per
 * micro-kernel call, so that reading them (memory-bound) overlaps with the popcounts (compute-bound) instead of
 * following them. Threads take contiguous ranges of blocks (static schedule), so block u + 1 is usually theirs. */
#define MB_REAL_BLOCK_BYTES (96 * 1024)

int mb_gemm_real(int path, int dtype, const void *a, int64_t m_rows, int64_t k, const uint64_t *b, int64_t n_rows,
                 const mb_epilogue_t *epi, int nthreads)
{
    static const size_t esize[3] = {sizeof(float), sizeof(double), sizeof(int8_t)};
    const size_t es = esize[dtype];
    const int64_t w = (k + 63) / 64;
    mb_ukernel_t uk;
    int64_t nt, mc, nunits, calls;
    uint64_t *panels = weight_panels(path, b, n_rows, w, &uk);
    int failed = 0;
    if (panels == NULL) return MB_ERR_NOMEM;
    nt = (int64_t)MB_PANEL * uk.np;

    mc = rows_per_block(&uk, k * (int64_t)es, MB_REAL_BLOCK_BYTES, m_rows);
    nunits = (m_rows + mc - 1) / mc;
    calls = ((mc + uk.mr - 1) / uk.mr) * ((n_rows + nt - 1) / nt); /* micro-kernel calls per full block */
    (void)nthreads;
#if defined(_OPENMP)
#pragma omp parallel num_threads(MB_THREADS(nthreads)) if (nunits > 1)
#endif
    {
        uint64_t *buf = (uint64_t *)mb_aligned_alloc((size_t)(mc * w) * sizeof(uint64_t));
        int64_t u;
        if (buf == NULL) {
#if defined(_OPENMP)
#pragma omp atomic write
#endif
            failed = 1;
        }
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
        for (u = 0; u < nunits; u++) {
            const int64_t r0 = u * mc, r1 = (r0 + mc < m_rows) ? r0 + mc : m_rows;
            /* the next block's bytes, a share of them prefetched during each micro-kernel call, spread over
             * its K loop (a burst would stall the loads that the kernel needs) */
            const char *next = (const char *)a + (size_t)r1 * (size_t)k * es;
            const char *end = (const char *)a + (size_t)((r1 + mc < m_rows) ? r1 + mc : m_rows) * (size_t)k * es;
            const int64_t lines_per_call = ((int64_t)(end - next) / 64 + calls - 1) / calls;
            mb_prefetch_t pf;
            int64_t m, n;
            if (buf == NULL) continue;
            pf.next = next;
            pf.per_step = (int)((lines_per_call + w - 1) / w);
            mb_pack_block(path, dtype, (const char *)a + (size_t)r0 * (size_t)k * es, r1 - r0, k, buf);
            for (n = 0; n < n_rows; n += nt) {
                const uint64_t *pn = panels + (n / MB_PANEL) * w * MB_PANEL;
                const int nvalid = (int)((n_rows - n < nt) ? n_rows - n : nt);
                for (m = r0; m < r1; m += uk.mr) {
                    const int mr = (int)((r1 - m < uk.mr) ? r1 - m : uk.mr);
                    pf.end = (pf.next + 64 * lines_per_call < end) ? pf.next + 64 * lines_per_call : end;
                    uk.fn(buf + (m - r0) * w, w, mr, pn, w, m, n, nvalid, epi, NULL, pf.next < end ? &pf : NULL);
                }
            }
        }
        mb_aligned_free(buf);
    }
    mb_aligned_free(panels);
    return failed ? MB_ERR_NOMEM : MB_OK;
}

/* Zero padding: corr[pos][o] = sum of weights[o, tap, :] over the taps of output position pos that fall on
 * padding (as +-1 sums, channels - 2 popcount). pos_index[pos] is the row of corr, or -1 for interior pixels. */
static int build_zero_pad_correction(const uint64_t *weights, int64_t o, int64_t kh, int64_t kw, int64_t wc,
                                     int64_t channels, int64_t h, int64_t w, int64_t sh, int64_t sw, int64_t ph,
                                     int64_t pw, int64_t oh, int64_t ow, int32_t **corr_out, int64_t **index_out)
{
    const int64_t taps = kh * kw;
    int32_t *wsum = (int32_t *)malloc((size_t)(o * taps) * sizeof(int32_t));
    int64_t *index = (int64_t *)malloc((size_t)(oh * ow) * sizeof(int64_t));
    int32_t *corr = NULL;
    int64_t q, t, c, y, x, nborder = 0;
    if (wsum == NULL || index == NULL) goto fail;
    for (q = 0; q < o; q++)
        for (t = 0; t < taps; t++) {
            const uint64_t *p = weights + (q * taps + t) * wc;
            int64_t ones = 0;
            for (c = 0; c < wc; c++) ones += (int64_t)popcount64(p[c]);
            wsum[q * taps + t] = (int32_t)(channels - 2 * ones);
        }
    for (y = 0; y < oh; y++)
        for (x = 0; x < ow; x++) {
            const int inside = y * sh - ph >= 0 && y * sh - ph + kh <= h && x * sw - pw >= 0 && x * sw - pw + kw <= w;
            index[y * ow + x] = inside ? -1 : nborder++;
        }
    corr = (int32_t *)calloc((size_t)(nborder > 0 ? nborder * o : 1), sizeof(int32_t));
    if (corr == NULL) goto fail;
    for (y = 0; y < oh; y++)
        for (x = 0; x < ow; x++) {
            int32_t *row;
            int64_t i, j;
            if (index[y * ow + x] < 0) continue;
            row = corr + index[y * ow + x] * o;
            for (i = 0; i < kh; i++)
                for (j = 0; j < kw; j++) {
                    const int64_t iy = y * sh - ph + i, ix = x * sw - pw + j;
                    if (iy >= 0 && iy < h && ix >= 0 && ix < w) continue;
                    for (q = 0; q < o; q++) row[q] += wsum[q * taps + i * kw + j];
                }
        }
    free(wsum);
    *corr_out = corr;
    *index_out = index;
    return MB_OK;
fail:
    free(wsum);
    free(index);
    free(corr);
    return MB_ERR_NOMEM;
}

int mb_conv2d(int path, const uint64_t *x, int64_t batch, int64_t h, int64_t w, int64_t wc,
              const uint64_t *weights, int64_t o, int64_t kh, int64_t kw, int64_t channels,
              int64_t sh, int64_t sw, int64_t ph, int64_t pw, int pad_value, int64_t oh, int64_t ow,
              const mb_epilogue_t *epi, int nthreads)
{
    mb_ukernel_t uk;
    const int64_t kwords = kh * kw * wc, rows = batch * oh * ow;
    int64_t nt, mc, nunits, c;
    uint64_t *panels = weight_panels(path, weights, o, kwords, &uk);
    uint64_t *padrow = (uint64_t *)malloc((size_t)wc * sizeof(uint64_t));
    int32_t *corr = NULL;
    int64_t *pos_index = NULL;
    int failed = 0;
    if (panels == NULL || padrow == NULL) {
        mb_aligned_free(panels);
        free(padrow);
        return MB_ERR_NOMEM;
    }
    nt = (int64_t)MB_PANEL * uk.np;
    /* the words of a padding pixel: all channels +1 (zero bits) or all -1 (the valid channel bits set) */
    for (c = 0; c < wc; c++) {
        const int64_t valid = channels - 64 * c;
        padrow[c] = (pad_value < 0) ? (valid >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << valid) - 1)) : 0;
    }
    if (pad_value == 0 && (ph > 0 || pw > 0)) {
        if (build_zero_pad_correction(weights, o, kh, kw, wc, channels, h, w, sh, sw, ph, pw, oh, ow, &corr,
                                      &pos_index) != MB_OK) {
            mb_aligned_free(panels);
            free(padrow);
            return MB_ERR_NOMEM;
        }
    }

    mc = rows_per_block(&uk, kwords * 8, MB_A_BLOCK_BYTES, rows);
    /* at least MB_MIN_UNITS units, so that the threads stay balanced */
    while (mc > 4 * uk.mr && (rows + mc - 1) / mc < MB_MIN_UNITS) mc = (mc / 2 + uk.mr - 1) / uk.mr * uk.mr;
    nunits = (rows + mc - 1) / mc;
    (void)nthreads;
#if defined(_OPENMP)
#pragma omp parallel num_threads(MB_THREADS(nthreads)) if (nunits > 1)
#endif
    {
        uint64_t *buf = (uint64_t *)mb_aligned_alloc((size_t)(mc * kwords) * sizeof(uint64_t));
        const int32_t **crow = (const int32_t **)malloc((size_t)mc * sizeof(int32_t *));
        int64_t u;
        if (buf == NULL || crow == NULL) {
#if defined(_OPENMP)
#pragma omp atomic write
#endif
            failed = 1;
        }
#if defined(_OPENMP)
#pragma omp for schedule(dynamic, 1)
#endif
        for (u = 0; u < nunits; u++) {
            const int64_t r0 = u * mc, r1 = (r0 + mc < rows) ? r0 + mc : rows;
            int64_t r, m, n;
            if (buf == NULL || crow == NULL) continue;
            int64_t b = r0 / (oh * ow), y = (r0 % (oh * ow)) / ow, xo = r0 % ow; /* pixel of row r0 */
            for (r = r0; r < r1; r++) { /* im2col of packed words: row r = output pixel (b, y, xo) */
                const int64_t pos = y * ow + xo;
                uint64_t *dst = buf + (r - r0) * kwords;
                int64_t i, j, q;
                const int64_t ix0 = xo * sw - pw;
                for (i = 0; i < kh; i++) {
                    const int64_t iy = y * sh - ph + i;
                    if (iy >= 0 && iy < h && ix0 >= 0 && ix0 + kw <= w) { /* a whole kernel row: contiguous */
                        const uint64_t *src = x + ((b * h + iy) * w + ix0) * wc;
                        for (q = 0; q < kw * wc; q++) dst[q] = src[q];
                        dst += kw * wc;
                        continue;
                    }
                    for (j = 0; j < kw; j++) {
                        const int64_t ix = ix0 + j;
                        const uint64_t *src = (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                                  ? x + ((b * h + iy) * w + ix) * wc
                                                  : padrow;
                        for (q = 0; q < wc; q++) dst[q] = src[q];
                        dst += wc;
                    }
                }
                crow[r - r0] = (corr != NULL && pos_index[pos] >= 0) ? corr + pos_index[pos] * o : NULL;
                if (++xo == ow) { /* next pixel without divisions */
                    xo = 0;
                    if (++y == oh) y = 0, b++;
                }
            }
            for (n = 0; n < o; n += nt) {
                const uint64_t *pn = panels + (n / MB_PANEL) * kwords * MB_PANEL;
                const int nvalid = (int)((o - n < nt) ? o - n : nt);
                for (m = r0; m < r1; m += uk.mr) {
                    const int mr = (int)((r1 - m < uk.mr) ? r1 - m : uk.mr);
                    uk.fn(buf + (m - r0) * kwords, kwords, mr, pn, kwords, m, n, nvalid, epi,
                          corr != NULL ? crow + (m - r0) : NULL, NULL);
                }
            }
        }
        mb_aligned_free(buf);
        free((void *)crow);
    }
    mb_aligned_free(panels);
    free(padrow);
    free(corr);
    free(pos_index);
    return failed ? MB_ERR_NOMEM : MB_OK;
}
