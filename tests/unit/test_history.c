/*
 * test_history.c - the per-rule series charts draw (agent/report/history.c) and the
 * engine tap behind it (cd_engine_rule_sample through the pipeline's eval
 * hook): one point per second holding that second's last evaluation, the
 * values the rule computed (canary, stable, max(2 x stable, floor), the
 * hysteresis band, sample counts, short of data, state), the records as
 * marks at their times, the bounded ring keeping the newest, since=.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../pipeline_fixture.h"
#include "canaryd/config.h"
#include "canaryd/history.h"
#include "canaryd/pipeline.h"

#define T0 1795780800000LL /* 2026-11-27T12:00:00.000Z */

/* error-rate: canary errors/requests > max(2 x stable, 1 %), band 10 %,
 * 100 samples each, `for` 2s; evaluated every 250 ms (set after parsing,
 * as the live clock does: the config accepts multiples of the resolution) */
static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},"
    " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"5s\","
    "  \"max_future_skew\": \"2m\", \"slack\": \"30s\"},"
    " \"rules\": [{\"name\": \"error-rate\", \"kind\": \"relative\","
    "  \"description\": \"Roll back.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"denominator\": [\"REQUEST_COMPLETED\"], \"op\": \">\", \"factor\": 2, \"floor\": 0.01,"
    "  \"hysteresis\": 0.1, \"window\": \"10s\", \"for\": \"2s\","
    "  \"min_samples\": {\"canary\": 100, \"stable\": 100}, \"action\": \"rollback\"}]}";

static cd_config_t *cfg;
static cd_pipeline_t *pl;
static cd_history_t *hist;

static void on_record(const cd_verdict_t *v, void *opaque)
{
    cd_history_record(opaque, v);
}

static void setup(void)
{
    cfg = fx_config(CONFIG);
    cfg->eval_interval_ms = 250;
    hist = cd_history_new(cfg->rules, cfg->nrules, 0, 0);
    cr_assert_not_null(hist);
    pl = fx_pipeline(cfg, 5000, 1, on_record, hist);
    cd_pipeline_set_eval_hook(pl, cd_history_sample, hist);
}

static void teardown(void)
{
    cd_pipeline_destroy(pl);
    cd_history_destroy(hist);
    cd_config_free(cfg);
}

static void event(const char *type, const char *cohort, int64_t t)
{
    char line[256];
    int n = snprintf(
        line, sizeof line,
        "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\",\"version\":\"2.5.0\"}", type,
        (long long)t, cohort);
    cr_assert_eq(cd_pipeline_ingest(pl, line, (size_t)n, 0), CD_BAD_NONE, "%s", line);
}

/* Second s: 20 requests per cohort, errs_canary / 1 errors. */
static void second(int s, int errs_canary)
{
    int64_t t = T0 + s * 1000LL;
    cd_pipeline_advance(pl, t);
    for (int k = 0; k < 20; k++) {
        event("REQUEST_COMPLETED", "canary", t + k * 40);
        event("REQUEST_COMPLETED", "stable", t + k * 40 + 5);
    }
    for (int k = 0; k < errs_canary; k++)
        event("ERROR_OCCURRED", "canary", t + 900 + k);
    event("ERROR_OCCURRED", "stable", t + 950);
}

TestSuite(history, .init = setup, .fini = teardown);

Test(history, one_point_per_second_with_the_rules_values)
{
    cd_pipeline_begin(pl, T0);
    for (int s = 0; s < 10; s++)
        second(s, 1);
    cd_pipeline_advance(pl, T0 + 10000);

    cd_history_view_t v;
    cr_assert(cd_history_copy(hist, INT64_MIN, &v));
    cr_assert_eq(v.nrules, 1);
    /* boundaries every 250 ms up to 10 s; per second the last one (x.750;
     * 10.000 alone in its second), except that the evaluation at 4.250,
     * the first with 100 canary requests in the window (no longer short
     * of data), starts a point of its own and keeps its time */
    static const int64_t t[] = {750,  1750, 2750, 3750, 4000, 4250,
                                5750, 6750, 7750, 8750, 9750, 10000};
    static const uint32_t n[] = {20, 40, 60, 80, 80, 100, 120, 140, 160, 180, 200, 200};
    cr_assert_eq(v.npoints[0], 12);
    for (int k = 0; k < 12; k++) {
        const cd_history_point_t *p = &v.points[0][k];
        cr_expect_eq(p->t_ms, T0 + t[k], "point %d at +%lld", k, (long long)(p->t_ms - T0));
        cr_expect_eq(p->canary_n, n[k], "point %d: canary samples %u", k, p->canary_n);
        cr_expect_eq(p->stable_n, n[k]);
        cr_expect_eq((bool)(p->flags & CD_HP_INSUFFICIENT), n[k] < 100, "point %d", k);
        cr_expect_eq((bool)(p->flags & CD_HP_EDGE), k == 5, "point %d", k);
    }
    const cd_history_point_t *last = &v.points[0][11];
    cr_expect_float_eq(last->canary, 10.0 / 200, 1e-7);
    cr_expect_float_eq(last->stable, 10.0 / 200, 1e-7);
    cr_expect_float_eq(last->threshold, 0.1, 1e-7);  /* max(2 x 5 %, 1 %) */
    cr_expect_float_eq(last->band, 0.1 * 0.9, 1e-7); /* clear below 9 % */
    cr_expect_eq(last->state, CD_STATE_INACTIVE);
    cr_expect_eq(last->verdict, CD_VERDICT_HEALTHY);
    cr_expect_str_eq(v.release, "2.5.0");
    /* the release's verdict changes: ANALYZING at the first evaluation,
     * HEALTHY once 100 samples were in */
    cr_assert_eq(v.nverdicts, 2);
    cr_expect_eq(v.verdicts[0].verdict, CD_VERDICT_ANALYZING);
    cr_expect_eq(v.verdicts[0].t_ms, T0 + 250);
    cr_expect_eq(v.verdicts[1].verdict, CD_VERDICT_HEALTHY);
    cr_expect_eq(v.verdicts[1].t_ms, T0 + 4250);
    cr_expect_eq(v.nmarks, 2); /* the two release-wide records */
    cd_history_view_free(&v);
}

