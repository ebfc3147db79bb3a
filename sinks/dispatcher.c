/*
 * dispatcher.c - the bounded queue between the evaluating thread and the
 * sinks, and the thread that delivers from it (see dispatcher.h).
 *
 * Data structure: submitters render a record into a heap item (the record
 * and copies of its borrowed strings, plus the JSON line) and push its
 * pointer into a ring of queue_size slots under a mutex held for a few
 * instructions (or, in batch mode, waits for the dispatcher thread to make
 * room). Queue priority (cd_dsp_rank): a full ring or sink FIFO makes room
 * for a record by evicting the oldest record of the lowest rank below its
 * own (a state record first, then an ANALYZING / HEALTHY verdict), counted
 * and logged; a record nothing ranks below is dropped and counted. A
 * decision (ROLLBACK, PROMOTE, ALERT) is never evicted and never refused:
 * when only decisions are queued the ring (doubling, up to RING_MAX) or the
 * FIFO grows past queue_size for it. Decisions are a handful per release,
 * so the growth is bounded in practice by what the rules can decide. The
 * dispatcher
 * thread takes every item from the ring at once, applies each sink's
 * filter and appends an entry to that sink's FIFO; an item is shared by the
 * sinks that took it and freed by the last one (refcount).
 *
 * Delivery: each sink delivers its FIFO in order with one record in flight
 * at a time, so chat messages arrive in the order the verdicts were made and
 * an exec hook never runs twice at once. RETRY puts the head entry back with
 * a delay drawn uniformly from [0, min(cap, base * 2^(attempt-1))] ("full
 * jitter": spreads retries from many agents), but never shorter than the
 * destination's Retry-After. A token bucket per sink (rate_limit messages per
 * second, refilled only while no delivery is in flight) holds deliveries back
 * without counting an attempt. Asynchronous
 * sinks (webhook, exec) return PENDING and are driven from their poll():
 * while one is in flight the thread alternates between short polls (<= 20 ms)
 * and the ring, so new records still move into FIFOs promptly.
 *
 * Accounting: `outstanding` counts records in the ring plus entries in sink
 * FIFOs; drain waits on it reaching zero. Per-sink counters are atomics
 * written by the dispatcher thread and read by any thread (relaxed: they are
 * statistics, no other data is published through them).
 *
 * The types are in dispatcher_internal.h; one sink entry of the config is
 * parsed in dispatcher_conf.c, the section around it here.
 *
 * Trade-off: the ring is mutex-protected rather than lock-free. Submitters
 * contend only with each other and with a thread that holds the lock for a
 * pointer copy, a few times per verdict, and verdicts come a few per second
 * at most; the evaluating thread never waits for a sink.
 */
#include "canaryd/dispatcher.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canaryd/clock.h"
#include "canaryd/coord.h"
#include "canaryd/deadline.h"
#include "canaryd/log.h"
#include "canaryd/sink.h"
#include "canaryd/verdict_fmt.h"
#include "coord_internal.h"
#include "dispatcher_internal.h"
#include "sink_util.h"

static cd_dispatcher_t *dispatcher_alloc(size_t cap)
{
    cd_dispatcher_t *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->cap = cap;
    d->ring_cap = cap;
    d->drain_ms = DEFAULT_DRAIN_MS;
    d->ring = calloc(cap, sizeof(*d->ring));
    if (!d->ring) {
        free(d);
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->wake, NULL);
    pthread_cond_init(&d->space, NULL);
    pthread_cond_init(&d->idle, NULL);
    return d;
}

/* Parses the section; builds the sinks into d when d != NULL, else builds
 * and frees them (check). */
static cd_dispatcher_t *parse_section(const cd_config_t *cfg, cd_diag_t *diag, bool keep)
{
    static const char *const KEYS[] = {"queue_size", "drain_timeout", "outputs", "ledger", NULL};
    const json_t *sec = cfg ? cfg->sinks_json : NULL;
    double qsize = DEFAULT_QUEUE;
    int64_t drain = DEFAULT_DRAIN_MS;
    int before = diag->count;
    cd_dispatcher_t *d = NULL;

    if (sec) {
        cd_sconf_keys(diag, "sinks", sec, KEYS, false);
        if (cd_sconf_number(diag, "sinks", sec, "queue_size", 1, 1 << 20, &qsize) &&
            qsize != (double)(size_t)qsize) {
            cd_sconf_bad(diag, "sinks.queue_size", json_object_get(sec, "queue_size"), false,
                         "is not an integer", "an integer from 1 to 1048576");
            qsize = DEFAULT_QUEUE;
        }
        cd_sconf_duration(diag, "sinks", sec, "drain_timeout", 0, 600000, &drain);
    }
    d = dispatcher_alloc((size_t)qsize);
    if (!d) {
        cd_diag_add(diag, "sinks: out of memory");
        return NULL;
    }
    d->drain_ms = drain;
    if (sec) cd_sconf_string(diag, "sinks", sec, "ledger", false, false, &d->ledger_path);
    json_t *outs = sec ? json_object_get(sec, "outputs") : NULL;
    if (outs && !json_is_array(outs)) {
        cd_sconf_bad(diag, "sinks.outputs", outs, false, "is not a list",
                     "a list of sink entries (objects)");
    } else if (outs) {
        size_t i;
        json_t *e;
        json_array_foreach(outs, i, e)
        {
            char p[64];
            snprintf(p, sizeof(p), "sinks.outputs[%zu]", i);
            if (d->nsinks == MAX_SINKS) {
                cd_diag_add(diag, "%s: too many sinks; accepted: at most %d", p, MAX_SINKS);
                break;
            }
            sink_t *s = cd_dsp_parse_entry(d, cfg, e, p, diag);
            if (s) d->sinks[d->nsinks++] = s;
        }
    }
    if (diag->count > before || !keep) {
        cd_dispatcher_destroy(d);
        return NULL;
    }
    return d;
}

