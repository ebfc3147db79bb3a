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
 * Idle steps. Each wake-up costs a kernel context switch, so waking 100
 * times a second would be the largest part of an idle agent's CPU
 * (measured: docs/performance-history.md). When
 * nothing can change before the next multiple of CD_LIVE_IDLE_MS (100 ms:
 * no event accepted since the last step nor for CD_LIVE_QUIET_MS before, no
 * bucket edge, engine deadline or release change before it;
 * cd_pipeline_arm_wake), the thread waits on a condition variable until
 * that multiple instead, and the first event after a quiet spell wakes it:
 * a source calls cd_pipeline_poke after counting the first event that
 * follows a poll of its own that returned nothing (the Kafka workers do),
 * so the hot path is untouched (a wake flag loaded per event in
 * cd_pipeline_add measurably slowed bench_kafka, for reasons not found:
 * docs/performance-history.md). After a poke the
 * thread sleeps to the next 10 ms boundary and steps as when busy, so the
 * event is judged as before, within 10 ms. The boundaries evaluated, and
 * their times, are the same as with 100 steps a second (a bucket edge or a
 * deadline ends the idle wait); only when the thread looks changes. The
 * pipeline is advanced at least 10 times a second either way. A source
 * that counts without poking (or a worker busy elsewhere for longer than
 * CD_LIVE_QUIET_MS) only delays judging to the next 100 ms step.
 *
 * Watermark (issue 10, item 4). Windows are in event time but this clock is
 * the wall clock: a partition that falls behind (a broker stall, a slow
 * worker, the catch-up after a start) would make its events look missing
 * -- counts fall, the canary looks silent, a flatline fires. So with a
 * watermark source (cd_live_set_watermark: the Kafka source, whose
 * partitions each carry the time up to which they are known to be read,
 * kafka_source.c "Watermark") a step judges only up to
 *
 *     until = max(now - max_wait, min(now, watermark + leeway))
 *
 * and the window clock alone (which admits events) follows the wall clock:
 * cd_pipeline_advance_until. The leeway (CD_LIVE_WATERMARK_LEEWAY_MS)
 * absorbs how stale a caught-up partition's watermark is between the
 * source's confirmations, so a consumer that keeps up is never held; a
 * stall holds judgement within the leeway of its start. max_wait (config
 * kafka.max_lag_wait, at most windows.slack, the history the ring keeps
 * beyond the longest look-back) bounds the hold: a partition that stays
 * behind longer is judged without, max_wait late. While held, no second
 * is judged, so the verdict stays the last one judged (and says why:
 * cd_live_watermark_state, shown by the HTTP API and /metrics); when the
 * partition catches up, the held seconds are all judged, in order, with
 * their events, before the clock reaches the present again -- the same
 * records as without the stall, each in the same second (an evaluation
 * inside a second reads its bucket as filled so far; at the catch-up it is
 * full, so a change can come up to a second earlier: test_pipeline_lazy),
 * and test_live's 60 s broker stall ends with the same PROMOTE. Chosen
 * over "ANALYZING while behind": a held verdict was judged on complete
 * data, while an ANALYZING would pause an Argo rollout at every broker
 * hiccup.
 *
 * Threading: the pipeline's evaluating thread is this thread while it runs;
 * start and stop hand the pipeline over (pthread_create / pthread_join give
 * the happens-before edges). The stop flag is an atomic read relaxed on each
 * step: it carries no data, the join publishes everything.
 */
#include "canaryd/live.h"
#include "canaryd/clock.h"

