/*
 * bench_bad_input.c - throughput of bad input beside good input, T threads
 * ingesting into one pipeline as the Kafka workers do.
 *
 *   bash tools/build && build/release/bench_bad_input [T [N]]   (T 2, N 500000 per thread)
 *
 * Three runs in this process, each the best of 3 by wall time, T threads of
 * N events each (every thread its own stripe), log lines to /dev/null:
 *   good:        valid events (cd_pipeline_ingest: decode + count);
 *   bad:         100 % garbage (cd_pipeline_ingest: decode fails, counted,
 *                the sampled log line decided by the per-reason atomic gate);
 *   bad, locked: the same garbage plus what the bad-input path did before
 *                the gate on every event: two snprintf, the escaped sample
 *                and cd_log_ratelimited's global mutex and key lookup (its
 *                own cost includes the gate's, a few ns).
 * Prints a markdown table with events/s and the ratio to good in the same
 * run: on a loaded machine compare ratios, not absolute figures.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"
#include "canaryd/config.h"
#include "canaryd/log.h"
#include "canaryd/pipeline.h"

#define T0 INT64_C(1795780800000) /* 2026-11-27T12:00:00Z */

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"],"
    "  \"numeric_fields\": {\"latency_ms\": \"data.latency_ms\"}},"
    " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\","
    "  \"description\": \"Alert.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"scope\": \"canary\", \"op\": \">\", \"threshold\": 1000000000, \"window\": \"30s\","
    "  \"for\": \"0s\", \"resolve_for\": \"1s\", \"action\": \"alert\"}]}";

static const char GOOD[] =
    "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:00.250Z\","
    "\"service\":\"checkout\",\"cohort\":\"canary\",\"version\":\"2.5.0\","
    "\"data\":{\"path\":\"/api/v1/orders\",\"status\":200,\"latency_ms\":41.5,"
    "\"region\":\"eu-west-1\"}}";
/* An HTML error page where JSON was expected: invalid JSON, ~200 bytes. */
static const char BAD[] =
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
    "Gateway</h1></center><hr><center>nginx</center></body></html> <!-- a padding comment to "
    "reach a realistic size -->";

typedef enum { GOOD_RUN, BAD_RUN, BAD_LOCKED } mode_t_;

static cd_pipeline_t *pipe_;
static mode_t_ mode;
static long per_thread;
static atomic_ullong old_count;

/* The bad-input logging work the gate removed from the per-event path. */
static void old_path(const char *buf, size_t len)
{
    char what[64], key[64], esc[CD_LOG_ESCAPED_MAX];
    atomic_fetch_add_explicit(&old_count, 1, memory_order_relaxed);
    snprintf(what, sizeof(what), "bad input (%s)", "invalid_json");
    snprintf(key, sizeof(key), "bad_input:%s", "invalid_json");
    cd_log_escape(buf, len, esc, sizeof(esc));
    cd_log_ratelimited(key, CD_LOG_WARN, "%s: %s", what, esc);
}

static void *worker(void *arg)
{
    int stripe = (int)(intptr_t)arg;
    for (long i = 0; i < per_thread; i++) {
        if (mode == GOOD_RUN) {
            cd_pipeline_ingest(pipe_, GOOD, sizeof(GOOD) - 1, stripe);
        } else {
            cd_pipeline_ingest(pipe_, BAD, sizeof(BAD) - 1, stripe);
            if (mode == BAD_LOCKED) old_path(BAD, sizeof(BAD) - 1);
        }
    }
    return NULL;
}

/* Best of 3 runs: events per second over all threads. */
static double run(mode_t_ m, int nthreads)
{
    double best = 0;
    mode = m;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t th[64];
        double t = now_s();
        for (int i = 0; i < nthreads; i++)
            pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
        for (int i = 0; i < nthreads; i++)
            pthread_join(th[i], NULL);
        double rate = (double)per_thread * nthreads / (now_s() - t);
        if (rate > best) best = rate;
    }
    return best;
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 2;
    per_thread = argc > 2 ? atol(argv[2]) : 500000;
    if (nthreads < 1 || nthreads > 64 || per_thread < 1) {
        fprintf(stderr, "usage: bench_bad_input [THREADS (1-64) [EVENTS_PER_THREAD]]\n");
        return 2;
    }
    cd_diag_t diag;
    cd_diag_init(&diag);
    cd_config_t *cfg = cd_config_parse(CONFIG, sizeof(CONFIG) - 1, NULL, &diag);
    if (!cfg) {
        fprintf(stderr, "config: %s\n", diag.text);
        return 1;
    }
    char err[512] = "";
    pipe_ = cd_pipeline_new(cfg, cfg->max_future_skew_ms, nthreads, NULL, NULL, err, sizeof err);
    if (!pipe_) {
        fprintf(stderr, "pipeline: %s\n", err);
        return 1;
    }
    /* Evaluated past the events' time (12:00:00.250), as the live clock has
     * when events arrive: each good event also counts as after_eval. */
    cd_pipeline_advance(pipe_, T0);
    cd_pipeline_advance(pipe_, T0 + 1000);
    FILE *devnull = fopen("/dev/null", "w");
    cd_log_set_stream(devnull);

    double good = run(GOOD_RUN, nthreads);
    double bad = run(BAD_RUN, nthreads);
    double locked = run(BAD_LOCKED, nthreads);
    cd_pipeline_stats_t st;
    cd_pipeline_stats(pipe_, &st);

    printf("%d threads, %ld events each, best of 3 (wall time)\n\n", nthreads, per_thread);
    printf("| input | events/s | vs good, same run |\n| --- | ---: | ---: |\n");
    printf("| good | %.0f | 1.00 |\n", good);
    printf("| bad (sample gate) | %.0f | %.2f |\n", bad, bad / good);
    printf("| bad, former locked log path | %.0f | %.2f |\n", locked, locked / good);
    printf("\ncounted: %llu accepted, %llu bad (exact: %s)\n", (unsigned long long)st.accepted,
           (unsigned long long)st.bad_total,
           st.accepted == 3ull * nthreads * per_thread &&
                   st.bad_total == 6ull * nthreads * per_thread
               ? "yes"
               : "NO");
    cd_log_set_stream(NULL);
    fclose(devnull);
    cd_pipeline_destroy(pipe_);
    cd_config_free(cfg);
    return 0;
}