cd_dispatcher_t *cd_dispatcher_new(const cd_config_t *cfg, cd_diag_t *diag)
{
    return parse_section(cfg, diag, true);
}

int cd_dispatcher_check(const cd_config_t *cfg, cd_diag_t *diag)
{
    int before = diag->count;
    parse_section(cfg, diag, false);
    return diag->count - before;
}

int cd_dispatcher_add(cd_dispatcher_t *d, const void *entry, const char *path, cd_diag_t *diag)
{
    CD_ASSERT(!d->started);
    if (d->nsinks == MAX_SINKS) {
        cd_diag_add(diag, "%s: too many sinks; accepted: at most %d", path, MAX_SINKS);
        return -1;
    }
    sink_t *s = cd_dsp_parse_entry(d, NULL, entry, path, diag);
    if (!s) return -1;
    d->sinks[d->nsinks++] = s;
    return 0;
}

void cd_dispatcher_set_coord(cd_dispatcher_t *d, struct cd_coord *c)
{
    CD_ASSERT(!d->started);
    d->coord = c;
}

const char *cd_dispatcher_ledger_path(const cd_dispatcher_t *d)
{
    return d->ledger_path;
}

struct cd_coord *cd_dispatcher_coord(const cd_dispatcher_t *d)
{
    return d->coord;
}

void cd_dispatcher_set_ledger(cd_dispatcher_t *d, struct cd_ledger *l)
{
    CD_ASSERT(!d->started);
    d->ledger = l;
}

void cd_dispatcher_set_blocking(cd_dispatcher_t *d, bool blocking)
{
    d->blocking = blocking;
}

int64_t cd_dispatcher_drain_timeout(const cd_dispatcher_t *d)
{
    return d->drain_ms;
}

uint64_t cd_dispatcher_overflows(const cd_dispatcher_t *d)
{
    /* relaxed: a statistic */
    return atomic_load_explicit(&d->overflows, memory_order_relaxed);
}

/* ---- submit ---- */

int cd_dsp_rank(const item_t *it)
{
    const cd_verdict_t *v = &it->v;
    if (it->heartbeat || v->record == CD_RECORD_STATE) return CD_RANK_STATE;
    if (v->verdict == CD_VERDICT_ROLLBACK || v->verdict == CD_VERDICT_PROMOTE ||
        v->verdict == CD_VERDICT_ALERT)
        return CD_RANK_DECISION;
    return CD_RANK_VERDICT;
}

static void overflow(cd_dispatcher_t *d, const cd_verdict_t *v, const char *what)
{
    uint64_t o = atomic_fetch_add_explicit(&d->overflows, 1, memory_order_relaxed) + 1;
    cd_log_ratelimited("dispatcher-overflow", CD_LOG_WARN,
                       "sink queue full (%zu records): %s record %s (%llu so far)", d->cap,
                       v->record == CD_RECORD_STATE ? "a state" : cd_verdict_kind_name(v->verdict),
                       what, (unsigned long long)o);
}

/* Under mu: the ring slot of the oldest record that gives way to one of
 * rank `rank` (the lowest rank queued, if lower than `rank`), or -1. */
static long ring_victim(const cd_dispatcher_t *d, int rank)
{
    long best = -1;
    int best_rank = rank;
    for (size_t i = 0; i < d->count && best_rank > CD_RANK_STATE; i++) {
        int r = cd_dsp_rank(d->ring[(d->head + i) % d->ring_cap]);
        if (r < best_rank) {
            best_rank = r;
            best = (long)i;
        }
    }
    return best;
}

/* Under mu: removes the record at ring position i (0 = oldest), keeping the
 * others' order; returns it. */
static item_t *ring_remove(cd_dispatcher_t *d, size_t i)
{
    item_t *it = d->ring[(d->head + i) % d->ring_cap];
    for (size_t k = i; k + 1 < d->count; k++)
        d->ring[(d->head + k) % d->ring_cap] = d->ring[(d->head + k + 1) % d->ring_cap];
    d->count--;
    d->outstanding--;
    return it;
}

/* Under mu: doubles the ring (in order, from slot 0). false: out of memory
 * or at the hard limit. */
static bool ring_grow(cd_dispatcher_t *d)
{
    if (d->ring_cap >= RING_MAX) return false;
    size_t n = d->ring_cap * 2 > RING_MAX ? RING_MAX : d->ring_cap * 2;
    item_t **r = malloc(n * sizeof(*r));
    if (!r) return false;
    for (size_t i = 0; i < d->count; i++)
        r[i] = d->ring[(d->head + i) % d->ring_cap];
    free(d->ring);
    d->ring = r;
    d->ring_cap = n;
    d->head = 0;
    return true;
}

