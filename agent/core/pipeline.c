/*
 * pipeline.c - wires decoder, window and engine together and counts what
 * happens to every payload.
 *
 * Counters are relaxed atomics: they are statistics, read for a summary or
 * /metrics, and no decision depends on their order relative to other memory;
 * relaxed increments are exact in total, which is all a count needs. The
 * per-event ones (events by type and cohort, accepted, first and last event
 * time) are kept per writer stripe (cd_pipeline_add's stripe argument,
 * modulo STAT_STRIPES), each stripe on cache lines of its own, and summed on
 * read, as Varnish does: live mode's workers count events on two cores at
 * over a million per second, and one shared line written by both for every
 * event cost more than the counting itself (bench_kafka: 2 workers slower
 * than 1). So is after_eval, which live mode's events nearly all are. Rare
 * counters (bad input, late, future) stay shared.
 *
 * The release learnt from the first canary event is handed from ingesting
 * threads to the evaluating thread through a small state machine: one
 * ingester wins a CAS 0 -> 1, copies the version, and publishes with a
 * release store of 2; advance() loads it with acquire, so it sees the copied
 * bytes, and passes them to the engine on its own thread (the engine is not
 * shared with ingesters).
 *
 * The service. With events.service the decoder itself answers another
 * service's event (CD_DECODE_OTHER_SERVICE, agent/decode/decode.c): it is counted
 * as other_service (or no_service when it has no service field) and never
 * reaches the windows or replay's clock. On a shared topic those are most of
 * the events, so they are counted per stripe like accepted ones, in stripes
 * of their own indexed by a thread-local slot (decode has no stripe
 * argument, and a thread's slot need not match the stripe it adds with).
 * Without events.service the service is learnt from the first canary event
 * that names one, by the same state machine as the release (kept apart: a
 * configured canary_version still leaves the service to learn). Either way
 * every record leaving the pipeline carries it (on_record), so that each
 * sink sees the service of the record itself, with no shared setter to race
 * with.
 */
#include "canaryd/pipeline.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canaryd/log.h"

enum { REL_UNKNOWN = 0, REL_WRITING = 1, REL_READY = 2, REL_APPLIED = 3 };

/* Per-stripe event statistics (see top); one writer thread per stripe in
 * practice, atomics because nothing stops two threads sharing a stripe. */
#define STAT_STRIPES 16 /* a power of two */
typedef struct stat_stripe {
    _Alignas(64) atomic_uint_fast64_t by_type[CD_MAX_TYPES + 1][CD_NCOHORTS];
    /* events accepted: incremented with release after the event's cells
     * and by_type (lazy mode reads it with acquire, see cd_pipeline_add) */
    atomic_uint_fast64_t accepted;
    atomic_int_fast64_t first_ms, last_ms;
    /* accepted after an evaluation that covered their time: in live mode
     * nearly every event (the clock evaluates every 10 ms), so per stripe */
    atomic_uint_fast64_t after_eval;
} stat_stripe_t;

/* events.service set: another service's events, and events naming none,
 * per decoding thread (thread_stripe), on lines of their own: a thread's
 * slot need not be the stripe it adds accepted events with. */
typedef struct svc_stripe {
    _Alignas(64) atomic_uint_fast64_t other_service, no_service;
} svc_stripe_t;

struct cd_pipeline {
    const cd_config_t *cfg;
    cd_decoder_t *dec;
    cd_window_t *win;
    cd_engine_t *eng;
    cd_record_cb cb;
    void *opaque;

    /* statistics: relaxed (see top) */
    atomic_uint_fast64_t bad[CD_BAD__COUNT];
    atomic_uint_fast64_t bad_numeric, late, future;
    stat_stripe_t st[STAT_STRIPES];
    svc_stripe_t svc[STAT_STRIPES];
    /* written by the evaluating thread, read relaxed by ingesters (after_eval) */
    atomic_int_fast64_t last_eval;
    uint64_t evaluations, records;
    int64_t clock;
    int64_t span_ms;     /* how far back the window ring reaches */
    int64_t grid_origin; /* cd_pipeline_begin(); valid when has_origin */
    int64_t grid;        /* last boundary passed (evaluated, or the grid's start) */
    bool has_origin;
    bool started;
    /* lazy mode (cd_pipeline_set_lazy): events accepted as of the last
     * evaluation, the bucket key (ceil(b / resolution)) it read, and the
     * boundaries skipped since */
    bool lazy;
    uint64_t lazy_seen;
    int64_t active_ms; /* the last advance that found new events */
    int64_t lazy_key;
    uint64_t skipped;

