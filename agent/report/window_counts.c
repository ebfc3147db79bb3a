/*
 * window_counts.c - each rule's window counts closed at a whole second
 * (include/canaryd/window_counts.h), for GET /api/v1/windows.
 *
 * Data: nothing of its own; per rule the distinct event types its signal
 * reads (numerator, denominator, flatline types) summed per cohort over
 * [S - window, S) from the lock-free ring, and a percentile rule's
 * histogram count. The result is a plain struct the caller renders.
 *
 * Threading: readers of the ring only (window.h): any thread, no lock.
 * While the evaluating thread moves the clock, a bucket the read needs can
 * be recycled mid-read; the ring's oldest edge only moves forward and
 * moves before a bucket is reused, so checking it after the read (not
 * before) is what makes an OK answer whole.
 *
 * Trade-off: the counts are the rule's own window, not what the engine
 * compared at that second (a release change clips the canary's window, a
 * spike rule also reads a reference span): they are meant to be compared
 * between agents and against the events, exactly, which the engine's
 * derived values (ratios, Wilson bounds) cannot be.
 */
#include "canaryd/window_counts.h"

#include <string.h>

static void add_type(cd_window_counts_rule_t *r, int t)
{
    for (int i = 0; i < r->ntypes; i++)
        if (r->types[i] == t) return;
    if (r->ntypes < CD_WC_MAX_TYPES) r->types[r->ntypes++] = t;
}

cd_wc_result_t cd_window_counts(const cd_config_t *cfg, const cd_window_t *w, int64_t at_ms,
                                int64_t complete_ms, cd_window_counts_t *out)
{
    memset(out, 0, sizeof *out);
    out->at_ms = at_ms;
    out->nrules = cfg->nrules < CD_MAX_RULES ? cfg->nrules : CD_MAX_RULES;
    /* The earliest S whose every window is retained: the longest window
     * after the oldest bucket of the ring it reads. */
    int64_t need = 0;
    for (int i = 0; i < out->nrules; i++) {
        const cd_rule_conf_t *rc = &cfg->rules[i];
        bool hist = rc->kind == CD_RULE_PERCENTILE;
        int64_t e = cd_window_oldest(w, hist) + rc->window_ms;
        if (e > need) need = e;
    }
    out->oldest_ms = need;
    if (at_ms <= 0 || at_ms > complete_ms) return CD_WC_NOT_JUDGED;
    if (at_ms < need) return CD_WC_GONE;

    for (int i = 0; i < out->nrules; i++) {
        const cd_rule_conf_t *rc = &cfg->rules[i];
        cd_window_counts_rule_t *r = &out->rules[i];
        r->window_ms = rc->window_ms;
        r->hist = -1;
        if (rc->kind == CD_RULE_PERCENTILE) {
            r->hist = rc->hist;
            for (int c = 0; c < CD_NCOHORTS; c++)
                cd_window_quantile(w, rc->hist, (cd_cohort_t)c, at_ms, rc->window_ms, 0.5,
                                   &r->observations[c]);
            continue;
        }
        for (int k = 0; k < rc->signal.nnum; k++)
            add_type(r, rc->signal.num[k]);
        for (int k = 0; k < rc->signal.nden; k++)
            add_type(r, rc->signal.den[k]);
        if (rc->kind == CD_RULE_FLATLINE)
            for (int k = 0; k < rc->nflat; k++)
                add_type(r, rc->flat_types[k]);
        for (int k = 0; k < r->ntypes; k++)
            for (int c = 0; c < CD_NCOHORTS; c++)
                r->count[k][c] = cd_window_sum(w, r->types[k], (cd_cohort_t)c, at_ms, rc->window_ms);
    }
    /* after the read: see the design comment */
    for (int i = 0; i < out->nrules; i++) {
        const cd_rule_conf_t *rc = &cfg->rules[i];
        if (at_ms - rc->window_ms < cd_window_oldest(w, rc->kind == CD_RULE_PERCENTILE))
            return CD_WC_GONE;
    }
    return CD_WC_OK;
}
