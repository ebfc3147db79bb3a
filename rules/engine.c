/*
 * engine.c - the rule engine (see include/canaryd/engine.h): per-rule state
 * machines and the release's verdict.
 *
 * Data: one rule_rt_t per rule (a copy of its conf, its state, the times the
 * state machine needs, its last evidence), a queue of this evaluation's rule
 * verdicts, and the release's sticky flags (ROLLBACK, PROMOTE). Everything,
 * including two histogram scratch buffers for percentile rules, is allocated
 * by cd_engine_new(); cd_engine_eval() allocates nothing and reads no clock:
 * the same windows and times always give the same records.
 *
 * Each evaluation: (1) every rule's evidence is computed (evidence.c) and its
 * state machine stepped, emitting a state record per transition, in rule
 * order; (2) the rule verdicts found on the way (ROLLBACK, ALERT) are
 * emitted; (3) the release verdict is recomputed and a release-wide record
 * emitted when it changes to ANALYZING, HEALTHY or PROMOTE (and once at the
 * first evaluation). The trade-off: records of one evaluation are not
 * interleaved by rule, so a reader sees every state change before the
 * verdicts they caused.
 *
 * `for`: a rule fires once its condition has held for `for`. For threshold,
 * relative (without sequential), spike and percentile rules that is counted
 * from the evaluation where it started to hold (the crossing, kept in
 * pending_since). A sequential rule (evidence_seq.c) and the silence and
 * flatline kinds (evidence_onset.c) count it from the onset their
 * change-point estimate gives at each evaluation, and can therefore fire at
 * the crossing itself; pending_since still records the crossing, for the
 * reason, which names both times.
 *
 * Threading: one thread at a time calls cd_engine_eval() and the getters
 * (the HTTP API must serialise with the evaluating thread).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canaryd/timeutil.h"
#include "engine_internal.h"
#include "evidence.h"
#include "evidence_fmt.h"
#include "evidence_silence.h"

static void copy_name(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

cd_engine_t *cd_engine_new(const cd_engine_conf_t *conf, char *errbuf, size_t errsize)
{
    char scratch_err[8];
    if (errbuf == NULL || errsize == 0) {
        errbuf = scratch_err;
        errsize = sizeof scratch_err;
    }
    cd_engine_t *e = NULL;
    if (!cd_engine_check_conf(conf, errbuf, errsize)) goto err;
    e = calloc(1, sizeof *e);
    if (e == NULL) goto oom;
    int n = conf->nrules;
    e->nrules = n;
    e->rules = calloc(n > 0 ? (size_t)n : 1, sizeof *e->rules);
    e->queue = calloc(n > 0 ? (size_t)n : 1, sizeof *e->queue);
    if (e->rules == NULL || e->queue == NULL) goto oom;
    e->promote_after_ms =
        conf->promote_after_ms ? conf->promote_after_ms : DEFAULT_PROMOTE_AFTER_MS;
    e->alert_repeat_ms = conf->alert_repeat_ms ? conf->alert_repeat_ms : DEFAULT_ALERT_REPEAT_MS;
    e->min_canary_events = conf->min_canary_events;
    copy_name(e->release, sizeof e->release, conf->release);
    for (int i = 0; i < conf->ntypes; i++) {
        copy_name(e->type_store[i], CD_NAME_MAX, conf->type_names[i]);
        e->type_ptrs[i] = conf->type_names[i] ? e->type_store[i] : NULL;
    }
    for (int i = 0; i < conf->nhists; i++) {
        copy_name(e->hist_store[i], CD_NAME_MAX, conf->hist_names[i]);
        e->hist_ptrs[i] = conf->hist_names[i] ? e->hist_store[i] : NULL;
    }
    e->names = (cd_evidence_names_t){e->type_ptrs, conf->ntypes, e->hist_ptrs, conf->nhists};
    for (int i = 0; i < n; i++) {
        rule_rt_t *rt = &e->rules[i];
        rt->conf = conf->rules[i];
        rt->state = CD_STATE_INACTIVE;
        rt->clear_since = -1;
        rt->outcome = rt->conf.action;
        rt->last.record = CD_RECORD_STATE;
        rt->last.rule = rt->conf.name;
        rt->last.rule_kind = cd_rule_kind_name(rt->conf.kind);
        rt->last.action = rt->conf.action;
        rt->last.dry_run = rt->conf.dry_run;
        rt->last.release = e->release;
        rt->last.threshold = NAN;
        rt->last.window_ms = rt->conf.window_ms;
        rt->last.for_ms = rt->conf.for_ms;
        snprintf(rt->last.reason, sizeof rt->last.reason, "not evaluated yet");
    }
    e->verdict = CD_VERDICT_ANALYZING;
    return e;
oom:
    snprintf(errbuf, errsize, "out of memory allocating the rule engine");
err:
    cd_engine_destroy(e);
    return NULL;
}

void cd_engine_destroy(cd_engine_t *e)
{
    if (e == NULL) return;
    free(e->rules);
    free(e->queue);
    free(e);
}

void cd_engine_set_release(cd_engine_t *e, const char *release)
{
    copy_name(e->release, sizeof e->release, release);
}

void cd_engine_new_release(cd_engine_t *e, const char *release, int64_t now_ms)
{
    CD_ASSERT(e != NULL);
    /* A start before the last evaluation would let already judged canary
     * buckets count again; clamp forward. */
    if (e->evaluated && now_ms < e->last_now) now_ms = e->last_now;
    copy_name(e->release, sizeof e->release, release ? release : "");
    for (int i = 0; i < e->nrules; i++) {
        rule_rt_t *rt = &e->rules[i];
        rt->state = CD_STATE_INACTIVE;
        rt->pending_since = 0;
        rt->clear_since = -1;
        rt->outcome = rt->conf.action;
        rt->alerted = false;
        rt->last_alert_ms = 0;
        rt->dry_rollback_sent = false;
    }
    e->rollback = e->promote = false;
    e->healthy_run = false;
    e->healthy_since = 0;
    e->canary_seen = false;
    e->verdict = CD_VERDICT_ANALYZING;
    /* The next evaluation is the new release's first: it announces its
     * verdict as the very first one does (engine_release.c). Times still
     * may not go back: now_ms >= last_now, and it becomes last_now. */
    e->evaluated = false;
    e->restored = false;
    e->last_now = now_ms;
    e->canary_start_ms = now_ms;
}