    atomic_int release_state;
    char release[128];
    /* the service: configured (REL_APPLIED from the start) or learnt */
    atomic_int service_state;
    char service[CD_NAME_MAX];
    /* a new judgement learns the release again only from canary events at
     * or after this time (cd_pipeline_new_judgement); written before the
     * release store of REL_UNKNOWN, read by ingesters after its acquire */
    atomic_int_fast64_t learn_after;
    bool declared; /* cd_pipeline_new_release named it (evaluating thread) */

    /* idle live clock (cd_pipeline_arm_wake): armed by the evaluating
     * thread, taken by the first cd_pipeline_poke; on a line of its own */
    _Alignas(64) atomic_bool wake_wanted;
    cd_pipeline_wake_cb wake;
    void *wake_opaque;
    cd_pipeline_eval_cb eval_hook; /* cd_pipeline_set_eval_hook */
    void *eval_opaque;
    atomic_bool catchup; /* cd_pipeline_set_catchup: stamped on every record; relaxed, any thread reads it */
};

static void count(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void on_record(const cd_verdict_t *v, void *opaque)
{
    cd_pipeline_t *p = opaque;
    p->records++;
    if (!p->cb) return;
    /* The engine knows no service: stamp it on a copy (a record is about 1 KB
     * and records are a few per evaluation at most). */
    cd_verdict_t w = *v;
    w.service = cd_pipeline_service(p);
    w.catchup = atomic_load_explicit(&p->catchup, memory_order_relaxed);
    p->cb(&w, p->opaque);
}

/* How far back the histograms are kept: the longest percentile window plus
 * the slack; at least one bucket (0 would mean "as far as the counters"). */
static int64_t hist_span(const cd_config_t *cfg)
{
    int64_t h = cd_engine_hist_span_ms(cfg->rules, cfg->nrules) + cfg->slack_ms;
    return h > 0 ? h : (cfg->resolution_ms > 0 ? cfg->resolution_ms : 1000);
}

cd_pipeline_t *cd_pipeline_new(const cd_config_t *cfg, int64_t ahead_ms, int nstripes,
                               cd_record_cb cb, void *opaque, char *errbuf, size_t errsize)
{
    char err[512] = "";
    /* aligned: the statistics stripes sit on cache lines of their own */
    size_t size = (sizeof(cd_pipeline_t) + 63) / 64 * 64;
    cd_pipeline_t *p = aligned_alloc(64, size);
    if (!p) {
        snprintf(errbuf, errsize, "out of memory");
        return NULL;
    }
    memset(p, 0, size);
    p->cfg = cfg;
    p->cb = cb;
    p->opaque = opaque;
    for (int i = 0; i < STAT_STRIPES; i++) {
        atomic_init(&p->st[i].first_ms, INT64_MAX);
        atomic_init(&p->st[i].last_ms, INT64_MIN);
    }
    atomic_init(&p->last_eval, INT64_MIN); /* nothing evaluated: no event is after_eval */
    atomic_init(&p->release_state, cfg->canary_version[0] ? REL_APPLIED : REL_UNKNOWN);
    atomic_init(&p->service_state, cfg->service[0] ? REL_APPLIED : REL_UNKNOWN);
    snprintf(p->service, sizeof(p->service), "%s", cfg->service);
    atomic_init(&p->learn_after, INT64_MIN);

    p->dec = cd_decoder_new(&cfg->decode, err, sizeof(err));
    if (!p->dec) {
        snprintf(errbuf, errsize, "decoder: %s", err);
        goto err;
    }

    cd_window_conf_t wc = {
        .nmetrics = cfg->decode.ntypes,
        .nhists = cfg->decode.nnumeric,
        .resolution_ms = cfg->resolution_ms,
        .span_ms = p->span_ms = cd_config_span_ms(cfg),
        .ahead_ms = ahead_ms,
        .nstripes = nstripes,
        /* the histograms only as far back as the percentile rules read:
         * most of the ring's memory (window.c, "Histogram ring") */
        .hist_span_ms = hist_span(cfg),
    };
    p->win = cd_window_new(&wc, err, sizeof(err));
    if (!p->win) {
        snprintf(errbuf, errsize, "window: %s", err);
        goto err;
    }

    cd_engine_conf_t ec;
    memset(&ec, 0, sizeof(ec));
    ec.rules = cfg->rules;
    ec.nrules = cfg->nrules;
    ec.promote_after_ms = cfg->promote_after_ms;
    ec.alert_repeat_ms = cfg->alert_repeat_ms;
    ec.min_canary_events = cfg->min_canary_events;
    ec.release = cfg->canary_version;
    ec.ntypes = cfg->decode.ntypes;
    for (int i = 0; i < ec.ntypes; i++)
        ec.type_names[i] = cfg->type_names[i];
    ec.nhists = cfg->decode.nnumeric;
    for (int i = 0; i < ec.nhists; i++)
        ec.hist_names[i] = cfg->numeric_names[i];
    p->eng = cd_engine_new(&ec, err, sizeof(err));
    if (!p->eng) {
        snprintf(errbuf, errsize, "rule engine: %s", err);
        goto err;
    }
    snprintf(p->release, sizeof(p->release), "%s", cfg->canary_version);
    return p;
err:
    cd_pipeline_destroy(p);
    return NULL;
}

void cd_pipeline_destroy(cd_pipeline_t *p)
{
    if (!p) return;
    cd_engine_destroy(p->eng);
    cd_window_destroy(p->win);
    cd_decoder_destroy(p->dec);
    free(p);
}

/* One sample gate per reason, process-wide like the log (log.h), and one
 * for events naming no service: checked before any lock or formatting. */
static cd_log_gate_t bad_gates[CD_BAD__COUNT];
static cd_log_gate_t no_service_gate;

/* Writes a line that passed its gate: what, the line number if any, the
 * escaped sample, and how many similar lines the gate suppressed. */
static void log_sample(uint64_t suppressed, const char *what, const char *buf, size_t len,
                       uint64_t lineno)
{
    char esc[CD_LOG_ESCAPED_MAX];
    cd_log_escape(buf, len, esc, sizeof(esc));
    if (lineno)
        cd_log_suppressed(CD_LOG_WARN, suppressed, "%s at line %llu: %s", what,
                          (unsigned long long)lineno, esc);
    else
        cd_log_suppressed(CD_LOG_WARN, suppressed, "%s: %s", what, esc);
}

void cd_pipeline_count_bad(cd_pipeline_t *p, cd_bad_reason_t r, const char *sample, size_t len,
                           uint64_t lineno)
{
    CD_ASSERT(r > CD_BAD_NONE && r < CD_BAD__COUNT);
    count(&p->bad[r]);
    uint64_t suppressed;
    if (!cd_log_gate_pass(&bad_gates[r], CD_LOG_WARN, &suppressed)) return; /* no lock, no format */
    char what[64];
    snprintf(what, sizeof(what), "bad input (%s)", cd_bad_reason_name(r));
    log_sample(suppressed, what, sample, len, lineno);
}

/* This thread's statistics stripe for counts made while decoding (no
 * stripe argument there): threads take stripes in turn on first use. */
static svc_stripe_t *thread_stripe(cd_pipeline_t *p)
{
    static atomic_uint next_slot;
    static _Thread_local unsigned slot = UINT_MAX;
    if (slot == UINT_MAX)
        slot = atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) % STAT_STRIPES;
    return &p->svc[slot];
}

