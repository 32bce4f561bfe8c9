/* cpu.c -- run-time CPU feature detection, path and micro-kernel selection (once), threads, aligned buffers.
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

/* CPUID is slow under a hypervisor (each one exits to the host), so the answer is computed once, with the
 * micro-kernel of each path. The extension calls mb_cpu() when it is imported (under the GIL); should two
 * threads race here first, both write the same values. */
static mb_cpu_t cpu_cached;
static mb_ukernel_t ukernel_of_path[MB_NPATHS];
static volatile int detected = 0;

static void detect_once(void)
{
    int path;
    if (detected) return;
    detect(&cpu_cached);
    for (path = 0; path < MB_NPATHS; path++) ukernel_of_path[path] = mb_ukernel_scalar;
#if defined(MB_X86)
    if (cpu_cached.popcnt) ukernel_of_path[MB_PATH_SCALAR] = mb_ukernel_scalar_popcnt;
#endif
#if MB_HAVE_X86_SIMD
    ukernel_of_path[MB_PATH_AVX2] = mb_ukernel_avx2;
    ukernel_of_path[MB_PATH_AVX512] = mb_ukernel_avx512;
#endif
#if defined(MB_ARM_NEON)
    ukernel_of_path[MB_PATH_NEON] = mb_ukernel_neon;
#endif
    detected = 1;
}

const mb_cpu_t *mb_cpu(void)
{
    detect_once();
    return &cpu_cached;
}

const mb_ukernel_t *mb_ukernel(int path)
{
    detect_once();
    return &ukernel_of_path[(path >= 0 && path < MB_NPATHS) ? path : MB_PATH_SCALAR];
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
    const mb_cpu_t *c = mb_cpu();
    if (!mb_path_compiled(path)) return 0;
    switch (path) {
    case MB_PATH_SCALAR: return 1;
    case MB_PATH_AVX2: return c->avx2 && c->popcnt && c->os_ymm;
    case MB_PATH_AVX512:
        return c->avx512f && c->avx512bw && c->avx512vl && c->avx512vpopcntdq && c->avx2 && c->popcnt && c->os_zmm;
    case MB_PATH_NEON: return c->neon;
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

/* The kernels' own thread count (0: OpenMP's default) and crossover, set from Python (minibnn's thread policy). */
static volatile int num_threads = 0;
static volatile int64_t parallel_min_macs = MB_PARALLEL_MIN_MACS;

void mb_set_num_threads(int n) { num_threads = n > 0 ? n : 0; }

int mb_get_num_threads(void)
{
#if defined(_OPENMP)
    return num_threads > 0 ? num_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

void mb_set_parallel_min_macs(int64_t macs) { parallel_min_macs = macs >= 0 ? macs : MB_PARALLEL_MIN_MACS; }
int64_t mb_get_parallel_min_macs(void) { return parallel_min_macs; }

/* Idle OpenMP threads and the neighbours' CPU time. After a parallel region libgomp's threads spin, by default
 * for ~300,000 PAUSE instructions (milliseconds on recent x86) before they sleep: a busy-wait that takes a core
 * from any other process after every call (measured: 3.6 ms of CPU burnt after each 2-thread GEMM). libgomp
 * reads its wait policy once, when it is loaded, which is before any code of this extension runs, so the
 * policy has to be in the environment before the extension is imported: OMP_WAIT_POLICY=passive (or
 * GOMP_SPINCOUNT=0), which minibnn sets. Then idle threads sleep at once and the kernels use several threads
 * above the crossover. Without it the kernels stay on one thread, so no thread ever spins (releasing the pool
 * after each call instead, omp_pause_resource_all, was tried: a thread start and join per call costs tens of
 * milliseconds on a loaded machine). An explicit OMP_WAIT_POLICY=active is respected: the user asked for
 * spinning threads. */
static int policy = -1; /* 1: idle threads sleep (or the user wants them active); 0: spinning threads */

static int env_is(const char *name, const char *value)
{
    const char *v = getenv(name);
    size_t i;
    if (v == NULL) return 0;
    while (*v == ' ') v++;
    for (i = 0; value[i] != 0; i++)
        if (v[i] == 0 || (v[i] | 0x20) != value[i]) return 0;
    return v[i] == 0 || v[i] == ' ';
}

int mb_idle_threads_sleep(void)
{
    if (policy < 0) /* the first call is at import: the environment libgomp saw when it was loaded */
        policy = env_is("OMP_WAIT_POLICY", "passive") || env_is("OMP_WAIT_POLICY", "active") ||
                 env_is("GOMP_SPINCOUNT", "0");
    return policy;
}

int mb_threads(int64_t work, int64_t min_work, int nthreads)
{
#if defined(_OPENMP)
    if (min_work == MB_PARALLEL_MIN_MACS) min_work = parallel_min_macs;
    if (work < min_work || !mb_idle_threads_sleep()) return 1;
    return nthreads > 0 ? nthreads : mb_get_num_threads();
#else
    (void)work, (void)min_work, (void)nthreads;
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
