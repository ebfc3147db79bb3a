/*
 * test_service_concurrency.c - the service (events.service) on the
 * pipeline's concurrent ingest path; also run under TSan (ctest -R
 * concurrency, tests/tsan's stand-in for Criterion).
 *
 *  - filter: four threads ingest 20,000 events each through
 *    cd_pipeline_ingest, a quarter of them of checkout's canary, a quarter
 *    of its stable fleet, a quarter of another service, a quarter naming
 *    none, while a clock thread advances the pipeline (lazy, as live mode):
 *    accepted, other_service and no_service must be exact (they are counted
 *    per decoding thread's stripe), and every record names checkout.
 *  - learning: without events.service, four threads race to be the first
 *    canary event naming a service (each its own name) while the clock
 *    thread reads the service for its records: exactly one name is learnt,
 *    it never changes, and no record carries another (the CAS / release
 *    store / acquire load protocol of agent/core/pipeline.c).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../pipeline_fixture.h"
#include "canaryd/config.h"
#include "canaryd/log.h"
#include "canaryd/pipeline.h"

#define T0 1795780800000LL /* 2026-11-27T12:00:00.000Z */
#define NTHREADS 4
#define PER_THREAD 20000
#define SPREAD_MS 3000

#define CONFIG(events_extra)                                                                       \
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]" events_extra "},"       \
    " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"5s\","                         \
    "  \"max_future_skew\": \"10s\", \"slack\": \"2s\"},"                                          \
    " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\","                                 \
    "  \"numerator\": [\"ERROR_OCCURRED\"], \"scope\": \"canary\", \"op\": \">\","                 \
    "  \"threshold\": 0, \"window\": \"30s\", \"for\": \"0s\", \"resolve_for\": \"1s\","           \
    "  \"action\": \"alert\"}]}"

typedef struct writer {
    cd_pipeline_t *p;
    int id;
    bool own_names; /* learning: canary events of service "svc-<id>" */
    uint64_t accepted, other, none, bad;
} writer_t;

/* Records, seen on the clock thread only. */
typedef struct seen {
    uint64_t records, wrong;
    char first[64]; /* the first non-empty service of a record */
} seen_t;

static atomic_bool writers_done;
static const char *want_service; /* filter: every record's service */

static void on_record(const cd_verdict_t *v, void *opaque)
{
    seen_t *s = opaque;
    s->records++;
    const char *svc = v->service ? v->service : "(null)";
    if (want_service) {
        if (strcmp(svc, want_service) != 0) s->wrong++;
        return;
    }
    if (!*svc) return; /* before it was learnt */
    if (!s->first[0])
        snprintf(s->first, sizeof s->first, "%s", svc);
    else if (strcmp(s->first, svc) != 0)
        s->wrong++;
}

static void *write_events(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        int64_t ts = T0 + (i * 7 + w->id * 131) % SPREAD_MS;
        const char *type = i % 5 == 0 ? "ERROR_OCCURRED" : "REQUEST_COMPLETED";
        char svc[64], buf[256];
        int kind = (i + w->id) % 4; /* 0 canary, 1 stable, 2 search, 3 none */
        if (w->own_names)
            snprintf(svc, sizeof svc, ",\"service\":\"svc-%d\"", w->id);
        else if (kind <= 1)
            snprintf(svc, sizeof svc, ",\"service\":\"checkout\"");
        else if (kind == 2)
            snprintf(svc, sizeof svc, ",\"service\":\"search\"");
        else
            svc[0] = '\0';
        int n = snprintf(buf, sizeof buf,
                         "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\"%s}", type,
                         (long long)ts, w->own_names || kind != 1 ? "canary" : "stable", svc);
        cd_bad_reason_t r = cd_pipeline_ingest(w->p, buf, (size_t)n, w->id);
        if (r == CD_BAD_NONE)
            w->accepted++;
        else if (r == CD_DECODE_OTHER_SERVICE && svc[0])
            w->other++;
        else if (r == CD_DECODE_OTHER_SERVICE)
            w->none++;
        else
            w->bad++;
    }
    return NULL;
}