#include "canaryd/log.h"
#include "canaryd/timeutil.h"

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
    atomic_uint_fast64_t idle_waits, idle_woken;
    /* idle waits (see the top): poked under mu, signalled on cv */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_REALTIME, the grid's clock */
    bool poked;
    /* watermark gating (see the top): the evaluating thread's */
    cd_live_watermark_cb wm;
    void *wm_opaque;
    int64_t max_wait_ms;
    cd_live_wm_t st;
    int64_t held_since; /* wall time the current hold began; 0 when not held */
    bool held_logged;
    /* catch-up (see the top): the evaluating thread's */
    bool catching;
    int64_t catchup_from;     /* first judged instant (cd_pipeline_begin) */
    int64_t catchup_start;    /* wall time the rebuild began */
    int64_t catchup_wait_ms;  /* longest hold while catching up */
};

/* A hold longer than this is logged (shorter ones are a probe's or a
 * rebalance's hiccup). */
#define HOLD_LOG_MS 5000

void cd_live_config(const cd_config_t *cfg, cd_config_t *out)
{
    *out = *cfg;
    out->eval_interval_ms = CD_LIVE_GRID_MS;
}

/* The longest `for` of the rules. */
static int64_t longest_for(const cd_config_t *cfg)
{
    int64_t f = 0;
    for (int i = 0; i < cfg->nrules; i++)
        if (cfg->rules[i].for_ms > f) f = cfg->rules[i].for_ms;
    return f;
}

/* The windows' look-back: the ring's span without its slack. */
static int64_t lookback(const cd_config_t *cfg)
{
    return cd_config_span_ms(cfg) - cfg->slack_ms;
}

int64_t cd_live_history_ms(const cd_config_t *cfg)
{
    return lookback(cfg) + longest_for(cfg) + cfg->allowed_lateness_ms;
}

void cd_live_config_rebuild(const cd_config_t *cfg, cd_config_t *out)
{
    cd_live_config(cfg, out);
    out->slack_ms = cfg->slack_ms + longest_for(cfg) + 2 * cfg->allowed_lateness_ms;
}

void cd_live_set_catchup(cd_live_t *l, const cd_config_t *cfg, int64_t start_ms,
                         int64_t max_wait_ms)
{
    l->catching = true;
    l->catchup_start = start_ms;
    /* where every window first reads whole history: start - longest `for` */
    l->catchup_from = start_ms - cd_live_history_ms(cfg) + lookback(cfg) + cfg->allowed_lateness_ms;
    l->catchup_wait_ms = max_wait_ms;
}

int64_t cd_live_now_ms(void)
{
    return cd_wall_ms();
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
    atomic_init(&l->idle_waits, 0);
    atomic_init(&l->idle_woken, 0);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    return l;
}

/* Ingesting thread (cd_pipeline_poke): an event was counted while the clock
 * waits idle. */
static void poke(void *opaque)
{
    cd_live_t *l = opaque;
    pthread_mutex_lock(&l->mu);
    l->poked = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static struct timespec ts_of(int64_t ms)
{
    return (struct timespec){.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
}

static void sleep_until(int64_t ms)
{
    struct timespec at = ts_of(ms);
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL) == EINTR)
        ;
}

/* Waits until wall time `until` or a poke or a stop; true if poked. */
static bool idle_wait(cd_live_t *l, int64_t until)
{
    struct timespec at = ts_of(until);
    pthread_mutex_lock(&l->mu);
    while (!l->poked && !atomic_load_explicit(&l->stop, memory_order_relaxed))
        if (pthread_cond_timedwait(&l->cv, &l->mu, &at) == ETIMEDOUT) break;
    bool poked = l->poked;
    l->poked = false;
    pthread_mutex_unlock(&l->mu);
    return poked;
}

void cd_live_set_watermark(cd_live_t *l, cd_live_watermark_cb cb, void *opaque,
                           int64_t max_wait_ms)
{
    l->wm = cb;
    l->wm_opaque = opaque;
    l->max_wait_ms = max_wait_ms > 0 ? max_wait_ms : 0;
}

void cd_live_watermark_state(const cd_live_t *l, cd_live_wm_t *out)
{
    *out = l->st;
}

/* The instant a step at wall time now may judge up to (see the top), and
 * the state shown for it. Evaluating thread. */
