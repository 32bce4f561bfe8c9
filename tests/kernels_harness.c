/* kernels_harness.c -- every kernel path against plain C references, without Python.
 *
 * Links the kernel sources directly (not the Cython module), so the same file runs natively and cross-compiled
 * for AArch64 under qemu-aarch64, which is how the NEON path is exercised on an x86 machine
 * (tests/test_kernels_native.py builds and runs it both ways). For each path that mb_path_supported() accepts,
 * on fixed edge shapes and random ones (odd sizes, K = 1, 63, 64, 65, ..., K past the 31-word byte-count
 * rounds of the AVX2 / NEON kernels, 1-row / 1-column, output row strides wider than the rows), it checks:
 *   mb_pack_f32 / f64 / i8 and mb_pack_scaled_f32 / f64 (with -0.0, NaN, infinities, subnormals);
 *   mb_gemm in each epilogue mode (int32; float32 with and without scale / bias; bits with thresholds and
 *   directions), mb_gemm_real for each dtype, mb_conv2d (padding 0 / +1 / -1, strides), mb_maxpool2d;
 *   mb_gemm_reference itself; that nothing is written outside the output; a few MB_ERR_RANGE rejections.
 * References are written on unpacked +-1 values (int8), independently of the packed format, except the packing
 * rule itself (bit = x < 0). Float outputs must match bit for bit, so build with -ffp-contract=off as setup.py.
 *
 * Usage: kernels_harness [rounds [seed]]   (rounds of random shapes, default 40). Prints one line per path and
 * kind of check, and exits 1 on any mismatch (the first ones are printed). With OpenMP, half the shapes run on
 * 2 threads (the crossover is set to 0 so they really do). */
#include "../kernels/mb_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- bookkeeping ------------------------------------------------------------------------------------------ */

enum { K_PACK, K_SCALED, K_REF, K_GEMM, K_REAL, K_CONV, K_POOL, K_RANGE, NKINDS };
static const char *kind_name[NKINDS] = {"pack", "pack_scaled", "gemm_reference", "gemm", "gemm_real",
                                        "conv2d", "maxpool2d", "range_errors"};
static const char *path_name[MB_NPATHS] = {"scalar", "avx2", "avx512", "neon"};
static long n_checks[MB_NPATHS + 1][NKINDS], n_fails[MB_NPATHS + 1][NKINDS]; /* row MB_NPATHS: no path */
static int cur_path;

static void check(int kind, int ok, const char *what)
{
    n_checks[cur_path][kind]++;
    if (ok) return;
    n_fails[cur_path][kind]++;
    if (n_fails[cur_path][kind] <= 5)
        printf("FAIL %s %s: %s\n", cur_path < MB_NPATHS ? path_name[cur_path] : "-", kind_name[kind], what);
}

/* --- random numbers (xorshift64*) ------------------------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1DULL;
}
/* Every path of a case must see the same data: the loops over paths restart the generator from the case's state,
 * so the cases (and their numbers) are also the same on every machine, whatever paths it has. */
#define FOR_EACH_PATH(p, paths, npaths)                                                                           \
    for (p = 0, saved_rng = rng; p < (npaths) && (rng = saved_rng, cur_path = (paths)[p], 1); p++)
static uint64_t saved_rng;
static int64_t rnd_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }
static int64_t pick(const int64_t *v, int n) { return v[rnd() % (uint64_t)n]; }
static int8_t rnd_pm1(void) { return (rnd() & 1) ? 1 : -1; }

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL) {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

/* An input array that ends right before an inaccessible page, so that a kernel reading past its end crashes
 * (under qemu too, where no sanitizer runs). Freed with free_fenced. Plain malloc where there is no mmap. */
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
static void *fenced(size_t bytes)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), span = (bytes + page - 1) / page * page + page;
    char *base = (char *)mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED || mprotect(base + span - page, page, PROT_NONE) != 0) {
        printf("mmap failed\n");
        exit(2);
    }
    return base + span - page - bytes;
}
static void free_fenced(void *p, size_t bytes)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), span = (bytes + page - 1) / page * page + page;
    if (p != NULL) munmap((char *)p + bytes + page - span, span);
}
#else
static void *fenced(size_t bytes) { return xmalloc(bytes); }
static void free_fenced(void *p, size_t bytes) { (void)bytes, free(p); }
#endif

/* --- plain references ------------------------------------------------------------------------------------- */

