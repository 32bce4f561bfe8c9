/* mb_kernels.h -- the C interface of minibnn's bit-packed XNOR-popcount kernels.
 *
 * Everything here works on bit-packed +-1 data as documented in minibnn/packing.py:
 *   element k of a row is bit (k % 64) of word k / 64; a set bit means -1, a clear bit +1 (sign(0) = +1);
 *   a row of K elements takes W = ceil(K / 64) words and the unused high bits of the last word are 0.
 * A +-1 dot product of length K is then K - 2 * popcount(a XOR b) summed over the words.
 *
 * Reading order for a student: mb_gemm_reference (gemm.c, the plain triple loop), then mb_gemm (the same
 * product, blocked: one macro-kernel loop around a micro-kernel, BLIS-style), then the micro-kernels
 * (ukernel_scalar.c first, then ukernel_avx2.c, ukernel_avx512.c).
 *
 * Shapes are checked by the caller (minibnn/xnor.py, through the Cython wrapper kernels/_xnor.pyx). The C code
 * is nevertheless safe on its own against overflow in its index arithmetic: every driver checks once, on entry,
 * that each size, stride and padding is in [0, MB_MAX_EXTENT] and that each array holds at most
 * MB_MAX_ELEMENTS elements; with those bounds no index expression can overflow an int64_t. Out of range:
 * MB_ERR_RANGE, and nothing is written.
 */
#ifndef MB_KERNELS_H
#define MB_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kernel paths; which are compiled in and which the CPU runs is answered by mb_path_supported(). */
enum { MB_PATH_SCALAR = 0, MB_PATH_AVX2 = 1, MB_PATH_AVX512 = 2, MB_PATH_NEON = 3, MB_NPATHS = 4 };

/* What the GEMM / convolution epilogue writes for each accumulator acc (an int32 +-1 dot product). */
enum {
    MB_OUT_INT32 = 0,   /* out[m, n] = acc                                                        int32   */
    MB_OUT_FLOAT32 = 1, /* out[m, n] = float(acc) * scale[n] + bias[n]   (either may be absent)   float32 */
    MB_OUT_BITS = 2     /* bit n of row m = 1 (that is -1) unless acc >= threshold[n]
                           (acc <= threshold[n] where direction[n] < 0); packed along n            uint64 */
};

/* Return codes: done; a scratch buffer could not be allocated; a size is out of the range indexed safely. */
enum { MB_OK = 0, MB_ERR_NOMEM = 1, MB_ERR_RANGE = 2 };

/* The bounds every driver checks on entry (see above). 2^31 - 1 is also minibnn._checks.MAX_EXTENT. */
#define MB_MAX_EXTENT ((int64_t)2147483647)
#define MB_MAX_ELEMENTS ((int64_t)1 << 48)

/* Element types of real (unpacked) inputs that the kernels pack themselves. */
enum { MB_DTYPE_F32 = 0, MB_DTYPE_F64 = 1, MB_DTYPE_I8 = 2 };

/* The output stage fused into the GEMM (ruy's "output pipeline"): what to write for each accumulator. */
typedef struct {
    int mode;                   /* MB_OUT_* */
    int32_t k;                  /* true length of the dot products */
    void *out;                  /* output rows: int32, float32 or uint64 words according to mode */
    int64_t ldo;                /* output row stride in elements of the output type */
    const float *scale;         /* length N or NULL */
    const float *bias;          /* length N or NULL */
    const int32_t *threshold;   /* length N (MB_OUT_BITS) */
    const int8_t *direction;    /* length N of +1/-1, or NULL for all +1 (MB_OUT_BITS) */
} mb_epilogue_t;

/* --- the machine (cpu.c) ------------------------------------------------------------------------------------ */

typedef struct {
    int popcnt, avx, avx2, avx512f, avx512bw, avx512vl, avx512vpopcntdq, neon;
    int os_ymm, os_zmm;         /* the OS saves the YMM / ZMM register state (XGETBV) */
} mb_cpu_t;

const mb_cpu_t *mb_cpu(void);       /* what the CPU offers, detected once (CPUID is slow under a hypervisor) */
int mb_path_compiled(int path);     /* the compiler could build this path's kernels */
int mb_path_supported(int path);    /* compiled and the CPU can run it */
int mb_best_path(void);

/* --- threads (cpu.c) ----------------------------------------------------------------------------------------
 * A call runs on up to mb_get_num_threads() OpenMP threads (or its own `nthreads` argument when > 0), but on
 * several only when its work is large enough to pay for waking them: MB_PARALLEL_MIN_MACS (mb_internal.h).
 * Idle threads never spin between calls: libgomp reads its wait policy when it is loaded, so minibnn puts
 * OMP_WAIT_POLICY=passive in the environment before it imports the extension; without a passive (or an
 * explicitly active) policy the kernels stay on one thread (cpu.c). */
