/*
 * evidence_seq.c - the sequential test of threshold and relative rules
 * (cd_rule_conf_t.sequential): decide as soon as the evidence allows,
 * instead of waiting for a fixed window to fill.
 *
 * What. A rule compares a ratio signal with a threshold t. Its "bad share"
 * is the signal itself for > / >= (errors per request) and 1 - signal for
 * < / <= (payments that did not complete); B is t's bad share. Every bucket
 * of the canary's look-back (the last window + for, at most
 * CD_SEQ_MAX_BUCKETS) gives k bad events out of n trials and one
 * increment, the Bernoulli log-likelihood ratio of bad share q1 = h1 x B
 * against q0 = h0 x B. Page's CUSUM of those increments (stats.c) answers
 * three questions at once:
 *   - is there enough evidence that the canary is out of control? S >= llr
 *     (the breach). Under any bad share <= q0, exp(partial sums) is a
 *     supermartingale, so from any start the sums reach llr with
 *     probability <= e^-llr (Ville): over N buckets at most N e^-llr false
 *     crossings are expected, and the average run to a false crossing is at
 *     least e^llr buckets (Lorden). docs/config.md gives the numbers.
 *   - since when? The latest start whose evidence is within onset_llr of the
 *     best (the maximum-likelihood change point): an onset taken from it is
 *     before the true one with probability <= e^-onset_llr (same argument,
 *     run backwards from the true onset), so "held for 5m" counted from it
 *     is early with at most that probability. The engine counts `for` from
 *     here, not from the crossing.
 *   - has it ended? D, the reversed test on the increments after the change
 *     point: D >= llr is as strong evidence that the share fell back to q0
 *     as S >= llr was that it rose. Then the rule is clear: a 3-minute blip
 *     whose segment still has a positive sum two minutes later is not "held
 *     for 5 minutes".
 * Outcome: breach = S >= llr and D < llr; clear = S == 0 or D >= llr (the
 * engine's pending rule returns to inactive); anything else is in band.
 *
 * Data: the increments and counts in stack arrays (64 KB), filled by one read of the
 * window per bucket and type, so the answer is consistent even while a live
 * bucket is still filling. Stateless like every evidence kind: the look-back
 * is re-read at each evaluation, so replay and restarts give the same
 * answer. Pure, allocation-free, thread-safe on distinct cd_evidence_t.
 *
 * Trade-off: the threshold of a relative rule is taken as it is now (factor
 * x stable over the window) for the whole look-back; per-bucket stable
 * thresholds would follow a fleet-wide drift more closely, but one second of
 * stable traffic is too noisy to be a threshold.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "evidence_fmt.h"
#include "stats.h"

/* q0 and q1 kept inside (0, 1) so every logarithm is finite: a threshold of
 * 0 (relative rule, stable without errors and no floor) makes one bad event
 * very strong evidence, as it should, without an infinity. */
#define Q_MIN 1e-9
#define Q_MAX (1.0 - 1e-9)

static double clampq(double q)
{
    return q < Q_MIN ? Q_MIN : q > Q_MAX ? Q_MAX : q;
}

static uint64_t bucket_sum(const int *ids, int nids, const cd_window_t *w, int64_t start,
                           int64_t res)
{
    uint64_t s = 0;
    for (int i = 0; i < nids; i++)
        s += cd_window_sum(w, ids[i], CD_COHORT_CANARY, start + res, res);
    return s;
}

