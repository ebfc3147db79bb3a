/*
 * test_window_counts.c - each rule's window counts closed at a whole second
 * (agent/report/window_counts.c, served by GET /api/v1/windows): exact
 * counts per event type and cohort over [S - window, S) for a ratio rule,
 * a rule whose numerator is also in its denominator (listed once), and a
 * percentile rule's observations over its own shorter window; the same
 * numbers from two pipelines fed the same events in another order and
 * evaluated on other grids (10 ms and 1 s), read at any millisecond of
 * their clocks; a second after the watermark is refused (not judged yet),
 * and so is one whose window the ring no longer holds, the boundary being
 * exactly the answer's oldest.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../pipeline_fixture.h"
#include "canaryd/config.h"
#include "canaryd/pipeline.h"
#include "canaryd/window_counts.h"

#define T0 1795780800000LL /* 2026-11-27T12:00:00.000Z */

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\", \"PAYMENT_COMPLETED\","
    "  \"PAYMENT_FAILED\"], \"numeric_fields\": {\"latency_ms\": \"data.latency_ms\"}},"
    " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"5s\","
    "  \"max_future_skew\": \"2m\", \"slack\": \"20s\"},"
    " \"verdicts\": {\"min_canary_events\": 0},"
    " \"rules\": [{\"name\": \"error-rate\", \"kind\": \"relative\","
    "  \"description\": \"Roll back.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"denominator\": [\"REQUEST_COMPLETED\"], \"op\": \">\", \"factor\": 2, \"floor\": 0.01,"
    "  \"window\": \"10s\", \"action\": \"rollback\"},"
    " {\"name\": \"payment-failures\", \"kind\": \"threshold\", \"description\": \"Alert.\","
    "  \"numerator\": [\"PAYMENT_FAILED\"], \"denominator\": [\"PAYMENT_COMPLETED\", \"PAYMENT_FAILED\"],"
    "  \"op\": \">\", \"threshold\": 0.5, \"window\": \"8s\", \"action\": \"alert\"},"
    " {\"name\": \"latency-p99\", \"kind\": \"percentile\", \"description\": \"Alert.\","
    "  \"field\": \"latency_ms\", \"quantile\": 0.99, \"op\": \">\", \"factor\": 1.5,"
    "  \"window\": \"5s\", \"action\": \"alert\"}]}";

static cd_config_t *cfg;

static void on_record(const cd_verdict_t *v, void *opaque)
{
    (void)v;
    (void)opaque;
}

static cd_config_t *load(int64_t eval_interval_ms)
{
    cd_config_t *c = fx_config(CONFIG);
    c->eval_interval_ms = eval_interval_ms;
    return c;
}

static cd_pipeline_t *pipeline(const cd_config_t *c)
{
    cd_pipeline_t *p = fx_pipeline(c, 5000, 1, on_record, NULL);
    return p;
}

static void event(cd_pipeline_t *p, const char *type, const char *cohort, int64_t t, int lat)
{
    char line[256];
    int n = snprintf(line, sizeof line,
                     "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\","
                     "\"data\":{\"latency_ms\":%d}}",
                     type, (long long)t, cohort, lat);
    cr_assert_eq(cd_pipeline_ingest(p, line, (size_t)n, 0), CD_BAD_NONE, "%s", line);
}

/* Second s's events (s = 0..29), in order or reversed within the second:
 * canary s + 1 requests (latency each), an error when s % 3 == 0, 2
 * payments completed and s % 2 failed; stable 10 requests (latency each),
 * 1 error, 4 payments completed and 1 failed. */
static void second(cd_pipeline_t *p, int s, bool reversed)
{
    int64_t t = T0 + s * 1000LL;
    typedef struct {
        const char *type, *cohort;
    } ev_t;
    ev_t ev[64];
    int n = 0;
    for (int k = 0; k < s + 1; k++)
        ev[n++] = (ev_t){"REQUEST_COMPLETED", "canary"};
    if (s % 3 == 0) ev[n++] = (ev_t){"ERROR_OCCURRED", "canary"};
    for (int k = 0; k < 2; k++)
        ev[n++] = (ev_t){"PAYMENT_COMPLETED", "canary"};
    if (s % 2) ev[n++] = (ev_t){"PAYMENT_FAILED", "canary"};
    for (int k = 0; k < 10; k++)
        ev[n++] = (ev_t){"REQUEST_COMPLETED", "stable"};
    ev[n++] = (ev_t){"ERROR_OCCURRED", "stable"};
    for (int k = 0; k < 4; k++)
        ev[n++] = (ev_t){"PAYMENT_COMPLETED", "stable"};
    ev[n++] = (ev_t){"PAYMENT_FAILED", "stable"};
    for (int k = 0; k < n; k++) {
        int i = reversed ? n - 1 - k : k;
        /* only requests carry a latency; the others' 0 must not count */
        bool req = strcmp(ev[i].type, "REQUEST_COMPLETED") == 0;
        if (req)
            event(p, ev[i].type, ev[i].cohort, t + i * 10, 20 + i);
        else {
            char line[256];
            int m = snprintf(line, sizeof line,
                             "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\"}",
                             ev[i].type, (long long)(t + i * 10), ev[i].cohort);
            cr_assert_eq(cd_pipeline_ingest(p, line, (size_t)m, 0), CD_BAD_NONE);
        }
    }
}