/* Another service's event (events.service set): counted, never judged.
 * Not bad input, so not sampled as such: an event naming no service is
 * logged (a producer without the field, or a wrong events.service_field),
 * another service only at debug level (it is what a shared topic holds). */
static void count_other_service(cd_pipeline_t *p, const cd_event_t *ev, const char *buf, size_t len,
                                uint64_t lineno)
{
    svc_stripe_t *st = thread_stripe(p);
    if (ev->service_len == 0) {
        count(&st->no_service);
        uint64_t suppressed;
        if (!cd_log_gate_pass(&no_service_gate, CD_LOG_WARN, &suppressed)) return;
        char what[160];
        snprintf(what, sizeof(what),
                 "event without a service field (%s), not judged: events.service is \"%s\"",
                 p->cfg->decode.service_path, p->cfg->service);
        log_sample(suppressed, what, buf, len, lineno);
        return;
    }
    count(&st->other_service);
    if (cd_log_enabled(CD_LOG_DEBUG)) {
        char name[CD_LOG_ESCAPED_MAX];
        cd_log_escape(ev->service, ev->service_len, name, sizeof(name));
        cd_log_ratelimited("other_service", CD_LOG_DEBUG,
                           "event of service \"%s\" not judged (events.service is \"%s\")", name,
                           p->cfg->service);
    }
}

cd_bad_reason_t cd_pipeline_decode(cd_pipeline_t *p, const char *buf, size_t len, uint64_t lineno,
                                   cd_event_t *ev)
{
    cd_bad_reason_t r = cd_decode(p->dec, buf, len, ev);
    if (r == CD_DECODE_OTHER_SERVICE)
        count_other_service(p, ev, buf, len, lineno);
    else if (r != CD_BAD_NONE)
        cd_pipeline_count_bad(p, r, buf, len, lineno);
    return r;
}