void cd_evidence_seq(const cd_rule_conf_t *r, const cd_evidence_names_t *n, const cd_window_t *w,
                     int64_t now, int64_t canary_start_ms, double t, cd_evidence_t *ev)
{
    const cd_signal_t *s = &r->signal;
    bool gt = r->op == CD_OP_GT || r->op == CD_OP_GE;
    double b = gt ? t : 1.0 - t;
    double q0 = clampq(r->seq_h0 * b), q1 = clampq(r->seq_h1 * b);
    if (q1 <= q0) q1 = q0 < Q_MAX ? fmin(Q_MAX, q0 * 1.0001 + 1e-12) : Q_MAX;

    /* Buckets starting in [now - window - for, now), the newest maybe still
     * filling (live), none before the canary release started. */
    int64_t res = cd_window_resolution(w);
    int64_t span = r->window_ms + r->for_ms;
    int64_t hi = (now + res - 1) / res - 1;
    int64_t from = now - span;
    if (canary_start_ms > 0 && from < canary_start_ms) from = canary_start_ms;
    int64_t lo = from > 0 ? (from + res - 1) / res : 0;
    if (hi - lo + 1 > CD_SEQ_MAX_BUCKETS) lo = hi - CD_SEQ_MAX_BUCKETS + 1;
    int m = hi >= lo ? (int)(hi - lo + 1) : 0;

    double inc[CD_SEQ_MAX_BUCKETS];
    uint32_t bad[CD_SEQ_MAX_BUCKETS], trials[CD_SEQ_MAX_BUCKETS]; /* one bucket's counts */
    for (int i = 0; i < m; i++) {
        int64_t start = (lo + i) * res;
        uint64_t num = bucket_sum(s->num, s->nnum, w, start, res);
        uint64_t den = bucket_sum(s->den, s->nden, w, start, res);
        if (num > den) num = den; /* a "share" above 1 is counted as all bad */
        if (den > UINT32_MAX) {   /* over 4 G events in one bucket: keep the share */
            uint64_t f = den / UINT32_MAX + 1;
            num /= f;
            den /= f;
        }
        bad[i] = (uint32_t)(gt ? num : den - num);
        trials[i] = (uint32_t)den;
        inc[i] = cd_stats_bernoulli_llr(bad[i], den, q0, q1);
    }
    cd_cusum_t c;
    cd_stats_cusum(inc, m, r->seq_onset_llr, &c);
    /* The onset: the same CUSUM with the share before the change taken as
     * onset_h0 x B (a relative rule's baseline), which separates before
     * from after more sharply than the detection's h0 (see the top). For a
     * relative rule B is here stable's over the whole look-back, not over
     * the last window: the onset is re-estimated every second, and a
     * threshold that moves with each minute of stable noise moves it too
     * (the first second where it happens to be `for` ago would fire). The
     * increments are rewritten in place: the detection's are not needed
     * any more. Kept only when it finds an exceedance too. */
    double oh0 = r->seq_onset_h0 > 0.0 ? r->seq_onset_h0 : r->seq_h0;
    double ob = b;
    if (r->kind == CD_RULE_RELATIVE && ev->stable_source &&
        strcmp(ev->stable_source, "stable") == 0) {
        cd_obs_t lb;
        cd_evidence_signal(s, w, CD_COHORT_STABLE, now, span, &lb);
        if (lb.valid && lb.denominator > 0) {
            double scaled = r->factor * lb.value;
            double ot = scaled > r->floor ? scaled : r->floor;
            ob = gt ? ot : 1.0 - ot;
        }
    }
    if (c.onset >= 0 && (oh0 != r->seq_h0 || ob != b)) {
        double oq0 = clampq(oh0 * ob), oq1 = clampq(r->seq_h1 * ob);
        if (oq0 < oq1) {
            for (int i = 0; i < m; i++)
                inc[i] = cd_stats_bernoulli_llr(bad[i], trials[i], oq0, oq1);
            cd_cusum_t o;
            cd_stats_cusum(inc, m, r->seq_onset_llr, &o);
            if (o.onset >= 0) c.onset = o.onset;
        }
    }

    ev->seq = true;
    ev->seq_stat = c.stat;
    ev->seq_end = c.end_stat;
    if (c.onset >= 0) {
        ev->onset_ms = (lo + c.onset) * res;
        for (int i = c.onset; i < m; i++) {
            ev->seg_bad += bad[i];
            ev->seg_trials += trials[i];
        }
    }
    bool ended = c.end_stat >= r->seq_llr;
    ev->breach = c.stat >= r->seq_llr && !ended;
    ev->clear = c.stat <= 0.0 || ended;

    cd_sb_t sb = {ev->what, sizeof ev->what, strlen(ev->what)}; /* appends */
    cd_sb_printf(&sb, "; CUSUM %.2f %s %g", c.stat, c.stat >= r->seq_llr ? ">=" : "<", r->seq_llr);
    if (c.onset >= 0) {
        cd_sb_printf(&sb, ": %s", gt ? "" : "1 - ");
        cd_evfmt_signal(&sb, n, s);
        cd_sb_printf(&sb, " %.2f%% (%" PRIu64 "/%" PRIu64 ") since ",
                     ev->seg_trials ? 100.0 * (double)ev->seg_bad / (double)ev->seg_trials : 0.0,
                     ev->seg_bad, ev->seg_trials);
        cd_evfmt_clock(&sb, ev->onset_ms);
    }
    cd_sb_printf(&sb, " vs in-control %.2f%%, tested %.2f%%", q0 * 100.0, q1 * 100.0);
    if (ended) cd_sb_printf(&sb, "; ended: reverse CUSUM %.2f >= %g", c.end_stat, r->seq_llr);
}
