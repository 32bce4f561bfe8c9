/* bench.c -- a clock probe for the benchmarks (benchmarks/_common.py): nominal MHz says nothing of turbo. */
#include "mb_bench.h"

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
