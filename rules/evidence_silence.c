/*
 * evidence_silence.c - the silence rule kind: a canary that stops talking
 * while the stable fleet goes on (its pods crashed, its listener died, the
 * mesh stopped routing to it). Every other kind needs canary samples to
 * judge, so without this one a dead canary leaves them all "insufficient
 * data" and the release sits in ANALYZING for ever.
 *
 * What is compared. The canary's traffic (the rule's traffic types, a count)
 * over the window W ending now, against what its share of the fleet
 * predicts: share = canary / stable traffic over the reference_window R
 * that precedes the window ([now - W - R, now - W)), expected = share x
 * stable's traffic in the window. The rule breaches when the canary's count
 * is at most max_ratio x expected. Because expected follows stable's own
 * traffic, a drop of the whole fleet (night, an upstream outage, a consumer
 * that reads every partition late) lowers expected with it and never
 * breaches; once the fleet is so quiet that expected < min_expected, a
 * canary at 0 could be chance and the rule says "insufficient data". A
 * canary that never sent anything has no share to expect from: also
 * "insufficient data", with a sentence saying no canary event has arrived.
 *
 * Why a preceding reference and not the canary's own history: the share is
 * what the traffic split (weights of the rollout) made it, so it transfers
 * to the current window whatever the hour's load is; the reference ends
 * where the window starts so that the collapse does not dilute it until
 * the window has filled with silence (by then the rule has fired).
 *
 * Both sides work in event time on the windows like every kind; the live
 * clock judges a second only once every partition has been read past it
 * (consumer lag, docs/live.md), so a lagging partition is not silence.
 *
 * Pure, allocation-free; reads the window concurrently with writers.
 */
#include "evidence_silence.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canaryd/timeutil.h"
#include "evidence_fmt.h"

static uint64_t traffic(const cd_signal_t *s, const cd_window_t *w, cd_cohort_t c, int64_t end,
                        int64_t len)
{
    if (len <= 0) return 0;
    uint64_t n = 0;
    for (int i = 0; i < s->nnum; i++)
        n += cd_window_sum(w, s->num[i], c, end, len);
    return n;
}

/* "REQUEST_COMPLETED" or "REQUEST_COMPLETED+USER_LOGIN" */
static void fmt_traffic(cd_sb_t *sb, const cd_evidence_names_t *n, const cd_signal_t *s)
{
    for (int i = 0; i < s->nnum; i++) {
        if (i) cd_sb_printf(sb, "+");
        cd_evfmt_type(sb, n, s->num[i]);
    }
}

static double per_s(uint64_t count, int64_t len_ms)
{
    return len_ms > 0 ? (double)count * 1000.0 / (double)len_ms : 0.0;
}