static const cd_window_counts_rule_t *rule(const cd_window_counts_t *wc, int i)
{
    cr_assert_lt(i, wc->nrules);
    return &wc->rules[i];
}

/* count of type `name` in cohort c of rule i */
static uint64_t count(const cd_window_counts_t *wc, int i, const char *name, cd_cohort_t c)
{
    const cd_window_counts_rule_t *r = rule(wc, i);
    for (int k = 0; k < r->ntypes; k++)
        if (strcmp(cfg->type_names[r->types[k]], name) == 0) return r->count[k][c];
    cr_assert_fail("rule %d does not list %s", i, name);
    return 0;
}

TestSuite(window_counts, .timeout = 30);

Test(window_counts, exact_counts_per_rule_type_and_cohort)
{
    cfg = load(10);
    cd_pipeline_t *p = pipeline(cfg);
    cd_pipeline_begin(p, T0);
    for (int s = 0; s < 30; s++) {
        cd_pipeline_advance(p, T0 + s * 1000LL + 350);
        second(p, s, false);
    }
    cd_pipeline_advance(p, T0 + 30350);
    cd_window_counts_t wc;
    int64_t S = T0 + 20000;
    cr_assert_eq(cd_window_counts(cfg, cd_pipeline_window(p), S, T0 + 30000, &wc), CD_WC_OK);
    cr_assert_eq(wc.at_ms, S);
    cr_assert_eq(wc.nrules, 3);
    /* error-rate, 10 s: seconds 10..19 */
    cr_assert_eq(rule(&wc, 0)->window_ms, 10000);
    cr_assert_eq(rule(&wc, 0)->ntypes, 2);
    cr_assert_eq(rule(&wc, 0)->hist, -1);
    cr_assert_eq(count(&wc, 0, "ERROR_OCCURRED", CD_COHORT_CANARY), 3);      /* 12, 15, 18 */
    cr_assert_eq(count(&wc, 0, "REQUEST_COMPLETED", CD_COHORT_CANARY), 155); /* 11 + ... + 20 */
    cr_assert_eq(count(&wc, 0, "ERROR_OCCURRED", CD_COHORT_STABLE), 10);
    cr_assert_eq(count(&wc, 0, "REQUEST_COMPLETED", CD_COHORT_STABLE), 100);
    /* payment-failures, 8 s: seconds 12..19; PAYMENT_FAILED listed once */
    cr_assert_eq(rule(&wc, 1)->ntypes, 2);
    cr_assert_eq(count(&wc, 1, "PAYMENT_FAILED", CD_COHORT_CANARY), 4); /* 13, 15, 17, 19 */
    cr_assert_eq(count(&wc, 1, "PAYMENT_COMPLETED", CD_COHORT_CANARY), 16);
    cr_assert_eq(count(&wc, 1, "PAYMENT_FAILED", CD_COHORT_STABLE), 8);
    cr_assert_eq(count(&wc, 1, "PAYMENT_COMPLETED", CD_COHORT_STABLE), 32);
    /* latency-p99, 5 s: seconds 15..19, requests only */
    cr_assert_eq(rule(&wc, 2)->ntypes, 0);
    cr_assert_eq(rule(&wc, 2)->hist, 0);
    cr_assert_eq(rule(&wc, 2)->observations[CD_COHORT_CANARY], 90); /* 16 + ... + 20 */
    cr_assert_eq(rule(&wc, 2)->observations[CD_COHORT_STABLE], 50);

    /* the last second judged: 20..29 */
    S = T0 + 30000;
    cr_assert_eq(cd_window_counts(cfg, cd_pipeline_window(p), S, S, &wc), CD_WC_OK);
    cr_assert_eq(count(&wc, 0, "REQUEST_COMPLETED", CD_COHORT_CANARY), 255); /* 21 + ... + 30 */
    cr_assert_eq(count(&wc, 0, "ERROR_OCCURRED", CD_COHORT_CANARY), 3);      /* 21, 24, 27 */
    cr_assert_eq(rule(&wc, 2)->observations[CD_COHORT_CANARY], 140);       /* 26 + ... + 30 */

    /* after the watermark: refused, whatever the ring holds */
    cr_assert_eq(cd_window_counts(cfg, cd_pipeline_window(p), T0 + 31000, T0 + 30000, &wc),
                 CD_WC_NOT_JUDGED);
    cr_assert_eq(cd_window_counts(cfg, cd_pipeline_window(p), T0 + 30000, 0, &wc),
                 CD_WC_NOT_JUDGED);
    cd_pipeline_destroy(p);
    cd_config_free(cfg);
}

