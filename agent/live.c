/*
 * live.c - the live clock: one thread that moves the pipeline's clock to the
 * wall clock at every CD_LIVE_GRID_MS (10 ms), so that the rules are judged
 * within 10 ms of an event, whether or not more events arrive.
 *
 * Why a 10 ms grid on cd_pipeline_advance rather than evaluating "right after
 * each event": the pipeline evaluates only at multiples of its interval, and
 * that grid is what keeps evaluations deterministic and monotonic (the engine
 * requires non-decreasing times; `for` and resolve_for are measured between
 * evaluation times). The live pipeline is built from a config whose interval
 * is the grid (cd_live_config), so replay keeps its own whole-second grid
 * untouched. An event counted at wall time t is read by the first evaluation
 * at a boundary after t, i.e. within 10 ms plus the evaluation itself: the
 * "judged at once" requirement, without a wake-up per event on the hot path
 * (workers never signal this thread; counting stays lock-free).
 *
 * Mid-second evaluations and the windows: a window ending at b reads the
 * buckets starting in [b - len, b), so at any b inside second s it reads the
 * same buckets as at the whole second s + 1 -- the current, partly filled
 * bucket included. Evaluations within a second therefore see the counts
 * grow as events arrive, and `for` durations are measured at 10 ms precision
 * instead of 1 s. Verdict records carry the boundary time.
 *
 * Lazy evaluation (cd_pipeline_set_lazy, turned on by cd_live_start): of
 * the 100 boundaries a second, only those that can differ from the last
 * evaluation are evaluated -- the first after any event was accepted, the
 * first after each multiple of the window resolution (a bucket enters and
 * the oldest leaves), and those where a `for`, resolve_for, ALERT repeat or
 * the promotion clock runs out (cd_engine_next_deadline). The rest would
 * read the same windows and change nothing, so verdicts come at the same
 * boundaries as with 100 evaluations a second. An idle agent thus evaluates
 * about once a second (bench_kafka's idle-CPU row), a busy one every 10 ms.
 *
 * Cost: an evaluation over empty or quiet windows is microseconds, a skipped
 * boundary a sum of the pipeline's counters; the thread sleeps with
 * clock_nanosleep between boundaries.
 *
 * Threading: the pipeline's evaluating thread is this thread while it runs;
 * start and stop hand the pipeline over (pthread_create / pthread_join give
 * the happens-before edges). The stop flag is an atomic read relaxed on each
 * step: it carries no data, the join publishes everything.
 */
#include "canaryd/live.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cd_live {
    cd_pipeline_t *p;
    cd_live_tick_cb tick;
    void *opaque;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    atomic_uint_fast64_t steps;
};

void cd_live_config(const cd_config_t *cfg, cd_config_t *out)
{
    *out = *cfg;
    out->eval_interval_ms = CD_LIVE_GRID_MS;
}

int64_t cd_live_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cd_live_t *cd_live_new(cd_pipeline_t *p, cd_live_tick_cb tick, void *opaque, char *errbuf,
                       size_t errsize)
{
    cd_live_t *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(errbuf, errsize, "out of memory");
        return NULL;
    }
    l->p = p;
    l->tick = tick;
    l->opaque = opaque;
    atomic_init(&l->stop, false);
    atomic_init(&l->steps, 0);
    return l;
}

static void step(cd_live_t *l)
{
    if (l->tick) l->tick(l->opaque);
    cd_pipeline_advance(l->p, cd_live_now_ms());
    atomic_fetch_add_explicit(&l->steps, 1, memory_order_relaxed);
}

static void *run(void *arg)
{
    cd_live_t *l = arg;
    while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
        /* Sleep to the next grid boundary of the wall clock. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        int64_t next = (ms / CD_LIVE_GRID_MS + 1) * CD_LIVE_GRID_MS;
        struct timespec at = {.tv_sec = next / 1000, .tv_nsec = (long)(next % 1000) * 1000000L};
        while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL) == EINTR)
            ;
        step(l);
    }
    return NULL;
}

int cd_live_start(cd_live_t *l, char *errbuf, size_t errsize)
{
    cd_pipeline_set_lazy(l->p, true);
    cd_pipeline_advance(l->p, cd_live_now_ms()); /* starts the grid; evaluates nothing */
    int e = pthread_create(&l->thread, NULL, run, l);
    if (e != 0) {
        snprintf(errbuf, errsize, "live clock thread: %s", strerror(e));
        return -1;
    }
    l->running = true;
    return 0;
}

void cd_live_stop(cd_live_t *l)
{
    if (!l || !l->running) return;
    atomic_store_explicit(&l->stop, true, memory_order_relaxed);
    pthread_join(l->thread, NULL);
    l->running = false;
    step(l); /* the last evaluation, on the caller's thread */
}

uint64_t cd_live_steps(const cd_live_t *l)
{
    return atomic_load_explicit(&((cd_live_t *)l)->steps, memory_order_relaxed);
}

void cd_live_destroy(cd_live_t *l)
{
    if (!l) return;
    cd_live_stop(l);
    free(l);
}
