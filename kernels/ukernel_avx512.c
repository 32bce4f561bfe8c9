/* ukernel_avx512.c -- the AVX-512 VPOPCNTDQ micro-kernel: 6 rows of a x 4 panels (32 outputs) per call.
 *
 * Per word kw, each of the 6 rows' words is broadcast to all 8 lanes, XOR-ed with the 4 panel vectors
 * (8 outputs each) and VPOPCNTQ-counted into 24 accumulators: 24 x (xor, popcount, add) for 6 + 4 loads.
 * The 3 vector uops per 512 bits run on the two 512-bit ports, so the ceiling is 512 / 1.5 = 341 binary
 * multiply-accumulates per cycle; accumulators live in registers for the whole K loop (no horizontal sums). */
#include "mb_internal.h"

#if MB_HAVE_X86_SIMD
#include <immintrin.h>

#define MR 6
#define NP 4

/* The epilogue of one row of 32 outputs, straight from registers: v0, v1 hold acc for outputs n..n+15 and
 * n+16..n+31 as int32; lanes past nvalid are masked off every load and store. Float results are rounded after
 * the product and after the sum, as NumPy's float32 `acc * scale + bias` (no FMA: -ffp-contract=off). */
static MB_TARGET_AVX512 inline void row_epilogue(__m512i v0, __m512i v1, int64_t row, int64_t n, int nvalid,
                                                 const mb_epilogue_t *e, const int32_t *corr)
{
    const __mmask16 k0 = (__mmask16)(nvalid >= 16 ? 0xFFFF : (1u << nvalid) - 1);
    const __mmask16 k1 = (__mmask16)(nvalid >= 32 ? 0xFFFF : nvalid <= 16 ? 0 : (1u << (nvalid - 16)) - 1);
    if (corr != NULL) {
        v0 = _mm512_sub_epi32(v0, _mm512_maskz_loadu_epi32(k0, corr + n));
        v1 = _mm512_sub_epi32(v1, _mm512_maskz_loadu_epi32(k1, corr + n + 16));
    }
    if (e->mode == MB_OUT_INT32) {
        int32_t *o = (int32_t *)e->out + row * e->ldo + n;
        _mm512_mask_storeu_epi32(o, k0, v0);
        _mm512_mask_storeu_epi32(o + 16, k1, v1);
    } else if (e->mode == MB_OUT_FLOAT32) {
        float *o = (float *)e->out + row * e->ldo + n;
        __m512 f0 = _mm512_cvtepi32_ps(v0), f1 = _mm512_cvtepi32_ps(v1);
        if (e->scale != NULL) {
            f0 = _mm512_mul_ps(f0, _mm512_maskz_loadu_ps(k0, e->scale + n));
            f1 = _mm512_mul_ps(f1, _mm512_maskz_loadu_ps(k1, e->scale + n + 16));
        }
        if (e->bias != NULL) {
            f0 = _mm512_add_ps(f0, _mm512_maskz_loadu_ps(k0, e->bias + n));
            f1 = _mm512_add_ps(f1, _mm512_maskz_loadu_ps(k1, e->bias + n + 16));
        }
        _mm512_mask_storeu_ps(o, k0, f0);
        _mm512_mask_storeu_ps(o + 16, k1, f1);
    } else { /* a set bit (-1) where acc < threshold, or acc > threshold where direction < 0 */
        const __m512i t0 = _mm512_maskz_loadu_epi32(k0, e->threshold + n);
        const __m512i t1 = _mm512_maskz_loadu_epi32(k1, e->threshold + n + 16);
        uint32_t neg0 = _mm512_cmplt_epi32_mask(v0, t0), neg1 = _mm512_cmplt_epi32_mask(v1, t1);
        uint64_t bits;
        if (e->direction != NULL) { /* the sign bit of each int8 direction: 1 where it is -1 */
            const uint32_t d0 = _mm_movepi8_mask(_mm_maskz_loadu_epi8(k0, e->direction + n));
            const uint32_t d1 = _mm_movepi8_mask(_mm_maskz_loadu_epi8(k1, e->direction + n + 16));
            neg0 = (neg0 & ~d0) | (_mm512_cmpgt_epi32_mask(v0, t0) & d0);
            neg1 = (neg1 & ~d1) | (_mm512_cmpgt_epi32_mask(v1, t1) & d1);
        }
        bits = ((uint64_t)(neg0 & k0) | ((uint64_t)(neg1 & k1) << 16)) << (n & 63);
        ((uint64_t *)e->out)[row * e->ldo + (n >> 6)] |= bits;
    }
}