static int64_t watermark_until(cd_live_t *l, int64_t now)
{
    char who[200] = "", t[40], d[32];
    cd_live_wm_t *st = &l->st;
    int64_t wm = l->wm(l->wm_opaque, who, sizeof(who));
    int64_t until = now;
    st->known = wm != INT64_MIN;
    st->lag_ms = st->known && wm < now ? now - wm : 0;
    if (!st->known)
        until = INT64_MIN;
    else if (wm < now - CD_LIVE_WATERMARK_LEEWAY_MS)
        until = wm + CD_LIVE_WATERMARK_LEEWAY_MS;
    int64_t floor = now - l->max_wait_ms;
    bool waited_out = until <= floor && l->max_wait_ms > 0;
    if (until < floor) until = floor;
    st->held = until < now;
    if (!st->held) {
        if (l->held_logged)
            cd_log(CD_LOG_INFO, "live clock: caught up after %.1f s held; judging the present again",
                   (double)(now - l->held_since) / 1000.0);
        l->held_since = 0;
        l->held_logged = false;
        st->reason[0] = '\0';
        return until;
    }
    if (!l->held_since) l->held_since = now;
    cd_duration_format(l->max_wait_ms, d, sizeof(d));
    if (!st->known)
        snprintf(st->reason, sizeof(st->reason),
                 "verdict held: %s; no second is judged before every partition is read past it "
                 "(at most kafka.max_lag_wait %s)",
                 who, d);
    else if (waited_out)
        snprintf(st->reason, sizeof(st->reason),
                 "partition %s is %.1f s behind (read up to %s), longer than kafka.max_lag_wait "
                 "%s: judging without it, %s late",
                 who, (double)st->lag_ms / 1000.0, cd_time_format(wm, t, sizeof(t)), d, d);
    else
        snprintf(st->reason, sizeof(st->reason),
                 "verdict held: partition %s is %.1f s behind (read up to %s); no second is "
                 "judged before every partition is read past it (at most kafka.max_lag_wait %s)",
                 who, (double)st->lag_ms / 1000.0, cd_time_format(wm, t, sizeof(t)), d);
    if (!l->held_logged && now - l->held_since >= HOLD_LOG_MS) {
        cd_log(CD_LOG_WARN, "live clock: %s", st->reason);
        l->held_logged = true;
    }
    return until;
}

/* Catch-up (see the top): judge up to the watermark itself, in event time,
 * until it reaches the present (within the leeway); then the ordinary
 * watermark rule. Evaluating thread. */
static int64_t catchup_until(cd_live_t *l, int64_t now)
{
    char who[200] = "", t[40];
    cd_live_wm_t *st = &l->st;
    int64_t wm = l->wm(l->wm_opaque, who, sizeof(who));
    st->known = wm != INT64_MIN;
    st->lag_ms = st->known && wm < now ? now - wm : 0;
    if (st->known && wm >= now - CD_LIVE_WATERMARK_LEEWAY_MS) {
        /* The seconds from before this process started are history however
         * fast they were read: judged (and marked "catchup") here, before
         * the present is. Without it, a rebuild read whole before the
         * clock's first look at the watermark (a loaded start: the read
         * ends within one grid step) left them to the present's rule, and
         * a decision about a second before the start went out unmarked. */
        cd_pipeline_advance_until(l->p, now, l->catchup_start < wm ? l->catchup_start : wm);
        l->catching = false;
        st->catchup = false;
        st->catchup_ms = now - l->catchup_start;
        cd_pipeline_set_catchup(l->p, false);
        cd_log(CD_LOG_INFO,
               "live clock: caught up: %.1f s of history judged in event time in %.1f s; judging "
               "the present",
               (double)(now - l->catchup_from) / 1000.0, (double)st->catchup_ms / 1000.0);
        return watermark_until(l, now);
    }
    int64_t until = st->known ? (wm < now ? wm : now) : INT64_MIN;
    int64_t floor = now - l->catchup_wait_ms;
    if (until < floor) until = floor;
    st->held = true;
    st->catchup = true;
    int64_t judged = cd_pipeline_judged(l->p);
    if (st->known)
        snprintf(st->reason, sizeof(st->reason),
                 "catching up: rebuilding the windows from Kafka in event time, judged up to %s, "
                 "%.1f s behind (slowest partition %s)",
                 cd_time_format(judged > l->catchup_from ? judged : l->catchup_from, t, sizeof(t)),
                 (double)st->lag_ms / 1000.0, who);
    else
        snprintf(st->reason, sizeof(st->reason),
                 "catching up: rebuilding the windows from Kafka in event time; %s", who);
    return until;
}