/* the packing rule: bit j of word w = (x[64 w + j] < 0), unused high bits 0 */
#define REF_PACK(NAME, T)                                                                                         \
    static void NAME(const T *x, int64_t rows, int64_t k, uint64_t *out)                                         \
    {                                                                                                             \
        const int64_t nw = (k + 63) / 64;                                                                         \
        int64_t r, j;                                                                                             \
        memset(out, 0, (size_t)(rows * nw) * sizeof(uint64_t));                                                   \
        for (r = 0; r < rows; r++)                                                                                \
            for (j = 0; j < k; j++)                                                                               \
                if (x[r * k + j] < 0) out[r * nw + j / 64] |= (uint64_t)1 << (j % 64);                            \
    }
REF_PACK(ref_pack_f32, float)
REF_PACK(ref_pack_f64, double)
REF_PACK(ref_pack_i8, int8_t)

/* dot products of +-1 rows: acc[m * n_rows + n] = sum_j a[m][j] b[n][j] */
static void ref_dot(const int8_t *a, int64_t m_rows, const int8_t *b, int64_t n_rows, int64_t k, int32_t *acc)
{
    int64_t m, n, j;
    for (m = 0; m < m_rows; m++)
        for (n = 0; n < n_rows; n++) {
            int32_t s = 0;
            for (j = 0; j < k; j++) s += a[m * k + j] * b[n * k + j];
            acc[m * n_rows + n] = s;
        }
}

/* --- the epilogue: outputs of each mode from the accumulators, and the check ------------------------------- */

typedef struct {
    mb_epilogue_t e;
    int64_t rows, cols, size; /* size: output elements allocated, guard included */
    char desc[96];
} out_case_t;

#define GUARD 16                     /* elements past the last row that must stay untouched */
static const uint32_t SENTINEL = 0xA5A5A5A5u; /* int32 / float outputs are prefilled with it */

/* a random epilogue for rows x cols accumulators of length k: mode, row stride, scale / bias / direction */
static void make_out(out_case_t *c, int mode, int64_t rows, int64_t cols, int32_t k)
{
    const int64_t need = (mode == MB_OUT_BITS) ? (cols + 63) / 64 : cols;
    int64_t j;
    memset(c, 0, sizeof(*c));
    c->rows = rows, c->cols = cols;
    c->e.mode = mode;
    c->e.k = k;
    c->e.ldo = need + ((rnd() & 1) ? rnd_in(1, 3) : 0);
    c->size = rows * c->e.ldo + GUARD;
    if (mode == MB_OUT_BITS) {
        int32_t *th = (int32_t *)fenced((size_t)cols * sizeof(int32_t));
        int8_t *d = NULL;
        uint64_t *o = (uint64_t *)xmalloc((size_t)c->size * sizeof(uint64_t));
        for (j = 0; j < cols; j++) th[j] = (int32_t)rnd_in(-(int64_t)k - 2, (int64_t)k + 2);
        if (rnd() & 1) {
            d = (int8_t *)fenced((size_t)cols);
            for (j = 0; j < cols; j++) d[j] = rnd_pm1();
        }
        memset(o, 0, (size_t)c->size * sizeof(uint64_t)); /* the caller zero-fills (bits are OR-ed in) */
        c->e.threshold = th, c->e.direction = d, c->e.out = o;
        snprintf(c->desc, sizeof c->desc, "bits%s ldo=%lld", d ? " +direction" : "", (long long)c->e.ldo);
    } else {
        uint32_t *o = (uint32_t *)xmalloc((size_t)c->size * sizeof(uint32_t));
        for (j = 0; j < c->size; j++) o[j] = SENTINEL;
        c->e.out = o;
        if (mode == MB_OUT_FLOAT32) {
            const int which = (int)(rnd() % 4);
            if (which & 1) {
                float *s = (float *)fenced((size_t)cols * sizeof(float));
                for (j = 0; j < cols; j++) s[j] = (float)((double)rnd_in(-1000000, 1000000) / 65536.0 / 7.0);
                c->e.scale = s;
            }
            if (which & 2) {
                float *b = (float *)fenced((size_t)cols * sizeof(float));
                for (j = 0; j < cols; j++) b[j] = (float)((double)rnd_in(-1000000, 1000000) / 3.0 / 1024.0);
                c->e.bias = b;
            }
        }
        snprintf(c->desc, sizeof c->desc, "%s%s%s ldo=%lld", mode == MB_OUT_INT32 ? "int32" : "float32",
                 c->e.scale ? " +scale" : "", c->e.bias ? " +bias" : "", (long long)c->e.ldo);
    }
}

static void free_out(out_case_t *c)
{
    const size_t n = (size_t)c->cols;
    free(c->e.out);
    free_fenced((void *)c->e.scale, 4 * n), free_fenced((void *)c->e.bias, 4 * n);
    free_fenced((void *)c->e.threshold, 4 * n), free_fenced((void *)c->e.direction, n);
}