/* Runs the writers and the clock over a pipeline of config text; fills w. */
static cd_pipeline_t *run(const char *text, cd_config_t **cfg, writer_t *w, bool own_names,
                          seen_t *seen)
{
    cd_log_set_level(CD_LOG_ERROR); /* the no_service samples are the point, not the output */
    *cfg = fx_config(text);
    memset(seen, 0, sizeof *seen);
    cd_pipeline_t *p = fx_pipeline(*cfg, (*cfg)->max_future_skew_ms, NTHREADS, on_record, seen);
    cd_pipeline_set_lazy(p, true);
    cd_pipeline_advance(p, T0);
    pthread_t th[NTHREADS], clk;
    atomic_store(&writers_done, false);
    fx_clock_t ck = {p, T0, T0 + SPREAD_MS, &writers_done};
    cr_assert_eq(pthread_create(&clk, NULL, fx_clock_run, &ck), 0);
    for (int i = 0; i < NTHREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].p = p;
        w[i].id = i;
        w[i].own_names = own_names;
        cr_assert_eq(pthread_create(&th[i], NULL, write_events, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&writers_done, true);
    pthread_join(clk, NULL);
    cd_pipeline_advance(p, T0 + SPREAD_MS + 2000);
    return p;
}

Test(service_concurrency, four_ingesters_filter_and_count_exactly)
{
    cd_config_t *cfg;
    writer_t w[NTHREADS];
    seen_t seen;
    want_service = "checkout";
    cd_pipeline_t *p = run(CONFIG(", \"service\": \"checkout\""), &cfg, w, false, &seen);

    uint64_t accepted = 0, other = 0, none = 0;
    for (int i = 0; i < NTHREADS; i++) {
        cr_assert_eq(w[i].bad, 0);
        accepted += w[i].accepted;
        other += w[i].other;
        none += w[i].none;
    }
    cr_assert_eq(accepted, NTHREADS * PER_THREAD / 2);
    cr_assert_eq(other, NTHREADS * PER_THREAD / 4);
    cr_assert_eq(none, NTHREADS * PER_THREAD / 4);
    cd_pipeline_stats_t s;
    cd_pipeline_stats(p, &s);
    cr_assert_eq(s.accepted, accepted);
    cr_assert_eq(s.other_service, other);
    cr_assert_eq(s.no_service, none);
    cr_assert_eq(s.bad_total, 0);
    cr_assert_eq(s.late + s.future, 0);
    cr_assert_gt(seen.records, 0);
    cr_assert_eq(seen.wrong, 0);
    cr_assert(strcmp(cd_pipeline_service(p), "checkout") == 0);
    want_service = NULL;
    cd_pipeline_destroy(p);
    cd_config_free(cfg);
}

Test(service_concurrency, racing_ingesters_learn_exactly_one_service)
{
    cd_config_t *cfg;
    writer_t w[NTHREADS];
    seen_t seen;
    want_service = NULL;
    cd_pipeline_t *p = run(CONFIG(""), &cfg, w, true, &seen);

    uint64_t accepted = 0;
    for (int i = 0; i < NTHREADS; i++) {
        cr_assert_eq(w[i].bad + w[i].other + w[i].none, 0);
        accepted += w[i].accepted;
    }
    cr_assert_eq(accepted, NTHREADS * PER_THREAD, "without events.service every event counts");
    const char *learnt = cd_pipeline_service(p);
    int which = -1;
    for (int i = 0; i < NTHREADS; i++) {
        char name[16];
        snprintf(name, sizeof name, "svc-%d", i);
        if (strcmp(learnt, name) == 0) which = i;
    }
    cr_assert_geq(which, 0, "learnt \"%s\"", learnt);
    cr_assert_eq(seen.wrong, 0);
    /* records after the learning carry it (an ALERT at least: canary errors) */
    cr_assert(seen.first[0] != '\0');
    cr_assert(strcmp(seen.first, learnt) == 0);
    cd_pipeline_destroy(p);
    cd_config_free(cfg);
}
