/*
 * histogram.c - the log-linear bin layout shared by cd_hist_t (a reader's
 * merged view) and the window's per-bucket atomic bins.
 *
 * Layout (CD_HIST_BINS = 2 + 34 * 64 bins):
 *   bin 0                  v <= CD_HIST_MIN, negative values, NaN
 *   bins 1 + k*64 + j      octave k in [0, 34): v in [MIN*2^k, MIN*2^(k+1)),
 *                          j = linear sub-bin of width MIN*2^k / 64
 *   bin CD_HIST_BINS - 1   overflow: v >= MIN*2^34 (about 1.7e7), +inf
 * The bin index is read from the bits of v / MIN (no loop, no libm call),
 * so recording is a division and a few integer operations. A bin's representative value is its
 * midpoint, which is within 1/128 (0.78 %) of every value in the bin; bin 0 reports MIN/2 and the
 * overflow bin its lower edge (it has no upper edge).
 *
 * Quantiles are nearest-rank: the smallest bin whose cumulative count reaches
 * ceil(q * count). Pure functions, no allocation, no shared state: any thread
 * may call them on a cd_hist_t it owns.
 */
#include <math.h>
#include <string.h>

#include "canaryd/histogram.h"

/* cd_hist_bin reads the sub-bin as the top log2(CD_HIST_SUB) fraction bits. */
_Static_assert(CD_HIST_SUB == 64, "cd_hist_bin takes 6 fraction bits");

/* Lower edge of the overflow bin: CD_HIST_MIN * 2^CD_HIST_OCTAVES. */
#define HIST_TOP (CD_HIST_MIN * (double)(UINT64_C(1) << CD_HIST_OCTAVES))

int cd_hist_bin(double v)
{
    if (!(v > CD_HIST_MIN)) /* also catches NaN */
        return 0;
    if (v >= HIST_TOP) /* also catches +inf */
        return CD_HIST_BINS - 1;
    /* x = 1.f * 2^k: the octave is k and f in [0, 1) the position inside
     * it, so the sub-bin is the top 6 bits of f. Read from the IEEE bits
     * rather than with frexp(): x is a normal number here (v > MIN gives
     * x >= 1, v < HIST_TOP a finite x), the result is the same to the bit
     * (frexp's 2m - 1 is exactly f) and recording a value stays a division
     * and a few integer operations. */
    double x = v / CD_HIST_MIN;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int k = (int)((bits >> 52) & 0x7FF) - 1023;
    int j = (int)((bits & ((UINT64_C(1) << 52) - 1)) >> (52 - 6));
    /* v / MIN is rounded: right at the edges it may land one step outside. */
    if (k < 0) {
        k = 0;
        j = 0;
    } else if (k >= CD_HIST_OCTAVES) {
        k = CD_HIST_OCTAVES - 1;
        j = CD_HIST_SUB - 1;
    }
    if (j >= CD_HIST_SUB) j = CD_HIST_SUB - 1;
    return 1 + k * CD_HIST_SUB + j;
}

double cd_hist_bin_value(int bin)
{
    if (bin <= 0) return CD_HIST_MIN / 2;
    if (bin >= CD_HIST_BINS - 1) return HIST_TOP;
    int k = (bin - 1) / CD_HIST_SUB;
    int j = (bin - 1) % CD_HIST_SUB;
    return ldexp(CD_HIST_MIN * (1.0 + (j + 0.5) / CD_HIST_SUB), k);
}

void cd_hist_reset(cd_hist_t *h)
{
    h->count = 0;
    for (int i = 0; i < CD_HIST_BINS; i++)
        h->bins[i] = 0;
}

void cd_hist_record(cd_hist_t *h, double v)
{
    h->bins[cd_hist_bin(v)]++;
    h->count++;
}

double cd_hist_quantile(const cd_hist_t *h, double q)
{
    if (h->count == 0) return 0.0;
    if (!(q >= 0.0)) /* negative or NaN */
        q = 0.0;
    if (q > 1.0) q = 1.0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    uint64_t cum = 0;
    int last = -1;
    for (int i = 0; i < CD_HIST_BINS; i++) {
        if (h->bins[i] == 0) continue;
        cum += h->bins[i];
        last = i;
        if (cum >= rank) return cd_hist_bin_value(i);
    }
    /* count larger than the bins hold (a caller filled count by hand): the
     * highest non-empty bin is the best answer we have. */
    return last >= 0 ? cd_hist_bin_value(last) : 0.0;
}