/* the output of c equals the epilogue applied to acc (rows x cols, row-major), and nothing else was written */
static int out_matches(const out_case_t *c, const int32_t *acc)
{
    const mb_epilogue_t *e = &c->e;
    int64_t i, j;
    for (i = 0; i < c->rows; i++) {
        if (e->mode == MB_OUT_BITS) {
            const uint64_t *o = (const uint64_t *)e->out + i * e->ldo;
            for (j = 0; j < e->ldo; j++) {
                uint64_t want = 0;
                int64_t q;
                for (q = 64 * j; q < 64 * j + 64 && q < c->cols; q++) {
                    const int32_t t = acc[i * c->cols + q], th = e->threshold[q];
                    const int neg = (e->direction && e->direction[q] < 0) ? t > th : t < th;
                    want |= (uint64_t)neg << (q % 64);
                }
                if (o[j] != want) return 0;
            }
        } else {
            const uint32_t *o = (const uint32_t *)e->out + i * e->ldo;
            for (j = 0; j < e->ldo; j++) {
                uint32_t want = SENTINEL;
                if (j < c->cols && e->mode == MB_OUT_INT32) {
                    want = (uint32_t)acc[i * c->cols + j];
                } else if (j < c->cols) { /* NumPy's float32 acc * scale + bias: two roundings */
                    float f = (float)acc[i * c->cols + j];
                    if (e->scale) f = f * e->scale[j];
                    if (e->bias) f = f + e->bias[j];
                    memcpy(&want, &f, sizeof want);
                }
                if (o[j] != want) return 0;
            }
        }
    }
    for (j = c->rows * e->ldo; j < c->size; j++) /* the guard */
        if (e->mode == MB_OUT_BITS ? ((const uint64_t *)e->out)[j] != 0 : ((const uint32_t *)e->out)[j] != SENTINEL)
            return 0;
    return 1;
}

/* --- packing ---------------------------------------------------------------------------------------------- */

/* a value for the packers: ordinary numbers, both zeros, NaNs, infinities, subnormals */
static double special_value(void)
{
    switch (rnd() % 16) {
    case 0: return 0.0;
    case 1: return -0.0;
    case 2: return NAN;
    case 3: return -NAN;
    case 4: return INFINITY;
    case 5: return -INFINITY;
    case 6: return 1e-310;  /* subnormal as double, 0 as float */
    case 7: return -1e-310;
    case 8: return 1e-40;   /* subnormal as float */
    case 9: return -1e-40;
    default: return (double)rnd_in(-1000000, 1000000) / 1000.0;
    }
}

/* |x| equals c in every element (NaN never equal), the mag value the scaled packers report */
static int same_mag(double got, double want) { return (isnan(got) && isnan(want)) || got == want; }

static void test_pack(int path, int64_t rows, int64_t k, int nthreads)
{
    const int64_t nw = (k + 63) / 64, n = rows * k;
    float *xf = (float *)fenced((size_t)n * sizeof(float));
    double *xd = (double *)fenced((size_t)n * sizeof(double));
    int8_t *xi = (int8_t *)fenced((size_t)n);
    uint64_t *want = (uint64_t *)xmalloc((size_t)(rows * nw + 1) * sizeof(uint64_t));
    uint64_t *got = (uint64_t *)xmalloc((size_t)(rows * nw + 1) * sizeof(uint64_t));
    float *magf = (float *)xmalloc((size_t)(rows + 1) * sizeof(float));
    double *magd = (double *)xmalloc((size_t)(rows + 1) * sizeof(double));
    const uint64_t guard = 0x0123456789ABCDEFULL;
    char what[128];
    int64_t r, j;
    for (r = 0; r < rows; r++) { /* every other row a scaled sign vector c * (+-1, ...), sometimes spoiled */
        const int scaled = (int)(rnd() & 1);
        const double c = special_value();
        const int64_t spoil = (k > 0 && rnd() % 3 == 0) ? rnd_in(0, k - 1) : -1;
        for (j = 0; j < k; j++) {
            double v = scaled ? c * rnd_pm1() : special_value();
            if (j == spoil) v = special_value();
            xd[r * k + j] = v;
            xf[r * k + j] = (float)v;
            xi[r * k + j] = (int8_t)rnd_in(-128, 127);
        }
    }
    snprintf(what, sizeof what, "rows=%lld k=%lld threads=%d", (long long)rows, (long long)k, nthreads);

    ref_pack_f32(xf, rows, k, want);
    got[rows * nw] = guard;
    check(K_PACK, mb_pack_f32(path, xf, rows, k, got, nthreads) == MB_OK &&
                      !memcmp(got, want, (size_t)(rows * nw) * 8) && got[rows * nw] == guard, what);
    if (k >= 1) { /* mb_pack_scaled_* need k >= 1 */
        int ok = mb_pack_scaled_f32(path, xf, rows, k, got, magf, nthreads) == MB_OK &&
                 !memcmp(got, want, (size_t)(rows * nw) * 8) && got[rows * nw] == guard;
        for (r = 0; ok && r < rows; r++) {
            const float c = fabsf(xf[r * k]);
            int all = 1;
            for (j = 0; j < k; j++) all &= fabsf(xf[r * k + j]) == c;
            ok = same_mag(magf[r], all ? c : NAN);
        }
        check(K_SCALED, ok, what);
    }
    ref_pack_f64(xd, rows, k, want);
    check(K_PACK, mb_pack_f64(path, xd, rows, k, got, nthreads) == MB_OK &&
                      !memcmp(got, want, (size_t)(rows * nw) * 8) && got[rows * nw] == guard, what);
    if (k >= 1) {
        int ok = mb_pack_scaled_f64(path, xd, rows, k, got, magd, nthreads) == MB_OK &&
                 !memcmp(got, want, (size_t)(rows * nw) * 8) && got[rows * nw] == guard;
        for (r = 0; ok && r < rows; r++) {
            const double c = fabs(xd[r * k]);
            int all = 1;
            for (j = 0; j < k; j++) all &= fabs(xd[r * k + j]) == c;
            ok = same_mag(magd[r], all ? c : NAN);
        }
        check(K_SCALED, ok, what);
    }
    ref_pack_i8(xi, rows, k, want);
    check(K_PACK, mb_pack_i8(path, xi, rows, k, got, nthreads) == MB_OK &&
                      !memcmp(got, want, (size_t)(rows * nw) * 8) && got[rows * nw] == guard, what);
    free_fenced(xf, (size_t)n * 4), free_fenced(xd, (size_t)n * 8), free_fenced(xi, (size_t)n);
    free(want), free(got), free(magf), free(magd);
}

