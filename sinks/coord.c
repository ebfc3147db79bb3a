/*
 * coord.c - one notifier for a set of agents judging the same release: a
 * lease and per-record claims in Redis (see coord.h and docs/operations.md,
 * "Running several agents").
 *
 * Every agent judges and renders every record. Records for local sinks
 * (type "log": files, stdout) are delivered by every agent as before.
 * Records for shared sinks (webhook, exec, redis, kafka, alertmanager):
 *   - decisive ones (ROLLBACK, PROMOTE, ALERT, an alert's resolution) are
 *     offered here and kept in a pending list. The lease holder claims each
 *     in Redis (hash <prefix>:claim:<service>:<release>:<verdict>:<rule>,
 *     state "claimed" + its fencing token) and only then hands it to the
 *     dispatcher; when every shared sink has finished with it the claim is
 *     set "done". A claim still "claimed" under an older token (its claimer
 *     died or was deposed before marking it done) is taken over by the next
 *     leader and delivered again: at-least-once across a crash between the
 *     send and the mark, exactly-once otherwise. Standbys keep their copy
 *     until they read "done", so a record decided while the leader dies is
 *     delivered by whoever leads next.
 *   - other records go to shared sinks only from the leader (or in
 *     fallback), stamped with its fencing token.
 *
 * Lease: <prefix>:lease = "<agent_id> <token>", taken with SET NX PX by a
 * Lua script that also INCRs <prefix>:fence for the token (atomic: no
 * holder without a fresh token), renewed every lease/3 by compare-and-
 * PEXPIRE, released by compare-and-DEL at shutdown. The holder believes it
 * leads until its last successful renewal's send time + 9/10 of the lease,
 * so it stops before Redis hands the lease to another (clock rates agree
 * within 10 %).
 *
 * Redis unreachable for fallback_after: every agent delivers its decisive
 * records itself, fencing token 0 (at-least-once, one per agent), with a
 * warning and canaryd_coordination_fallback 1; when Redis answers again the
 * records delivered meanwhile are marked done and the lease decides again.
 *
 * Threading: one thread does all Redis I/O (hiredis, blocking with a
 * timeout of min(1 s, lease/4)); the dispatcher thread offers records and
 * reports completions through lists under `mu`; stats are read under `mu`.
 * Trade-off: a synchronous connection on a thread of its own instead of
 * hiredis's async API: a few commands per lease/3, and the dispatcher never
 * waits for Redis.
 */
#include "canaryd/coord.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/deadline.h"
#include "canaryd/log.h"
#include "coord_internal.h"
#include "sink_util.h"

#define MAX_PENDING 1024

static const char *const ACQUIRE =
    "local v = redis.call('GET', KEYS[1]) "
    "if v then return {0, v} end "
    "local t = redis.call('INCR', KEYS[2]) "
    "local s = ARGV[1] .. ' ' .. t "
    "redis.call('SET', KEYS[1], s, 'PX', ARGV[2]) "
    "return {t, s}";
static const char *const RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                 "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
static const char *const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                   "return redis.call('DEL', KEYS[1]) end return 0";
/* 1 claimed, 2 taken over from an older token, 0 already done, -1 held by
 * a newer (or the same) token. */
static const char *const CLAIM =
    "local s = redis.call('HGET', KEYS[1], 'state') "
    "if s == 'done' then return 0 end "
    "if s then "
    "  if tonumber(redis.call('HGET', KEYS[1], 'token')) >= tonumber(ARGV[1]) then return -1 end "
    "  redis.call('HSET', KEYS[1], 'token', ARGV[1]) "
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 2 end "
    "redis.call('HSET', KEYS[1], 'state', 'claimed') "
    "redis.call('HSET', KEYS[1], 'token', ARGV[1]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1";
static const char *const DONE = "redis.call('HSET', KEYS[1], 'state', 'done') "
                                "return redis.call('PEXPIRE', KEYS[1], ARGV[1])";

typedef struct pend {
    item_t *it;
    char key[512];
    bool handed;  /* given to the dispatcher; waiting for cd_coord_done */
    bool fellback; /* handed in fallback (no claim) */
    bool lost;     /* a newer leader's claim holds it (counted once) */
    struct pend *next;
} pend_t;

typedef struct done {
    char key[512];
    struct done *next;
} done_t;

struct cd_coord {
    cd_coord_conf_t conf;
    cd_dispatcher_t *d;
    pthread_t thread;
    bool started;
    int64_t pause_after_claim_ms; /* test hook CANARYD_TEST_PAUSE_AFTER_CLAIM_MS */

    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool stop, kicked;
    item_t *offered[MAX_PENDING]; /* from the dispatcher, not yet seen by the thread */
    int noffered;
    done_t *dones; /* completions to write */
    cd_coord_stats_t st;

