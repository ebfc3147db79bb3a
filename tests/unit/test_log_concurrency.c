/*
 * test_log_concurrency.c - the sampled bad-input log (cd_log_gate_t behind
 * cd_pipeline_count_bad): exact sampling, and exact counts under concurrent
 * bad input; also run under TSan (ctest -R concurrency).
 *
 * The log's clock is a test clock (an atomic the test moves) and its stream
 * a temporary file, read back and parsed: each line of a reason stands for
 * itself plus its "(N similar suppressed)".
 *
 * first_five_then_one_per_10s: the rule, exactly, on one thread.
 * four_threads_of_garbage_count_exactly: four threads feed two reasons of
 * bad input while a fifth moves the log clock 10 s at a time; the pipeline's
 * counts are exact, and the lines account for every bad input exactly once.
 * (On the old code - a mutex and the key table - both pass too, slowly; the
 * point of this test is that the lock-free gate loses nothing, under TSan.)
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../pipeline_fixture.h"
#include "canaryd/config.h"
#include "canaryd/log.h"
#include "canaryd/pipeline.h"

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\"]},"
    " \"rules\": [{\"name\": \"n\", \"kind\": \"threshold\","
    "  \"description\": \"Alert.\", \"numerator\": [\"REQUEST_COMPLETED\"],"
    "  \"scope\": \"canary\", \"op\": \">\", \"threshold\": 1000000, \"window\": \"30s\","
    "  \"for\": \"0s\", \"resolve_for\": \"1s\", \"action\": \"alert\"}]}";

static atomic_llong fake_now;
static int64_t fake_clock(void)
{
    return atomic_load(&fake_now);
}

static cd_config_t *cfg;
static FILE *log_file;

static cd_pipeline_t *setup_pipeline(void)
{
    cfg = fx_config(CONFIG);
    cd_pipeline_t *p = fx_pipeline(cfg, cfg->max_future_skew_ms, 4, NULL, NULL);
    log_file = tmpfile();
    cr_assert_not_null(log_file);
    atomic_store(&fake_now, 1000000);
    cd_log_set_level(CD_LOG_INFO);
    cd_log_set_stream(log_file);
    cd_log_set_clock(fake_clock);
    cd_log_reset();
    return p;
}

static void teardown_pipeline(cd_pipeline_t *p)
{
    cd_log_set_stream(NULL);
    cd_log_set_clock(NULL);
    cd_log_reset();
    fclose(log_file);
    cd_pipeline_destroy(p);
    cd_config_free(cfg);
}

/* Lines of reason r logged so far; *stands_for gets the bad inputs they
 * account for (1 + N similar suppressed, summed). */
static int lines_of(cd_bad_reason_t r, uint64_t *stands_for, uint64_t *last_suppressed)
{
    char needle[64], line[4096];
    snprintf(needle, sizeof needle, "canaryd[warn]: bad input (%s)", cd_bad_reason_name(r));
    fflush(log_file);
    rewind(log_file);
    int n = 0;
    *stands_for = 0;
    *last_suppressed = 0;
    while (fgets(line, sizeof line, log_file)) {
        if (!strstr(line, needle)) continue;
        n++;
        const char *s = strstr(line, " similar suppressed)");
        uint64_t sup = 0;
        if (s) {
            while (s > line && s[-1] >= '0' && s[-1] <= '9') s--;
            sup = strtoull(s, NULL, 10);
        }
        *stands_for += 1 + sup;
        *last_suppressed = sup;
    }
    fseek(log_file, 0, SEEK_END);
    return n;
}

static void bad(cd_pipeline_t *p, cd_bad_reason_t r, int n)
{
    for (int i = 0; i < n; i++)
        cd_pipeline_count_bad(p, r, "\x01garbage", 8, 0);
}

Test(log_concurrency, first_five_then_one_per_10s)
{
    cd_pipeline_t *p = setup_pipeline();
    const cd_bad_reason_t r = CD_BAD_INVALID_JSON;
    uint64_t stands, last;
    bad(p, r, 20);
    cr_assert_eq(lines_of(r, &stands, &last), 5);
    cr_assert_eq(last, 0);
    atomic_fetch_add(&fake_now, 9999); /* 1 ms short of the interval */
    bad(p, r, 1);
    cr_assert_eq(lines_of(r, &stands, &last), 5);
    atomic_fetch_add(&fake_now, 1);
    bad(p, r, 3);
    cr_assert_eq(lines_of(r, &stands, &last), 6);
    cr_assert_eq(last, 16, "the 6th line carries the 15 + 1 suppressed, not %llu",
                 (unsigned long long)last);
    atomic_fetch_add(&fake_now, 10000);
    bad(p, r, 1);
    cr_assert_eq(lines_of(r, &stands, &last), 7);
    cr_assert_eq(last, 2);
    cr_assert_eq(stands, 25);
    /* another reason has its own burst */
    bad(p, CD_BAD_NUL_BYTE, 7);
    cr_assert_eq(lines_of(CD_BAD_NUL_BYTE, &stands, &last), 5);
    cd_pipeline_stats_t st;
    cd_pipeline_stats(p, &st);
    cr_assert_eq(st.bad[r], 25);
    cr_assert_eq(st.bad[CD_BAD_NUL_BYTE], 7);
    teardown_pipeline(p);
}

#define NTHREADS 4
#define PER_THREAD 50000
#define STEPS 20

static cd_pipeline_t *shared;
static atomic_int running;

static void *garbage(void *arg)
{
    int id = (int)(intptr_t)arg;
    cd_bad_reason_t r = id % 2 ? CD_BAD_INVALID_JSON : CD_BAD_INVALID_UTF8;
    bad(shared, r, PER_THREAD);
    atomic_fetch_sub(&running, 1);
    return NULL;
}

Test(log_concurrency, four_threads_of_garbage_count_exactly, .timeout = 120)
{
    shared = setup_pipeline();
    atomic_store(&running, NTHREADS);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, garbage, (void *)(intptr_t)i), 0);
    /* the clock moves one interval at a time while they run (bounded) */
    int steps = 0;
    while (atomic_load(&running) > 0 && steps < STEPS) {
        atomic_fetch_add(&fake_now, CD_LOG_INTERVAL_MS);
        steps++;
        sched_yield();
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    /* one more interval and one more of each: its line reports all that
     * is still pending */
    atomic_fetch_add(&fake_now, CD_LOG_INTERVAL_MS);
    steps++;
    const cd_bad_reason_t rs[2] = {CD_BAD_INVALID_UTF8, CD_BAD_INVALID_JSON};
    cd_pipeline_stats_t st;
    for (int k = 0; k < 2; k++)
        bad(shared, rs[k], 1);
    cd_pipeline_stats(shared, &st);
    for (int k = 0; k < 2; k++) {
        uint64_t want = (uint64_t)PER_THREAD * NTHREADS / 2 + 1, stands, last;
        cr_assert_eq(st.bad[rs[k]], want, "%s: counted %llu", cd_bad_reason_name(rs[k]),
                     (unsigned long long)st.bad[rs[k]]);
        int n = lines_of(rs[k], &stands, &last);
        cr_assert_eq(stands, want, "%s: %d lines stand for %llu of %llu", cd_bad_reason_name(rs[k]),
                     n, (unsigned long long)stands, (unsigned long long)want);
        /* the burst, at most one per clock step, and the last one */
        cr_assert_geq(n, CD_LOG_BURST + 1);
        cr_assert_leq(n, CD_LOG_BURST + steps);
    }
    cr_assert_eq(st.bad_total, (uint64_t)PER_THREAD * NTHREADS + 2);
    teardown_pipeline(shared);
}
