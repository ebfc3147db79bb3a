/*
 * evidence_spike.c - evidence for the two kinds that compare shapes rather
 * than a value with a threshold:
 *   SPIKE: is the canary's proportion (failures / attempts) significantly
 *     above stable's? And is stable itself above its own preceding reference
 *     window (then it is fleet-wide user behaviour, not the deployment)?
 *   FLATLINE: has an event type that still flows in stable stopped in the
 *     canary, relative to the traffic each cohort carries?
 * Both have no hysteresis band: clear == !breach.
 *
 * Pure, allocation-free; reads the window only (see evidence.h).
 */
#include <inttypes.h>
#include <math.h>

#include "canaryd/timeutil.h"
#include "evidence_fmt.h"
#include "stats.h"

/* One-sided "a is a spike over b": above it, by factor, and significant. */
static bool is_spike(const cd_rule_conf_t *r, const cd_obs_t *a, const cd_obs_t *b, double *z)
{
    *z = cd_stats_z_two_prop(a->numerator, a->denominator, b->numerator, b->denominator);
    return a->value > b->value && a->value >= r->factor * b->value && *z >= r->z;
}

void cd_evidence_spike(const cd_rule_conf_t *r, const cd_evidence_names_t *n, const cd_window_t *w,
                       int64_t now, cd_evidence_t *ev)
{
    const cd_signal_t *s = &r->signal;
    uint64_t min_c = cd_evfmt_min(r->min_samples_canary, true);
    uint64_t min_s = cd_evfmt_min(r->min_samples_stable, true);
    cd_evidence_signal(s, w, CD_COHORT_CANARY, now, r->window_ms, &ev->canary);
    cd_evidence_signal(s, w, CD_COHORT_STABLE, now, r->window_ms, &ev->stable);
    const cd_obs_t *oc = &ev->canary, *os = &ev->stable;

    cd_sb_t sb;
    cd_sb_init(&sb, ev->what, sizeof ev->what);
    if (oc->denominator < min_c || os->denominator < min_s) {
        ev->insufficient = true;
        bool first = true;
        if (oc->denominator < min_c)
            cd_evfmt_need(&sb, &first, "canary", oc->denominator, min_c, r->window_ms);
        if (os->denominator < min_s)
            cd_evfmt_need(&sb, &first, "stable", os->denominator, min_s, r->window_ms);
        return;
    }
    ev->threshold = r->factor * os->value;
    ev->compared = oc->value;
    double zc;
    bool canary_spike = is_spike(r, oc, os, &zc);

    /* Fleet check: stable over [now - window - reference, now - window). */
    cd_obs_t ref;
    cd_evidence_signal(s, w, CD_COHORT_STABLE, now - r->window_ms, r->reference_ms, &ref);
    bool have_ref = r->reference_ms > 0 && ref.denominator >= min_s;
    double zs = 0.0;
    bool stable_spike = have_ref && is_spike(r, os, &ref, &zs);

    ev->breach = canary_spike || stable_spike;
    ev->clear = !ev->breach;
    ev->fleet = stable_spike;

    cd_sb_printf(&sb, "canary %s ", r->name);
    cd_evfmt_obs(&sb, n, s, oc, true);
    bool above = oc->value >= r->factor * os->value;
    cd_sb_printf(&sb, " %s %g x stable ", above ? ">=" : "<", r->factor);
    cd_evfmt_obs(&sb, n, s, os, false);
    cd_sb_printf(&sb, " = ");
    cd_evfmt_value(&sb, true, ev->threshold);
    cd_sb_printf(&sb, ", z %.2f %s %.2f", zc, zc >= r->z ? ">=" : "<", r->z);
    cd_sb_printf(&sb, canary_spike ? " (canary spike)" : " (no canary spike)");

    char d[32];
    cd_duration_format(r->reference_ms, d, sizeof d);
    if (!have_ref) {
        cd_sb_printf(&sb,
                     "; the fleet check had no reference: stable has %" PRIu64
                     " samples in the preceding %s, needs %" PRIu64,
                     ref.denominator, d, min_s);
    } else {
        cd_sb_printf(&sb, "; stable vs its preceding %s ", d);
        cd_evfmt_obs(&sb, n, s, &ref, false);
        cd_sb_printf(&sb, ": z %.2f %s %.2f", zs, zs >= r->z ? ">=" : "<", r->z);
        if (stable_spike)
            cd_sb_printf(&sb, ", fleet-wide: user behaviour, not the deployment");
        else
            cd_sb_printf(&sb, ", no fleet-wide spike");
    }

    cd_sb_init(&sb, ev->ctx, sizeof ev->ctx);
    cd_evfmt_window(&sb, r->window_ms);
    bool first = true;
    cd_evfmt_samples(&sb, &first, "canary", oc->denominator, min_c);
    cd_evfmt_samples(&sb, &first, "stable", os->denominator, min_s);
    cd_sb_printf(&sb, ")");
}

