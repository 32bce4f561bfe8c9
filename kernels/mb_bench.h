/* mb_bench.h -- helpers for the benchmarks, not part of the kernels' interface (mb_kernels.h). */
#ifndef MB_BENCH_H
#define MB_BENCH_H

#include <stdint.h>

/* Spends a known number of core cycles (returned; 0 if not available here), to measure the clock. */
uint64_t mb_clock_probe(uint64_t n);

#endif
