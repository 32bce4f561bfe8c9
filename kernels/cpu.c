/* cpu.c -- run-time CPU feature detection, path selection, threads and a clock probe.
 *
 * x86: CPUID says what the core implements, XGETBV says whether the OS saves the wider registers; a path is
 * usable only if both agree (an AVX-512 CPU under an OS that does not save ZMM state must not run ZMM code). */
#include "mb_internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(MB_X86)
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static void mb_cpuid(int leaf, int sub, unsigned r[4])
{
    int v[4];
    __cpuidex(v, leaf, sub);
    r[0] = (unsigned)v[0], r[1] = (unsigned)v[1], r[2] = (unsigned)v[2], r[3] = (unsigned)v[3];
}
static uint64_t mb_xgetbv0(void) { return (uint64_t)_xgetbv(0); }
#else
#include <cpuid.h>
static void mb_cpuid(int leaf, int sub, unsigned r[4]) { __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]); }
static uint64_t mb_xgetbv0(void)
{
    unsigned lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0)); /* xgetbv, spelled for old assemblers */
    return ((uint64_t)hi << 32) | lo;
}
#endif
#endif

static void detect(mb_cpu_t *cpu)
{
    memset(cpu, 0, sizeof(*cpu));
#if defined(MB_X86)
    {
        unsigned r[4], maxleaf;
        mb_cpuid(0, 0, r);
        maxleaf = r[0];
        mb_cpuid(1, 0, r);
        cpu->popcnt = (r[2] >> 23) & 1;
        cpu->avx = (r[2] >> 28) & 1;
        if ((r[2] >> 27) & 1) { /* OSXSAVE: XGETBV is available */
            uint64_t xcr0 = mb_xgetbv0();
            cpu->os_ymm = (xcr0 & 0x6) == 0x6;    /* XMM and YMM state */
            cpu->os_zmm = (xcr0 & 0xe6) == 0xe6;  /* plus opmask, ZMM0-15 upper halves, ZMM16-31 */
        }
        if (maxleaf >= 7) {
            mb_cpuid(7, 0, r);
            cpu->avx2 = (r[1] >> 5) & 1;
            cpu->avx512f = (r[1] >> 16) & 1;
            cpu->avx512bw = (r[1] >> 30) & 1;
            cpu->avx512vl = (r[1] >> 31) & 1;
            cpu->avx512vpopcntdq = (r[2] >> 14) & 1;
        }
    }
#endif
#if defined(MB_ARM_NEON)
    cpu->neon = 1;
#endif
}

/* CPUID is slow under a hypervisor (each one exits to the host), so the answer is computed once. Two threads
 * racing here both write the same values. */
void mb_cpu_detect(mb_cpu_t *cpu)
{
    static mb_cpu_t cached;
    static volatile int done = 0;
    if (!done) {
        detect(&cached);
        done = 1;
    }
    *cpu = cached;
}

int mb_path_compiled(int path)
{
    switch (path) {
    case MB_PATH_SCALAR: return 1;
    case MB_PATH_AVX2:
    case MB_PATH_AVX512: return MB_HAVE_X86_SIMD ? 1 : 0;
#if defined(MB_ARM_NEON)
    case MB_PATH_NEON: return 1;
#endif
    default: return 0;
    }
}

int mb_path_supported(int path)
{
    mb_cpu_t c;
    if (!mb_path_compiled(path)) return 0;
    mb_cpu_detect(&c);
    switch (path) {
    case MB_PATH_SCALAR: return 1;
    case MB_PATH_AVX2: return c.avx2 && c.popcnt && c.os_ymm;
    case MB_PATH_AVX512:
        return c.avx512f && c.avx512bw && c.avx512vl && c.avx512vpopcntdq && c.avx2 && c.popcnt && c.os_zmm;
    case MB_PATH_NEON: return c.neon;
    default: return 0;
    }
}

int mb_best_path(void)
{
    if (mb_path_supported(MB_PATH_AVX512)) return MB_PATH_AVX512;
    if (mb_path_supported(MB_PATH_AVX2)) return MB_PATH_AVX2;
    if (mb_path_supported(MB_PATH_NEON)) return MB_PATH_NEON;
    return MB_PATH_SCALAR;
}

int mb_get_ukernel(int path, mb_ukernel_t *uk)
{
#if MB_HAVE_X86_SIMD
    if (path == MB_PATH_AVX512) { *uk = mb_ukernel_avx512; return 1; }
    if (path == MB_PATH_AVX2) { *uk = mb_ukernel_avx2; return 1; }
#endif
#if defined(MB_ARM_NEON)
    if (path == MB_PATH_NEON) { *uk = mb_ukernel_neon; return 1; }
#endif
#if defined(MB_X86)
    if (path == MB_PATH_SCALAR) {
        mb_cpu_t c;
        mb_cpu_detect(&c);
        *uk = c.popcnt ? mb_ukernel_scalar_popcnt : mb_ukernel_scalar;
        return 1;
    }
#endif
    if (path == MB_PATH_SCALAR) { *uk = mb_ukernel_scalar; return 1; }
    return 0;
}

int mb_openmp_enabled(void)
{
#if defined(_OPENMP)
    return 1;
#else
    return 0;
#endif
}

int mb_max_threads(void)
{
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void *mb_aligned_alloc(size_t bytes)
{
    /* 64-byte alignment by hand (portable C89 malloc): the original pointer is kept just below the block */
    unsigned char *raw = (unsigned char *)malloc(bytes + 64 + sizeof(void *));
    uintptr_t p;
    if (raw == NULL) return NULL;
    p = ((uintptr_t)(raw + sizeof(void *)) + 63) & ~(uintptr_t)63;
    ((void **)p)[-1] = raw;
    return (void *)p;
}

void mb_aligned_free(void *p)
{
    if (p != NULL) free(((void **)p)[-1]);
}

#define MB_R10(s) s s s s s s s s s s
/* A chain of dependent 64-bit multiplies: each waits for the previous one, and an integer multiply takes
 * 3 cycles on every x86-64 and AArch64 core of the last decade (adds are no good: recent cores fold chains of
 * add-immediate at rename). Returns the number of cycles spent, n x 100 x 3, or 0 where not implemented. */
uint64_t mb_clock_probe(uint64_t n)
{
    uint64_t i, x = 1, y = 3;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    for (i = 0; i < n; i++) __asm__ volatile(MB_R10(MB_R10("imul %1, %0\n\t")) : "+r"(x) : "r"(y));
    return n * 300;
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
    for (i = 0; i < n; i++) __asm__ volatile(MB_R10(MB_R10("mul %0, %0, %1\n\t")) : "+r"(x) : "r"(y));
    return n * 300;
#else
    (void)i, (void)n, (void)x, (void)y;
    return 0;
#endif
}
