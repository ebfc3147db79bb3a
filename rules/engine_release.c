/*
 * engine_release.c - the release's verdict, recomputed after every rule was
 * stepped (see engine.h and engine_internal.h).
 *
 * Precedence: ROLLBACK (sticky) > PROMOTE (sticky) > ALERT (a non-dry-run
 * alert rule firing) > ANALYZING (a non-dry-run rule lacks data, or the
 * canary sent fewer than min_canary_events over promote_after) > HEALTHY.
 * The canary-evidence check does not depend on the rules: a rule set of
 * counts with no minimum is judged on zero canary events, and without the
 * check a canary that sends nothing would be HEALTHY at once.
 * Dry-run rules never count; a guard rule's lack of data does not either
 * (rule.h: it only acts when it fires). PROMOTE needs an unbroken run of evaluations,
 * promote_after long, in which every rule had data and none was pending or
 * firing: a pending rule is not yet a problem for HEALTHY, but it is for
 * PROMOTE.
 *
 * A release-wide record (rule == NULL) goes out at the first evaluation and
 * whenever the verdict changes to ANALYZING, HEALTHY or PROMOTE; changes to
 * ALERT and ROLLBACK are announced by the rule's own record. One exception
 * to "first evaluation, whatever it is": if that is ROLLBACK the rule's
 * ROLLBACK record is the only one, because ROLLBACK is emitted exactly once
 * per release (sinks may act on it). After ROLLBACK nothing release-wide is
 * emitted again.
 *
 * Same threading as engine.c; no allocation.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canaryd/timeutil.h"
#include "engine_internal.h"
#include "evidence_fmt.h"

/* "error-rate 1.00% vs 2.00%" / "latency-p99 210.4 vs 301.5" */
static void brief(cd_sb_t *sb, const rule_rt_t *rt)
{
    const cd_evidence_t *ev = &rt->ev;
    cd_sb_printf(sb, "%s ", rt->conf.name);
    switch (rt->conf.kind) {
    case CD_RULE_PERCENTILE:
        cd_sb_printf(sb, "%.1f vs %.1f", ev->canary.value, ev->threshold);
        return;
    case CD_RULE_FLATLINE:
        cd_sb_printf(sb, "%.0f vs expected %.1f", ev->compared, ev->threshold);
        return;
    case CD_RULE_SILENCE: /* rates per second; threshold = max_ratio x expected */
        cd_sb_printf(sb, "%.2f/s vs at most %.2f/s", ev->compared, ev->threshold);
        return;
    default: {
        bool ratio = rt->conf.signal.nden > 0;
        cd_evfmt_value(sb, ratio, ev->canary.value);
        cd_sb_printf(sb, " vs ");
        cd_evfmt_value(sb, ratio, ev->threshold);
        return;
    }
    }
}

/* Canary events of every catalog type in [now - promote_after, now) (from
 * a declared release's start on), summed until `need` is reached: the
 * newest minute first, where a talking canary has them all, so the usual
 * evaluation reads 60 buckets of one type, not 900 of every type. The two
 * ranges split the period exactly (window.h: a range takes the buckets
 * starting in [end - len, end)). */
static uint64_t canary_events(const cd_engine_t *e, const cd_window_t *w, int64_t now,
                              uint64_t need)
{
    int64_t len = cd_evidence_canary_len(e->promote_after_ms, now, e->canary_start_ms);
    int64_t head = len < 60000 ? len : 60000;
    uint64_t n = 0;
    for (int t = 0; t < e->names.ntypes && n < need; t++)
        n += cd_window_sum(w, t, CD_COHORT_CANARY, now, head);
    for (int t = 0; t < e->names.ntypes && n < need && len > head; t++)
        n += cd_window_sum(w, t, CD_COHORT_CANARY, now - head, len - head);
    return n;
}

/* "canary evidence: no canary event has arrived (HEALTHY and PROMOTE need
 * 100 in 15m)" */
static void evidence_reason(const cd_engine_t *e, cd_sb_t *sb)
{
    char d[32];
    cd_duration_format(e->promote_after_ms, d, sizeof d);
    if (e->canary_events == 0 && !e->canary_seen)
        cd_sb_printf(sb, "canary evidence: no canary event has arrived");
    else if (e->canary_events == 0)
        cd_sb_printf(sb, "canary evidence: no canary event in the last %s", d);
    else
        cd_sb_printf(sb, "canary evidence: only %llu canary events in the last %s",
                     (unsigned long long)e->canary_events, d);
    cd_sb_printf(sb, " (HEALTHY and PROMOTE need %llu in %s)",
                 (unsigned long long)e->min_canary_events, d);
}