void cd_evidence_silence(const cd_rule_conf_t *r, const cd_evidence_names_t *n,
                         const cd_window_t *w, int64_t now, int64_t canary_start_ms,
                         cd_evidence_t *ev)
{
    const cd_signal_t *s = &r->signal;
    const int64_t win = r->window_ms;
    const int64_t clen = cd_evidence_canary_len(win, now, canary_start_ms);
    /* The reference precedes the window; for a release declared recently
     * it starts at the declaration (both cohorts over the same span, so
     * their ratio is a share). */
    const int64_t ref_end = now - win;
    const int64_t rlen =
        clen < win ? 0 : cd_evidence_canary_len(r->reference_ms, ref_end, canary_start_ms);
    const uint64_t cc = traffic(s, w, CD_COHORT_CANARY, now, clen);
    const uint64_t sc = traffic(s, w, CD_COHORT_STABLE, now, win);
    const uint64_t cr = traffic(s, w, CD_COHORT_CANARY, ref_end, rlen);
    const uint64_t sr = traffic(s, w, CD_COHORT_STABLE, ref_end, rlen);
    const uint64_t min_c = cd_evfmt_min(r->min_samples_canary, true);
    const uint64_t min_s = cd_evfmt_min(r->min_samples_stable, true);
    char d[32], dr[32];
    cd_duration_format(win, d, sizeof d);
    cd_duration_format(r->reference_ms, dr, sizeof dr);

    ev->canary = (cd_obs_t){true, per_s(cc, win), cc, cc};
    ev->stable = (cd_obs_t){true, per_s(sc, win), sc, sc};

    cd_sb_t sb;
    cd_sb_init(&sb, ev->what, sizeof ev->what);
    if (cc + cr == 0) {
        ev->insufficient = true;
        char dt[32];
        cd_sb_printf(&sb, "insufficient data: no canary event has arrived (");
        fmt_traffic(&sb, n, s);
        cd_sb_printf(&sb, ", last %s): a canary that never talked is not judged silent",
                     cd_duration_format(win + r->reference_ms, dt, sizeof dt));
        return;
    }
    if (cr < min_c || sr == 0 || sc < min_s) {
        ev->insufficient = true;
        bool first = true;
        if (cr < min_c) {
            cd_sb_printf(&sb,
                         "insufficient data: canary has %" PRIu64 " samples in the %s before "
                         "the last %s, needs %" PRIu64 " to know its share of the traffic",
                         cr, dr, d, min_c);
            first = false;
        }
        if (sr == 0 && rlen > 0) {
            cd_sb_printf(&sb, "%sstable has no traffic in the %s before the last %s",
                         first ? "insufficient data: " : "; ", dr, d);
            first = false;
        }
        if (sc < min_s) cd_evfmt_need(&sb, &first, "stable", sc, min_s, win);
        if (first) /* only a declared release younger than the window */
            cd_sb_printf(&sb, "insufficient data: the release is younger than %s + %s", d, dr);
        cd_sb_printf(&sb, " (traffic ");
        fmt_traffic(&sb, n, s);
        cd_sb_printf(&sb, ")");
        return;
    }

    const double share = (double)cr / (double)sr;
    const double expected = share * (double)sc;
    if (!(expected >= r->min_expected)) {
        ev->insufficient = true;
        cd_sb_printf(&sb,
                     "insufficient data: the canary is expected to send only %.1f in %s (its "
                     "%.2f%% share of the %s before x stable's %" PRIu64 "), needs %g to tell "
                     "silence from chance",
                     expected, d, share / (1.0 + share) * 100.0, dr, sc, r->min_expected);
        return;
    }

    const double limit = r->max_ratio * expected;
    ev->threshold = per_s(1, win) * limit; /* as a rate, the unit of the values */
    ev->compared = ev->canary.value;
    ev->breach = (double)cc <= limit;
    ev->clear = !ev->breach && (r->hysteresis <= 0.0 || (double)cc > limit * (1.0 + r->hysteresis));
    if (ev->breach) {
        /* When the canary fell silent: `for` counts from there (engine.c). */
        cd_onset_drop_t od = {s->num,           s->nnum, s->num,       s->nnum,
                              CD_COHORT_STABLE, share,   r->max_ratio, CD_DROP_ONSET_MARGIN};
        /* Looked for over window + `for`, not the window alone: a `for`
         * longer than the window must be reachable from the onset. */
        ev->onset_ms = cd_evidence_drop_onset(
            w, now, cd_evidence_canary_len(win + r->for_ms, now, canary_start_ms), &od);
    }

    /* The reference is given as counts: early in a stream the ring holds
     * less than reference_window of it, so a rate over the full length
     * would understate stable's; the share is exact either way. */
    const double exp_rate = per_s(1, win) * expected;
    cd_sb_printf(&sb, "canary ");
    fmt_traffic(&sb, n, s);
    cd_sb_printf(&sb, " %.2f/s (%" PRIu64 " in %s) %s %g x expected %.2f/s = %.2f/s",
                 ev->canary.value, cc, d, ev->breach ? "<=" : ">", r->max_ratio, exp_rate,
                 ev->threshold);
    cd_sb_printf(&sb,
                 "; stable %.2f/s (%" PRIu64 " in %s) still flowing; expected = the canary's "
                 "%.2f%% share of the traffic in the %s before (canary %" PRIu64
                 ", stable %" PRIu64 ") x stable now",
                 ev->stable.value, sc, d, share / (1.0 + share) * 100.0, dr, cr, sr);
    cd_sb_printf(&sb, ev->breach ? ": the canary went silent while stable did not"
                                 : ": the canary is talking");

    cd_sb_init(&sb, ev->ctx, sizeof ev->ctx);
    cd_sb_printf(&sb, "(window %s, reference %s before it; samples canary %" PRIu64 " >= %" PRIu64
                      " in the reference, stable %" PRIu64 " >= %" PRIu64 ")",
                 d, dr, cr, min_c, sc, min_s);
}

void cd_evidence_silence_retired(const char *decision, cd_evidence_t *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->threshold = NAN;
    ev->compared = NAN;
    ev->clear = true;
    snprintf(ev->what, sizeof ev->what, "not judged after the release's %s: %s", decision,
             strcmp(decision, "PROMOTE") == 0
                 ? "a promoted canary's traffic moves to the stable fleet"
                 : "the canary is being removed");
    snprintf(ev->ctx, sizeof ev->ctx, "(release decided)");
}
