/*
 * window.h - lock-free sliding-window counters in event time.
 *
 * A ring of time buckets (1 s each by default). Each bucket holds, per
 * (metric, cohort), a counter split into per-writer stripes on their own cache
 * lines, and per (histogram, cohort) atomic log-linear bins. Writers add with
 * relaxed atomics and never take a lock; a bucket whose epoch is stale is
 * claimed for its new second by one CAS on its epoch. Readers sum the buckets
 * whose epoch falls in [end - len, end).
 *
 * The clock is passed in (event time in replay, wall time live): this module
 * reads no clock of its own. Threading: any number of threads may call
 * cd_window_add()/cd_window_observe()/readers concurrently; one thread at a
 * time advances the clock with cd_window_set_clock().
 */
#ifndef CANARYD_WINDOW_H
#define CANARYD_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "canaryd/common.h"
#include "canaryd/histogram.h"

typedef struct cd_window_conf {
    int nmetrics;          /* counters per cohort (event type ids 0..nmetrics-1) */
    int nhists;            /* histograms per cohort (numeric field ids) */
    int64_t resolution_ms; /* bucket length; default 1000 */
    int64_t span_ms;       /* how far behind the clock readers may look (longest window + slack) */
    int64_t ahead_ms;      /* how far ahead of the clock an event may land (lateness / skew) */
    int nstripes;          /* writer stripes; 0 = number of online CPUs, capped at 16 */
    /* How far behind the clock histogram readers may look (longest percentile
     * window + slack); 0 = span_ms. When shorter than span_ms the histograms
     * live in a ring of their own that long, so the memory they fill follows
     * the percentile windows, not the longest counter window: a value
     * admitted by the counters but older than hist_span_ms is dropped from
     * the histograms (no reader may look that far back) and cd_window_observe
     * still answers CD_WIN_OK for it. */
    int64_t hist_span_ms;
} cd_window_conf_t;

typedef struct cd_window cd_window_t;

/* Allocates the ring (all buckets empty, clock 0). NULL + message on a bad conf
 * or allocation failure. Free with cd_window_destroy(). */
cd_window_t *cd_window_new(const cd_window_conf_t *conf, char *errbuf, size_t errsize);
void cd_window_destroy(cd_window_t *w);

typedef enum cd_window_result {
    CD_WIN_OK = 0,
    CD_WIN_LATE,   /* older than the ring (before clock - span) */
    CD_WIN_FUTURE, /* more than ahead_ms after the clock */
} cd_window_result_t;

/*
 * Advances the clock to now_ms (never backwards: an earlier value is
 * ignored) and pre-claims the buckets that the new clock brings into range so
 * writers rarely take the CAS path. Single caller at a time.
 */
void cd_window_set_clock(cd_window_t *w, int64_t now_ms);
int64_t cd_window_clock(const cd_window_t *w);

/* Stripe to use from this thread: a small per-thread number assigned on first
 * use (thread-local), modulo the stripe count. */
int cd_window_stripe(const cd_window_t *w);

/* Adds n to (metric, cohort) in the bucket of ts_ms. Lock-free. */
cd_window_result_t cd_window_add(cd_window_t *w, int stripe, int metric, cd_cohort_t c,
                                 int64_t ts_ms, uint64_t n);

/* Records value v in histogram (hist, cohort) in the bucket of ts_ms. */
cd_window_result_t cd_window_observe(cd_window_t *w, int hist, cd_cohort_t c, int64_t ts_ms,
                                     double v);

/* Sum of (metric, cohort) over buckets starting in [end_ms - len_ms, end_ms). */
uint64_t cd_window_sum(const cd_window_t *w, int metric, cd_cohort_t c, int64_t end_ms,
                       int64_t len_ms);

/* Merges histogram (hist, cohort) over the same range into *out (reset first). */
void cd_window_hist(const cd_window_t *w, int hist, cd_cohort_t c, int64_t end_ms, int64_t len_ms,
                    cd_hist_t *out);

/*
 * Value at quantile q of histogram (hist, cohort) over the same range: the
 * same nearest-rank answer as cd_window_hist() followed by cd_hist_quantile()
 * (0 when empty), without merging the whole histogram: per-octave counts
 * kept beside the bins find the octave holding the rank, and only that
 * octave's bins are merged. *count (if not NULL) gets the number of values
 * in the range, the merged histogram's count. Thread-safe like the other
 * readers; with writers running, the answer reflects some of the adds in
 * flight, as a merge would. No allocation (about 1 KB of stack).
 */
double cd_window_quantile(const cd_window_t *w, int hist, cd_cohort_t c, int64_t end_ms,
                          int64_t len_ms, double q, uint64_t *count);

/* Bucket length in ms (the configured resolution). */
int64_t cd_window_resolution(const cd_window_t *w);

/* The start of the oldest bucket readers still see (clock - span, in
 * whole buckets; 0 early on): a range starting before it is clipped. hist:
 * the histograms' ring (shorter when hist_span_ms is). Only moves forward.
 * Any thread. */
int64_t cd_window_oldest(const cd_window_t *w, bool hist);

/* Bytes allocated for the ring (for sizing docs and RSS budgets). */
size_t cd_window_memory(const cd_window_t *w);

#endif
