/* ukernel_avx2.c -- the AVX2 micro-kernel: 4 rows of a x 1 panel (8 outputs) per call.
 *
 * AVX2 has no vector popcount, so bytes are counted with a 16-entry nibble table and VPSHUFB (Mula et al.):
 * popcount8(x) = lut[x & 15] + lut[x >> 4]. Byte counts (at most 8 per word) are summed for up to 31 words
 * (31 x 8 = 248 < 256) and then widened into 64-bit sums with VPSADBW. */
#include "mb_internal.h"

#if MB_HAVE_X86_SIMD
#include <immintrin.h>

#define MB_EPI_ATTR MB_TARGET_AVX2
#include "mb_epilogue.h"

#define MR 4
#define NP 1
#define BYTE_ROUNDS 31

#define MB_POPCNT8(x)                                                                                             \
    _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(x, low)),                                           \
                    _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low)))
#define MB_ROW(i)                                                                                                 \
    A = _mm256_set1_epi64x((long long)a##i[kw]);                                                                  \
    x = _mm256_xor_si256(A, B0);                                                                                  \
    c##i##0 = _mm256_add_epi8(c##i##0, MB_POPCNT8(x));                                                            \
    x = _mm256_xor_si256(A, B1);                                                                                  \
    c##i##1 = _mm256_add_epi8(c##i##1, MB_POPCNT8(x));
#define MB_FLUSH_ROW(i)                                                                                           \
    s[i][0] = _mm256_add_epi64(s[i][0], _mm256_sad_epu8(c##i##0, zero));                                          \
    s[i][1] = _mm256_add_epi64(s[i][1], _mm256_sad_epu8(c##i##1, zero));

static MB_TARGET_AVX2 void ukernel_avx2(int64_t w, const uint64_t *a, int64_t lda, const uint64_t *panels,
                                        int64_t m, int64_t n, const mb_epilogue_t *epi, const mb_aux_t *aux)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    const __m256i zero = _mm256_setzero_si256();
    const int mr = aux->mr;
    mb_prefetch_t *const pf = aux->pf;
    const uint64_t *a0 = a;
    const uint64_t *a1 = a + (mr > 1 ? 1 : 0) * lda;
    const uint64_t *a2 = a + (mr > 2 ? 2 : 0) * lda;
    const uint64_t *a3 = a + (mr > 3 ? 3 : 0) * lda;
    __m256i s[MR][2];
    uint64_t sums[4];
    int32_t tile[MR * MB_TILE_COLS];
    int64_t k0, kw;
    int i, j;
    for (i = 0; i < MR; i++) s[i][0] = s[i][1] = zero;

    for (k0 = 0; k0 < w; k0 += BYTE_ROUNDS) {
        const int64_t kend = (w - k0 < BYTE_ROUNDS) ? w : k0 + BYTE_ROUNDS;
        __m256i c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero, c30 = zero, c31 = zero;
        for (kw = k0; kw < kend; kw++) {
            const __m256i B0 = _mm256_load_si256((const __m256i *)(panels + kw * MB_PANEL));
            const __m256i B1 = _mm256_load_si256((const __m256i *)(panels + kw * MB_PANEL + 4));
            __m256i A, x;
            MB_ROW(0) MB_ROW(1) MB_ROW(2) MB_ROW(3)
            MB_PREFETCH_STEP(pf);
        }
        MB_FLUSH_ROW(0) MB_FLUSH_ROW(1) MB_FLUSH_ROW(2) MB_FLUSH_ROW(3)
    }
    for (i = 0; i < MR; i++) {
        for (j = 0; j < 2; j++) {
            int q;
            _mm256_storeu_si256((__m256i *)sums, s[i][j]);
            for (q = 0; q < 4; q++) tile[i * MB_TILE_COLS + 4 * j + q] = epi->k - 2 * (int32_t)sums[q];
        }
    }
    mb_tile_epilogue(tile, mr, aux->nvalid, m, n, epi, aux->corr);
}

const mb_ukernel_t mb_ukernel_avx2 = {ukernel_avx2, MR, NP};
#endif