/* --- GEMM ------------------------------------------------------------------------------------------------- */

/* a real value whose sign bit (x < 0) is the given +-1 value's: -1 -> negative, +1 -> positive, 0, -0.0 or NaN */
static double real_of(int8_t v)
{
    const double mag = (double)rnd_in(1, 1000000) / 1000.0;
    if (v < 0) return (rnd() % 8 == 0) ? -INFINITY : -mag;
    switch (rnd() % 8) {
    case 0: return 0.0;
    case 1: return -0.0;
    case 2: return NAN;
    default: return mag;
    }
}

/* rows of +-1, a quarter of them constant (all +1 or all -1): a constant row of a against the opposite one of b
 * differs in every bit, so the sums reach -k and the SIMD kernels' byte counters their maximum */
static void random_rows(int8_t *x, int64_t rows, int64_t k)
{
    int64_t r, j;
    for (r = 0; r < rows; r++) {
        const int8_t c = (rnd() % 4 == 0) ? rnd_pm1() : 0;
        for (j = 0; j < k; j++) x[r * k + j] = c ? c : rnd_pm1();
    }
}

/* The +-1 operands of one GEMM shape, packed, with their dot products. */
typedef struct {
    int64_t m, n, k, w;
    int8_t *a, *b;
    uint64_t *pa, *pb;
    int32_t *acc;
} gemm_case_t;

static void make_gemm(gemm_case_t *g, int64_t m, int64_t n, int64_t k)
{
    g->m = m, g->n = n, g->k = k, g->w = (k + 63) / 64;
    g->a = (int8_t *)xmalloc((size_t)(m * k));
    g->b = (int8_t *)xmalloc((size_t)(n * k));
    g->pa = (uint64_t *)fenced((size_t)(m * g->w) * 8);
    g->pb = (uint64_t *)fenced((size_t)(n * g->w) * 8);
    g->acc = (int32_t *)xmalloc((size_t)(m * n) * 4);
    random_rows(g->a, m, k);
    random_rows(g->b, n, k);
    ref_pack_i8(g->a, m, k, g->pa);
    ref_pack_i8(g->b, n, k, g->pb);
    ref_dot(g->a, m, g->b, n, k, g->acc);
}

static void free_gemm(gemm_case_t *g)
{
    free(g->a), free(g->b), free(g->acc);
    free_fenced(g->pa, (size_t)(g->m * g->w) * 8), free_fenced(g->pb, (size_t)(g->n * g->w) * 8);
}

static void test_gemm_reference(const gemm_case_t *g)
{
    int32_t *out = (int32_t *)xmalloc((size_t)(g->m * g->n) * 4);
    char what[96];
    snprintf(what, sizeof what, "m=%lld n=%lld k=%lld", (long long)g->m, (long long)g->n, (long long)g->k);
    cur_path = MB_NPATHS;
    check(K_REF, mb_gemm_reference(g->pa, g->m, g->pb, g->n, g->w, (int32_t)g->k, out) == MB_OK &&
                     !memcmp(out, g->acc, (size_t)(g->m * g->n) * 4), what);
    free(out);
}