static void release_reason(const cd_engine_t *e, cd_verdict_kind_t v, int64_t now, char *buf,
                           size_t size)
{
    cd_sb_t sb;
    cd_sb_init(&sb, buf, size);
    char d[32];
    bool first = true;
    switch (v) {
    case CD_VERDICT_ANALYZING:
        cd_sb_printf(&sb, "waiting for enough data: ");
        if (e->canary_short) {
            evidence_reason(e, &sb);
            first = false;
        }
        for (int i = 0; i < e->nrules; i++) {
            const rule_rt_t *rt = &e->rules[i];
            if (rt->conf.dry_run || rt->conf.guard || !rt->ev.insufficient) continue;
            /* what = "insufficient data: canary has ..." */
            const char *w = rt->ev.what;
            const char *prefix = "insufficient data: ";
            if (strncmp(w, prefix, strlen(prefix)) == 0) w += strlen(prefix);
            cd_sb_printf(&sb, "%s%s: %s", first ? "" : "; ", rt->conf.name, w);
            first = false;
        }
        break;
    case CD_VERDICT_HEALTHY:
        cd_sb_printf(&sb, "every rule has enough data and none is firing");
        for (int i = 0; i < e->nrules; i++) {
            const rule_rt_t *rt = &e->rules[i];
            if (!rt->conf.dry_run && rt->state == CD_STATE_PENDING) {
                cd_sb_printf(&sb, "%s%s", first ? " (pending: " : ", ", rt->conf.name);
                first = false;
            }
        }
        cd_sb_printf(&sb, first ? "; promote after %s healthy" : "); promote after %s healthy",
                     cd_duration_format(e->promote_after_ms, d, sizeof d));
        break;
    case CD_VERDICT_PROMOTE:
        cd_sb_printf(&sb, "healthy with enough data for %s: ",
                     cd_duration_format(now - e->healthy_since, d, sizeof d));
        for (int i = 0; i < e->nrules; i++) {
            const rule_rt_t *rt = &e->rules[i];
            if (rt->conf.dry_run || (rt->conf.guard && rt->ev.insufficient)) continue;
            cd_sb_printf(&sb, first ? "" : "; ");
            brief(&sb, rt);
            first = false;
        }
        if (first) cd_sb_printf(&sb, "no rules to break");
        break;
    case CD_VERDICT_ALERT:
    case CD_VERDICT_ROLLBACK:
        cd_sb_printf(&sb, "%s rule firing: ", v == CD_VERDICT_ALERT ? "alert" : "rollback");
        for (int i = 0; i < e->nrules; i++) {
            const rule_rt_t *rt = &e->rules[i];
            if (rt->conf.dry_run || rt->state != CD_STATE_FIRING) continue;
            cd_sb_printf(&sb, "%s%s", first ? "" : ", ", rt->conf.name);
            first = false;
        }
        break;
    }
}

void cd_engine_release_step(cd_engine_t *e, const cd_window_t *w, int64_t now, cd_record_cb cb,
                            void *opaque)
{
    bool alert = false, insufficient = false, busy = false;
    /* Decided releases need no more evidence (and the count costs reads). */
    e->canary_short = false;
    if (e->min_canary_events > 0 && !e->rollback && !e->promote) {
        e->canary_events = canary_events(e, w, now, e->min_canary_events);
        e->canary_seen |= e->canary_events > 0;
        e->canary_short = e->canary_events < e->min_canary_events;
    }
    insufficient = e->canary_short;
    for (int i = 0; i < e->nrules; i++) {
        const rule_rt_t *rt = &e->rules[i];
        if (rt->conf.dry_run) continue;
        insufficient |= rt->ev.insufficient && !rt->conf.guard;
        busy |= rt->state == CD_STATE_PENDING || rt->state == CD_STATE_FIRING;
        alert |= rt->state == CD_STATE_FIRING && rt->outcome == CD_ACTION_ALERT;
    }

    if (insufficient || busy) {
        e->healthy_run = false;
    } else if (!e->healthy_run) {
        e->healthy_run = true;
        e->healthy_since = now;
    }
    if (!e->rollback && !e->promote && e->healthy_run &&
        now - e->healthy_since >= e->promote_after_ms)
        e->promote = true;

    cd_verdict_kind_t v = e->rollback    ? CD_VERDICT_ROLLBACK
                          : e->promote   ? CD_VERDICT_PROMOTE
                          : alert        ? CD_VERDICT_ALERT
                          : insufficient ? CD_VERDICT_ANALYZING
                                         : CD_VERDICT_HEALTHY;
    bool announce;
    if (!e->evaluated) /* a restored decision was announced before the restart */
        announce = v != CD_VERDICT_ROLLBACK && !(e->restored && v == e->verdict);
    else
        announce = v != e->verdict && (v == CD_VERDICT_ANALYZING || v == CD_VERDICT_HEALTHY ||
                                       v == CD_VERDICT_PROMOTE);
    e->verdict = v;
    if (!announce) return;

    cd_verdict_t *r = &e->out;
    memset(r, 0, sizeof *r);
    r->record = CD_RECORD_VERDICT;
    r->time_ms = now;
    r->verdict = v;
    r->release = e->release;
    r->threshold = NAN;
    release_reason(e, v, now, r->reason, sizeof r->reason);
    cb(r, opaque);
}
