/*
 * test_history_concurrency.c - the charts' history (agent/report/history.c) as the
 * live agent uses it: the evaluating thread samples every evaluation (the
 * pipeline's eval hook) and keeps every record, while HTTP threads copy it
 * out; also run under TSan (ctest -R concurrency).
 *
 * One thread ingests events and advances a lazy pipeline on a 10 ms grid
 * over 200 seconds (a bounded ring of 60 points per rule, 16 marks); two
 * reader threads copy the history again and again, with and without since,
 * and check every copy: points in strictly increasing time, at most the
 * ring's capacity, all after since, marks and verdict changes in time
 * order. At the end: exactly 60 points per rule, the newest at the last
 * evaluated boundary.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../pipeline_fixture.h"
#include "canaryd/config.h"
#include "canaryd/history.h"
#include "canaryd/pipeline.h"

#define T0 1795780800000LL /* 2026-11-27T12:00:00.000Z */
#define SECONDS 200
#define RING 60
#define MARKS 16

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},"
    " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"5s\","
    "  \"max_future_skew\": \"10s\", \"slack\": \"2s\"},"
    " \"rules\": [{\"name\": \"error-rate\", \"kind\": \"relative\","
    "  \"description\": \"Roll back.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"denominator\": [\"REQUEST_COMPLETED\"], \"op\": \">\", \"factor\": 2, \"floor\": 0.01,"
    "  \"window\": \"5s\", \"for\": \"1s\", \"resolve_for\": \"1s\","
    "  \"min_samples\": {\"canary\": 10, \"stable\": 10}, \"action\": \"alert\"},"
    " {\"name\": \"errors\", \"kind\": \"threshold\", \"description\": \"Alert.\","
    "  \"numerator\": [\"ERROR_OCCURRED\"], \"scope\": \"canary\", \"op\": \">\","
    "  \"threshold\": 3, \"window\": \"2s\", \"for\": \"0s\", \"resolve_for\": \"1s\","
    "  \"action\": \"alert\"}]}";

static cd_history_t *hist;
static atomic_bool writing;
static atomic_long copies;

static void on_record(const cd_verdict_t *v, void *opaque)
{
    cd_history_record(opaque, v);
}

static void event(cd_pipeline_t *p, const char *type, const char *cohort, int64_t t)
{
    char buf[200];
    int n =
        snprintf(buf, sizeof buf, "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\"}",
                 type, (long long)t, cohort);
    cd_pipeline_ingest(p, buf, (size_t)n, 0);
}

static void *reader(void *arg)
{
    long id = (long)arg;
    for (long k = 0; atomic_load(&writing) || k < 10; k++) {
        cd_history_view_t v;
        int64_t since = (k + id) % 3 == 0 ? INT64_MIN : T0 + (k % SECONDS) * 1000;
        cr_assert(cd_history_copy(hist, since, &v));
        cr_assert_eq(v.nrules, 2);
        for (int i = 0; i < v.nrules; i++) {
            cr_assert_leq(v.npoints[i], (size_t)RING);
            for (size_t j = 0; j < v.npoints[i]; j++) {
                cr_assert_gt(v.points[i][j].t_ms, since);
                if (j) cr_assert_gt(v.points[i][j].t_ms, v.points[i][j - 1].t_ms);
            }
        }
        cr_assert_leq(v.nmarks, (size_t)MARKS);
        for (size_t j = 1; j < v.nmarks; j++)
            cr_assert_geq(v.marks[j].t_ms, v.marks[j - 1].t_ms);
        for (size_t j = 1; j < v.nverdicts; j++)
            cr_assert_gt(v.verdicts[j].t_ms, v.verdicts[j - 1].t_ms);
        cd_history_view_free(&v);
        atomic_fetch_add(&copies, 1);
    }
    return NULL;
}

Test(history_concurrency, readers_while_the_clock_samples)
{
    cd_config_t *cfg = fx_config(CONFIG);
    cfg->eval_interval_ms = 10; /* the live grid */
    hist = cd_history_new(cfg->rules, cfg->nrules, RING, MARKS);
    cr_assert_not_null(hist);
    cd_pipeline_t *p = fx_pipeline(cfg, 10000, 1, on_record, hist);
    cd_pipeline_set_eval_hook(p, cd_history_sample, hist);
    cd_pipeline_set_lazy(p, true);
    cd_pipeline_begin(p, T0);
    cd_pipeline_advance(p, T0);

    atomic_store(&writing, true);
    pthread_t r[2];
    for (long i = 0; i < 2; i++)
        pthread_create(&r[i], NULL, reader, (void *)i);
    int64_t now = T0;
    for (int s = 0; s < SECONDS; s++) {
        /* errors come and go every 20 s: states and records change */
        int errs = (s / 20) % 2 ? 6 : 0;
        for (int k = 0; k < 20; k++) {
            event(p, "REQUEST_COMPLETED", "canary", T0 + s * 1000 + k * 50);
            event(p, "REQUEST_COMPLETED", "stable", T0 + s * 1000 + k * 50 + 1);
        }
        for (int k = 0; k < errs; k++)
            event(p, "ERROR_OCCURRED", "canary", T0 + s * 1000 + 500 + k);
        for (int step = 0; step < 100; step++) {
            now += 10;
            cd_pipeline_advance(p, now);
        }
    }
    atomic_store(&writing, false);
    for (int i = 0; i < 2; i++)
        pthread_join(r[i], NULL);
    cr_assert_gt(atomic_load(&copies), 20);

    cd_history_view_t v;
    cr_assert(cd_history_copy(hist, INT64_MIN, &v));
    for (int i = 0; i < v.nrules; i++) {
        cr_assert_eq(v.npoints[i], (size_t)RING);
        cr_assert_eq(v.points[i][RING - 1].t_ms, cd_pipeline_last_eval(p));
    }
    cr_assert_eq(v.nmarks, (size_t)MARKS);
    cd_history_view_free(&v);
    cd_pipeline_destroy(p);
    cd_history_destroy(hist);
    cd_config_free(cfg);
}
