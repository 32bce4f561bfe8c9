/* ukernel_neon.c -- the ARM NEON micro-kernel: 4 rows of a x 1 panel (8 outputs) per call.
 *
 * VCNT counts the bits of each byte; byte counts (at most 8 per word) are summed for up to 31 words and then
 * widened pairwise (u8 -> u16 -> u32 -> u64) into the 64-bit sums. NEON is part of every AArch64 CPU, so this
 * path needs no run-time detection; it is compiled only when the compiler targets ARM. */
#include "mb_internal.h"

#if defined(MB_ARM_NEON)
#include <arm_neon.h>

#define MB_EPI_ATTR
#include "mb_epilogue.h"

#define MR 4
#define NP 1
#define BYTE_ROUNDS 31

static void ukernel_neon(int64_t w, const uint64_t *a, int64_t lda, const uint64_t *panels, int64_t m, int64_t n,
                         const mb_epilogue_t *epi, const mb_aux_t *aux)
{
    const int mr = aux->mr;
    mb_prefetch_t *const pf = aux->pf;
    const uint64_t *rows[MR];
    uint64x2_t s[MR][4];
    int32_t tile[MR * MB_TILE_COLS];
    int64_t k0, kw;
    int i, q;
    for (i = 0; i < MR; i++) {
        rows[i] = a + (mr > i ? i : 0) * lda; /* rows past mr repeat row 0: computed, never stored */
        for (q = 0; q < 4; q++) s[i][q] = vdupq_n_u64(0);
    }
    for (k0 = 0; k0 < w; k0 += BYTE_ROUNDS) {
        const int64_t kend = (w - k0 < BYTE_ROUNDS) ? w : k0 + BYTE_ROUNDS;
        uint8x16_t c[MR][4];
        for (i = 0; i < MR; i++)
            for (q = 0; q < 4; q++) c[i][q] = vdupq_n_u8(0);
        for (kw = k0; kw < kend; kw++) {
            const uint64_t *p = panels + kw * MB_PANEL;
            const uint64x2_t B0 = vld1q_u64(p), B1 = vld1q_u64(p + 2), B2 = vld1q_u64(p + 4),
                             B3 = vld1q_u64(p + 6);
            for (i = 0; i < MR; i++) {
                const uint64x2_t A = vdupq_n_u64(rows[i][kw]);
                c[i][0] = vaddq_u8(c[i][0], vcntq_u8(vreinterpretq_u8_u64(veorq_u64(A, B0))));
                c[i][1] = vaddq_u8(c[i][1], vcntq_u8(vreinterpretq_u8_u64(veorq_u64(A, B1))));
                c[i][2] = vaddq_u8(c[i][2], vcntq_u8(vreinterpretq_u8_u64(veorq_u64(A, B2))));
                c[i][3] = vaddq_u8(c[i][3], vcntq_u8(vreinterpretq_u8_u64(veorq_u64(A, B3))));
            }
            MB_PREFETCH_STEP(pf);
        }
        for (i = 0; i < MR; i++)
            for (q = 0; q < 4; q++) s[i][q] = vaddq_u64(s[i][q], vpaddlq_u32(vpaddlq_u16(vpaddlq_u8(c[i][q]))));
    }
    for (i = 0; i < MR; i++) {
        for (q = 0; q < 4; q++) {
            tile[i * MB_TILE_COLS + 2 * q] = epi->k - 2 * (int32_t)vgetq_lane_u64(s[i][q], 0);
            tile[i * MB_TILE_COLS + 2 * q + 1] = epi->k - 2 * (int32_t)vgetq_lane_u64(s[i][q], 1);
        }
    }
    mb_tile_epilogue(tile, mr, aux->nvalid, m, n, epi, aux->corr);
}

const mb_ukernel_t mb_ukernel_neon = {ukernel_neon, MR, NP};
#endif