    /* coordinator thread only */
    redisContext *rc;
    int64_t next_connect, down_since; /* down_since 0: up */
    char lease_val[192];              /* "<id> <token>" while leader */
    int64_t leader_until;
    char seen_holder[192];
    pend_t *pend;
    int npend;
};

bool cd_coord_decisive(const cd_verdict_t *v)
{
    if (v->record == CD_RECORD_VERDICT)
        return v->verdict == CD_VERDICT_ROLLBACK || v->verdict == CD_VERDICT_PROMOTE ||
               v->verdict == CD_VERDICT_ALERT;
    return v->to == CD_STATE_RESOLVED && v->rule && v->action == CD_ACTION_ALERT;
}

cd_coord_t *cd_coord_new(const cd_coord_conf_t *conf, char *errbuf, size_t errsize)
{
    cd_coord_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(errbuf, errsize, "coordination: out of memory");
        return NULL;
    }
    c->conf = *conf;
    const char *p = getenv("CANARYD_TEST_PAUSE_AFTER_CLAIM_MS");
    if (p && *p) c->pause_after_claim_ms = atoll(p);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->wake, NULL);
    return c;
}

void cd_coord_stats(cd_coord_t *c, cd_coord_stats_t *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}

void cd_coord_offer(cd_coord_t *c, item_t *it)
{
    pthread_mutex_lock(&c->mu);
    if (c->noffered == MAX_PENDING) {
        pthread_mutex_unlock(&c->mu);
        cd_log_ratelimited("coord-full", CD_LOG_ERROR,
                           "coordination: %d decisive records waiting; one dropped",
                           MAX_PENDING);
        free(it);
        return;
    }
    c->offered[c->noffered++] = it;
    c->kicked = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->mu);
}

bool cd_coord_sharing(cd_coord_t *c, uint64_t *token)
{
    pthread_mutex_lock(&c->mu);
    bool on = c->st.leader || c->st.fallback;
    *token = c->st.leader ? c->st.token : 0;
    pthread_mutex_unlock(&c->mu);
    return on;
}

void cd_coord_done(cd_coord_t *c, const char *key)
{
    done_t *dn = calloc(1, sizeof(*dn));
    if (!dn) {
        /* the claim stays "claimed": the next leader delivers it again */
        cd_log_ratelimited("coord-oom", CD_LOG_ERROR, "coordination: out of memory marking %s",
                           key);
        return;
    }
    snprintf(dn->key, sizeof(dn->key), "%s", key);
    pthread_mutex_lock(&c->mu);
    dn->next = c->dones;
    c->dones = dn;
    c->kicked = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->mu);
}

/* ---- the coordinator thread ---- */

static int64_t io_timeout_ms(const cd_coord_t *c)
{
    int64_t t = c->conf.lease_ms / 4;
    return t > 1000 ? 1000 : t < 50 ? 50 : t;
}

static void set_up(cd_coord_t *c, bool up)
{
    pthread_mutex_lock(&c->mu);
    c->st.redis_up = up;
    pthread_mutex_unlock(&c->mu);
}

/* A command failed: drop the connection (reconnect later). */
static void redis_failed(cd_coord_t *c, int64_t now, const char *what)
{
    if (c->rc) {
        cd_log_ratelimited("coord-redis", CD_LOG_WARN, "coordination: Redis %s:%d: %s: %s",
                           c->conf.host, c->conf.port, what,
                           c->rc->err ? c->rc->errstr : "unexpected reply");
        redisFree(c->rc);
        c->rc = NULL;
    }
    if (!c->down_since) c->down_since = now;
    c->next_connect = now + io_timeout_ms(c);
    set_up(c, false);
}

static bool connect_redis(cd_coord_t *c, int64_t now)
{
    if (c->rc) return true;
    if (now < c->next_connect) return false;
    int64_t t = io_timeout_ms(c);
    struct timeval tv = {(time_t)(t / 1000), (suseconds_t)(t % 1000) * 1000};
    c->rc = redisConnectWithTimeout(c->conf.host, c->conf.port, tv);
    if (!c->rc || c->rc->err) {
        cd_log_ratelimited("coord-redis", CD_LOG_WARN, "coordination: Redis %s:%d: connect: %s",
                           c->conf.host, c->conf.port, c->rc ? c->rc->errstr : "out of memory");
        if (c->rc) redisFree(c->rc);
        c->rc = NULL;
        if (!c->down_since) c->down_since = now;
        c->next_connect = now + t;
        set_up(c, false);
        return false;
    }
    redisSetTimeout(c->rc, tv);
    if (c->conf.password[0]) {
        redisReply *r = redisCommand(c->rc, "AUTH %s", c->conf.password);
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
        if (!ok) {
            redis_failed(c, now, "AUTH refused");
            return false;
        }
    }
    return true;
}

