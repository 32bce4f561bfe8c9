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

/* The one 64-bit popcount of the portable code (the SIMD kernels use their ISA's own). GCC and Clang turn the
 * builtin into POPCNT inside a function compiled for it (ukernel_scalar.c's POPCNT copy) and into a short
 * bit trick elsewhere; other compilers get the bit trick written out: count in 2-, 4-, 8-bit fields, then add
 * the bytes with one multiply. */
#if defined(_MSC_VER) && !defined(__clang__)
#define MB_ALWAYS_INLINE static __forceinline
#else
#define MB_ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

MB_ALWAYS_INLINE uint64_t mb_popcount64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return (uint64_t)__builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (x * 0x0101010101010101ULL) >> 56;
#endif
}

/* --- threads ----------------------------------------------------------------------------------------------------
 * A GEMM or convolution runs on several threads only from MB_PARALLEL_MIN_MACS binary multiply-accumulates
 * (M x N x K) on: below it, a second thread costs more than it saves. Measured with benchmarks/bench_gemm.py
 * --crossover on a 2-core AVX-512 machine shared with other jobs (load ~6): waking a sleeping thread costs
 * ~6 us, and 2 threads beat 1 from ~150 M MACs on the GEMM (0.79x the time at 151 M, 1.09x at 75 M; the
 * convolution from ~300 M-1.2 G). 128 M MACs is ~120 us on the AVX-512 path (1.1 T MAC/s on one core), ~600 us
 * on the scalar one. Packing and pooling move bytes rather than count bits: their bar is
 * MB_PARALLEL_MIN_ELEMENTS elements read (1 M float32 values are ~50 us of packing; 2 threads did not win up to
 * 16 M under the same load). Both are on the safe side on purpose: a second thread on a core that another
 * process is using gains nothing. */
#ifndef MB_PARALLEL_MIN_MACS
#define MB_PARALLEL_MIN_MACS ((int64_t)128 * 1024 * 1024)
#endif
#define MB_PARALLEL_MIN_ELEMENTS ((int64_t)1024 * 1024)

#if defined(_OPENMP)
#include <omp.h>
#endif
/* The threads for a call of `work` units when the bar for several is `min_work`: 1 below it (or while idle
 * threads would spin), else the caller's nthreads (> 0) or the kernels' setting (mb_set_num_threads). */
int mb_threads(int64_t work, int64_t min_work, int nthreads);

/* --- sizes ------------------------------------------------------------------------------------------------------
 * *total *= f, false when f is outside [0, MB_MAX_EXTENT] or the product passes MB_MAX_ELEMENTS. Both bounds
 * together leave every index expression of the drivers (at most a few such products) far from INT64_MAX. */
static inline int mb_grow(int64_t *total, int64_t f)
{
    if (f < 0 || f > MB_MAX_EXTENT) return 0;
    if (f != 0 && *total > MB_MAX_ELEMENTS / f) return 0;
    *total *= f;
    return 1;
}

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

/* A stream of cache lines to prefetch into L2 while the micro-kernels compute (the next block of real values of
 * mb_gemm_real): each call takes its share, `per_call` bytes, from `next` (up to `stop`, never past `end`),
 * `per_step` lines per word of its K loop. */
typedef struct {
    const char *next, *stop, *end;
    int64_t per_call;
    int per_step;
} mb_prefetch_t;

#define MB_PREFETCH_STEP(pf)                                                                                      \
    do {                                                                                                          \
        if (pf) {                                                                                                 \
            int q_;                                                                                               \
            for (q_ = 0; q_ < (pf)->per_step && (pf)->next < (pf)->stop; q_++, (pf)->next += 64)                  \
                MB_PREFETCH_L2((pf)->next);                                                                       \
        }                                                                                                         \
    } while (0)

/* The micro-kernel (BLIS): computes one tile of C += A.B from packed micropanels and hands it to the epilogue:
 *     acc[i][j] = sum over kw < w of popcount(a[i * lda + kw] ^ panels[...kw...][j]),  result k - 2 acc,
 * for the rows i < mr of a and the outputs j < nvalid, landing at output row m + i, column n + j.
 * Everything that not every call needs travels in the auxiliary struct: the edge of the tile (mr, nvalid),
 * the convolution's zero-padding corrections and the real-input GEMM's prefetch stream. */
typedef struct {
    int mr;                      /* rows of a that are real (<= the kernel's MR; the rest are not stored) */
    int nvalid;                  /* outputs that are real (<= 8 x the kernel's panels) */
    const int32_t *const *corr;  /* mb_conv2d with zero padding: corr[i] (or NULL) is subtracted from row i */
    mb_prefetch_t *pf;           /* mb_gemm_real: the next block's cache lines to prefetch; NULL if none */
} mb_aux_t;

typedef void (*mb_ukernel_fn)(int64_t w, const uint64_t *a, int64_t lda, const uint64_t *panels, int64_t m,
                              int64_t n, const mb_epilogue_t *epi, const mb_aux_t *aux);

typedef struct {
    mb_ukernel_fn fn;
    int mr; /* rows of a per call */
    int np; /* panels per call (8 * np outputs); 8 * np divides 64 so packed outputs never straddle words */
} mb_ukernel_t;

/* The micro-kernel of a path (the scalar one for a path not compiled in); chosen once per path (cpu.c). */
const mb_ukernel_t *mb_ukernel(int path);
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
