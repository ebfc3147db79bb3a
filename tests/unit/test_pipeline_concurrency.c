/*
 * test_pipeline_concurrency.c - the pipeline's ingest path from several
 * threads while another thread advances its clock (lazy, as the live agent
 * does); also run under TSan (ctest -R concurrency).
 *
 * Four ingest threads decode and count 20,000 events each through
 * cd_pipeline_ingest, on stripes 0, 1, 2 and 2 (two threads share a stripe of
 * the pipeline's statistics and of the window), while a clock thread advances
 * the pipeline over the events' seconds again and again. The config has a
 * percentile rule with a 5 s window and a threshold rule with a 30 s one, so
 * the histograms live in their own, shorter ring (window.c, "Histogram
 * ring"). At the end the statistics (accepted, by type and cohort, first and
 * last event time) and the window's counters and histograms must hold
 * exactly what the threads generated.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../pipeline_fixture.h"
#include "canaryd/config.h"
#include "canaryd/pipeline.h"
#include "canaryd/window.h"

#define T0 1795780800000LL /* 2026-11-27T12:00:00.000Z */
#define NTHREADS 4
#define PER_THREAD 20000
#define SPREAD_MS 3000 /* event times in [T0, T0 + SPREAD_MS) */

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"],"
    "  \"numeric_fields\": {\"latency_ms\": \"data.latency_ms\"}},"
    " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"5s\","
    "  \"max_future_skew\": \"10s\", \"slack\": \"2s\"},"
    " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\","
    "  \"description\": \"Alert: canary errors.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"scope\": \"canary\", \"op\": \">\", \"threshold\": 1000000, \"window\": \"30s\","
    "  \"for\": \"0s\", \"resolve_for\": \"1s\", \"action\": \"alert\"},"
    " {\"name\": \"p99\", \"kind\": \"percentile\", \"description\": \"Alert: slow canary.\","
    "  \"field\": \"latency_ms\", \"quantile\": 0.99, \"op\": \">\", \"factor\": 1000,"
    "  \"window\": \"5s\", \"for\": \"0s\", \"resolve_for\": \"1s\","
    "  \"min_samples\": {\"canary\": 1, \"stable\": 1}, \"action\": \"alert\"}]}";

static const char *TYPES[3] = {"REQUEST_COMPLETED", "ERROR_OCCURRED", "SOMETHING_ELSE"};

typedef struct writer {
    cd_pipeline_t *p;
    int id, stripe;
    /* what this thread generated, accepted by the decoder */
    uint64_t by_type[3][CD_NCOHORTS];
    uint64_t latencies[CD_NCOHORTS];
    int64_t first, last;
    int bad;
} writer_t;

static atomic_bool writers_done;

static void *write_events(void *arg)
{
    writer_t *w = arg;
    w->first = INT64_MAX;
    w->last = INT64_MIN;
    for (int i = 0; i < PER_THREAD; i++) {
        int type = (i + w->id) % 3;
        cd_cohort_t c = (i / 3 + w->id) % 4 == 0 ? CD_COHORT_CANARY : CD_COHORT_STABLE;
        int64_t ts = T0 + (i * 7 + w->id * 131) % SPREAD_MS;
        bool lat = type == 0;
        char buf[256];
        int n = snprintf(buf, sizeof buf,
                         "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\"%s}",
                         TYPES[type], (long long)ts, c == CD_COHORT_CANARY ? "canary" : "stable",
                         lat ? ",\"data\":{\"latency_ms\":12.5}" : "");
        if (cd_pipeline_ingest(w->p, buf, (size_t)n, w->stripe) != CD_BAD_NONE) {
            w->bad++;
            continue;
        }
        w->by_type[type][c]++;
        if (lat) w->latencies[c]++;
        if (ts < w->first) w->first = ts;
        if (ts > w->last) w->last = ts;
    }
    return NULL;
}

Test(pipeline_concurrency, four_ingesters_and_a_clock_count_exactly)
{
    cd_config_t *cfg = fx_config(CONFIG);
    cd_pipeline_t *p = fx_pipeline(cfg, cfg->max_future_skew_ms, 3, NULL, NULL);
    cd_pipeline_set_lazy(p, true);
    cd_pipeline_advance(p, T0);

    writer_t w[NTHREADS];
    pthread_t th[NTHREADS], clk;
    static const int stripes[NTHREADS] = {0, 1, 2, 2};
    atomic_store(&writers_done, false);
    fx_clock_t ck = {p, T0, T0 + SPREAD_MS, &writers_done};
    cr_assert_eq(pthread_create(&clk, NULL, fx_clock_run, &ck), 0);
    for (int i = 0; i < NTHREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].p = p;
        w[i].id = i;
        w[i].stripe = stripes[i];
        cr_assert_eq(pthread_create(&th[i], NULL, write_events, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&writers_done, true);
    pthread_join(clk, NULL);
    cd_pipeline_advance(p, T0 + SPREAD_MS + 1000);

    uint64_t want[3][CD_NCOHORTS] = {{0}}, lat[CD_NCOHORTS] = {0}, total = 0;
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (int i = 0; i < NTHREADS; i++) {
        cr_assert_eq(w[i].bad, 0);
        for (int t = 0; t < 3; t++)
            for (int c = 0; c < CD_NCOHORTS; c++) {
                want[t][c] += w[i].by_type[t][c];
                total += w[i].by_type[t][c];
            }
        for (int c = 0; c < CD_NCOHORTS; c++)
            lat[c] += w[i].latencies[c];
        if (w[i].first < first) first = w[i].first;
        if (w[i].last > last) last = w[i].last;
    }
    cr_assert_eq(total, (uint64_t)NTHREADS * PER_THREAD);

    cd_pipeline_stats_t st;
    cd_pipeline_stats(p, &st);
    cr_assert_eq(st.accepted, total);
    cr_assert_eq(st.late, 0);
    cr_assert_eq(st.future, 0);
    cr_assert_eq(st.first_ms, first);
    cr_assert_eq(st.last_ms, last);
    for (int c = 0; c < CD_NCOHORTS; c++) {
        cr_assert_eq(st.by_type[0][c], want[0][c]);
        cr_assert_eq(st.by_type[1][c], want[1][c]);
        cr_assert_eq(st.by_type[CD_PIPELINE_OTHER][c], want[2][c]);
    }

    /* the window holds the same: counters over their 30 s, histograms over 5 s */
    cd_window_t *win = cd_pipeline_window(p);
    int64_t end = T0 + SPREAD_MS + 1000;
    for (int c = 0; c < CD_NCOHORTS; c++) {
        cr_assert_eq(cd_window_sum(win, 0, (cd_cohort_t)c, end, 30000), want[0][c]);
        cr_assert_eq(cd_window_sum(win, 1, (cd_cohort_t)c, end, 30000), want[1][c]);
        uint64_t n = 0;
        double q = cd_window_quantile(win, 0, (cd_cohort_t)c, end, 5000, 0.5, &n);
        cr_assert_eq(n, lat[c]);
        cr_assert(q > 12.3 && q < 12.7, "median %f", q);
    }
    cd_pipeline_destroy(p);
    cd_config_free(cfg);
}
