/* mb_epilogue.h -- the output transforms, in plain C. Each micro-kernel source includes this file after
 * defining MB_EPI_ATTR (its ISA target), so the compiler vectorises these loops for that ISA.
 *
 * tile: mr rows of the accumulators acc = k - 2 * popcount (row stride MB_TILE_COLS), for output rows m..m+mr-1
 * and columns n..n+nvalid-1. corr (may be NULL, and corr[i] may be NULL) holds per-row corrections that are
 * subtracted first (exact zero padding of convolutions).
 *
 * Floating-point results must equal NumPy's float32 `acc * scale + bias` bit for bit: two roundings, no FMA
 * (setup.py compiles with -ffp-contract=off). */
#ifndef MB_EPI_ATTR
#error "define MB_EPI_ATTR before including mb_epilogue.h"
#endif

static MB_EPI_ATTR void mb_tile_epilogue(int32_t *tile, int mr, int nvalid, int64_t m, int64_t n,
                                         const mb_epilogue_t *e, const int32_t *const *corr)
{
    int i, j;
    for (i = 0; i < mr; i++) {
        int32_t *t = tile + (size_t)i * MB_TILE_COLS;
        if (corr != NULL && corr[i] != NULL) {
            const int32_t *c = corr[i] + n;
            for (j = 0; j < nvalid; j++) t[j] -= c[j];
        }
        if (e->mode == MB_OUT_INT32) {
            int32_t *o = (int32_t *)e->out + (m + i) * e->ldo + n;
            for (j = 0; j < nvalid; j++) o[j] = t[j];
        } else if (e->mode == MB_OUT_FLOAT32) {
            float *o = (float *)e->out + (m + i) * e->ldo + n;
            const float *s = e->scale ? e->scale + n : NULL;
            const float *b = e->bias ? e->bias + n : NULL;
            if (s && b) {
                for (j = 0; j < nvalid; j++) { float p = (float)t[j] * s[j]; o[j] = p + b[j]; }
            } else if (s) {
                for (j = 0; j < nvalid; j++) o[j] = (float)t[j] * s[j];
            } else if (b) {
                for (j = 0; j < nvalid; j++) o[j] = (float)t[j] + b[j];
            } else {
                for (j = 0; j < nvalid; j++) o[j] = (float)t[j];
            }
        } else { /* MB_OUT_BITS: a set bit is -1, emitted when acc is on the wrong side of the threshold */
            const int32_t *th = e->threshold + n;
            const int8_t *d = e->direction ? e->direction + n : NULL;
            uint64_t bits = 0;
            for (j = 0; j < nvalid; j++) {
                int neg = (d != NULL && d[j] < 0) ? (t[j] > th[j]) : (t[j] < th[j]);
                bits |= (uint64_t)neg << j;
            }
            ((uint64_t *)e->out)[(m + i) * e->ldo + (n >> 6)] |= bits << (n & 63);
        }
    }
}
