/*
 * test_live_wake_concurrency.c - the idle live clock's wake-up handshake
 * (agent/core/live.c "Idle steps", cd_pipeline_arm_wake / cd_pipeline_poke)
 * between a real clock thread and two ingesting threads; also run under
 * TSan (ctest -R concurrency).
 *
 * Each ingester, 12 times: stays quiet for CD_LIVE_QUIET_MS + 80..150 ms
 * (so the clock goes idle), counts one event stamped now, pokes as a
 * source does after a quiet spell, and waits until the clock has evaluated
 * a boundary after the event. The two threads' spells overlap at random, so
 * a poke can race with the other thread's, with the clock's arming and with
 * its disarming. Asserted: every event accepted exactly once (statistics
 * and window counters), every event evaluated (none waits for more than
 * 2 s, a bound for TSan's slowdown; a lost wake-up costs at most 100 ms,
 * so this catches a clock that stopped, not a slow one), the clock went
 * idle and was woken by pokes, and never more often than pokes took the
 * armed flag. Latency itself is test_live_clock's business.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "canaryd/window.h"
#include "live_clock_fixture.h"

#define NTHREADS 2
#define BURSTS 12

static cd_pipeline_t *pipe_g;
static atomic_uint_fast64_t took, late_evals;

static void *ingest(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < BURSTS; i++) {
        sleep_ms(CD_LIVE_QUIET_MS + 80 + (id * 37 + i * 23) % 70);
        cd_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.type = 0;
        ev.cohort = id ? CD_COHORT_CANARY : CD_COHORT_STABLE;
        ev.ts_ms = cd_live_now_ms();
        if (cd_pipeline_add(pipe_g, &ev, id) != CD_WIN_OK) return (void *)1;
        if (cd_pipeline_poke(pipe_g)) atomic_fetch_add(&took, 1);
        int64_t t0 = mono_ms();
        while (cd_pipeline_last_eval(pipe_g) <= ev.ts_ms && mono_ms() - t0 < 2000)
            sleep_ms(1);
        if (cd_pipeline_last_eval(pipe_g) <= ev.ts_ms) atomic_fetch_add(&late_evals, 1);
    }
    return NULL;
}

Test(live_wake_concurrency, pokes_wake_an_idle_clock_and_every_event_is_counted_and_judged,
     .timeout = 60)
{
    live_fixture_t f;
    live_fixture_start(&f, NTHREADS);
    pipe_g = f.p;
    cd_live_t *l = f.l;

    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, ingest, (void *)(intptr_t)i), 0);
    for (int i = 0; i < NTHREADS; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        cr_assert_null(rv, "ingester %d: an event was not accepted", i);
    }
    int64_t now = cd_live_now_ms();
    cd_live_stop(l);

    cd_pipeline_stats_t st;
    cd_pipeline_stats(pipe_g, &st);
    cr_assert_eq(st.accepted, NTHREADS * BURSTS);
    cr_assert_eq(st.by_type[0][CD_COHORT_STABLE], BURSTS);
    cr_assert_eq(st.by_type[0][CD_COHORT_CANARY], BURSTS);
    uint64_t in_window = cd_window_sum(cd_pipeline_window(pipe_g), 0, CD_COHORT_STABLE, now + 1000,
                                       60000) +
                         cd_window_sum(cd_pipeline_window(pipe_g), 0, CD_COHORT_CANARY, now + 1000,
                                       60000);
    cr_assert_eq(in_window, NTHREADS * BURSTS);
    cr_assert_eq(atomic_load(&late_evals), 0, "events not evaluated within 2 s");

    uint64_t waits, woken;
    cd_live_idle_stats(l, &waits, &woken);
    cr_log_info("idle waits %llu, woken %llu, pokes that took the flag %llu",
                (unsigned long long)waits, (unsigned long long)woken,
                (unsigned long long)atomic_load(&took));
    cr_assert_gt(waits, 0, "the clock never went idle");
    cr_assert_gt(woken, 0, "no idle wait was ended by a poke");
    cr_assert_leq(woken, atomic_load(&took));
    live_fixture_free(&f);
}
