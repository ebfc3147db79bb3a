/*
 * evidence.c - signals, comparisons and reason sentences for the threshold,
 * relative and percentile rule kinds (see evidence.h). Spike and flatline
 * live in evidence_spike.c, the sequential test of threshold and relative
 * rules in evidence_seq.c, the sentence pieces they share in
 * evidence_fmt.c.
 *
 * A rule's evidence is recomputed from the window at every evaluation: the
 * window is the state, so nothing here remembers anything between calls.
 * Reasons are built with a bounded string builder: a long catalog name can
 * truncate a sentence but never overflow the record.
 */
#include "evidence.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "evidence_fmt.h"
#include "evidence_silence.h"
#include "stats.h"

void cd_evidence_signal(const cd_signal_t *s, const cd_window_t *w, cd_cohort_t c, int64_t end_ms,
                        int64_t len_ms, cd_obs_t *out)
{
    uint64_t num = 0, den = 0;
    for (int i = 0; i < s->nnum; i++)
        num += cd_window_sum(w, s->num[i], c, end_ms, len_ms);
    for (int i = 0; i < s->nden; i++)
        den += cd_window_sum(w, s->den[i], c, end_ms, len_ms);
    out->numerator = num;
    if (s->nden > 0) {
        out->denominator = den;
        out->valid = den > 0;
        out->value = den > 0 ? (double)num / (double)den : 0.0;
    } else {
        out->denominator = num; /* a count's samples are the count itself */
        out->valid = true;
        out->value = (double)num;
    }
}

bool cd_evidence_is_clear(cd_op_t op, double v, double t, double h)
{
    /* A breach is never clear, whatever the band (a negative threshold
     * would otherwise put t (1 - h) above t). */
    if (cd_op_holds(op, v, t)) return false;
    if (h <= 0.0) return true;
    if (op == CD_OP_GT || op == CD_OP_GE) return v < t * (1.0 - h);
    return v > t * (1.0 + h);
}

/* ---- THRESHOLD ---- */

static void eval_threshold(const cd_rule_conf_t *r, const cd_evidence_names_t *n,
                           const cd_window_t *w, int64_t now, int64_t clen, int64_t cstart,
                           cd_evidence_t *ev)
{
    const cd_signal_t *s = &r->signal;
    bool ratio = s->nden > 0, use_bound = r->z > 0 && ratio;
    cd_evidence_signal(s, w, CD_COHORT_CANARY, now, clen, &ev->canary);
    cd_evidence_signal(s, w, CD_COHORT_STABLE, now, r->window_ms, &ev->stable);
    ev->threshold = r->threshold;

    /* index 0: canary, 1: stable (canary reads first in sentences) */
    const cd_obs_t *obs[2] = {&ev->canary, &ev->stable};
    const char *cname[2] = {"canary", "stable"};
    bool scoped[2] = {r->scope != CD_SCOPE_STABLE, r->scope != CD_SCOPE_CANARY};
    uint64_t min[2] = {cd_evfmt_min(r->min_samples_canary, ratio),
                       cd_evfmt_min(r->min_samples_stable, ratio)};
    bool judged[2], any_judged = false;
    double cmp[2];
    bool upper = r->op == CD_OP_LT || r->op == CD_OP_LE;
    for (int i = 0; i < 2; i++) {
        judged[i] = scoped[i] && obs[i]->valid && obs[i]->denominator >= min[i];
        any_judged |= judged[i];
        cmp[i] = obs[i]->value;
        if (use_bound && obs[i]->valid)
            cmp[i] = upper ? cd_stats_wilson_upper(obs[i]->numerator, obs[i]->denominator, r->z)
                           : cd_stats_wilson_lower(obs[i]->numerator, obs[i]->denominator, r->z);
    }
    ev->compared = judged[0] || !judged[1] ? cmp[0] : cmp[1];

    cd_sb_t sb;
    cd_sb_init(&sb, ev->what, sizeof ev->what);
    if (!any_judged) {
        ev->insufficient = true;
        bool first = true;
        for (int i = 0; i < 2; i++)
            if (scoped[i])
                cd_evfmt_need(&sb, &first, cname[i], obs[i]->denominator, min[i], r->window_ms);
        return;
    }

    /* Breach and clear both use the compared value (the Wilson bound when z
     * > 0): one number decides, so a value can never be "breached" by its
     * bound yet "clear" by its point estimate. Scope any: breach if either
     * judged cohort breaches, clear only when every judged cohort is. */
    ev->clear = true;
    bool first = true;
    for (int i = 0; i < 2; i++) {
        if (!judged[i]) continue;
        bool holds = cd_op_holds(r->op, cmp[i], r->threshold);
        ev->breach |= holds;
        ev->clear &= cd_evidence_is_clear(r->op, cmp[i], r->threshold, r->hysteresis);
        cd_sb_printf(&sb, "%s%s %s ", first ? "" : "; ", cname[i], r->name);
        first = false;
        cd_evfmt_obs(&sb, n, s, obs[i], true);
        if (use_bound) {
            cd_sb_printf(&sb, ", %s %.3g%% bound ", upper ? "upper" : "lower",
                         cd_stats_norm_cdf(r->z) * 100.0);
            cd_evfmt_value(&sb, true, cmp[i]);
        }
        cd_sb_printf(&sb, " %s ", cd_evfmt_op(r->op, holds));
        cd_evfmt_value(&sb, ratio, r->threshold);
    }
    /* The window's value stays in the sentence; the sequential test decides
     * (the config allows it on the canary scope only). */
    if (r->sequential && judged[0]) cd_evidence_seq(r, n, w, now, cstart, r->threshold, ev);

    cd_sb_init(&sb, ev->ctx, sizeof ev->ctx);
    cd_evfmt_window(&sb, r->window_ms);
    first = true;
    for (int i = 0; i < 2; i++)
        if (scoped[i]) cd_evfmt_samples(&sb, &first, cname[i], obs[i]->denominator, min[i]);
    cd_sb_printf(&sb, ")");
}

