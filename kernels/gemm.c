/* gemm.c -- the binary GEMM, first as a plain loop, then blocked; and the NHWC binary convolution on top of it.
 *
 * Step 1, mb_gemm_reference: three loops and a popcount. It is what every other function here computes.
 *
 * Step 2, the blocked drivers, BLIS-style. The micro-kernel (ukernel_*.c) computes one small tile of outputs,
 * mr rows x 8 np outputs, from packed micropanels; ONE macro-kernel (macro_kernel below) holds the two loops
 * around it for every driver; each driver only prepares its rows of a and cuts the work into units:
 *   - b is regrouped once per call into 8-output panels (mb_internal.h), a cheap O(N * W) copy;
 *   - mb_gemm: units of (up to ~256 KB of a rows) x (64 outputs), shared among threads. Inside a unit, the
 *     micro-kernel's panels (np x 8 outputs x W words, L1-sized) stay put while the rows of a stream past them
 *     from L2. A unit spans 64 outputs, so packed outputs (MB_OUT_BITS) of one word never come from two threads;
 *   - mb_gemm_real (real activations): each unit is a block of rows of a over all N, packed by the thread that
 *     multiplies it right before use, while the next block's real values are prefetched from memory during the
 *     popcount work (the micro-kernels issue the prefetches, spread over their K loop);
 *   - mb_conv2d: the same GEMM on the fly: each unit first gathers its output pixels' receptive fields into a
 *     thread-local im2col buffer of packed words (taps x ceil(C/64) words per pixel, a cheap copy next to the
 *     popcount work), then runs the macro-kernel on it. Exact zero padding uses +1 padding and subtracts, for
 *     each border pixel, the weights that fell on padding (a per-position, per-output correction; interior
 *     pixels have none, so the cost is a few border rows).
 * Threads: a driver uses several only above MB_PARALLEL_MIN_MACS multiply-accumulates (mb_internal.h). */
#include "mb_internal.h"

#include <stdlib.h>
#include <string.h>

/* --- step 1: the reference ---------------------------------------------------------------------------------- */

/* out[m, n] = k - 2 * sum over words of popcount(a[m] ^ b[n]): the +-1 dot product of rows m and n (a set bit
 * is -1; equal bits multiply to +1, different bits to -1, so the dot product is k - 2 * #different). */
int mb_gemm_reference(const uint64_t *a, int64_t m_rows, const uint64_t *b, int64_t n_rows, int64_t w, int32_t k,
                      int32_t *out)
{
    int64_t m, n, kw, size_a = 1, size_b = 1, size_out = 1;
    if (!mb_grow(&size_a, m_rows) || !mb_grow(&size_a, w) || !mb_grow(&size_b, n_rows) || !mb_grow(&size_b, w) ||
        !mb_grow(&size_out, m_rows) || !mb_grow(&size_out, n_rows) || k < 1 || w != ((int64_t)k + 63) / 64)
        return MB_ERR_RANGE;
    for (m = 0; m < m_rows; m++)
        for (n = 0; n < n_rows; n++) {
            int64_t different = 0;
            for (kw = 0; kw < w; kw++) different += (int64_t)mb_popcount64(a[m * w + kw] ^ b[n * w + kw]);
            out[m * n_rows + n] = k - 2 * (int32_t)different;
        }
    return MB_OK;
}

/* --- step 2: blocked -------------------------------------------------------------------------------------------- */

#define MB_A_BLOCK_BYTES (256 * 1024)
#define MB_UNIT_COLS 64
#define MB_MIN_UNITS 8

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

/* b regrouped into the panels of micro-kernel uk: enough 8-output panels for whole micro-kernel calls over
 * n_rows outputs. NULL when out of memory. */