static void test_gemm(int path, const gemm_case_t *g, int nthreads)
{
    int mode, dtype;
    char what[256];
    for (mode = MB_OUT_INT32; mode <= MB_OUT_BITS; mode++) {
        out_case_t c;
        int rc;
        make_out(&c, mode, g->m, g->n, (int32_t)g->k);
        rc = mb_gemm(path, g->pa, g->m, g->pb, g->n, g->w, &c.e, nthreads);
        snprintf(what, sizeof what, "m=%lld n=%lld k=%lld %s threads=%d rc=%d", (long long)g->m, (long long)g->n,
                 (long long)g->k, c.desc, nthreads, rc);
        check(K_GEMM, rc == MB_OK && out_matches(&c, g->acc), what);
        free_out(&c);
    }
    for (dtype = MB_DTYPE_F32; dtype <= MB_DTYPE_I8; dtype++) { /* a given as real values */
        static const char *dname[3] = {"f32", "f64", "i8"};
        static const size_t es[3] = {4, 8, 1};
        char *x = (char *)fenced((size_t)(g->m * g->k) * es[dtype]);
        int64_t j;
        out_case_t c;
        int rc;
        for (j = 0; j < g->m * g->k; j++) {
            const double v = real_of(g->a[j]);
            if (dtype == MB_DTYPE_F32) ((float *)x)[j] = (float)v;
            else if (dtype == MB_DTYPE_F64) ((double *)x)[j] = v;
            else ((int8_t *)x)[j] = (int8_t)(g->a[j] < 0 ? rnd_in(-128, -1) : rnd_in(0, 127));
        }
        make_out(&c, (int)(rnd() % 3), g->m, g->n, (int32_t)g->k);
        rc = mb_gemm_real(path, dtype, x, g->m, g->k, g->pb, g->n, &c.e, nthreads);
        snprintf(what, sizeof what, "%s m=%lld n=%lld k=%lld %s threads=%d rc=%d", dname[dtype], (long long)g->m,
                 (long long)g->n, (long long)g->k, c.desc, nthreads, rc);
        check(K_REAL, rc == MB_OK && out_matches(&c, g->acc), what);
        free_out(&c);
        free_fenced(x, (size_t)(g->m * g->k) * es[dtype]);
    }
}

/* --- convolution and max-pool ----------------------------------------------------------------------------- */

typedef struct {
    int64_t batch, h, w, ch, o, kh, kw, sh, sw, ph, pw, oh, ow, wc;
    int pad_value;
} conv_shape_t;

/* x (batch, h, w, ch) and weights (o, kh, kw, ch) of +-1: acc (batch * oh * ow, o), padding pixels = pad_value */
static void ref_conv(const conv_shape_t *s, const int8_t *x, const int8_t *wt, int32_t *acc)
{
    int64_t b, y, xo, q, i, j, c;
    for (b = 0; b < s->batch; b++)
        for (y = 0; y < s->oh; y++)
            for (xo = 0; xo < s->ow; xo++)
                for (q = 0; q < s->o; q++) {
                    int32_t sum = 0;
                    for (i = 0; i < s->kh; i++)
                        for (j = 0; j < s->kw; j++) {
                            const int64_t iy = y * s->sh - s->ph + i, ix = xo * s->sw - s->pw + j;
                            const int inside = iy >= 0 && iy < s->h && ix >= 0 && ix < s->w;
                            for (c = 0; c < s->ch; c++) {
                                const int v = inside ? x[((b * s->h + iy) * s->w + ix) * s->ch + c] : s->pad_value;
                                sum += v * wt[((q * s->kh + i) * s->kw + j) * s->ch + c];
                            }
                        }
                    acc[((b * s->oh + y) * s->ow + xo) * s->o + q] = sum;
                }
}

static void random_conv_shape(conv_shape_t *s)
{
    static const int64_t chans[] = {1, 2, 3, 17, 63, 64, 65, 130};
    static const int64_t outs[] = {1, 3, 8, 9, 17, 32, 33, 70};
    s->batch = rnd_in(1, 3), s->h = rnd_in(1, 9), s->w = rnd_in(1, 9);
    s->ch = pick(chans, 8), s->o = pick(outs, 8);
    s->kh = rnd_in(1, 4), s->kw = rnd_in(1, 4), s->sh = rnd_in(1, 3), s->sw = rnd_in(1, 3);
    s->ph = rnd_in(0, 2), s->pw = rnd_in(0, 2);
    if (s->h + 2 * s->ph < s->kh) s->ph = (s->kh - s->h + 1) / 2;
    if (s->w + 2 * s->pw < s->kw) s->pw = (s->kw - s->w + 1) / 2;
    s->pad_value = (int)rnd_in(-1, 1);
    s->oh = (s->h + 2 * s->ph - s->kh) / s->sh + 1, s->ow = (s->w + 2 * s->pw - s->kw) / s->sw + 1;
    s->wc = (s->ch + 63) / 64;
}