/* ---- RELATIVE ---- */

static void eval_relative(const cd_rule_conf_t *r, const cd_evidence_names_t *n,
                          const cd_window_t *w, int64_t now, int64_t clen, int64_t cstart,
                          cd_evidence_t *ev)
{
    const cd_signal_t *s = &r->signal;
    bool ratio = s->nden > 0;
    uint64_t min_c = cd_evfmt_min(r->min_samples_canary, ratio);
    uint64_t min_s = cd_evfmt_min(r->min_samples_stable, ratio);
    cd_evidence_signal(s, w, CD_COHORT_CANARY, now, clen, &ev->canary);
    cd_evidence_signal(s, w, CD_COHORT_STABLE, now, r->window_ms, &ev->stable);
    ev->stable_source = "stable";
    bool canary_ok = ev->canary.valid && ev->canary.denominator >= min_c;
    bool stable_ok = ev->stable.valid && ev->stable.denominator >= min_s;
    uint64_t stable_samples = ev->stable.denominator;

    cd_sb_t sb;
    cd_sb_init(&sb, ev->what, sizeof ev->what);
    if (!canary_ok || (!stable_ok && !r->has_baseline)) {
        ev->insufficient = true;
        bool first = true;
        if (!canary_ok)
            cd_evfmt_need(&sb, &first, "canary", ev->canary.denominator, min_c, r->window_ms);
        if (!stable_ok && !r->has_baseline) {
            cd_evfmt_need(&sb, &first, "stable", stable_samples, min_s, r->window_ms);
            cd_sb_printf(&sb, ", and the rule has no baseline");
        }
        return;
    }
    if (!stable_ok) {
        /* Too little stable traffic: compare with the baseline file's value.
         * The record keeps the observed stable counts so a reader sees why. */
        ev->stable_source = "baseline";
        ev->stable.valid = true;
        ev->stable.value = r->baseline;
    }
    double scaled = r->factor * ev->stable.value;
    double t = scaled > r->floor ? scaled : r->floor;
    ev->threshold = t;
    ev->compared = ev->canary.value;
    ev->breach = cd_op_holds(r->op, ev->canary.value, t);
    ev->clear = cd_evidence_is_clear(r->op, ev->canary.value, t, r->hysteresis);

    cd_sb_printf(&sb, "canary %s ", r->name);
    cd_evfmt_obs(&sb, n, s, &ev->canary, true);
    cd_sb_printf(&sb, " %s %s%g x %s ", cd_evfmt_op(r->op, ev->breach), r->floor > 0 ? "max(" : "",
                 r->factor, stable_ok ? "stable" : "baseline");
    if (stable_ok)
        cd_evfmt_obs(&sb, n, s, &ev->stable, false);
    else
        cd_evfmt_value(&sb, ratio, ev->stable.value);
    if (r->floor > 0) {
        cd_sb_printf(&sb, ", floor ");
        cd_evfmt_value(&sb, ratio, r->floor);
        cd_sb_printf(&sb, ")");
    }
    cd_sb_printf(&sb, " = ");
    cd_evfmt_value(&sb, ratio, t);
    if (r->sequential) cd_evidence_seq(r, n, w, now, cstart, t, ev);

    cd_sb_init(&sb, ev->ctx, sizeof ev->ctx);
    cd_evfmt_window(&sb, r->window_ms);
    bool first = true;
    cd_evfmt_samples(&sb, &first, "canary", ev->canary.denominator, min_c);
    cd_evfmt_samples(&sb, &first, "stable", stable_samples, min_s);
    cd_sb_printf(&sb, "%s)", stable_ok ? "" : ": baseline used");
}

/* ---- PERCENTILE ---- */

static void fmt_quantile(cd_sb_t *sb, const cd_evidence_names_t *n, const cd_rule_conf_t *r)
{
    cd_sb_printf(sb, "p%g ", r->quantile * 100.0);
    if (n && r->hist >= 0 && r->hist < n->nhists && n->hists[r->hist])
        cd_sb_printf(sb, "%s", n->hists[r->hist]);
    else
        cd_sb_printf(sb, "field#%d", r->hist);
}

