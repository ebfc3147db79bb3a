/*
 * evidence.h - what one rule observes in the windows at one instant
 * (internal to rules/; the engine's state machine consumes it).
 *
 * For each rule kind (threshold, relative, spike, flatline, percentile) the
 * evidence is: the per-cohort observations that go into the record, the
 * value the canary was compared with, and three booleans the state machine
 * needs - insufficient (too few samples to judge), breach (the condition
 * holds) and clear (the value is beyond the hysteresis band on the healthy
 * side; with no band, clear == !breach). Insufficient evidence is never a
 * breach and never clear. In-band = !breach && !clear.
 *
 * It also writes the two halves of the reason sentence: `what` (observed
 * values, the comparison and the threshold, with numerator/denominator and
 * type names) and `ctx` (window and sample counts against the minimums); the
 * engine stitches them with the state-machine part ("for 5m", "pending").
 * For insufficient evidence `what` is the "insufficient data: ..." sentence.
 *
 * Pure and allocation-free: reads the window (safe concurrently with
 * writers), writes only into the caller's structs. Not thread-safe on one
 * cd_evidence_t; distinct ones are independent.
 */
#ifndef CANARYD_RULES_EVIDENCE_H
#define CANARYD_RULES_EVIDENCE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "canaryd/histogram.h"
#include "canaryd/rule.h"
#include "canaryd/verdict.h"
#include "canaryd/window.h"

/* Names used in reason sentences; borrowed, must outlive the call. A NULL
 * entry (or an id past the count) prints as "type#3" / "field#1". */
typedef struct cd_evidence_names {
    const char *const *types;
    int ntypes;
    const char *const *hists;
    int nhists;
} cd_evidence_names_t;

/* Length of the canary side of a window of len ending at now when the
 * canary release started at start_ms (0 = no start): clamped so that only
 * buckets from the start on count (0 = no canary data yet). */
static inline int64_t cd_evidence_canary_len(int64_t len, int64_t now, int64_t start_ms)
{
    if (start_ms <= 0 || now - len >= start_ms) return len;
    return now > start_ms ? now - start_ms : 0;
}

typedef struct cd_evidence {
    bool insufficient;
    bool breach;
    bool clear;
    /* SPIKE only: the stable cohort itself spiked against its reference
     * window (fleet-wide user behaviour: the outcome is ALERT). */
    bool fleet;
    cd_obs_t canary, stable;
    const char *stable_source; /* "stable" / "baseline" (RELATIVE), NULL otherwise */
    double threshold;          /* what the record calls the threshold; NaN if none */
    double compared;           /* the canary-side value compared (bound, quantile, ...) */
    /* Sequential rules only (r->sequential, evidence_seq.c), zero otherwise:
     * the CUSUM S and the end statistic D, the estimated onset (start of
     * the bucket the `for` duration counts from; 0 = no exceedance) and the
     * bad events / trials from there to now. */
    bool seq;
    double seq_stat, seq_end;
    int64_t onset_ms;
    uint64_t seg_bad, seg_trials;
    char what[520];
    char ctx[160];
} cd_evidence_t;

/*
 * Evaluates rule r over the windows ending at now_ms (each [now - window,
 * now)). scratch: two histograms the caller owns (PERCENTILE merges into
 * them; they are large, hence not on the stack). Fills *ev completely.
 */
void cd_evidence_eval(const cd_rule_conf_t *r, const cd_evidence_names_t *names,
                      const cd_window_t *w, int64_t now_ms, cd_hist_t scratch[2],
                      cd_evidence_t *ev);

/* cd_evidence_eval with the canary side of every window starting no earlier
 * than canary_start_ms (a new release declared then; 0 = no limit): events
 * of the previous canary release do not judge the new one. The stable side
 * and spike reference windows are unchanged. */
void cd_evidence_eval_since(const cd_rule_conf_t *r, const cd_evidence_names_t *names,
                            const cd_window_t *w, int64_t now_ms, int64_t canary_start_ms,
                            cd_hist_t scratch[2], cd_evidence_t *ev);

/* One cohort's signal over [end - len, end): value = num/den (invalid when
 * den == 0) or the count when the signal has no denominator. */
void cd_evidence_signal(const cd_signal_t *s, const cd_window_t *w, cd_cohort_t c, int64_t end_ms,
                        int64_t len_ms, cd_obs_t *out);

/*
 * Hysteresis: is v clear of threshold t for op, with band h? For > / >=:
 * v < t (1 - h); for < / <=: v > t (1 + h). h == 0: !op(v, t).
 */
bool cd_evidence_is_clear(cd_op_t op, double v, double t, double h);

/* Bounded string builder: appends never overflow; the text is truncated
 * (and stays NUL-terminated) when the buffer is full. */
typedef struct cd_sb {
    char *buf;
    size_t size, len;
} cd_sb_t;

void cd_sb_init(cd_sb_t *sb, char *buf, size_t size);
void cd_sb_printf(cd_sb_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