void cd_engine_restore_decision(cd_engine_t *e, const char *release, cd_verdict_kind_t v)
{
    CD_ASSERT(!e->evaluated);
    CD_ASSERT(v == CD_VERDICT_ROLLBACK || v == CD_VERDICT_PROMOTE);
    copy_name(e->release, sizeof e->release, release ? release : "");
    e->rollback = v == CD_VERDICT_ROLLBACK;
    e->promote = v == CD_VERDICT_PROMOTE;
    e->verdict = v;
    e->restored = true;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Saturating a + b for a time plus a duration (both from config: b >= 0). */
static int64_t add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

int64_t cd_engine_next_deadline(const cd_engine_t *e)
{
    if (!e->evaluated) return INT64_MIN;
    int64_t d = INT64_MAX, longest = 0;
    for (int i = 0; i < e->nrules; i++) {
        const rule_rt_t *rt = &e->rules[i];
        if (rt->conf.window_ms > longest) longest = rt->conf.window_ms;
        if (rt->state == CD_STATE_PENDING)
            d = min64(d, add_sat(rt->ev.onset_ms > 0 ? rt->ev.onset_ms : rt->pending_since,
                                 rt->conf.for_ms));
        if (rt->state != CD_STATE_FIRING) continue;
        if (rt->clear_since >= 0) d = min64(d, add_sat(rt->clear_since, rt->conf.resolve_for_ms));
        if (rt->outcome == CD_ACTION_ALERT && rt->ev.breach && rt->alerted)
            d = min64(d, add_sat(rt->last_alert_ms, e->alert_repeat_ms));
    }
    if (e->canary_start_ms > 0 && e->last_now < add_sat(e->canary_start_ms, longest))
        return INT64_MIN;
    if (!e->rollback && !e->promote && e->healthy_run)
        d = min64(d, add_sat(e->healthy_since, e->promote_after_ms));
    return d;
}

cd_verdict_kind_t cd_engine_verdict(const cd_engine_t *e)
{
    return e->verdict;
}

cd_rule_state_t cd_engine_rule_state(const cd_engine_t *e, int i, cd_verdict_t *last)
{
    if (i < 0 || i >= e->nrules) {
        if (last) {
            memset(last, 0, sizeof *last);
            last->threshold = NAN;
        }
        return CD_STATE_INACTIVE;
    }
    if (last) *last = e->rules[i].last;
    return e->rules[i].state;
}

int64_t cd_engine_span_ms(const cd_rule_conf_t *rules, int nrules)
{
    int64_t span = 0;
    for (int i = 0; i < nrules; i++) {
        int64_t s = rules[i].window_ms;
        if ((rules[i].kind == CD_RULE_SPIKE || rules[i].kind == CD_RULE_SILENCE) &&
            rules[i].reference_ms > 0)
            s += rules[i].reference_ms;
        if (rules[i].sequential) s += rules[i].for_ms; /* the CUSUM's look-back */
        if (s > span) span = s;
    }
    return span;
}

int64_t cd_engine_hist_span_ms(const cd_rule_conf_t *rules, int nrules)
{
    int64_t span = 0;
    for (int i = 0; i < nrules; i++)
        if (rules[i].kind == CD_RULE_PERCENTILE && rules[i].window_ms > span)
            span = rules[i].window_ms;
    return span;
}

/* Does rt's `for` count from its evidence's estimated onset (sequential
 * rules, silence, flatline: evidence_seq.c, evidence_onset.c) rather than
 * from the crossing? Only while the evidence has one. */
static bool from_onset(const rule_rt_t *rt)
{
    return rt->ev.onset_ms > 0;
}

/* ---- records ---- */

/* Fills v with rule rt's evidence at now (reason left empty). */
static void fill_rule_record(const cd_engine_t *e, const rule_rt_t *rt, int64_t now,
                             cd_verdict_t *v)
{
    const cd_evidence_t *ev = &rt->ev;
    memset(v, 0, sizeof *v);
    v->record = CD_RECORD_STATE;
    v->time_ms = now;
    v->from = v->to = rt->state;
    v->rule = rt->conf.name;
    v->rule_kind = cd_rule_kind_name(rt->conf.kind);
    v->action = rt->outcome;
    v->dry_run = rt->conf.dry_run;
    v->release = e->release;
    v->canary = ev->canary;
    v->stable = ev->stable;
    v->stable_source = ev->stable_source;
    v->threshold = ev->threshold;
    v->window_ms = rt->conf.window_ms;
    v->for_ms = rt->conf.for_ms;
    snprintf(v->todo, sizeof v->todo, "%s", rt->conf.description);
}

/* reason = prefix + what [+ " for <for>"] + " " + ctx + suffix; insufficient
 * evidence is just prefix + what ("insufficient data: ..."). */
static void set_reason(cd_verdict_t *v, const rule_rt_t *rt, const char *prefix, bool with_for,
                       const char *suffix)
{
    cd_sb_t sb;
    cd_sb_init(&sb, v->reason, sizeof v->reason);
    cd_sb_printf(&sb, "%s%s", prefix, rt->ev.what);
    if (rt->ev.insufficient) return; /* "insufficient data: ..." says it all */
    if (with_for && rt->conf.for_ms > 0) {
        char d[32];
        cd_sb_printf(&sb, " for %s", cd_duration_format(rt->conf.for_ms, d, sizeof d));
        if (from_onset(rt)) {
            /* `for` counted from the estimated onset: say both times */
            cd_sb_printf(&sb, " since the estimated onset ");
            cd_evfmt_clock(&sb, rt->ev.onset_ms);
            cd_sb_printf(&sb, " (threshold crossed ");
            cd_evfmt_clock(&sb, rt->pending_since);
            cd_sb_printf(&sb, ")");
        }
    }
    cd_sb_printf(&sb, " %s%s", rt->ev.ctx, suffix);
}

static void emit_state(cd_engine_t *e, rule_rt_t *rt, cd_rule_state_t from, int64_t now,
                       cd_record_cb cb, void *opaque)
{
    cd_verdict_t *v = &e->out;
    fill_rule_record(e, rt, now, v);
    v->from = from;
    char d[32], tail[96];
    switch (rt->state) {
    case CD_STATE_PENDING:
        if (from_onset(rt))
            snprintf(tail, sizeof tail,
                     "; pending: fires if it holds until %s after the estimated onset",
                     cd_duration_format(rt->conf.for_ms, d, sizeof d));
        else
            snprintf(tail, sizeof tail, "; pending: fires if it holds for %s",
                     cd_duration_format(rt->conf.for_ms, d, sizeof d));
        set_reason(v, rt, "", false, tail);
        break;
    case CD_STATE_FIRING:
        /* A rule counting from its onset can fire at its crossing (the
         * onset is already `for` ago): its reason gives the duration and
         * both times too. */
        set_reason(v, rt, "", from == CD_STATE_PENDING || from_onset(rt), "");
        break;
    case CD_STATE_INACTIVE:
        set_reason(v, rt, rt->ev.insufficient ? "" : "cleared before firing: ", false, "");
        break;
    case CD_STATE_RESOLVED:
        snprintf(tail, sizeof tail,
                 "clear for %s: ", cd_duration_format(rt->conf.resolve_for_ms, d, sizeof d));
        set_reason(v, rt, tail, false, "");
        break;
    }
    cb(v, opaque);
}

static void queue_verdict(cd_engine_t *e, rule_rt_t *rt, cd_verdict_kind_t kind, int64_t now,
                          const char *prefix, bool with_for)
{
    CD_ASSERT(e->nqueued < e->nrules); /* at most one verdict per rule per evaluation */
    cd_verdict_t *v = &e->queue[e->nqueued++];
    fill_rule_record(e, rt, now, v);
    v->record = CD_RECORD_VERDICT;
    v->verdict = kind;
    v->action = kind == CD_VERDICT_ROLLBACK ? CD_ACTION_ROLLBACK : CD_ACTION_ALERT;
    set_reason(v, rt, prefix, with_for, "");
}

/* ---- the rule state machine ---- */

static void step_rule(cd_engine_t *e, rule_rt_t *rt, int64_t now, cd_record_cb cb, void *opaque)
{
    const cd_evidence_t *ev = &rt->ev;
    const cd_rule_conf_t *r = &rt->conf;
    cd_rule_state_t from = rt->state, to = from;

    if (ev->breach) rt->outcome = ev->fleet ? CD_ACTION_ALERT : r->action;
    /* Where `for` counts from: the crossing, or for a sequential, silence
     * or flatline rule the onset its change-point estimate gives
     * (re-estimated at every evaluation; pending_since keeps the crossing
     * for the reason). */
    switch (from) {
    case CD_STATE_INACTIVE:
    case CD_STATE_RESOLVED:
        if (ev->breach) {
            rt->pending_since = now;
            bool held = r->for_ms == 0 || (ev->onset_ms > 0 && now - ev->onset_ms >= r->for_ms);
            to = held ? CD_STATE_FIRING : CD_STATE_PENDING;
        }
        break;
    case CD_STATE_PENDING:
        /* In band (neither breach nor clear) keeps pending_since: `for`
         * means held continuously, and the band absorbs noise near the
         * threshold. Insufficient data cannot confirm the hold. */
        if (ev->insufficient || ev->clear)
            to = CD_STATE_INACTIVE;
        else if (ev->breach &&
                 now - (ev->onset_ms > 0 ? ev->onset_ms : rt->pending_since) >= r->for_ms)
            to = CD_STATE_FIRING;
        break;
    case CD_STATE_FIRING:
        /* Only clear evaluations count towards recovery; breach, in band and
         * insufficient data all restart the clear run. */
        if (ev->clear) {
            if (rt->clear_since < 0) rt->clear_since = now;
            if (now - rt->clear_since >= r->resolve_for_ms) to = CD_STATE_RESOLVED;
        } else {
            rt->clear_since = -1;
        }
        break;
    }
    if (to == from) return;
    if (to == CD_STATE_FIRING) {
        CD_ASSERT(ev->breach); /* nothing fires without a breach at this instant */
        rt->clear_since = -1;
        rt->dry_rollback_sent = false;
    }
    rt->state = to;
    emit_state(e, rt, from, now, cb, opaque);
}

/* Queues the ROLLBACK / ALERT a firing rule owes at this evaluation. */
static void rule_verdict(cd_engine_t *e, rule_rt_t *rt, bool entered, int64_t now)
{
    if (rt->state != CD_STATE_FIRING) return;
    const char *prefix = entered ? "" : "still firing: ";
    if (rt->outcome == CD_ACTION_ROLLBACK) {
        /* Only on a breaching evaluation: a firing spike that was fleet-wide
         * turns into a ROLLBACK when the canary alone spikes, not when the
         * numbers happen to be clear or missing. */
        if (!rt->ev.breach) return;
        if (rt->conf.dry_run) {
            if (!rt->dry_rollback_sent) {
                rt->dry_rollback_sent = true;
                queue_verdict(e, rt, CD_VERDICT_ROLLBACK, now,
                              entered ? "" : "now canary-only: ", entered);
            }
        } else if (!e->rollback) {
            e->rollback = true;
            queue_verdict(e, rt, CD_VERDICT_ROLLBACK, now,
                          entered ? "" : "now canary-only: ", entered);
        }
        return;
    }
    /* Repeats only while the condition still holds: a firing rule whose
     * numbers are clear is recovering (waiting out resolve_for), and saying
     * "still firing" then would be noise. Entering FIRING is a breach. */
    if (rt->ev.breach && (!rt->alerted || now - rt->last_alert_ms >= e->alert_repeat_ms)) {
        rt->alerted = true;
        rt->last_alert_ms = now;
        queue_verdict(e, rt, CD_VERDICT_ALERT, now, prefix, entered);
    }
}

/* Refreshes what cd_engine_rule_state() reports for rt. */
static void remember(const cd_engine_t *e, rule_rt_t *rt, int64_t now)
{
    fill_rule_record(e, rt, now, &rt->last);
    set_reason(&rt->last, rt, "", false, "");
}

void cd_engine_eval(cd_engine_t *e, const cd_window_t *w, int64_t now_ms, cd_record_cb cb,
                    void *opaque)
{
    CD_ASSERT(e != NULL && w != NULL && cb != NULL);
    e->nqueued = 0;
    /* A new release starts at canary_start_ms, the pipeline's clock when it
     * was declared. A pipeline whose boundaries trail its clock (live.c's
     * watermark holds judgement back while a partition catches up) still
     * evaluates boundaries before that instant: none of the release's
     * evidence is there yet, so nothing is judged and no time is taken. */
    if (!e->evaluated && e->canary_start_ms > 0 && now_ms < e->canary_start_ms) return;
    /* Going back in time would replay `for` and resolve_for against the
     * wrong instants: a verdict-corrupting caller bug, not bad input. */
    CD_ASSERT((!e->evaluated && e->canary_start_ms == 0) || now_ms >= e->last_now);

    for (int i = 0; i < e->nrules; i++) {
        rule_rt_t *rt = &e->rules[i];
        cd_rule_state_t before = rt->state;
        if (rt->conf.kind == CD_RULE_SILENCE && (e->rollback || e->promote))
            /* A decided release's canary goes quiet by design. */
            cd_evidence_silence_retired(e->rollback ? "ROLLBACK" : "PROMOTE", &rt->ev);
        else
            cd_evidence_eval_since(&rt->conf, &e->names, w, now_ms, e->canary_start_ms,
                                   e->scratch, &rt->ev);
        step_rule(e, rt, now_ms, cb, opaque);
        rule_verdict(e, rt, before != CD_STATE_FIRING && rt->state == CD_STATE_FIRING, now_ms);
        remember(e, rt, now_ms);
    }
    for (int i = 0; i < e->nqueued; i++)
        cb(&e->queue[i], opaque);
    cd_engine_release_step(e, w, now_ms, cb, opaque);
    e->evaluated = true;
    e->last_now = now_ms;
}