/*
 * Under mu: puts it at the ring's tail. Below queue_size records it always
 * fits. At queue_size, the oldest record of the lowest rank below its own
 * gives way (*evicted, for the caller to count and free outside the lock):
 * a state record first, then an ANALYZING / HEALTHY verdict. A decision
 * (ROLLBACK, PROMOTE, ALERT) that finds only decisions is still queued: the
 * ring grows past queue_size for it (decisions are a handful per release).
 * false: it was not queued (nothing gives way to it, or no memory).
 */
static bool ring_admit(cd_dispatcher_t *d, item_t *it, item_t **evicted)
{
    int rank = cd_dsp_rank(it);
    if (d->count >= d->cap) {
        long i = ring_victim(d, rank);
        if (i >= 0)
            *evicted = ring_remove(d, (size_t)i);
        else if (rank != CD_RANK_DECISION)
            return false;
    }
    if (d->count == d->ring_cap && !ring_grow(d)) return false;
    d->ring[(d->head + d->count) % d->ring_cap] = it;
    d->count++;
    return true;
}

static void copy_str(char *dst, size_t size, const char **field)
{
    if (!*field) return;
    snprintf(dst, size, "%s", *field);
    *field = dst;
}

bool cd_dispatcher_submit(cd_dispatcher_t *d, const cd_verdict_t *v)
{
    char json[4096];
    int n = cd_verdict_to_json(v, json, sizeof(json));
    if (n < 0) {
        cd_log_ratelimited("dispatcher-render", CD_LOG_ERROR,
                           "a verdict record (rule %s) could not be rendered; not delivered",
                           v->rule ? v->rule : "-");
        return false;
    }
    item_t *it = malloc(sizeof(*it) + (size_t)n + 1);
    if (!it) {
        cd_log_ratelimited("dispatcher-oom", CD_LOG_ERROR, "out of memory queueing a record");
        return false;
    }
    it->v = *v;
    it->heartbeat = false;
    it->token = 0;
    it->claimed = false;
    it->claim_key[0] = '\0';
    it->decision = cd_decision_id(v, it->decision_id, sizeof(it->decision_id), &it->decision_once);
    copy_str(it->rule, sizeof(it->rule), &it->v.rule);
    copy_str(it->rule_kind, sizeof(it->rule_kind), &it->v.rule_kind);
    copy_str(it->release, sizeof(it->release), &it->v.release);
    copy_str(it->service, sizeof(it->service), &it->v.service);
    copy_str(it->stable_source, sizeof(it->stable_source), &it->v.stable_source);
    memcpy(it->json, json, (size_t)n + 1);
    it->json_len = (size_t)n;
    atomic_init(&it->refs, 0);
    /* relaxed: only uniqueness matters */
    it->id = atomic_fetch_add_explicit(&d->next_id, 1, memory_order_relaxed) + 1;

    item_t *evicted = NULL;
    pthread_mutex_lock(&d->mu);
    while (d->blocking && d->started && !d->stop && d->count >= d->cap)
        pthread_cond_wait(&d->space, &d->mu);
    bool queued = !d->stop && ring_admit(d, it, &evicted);
    if (queued) {
        d->outstanding++;
        pthread_cond_signal(&d->wake);
    }
    pthread_mutex_unlock(&d->mu);
    if (evicted) {
        overflow(d, &evicted->v, "dropped to make room for a more important record");
        free(evicted);
    }
    if (!queued) {
        overflow(d, v, cd_dsp_rank(it) == CD_RANK_DECISION ? "dropped: out of memory growing the queue"
                                                            : "dropped");
        free(it);
    }
    return queued;
}

item_t *cd_dsp_item_copy(const item_t *src, uint64_t token)
{
    char tail[48] = "";
    bool stamp = token && src->json_len > 1 && src->json[src->json_len - 1] == '}';
    if (stamp) snprintf(tail, sizeof(tail), ",\"fencing_token\":%llu}", (unsigned long long)token);
    size_t n = stamp ? src->json_len - 1 + strlen(tail) : src->json_len;
    item_t *it = malloc(sizeof(*it) + n + 1);
    if (!it) return NULL;
    memcpy(it, src, sizeof(*it));
    /* the record's strings point into the copy's own arrays */
    if (src->v.rule) it->v.rule = it->rule;
    if (src->v.rule_kind) it->v.rule_kind = it->rule_kind;
    if (src->v.release) it->v.release = it->release;
    if (src->v.stable_source) it->v.stable_source = it->stable_source;
    if (src->v.service) it->v.service = it->service;
    memcpy(it->json, src->json, src->json_len);
    if (stamp) memcpy(it->json + src->json_len - 1, tail, strlen(tail));
    it->json[n] = '\0';
    it->json_len = n;
    it->token = stamp ? token : 0;
    atomic_init(&it->refs, 0);
    return it;
}

