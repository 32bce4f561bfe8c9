/* ukernel_scalar.c -- the portable micro-kernel: up to 16 rows of a against one panel (8 outputs), 64-bit popcount.
 *
 * The first micro-kernel to read: mb_gemm_reference's inner loop (gemm.c), on 8 outputs at once.
 * Compiled twice: a generic version any C compiler builds for any CPU, and on x86 a copy targeted at the POPCNT
 * instruction (every x86-64 CPU since about 2008), which the run-time dispatch picks when the CPU has it. Both
 * count with mb_popcount64 (mb_internal.h), which becomes POPCNT in the targeted copy. */
#include "mb_internal.h"

#define MB_EPI_ATTR
#include "mb_epilogue.h"

/* Up to MR rows of a against one panel (8 outputs), one row at a time: 8 accumulators, the row's word and the
 * two pointers fit the 16 general registers without spilling, and the 8 popcounts per word keep the popcount
 * unit busy (x86 has one: 64 binary MACs per cycle is the ceiling). Rows past mr are not computed; many rows
 * per call spread the cost of the call over more work (short K: 576 gives only 9 words per row). The
 * prefetch stream of mb_gemm_real (aux->pf) is left alone: this kernel is compute-bound, and a check in its
 * inner loop costs more than the prefetch saves.
 * acc[i][j] = sum over words of popcount(a_i[kw] ^ b[n + j][kw]);  result k - 2 acc[i][j]. */
#define MR 16
#define SCALAR_KERNEL_BODY                                                                              \
    int32_t tile[MR * MB_TILE_COLS];                                                                              \
    const int mr = aux->mr;                                                                                       \
    int i, j;                                                                                                     \
    for (i = 0; i < mr; i++) {                                                                                    \
        const uint64_t *x = a + i * lda, *p = panels;                                                             \
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;                                  \
        int64_t kw;                                                                                               \
        int32_t *t = tile + i * MB_TILE_COLS;                                                                     \
        for (kw = 0; kw < w; kw++, p += MB_PANEL) {                                                               \
            const uint64_t xk = x[kw];                                                                            \
            s0 += mb_popcount64(xk ^ p[0]);                                                                       \
            s1 += mb_popcount64(xk ^ p[1]);                                                                       \
            s2 += mb_popcount64(xk ^ p[2]);                                                                       \
            s3 += mb_popcount64(xk ^ p[3]);                                                                       \
            s4 += mb_popcount64(xk ^ p[4]);                                                                       \
            s5 += mb_popcount64(xk ^ p[5]);                                                                       \
            s6 += mb_popcount64(xk ^ p[6]);                                                                       \
            s7 += mb_popcount64(xk ^ p[7]);                                                                       \
        }                                                                                                         \
        t[0] = epi->k - 2 * (int32_t)s0, t[1] = epi->k - 2 * (int32_t)s1;                                        \
        t[2] = epi->k - 2 * (int32_t)s2, t[3] = epi->k - 2 * (int32_t)s3;                                        \
        t[4] = epi->k - 2 * (int32_t)s4, t[5] = epi->k - 2 * (int32_t)s5;                                        \
        t[6] = epi->k - 2 * (int32_t)s6, t[7] = epi->k - 2 * (int32_t)s7;                                        \
    }                                                                                                             \
    if (epi->mode == MB_OUT_INT32 && aux->corr == NULL && aux->nvalid == MB_PANEL) { /* common case: out */ \
        for (i = 0; i < mr; i++) {                                                                                \
            int32_t *o = (int32_t *)epi->out + (m + i) * epi->ldo + n;                                            \
            for (j = 0; j < MB_PANEL; j++) o[j] = tile[i * MB_TILE_COLS + j];                                     \
        }                                                                                                         \
        return;                                                                                                   \
    }                                                                                                             \
    mb_tile_epilogue(tile, mr, aux->nvalid, m, n, epi, aux->corr);

static void ukernel_scalar(int64_t w, const uint64_t *a, int64_t lda, const uint64_t *panels, int64_t m, int64_t n,
                           const mb_epilogue_t *epi, const mb_aux_t *aux)
{
    SCALAR_KERNEL_BODY
}

const mb_ukernel_t mb_ukernel_scalar = {ukernel_scalar, MR, 1};

#if defined(MB_X86)
static MB_TARGET_POPCNT void ukernel_scalar_popcnt(int64_t w, const uint64_t *a, int64_t lda, const uint64_t *panels,
                                                   int64_t m, int64_t n, const mb_epilogue_t *epi,
                                                   const mb_aux_t *aux)
{
    SCALAR_KERNEL_BODY
}

const mb_ukernel_t mb_ukernel_scalar_popcnt = {ukernel_scalar_popcnt, MR, 1};
#endif