static void test_conv(int path, const conv_shape_t *s, const int8_t *x, const uint64_t *px, const int8_t *wt,
                      const uint64_t *pw_, const int32_t *acc, int nthreads)
{
    const int64_t rows = s->batch * s->oh * s->ow;
    int mode;
    char what[256];
    (void)x, (void)wt;
    for (mode = MB_OUT_INT32; mode <= MB_OUT_BITS; mode++) {
        out_case_t c;
        int rc;
        make_out(&c, mode, rows, s->o, (int32_t)(s->kh * s->kw * s->ch));
        rc = mb_conv2d(path, px, s->batch, s->h, s->w, s->wc, pw_, s->o, s->kh, s->kw, s->ch, s->sh, s->sw, s->ph,
                       s->pw, s->pad_value, s->oh, s->ow, &c.e, nthreads);
        snprintf(what, sizeof what,
                 "batch=%lld h=%lld w=%lld c=%lld o=%lld k=%lldx%lld stride=%lldx%lld pad=%lldx%lld value=%d %s "
                 "threads=%d rc=%d",
                 (long long)s->batch, (long long)s->h, (long long)s->w, (long long)s->ch, (long long)s->o,
                 (long long)s->kh, (long long)s->kw, (long long)s->sh, (long long)s->sw, (long long)s->ph,
                 (long long)s->pw, s->pad_value, c.desc, nthreads, rc);
        check(K_CONV, rc == MB_OK && out_matches(&c, acc), what);
        free_out(&c);
    }
}

/* max over the window's real pixels of +-1 values: -1 (bit set) only when every one is -1 */
static void test_maxpool(const conv_shape_t *s, const int8_t *x, const uint64_t *px, int nthreads)
{
    const int64_t n_out = s->batch * s->oh * s->ow * s->wc;
    uint64_t *got = (uint64_t *)xmalloc((size_t)(n_out + 1) * 8);
    uint64_t *want = (uint64_t *)xmalloc((size_t)(n_out + 1) * 8);
    int64_t b, y, xo, c, i, j;
    char what[160];
    int rc;
    memset(want, 0, (size_t)(n_out + 1) * 8);
    for (b = 0; b < s->batch; b++)
        for (y = 0; y < s->oh; y++)
            for (xo = 0; xo < s->ow; xo++)
                for (c = 0; c < s->ch; c++) {
                    int mx = -1;
                    for (i = 0; i < s->kh; i++)
                        for (j = 0; j < s->kw; j++) {
                            const int64_t iy = y * s->sh - s->ph + i, ix = xo * s->sw - s->pw + j;
                            if (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w &&
                                x[((b * s->h + iy) * s->w + ix) * s->ch + c] > 0)
                                mx = 1;
                        }
                    if (mx < 0) want[((b * s->oh + y) * s->ow + xo) * s->wc + c / 64] |= (uint64_t)1 << (c % 64);
                }
    got[n_out] = 0x0123456789ABCDEFULL, want[n_out] = got[n_out];
    rc = mb_maxpool2d(px, s->batch, s->h, s->w, s->wc, s->kh, s->kw, s->sh, s->sw, s->ph, s->pw, s->oh, s->ow, got,
                      nthreads);
    snprintf(what, sizeof what, "batch=%lld h=%lld w=%lld c=%lld k=%lldx%lld stride=%lldx%lld pad=%lldx%lld rc=%d",
             (long long)s->batch, (long long)s->h, (long long)s->w, (long long)s->ch, (long long)s->kh,
             (long long)s->kw, (long long)s->sh, (long long)s->sw, (long long)s->ph, (long long)s->pw, rc);
    cur_path = MB_NPATHS;
    check(K_POOL, rc == MB_OK && !memcmp(got, want, (size_t)(n_out + 1) * 8), what);
    free(got), free(want);
}