/* Runs a script; NULL after a failure (already handled). */
static redisReply *eval(cd_coord_t *c, int64_t now, const char *script, int nkeys,
                        const char **argv, int argc)
{
    const char *a[8];
    char nk[8];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    a[0] = "EVAL";
    a[1] = script;
    a[2] = nk;
    for (int i = 0; i < argc; i++)
        a[3 + i] = argv[i];
    redisReply *r = redisCommandArgv(c->rc, 3 + argc, a, NULL);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r) {
            cd_log_ratelimited("coord-script", CD_LOG_ERROR, "coordination: Redis script error: %s",
                               r->str);
            freeReplyObject(r);
        }
        redis_failed(c, now, "command");
        return NULL;
    }
    return r;
}

static void key_of(const cd_coord_t *c, const char *what, char *out, size_t size)
{
    snprintf(out, size, "%s:%s", c->conf.prefix, what);
}

/* The observed lease value "<id> <token>" (or ""): counts changes. */
static void saw_holder(cd_coord_t *c, const char *val)
{
    char id[128];
    const char *sp = strchr(val, ' ');
    snprintf(id, sizeof(id), "%.*s", sp ? (int)(sp - val) : (int)strlen(val), val);
    pthread_mutex_lock(&c->mu);
    if (*val && strcmp(val, c->seen_holder) != 0) {
        if (c->seen_holder[0]) c->st.lease_changes++;
        snprintf(c->seen_holder, sizeof(c->seen_holder), "%s", val);
    }
    snprintf(c->st.holder, sizeof(c->st.holder), "%s", id);
    pthread_mutex_unlock(&c->mu);
}

static void set_leader(cd_coord_t *c, bool leader, uint64_t token)
{
    pthread_mutex_lock(&c->mu);
    c->st.leader = leader;
    c->st.token = leader ? token : 0;
    pthread_mutex_unlock(&c->mu);
    if (!leader) c->lease_val[0] = '\0';
}

static void lease_step(cd_coord_t *c, int64_t now)
{
    char lk[256], fk[256], ms[32];
    key_of(c, "lease", lk, sizeof(lk));
    key_of(c, "fence", fk, sizeof(fk));
    snprintf(ms, sizeof(ms), "%lld", (long long)c->conf.lease_ms);
    if (c->lease_val[0]) {
        const char *argv[] = {lk, c->lease_val, ms};
        redisReply *r = eval(c, now, RENEW, 1, argv, 3);
        if (!r) return;
        bool kept = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
        if (kept) {
            c->leader_until = now + c->conf.lease_ms * 9 / 10;
            return;
        }
        cd_log(CD_LOG_WARN, "coordination: lease %s lost (held by another agent now)", lk);
        set_leader(c, false, 0);
    }
    const char *argv[] = {lk, fk, c->conf.agent_id, ms};
    redisReply *r = eval(c, now, ACQUIRE, 2, argv, 4);
    if (!r) return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == REDIS_REPLY_STRING) {
        long long t = r->element[0]->integer;
        saw_holder(c, r->element[1]->str);
        if (t > 0) {
            snprintf(c->lease_val, sizeof(c->lease_val), "%s", r->element[1]->str);
            c->leader_until = now + c->conf.lease_ms * 9 / 10;
            set_leader(c, true, (uint64_t)t);
            cd_log(CD_LOG_INFO, "coordination: %s holds the lease %s, fencing token %lld",
                   c->conf.agent_id, lk, t);
        }
    }
    freeReplyObject(r);
}

static void claim_key(const cd_coord_t *c, const item_t *it, char *out, size_t size)
{
    const cd_verdict_t *v = &it->v;
    const char *service = v->service && *v->service ? v->service : "-";
    const char *what = v->record == CD_RECORD_VERDICT ? cd_verdict_kind_name(v->verdict)
                                                      : "RESOLVED";
    snprintf(out, size, "%s:claim:%s:%s:%s:%s", c->conf.prefix, service,
             v->release && *v->release ? v->release : "-", what, v->rule ? v->rule : "-");
}

