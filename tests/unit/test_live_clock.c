/*
 * test_live_clock.c - the live clock thread (agent/core/live.c) on the wall
 * clock, without Kafka: idle, it looks 10 times a second (not 100), and the
 * first event counted wakes it at once ("Idle steps" in live.c).
 *
 * Timing bounds are wide on purpose (the machine is shared): an idle second
 * must take 8-15 steps (100 before the change), and the median time from an
 * event to the clock's next step, over 7 trials, must be under 45 ms
 * (without the wake-up it is spread over 0-100 ms, median ~50).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "live_clock_fixture.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Under TSan (this suite runs there too) code runs 5-15x slower and a
 * wake-up takes longer to be seen: the latency bound is relaxed there, as
 * the ASan build leaves the live scenario bounds out. */
#ifdef __SANITIZE_THREAD__
#define WAKE_BOUND_MS 150
#else
#define WAKE_BOUND_MS 45
#endif

Test(live_clock, idle_clock_looks_ten_times_a_second_and_an_event_wakes_it, .timeout = 30)
{
    live_fixture_t f;
    live_fixture_start(&f, 1);
    cd_pipeline_t *p = f.p;
    cd_live_t *l = f.l;

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
    cr_assert_lt(lat[3], WAKE_BOUND_MS, "median event-to-step %lld ms (min %lld, max %lld)",
                 (long long)lat[3], (long long)lat[0], (long long)lat[6]);

    live_fixture_free(&f);
}

/* Catch-up (live.c): every second from before the start is judged as
 * history and its records are marked catchup, however fast the history
 * was read. Here the whole history is counted before the clock's first look
 * at the watermark, which then says "current" at once (a partition read to
 * its end): the old code ended the catch-up on that look and judged those
 * seconds by the present's rule, unmarked (test_live_restart's
 * pending_rule_replayed_in_event_time failed so under load: "pending record
 * not marked"). */
static const char CATCHUP_CONFIG[] =
    "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},"
    " \"windows\": {\"resolution\": \"1s\", \"allowed_lateness\": \"1s\","
    "  \"max_future_skew\": \"2m\", \"slack\": \"30s\"},"
    " \"verdicts\": {\"promote_after\": \"10m\"},"
    " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\","
    "  \"description\": \"Roll back on canary errors.\", \"numerator\": [\"ERROR_OCCURRED\"],"
    "  \"scope\": \"canary\", \"op\": \">\", \"threshold\": 5, \"window\": \"30s\","
    "  \"for\": \"20s\", \"action\": \"rollback\"}]}";

typedef struct catchup_seen {
    pthread_mutex_t mu;
    int pending;           /* inactive -> pending records */
    bool pending_catchup;  /* the first one's flag */
    int64_t pending_ms;    /* the first one's time */
} catchup_seen_t;

static void catchup_record(const cd_verdict_t *v, void *opaque)
{
    catchup_seen_t *s = opaque;
    if (v->record != CD_RECORD_STATE || v->to != CD_STATE_PENDING) return;
    pthread_mutex_lock(&s->mu);
    if (s->pending++ == 0) {
        s->pending_catchup = v->catchup;
        s->pending_ms = v->time_ms;
    }
    pthread_mutex_unlock(&s->mu);
}

static bool pending_seen(void *arg)
{
    catchup_seen_t *s = arg;
    pthread_mutex_lock(&s->mu);
    bool seen = s->pending > 0;
    pthread_mutex_unlock(&s->mu);
    return seen;
}

static atomic_bool history_read;

/* Unknown while the history is being counted, then every partition is read
 * to its end: current (the wall clock itself). */
static int64_t catchup_wm(void *opaque, char *who, size_t size)
{
    (void)opaque;
    snprintf(who, size, "events[0]");
    return atomic_load(&history_read) ? cd_live_now_ms() : INT64_MIN;
}

Test(live_clock, history_read_at_once_is_still_judged_as_catchup, .timeout = 60)
{
    cd_config_t *parsed = fx_config(CATCHUP_CONFIG);
    cd_config_t cfg;
    cd_live_config_rebuild(parsed, &cfg);
    catchup_seen_t seen = {.pending = 0};
    pthread_mutex_init(&seen.mu, NULL);
    cd_pipeline_t *p = fx_pipeline(&cfg, cfg.max_future_skew_ms, 1, catchup_record, &seen);
    char err[512] = "";
    cd_live_t *l = cd_live_new(p, NULL, NULL, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    atomic_store(&history_read, false);
    cd_live_set_watermark(l, catchup_wm, NULL, 60000);
    int64_t start = cd_live_now_ms();
    cd_live_set_catchup(l, parsed, start, 60000);
    cr_assert_eq(cd_live_start(l, err, sizeof err), 0, "%s", err);

    /* one canary error a second from 12 s before the start, each 500 ms
     * into its second: the 6th (onset + 5.5 s) makes the count exceed 5 */
    int64_t onset = start / 1000 * 1000 - 12000;
    for (int k = 0; k < 12; k++) {
        cd_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.type = 1; /* ERROR_OCCURRED */
        ev.cohort = CD_COHORT_CANARY;
        ev.ts_ms = onset + k * 1000 + 500;
        cr_assert_eq(cd_pipeline_add(p, &ev, 0), CD_WIN_OK, "error %d", k);
    }
    atomic_store(&history_read, true);

    wait_until(pending_seen, &seen, 30000); /* the assertions below say what was missing */
    cd_live_stop(l);
    cr_assert_eq(seen.pending, 1, "%d pending records", seen.pending);
    cr_assert(seen.pending_catchup, "the pending record (%lld ms after the onset) is not marked "
              "catchup", (long long)(seen.pending_ms - onset));
    cr_assert(seen.pending_ms >= onset + 5000 && seen.pending_ms <= onset + 6000,
              "pending at onset + %lld ms", (long long)(seen.pending_ms - onset));
    cd_live_destroy(l);
    cd_pipeline_destroy(p);
    cd_config_free(parsed);
    pthread_mutex_destroy(&seen.mu);
}