/* One convolution shape on every path, and its max-pool (ph < kh, pw < kw). */
static void conv_case(const conv_shape_t *s, const int *paths, int npaths, int nthreads)
{
    const int64_t npix = s->batch * s->h * s->w, nwt = s->o * s->kh * s->kw;
    int8_t *x = (int8_t *)xmalloc((size_t)(npix * s->ch));
    int8_t *wt = (int8_t *)xmalloc((size_t)(nwt * s->ch));
    uint64_t *px = (uint64_t *)fenced((size_t)(npix * s->wc) * 8);
    uint64_t *pwt = (uint64_t *)fenced((size_t)(nwt * s->wc) * 8);
    int32_t *acc = (int32_t *)xmalloc((size_t)(s->batch * s->oh * s->ow * s->o) * 4);
    int64_t j;
    int p;
    for (j = 0; j < npix * s->ch; j++) x[j] = (rnd() % 4 == 0) ? 1 : -1; /* mostly -1: max-pools see both */
    for (j = 0; j < nwt * s->ch; j++) wt[j] = rnd_pm1();
    ref_pack_i8(x, npix, s->ch, px);
    ref_pack_i8(wt, nwt, s->ch, pwt);
    ref_conv(s, x, wt, acc);
    FOR_EACH_PATH(p, paths, npaths) test_conv(paths[p], s, x, px, wt, pwt, acc, nthreads);
    if (s->ph < s->kh && s->pw < s->kw) test_maxpool(s, x, px, nthreads);
    free(x), free(wt), free(acc);
    free_fenced(px, (size_t)(npix * s->wc) * 8), free_fenced(pwt, (size_t)(nwt * s->wc) * 8);
}

/* --- out-of-range arguments are refused and nothing is written -------------------------------------------- */

static void test_range_errors(int path)
{
    uint64_t a[4] = {0}, b[4] = {0}, o[4] = {0};
    float f[4] = {0};
    int32_t out[4] = {7, 7, 7, 7}, th[4] = {0};
    mb_epilogue_t e;
    memset(&e, 0, sizeof e);
    e.mode = MB_OUT_INT32, e.k = 64, e.out = out, e.ldo = 2, e.threshold = th;
    check(K_RANGE, mb_gemm(path, a, -1, b, 2, 1, &e, 1) == MB_ERR_RANGE, "gemm m=-1");
    check(K_RANGE, mb_gemm(path, a, 2, b, 2, 2, &e, 1) == MB_ERR_RANGE, "gemm w != ceil(k / 64)");
    e.ldo = 1;
    check(K_RANGE, mb_gemm(path, a, 2, b, 2, 1, &e, 1) == MB_ERR_RANGE, "gemm ldo < n");
    e.ldo = 2, e.k = 0;
    check(K_RANGE, mb_gemm(path, a, 2, b, 2, 0, &e, 1) == MB_ERR_RANGE, "gemm k=0");
    e.k = 4;
    check(K_RANGE, mb_gemm_real(path, 3, f, 2, 4, b, 2, &e, 1) == MB_ERR_RANGE, "gemm_real bad dtype");
    check(K_RANGE, mb_gemm_real(path, MB_DTYPE_F32, f, 2, 5, b, 2, &e, 1) == MB_ERR_RANGE, "gemm_real k != epi.k");
    check(K_RANGE,
          mb_conv2d(path, a, 1, 1, 1, 1, b, 1, 1, 1, 1, 1, 1, 0, 0, 2, 1, 1, &e, 1) == MB_ERR_RANGE,
          "conv2d pad_value=2");
    check(K_RANGE, mb_pack_f32(path, f, -1, 4, o, 1) == MB_ERR_RANGE, "pack rows=-1");
    check(K_RANGE, mb_pack_scaled_f32(path, f, 1, 0, o, f, 1) == MB_ERR_RANGE, "pack_scaled k=0");
    check(K_RANGE, out[0] == 7 && out[1] == 7 && out[2] == 7 && out[3] == 7, "an output written on error");
}