static void pend_remove(cd_coord_t *c, pend_t **pp)
{
    pend_t *p = *pp;
    *pp = p->next;
    free(p->it);
    free(p);
    c->npend--;
}

/* Hands p to the dispatcher with token (0: fallback). */
static bool hand(cd_coord_t *c, pend_t *p, uint64_t token)
{
    item_t *copy = cd_dsp_item_copy(p->it, token);
    if (!copy) return false;
    snprintf(copy->claim_key, sizeof(copy->claim_key), "%s", p->key);
    cd_dsp_submit_claimed(c->d, copy);
    p->handed = true;
    return true;
}

static void take_offers(cd_coord_t *c)
{
    item_t *got[MAX_PENDING];
    int n;
    pthread_mutex_lock(&c->mu);
    n = c->noffered;
    memcpy(got, c->offered, (size_t)n * sizeof(*got));
    c->noffered = 0;
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < n; i++) {
        pend_t *p = calloc(1, sizeof(*p));
        if (!p || c->npend >= MAX_PENDING) {
            cd_log_ratelimited("coord-full", CD_LOG_ERROR,
                               "coordination: %d decisive records waiting; one dropped", c->npend);
            free(p);
            free(got[i]);
            continue;
        }
        p->it = got[i];
        claim_key(c, p->it, p->key, sizeof(p->key));
        pend_t **tail = &c->pend;
        while (*tail)
            tail = &(*tail)->next;
        *tail = p;
        c->npend++;
    }
}

/* Writes "done" for the completions; those that fail stay queued. */
static void write_dones(cd_coord_t *c, int64_t now)
{
    done_t *list;
    pthread_mutex_lock(&c->mu);
    list = c->dones;
    c->dones = NULL;
    pthread_mutex_unlock(&c->mu);
    char ret[32];
    snprintf(ret, sizeof(ret), "%lld", (long long)c->conf.retention_ms);
    while (list) {
        done_t *dn = list;
        if (!c->rc) break;
        const char *argv[] = {dn->key, ret};
        redisReply *r = eval(c, now, DONE, 1, argv, 2);
        if (!r) break;
        freeReplyObject(r);
        list = dn->next;
        for (pend_t **pp = &c->pend; *pp; pp = &(*pp)->next)
            if (strcmp((*pp)->key, dn->key) == 0) {
                pend_remove(c, pp);
                break;
            }
        free(dn);
    }
    if (list) { /* put back what was not written */
        done_t *last = list;
        while (last->next)
            last = last->next;
        pthread_mutex_lock(&c->mu);
        last->next = c->dones;
        c->dones = list;
        pthread_mutex_unlock(&c->mu);
    }
}