void cd_pipeline_count_future(cd_pipeline_t *p, const cd_event_t *ev, int64_t ref_ms,
                              uint64_t lineno)
{
    /* Callers pass ts_ms > ref_ms; the unsigned difference cannot overflow. */
    unsigned long long ahead = (unsigned long long)((uint64_t)ev->ts_ms - (uint64_t)ref_ms);
    count(&p->future);
    if (lineno)
        cd_log_ratelimited("future", CD_LOG_WARN,
                           "event at line %llu dropped: its time is %llu ms after the latest "
                           "event time, more than max_future_skew",
                           (unsigned long long)lineno, ahead);
    else
        cd_log_ratelimited("future", CD_LOG_WARN,
                           "event dropped: its time is %llu ms after the clock, more than "
                           "max_future_skew",
                           ahead);
}

void cd_pipeline_count_late(cd_pipeline_t *p, const cd_event_t *ev, int64_t ref_ms,
                            uint64_t lineno)
{
    /* Callers pass ts_ms < ref_ms; the unsigned difference cannot overflow. */
    unsigned long long behind = (unsigned long long)((uint64_t)ref_ms - (uint64_t)ev->ts_ms);
    count(&p->late);
    cd_log_ratelimited("late", CD_LOG_WARN,
                       "event at line %llu dropped: its time is %llu ms before the stream's "
                       "start, further back than the window ring",
                       (unsigned long long)lineno, behind);
}

static void learn_release(cd_pipeline_t *p, const cd_event_t *ev)
{
    int expect = REL_UNKNOWN;
    /* The pre-check keeps the common case (already known) to one load;
     * acquire (a plain load on x86): seeing UNKNOWN again after a new
     * judgement, this thread sees its learn_after. */
    if (atomic_load_explicit(&p->release_state, memory_order_acquire) != REL_UNKNOWN) return;
    if (ev->cohort != CD_COHORT_CANARY || ev->version_len == 0) return;
    /* a new judgement's release is not learnt from the previous run's events */
    if (ev->ts_ms < atomic_load_explicit(&p->learn_after, memory_order_relaxed)) return;
    if (!atomic_compare_exchange_strong_explicit(&p->release_state, &expect, REL_WRITING,
                                                 memory_order_relaxed, memory_order_relaxed))
        return;
    size_t n = ev->version_len < sizeof(p->release) - 1 ? ev->version_len : sizeof(p->release) - 1;
    memcpy(p->release, ev->version, n);
    p->release[n] = '\0';
    /* Release: the bytes above are visible to whoever sees REL_READY. */
    atomic_store_explicit(&p->release_state, REL_READY, memory_order_release);
}

/* The service from the first canary event naming one, when events.service
 * is not set: as learn_release (CAS, copy, release store). */
static void learn_service(cd_pipeline_t *p, const cd_event_t *ev)
{
    int expect = REL_UNKNOWN;
    if (atomic_load_explicit(&p->service_state, memory_order_relaxed) != REL_UNKNOWN) return;
    if (ev->cohort != CD_COHORT_CANARY || ev->service_len == 0) return;
    if (!atomic_compare_exchange_strong_explicit(&p->service_state, &expect, REL_WRITING,
                                                 memory_order_relaxed, memory_order_relaxed))
        return;
    size_t n = ev->service_len < sizeof(p->service) - 1 ? ev->service_len : sizeof(p->service) - 1;
    memcpy(p->service, ev->service, n);
    p->service[n] = '\0';
    /* Release: the bytes above are visible to whoever sees REL_READY. */
    atomic_store_explicit(&p->service_state, REL_READY, memory_order_release);
    char esc[CD_LOG_ESCAPED_MAX];
    cd_log_escape(p->service, n, esc, sizeof(esc));
    cd_log(CD_LOG_INFO,
           "service \"%s\", learnt from the first canary event's %s field (events.service is not "
           "set: every event is judged, whatever its service)",
           esc, p->cfg->decode.service_path);
}