#define MB_XPA(c, A, B) c = _mm512_add_epi64(c, _mm512_popcnt_epi64(_mm512_xor_si512(A, B)))
#define MB_ROW(i)                                                                                                 \
    A = _mm512_set1_epi64((long long)a##i[kw]);                                                                   \
    MB_XPA(c##i##0, A, B0);                                                                                       \
    MB_XPA(c##i##1, A, B1);                                                                                       \
    MB_XPA(c##i##2, A, B2);                                                                                       \
    MB_XPA(c##i##3, A, B3);
#define MB_ZERO_ROW(i)                                                                                            \
    __m512i c##i##0 = _mm512_setzero_si512(), c##i##1 = _mm512_setzero_si512(),                                   \
            c##i##2 = _mm512_setzero_si512(), c##i##3 = _mm512_setzero_si512();
/* the low halves of two vectors of 64-bit counts, as 16 int32 (counts <= K < 2^31), then acc = K - 2 count */
#define MB_ACC32(x, y) _mm512_sub_epi32(K, _mm512_slli_epi32(_mm512_permutex2var_epi32(x, even, y), 1))
#define MB_ROW_OUT(i)                                                                                             \
    if (mr > i)                                                                                                   \
        row_epilogue(MB_ACC32(c##i##0, c##i##1), MB_ACC32(c##i##2, c##i##3), m + i, n, nvalid, epi,               \
                     corr ? corr[i] : NULL);

static MB_TARGET_AVX512 void ukernel_avx512(int64_t w, const uint64_t *a, int64_t lda, const uint64_t *panels,
                                            int64_t m, int64_t n, const mb_epilogue_t *epi, const mb_aux_t *aux)
{
    const int mr = aux->mr, nvalid = aux->nvalid;
    const int32_t *const *corr = aux->corr;
    mb_prefetch_t *const pf = aux->pf;
    /* rows past mr repeat row 0: computed, never stored */
    const uint64_t *a0 = a;
    const uint64_t *a1 = a + (mr > 1 ? 1 : 0) * lda;
    const uint64_t *a2 = a + (mr > 2 ? 2 : 0) * lda;
    const uint64_t *a3 = a + (mr > 3 ? 3 : 0) * lda;
    const uint64_t *a4 = a + (mr > 4 ? 4 : 0) * lda;
    const uint64_t *a5 = a + (mr > 5 ? 5 : 0) * lda;
    const uint64_t *b0 = panels, *b1 = panels + w * MB_PANEL, *b2 = panels + 2 * w * MB_PANEL,
                   *b3 = panels + 3 * w * MB_PANEL;
    int64_t kw;
    __m512i K, even;
    MB_ZERO_ROW(0) MB_ZERO_ROW(1) MB_ZERO_ROW(2) MB_ZERO_ROW(3) MB_ZERO_ROW(4) MB_ZERO_ROW(5)

    for (kw = 0; kw < w; kw++) {
        const __m512i B0 = _mm512_load_si512((const void *)(b0 + kw * MB_PANEL));
        const __m512i B1 = _mm512_load_si512((const void *)(b1 + kw * MB_PANEL));
        const __m512i B2 = _mm512_load_si512((const void *)(b2 + kw * MB_PANEL));
        const __m512i B3 = _mm512_load_si512((const void *)(b3 + kw * MB_PANEL));
        __m512i A;
        MB_ROW(0) MB_ROW(1) MB_ROW(2) MB_ROW(3) MB_ROW(4) MB_ROW(5)
        MB_PREFETCH_STEP(pf);
    }
    K = _mm512_set1_epi32(epi->k);
    even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    MB_ROW_OUT(0) MB_ROW_OUT(1) MB_ROW_OUT(2) MB_ROW_OUT(3) MB_ROW_OUT(4) MB_ROW_OUT(5)
}

const mb_ukernel_t mb_ukernel_avx512 = {ukernel_avx512, MR, NP};
#endif
