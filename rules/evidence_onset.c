/*
 * evidence_onset.c - when did a count fall? The estimated onset of the
 * silence and flatline kinds (issue 10): their `for` counts from it, not
 * from the moment the window's total crossed the line.
 *
 * What. A silence or flatline rule compares a canary count over its window
 * with what was expected (the canary's share of stable's traffic; a watched
 * type's rate per unit of canary traffic). Both are Poisson counts whose
 * mean fell from lambda0 (expected) to at most ratio x lambda0. Each bucket
 * of the window gives k observed against its own lambda0 (expected from that
 * bucket's base traffic) and the Poisson log-likelihood ratio of "fallen"
 * against "flowing": k ln(ratio) + (1 - ratio) lambda0. Page's CUSUM of those
 * increments (stats.c, the same code as the sequential test) gives the
 * change point; the onset is the latest start whose evidence is within
 * `margin` nats of the best, so it is early with probability at most
 * e^-margin while the count still flowed at lambda0 before it (Ville).
 *
 * Why only these two kinds: their change is a collapse (a silent bucket of
 * a 30/s canary adds 27 nats), so the onset is known to the second and a
 * chance dip cannot date itself back. A spike (a proportion a few times
 * higher, from a few logins a second) or a percentile (a p99 of 30 samples
 * a second) is located far less sharply, and their `for` is the guard
 * against a chance excursion of the window's test: they keep counting from
 * the crossing (docs/config.md says so).
 *
 * Data: the increments in a stack array (CD_SEQ_MAX_BUCKETS doubles, 32 KB),
 * one read of the window per bucket and type. Pure, allocation-free,
 * stateless; thread-safe like every evidence function.
 */
#include <math.h>

#include "evidence_fmt.h"
#include "stats.h"

static uint64_t bucket_sum(const int *ids, int nids, const cd_window_t *w, cd_cohort_t c,
                           int64_t start, int64_t res)
{
    uint64_t s = 0;
    for (int i = 0; i < nids; i++)
        s += cd_window_sum(w, ids[i], c, start + res, res);
    return s;
}

int64_t cd_evidence_drop_onset(const cd_window_t *w, int64_t now, int64_t len,
                               const cd_onset_drop_t *d)
{
    int64_t res = cd_window_resolution(w);
    if (len <= 0 || res <= 0 || !(d->scale > 0.0)) return 0;
    int64_t hi = (now + res - 1) / res - 1;
    int64_t from = now - len;
    int64_t lo = from > 0 ? (from + res - 1) / res : 0;
    if (hi - lo + 1 > CD_SEQ_MAX_BUCKETS) lo = hi - CD_SEQ_MAX_BUCKETS + 1;
    int m = hi >= lo ? (int)(hi - lo + 1) : 0;
    if (m == 0) return 0;
    /* ratio 0 ("stopped") would make one event infinitely strong evidence
     * against the drop; 1 % keeps it finite and still decisive. */
    double rho = d->ratio < 0.01 ? 0.01 : d->ratio;
    double lr = log(rho);
    double inc[CD_SEQ_MAX_BUCKETS];
    for (int i = 0; i < m; i++) {
        int64_t start = (lo + i) * res;
        double k = (double)bucket_sum(d->types, d->ntypes, w, CD_COHORT_CANARY, start, res);
        double l0 = d->scale * (double)bucket_sum(d->base, d->nbase, w, d->base_cohort, start, res);
        inc[i] = k * lr + (1.0 - rho) * l0;
    }
    cd_cusum_t c;
    cd_stats_cusum(inc, m, d->margin, &c);
    /* Less evidence than the margin itself: no change point to speak of. */
    if (c.onset < 0 || c.stat < d->margin) return 0;
    return (lo + c.onset) * res;
}