int mb_openmp_enabled(void);
int mb_max_threads(void);           /* OpenMP's default: OMP_NUM_THREADS or every core */
void mb_set_num_threads(int n);     /* threads for every later call; 0 goes back to OpenMP's default */
int mb_get_num_threads(void);
void mb_set_parallel_min_macs(int64_t macs); /* override the crossover (benchmarks); < 0 restores the default */
int64_t mb_get_parallel_min_macs(void);
int mb_idle_threads_sleep(void);    /* 1 when the wait policy lets the kernels use threads (passive or active) */

/* --- kernels -------------------------------------------------------------------------------------------------- */

/* Pack rows of k values (row-major, contiguous) into rows of ceil(k/64) words: bit = (x < 0). */
int mb_pack_f32(int path, const float *x, int64_t rows, int64_t k, uint64_t *out, int nthreads);
int mb_pack_f64(int path, const double *x, int64_t rows, int64_t k, uint64_t *out, int nthreads);
int mb_pack_i8(int path, const int8_t *x, int64_t rows, int64_t k, uint64_t *out, int nthreads);

/* Pack as above, and tell whether each row is a scaled sign vector c * (+-1, ..., +-1): mag[r] = |x[r][0]| when
 * every |x[r][j]| equals it, NaN otherwise (a NaN anywhere in the row included). One pass over the data: the
 * check reads each row again while it is still in L1. */
int mb_pack_scaled_f32(int path, const float *x, int64_t rows, int64_t k, uint64_t *out, float *mag, int nthreads);
int mb_pack_scaled_f64(int path, const double *x, int64_t rows, int64_t k, uint64_t *out, double *mag,
                       int nthreads);

/* The binary GEMM as a plain triple loop, int32 output (m_rows, n_rows): what mb_gemm computes, for reading and
 * for testing. */
int mb_gemm_reference(const uint64_t *a, int64_t m_rows, const uint64_t *b, int64_t n_rows, int64_t w, int32_t k,
                      int32_t *out);

/* acc[m, n] = k - 2 * sum_w popcount(a[m, w] ^ b[n, w]) for a (m_rows, w) and b (n_rows, w), then the epilogue.
 * For MB_OUT_BITS the output must be zero-filled by the caller (bits are OR-ed in). */
int mb_gemm(int path, const uint64_t *a, int64_t m_rows, const uint64_t *b, int64_t n_rows, int64_t w,
            const mb_epilogue_t *epi, int nthreads);

/* The same GEMM with a given as real values (m_rows, k) of type dtype (MB_DTYPE_*), whose signs are packed on the
 * fly: each block of rows is packed into a small buffer right before the micro-kernels use it, while the next
 * block is prefetched, so reading the real values overlaps with the popcount work. Results equal
 * mb_gemm(pack(a), b) bit for bit. */
int mb_gemm_real(int path, int dtype, const void *a, int64_t m_rows, int64_t k, const uint64_t *b, int64_t n_rows,
                 const mb_epilogue_t *epi, int nthreads);

/* NHWC binary convolution. x: (batch, h, w, wc) words, weights: (o, kh, kw, wc) words, channels = true C.
 * pad_value: +1 or -1 (padding pixels are +1 or -1 in every channel) or 0 (exact zero padding, computed as
 * +1 padding minus a correction term). oh, ow must be (h + 2 ph - kh) / sh + 1 and (w + 2 pw - kw) / sw + 1.
 * The output rows are the (batch, oh, ow) pixels in order. */
int mb_conv2d(int path, const uint64_t *x, int64_t batch, int64_t h, int64_t w, int64_t wc,
              const uint64_t *weights, int64_t o, int64_t kh, int64_t kw, int64_t channels,
              int64_t sh, int64_t sw, int64_t ph, int64_t pw, int pad_value, int64_t oh, int64_t ow,
              const mb_epilogue_t *epi, int nthreads);

/* Max-pool on packed bits: AND of the window's words (max of +-1 values); padding pixels are skipped. Every
 * window must hold at least one input pixel (ph < kh, pw < kw). */
int mb_maxpool2d(const uint64_t *x, int64_t batch, int64_t h, int64_t w, int64_t wc, int64_t kh, int64_t kw,
                 int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t oh, int64_t ow, uint64_t *out,
                 int nthreads);

#ifdef __cplusplus
}
#endif
#endif