Test(history, pending_firing_and_the_rollback_at_their_times)
{
    cd_pipeline_begin(pl, T0);
    for (int s = 0; s < 10; s++)
        second(s, 1);
    for (int s = 10; s < 20; s++)
        second(s, 10); /* canary errors x10 */
    cd_pipeline_advance(pl, T0 + 20000);

    cd_history_view_t v;
    cr_assert(cd_history_copy(hist, INT64_MIN, &v));
    int64_t pending = -1, firing = -1, rollback = -1;
    for (size_t k = 0; k < v.nmarks; k++) {
        const cd_history_mark_t *m = &v.marks[k];
        if (m->rule != 0) continue;
        if (m->record == CD_RECORD_STATE && m->to == CD_STATE_PENDING) pending = m->t_ms;
        if (m->record == CD_RECORD_STATE && m->to == CD_STATE_FIRING) firing = m->t_ms;
        if (m->record == CD_RECORD_VERDICT && m->verdict == CD_VERDICT_ROLLBACK) rollback = m->t_ms;
    }
    cr_assert_gt(pending, T0 + 10000);
    cr_expect_eq(firing, pending + 2000, "`for` 2s");
    cr_expect_eq(rollback, firing);
    cr_expect(strstr(v.marks[v.nmarks - 1].reason, "canary error-rate") != NULL, "%s",
              v.marks[v.nmarks - 1].reason);
    int edges = 0;
    /* the points agree, from the records' exact times on (a state change
     * starts a point at its evaluation) */
    for (size_t k = 0; k < v.npoints[0]; k++) {
        const cd_history_point_t *p = &v.points[0][k];
        int want = p->t_ms < pending  ? CD_STATE_INACTIVE
                   : p->t_ms < firing ? CD_STATE_PENDING
                                      : CD_STATE_FIRING;
        cr_expect_eq(p->state, want, "point at +%lld ms", (long long)(p->t_ms - T0));
        if (p->state != CD_STATE_INACTIVE) cr_expect(p->flags & CD_HP_BREACH);
        if (p->t_ms == pending || p->t_ms == firing) {
            cr_expect(p->flags & CD_HP_EDGE);
            edges++;
        }
    }
    cr_expect_eq(edges, 2, "no point at the pending or the firing record's time");
    cr_expect_eq(v.verdicts[v.nverdicts - 1].verdict, CD_VERDICT_ROLLBACK);
    cr_expect_eq(v.verdicts[v.nverdicts - 1].t_ms, rollback);
    cd_history_view_free(&v);
}

Test(history, bounded_ring_keeps_the_newest_and_since_filters)
{
    cd_history_t *h = cd_history_new(cfg->rules, 1, 5, 3);
    cr_assert_not_null(h);
    for (int s = 1; s <= 8; s++) {
        cd_history_point_t p = {.t_ms = s * 1000, .canary = (float)s};
        cd_history_add_point(h, 0, &p);
        cd_verdict_t rec = {.record = CD_RECORD_VERDICT, .time_ms = s * 1000, .rule = NULL};
        snprintf(rec.reason, sizeof rec.reason, "record %d", s);
        cd_history_record(h, &rec);
    }
    cd_history_set_verdict(h, 1000, CD_VERDICT_ANALYZING);
    cd_history_set_verdict(h, 2000, CD_VERDICT_HEALTHY);
    cd_history_set_verdict(h, 3000, CD_VERDICT_HEALTHY); /* no change: not kept */
    cd_history_set_verdict(h, 5000, CD_VERDICT_ROLLBACK);

    cd_history_view_t v;
    cr_assert(cd_history_copy(h, INT64_MIN, &v));
    cr_assert_eq(v.npoints[0], 5);
    for (int k = 0; k < 5; k++)
        cr_expect_eq(v.points[0][k].t_ms, (k + 4) * 1000);
    cr_assert_eq(v.nmarks, 3);
    cr_expect_str_eq(v.marks[0].reason, "record 6");
    cr_expect_eq(v.marks[0].rule, -1);
    cr_expect_eq(v.nverdicts, 3);
    cd_history_view_free(&v);

    cr_assert(cd_history_copy(h, 6000, &v));
    cr_assert_eq(v.npoints[0], 2);
    cr_expect_eq(v.points[0][0].t_ms, 7000);
    cr_expect_eq(v.nmarks, 2);
    /* the verdict in effect at since comes first */
    cr_assert_eq(v.nverdicts, 1);
    cr_expect_eq(v.verdicts[0].verdict, CD_VERDICT_ROLLBACK);
    cd_history_view_free(&v);

    cr_assert(cd_history_copy(h, 2500, &v));
    cr_assert_eq(v.nverdicts, 2);
    cr_expect_eq(v.verdicts[0].verdict, CD_VERDICT_HEALTHY);
    cd_history_view_free(&v);
    cd_history_destroy(h);
}
