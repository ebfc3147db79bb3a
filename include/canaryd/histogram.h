/*
 * histogram.h - log-linear histogram of positive values (latencies in ms).
 *
 * Bins: values below CD_HIST_MIN share bin 0; above that each power of two is
 * split into CD_HIST_SUB linear sub-bins, so a bin's width is at most 1/64 of
 * its lower edge and the bin midpoint is within 0.8 % of any value in it;
 * values above CD_HIST_MAX share the last bin. This struct is the reader's
 * merged view; the window keeps per-bucket atomic bins of the same layout.
 */
#ifndef CANARYD_HISTOGRAM_H
#define CANARYD_HISTOGRAM_H

#include <stdint.h>

#define CD_HIST_MIN 0.001        /* smallest resolved value */
#define CD_HIST_OCTAVES 34       /* 0.001 .. ~1.7e7 */
#define CD_HIST_SUB 64           /* linear sub-bins per octave */
#define CD_HIST_BINS (2 + CD_HIST_OCTAVES * CD_HIST_SUB)

typedef struct cd_hist {
    uint64_t count;
    uint64_t bins[CD_HIST_BINS];
} cd_hist_t;

/* Bin index of a value (NaN and values <= CD_HIST_MIN go to bin 0). */
int cd_hist_bin(double v);

/* Representative value of a bin (its midpoint). */
double cd_hist_bin_value(int bin);

void cd_hist_reset(cd_hist_t *h);
void cd_hist_record(cd_hist_t *h, double v);

/* Value at quantile q in [0,1] (nearest-rank on bins); 0 when empty. */
double cd_hist_quantile(const cd_hist_t *h, double q);

#endif
