/*
 * test_live_clock.c - the live clock thread (agent/live.c) on the wall
 * clock, without Kafka: idle, it looks 10 times a second (not 100), and the
 * first event counted wakes it at once ("Idle steps" in live.c).
 *
 * Timing bounds are wide on purpose (the machine is shared): an idle second
 * must take 8-15 steps (100 before the change), and the median time from an
 * event to the clock's next step, over 7 trials, must be under 45 ms
 * (without the wake-up it is spread over 0-100 ms, median ~50).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canaryd/config.h"
#include "canaryd/live.h"
#include "canaryd/pipeline.h"

static const char CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},"
    " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"5s\","
    "  \"max_future_skew\": \"2m\", \"slack\": \"30s\"},"
    " \"verdicts\": {\"promote_after\": \"10m\"},"
    " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\","
    "  \"description\": \"Alert: canary errors.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"scope\": \"canary\", \"op\": \">\", \"threshold\": 1000, \"window\": \"5s\","
    "  \"for\": \"2s\", \"resolve_for\": \"3s\", \"action\": \"alert\"}]}";

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

Test(live_clock, idle_clock_looks_ten_times_a_second_and_an_event_wakes_it, .timeout = 30)
{
    cd_diag_t diag;
    cd_diag_init(&diag);
    cd_config_t *parsed = cd_config_parse(CONFIG, sizeof(CONFIG) - 1, NULL, &diag);
    cr_assert_not_null(parsed, "config: %s", diag.text);
    cd_config_t cfg;
    cd_live_config(parsed, &cfg);
    char err[512] = "";
    cd_pipeline_t *p = cd_pipeline_new(&cfg, cfg.max_future_skew_ms, 1, NULL, NULL, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cd_live_t *l = cd_live_new(p, NULL, NULL, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    cr_assert_eq(cd_live_start(l, err, sizeof err), 0, "%s", err);

    /* idle: about 10 steps a second ("at least 10 times a second") */
    sleep_ms(300);
    uint64_t s0 = cd_live_steps(l);
    sleep_ms(1000);
    uint64_t idle_steps = cd_live_steps(l) - s0;
    cr_assert(idle_steps >= 8 && idle_steps <= 15, "%llu steps in an idle second",
              (unsigned long long)idle_steps);

    /* an event wakes it: the next step comes within a grid step or so */
    int64_t lat[7];
    for (int i = 0; i < 7; i++) {
        /* quiet again (CD_LIVE_QUIET_MS), at varied phases of the 100 ms wait */
        sleep_ms(CD_LIVE_QUIET_MS + 100 + 13 * i);
        uint64_t s = cd_live_steps(l);
        cd_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.type = 0;
        ev.cohort = CD_COHORT_STABLE;
        ev.ts_ms = cd_live_now_ms();
        int64_t t0 = mono_ms();
        cr_assert_eq(cd_pipeline_add(p, &ev, 0), CD_WIN_OK);
        cd_pipeline_poke(p); /* as a source does after a quiet spell */
        while (cd_live_steps(l) == s && mono_ms() - t0 < 2000)
            sleep_ms(1);
        lat[i] = mono_ms() - t0;
    }
    qsort(lat, 7, sizeof lat[0], cmp_i64);
    cr_assert_lt(lat[3], 45, "median event-to-step %lld ms (min %lld, max %lld)",
                 (long long)lat[3], (long long)lat[0], (long long)lat[6]);

    cd_live_destroy(l);
    cd_pipeline_destroy(p);
    cd_config_free(parsed);
}