/* --- main ------------------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static const int64_t ks[] = {1, 2, 31, 63, 64, 65, 127, 128, 129, 200, 576, 1984, 1985, 2048, 4033};
    static const int64_t ms[] = {1, 2, 3, 4, 5, 6, 7, 13, 16, 17, 33};
    static const int64_t ns[] = {1, 2, 7, 8, 9, 31, 32, 33, 63, 64, 65, 130};
    const int rounds = argc > 1 ? atoi(argv[1]) : 40;
    int paths[MB_NPATHS], npaths = 0, p, i, kind;
    long total_fails = 0;
    setvbuf(stdout, NULL, _IOLBF, 0); /* what was printed survives a crash */
    if (argc > 2) rng ^= (uint64_t)strtoull(argv[2], NULL, 10) * 0x9E3779B97F4A7C15ULL;
    for (p = 0; p < MB_NPATHS; p++)
        if (mb_path_supported(p)) paths[npaths++] = p;
    if (mb_openmp_enabled()) mb_set_parallel_min_macs(0); /* 2-thread runs really use 2 threads */
    printf("kernels harness: %d rounds, OpenMP %s, paths:", rounds,
           !mb_openmp_enabled()      ? "off"
           : mb_idle_threads_sleep() ? "on"
                                     : "on (OMP_WAIT_POLICY is not passive: 1 thread)");
    for (p = 0; p < npaths; p++) printf(" %s", path_name[paths[p]]);
    printf("\n");

    FOR_EACH_PATH(p, paths, npaths) test_range_errors(paths[p]);

    /* packing: every K edge, 1 row and several; one case above the packers' thread bar (1 M elements) */
    for (i = 0; i < (int)(sizeof ks / sizeof ks[0]) + rounds; i++) {
        const int64_t k = i < (int)(sizeof ks / sizeof ks[0]) ? ks[i] : rnd_in(0, 300);
        const int64_t rows = rnd_in(1, 9);
        const int nthreads = (mb_openmp_enabled() && (i & 1)) ? 2 : 1;
        FOR_EACH_PATH(p, paths, npaths) test_pack(paths[p], rows, k, nthreads);
    }
    FOR_EACH_PATH(p, paths, npaths) test_pack(paths[p], 1040, 1030, 2);

    /* GEMM: the edge K values (1-row and 1-column included), then random shapes, then two larger ones: K past
     * two byte-count rounds, and M past one of mb_gemm's 256 KB blocks of rows (mb_gemm_real's blocks of 96 KB
     * are passed by many shapes) */
    for (i = 0; i < (int)(sizeof ks / sizeof ks[0]) * 2 + rounds + 2; i++) {
        const int nedge = (int)(sizeof ks / sizeof ks[0]);
        int64_t m, n, k;
        gemm_case_t g;
        if (i < 2 * nedge) {
            k = ks[i % nedge];
            m = (i < nedge) ? 1 : pick(ms, 11);
            n = (i < nedge) ? pick(ns, 12) : 1;
            if (i % 3 == 0) m = pick(ms, 11), n = pick(ns, 12);
        } else if (i < 2 * nedge + rounds) {
            k = (rnd() & 1) ? pick(ks, nedge) : rnd_in(1, 700);
            m = (rnd() & 1) ? pick(ms, 11) : rnd_in(1, 70);
            n = (rnd() & 1) ? pick(ns, 12) : rnd_in(1, 140);
        } else if (i == 2 * nedge + rounds) {
            m = 300, n = 150, k = 4500; /* 71 words: 2 full byte-count rounds and a partial one */
        } else {
            m = 1200, n = 20, k = 1800; /* 29 words a row: 1129 rows a block */
        }
        make_gemm(&g, m, n, k);
        test_gemm_reference(&g);
        FOR_EACH_PATH(p, paths, npaths) test_gemm(paths[p], &g, (mb_openmp_enabled() && (i & 1)) ? 2 : 1);
        free_gemm(&g);
    }

    /* convolutions and max-pools: fixed corner cases, then random shapes */
    {
        static const conv_shape_t fixed[] = {
            /* batch h w ch o kh kw sh sw ph pw (oh ow wc: computed) pad_value */
            {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0},  {1, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0},
            {1, 1, 1, 65, 9, 3, 3, 1, 1, 1, 1, 0, 0, 0, -1}, {2, 5, 7, 64, 33, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0},
            {1, 8, 8, 130, 17, 3, 3, 1, 1, 1, 1, 0, 0, 0, 1}, {1, 6, 9, 3, 70, 5, 5, 1, 2, 2, 2, 0, 0, 0, 0},
            {2, 9, 9, 63, 8, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0},  {1, 4, 4, 1, 1, 4, 4, 1, 1, 3, 3, 0, 0, 0, -1},
            {3, 12, 12, 16, 40, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0},
        };
        const int nfixed = (int)(sizeof fixed / sizeof fixed[0]);
        for (i = 0; i < nfixed + rounds; i++) {
            conv_shape_t s;
            if (i < nfixed) {
                s = fixed[i];
                s.oh = (s.h + 2 * s.ph - s.kh) / s.sh + 1, s.ow = (s.w + 2 * s.pw - s.kw) / s.sw + 1;
                s.wc = (s.ch + 63) / 64;
            } else {
                random_conv_shape(&s);
            }
            conv_case(&s, paths, npaths, (mb_openmp_enabled() && (i & 1)) ? 2 : 1);
        }
    }

    printf("%-8s %-15s %8s %6s\n", "path", "check", "cases", "fails");
    for (p = 0; p <= MB_NPATHS; p++)
        for (kind = 0; kind < NKINDS; kind++) {
            if (n_checks[p][kind] == 0) continue;
            printf("%-8s %-15s %8ld %6ld\n", p < MB_NPATHS ? path_name[p] : "(any)", kind_name[kind],
                   n_checks[p][kind], n_fails[p][kind]);
            total_fails += n_fails[p][kind];
        }
    printf("%s: %ld mismatches\n", total_fails ? "FAILED" : "OK", total_fails);
    return total_fails ? 1 : 0;
}