static void claims_step(cd_coord_t *c, int64_t now, bool leader, uint64_t token, bool fallback)
{
    char tok[32], ret[32];
    snprintf(tok, sizeof(tok), "%llu", (unsigned long long)token);
    snprintf(ret, sizeof(ret), "%lld", (long long)c->conf.retention_ms);
    for (pend_t **pp = &c->pend; *pp;) {
        pend_t *p = *pp;
        if (p->handed) {
            pp = &p->next;
            continue;
        }
        if (fallback) {
            if (hand(c, p, 0)) {
                p->fellback = true;
                pthread_mutex_lock(&c->mu);
                c->st.fallback_deliveries++;
                pthread_mutex_unlock(&c->mu);
                cd_log(CD_LOG_WARN, "coordination: Redis unreachable: delivering %s unclaimed",
                       p->key);
            }
            pp = &p->next;
            continue;
        }
        if (!c->rc) break;
        if (!leader) { /* a standby forgets what the leader has delivered */
            redisReply *r = redisCommand(c->rc, "HGET %s state", p->key);
            if (!r) {
                redis_failed(c, now, "HGET");
                break;
            }
            bool done = r->type == REDIS_REPLY_STRING && strcmp(r->str, "done") == 0;
            freeReplyObject(r);
            if (done)
                pend_remove(c, pp);
            else
                pp = &p->next;
            continue;
        }
        const char *argv[] = {p->key, tok, ret};
        redisReply *r = eval(c, now, CLAIM, 1, argv, 3);
        if (!r) break;
        long long res = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        freeReplyObject(r);
        if (res == 0) {
            pend_remove(c, pp);
            continue;
        }
        pthread_mutex_lock(&c->mu);
        if (res > 0)
            c->st.claims_won++;
        else if (!p->lost)
            c->st.claims_lost++;
        pthread_mutex_unlock(&c->mu);
        if (res < 0) p->lost = true;
        if (res > 0) {
            cd_log(CD_LOG_INFO, "coordination: claimed %s with fencing token %s%s", p->key, tok,
                   res == 2 ? " (taken over: its claimer never marked it done)" : "");
            if (c->pause_after_claim_ms > 0) { /* test hook: a crash window */
                struct timespec ts = {(time_t)(c->pause_after_claim_ms / 1000),
                                      (long)(c->pause_after_claim_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
            hand(c, p, token);
        }
        pp = &p->next;
    }
}

static void step(cd_coord_t *c)
{
    int64_t now = cd_sink_now_ms();
    take_offers(c);
    bool up = connect_redis(c, now);
    if (up) lease_step(c, now);
    up = c->rc != NULL;
    if (up) {
        bool was_down = c->down_since != 0;
        c->down_since = 0;
        set_up(c, true);
        pthread_mutex_lock(&c->mu);
        bool fb = c->st.fallback;
        c->st.fallback = false;
        pthread_mutex_unlock(&c->mu);
        if (fb)
            cd_log(CD_LOG_WARN, "coordination: Redis %s:%d answers again: one notifier again",
                   c->conf.host, c->conf.port);
        else if (was_down)
            cd_log(CD_LOG_INFO, "coordination: Redis %s:%d answers again", c->conf.host,
                   c->conf.port);
    }
    if (c->lease_val[0] && now >= c->leader_until) {
        cd_log(CD_LOG_WARN, "coordination: lease not renewed in time: standing down");
        set_leader(c, false, 0);
    }
    bool fallback = false;
    if (!c->rc && c->down_since && now - c->down_since >= c->conf.fallback_ms) {
        pthread_mutex_lock(&c->mu);
        bool was = c->st.fallback;
        c->st.fallback = fallback = true;
        pthread_mutex_unlock(&c->mu);
        if (!was)
            cd_log(CD_LOG_WARN,
                   "coordination: Redis %s:%d unreachable for %lld ms: every agent delivers on "
                   "its own (at-least-once, one per agent) until it answers",
                   c->conf.host, c->conf.port, (long long)(now - c->down_since));
    }
    if (c->rc) write_dones(c, now);
    pthread_mutex_lock(&c->mu);
    bool leader = c->st.leader;
    uint64_t token = c->st.token;
    pthread_mutex_unlock(&c->mu);
    claims_step(c, now, leader, token, fallback);
    pthread_mutex_lock(&c->mu);
    c->st.pending = (uint64_t)c->npend;
    pthread_mutex_unlock(&c->mu);
}

static void *thread_main(void *arg)
{
    cd_coord_t *c = arg;
    for (;;) {
        step(c);
        int64_t wait = c->conf.lease_ms / 3;
        if (!c->rc && c->next_connect - cd_sink_now_ms() < wait)
            wait = c->next_connect - cd_sink_now_ms();
        if (wait < 10) wait = 10;
        pthread_mutex_lock(&c->mu);
        if (!c->kicked && !c->stop) {
            struct timespec ts = cd_deadline_after(CLOCK_REALTIME, wait);
            pthread_cond_timedwait(&c->wake, &c->mu, &ts);
        }
        c->kicked = false;
        bool stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop) break;
    }
    return NULL;
}

int cd_coord_start(cd_coord_t *c, cd_dispatcher_t *d, char *errbuf, size_t errsize)
{
    sigset_t all, old;
    c->d = d;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&c->thread, NULL, thread_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(errbuf, errsize, "starting the coordination thread: %s", strerror(rc));
        return -1;
    }
    c->started = true;
    return 0;
}

void cd_coord_destroy(cd_coord_t *c)
{
    if (!c) return;
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->stop = true;
        pthread_cond_signal(&c->wake);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
        int64_t now = cd_sink_now_ms();
        if (c->rc) write_dones(c, now);
        if (c->rc && c->lease_val[0]) { /* the next agent need not wait for the expiry */
            char lk[256];
            key_of(c, "lease", lk, sizeof(lk));
            const char *argv[] = {lk, c->lease_val};
            redisReply *r = eval(c, now, RELEASE, 1, argv, 2);
            if (r) freeReplyObject(r);
            cd_log(CD_LOG_INFO, "coordination: lease %s released", lk);
        }
    }
    if (c->rc) redisFree(c->rc);
    while (c->pend) {
        pend_t *p = c->pend;
        c->pend = p->next;
        free(p->it);
        free(p);
    }
    for (int i = 0; i < c->noffered; i++)
        free(c->offered[i]);
    while (c->dones) {
        done_t *dn = c->dones;
        c->dones = dn->next;
        free(dn);
    }
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