static void eval_percentile(const cd_rule_conf_t *r, const cd_evidence_names_t *n,
                            const cd_window_t *w, int64_t now, int64_t clen, cd_hist_t scratch[2],
                            cd_evidence_t *ev)
{
    /* cd_window_quantile answers exactly as merging the window into a
     * histogram and taking cd_hist_quantile would, but reads one octave's
     * bins instead of all of them: this rule runs every second over 5
     * minutes of buckets. scratch is not needed for that. */
    uint64_t nc, ns;
    double vc =
        cd_window_quantile(w, r->hist, CD_COHORT_CANARY, now, clen, r->quantile, &nc);
    double vs =
        cd_window_quantile(w, r->hist, CD_COHORT_STABLE, now, r->window_ms, r->quantile, &ns);
    /* A quantile of nothing is undefined: at least one observation each. */
    uint64_t min_c = cd_evfmt_min(r->min_samples_canary, true);
    uint64_t min_s = cd_evfmt_min(r->min_samples_stable, true);
    cd_obs_t *oc = &ev->canary, *os = &ev->stable;
    oc->denominator = nc;
    os->denominator = ns;
    oc->valid = nc > 0;
    os->valid = ns > 0;
    oc->value = vc;
    os->value = vs;

    cd_sb_t sb;
    cd_sb_init(&sb, ev->what, sizeof ev->what);
    if (nc < min_c || ns < min_s) {
        ev->insufficient = true;
        bool first = true;
        if (nc < min_c) cd_evfmt_need(&sb, &first, "canary", nc, min_c, r->window_ms);
        if (ns < min_s) cd_evfmt_need(&sb, &first, "stable", ns, min_s, r->window_ms);
        return;
    }
    double scaled = r->factor * os->value;
    double t = scaled > r->floor ? scaled : r->floor;
    ev->threshold = t;
    ev->compared = oc->value;
    ev->breach = cd_op_holds(r->op, oc->value, t);
    ev->clear = cd_evidence_is_clear(r->op, oc->value, t, r->hysteresis);

    cd_sb_printf(&sb, "canary ");
    fmt_quantile(&sb, n, r);
    cd_sb_printf(&sb, " %.1f %s %s%g x stable %.1f", oc->value, cd_evfmt_op(r->op, ev->breach),
                 r->floor > 0 ? "max(" : "", r->factor, os->value);
    if (r->floor > 0) cd_sb_printf(&sb, ", floor %.1f)", r->floor);
    cd_sb_printf(&sb, " = %.1f", t);

    cd_sb_init(&sb, ev->ctx, sizeof ev->ctx);
    cd_evfmt_window(&sb, r->window_ms);
    bool first = true;
    cd_evfmt_samples(&sb, &first, "canary", nc, min_c);
    cd_evfmt_samples(&sb, &first, "stable", ns, min_s);
    cd_sb_printf(&sb, ")");
}

void cd_evidence_eval(const cd_rule_conf_t *r, const cd_evidence_names_t *names,
                      const cd_window_t *w, int64_t now_ms, cd_hist_t scratch[2], cd_evidence_t *ev)
{
    cd_evidence_eval_since(r, names, w, now_ms, 0, scratch, ev);
}

void cd_evidence_eval_since(const cd_rule_conf_t *r, const cd_evidence_names_t *names,
                            const cd_window_t *w, int64_t now_ms, int64_t canary_start_ms,
                            cd_hist_t scratch[2], cd_evidence_t *ev)
{
    const int64_t clen = cd_evidence_canary_len(r->window_ms, now_ms, canary_start_ms);
    memset(ev, 0, sizeof *ev);
    ev->threshold = NAN;
    ev->compared = NAN;
    switch (r->kind) {
    case CD_RULE_THRESHOLD:
        eval_threshold(r, names, w, now_ms, clen, canary_start_ms, ev);
        break;
    case CD_RULE_RELATIVE:
        eval_relative(r, names, w, now_ms, clen, canary_start_ms, ev);
        break;
    case CD_RULE_SPIKE:
        cd_evidence_spike(r, names, w, now_ms, clen, ev);
        break;
    case CD_RULE_FLATLINE:
        cd_evidence_flatline(
            r, names, w, now_ms, clen,
            cd_evidence_canary_len(r->window_ms + r->for_ms, now_ms, canary_start_ms), ev);
        break;
    case CD_RULE_PERCENTILE:
        eval_percentile(r, names, w, now_ms, clen, scratch, ev);
        break;
    case CD_RULE_SILENCE:
        cd_evidence_silence(r, names, w, now_ms, canary_start_ms, ev);
        break;
    default:
        /* The engine rejects unknown kinds at cd_engine_new(); never judge one. */
        ev->insufficient = true;
        snprintf(ev->what, sizeof ev->what, "insufficient data: unknown rule kind %d",
                 (int)r->kind);
        break;
    }
    CD_ASSERT(!(ev->insufficient && (ev->breach || ev->clear)));
    CD_ASSERT(!(ev->breach && ev->clear));
}