void cd_dsp_submit_claimed(cd_dispatcher_t *d, item_t *it)
{
    it->claimed = true;
    it->id = atomic_fetch_add_explicit(&d->next_id, 1, memory_order_relaxed) + 1;
    pthread_mutex_lock(&d->mu);
    /* waits for room like a batch submit: the claim is taken, so the record
     * must not be dropped here (the dispatcher thread never waits for us) */
    while (!d->stop && d->count >= d->cap) /* the thread runs: it makes room */
        pthread_cond_wait(&d->space, &d->mu);
    if (d->stop) {
        pthread_mutex_unlock(&d->mu);
        free(it); /* shutting down: the claim stays "claimed" for the next leader */
        return;
    }
    if (d->count == d->ring_cap && !ring_grow(d)) {
        pthread_mutex_unlock(&d->mu);
        overflow(d, &it->v, "dropped: out of memory growing the queue");
        free(it);
        return;
    }
    d->ring[(d->head + d->count) % d->ring_cap] = it;
    d->count++;
    d->outstanding++;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->mu);
}

void cd_dispatcher_reopen(cd_dispatcher_t *d)
{
    pthread_mutex_lock(&d->mu);
    d->reopen = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->mu);
}

/* ---- the dispatcher thread ---- */

static void outstanding_sub(cd_dispatcher_t *d, uint64_t n)
{
    pthread_mutex_lock(&d->mu);
    d->outstanding -= n;
    if (d->outstanding == 0) pthread_cond_broadcast(&d->idle);
    pthread_mutex_unlock(&d->mu);
}

static void item_release(cd_dispatcher_t *d, item_t *it)
{
    /* acq_rel: the last holder must see the others' reads finished before
     * freeing (all on one thread today; kept correct if sinks ever split). */
    if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) == 1) {
        /* every shared sink is finished with a claimed record: it is done */
        if (it->claim_key[0] && d->coord && !d->abandoning) cd_coord_done(d->coord, it->claim_key);
        free(it);
    }
}

static const char *what(const item_t *it, char *buf, size_t size);

static bool takes(sink_t *s, const cd_verdict_t *v)
{
    const filter_t *f = &s->f;
    /* After its ROLLBACK a release has no release-wide record but that of a
     * new judgement (engine_release.c; POST /api/v1/release, a new Flagger
     * run): from then on its ROLLBACK is news again. Before the filter, so
     * a sink that takes only ROLLBACKs hears the new one too. */
    if (s->rollback_sent && v->record == CD_RECORD_VERDICT && !v->rule &&
        (v->verdict == CD_VERDICT_ANALYZING || v->verdict == CD_VERDICT_HEALTHY) && v->release &&
        strcmp(s->rollback_release, v->release) == 0)
        s->rollback_sent = false;
    if (v->record == CD_RECORD_STATE) {
        bool resolved_alert = v->to == CD_STATE_RESOLVED && v->rule && v->action == CD_ACTION_ALERT;
        if (!f->kind_state && !(s->send_resolved && resolved_alert)) return false;
    } else {
        if (!f->kind_verdict) return false;
        if (f->verdicts && !(f->verdicts & (1u << v->verdict))) return false;
    }
    if (f->actions && (!v->rule || !(f->actions & (1u << v->action)))) return false;
    if (f->nrules) {
        bool hit = false;
        for (int i = 0; v->rule && i < f->nrules && !hit; i++)
            hit = strcmp(f->rules[i], v->rule) == 0;
        if (!hit) return false;
    }
    /* A ROLLBACK is final for a judgement of a release: each sink hears it once. */
    if (v->record == CD_RECORD_VERDICT && v->verdict == CD_VERDICT_ROLLBACK) {
        if (s->rollback_sent && strcmp(s->rollback_release, v->release) == 0) return false;
        s->rollback_sent = true;
        snprintf(s->rollback_release, sizeof(s->rollback_release), "%s", v->release);
    }
    return true;
}

/*
 * A full FIFO (queue_size entries) makes room for a record of rank `rank`:
 * the oldest entry of the lowest rank below it gives way (a state record
 * first, then an ANALYZING / HEALTHY verdict), never the one in flight. A
 * decision always gets in: when only decisions wait, the FIFO grows past
 * queue_size. false: the record is dropped (nothing gives way to it).
 */