/* Same events, other order, other evaluation grid, other read instants:
 * the same counts at every second both have judged. */
Test(window_counts, same_events_same_counts_whatever_the_millisecond)
{
    cfg = load(10);
    cd_config_t *cfg2 = load(1000);
    cd_pipeline_t *a = pipeline(cfg), *b = pipeline(cfg2);
    cd_pipeline_begin(a, T0);
    cd_pipeline_begin(b, T0);
    int compared = 0;
    for (int s = 0; s < 30; s++) {
        cd_pipeline_advance(a, T0 + s * 1000LL + 10);
        cd_pipeline_advance(b, T0 + s * 1000LL + 990);
        second(a, s, false);
        second(b, s, true);
        if (s < 10) continue;
        /* second s is complete in both: read at a's 10 ms and b's 990 ms */
        int64_t S = T0 + s * 1000LL;
        cd_window_counts_t wa, wb;
        cr_assert_eq(cd_window_counts(cfg, cd_pipeline_window(a), S, S, &wa), CD_WC_OK);
        cr_assert_eq(cd_window_counts(cfg2, cd_pipeline_window(b), S, S, &wb), CD_WC_OK);
        cr_assert_eq(memcmp(&wa, &wb, sizeof wa), 0, "counts differ at +%d s", s);
        uint64_t want = 0; /* canary requests in [s - 10, s): seconds s-10..s-1 */
        for (int k = s - 10; k < s; k++)
            want += (uint64_t)k + 1;
        cr_assert_eq(count(&wa, 0, "REQUEST_COMPLETED", CD_COHORT_CANARY), want, "+%d s", s);
        compared++;
    }
    cr_assert_eq(compared, 20);
    cd_pipeline_destroy(a);
    cd_pipeline_destroy(b);
    cd_config_free(cfg2);
    cd_config_free(cfg);
}

/* The ring keeps slack behind the longest window; an S whose window
 * reaches before that is refused, and oldest_ms is exactly the first S
 * answered (the percentile rule reads the shorter histogram ring). */
Test(window_counts, seconds_the_ring_no_longer_holds_are_refused)
{
    cfg = load(1000);
    cd_pipeline_t *p = pipeline(cfg);
    cd_pipeline_begin(p, T0);
    for (int s = 0; s < 30; s++) {
        cd_pipeline_advance(p, T0 + s * 1000LL);
        second(p, s, false);
    }
    int64_t now = T0 + 60000;
    cd_pipeline_advance(p, now);
    cd_window_counts_t wc;
    const cd_window_t *w = cd_pipeline_window(p);
    cr_assert_eq(cd_window_counts(cfg, w, T0 + 20000, now, &wc), CD_WC_GONE);
    int64_t oldest = wc.oldest_ms;
    cr_assert_gt(oldest, T0 + 20000);
    cr_assert_leq(oldest, now);
    cr_assert_eq(oldest % 1000, 0);
    /* the counters' ring reaches 10 s (error-rate) + slack back at least */
    cr_assert_geq(oldest, cd_window_oldest(w, false) + 10000);
    cr_assert_geq(oldest, cd_window_oldest(w, true) + 5000);
    cr_assert_eq(cd_window_counts(cfg, w, oldest - 1000, now, &wc), CD_WC_GONE);
    cr_assert_eq(cd_window_counts(cfg, w, oldest, now, &wc), CD_WC_OK);
    cr_assert_eq(wc.oldest_ms, oldest);
    cd_pipeline_destroy(p);
    cd_config_free(cfg);
}