static void step(cd_live_t *l)
{
    if (l->tick) l->tick(l->opaque);
    int64_t now = cd_live_now_ms();
    int64_t until = now;
    if (l->wm) until = l->catching ? catchup_until(l, now) : watermark_until(l, now);
    cd_pipeline_advance_until(l->p, now, until);
    l->st.judged_ms = cd_pipeline_judged(l->p);
    atomic_fetch_add_explicit(&l->steps, 1, memory_order_relaxed);
}

static void *run(void *arg)
{
    cd_live_t *l = arg;
    while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
        int64_t now = cd_live_now_ms();
        int64_t idle_until = (now / CD_LIVE_IDLE_MS + 1) * CD_LIVE_IDLE_MS;
        if (cd_pipeline_arm_wake(l->p, idle_until, CD_LIVE_QUIET_MS)) {
            bool poked = idle_wait(l, idle_until);
            cd_pipeline_disarm_wake(l->p);
            atomic_fetch_add_explicit(&l->idle_waits, 1, memory_order_relaxed);
            if (poked) {
                atomic_fetch_add_explicit(&l->idle_woken, 1, memory_order_relaxed);
                /* judge the event at the next grid boundary, as when busy */
                sleep_until((cd_live_now_ms() / CD_LIVE_GRID_MS + 1) * CD_LIVE_GRID_MS);
            }
        } else {
            /* Sleep to the next grid boundary of the wall clock. */
            sleep_until((now / CD_LIVE_GRID_MS + 1) * CD_LIVE_GRID_MS);
        }
        step(l);
    }
    return NULL;
}

int cd_live_start(cd_live_t *l, char *errbuf, size_t errsize)
{
    cd_pipeline_set_lazy(l->p, true);
    cd_pipeline_set_waker(l->p, poke, l);
    if (l->catching && l->wm) {
        /* the grid starts where the rebuilt windows are whole */
        cd_pipeline_begin(l->p, l->catchup_from);
        cd_pipeline_set_catchup(l->p, true);
        l->st.catchup = true;
    } else {
        l->catching = false;
    }
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
    /* under mu: an idle wait checks stop under mu before it waits */
    pthread_mutex_lock(&l->mu);
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->running = false;
    step(l); /* the last evaluation, on the caller's thread */
}

void cd_live_finish(cd_live_t *l)
{
    cd_live_stop(l);
    cd_pipeline_advance(l->p, cd_live_now_ms());
    l->st.judged_ms = cd_pipeline_judged(l->p);
    l->st.held = false;
}

uint64_t cd_live_steps(const cd_live_t *l)
{
    return atomic_load_explicit(&((cd_live_t *)l)->steps, memory_order_relaxed);
}

void cd_live_idle_stats(const cd_live_t *l, uint64_t *waits, uint64_t *woken)
{
    cd_live_t *m = (cd_live_t *)l;
    *waits = atomic_load_explicit(&m->idle_waits, memory_order_relaxed);
    *woken = atomic_load_explicit(&m->idle_woken, memory_order_relaxed);
}

void cd_live_destroy(cd_live_t *l)
{
    if (!l) return;
    cd_live_stop(l);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}