static bool fifo_make_room(sink_t *s, int rank)
{
    entry_t *prev = NULL, *victim = NULL, *victim_prev = NULL;
    int best = rank;
    for (entry_t *e = s->head; e && best > CD_RANK_STATE; prev = e, e = e->next) {
        if (e == s->head && s->inflight) continue;
        int r = cd_dsp_rank(e->it);
        if (r < best) {
            best = r;
            victim = e;
            victim_prev = prev;
        }
    }
    if (!victim) return rank == CD_RANK_DECISION;
    char w[128];
    if (victim_prev)
        victim_prev->next = victim->next;
    else
        s->head = victim->next;
    if (s->tail == victim) s->tail = victim_prev;
    s->len--;
    atomic_fetch_sub_explicit(&s->pending, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
    cd_log_ratelimited(s->name, CD_LOG_WARN,
                       "sink %s: %zu records waiting, record %llu (%s) dropped to make room for a "
                       "more important one",
                       s->name, s->len + 1, (unsigned long long)victim->it->id,
                       what(victim->it, w, sizeof(w)));
    item_release(s->d, victim->it);
    free(victim);
    outstanding_sub(s->d, 1);
    return true;
}

/* A decision goes to a sink the ledger does not say has it: delivered
 * (before a restart too) or queued now (the rebuild's copy of a decision
 * offered again at start). */
static bool ledger_takes(cd_dispatcher_t *d, sink_t *s, const item_t *it)
{
    if (!d->ledger || !it->decision) return true;
    cd_ledger_state_t st = cd_ledger_sink_state(d->ledger, it->decision_id, it->decision_once,
                                                it->v.time_ms, s->name);
    /* A repeating decision (ALERT) made again while catching up is the past
     * decided again, on the rebuild's evaluation grid rather than the one
     * it was first made on: any copy the sink has makes it old news. */
    if (st == CD_LEDGER_NEW && it->v.catchup && !it->decision_once)
        st = cd_ledger_sink_state(d->ledger, it->decision_id, false, INT64_MIN + 1, s->name);
    if (st == CD_LEDGER_NEW) return true;
    cd_log(CD_LOG_INFO, "sink %s: %s %s already %s; not again (ledger %s)", s->name,
           cd_verdict_kind_name(it->v.verdict), it->decision_id,
           st == CD_LEDGER_DELIVERED ? "delivered" : "queued", cd_ledger_path(d->ledger));
    return false;
}

enum scope { ALL, LOCAL, SHARED };

/* Moves one item into the FIFOs of the sinks (in scope: local = type "log")
 * that take it; returns how many. */
static uint64_t distribute(cd_dispatcher_t *d, item_t *it, int64_t now, enum scope sc)
{
    uint64_t n = 0;
    atomic_store_explicit(&it->refs, 1, memory_order_relaxed); /* ours, while distributing */
    /* remembered before any sink has it (ledger.h) */
    if (d->ledger && it->decision) cd_ledger_decided(d->ledger, &it->v, it->json, cd_wall_ms());
    for (int i = 0; i < d->nsinks; i++) {
        sink_t *s = d->sinks[i];
        if ((sc == LOCAL && !s->local) || (sc == SHARED && s->local)) continue;
        if (!takes(s, &it->v) || !ledger_takes(d, s, it)) {
            atomic_fetch_add_explicit(&s->filtered, 1, memory_order_relaxed);
            continue;
        }
        if (s->len >= d->cap && !fifo_make_room(s, cd_dsp_rank(it))) {
            atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
            cd_log_ratelimited(s->name, CD_LOG_WARN,
                               "sink %s: %zu records waiting, record %llu dropped", s->name, s->len,
                               (unsigned long long)it->id);
            continue;
        }
        entry_t *e = calloc(1, sizeof(*e));
        if (!e) {
            atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
            cd_log_ratelimited("dispatcher-oom", CD_LOG_ERROR, "out of memory queueing a record");
            continue;
        }
        e->it = it;
        e->not_before = now;
        atomic_fetch_add_explicit(&it->refs, 1, memory_order_relaxed);
        if (s->tail)
            s->tail->next = e;
        else
            s->head = e;
        s->tail = e;
        s->len++;
        atomic_fetch_add_explicit(&s->pending, 1, memory_order_relaxed);
        if (d->ledger && it->decision)
            cd_ledger_sink_queued(d->ledger, it->decision_id, it->decision_once, it->v.time_ms,
                                  s->name);
        n++;
    }
    item_release(d, it);
    return n;
}

/* Coordinated (coord.c): a decisive record goes to the local sinks now and
 * to the coordinator, which hands it back claimed (it->claimed) for the
 * shared ones; any other record reaches the shared sinks only while this
 * agent is the notifier, stamped with its fencing token. */
static uint64_t route(cd_dispatcher_t *d, item_t *it, int64_t now)
{
    if (!d->coord || it->heartbeat) return distribute(d, it, now, ALL);
    if (it->claimed) return distribute(d, it, now, SHARED);
    if (cd_coord_decisive(&it->v)) {
        item_t *copy = cd_dsp_item_copy(it, 0);
        if (copy)
            cd_coord_offer(d->coord, copy);
        else
            cd_log_ratelimited("dispatcher-oom", CD_LOG_ERROR,
                               "out of memory offering a record for its claim");
        return distribute(d, it, now, LOCAL);
    }
    uint64_t token = 0;
    if (!cd_coord_sharing(d->coord, &token)) return distribute(d, it, now, LOCAL);
    item_t *stamped = token ? cd_dsp_item_copy(it, token) : NULL;
    if (!stamped) return distribute(d, it, now, ALL);
    uint64_t n = distribute(d, it, now, LOCAL);
    return n + distribute(d, stamped, now, SHARED);
}

static void pop_head(sink_t *s)
{
    entry_t *e = s->head;
    s->head = e->next;
    if (!s->head) s->tail = NULL;
    s->len--;
    s->inflight = false;
    atomic_fetch_sub_explicit(&s->pending, 1, memory_order_relaxed);
    item_release(s->d, e->it);
    free(e);
    outstanding_sub(s->d, 1);
}

static const char *what(const item_t *it, char *buf, size_t size)
{
    const cd_verdict_t *v = &it->v;
    if (it->heartbeat)
        snprintf(buf, size, "heartbeat");
    else if (v->record == CD_RECORD_STATE)
        snprintf(buf, size, "state %s %s -> %s", v->rule ? v->rule : "-",
                 cd_rule_state_name(v->from), cd_rule_state_name(v->to));
    else
        snprintf(buf, size, "%s%s%s", cd_verdict_kind_name(v->verdict), v->rule ? " " : "",
                 v->rule ? v->rule : "");
    return buf;
}

/* Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. */
static int64_t backoff_ms(const sink_t *s, int attempt)
{
    int64_t ceil = s->base_ms;
    for (int i = 1; i < attempt && ceil < s->cap_ms; i++)
        ceil *= 2;
    if (ceil > s->cap_ms) ceil = s->cap_ms;
    return (int64_t)arc4random_uniform((uint32_t)(ceil > UINT32_MAX - 1 ? UINT32_MAX - 1 : ceil) +
                                       1);
}

static void finish_outcome(sink_t *s, cd_sink_result_t r, int64_t retry_after_ms);

static void finish(sink_t *s, cd_sink_result_t r, int64_t retry_after_ms)
{
    finish_outcome(s, r, retry_after_ms);
    /* The sink's state may have changed (an alert fired or resolved, a
     * re-send went out): when does it next want a message of its own? */
    if (s->ops->heartbeat) s->beat_at = s->ops->heartbeat(s->state, cd_sink_now_ms());
}

/* Queues a heartbeat message for s (its FIFO is empty). */
static void queue_heartbeat(cd_dispatcher_t *d, sink_t *s, int64_t now)
{
    item_t *it = calloc(1, sizeof(*it) + 1);
    entry_t *e = calloc(1, sizeof(*e));
    s->beat_at = INT64_MAX; /* asked again once this one's outcome is known */
    if (!it || !e) {
        free(it);
        free(e);
        cd_log_ratelimited("dispatcher-oom", CD_LOG_ERROR, "out of memory queueing a heartbeat");
        s->beat_at = now + 1000; /* try again, not never */
        return;
    }
    it->heartbeat = true;
    it->id = atomic_fetch_add_explicit(&d->next_id, 1, memory_order_relaxed) + 1;
    atomic_store_explicit(&it->refs, 1, memory_order_relaxed);
    e->it = it;
    e->not_before = now;
    s->head = s->tail = e;
    s->len = 1;
    atomic_fetch_add_explicit(&s->pending, 1, memory_order_relaxed);
    pthread_mutex_lock(&d->mu);
    d->outstanding++;
    pthread_mutex_unlock(&d->mu);
}

static void finish_outcome(sink_t *s, cd_sink_result_t r, int64_t retry_after_ms)
{
    entry_t *e = s->head;
    char w[128];
    /* The rate limit spaces a delivery from the end of the previous one,
     * not its start: tokens do not accrue while one is in flight, so a
     * destination sees messages at most rate_limit per second even when the
     * first one was slow to arrive (Slack counts at its end). */
    if (s->rate > 0) s->tokens_at = cd_sink_now_ms();
    cd_ledger_t *l = e->it->decision ? s->d->ledger : NULL;
    if (l && r == CD_SINK_OK)
        cd_ledger_delivered(l, e->it->decision_id, e->it->decision_once, e->it->v.time_ms,
                            s->name);
    else if (l && (r == CD_SINK_DROP || e->attempt >= s->max_attempts))
        cd_ledger_sink_failed(l, e->it->decision_id, e->it->decision_once, s->name);
    if (r == CD_SINK_OK) {
        atomic_fetch_add_explicit(&s->delivered, 1, memory_order_relaxed);
        cd_log(CD_LOG_DEBUG, "sink %s: delivered record %llu (%s), attempt %d", s->name,
               (unsigned long long)e->it->id, what(e->it, w, sizeof(w)), e->attempt);
        pop_head(s);
    } else if (r == CD_SINK_DROP) {
        atomic_fetch_add_explicit(&s->failed, 1, memory_order_relaxed);
        cd_log(CD_LOG_ERROR, "sink %s: record %llu (%s) dropped: the destination refused it",
               s->name, (unsigned long long)e->it->id, what(e->it, w, sizeof(w)));
        pop_head(s);
    } else if (e->attempt >= s->max_attempts) {
        atomic_fetch_add_explicit(&s->failed, 1, memory_order_relaxed);
        cd_log(CD_LOG_ERROR, "sink %s: record %llu (%s) dropped after %d attempts", s->name,
               (unsigned long long)e->it->id, what(e->it, w, sizeof(w)), e->attempt);
        pop_head(s);
    } else {
        int64_t delay = backoff_ms(s, e->attempt);
        if (retry_after_ms > delay) delay = retry_after_ms;
        atomic_fetch_add_explicit(&s->retries, 1, memory_order_relaxed);
        cd_log_ratelimited(s->name, CD_LOG_WARN,
                           "sink %s: record %llu (%s) attempt %d failed; retrying in %lld ms%s",
                           s->name, (unsigned long long)e->it->id, what(e->it, w, sizeof(w)),
                           e->attempt, (long long)delay,
                           retry_after_ms >= 0 ? " (Retry-After)" : "");
        e->not_before = cd_sink_now_ms() + delay;
        s->inflight = false;
    }
}

static void on_done(void *opaque, uint64_t msg_id, cd_sink_result_t r, int64_t retry_after_ms)
{
    sink_t *s = opaque;
    if (!s->head || !s->inflight || s->head->it->id != msg_id) {
        cd_log(CD_LOG_ERROR, "sink %s: completion for unknown record %llu ignored", s->name,
               (unsigned long long)msg_id);
        return;
    }
    finish(s, r == CD_SINK_PENDING ? CD_SINK_RETRY : r, retry_after_ms);
}

/* Starts the head delivery if due; returns the time it is next due (or
 * INT64_MAX when nothing waits / it is in flight). */
static int64_t try_start(cd_dispatcher_t *d, sink_t *s, int64_t now)
{
    while (s->head && !s->inflight) {
        entry_t *e = s->head;
        if (now < e->not_before) return e->not_before;
        if (s->rate > 0) {
            double burst = s->rate > 1 ? s->rate : 1;
            s->tokens += (double)(now - s->tokens_at) * s->rate / 1000.0;
            if (s->tokens > burst) s->tokens = burst;
            s->tokens_at = now;
            if (s->tokens < 1) return now + (int64_t)((1 - s->tokens) * 1000.0 / s->rate) + 1;
            s->tokens -= 1;
        }
        e->attempt++;
        cd_sink_msg_t m = {.id = e->it->id,
                           .v = e->it->heartbeat ? NULL : &e->it->v,
                           .json = e->it->json,
                           .json_len = e->it->json_len,
                           /* the record's own: configured or learnt (pipeline.h);
                            * "" for a heartbeat (no record) */
                           .service = e->it->v.service ? e->it->v.service : "",
                           .attempt = e->attempt,
                           .fencing_token = e->it->token,
                           .heartbeat = e->it->heartbeat};
        int64_t ra = -1;
        cd_sink_result_t r = s->ops->deliver(s->state, &m, &ra);
        if (r == CD_SINK_PENDING && s->ops->poll) {
            s->inflight = true;
            return INT64_MAX;
        }
        finish(s, r == CD_SINK_PENDING ? CD_SINK_RETRY : r, ra);
        now = cd_sink_now_ms();
    }
    return INT64_MAX;
}

static void *thread_main(void *arg)
{
    cd_dispatcher_t *d = arg;
    size_t batch_cap = d->cap;
    item_t **batch = malloc(batch_cap * sizeof(*batch));
    CD_ASSERT(batch);

    for (;;) {
        size_t nb = 0;
        bool reopen;
        pthread_mutex_lock(&d->mu);
        if (d->stop) {
            pthread_mutex_unlock(&d->mu);
            break;
        }
        if (d->ring_cap > batch_cap) { /* the ring grew for decisions */
            item_t **b = realloc(batch, d->ring_cap * sizeof(*batch));
            if (b) {
                batch = b;
                batch_cap = d->ring_cap;
            }
        }
        while (d->count && nb < batch_cap) {
            batch[nb++] = d->ring[d->head];
            d->head = (d->head + 1) % d->ring_cap;
            d->count--;
        }
        if (nb) pthread_cond_broadcast(&d->space);
        reopen = d->reopen;
        d->reopen = false;
        pthread_mutex_unlock(&d->mu);

        int64_t now = cd_sink_now_ms();
        uint64_t added = 0;
        for (size_t i = 0; i < nb; i++)
            added += route(d, batch[i], now);
        if (nb) {
            pthread_mutex_lock(&d->mu);
            d->outstanding = d->outstanding + added - nb;
            if (d->outstanding == 0) pthread_cond_broadcast(&d->idle);
            pthread_mutex_unlock(&d->mu);
        }
        for (int i = 0; reopen && i < d->nsinks; i++)
            if (d->sinks[i]->ops->reopen) d->sinks[i]->ops->reopen(d->sinks[i]->state);

        int64_t next = INT64_MAX;
        for (int i = 0; i < d->nsinks; i++) {
            sink_t *s = d->sinks[i];
            /* A heartbeat waits behind records: one that is queued carries
             * the same news. */
            if (!s->head && s->beat_at <= now) queue_heartbeat(d, s, now);
            int64_t t = try_start(d, s, now);
            if (t < next) next = t;
            if (!s->head && s->beat_at < next) next = s->beat_at;
        }
        /* Drive asynchronous deliveries: one short blocking poll, the rest
         * without waiting, so the ring is looked at every POLL_SLICE_MS. */
        bool waited = false;
        for (int i = 0; i < d->nsinks; i++) {
            sink_t *s = d->sinks[i];
            if (!s->inflight) continue;
            int64_t slice = POLL_SLICE_MS;
            now = cd_sink_now_ms();
            if (next != INT64_MAX && next - now < slice) slice = next > now ? next - now : 0;
            s->ops->poll(s->state, waited ? 0 : (int)slice, on_done, s);
            waited = true;
        }
        if (waited) continue;

        pthread_mutex_lock(&d->mu);
        if (!d->count && !d->stop && !d->reopen) {
            if (next == INT64_MAX) {
                pthread_cond_wait(&d->wake, &d->mu);
            } else {
                /* the condvar waits on CLOCK_REALTIME: convert the monotonic deadline */
                int64_t wait = next - cd_sink_now_ms();
                if (wait > 0) {
                    struct timespec ts = cd_deadline_after(CLOCK_REALTIME, wait);
                    pthread_cond_timedwait(&d->wake, &d->mu, &ts);
                }
            }
        }
        pthread_mutex_unlock(&d->mu);
    }
    free(batch);
    return NULL;
}

/* At start: a decision of the current judgement, offered again. */
static void offer_again(const char *json, void *opaque)
{
    cd_dispatcher_t *d = opaque;
    cd_verdict_parsed_t p;
    char err[160];
    if (!cd_verdict_from_json(json, strlen(json), &p, err, sizeof(err))) {
        cd_log(CD_LOG_WARN, "ledger %s: a decision could not be read back (%s)",
               cd_ledger_path(d->ledger), err);
        return;
    }
    cd_dispatcher_submit(d, &p.v);
}

int cd_dispatcher_start(cd_dispatcher_t *d, char *errbuf, size_t errsize)
{
    sigset_t all, old;
    CD_ASSERT(!d->started);
    /* Decisions of the current judgement go in first: each sink takes
     * only what the ledger says it has not delivered (distribute). */
    if (d->ledger) {
        int n = cd_ledger_each_decided(d->ledger, offer_again, d);
        if (n)
            cd_log(CD_LOG_INFO,
                   "ledger %s: %d decision%s of the current judgement offered again to the sinks "
                   "that have not delivered them",
                   cd_ledger_path(d->ledger), n, n == 1 ? "" : "s");
    }
    /* The thread takes no signals: SIGINT / SIGTERM / SIGHUP belong to the
     * main thread, and a SIGPIPE from a dead webhook peer or exec child must
     * not kill the process (write then fails with EPIPE, which is handled). */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&d->thread, NULL, thread_main, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(errbuf, errsize, "starting the sink dispatcher thread: %s", strerror(rc));
        return -1;
    }
    if (d->coord && cd_coord_start(d->coord, d, errbuf, errsize) != 0) {
        pthread_mutex_lock(&d->mu);
        d->started = true;
        pthread_mutex_unlock(&d->mu);
        return -1; /* destroy stops the dispatcher thread */
    }
    pthread_mutex_lock(&d->mu);
    d->started = true;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

uint64_t cd_dispatcher_drain(cd_dispatcher_t *d, int64_t timeout_ms)
{
    struct timespec ts = cd_deadline_after(CLOCK_REALTIME, timeout_ms);
    pthread_mutex_lock(&d->mu);
    while (d->started && d->outstanding > 0)
        if (pthread_cond_timedwait(&d->idle, &d->mu, &ts) == ETIMEDOUT) break;
    uint64_t left = d->outstanding;
    /* the caller decided how long to wait (replay: drain_timeout; run: what
     * is left of its 5 s shutdown budget): destroy does not wait again */
    if (left) d->drain_expired = true;
    pthread_mutex_unlock(&d->mu);
    return left;
}

int cd_dispatcher_stats(cd_dispatcher_t *d, cd_sink_stats_t *out, int max)
{
    for (int i = 0; i < d->nsinks && i < max; i++) {
        sink_t *s = d->sinks[i];
        cd_sink_stats_t *o = &out[i];
        snprintf(o->name, sizeof(o->name), "%s", s->name);
        snprintf(o->type, sizeof(o->type), "%s", s->type);
        /* relaxed: statistics */
        o->delivered = atomic_load_explicit(&s->delivered, memory_order_relaxed);
        o->failed = atomic_load_explicit(&s->failed, memory_order_relaxed);
        o->retries = atomic_load_explicit(&s->retries, memory_order_relaxed);
        o->dropped = atomic_load_explicit(&s->dropped, memory_order_relaxed);
        o->filtered = atomic_load_explicit(&s->filtered, memory_order_relaxed);
        o->pending = atomic_load_explicit(&s->pending, memory_order_relaxed);
    }
    return d->nsinks;
}

void cd_dispatcher_destroy(cd_dispatcher_t *d)
{
    if (!d) return;
    if (d->started) {
        bool expired = d->drain_expired;
        uint64_t left = cd_dispatcher_drain(d, expired ? 0 : d->drain_ms);
        if (left && !expired) /* else the caller of drain has reported it */
            cd_log(CD_LOG_WARN,
                   "sinks: %llu record deliveries still pending after %lld ms; "
                   "abandoned",
                   (unsigned long long)left, (long long)d->drain_ms);
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_broadcast(&d->wake);
        pthread_cond_broadcast(&d->space);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    d->abandoning = true; /* the thread is gone: what is left was not delivered */
    for (size_t i = 0; i < d->count; i++)
        free(d->ring[(d->head + i) % d->ring_cap]);
    for (int i = 0; i < d->nsinks; i++) {
        sink_t *s = d->sinks[i];
        while (s->head) {
            atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
            entry_t *e = s->head;
            s->head = e->next;
            item_release(d, e->it);
            free(e);
        }
        if (s->ops->flush) s->ops->flush(s->state);
        cd_dsp_sink_free(s);
    }
    pthread_cond_destroy(&d->wake);
    pthread_cond_destroy(&d->space);
    pthread_cond_destroy(&d->idle);
    pthread_mutex_destroy(&d->mu);
    free(d->ring);
    free(d->ledger_path);
    free(d);
}
