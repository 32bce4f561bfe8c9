/* mb_internal.h -- what the kernel sources share: platform tests, per-function ISA targets, the micro-kernel
 * interface and the layout of the weight panels. Not part of the interface used by Python. */
#ifndef MB_INTERNAL_H
#define MB_INTERNAL_H

#include "mb_kernels.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define MB_X86 1
#endif
#if defined(__aarch64__) || defined(_M_ARM64) || (defined(__ARM_NEON) && defined(__arm__))
#define MB_ARM_NEON 1
#endif

/* x86 SIMD kernels are compiled with per-function target attributes, never with -march flags, so the same
 * binary runs on every x86-64 and the CPU picks the path at run time. MSVC needs no attribute at all. */
#if defined(__GNUC__) || defined(__clang__)
#define MB_TARGET(isa) __attribute__((target(isa)))
#else
#define MB_TARGET(isa)
#endif

#if defined(MB_X86)
#if defined(__clang__)
#define MB_HAVE_X86_SIMD (__clang_major__ >= 6)
#elif defined(__GNUC__)
#define MB_HAVE_X86_SIMD (__GNUC__ >= 8)
#elif defined(_MSC_VER)
#define MB_HAVE_X86_SIMD (_MSC_VER >= 1920)
#else
#define MB_HAVE_X86_SIMD 0
#endif
#else
#define MB_HAVE_X86_SIMD 0
#endif

#define MB_TARGET_POPCNT MB_TARGET("popcnt")
#define MB_TARGET_AVX2 MB_TARGET("avx2,popcnt")
#define MB_TARGET_AVX512 MB_TARGET("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx2,popcnt")

#if defined(_OPENMP)
#include <omp.h>
/* the thread count of a parallel region: the caller's nthreads, or OpenMP's default when it is 0 */
#define MB_THREADS(n) ((n) > 0 ? (n) : omp_get_max_threads())
#endif

/* Weight panels: the rows of b (one row per output n) are regrouped 8 at a time, interleaved word by word:
 *     panel[p][kw][j] = b[8p + j][kw]          (zero rows past the last n)
 * so one 512-bit load brings word kw of 8 consecutive outputs, and a broadcast of a[m][kw] XORs against all 8.
 * Each micro-kernel consumes `np` consecutive panels (8 * np outputs) and `mr` rows of a. */
#define MB_PANEL 8
#define MB_TILE_COLS 64 /* row stride of the int32 tile handed to the epilogue; >= 8 * np of every kernel */

/* A hint to bring the cache line at p into L2 ahead of its use (no effect where the compiler has no prefetch). */
#if defined(__GNUC__) || defined(__clang__)
#define MB_PREFETCH_L2(p) __builtin_prefetch((const void *)(p), 0, 2)
#elif defined(_MSC_VER) && defined(MB_X86)
#include <xmmintrin.h>
#define MB_PREFETCH_L2(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)
#else
#define MB_PREFETCH_L2(p) ((void)(p))
#endif

/* A stream of cache lines to prefetch into L2 while a micro-kernel computes (the next block of real values of
 * mb_gemm_real): `per_step` lines per word of its K loop, from `next` up to `end`. NULL: nothing to prefetch. */
typedef struct {
    const char *next, *end;
    int per_step;
} mb_prefetch_t;

#define MB_PREFETCH_STEP(pf)                                                                                      \
    do {                                                                                                          \
        if (pf) {                                                                                                 \
            int q_;                                                                                               \
            for (q_ = 0; q_ < (pf)->per_step && (pf)->next < (pf)->end; q_++, (pf)->next += 64)                   \
                MB_PREFETCH_L2((pf)->next);                                                                       \
        }                                                                                                         \
    } while (0)

typedef void (*mb_ukernel_fn)(const uint64_t *a, int64_t lda, int mr, const uint64_t *panels, int64_t w,
                              int64_t m, int64_t n, int nvalid, const mb_epilogue_t *epi,
                              const int32_t *const *corr, mb_prefetch_t *pf);

typedef struct {
    mb_ukernel_fn fn;
    int mr; /* rows of a per call */
    int np; /* panels per call (8 * np outputs); 8 * np divides 64 so packed outputs never straddle words */
} mb_ukernel_t;

int mb_get_ukernel(int path, mb_ukernel_t *uk);
extern const mb_ukernel_t mb_ukernel_scalar;
#if defined(MB_X86)
extern const mb_ukernel_t mb_ukernel_scalar_popcnt;
#endif
#if MB_HAVE_X86_SIMD
extern const mb_ukernel_t mb_ukernel_avx2;
extern const mb_ukernel_t mb_ukernel_avx512;
#endif
#if defined(MB_ARM_NEON)
extern const mb_ukernel_t mb_ukernel_neon;
#endif

/* Pack `rows` consecutive rows of k real values of type dtype (MB_DTYPE_*) into rows of ceil(k/64) words, serially,
 * with the packing routine of `path` (pack.c). */
void mb_pack_block(int path, int dtype, const void *x, int64_t rows, int64_t k, uint64_t *out);


void *mb_aligned_alloc(size_t bytes);
void mb_aligned_free(void *p);

#endif
