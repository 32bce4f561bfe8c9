/* ukernel_scalar.c -- the portable micro-kernel: two rows of a against one panel (8 outputs), 64-bit popcount.
 *
 * Compiled twice: a generic version any C compiler builds for any CPU, and on x86 a copy targeted at the POPCNT
 * instruction (every x86-64 CPU since about 2008), which the run-time dispatch picks when the CPU has it. */
#include "mb_internal.h"

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define MB_ALWAYS_INLINE static __forceinline
#else
#define MB_ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

MB_ALWAYS_INLINE uint64_t popcount_generic(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return (uint64_t)__builtin_popcountll(x);
#else /* the SWAR bit trick: count in 2-, 4-, 8-bit fields, then add the bytes with one multiply */
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (x * 0x0101010101010101ULL) >> 56;
#endif
}

#define MB_EPI_ATTR
#include "mb_epilogue.h"

/* Two rows of a against one panel, four outputs at a time (8 accumulators fit the 16 general registers):
 * acc[i][j] = sum over words of popcount(a_i[kw] ^ b[n + j][kw]);  result k - 2 acc[i][j]. */
#define SCALAR_KERNEL_BODY(POPCOUNT)                                                                              \
    const uint64_t *a0 = a, *a1 = a + (mr > 1 ? lda : 0); /* a missing second row repeats the first */         \
    int32_t tile[2 * MB_TILE_COLS];                                                                               \
    int64_t kw;                                                                                                   \
    int half, j;                                                                                                  \
    for (half = 0; half < 2; half++) {                                                                            \
        const uint64_t *p = panels + 4 * half;                                                                    \
        uint64_t s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;                          \
        for (kw = 0; kw < w; kw++, p += MB_PANEL) {                                                               \
            const uint64_t x0 = a0[kw], x1 = a1[kw];                                                              \
            s00 += POPCOUNT(x0 ^ p[0]);                                                                           \
            s01 += POPCOUNT(x0 ^ p[1]);                                                                           \
            s02 += POPCOUNT(x0 ^ p[2]);                                                                           \
            s03 += POPCOUNT(x0 ^ p[3]);                                                                           \
            s10 += POPCOUNT(x1 ^ p[0]);                                                                           \
            s11 += POPCOUNT(x1 ^ p[1]);                                                                           \
            s12 += POPCOUNT(x1 ^ p[2]);                                                                           \
            s13 += POPCOUNT(x1 ^ p[3]);                                                                           \
        }                                                                                                         \
        j = 4 * half;                                                                                             \
        tile[j] = epi->k - 2 * (int32_t)s00, tile[j + 1] = epi->k - 2 * (int32_t)s01;                            \
        tile[j + 2] = epi->k - 2 * (int32_t)s02, tile[j + 3] = epi->k - 2 * (int32_t)s03;                        \
        j += MB_TILE_COLS;                                                                                        \
        tile[j] = epi->k - 2 * (int32_t)s10, tile[j + 1] = epi->k - 2 * (int32_t)s11;                            \
        tile[j + 2] = epi->k - 2 * (int32_t)s12, tile[j + 3] = epi->k - 2 * (int32_t)s13;                        \
    }                                                                                                             \
    if (epi->mode == MB_OUT_INT32 && corr == NULL && nvalid == MB_PANEL) { /* the common case, straight out */    \
        int i;                                                                                                    \
        for (i = 0; i < mr; i++) {                                                                                \
            int32_t *o = (int32_t *)epi->out + (m + i) * epi->ldo + n;                                            \
            for (j = 0; j < MB_PANEL; j++) o[j] = tile[i * MB_TILE_COLS + j];                                     \
        }                                                                                                         \
        return;                                                                                                   \
    }                                                                                                             \
    mb_tile_epilogue(tile, mr, nvalid, m, n, epi, corr);

static void ukernel_scalar(const uint64_t *a, int64_t lda, int mr, const uint64_t *panels, int64_t w, int64_t m,
                           int64_t n, int nvalid, const mb_epilogue_t *epi, const int32_t *const *corr)
{
    SCALAR_KERNEL_BODY(popcount_generic)
}

const mb_ukernel_t mb_ukernel_scalar = {ukernel_scalar, 2, 1};

#if defined(MB_X86)
#if defined(_MSC_VER) && !defined(__clang__)
#define popcount_hw(x) ((uint64_t)__popcnt64(x))
#else
#define popcount_hw(x) ((uint64_t)__builtin_popcountll(x))
#endif

static MB_TARGET_POPCNT void ukernel_scalar_popcnt(const uint64_t *a, int64_t lda, int mr, const uint64_t *panels,
                                                   int64_t w, int64_t m, int64_t n, int nvalid,
                                                   const mb_epilogue_t *epi, const int32_t *const *corr)
{
    SCALAR_KERNEL_BODY(popcount_hw)
}

const mb_ukernel_t mb_ukernel_scalar_popcnt = {ukernel_scalar_popcnt, 2, 1};
#endif
