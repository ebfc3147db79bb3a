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
 * A spike needs two tests to pass, the factor test (above the other side by
 * at least `factor` x) and the significance test, and
 * each comparison prints both with their numbers. When one is not a spike,
 * the sentence names the test that failed: a large z next to "no spike"
 * otherwise reads like a contradiction (a 6 % vs 5 % difference over
 * thousands of logins is very significant and still not a 2x spike).
 *
 * The significance test is Fisher's exact one-sided test (stats.c): its
 * p-value is exact at any sample size, and the rule's `z` is read as the
 * level 1 - Phi(z) (z 3: p <= 0.00135). Until issue 10 it was the pooled
 * two-proportion z statistic, whose normal approximation is not calibrated
 * at the ~200 canary logins of a 5-minute window: 19/195 failed logins
 * against stable's 185/3869 gave z 3.10 (a ROLLBACK of a healthy canary in
 * a fleet-wide traffic drop) where the exact p is 0.0037. The trade-off: a
 * sum of hypergeometric terms per evaluation instead of a square root (the
 * terms fall geometrically above the mean; a few hundred at most here).
 *
 * Pure, allocation-free; reads the window only (see evidence.h).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "canaryd/timeutil.h"
#include "evidence_fmt.h"
#include "stats.h"

/* The two tests of one-sided "a is a spike over b": the factor test (a is
 * above b, and by at least factor x b) and the significance test (z >= the
 * rule's z). Kept apart so a reason can say which one failed. */
typedef struct spike_test {
    double p, alpha;
    bool factor_ok, signif_ok;
} spike_test_t;

static bool is_spike(const cd_rule_conf_t *r, const cd_obs_t *a, const cd_obs_t *b, spike_test_t *t)
{
    t->p = cd_stats_fisher_greater(a->numerator, a->denominator, b->numerator, b->denominator);
    t->alpha = cd_stats_norm_tail(r->z);
    t->factor_ok = a->value > b->value && a->value >= r->factor * b->value;
    t->signif_ok = t->p <= t->alpha;
    return t->factor_ok && t->signif_ok;
}

/*
 * " >= 2 x <b> = 10.00%" or " < 2 x <b> = 10.00%": the factor comparison,
 * b printed after b_prefix ("stable "), with its type names if b_names.
 * When a reaches factor x b without being above b at all (0 vs 0, or a
 * factor below 1), the comparison holds but the test does not, so it reads
 * " is not above <b>" instead.
 */
static void fmt_factor(cd_sb_t *sb, const cd_rule_conf_t *r, const cd_obs_t *a, const cd_obs_t *b,
                       const char *b_prefix, const cd_evidence_names_t *n, bool b_names)
{
    double t = r->factor * b->value;
    bool reaches = a->value >= t;
    if (reaches && !(a->value > b->value)) {
        cd_sb_printf(sb, " is not above %s", b_prefix);
        cd_evfmt_obs(sb, n, &r->signal, b, b_names);
        return;
    }
    cd_sb_printf(sb, " %s %g x %s", reaches ? ">=" : "<", r->factor, b_prefix);
    cd_evfmt_obs(sb, n, &r->signal, b, b_names);
    cd_sb_printf(sb, " = ");
    cd_evfmt_value(sb, true, t);
}

/* ", exact p 2.1e-05 <= 0.0013 (z 3): no canary spike (factor test fails)":
 * the significance test and the outcome, naming every test that failed. */
static void fmt_outcome(cd_sb_t *sb, const cd_rule_conf_t *r, const spike_test_t *t,
                        const char *spike, const char *no_spike)
{
    cd_sb_printf(sb, ", exact p %.2g %s %.2g (z %g): ", t->p, t->signif_ok ? "<=" : ">", t->alpha,
                 r->z);
    if (t->factor_ok && t->signif_ok)
        cd_sb_printf(sb, "%s", spike);
    else if (!t->factor_ok && !t->signif_ok)
        cd_sb_printf(sb, "%s (factor and significance tests fail)", no_spike);
    else
        cd_sb_printf(sb, "%s (%s test fails)", no_spike, t->factor_ok ? "significance" : "factor");
}

void cd_evidence_spike(const cd_rule_conf_t *r, const cd_evidence_names_t *n, const cd_window_t *w,
                       int64_t now, int64_t clen, cd_evidence_t *ev)
{
    const cd_signal_t *s = &r->signal;
    uint64_t min_c = cd_evfmt_min(r->min_samples_canary, true);
    uint64_t min_s = cd_evfmt_min(r->min_samples_stable, true);
    cd_evidence_signal(s, w, CD_COHORT_CANARY, now, clen, &ev->canary);
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
    spike_test_t tc, ts = {0};
    bool canary_spike = is_spike(r, oc, os, &tc);

    /* Fleet check: stable over [now - window - reference, now - window). */
    cd_obs_t ref;
    cd_evidence_signal(s, w, CD_COHORT_STABLE, now - r->window_ms, r->reference_ms, &ref);
    bool have_ref = r->reference_ms > 0 && ref.denominator >= min_s;
    bool stable_spike = have_ref && is_spike(r, os, &ref, &ts);

    ev->breach = canary_spike || stable_spike;
    ev->clear = !ev->breach;
    ev->fleet = stable_spike;

    cd_sb_printf(&sb, "canary %s ", r->name);
    cd_evfmt_obs(&sb, n, s, oc, true);
    fmt_factor(&sb, r, oc, os, "stable ", n, false);
    fmt_outcome(&sb, r, &tc, "canary spike", "no canary spike");

    char d[32];
    cd_duration_format(r->reference_ms, d, sizeof d);
    if (!have_ref) {
        cd_sb_printf(&sb,
                     "; the fleet check had no reference: stable has %" PRIu64
                     " samples in the preceding %s, needs %" PRIu64,
                     ref.denominator, d, min_s);
    } else {
        char prefix[48];
        snprintf(prefix, sizeof prefix, "its preceding %s ", d);
        cd_sb_printf(&sb, "; stable ");
        cd_evfmt_value(&sb, true, os->value);
        fmt_factor(&sb, r, os, &ref, prefix, n, false);
        fmt_outcome(&sb, r, &ts, "fleet-wide spike, user behaviour, not the deployment",
                    "no fleet-wide spike");
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
                          const cd_window_t *w, int64_t now, int64_t clen, int64_t olen,
                          cd_evidence_t *ev)
{
    const cd_signal_t *s = &r->signal;
    uint64_t tc = 0, ts = 0; /* traffic: the signal's denominator types */
    for (int i = 0; i < s->nden; i++) {
        tc += cd_window_sum(w, s->den[i], CD_COHORT_CANARY, now, clen);
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
        uint64_t cc = cd_window_sum(w, r->flat_types[i], CD_COHORT_CANARY, now, clen);
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
    if (ev->breach) {
        /* When the type stopped: `for` counts from there (engine.c). */
        cd_onset_drop_t od = {&r->flat_types[best],
                              1,
                              s->den,
                              s->nden,
                              CD_COHORT_CANARY,
                              (double)best_sc / (double)ts,
                              r->max_ratio,
                              CD_DROP_ONSET_MARGIN};
        ev->onset_ms = cd_evidence_drop_onset(w, now, olen, &od);
    }

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