static void minmax(atomic_int_fast64_t *a, int64_t v, bool less)
{
    int64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (less ? v < cur : v > cur)
        if (atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
}

cd_window_result_t cd_pipeline_add(cd_pipeline_t *p, const cd_event_t *ev, int stripe)
{
    cd_window_result_t res = CD_WIN_OK;
    CD_ASSERT(ev->cohort == CD_COHORT_CANARY || ev->cohort == CD_COHORT_STABLE);
    CD_ASSERT(ev->type == CD_TYPE_OTHER || (ev->type >= 0 && ev->type < p->cfg->decode.ntypes));

    /* Once one of the event's cells is written, the event is in the windows
     * and so accepted: the live clock may move between its writes, and a
     * later write then finds it older than the ring (LATE; never FUTURE, that
     * edge only moves later). Such a histogram sample is older than any read
     * can reach (reads clip at the same edge), so dropping it hides nothing
     * from a rule, while counting the event late too would make the
     * statistics disagree with the windows. */
    bool written = false;
    if (ev->type != CD_TYPE_OTHER) {
        res = cd_window_add(p->win, stripe, ev->type, ev->cohort, ev->ts_ms, 1);
        written = res == CD_WIN_OK;
    }
    if (res == CD_WIN_OK) {
        for (int i = 0; i < p->cfg->decode.nnumeric; i++) {
            if (ev->bad_num_mask & (1u << i)) count(&p->bad_numeric);
            if (!(ev->num_mask & (1u << i))) continue;
            cd_window_result_t r = cd_window_observe(p->win, i, ev->cohort, ev->ts_ms, ev->num[i]);
            if (r == CD_WIN_OK) {
                written = true;
            } else if (!written) {
                res = r; /* a type-less event's first write: nothing is in the windows */
                break;
            }
        }
    }
    if (res == CD_WIN_LATE) {
        count(&p->late);
        return res;
    }
    if (res == CD_WIN_FUTURE) {
        count(&p->future);
        return res;
    }
    int row = ev->type == CD_TYPE_OTHER ? CD_PIPELINE_OTHER : ev->type;
    stat_stripe_t *st = &p->st[(unsigned)stripe % STAT_STRIPES];
    count(&st->by_type[row][ev->cohort]);
    minmax(&st->first_ms, ev->ts_ms, true);
    minmax(&st->last_ms, ev->ts_ms, false);
    /* Release: lazy mode's evaluating thread reads these counts with acquire
     * to decide whether to evaluate, and must then see this event's cells in
     * the window. seq_cst: the store half of the handshake with
     * cd_pipeline_arm_wake (it stores the wake flag, then reads these counts;
     * cd_pipeline_poke, called after this, loads the flag), so either the
     * poking thread sees the flag or the clock sees this event. On x86 the
     * RMW is the same instruction either way (a full barrier). */
    atomic_fetch_add_explicit(&st->accepted, 1, memory_order_seq_cst);
    if (ev->ts_ms < atomic_load_explicit(&p->last_eval, memory_order_relaxed))
        count(&st->after_eval);
    learn_release(p, ev);
    learn_service(p, ev);
    return res;
}

cd_bad_reason_t cd_pipeline_ingest(cd_pipeline_t *p, const char *buf, size_t len, int stripe)
{
    cd_event_t ev;
    cd_bad_reason_t r = cd_pipeline_decode(p, buf, len, 0, &ev);
    if (r == CD_BAD_NONE) cd_pipeline_add(p, &ev, stripe);
    return r;
}

/* Largest multiple of step <= t (t may be negative). */
static int64_t floor_to(int64_t t, int64_t step)
{
    int64_t q = t / step;
    if (t % step != 0 && t < 0) q--;
    return q * step;
}

void cd_pipeline_begin(cd_pipeline_t *p, int64_t first_event_ms)
{
    if (p->started) return;
    p->grid_origin = first_event_ms;
    p->has_origin = true;
}

void cd_pipeline_set_lazy(cd_pipeline_t *p, bool lazy)
{
    p->lazy = lazy;
    p->lazy_key = INT64_MIN;
}

uint64_t cd_pipeline_skipped(const cd_pipeline_t *p)
{
    return p->skipped;
}

void cd_pipeline_set_waker(cd_pipeline_t *p, cd_pipeline_wake_cb cb, void *opaque)
{
    p->wake = cb;
    p->wake_opaque = opaque;
}

int64_t cd_pipeline_judged(const cd_pipeline_t *p)
{
    return p->started ? p->grid : 0;
}

int64_t cd_pipeline_last_eval(const cd_pipeline_t *p)
{
    return atomic_load_explicit(&((cd_pipeline_t *)p)->last_eval, memory_order_relaxed);
}

bool cd_pipeline_poke(cd_pipeline_t *p)
{
    /* seq_cst load: the other half of the handshake (see cd_pipeline_add) */
    if (atomic_load_explicit(&p->wake_wanted, memory_order_seq_cst) &&
        atomic_exchange_explicit(&p->wake_wanted, false, memory_order_acq_rel) && p->wake) {
        p->wake(p->wake_opaque);
        return true;
    }
    return false;
}

void cd_pipeline_disarm_wake(cd_pipeline_t *p)
{
    atomic_store_explicit(&p->wake_wanted, false, memory_order_relaxed);
}

/* Events accepted so far; acquire pairs with cd_pipeline_add's release. */
static uint64_t accepted_now(cd_pipeline_t *p)
{
    uint64_t n = 0;
    for (int i = 0; i < STAT_STRIPES; i++)
        n += atomic_load_explicit(&p->st[i].accepted, memory_order_acquire);
    return n;
}

static int64_t bucket_key(const cd_pipeline_t *p, int64_t b);

bool cd_pipeline_arm_wake(cd_pipeline_t *p, int64_t until_ms, int64_t quiet_ms)
{
    if (!p->lazy || !p->started || !p->wake) return false;
    if (p->clock - p->active_ms < quiet_ms) return false;
    /* a bucket edge before until_ms: that boundary evaluates (see advance) */
    if (bucket_key(p, until_ms) != p->lazy_key) return false;
    if (atomic_load_explicit(&p->release_state, memory_order_acquire) == REL_READY) return false;
    if (cd_engine_next_deadline(p->eng) < until_ms) return false;
    atomic_store_explicit(&p->wake_wanted, true, memory_order_seq_cst);
    /* seq_cst loads: with the seq_cst RMW in cd_pipeline_add and the load in
     * cd_pipeline_poke, either this sees the event or the poke sees the flag */
    uint64_t n = 0;
    for (int i = 0; i < STAT_STRIPES; i++)
        n += atomic_load_explicit(&p->st[i].accepted, memory_order_seq_cst);
    if (n != p->lazy_seen) {
        cd_pipeline_disarm_wake(p);
        return false;
    }
    return true;
}

/* Which buckets a window ending at b reads: those starting before b, so
 * ceil(b / resolution) (b > 0 on any live clock). */
static int64_t bucket_key(const cd_pipeline_t *p, int64_t b)
{
    int64_t res = p->cfg->resolution_ms > 0 ? p->cfg->resolution_ms : 1000;
    return b > 0 ? (b - 1) / res + 1 : b / res;
}

void cd_pipeline_advance(cd_pipeline_t *p, int64_t now_ms)
{
    cd_pipeline_advance_until(p, now_ms, now_ms);
}

void cd_pipeline_advance_until(cd_pipeline_t *p, int64_t now_ms, int64_t until_ms)
{
    int64_t iv = p->cfg->eval_interval_ms > 0 ? p->cfg->eval_interval_ms : 1000;
    bool changed = !p->lazy;
    if (until_ms > now_ms) until_ms = now_ms;

    /* Acquire pairs with learn_release's release store. */
    if (atomic_load_explicit(&p->release_state, memory_order_acquire) == REL_READY) {
        cd_engine_set_release(p->eng, p->release);
        atomic_store_explicit(&p->release_state, REL_APPLIED, memory_order_relaxed);
        changed = true;
    }
    uint64_t seen = 0;
    if (p->lazy) {
        seen = accepted_now(p);
        if (seen != p->lazy_seen) {
            changed = true;
            p->active_ms = now_ms;
        }
    }
    if (!p->started) {
        p->started = true;
        p->clock = now_ms;
        /* last_eval stays INT64_MIN until a boundary is really evaluated:
         * events before the grid's start are not "after evaluation". */
        p->grid = floor_to(p->has_origin ? p->grid_origin : now_ms, iv);
        cd_window_set_clock(p->win, now_ms);
        return;
    }
    if (now_ms <= p->clock && until_ms <= p->grid) return;
    int64_t b = p->grid;
    /* A gap longer than the ring (the stream paused, or the clock re-anchored
     * after a run of events far ahead): once every window has emptied, the
     * evaluations in between all see the same empty windows, so skip to the
     * last span before the end instead of evaluating each boundary (which
     * could be billions of them). The boundaries up to b + span still run, so
     * rules see the data leave and change state as they would have. */
    int64_t empty_after = p->span_ms + iv;
    /* unsigned difference: no overflow for any pair of int64 times */
    bool skip = until_ms > b && (uint64_t)until_ms - (uint64_t)b > 3 * (uint64_t)empty_after;
    int64_t skip_at = skip ? b + empty_after : INT64_MAX;
    bool evaluated = false;
    /* b <= until_ms - iv rather than b + iv <= until_ms: no overflow near INT64_MAX */
    while (b <= until_ms - iv) {
        if (b >= skip_at) {
            b = floor_to(until_ms - empty_after, iv);
            skip_at = INT64_MAX;
        }
        b += iv;
        if (!changed && bucket_key(p, b) == p->lazy_key && b < cd_engine_next_deadline(p->eng)) {
            p->skipped++;
            continue;
        }
        /* Held back (live.c, "Watermark"): the window clock may already be
         * past b; set_clock never moves it back, and the ring keeps slack
         * beyond the longest look-back, which bounds how far back b may be. */
        cd_window_set_clock(p->win, b);
        cd_engine_eval(p->eng, p->win, b, on_record, p);
        if (p->eval_hook) p->eval_hook(p, b, p->eval_opaque);
        p->evaluations++;
        evaluated = true;
        p->lazy_key = bucket_key(p, b);
        atomic_store_explicit(&p->last_eval, b, memory_order_relaxed);
        /* Lazy: the events that made this advance "changed" are now judged;
         * the next boundaries of this advance read the same buckets unless a
         * bucket edge or a deadline comes (the same rule as between
         * advances). A catch-up after a hold thus evaluates each second and
         * deadline once, not 100 times a second of backlog. */
        if (p->lazy) changed = false;
    }
    /* The events counted in seen are judged only if a boundary was
     * evaluated; an advance that passed none (the clock moved less than the
     * grid, or stepped back a little) leaves them for the next boundary,
     * which must then evaluate even inside the same bucket. */
    if (p->lazy && evaluated) p->lazy_seen = seen;
    p->grid = b;
    if (now_ms > p->clock) p->clock = now_ms;
    cd_window_set_clock(p->win, p->clock);
}

void cd_pipeline_stats(const cd_pipeline_t *p, cd_pipeline_stats_t *out)
{
    cd_pipeline_t *q = (cd_pipeline_t *)p; /* atomic loads take non-const pointers in C11 */
    memset(out, 0, sizeof(*out));
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (int i = 0; i < STAT_STRIPES; i++) {
        stat_stripe_t *st = &q->st[i];
        for (int t = 0; t <= CD_MAX_TYPES; t++)
            for (int c = 0; c < CD_NCOHORTS; c++) {
                uint64_t n = atomic_load_explicit(&st->by_type[t][c], memory_order_relaxed);
                out->by_type[t][c] += n;
                out->accepted += n;
            }
        int64_t f = atomic_load_explicit(&st->first_ms, memory_order_relaxed);
        int64_t l = atomic_load_explicit(&st->last_ms, memory_order_relaxed);
        if (f < first) first = f;
        if (l > last) last = l;
        out->after_eval += atomic_load_explicit(&st->after_eval, memory_order_relaxed);
    }
    for (int r = 0; r < CD_BAD__COUNT; r++) {
        out->bad[r] = atomic_load_explicit(&q->bad[r], memory_order_relaxed);
        out->bad_total += out->bad[r];
    }
    for (int i = 0; i < STAT_STRIPES; i++) {
        out->other_service += atomic_load_explicit(&q->svc[i].other_service, memory_order_relaxed);
        out->no_service += atomic_load_explicit(&q->svc[i].no_service, memory_order_relaxed);
    }
    out->bad_numeric = atomic_load_explicit(&q->bad_numeric, memory_order_relaxed);
    out->late = atomic_load_explicit(&q->late, memory_order_relaxed);
    out->future = atomic_load_explicit(&q->future, memory_order_relaxed);
    if (out->accepted) {
        out->first_ms = first;
        out->last_ms = last;
    }
    out->evaluations = p->evaluations;
    out->records = p->records;
    out->clock_ms = p->clock;
    out->last_eval_ms = p->evaluations ? atomic_load_explicit(&q->last_eval, memory_order_relaxed) : 0;
}

int cd_pipeline_ntypes(const cd_pipeline_t *p)
{
    return p->cfg->decode.ntypes;
}

const char *cd_pipeline_type_name(const cd_pipeline_t *p, int i)
{
    CD_ASSERT(i >= 0 && i < p->cfg->decode.ntypes);
    return p->cfg->type_names[i];
}

cd_verdict_kind_t cd_pipeline_verdict(const cd_pipeline_t *p)
{
    return cd_engine_verdict(p->eng);
}

int cd_pipeline_firing_rules(const cd_pipeline_t *p, const char **names, int max)
{
    int n = 0;
    for (int i = 0; i < p->cfg->nrules; i++) {
        cd_verdict_t last;
        if (p->cfg->rules[i].dry_run) continue;
        if (cd_engine_rule_state(p->eng, i, &last) != CD_STATE_FIRING) continue;
        if (n < max) names[n] = p->cfg->rules[i].name;
        n++;
    }
    return n;
}

const char *cd_pipeline_release(const cd_pipeline_t *p)
{
    cd_pipeline_t *q = (cd_pipeline_t *)p;
    int st = atomic_load_explicit(&q->release_state, memory_order_acquire);
    return st >= REL_READY ? p->release : "";
}

const char *cd_pipeline_service(const cd_pipeline_t *p)
{
    cd_pipeline_t *q = (cd_pipeline_t *)p;
    /* acquire pairs with learn_service's release store */
    int st = atomic_load_explicit(&q->service_state, memory_order_acquire);
    return st >= REL_READY ? p->service : "";
}

bool cd_pipeline_service_configured(const cd_pipeline_t *p)
{
    return p->cfg->service[0] != '\0';
}

void cd_pipeline_summary_service(const cd_pipeline_t *p, const cd_pipeline_stats_t *s, FILE *f)
{
    const char *svc = cd_pipeline_service(p);
    if (p->cfg->service[0])
        fprintf(f,
                "  service: %s (events.service); other services, not judged: %llu; without a "
                "service field, not judged: %llu\n",
                svc, (unsigned long long)s->other_service, (unsigned long long)s->no_service);
    else if (*svc)
        fprintf(f,
                "  service: %s (learnt from the first canary event; events.service not set: "
                "every event judged)\n",
                svc);
    else
        fprintf(f, "  service: (unknown; events.service not set: every event judged)\n");
}

void cd_pipeline_log_service(const cd_pipeline_t *p)
{
    if (p->cfg->service[0])
        cd_log(CD_LOG_INFO,
               "judging only service \"%s\" (events.service): events whose %s field names "
               "another service, or none, are counted as other_service / no_service and not "
               "judged",
               p->cfg->service, p->cfg->decode.service_path);
    else
        cd_log(CD_LOG_INFO,
               "events.service is not set: every event is judged, whatever its service (on a "
               "topic shared by several services, set events.service or CANARYD_SERVICE); the "
               "service named to sinks is learnt from the first canary event's %s field",
               p->cfg->decode.service_path);
}

void cd_pipeline_new_release(cd_pipeline_t *p, const char *release)
{
    /* Take the release slot from the ingesters for good: after APPLIED no
     * worker writes p->release (learn_release only writes from UNKNOWN), so
     * this thread may. A worker caught copying (WRITING) finishes first. */
    for (;;) {
        int st = atomic_load_explicit(&p->release_state, memory_order_acquire);
        if (st == REL_WRITING) continue; /* a few byte copies away */
        if (atomic_compare_exchange_strong_explicit(&p->release_state, &st, REL_APPLIED,
                                                    memory_order_acq_rel, memory_order_acquire))
            break;
    }
    snprintf(p->release, sizeof(p->release), "%s", release);
    p->declared = true;
    /* The next boundary evaluated is after the clock: start the release there. */
    cd_engine_new_release(p->eng, p->release, p->started ? p->clock : 0);
}

void cd_pipeline_restore_decision(cd_pipeline_t *p, const char *release, cd_verdict_kind_t v)
{
    CD_ASSERT(!p->started);
    /* before any worker runs: the release is simply taken, as the config's is */
    atomic_store_explicit(&p->release_state, REL_APPLIED, memory_order_release);
    snprintf(p->release, sizeof(p->release), "%s", release);
    cd_engine_restore_decision(p->eng, p->release, v);
}

void cd_pipeline_new_judgement(cd_pipeline_t *p)
{
    int64_t at = p->started ? p->clock : 0;
    if (p->declared || p->cfg->canary_version[0]) {
        /* A release the operator named stays named: judge it again. */
        cd_engine_new_release(p->eng, p->release, at);
        return;
    }
    /* A learnt release is learnt again, from the new run's canary events:
     * its version may have changed. learn_after before the release store
     * below (learn_release's acquire pairs with it). A worker caught copying
     * (WRITING) finishes first; what it copied is dropped. */
    atomic_store_explicit(&p->learn_after, at, memory_order_relaxed);
    for (;;) {
        int st = atomic_load_explicit(&p->release_state, memory_order_acquire);
        if (st == REL_WRITING) continue;
        if (atomic_compare_exchange_strong_explicit(&p->release_state, &st, REL_UNKNOWN,
                                                    memory_order_acq_rel, memory_order_acquire))
            break;
    }
    cd_engine_new_release(p->eng, "", at);
}

int cd_pipeline_nrules(const cd_pipeline_t *p)
{
    return p->cfg->nrules;
}

cd_rule_state_t cd_pipeline_rule_state(const cd_pipeline_t *p, int i, cd_verdict_t *last)
{
    return cd_engine_rule_state(p->eng, i, last);
}

cd_window_t *cd_pipeline_window(cd_pipeline_t *p)
{
    return p->win;
}

void cd_pipeline_set_eval_hook(cd_pipeline_t *p, cd_pipeline_eval_cb cb, void *opaque)
{
    p->eval_hook = cb;
    p->eval_opaque = opaque;
}

bool cd_pipeline_rule_sample(const cd_pipeline_t *p, int i, cd_rule_sample_t *out)
{
    return cd_engine_rule_sample(p->eng, i, out);
}

void cd_pipeline_set_catchup(cd_pipeline_t *p, bool catchup)
{
    atomic_store_explicit(&p->catchup, catchup, memory_order_relaxed);
}

bool cd_pipeline_catchup(const cd_pipeline_t *p)
{
    return atomic_load_explicit(&((cd_pipeline_t *)p)->catchup, memory_order_relaxed);
}