static uint64_t *weight_panels(const mb_ukernel_t *uk, const uint64_t *b, int64_t n_rows, int64_t w)
{
    const int64_t npanels = (n_rows + (int64_t)MB_PANEL * uk->np - 1) / ((int64_t)MB_PANEL * uk->np) * uk->np;
    uint64_t *panels = (uint64_t *)mb_aligned_alloc((size_t)(npanels * w * MB_PANEL) * sizeof(uint64_t));
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

/* The macro-kernel: output rows m0..m1 x outputs n0..n1, one micro-kernel tile at a time. Row m of a is at
 * a + (m - m0) * w (packed words); the outputs' panels start at `panels` (n0 is a multiple of the tile width).
 * The panels of one column of tiles stay in L1 while the rows of a stream past them. corr (convolutions with
 * zero padding: row m's corrections at corr[m - m0]) and pf (the real-input GEMM's prefetch stream, shared out
 * among the calls) may be NULL. */
static void macro_kernel(const mb_ukernel_t *uk, int64_t w, const uint64_t *a, int64_t m0, int64_t m1,
                         const uint64_t *panels, int64_t n0, int64_t n1, const mb_epilogue_t *epi,
                         const int32_t *const *corr, mb_prefetch_t *pf)
{
    const int64_t nt = (int64_t)MB_PANEL * uk->np;
    mb_aux_t aux;
    int64_t m, n;
    aux.corr = NULL;
    aux.pf = NULL;
    for (n = n0; n < n1; n += nt) {
        const uint64_t *pn = panels + ((n - n0) / MB_PANEL) * w * MB_PANEL;
        aux.nvalid = (int)((n1 - n < nt) ? n1 - n : nt);
        for (m = m0; m < m1; m += uk->mr) {
            aux.mr = (int)((m1 - m < uk->mr) ? m1 - m : uk->mr);
            if (corr != NULL) aux.corr = corr + (m - m0);
            if (pf != NULL) {
                pf->stop = (pf->end - pf->next > pf->per_call) ? pf->next + pf->per_call : pf->end;
                aux.pf = (pf->next < pf->end) ? pf : NULL;
            }
            uk->fn(w, a + (m - m0) * w, w, pn, m, n, epi, &aux);
        }
    }
}

/* m x n x k multiply-accumulates, saturated (for comparing with the threads' crossover) */
static int64_t macs(int64_t m, int64_t n, int64_t k)
{
    const double d = (double)m * (double)n * (double)k;
    return d < 4.0e18 ? (int64_t)d : (int64_t)4e18;
}

/* The epilogue can write m_rows x n_rows outputs without an index overflowing. */
static int epilogue_ok(const mb_epilogue_t *e, int64_t m_rows, int64_t n_rows)
{
    int64_t size = m_rows; /* already checked by the caller */
    const int64_t need = (e->mode == MB_OUT_BITS) ? (n_rows + 63) / 64 : n_rows;
    return e->k >= 1 && e->ldo >= need && mb_grow(&size, e->ldo);
}

int mb_gemm(int path, const uint64_t *a, int64_t m_rows, const uint64_t *b, int64_t n_rows, int64_t w,
            const mb_epilogue_t *epi, int nthreads)
{
    const mb_ukernel_t *uk = mb_ukernel(path);
    int64_t mc, nmb, nnb, u, size_a = 1, size_b = 1;
    int threads;
    uint64_t *panels;
    if (!mb_grow(&size_a, m_rows) || !mb_grow(&size_a, w) || !mb_grow(&size_b, n_rows) || !mb_grow(&size_b, w) || !epilogue_ok(epi, m_rows, n_rows) ||
        w != ((int64_t)epi->k + 63) / 64)
        return MB_ERR_RANGE;
    if (m_rows == 0 || n_rows == 0) return MB_OK;
    panels = weight_panels(uk, b, n_rows, w);
    if (panels == NULL) return MB_ERR_NOMEM;

    mc = rows_per_block(uk, w * 8, MB_A_BLOCK_BYTES, m_rows);
    nmb = (m_rows + mc - 1) / mc;
    nnb = (n_rows + MB_UNIT_COLS - 1) / MB_UNIT_COLS;
    threads = mb_threads(macs(m_rows, n_rows, epi->k), MB_PARALLEL_MIN_MACS, nthreads);
    (void)threads; /* read by the OpenMP pragma only */
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1 && nmb * nnb > 1)
#endif
    for (u = 0; u < nmb * nnb; u++) {
        const int64_t m0 = (u / nnb) * mc, n0 = (u % nnb) * MB_UNIT_COLS;
        const int64_t m1 = (m0 + mc < m_rows) ? m0 + mc : m_rows;
        const int64_t n1 = (n0 + MB_UNIT_COLS < n_rows) ? n0 + MB_UNIT_COLS : n_rows;
        macro_kernel(uk, w, a + m0 * w, m0, m1, panels + (n0 / MB_PANEL) * w * MB_PANEL, n0, n1, epi, NULL, NULL);
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
    const int64_t w = (k + 63) / 64;
    const mb_ukernel_t *uk = mb_ukernel(path);
    int64_t mc, nunits, calls, size_a = 1, size_b = 1;
    size_t es;
    int threads, failed = 0;
    uint64_t *panels;
    if (dtype < MB_DTYPE_F32 || dtype > MB_DTYPE_I8 || !mb_grow(&size_a, m_rows) || !mb_grow(&size_a, k) ||
        !mb_grow(&size_b, n_rows) || !mb_grow(&size_b, w) ||
        !epilogue_ok(epi, m_rows, n_rows) || k != epi->k)
        return MB_ERR_RANGE;
    if (m_rows == 0 || n_rows == 0) return MB_OK;
    es = esize[dtype];
    panels = weight_panels(uk, b, n_rows, w);
    if (panels == NULL) return MB_ERR_NOMEM;

    mc = rows_per_block(uk, k * (int64_t)es, MB_REAL_BLOCK_BYTES, m_rows);
    nunits = (m_rows + mc - 1) / mc;
    calls = ((mc + uk->mr - 1) / uk->mr) * ((n_rows + (int64_t)MB_PANEL * uk->np - 1) / ((int64_t)MB_PANEL * uk->np));
    threads = mb_threads(macs(m_rows, n_rows, k), MB_PARALLEL_MIN_MACS, nthreads);
    (void)threads; /* read by the OpenMP pragma only */
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads) if (threads > 1 && nunits > 1)
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
            mb_prefetch_t pf;
            int64_t lines_per_call;
            if (buf == NULL) continue;
            pf.next = (const char *)a + (size_t)r1 * (size_t)k * es;
            pf.end = (const char *)a + (size_t)((r1 + mc < m_rows) ? r1 + mc : m_rows) * (size_t)k * es;
            lines_per_call = ((int64_t)(pf.end - pf.next) / 64 + calls - 1) / calls;
            pf.per_call = 64 * lines_per_call;
            pf.per_step = (int)((lines_per_call + w - 1) / w);
            mb_pack_block(path, dtype, (const char *)a + (size_t)r0 * (size_t)k * es, r1 - r0, k, buf);
            macro_kernel(uk, w, buf, r0, r1, panels, 0, n_rows, epi, NULL, &pf);
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
            for (c = 0; c < wc; c++) ones += (int64_t)mb_popcount64(p[c]);
            wsum[q * taps + t] = (int32_t)(channels - 2 * ones);
        }
    for (y = 0; y < oh; y++)
        for (x = 0; x < ow; x++) {
            const int inside = y * sh - ph >= 0 && y * sh - ph + kh <= h && x * sw - pw >= 0 &&
                               x * sw - pw + kw <= w;
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

/* Rows r0..r1 of the convolution's im2col matrix, packed: row r is output pixel (b, y, xo) (r = (b * oh + y) * ow
 * + xo) and holds the kh x kw x wc words of its receptive field, padding pixels replaced by padrow. crow[r - r0]
 * gets the pixel's zero-padding correction row (or NULL). */
static void im2col_rows(const uint64_t *x, int64_t h, int64_t w, int64_t wc, int64_t kh, int64_t kw, int64_t sh,
                        int64_t sw, int64_t ph, int64_t pw, int64_t oh, int64_t ow, const uint64_t *padrow,
                        int64_t r0, int64_t r1, uint64_t *buf, const int32_t *corr, const int64_t *pos_index,
                        int64_t o, const int32_t **crow)
{
    const int64_t kwords = kh * kw * wc;
    int64_t b = r0 / (oh * ow), y = (r0 % (oh * ow)) / ow, xo = r0 % ow; /* pixel of row r0 */
    int64_t r;
    for (r = r0; r < r1; r++) {
        const int64_t pos = y * ow + xo, ix0 = xo * sw - pw;
        uint64_t *dst = buf + (r - r0) * kwords;
        int64_t i, j, q;
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
                const uint64_t *src = (iy >= 0 && iy < h && ix >= 0 && ix < w) ? x + ((b * h + iy) * w + ix) * wc
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
}

/* The sizes of a convolution are in the range that its index arithmetic handles (mb_kernels.h): every extent
 * in [0, MB_MAX_EXTENT] (then y * sh - ph + i and the like stay below 2^63), x, the weights, the im2col rows
 * and the output within MB_MAX_ELEMENTS, and oh, ow what the formula gives. */
static int conv_sizes_ok(int64_t batch, int64_t h, int64_t w, int64_t wc, int64_t o, int64_t kh, int64_t kw,
                         int64_t channels, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int pad_value, int64_t oh,
                         int64_t ow, const mb_epilogue_t *epi)
{
    int64_t size_x = 1, size_w = 1, rows = 1;
    if (!mb_grow(&size_x, batch) || !mb_grow(&size_x, h) || !mb_grow(&size_x, w) || !mb_grow(&size_x, wc) ||
        !mb_grow(&size_w, o) || !mb_grow(&size_w, kh) || !mb_grow(&size_w, kw) || !mb_grow(&size_w, wc) ||
        !mb_grow(&rows, batch) || !mb_grow(&rows, oh) || !mb_grow(&rows, ow))
        return 0;
    if (sh < 1 || sw < 1 || sh > MB_MAX_EXTENT || sw > MB_MAX_EXTENT || ph < 0 || pw < 0 || ph > MB_MAX_EXTENT ||
        pw > MB_MAX_EXTENT || kh < 1 || kw < 1 || h < 1 || w < 1 || wc < 1)
        return 0;
    if (channels < 1 || (channels + 63) / 64 != wc || kh * kw * channels != (int64_t)epi->k)
        return 0;
    if (pad_value < -1 || pad_value > 1 || h + 2 * ph < kh || w + 2 * pw < kw)
        return 0;
    return oh == (h + 2 * ph - kh) / sh + 1 && ow == (w + 2 * pw - kw) / sw + 1 && epilogue_ok(epi, rows, o);
}

int mb_conv2d(int path, const uint64_t *x, int64_t batch, int64_t h, int64_t w, int64_t wc,
              const uint64_t *weights, int64_t o, int64_t kh, int64_t kw, int64_t channels,
              int64_t sh, int64_t sw, int64_t ph, int64_t pw, int pad_value, int64_t oh, int64_t ow,
              const mb_epilogue_t *epi, int nthreads)
{
    const mb_ukernel_t *uk = mb_ukernel(path);
    int64_t kwords, rows, mc, nunits, c;
    uint64_t *panels, *padrow;
    int32_t *corr = NULL;
    int64_t *pos_index = NULL;
    int threads, failed = 0;
    if (!conv_sizes_ok(batch, h, w, wc, o, kh, kw, channels, sh, sw, ph, pw, pad_value, oh, ow, epi))
        return MB_ERR_RANGE;
    if (batch == 0 || o == 0) return MB_OK;
    kwords = kh * kw * wc;
    rows = batch * oh * ow;
    panels = weight_panels(uk, weights, o, kwords);
    padrow = (uint64_t *)malloc((size_t)wc * sizeof(uint64_t));
    if (panels == NULL || padrow == NULL) {
        mb_aligned_free(panels);
        free(padrow);
        return MB_ERR_NOMEM;
    }
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

    mc = rows_per_block(uk, kwords * 8, MB_A_BLOCK_BYTES, rows);
    /* at least MB_MIN_UNITS units, so that the threads stay balanced */
    while (mc > 4 * uk->mr && (rows + mc - 1) / mc < MB_MIN_UNITS) mc = (mc / 2 + uk->mr - 1) / uk->mr * uk->mr;
    nunits = (rows + mc - 1) / mc;
    threads = mb_threads(macs(rows, o, epi->k), MB_PARALLEL_MIN_MACS, nthreads);
    (void)threads; /* read by the OpenMP pragma only */
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads) if (threads > 1 && nunits > 1)
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
            if (buf == NULL || crow == NULL) continue;
            im2col_rows(x, h, w, wc, kh, kw, sh, sw, ph, pw, oh, ow, padrow, r0, r1, buf, corr, pos_index, o, crow);
            macro_kernel(uk, kwords, buf, r0, r1, panels, 0, o, epi, corr != NULL ? crow : NULL, NULL);
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