/* "REQUEST_COMPLETED" or "REQUEST_COMPLETED+RPC_DONE" */
static void fmt_traffic(cd_sb_t *sb, const cd_evidence_names_t *n, const cd_signal_t *s)
{
    for (int i = 0; i < s->nden; i++) {
        if (i) cd_sb_printf(sb, "+");
        cd_evfmt_type(sb, n, s->den[i]);
    }
}

void cd_evidence_flatline(const cd_rule_conf_t *r, const cd_evidence_names_t *n,
                          const cd_window_t *w, int64_t now, cd_evidence_t *ev)
{
    const cd_signal_t *s = &r->signal;
    uint64_t tc = 0, ts = 0; /* traffic: the signal's denominator types */
    for (int i = 0; i < s->nden; i++) {
        tc += cd_window_sum(w, s->den[i], CD_COHORT_CANARY, now, r->window_ms);
        ts += cd_window_sum(w, s->den[i], CD_COHORT_STABLE, now, r->window_ms);
    }
    uint64_t min_c = cd_evfmt_min(r->min_samples_canary, true);
    uint64_t min_s = cd_evfmt_min(r->min_samples_stable, true);
    ev->canary.denominator = tc;
    ev->stable.denominator = ts;

    cd_sb_t sb;
    cd_sb_init(&sb, ev->what, sizeof ev->what);
    if (tc < min_c || ts < min_s) {
        ev->insufficient = true;
        bool first = true;
        if (tc < min_c) cd_evfmt_need(&sb, &first, "canary", tc, min_c, r->window_ms);
        if (ts < min_s) cd_evfmt_need(&sb, &first, "stable", ts, min_s, r->window_ms);
        cd_sb_printf(&sb, " (traffic ");
        fmt_traffic(&sb, n, s);
        cd_sb_printf(&sb, ")");
        return;
    }

    int best = -1;
    double best_ratio = INFINITY, best_expected = 0.0;
    uint64_t best_cc = 0, best_sc = 0;
    for (int i = 0; i < r->nflat; i++) {
        uint64_t sc = cd_window_sum(w, r->flat_types[i], CD_COHORT_STABLE, now, r->window_ms);
        uint64_t cc = cd_window_sum(w, r->flat_types[i], CD_COHORT_CANARY, now, r->window_ms);
        double expected = (double)sc / (double)ts * (double)tc;
        if (!(expected >= r->min_expected) || expected <= 0.0)
            continue; /* not judged: too rare to expect anything */
        double ratio = (double)cc / expected;
        if (ratio < best_ratio) {
            best = i;
            best_ratio = ratio;
            best_expected = expected;
            best_cc = cc;
            best_sc = sc;
        }
    }
    if (best < 0) {
        ev->insufficient = true;
        cd_sb_printf(&sb,
                     "insufficient data: no watched type is expected often enough in the "
                     "canary (needs an expected count >= %g:",
                     r->min_expected);
        for (int i = 0; i < r->nflat; i++) {
            uint64_t sc = cd_window_sum(w, r->flat_types[i], CD_COHORT_STABLE, now, r->window_ms);
            cd_sb_printf(&sb, " ");
            cd_evfmt_type(&sb, n, r->flat_types[i]);
            cd_sb_printf(&sb, " %.1f", (double)sc / (double)ts * (double)tc);
        }
        cd_sb_printf(&sb, ")");
        return;
    }

    int type = r->flat_types[best];
    ev->canary = (cd_obs_t){true, (double)best_cc, best_cc, tc};
    ev->stable = (cd_obs_t){true, (double)best_sc, best_sc, ts};
    ev->threshold = best_expected;
    ev->compared = (double)best_cc;
    /* The lowest canary/expected is flat iff any judged type is. */
    ev->breach = (double)best_cc <= r->max_ratio * best_expected;
    ev->clear = !ev->breach;

    cd_sb_printf(&sb, "canary ");
    cd_evfmt_type(&sb, n, type);
    cd_sb_printf(&sb,
                 " %" PRIu64 " %s %g x expected %.1f = %.1f (stable %" PRIu64 " per %" PRIu64 " ",
                 best_cc, ev->breach ? "<=" : ">", r->max_ratio, best_expected,
                 r->max_ratio * best_expected, best_sc, ts);
    fmt_traffic(&sb, n, s);
    cd_sb_printf(&sb, ", canary %" PRIu64 " ", tc);
    fmt_traffic(&sb, n, s);
    cd_sb_printf(&sb, ")");
    cd_sb_printf(&sb, ev->breach ? ": flat in the canary" : ": still flowing");

    cd_sb_init(&sb, ev->ctx, sizeof ev->ctx);
    cd_evfmt_window(&sb, r->window_ms);
    bool first = true;
    cd_evfmt_samples(&sb, &first, "canary", tc, min_c);
    cd_evfmt_samples(&sb, &first, "stable", ts, min_s);
    cd_sb_printf(&sb, ")");
}
