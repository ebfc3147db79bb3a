/*
 * http_api.c - the HTTP API server: libmicrohttpd with a pool of two
 * threads of its own (probes, scrapes and controller polls are light; two
 * threads keep a slow client from stalling a probe), a route table, and the
 * hand-over with the evaluating thread.
 *
 * Data: the latest cd_snapshot_t published by the evaluating thread, under
 * a mutex (a request copies it out, ~30 KB, and renders from the copy: the
 * lock is held for a memcpy, never while formatting or writing). Counters
 * of the Kafka source and the dispatcher are read through their thread-safe
 * stats calls. The engine is never touched here.
 *
 * POST /api/v1/release: the handler stores the release under the mutex,
 * raises an atomic flag (release order: the flag is checked without the lock
 * by the evaluating thread every 10 ms; the mutex then orders the data) and
 * waits, at most RELEASE_WAIT_MS, on a condition variable until the
 * evaluating thread has applied it (cd_http_take_release / _release_done).
 * So the reply tells the truth: 200 means the reset happened.
 *
 * Whose verdict (issue 10, item 6). GET /api/v1/verdict?release=X answers
 * the verdict only when X is the release being judged, ANALYZING with a
 * reason otherwise, so a rollout of X never reads the previous release's
 * sticky ROLLBACK or PROMOTE. Flagger's hooks carry the canary run's
 * `checksum`: a hook whose checksum differs from the last one seen for the
 * same canary (namespace/name) asks the evaluating thread for a new
 * judgement through the same hand-over as POST /api/v1/release (an empty
 * release: the evaluating thread keeps a declared or configured release and
 * learns a learnt one again, cd_pipeline_new_judgement) and answers only
 * once it is applied. A hook that finds its checksum already recorded but
 * its reset not yet applied (a concurrent first hook of the new run) waits
 * for the same reset: no hook of a new run ever answers from the previous
 * run's verdict. A pending POST /api/v1/release is already a new judgement,
 * so a checksum change during one waits for it instead of replacing it.
 *
 * Requests: bodies are collected up to CD_HTTP_MAX_BODY (64 KB); a larger
 * declared Content-Length is refused before reading, a larger chunked body
 * is discarded as it arrives and answered 413 at its end. Every reply is
 * JSON except /metrics. Unknown path 404, known path with another method
 * 405 with Allow, bad JSON 400 with jansson's message.
 */
#include "canaryd/http_api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "canaryd/clock.h"
#include "canaryd/log.h"
#include "canaryd/timeutil.h"
#include "http_internal.h"

#define RELEASE_WAIT_MS 2000
#define POOL_THREADS 2
/* Flagger canaries (namespace/name) whose last checksum is remembered; an
 * agent judges one canary, more is a misconfiguration that must still not
 * make the hooks reset each other's runs. */
#define MAX_CANARIES 16

const int cd_http_codes[CD_HTTP_NCODES] = {200, 400, 401, 403, 404, 405, 409, 413, 500, 503, 0};

struct cd_http {
    cd_http_conf_t conf;
    cd_http_sources_t src;
    struct MHD_Daemon *d;
    atomic_int port;

    pthread_mutex_t mu;
    pthread_cond_t cv;                     /* CLOCK_MONOTONIC: release_done */
    cd_snapshot_t *snap;                   /* latest published; under mu */
    uint64_t seq;                          /* under mu */
    char req_release[128];                 /* under mu; "" = new judgement, same release */
    uint64_t req_gen, taken_gen, done_gen; /* under mu */
    atomic_bool req_pending;
    /* Flagger runs seen (under mu): the last checksum per canary and the
     * generation of the reset it asked for (0: none) */
    struct canary_run {
        char key[200]; /* namespace "/" name */
        char checksum[128];
        uint64_t gen;
        uint64_t used; /* for replacing the least recently used */
    } runs[MAX_CANARIES];
    int nruns;
    uint64_t runs_clock;
    /* told each checksum a hook records (cd_http_set_run_hook); set before start */
    void (*run_hook)(const char *key, const char *checksum, void *opaque);
    void *run_hook_opaque;

    /* replies by status (index in cd_http_codes; the last = other); relaxed */
    atomic_uint_fast64_t codes[CD_HTTP_NCODES];
};

typedef struct req {
    char *body;
    size_t len;
    bool too_large;
} req_t;

/* ---- replies ------------------------------------------------------------- */

static void count_code(cd_http_t *h, int status)
{
    int i = 0;
    while (i < CD_HTTP_NCODES - 1 && cd_http_codes[i] != status)
        i++;
    atomic_fetch_add_explicit(&h->codes[i], 1, memory_order_relaxed);
}

static enum MHD_Result reply(cd_http_t *h, struct MHD_Connection *c, int status, const char *ctype,
                             char *text, size_t len, const char *allow)
{
    /* text is malloc'd and handed over (MUST_FREE), or NULL on OOM. */
    if (!text) {
        status = 500;
        text = NULL;
        len = 0;
    }
    struct MHD_Response *r =
        text ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (allow) MHD_add_response_header(r, "Allow", allow);
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"canaryd\"");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    count_code(h, status);
    return ret;
}

/* Steals j. */
static enum MHD_Result reply_json(cd_http_t *h, struct MHD_Connection *c, int status, json_t *j,
                                  const char *allow)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(j);
    size_t n = s ? strlen(s) : 0;
    if (s) {
        /* one line per reply: easier for curl and log scrapers */
        char *t = realloc(s, n + 2);
        if (t) {
            s = t;
            s[n++] = '\n';
            s[n] = '\0';
        }
    }
    return reply(h, c, status, "application/json", s, n, allow);
}

static enum MHD_Result reply_error(cd_http_t *h, struct MHD_Connection *c, int status,
                                   const char *msg, const char *allow)
{
    return reply_json(h, c, status, json_pack("{s:s}", "error", msg), allow);
}

/* ---- snapshot ------------------------------------------------------------ */

/* A copy of the latest snapshot (malloc'd; NULL on OOM). seq 0 = none yet. */
static cd_snapshot_t *snapshot_copy(cd_http_t *h)
{
    cd_snapshot_t *s = malloc(sizeof(*s));
    if (!s) return NULL;
    pthread_mutex_lock(&h->mu);
    memcpy(s, h->snap, sizeof(*s));
    pthread_mutex_unlock(&h->mu);
    return s;
}

static json_t *time_json(int64_t ms)
{
    char t[40];
    return ms > 0 ? json_string(cd_time_format(ms, t, sizeof(t))) : json_null();
}

static json_t *num_or_null(bool valid, double v)
{
    return valid && isfinite(v) ? json_real(v) : json_null();
}

static json_t *verdict_json(const cd_snapshot_t *s)
{
    json_t *rules = json_array();
    for (int i = 0; i < s->nrules; i++) {
        const cd_snapshot_rule_t *r = &s->rules[i];
        json_array_append_new(rules,
                              json_pack("{s:s,s:s,s:s,s:b,s:o,s:o,s:I,s:s}", "name", r->name,
                                        "state", cd_rule_state_name(r->state), "action",
                                        cd_action_name(r->action), "dry_run", r->dry_run,
                                        "observed", num_or_null(r->observed_valid, r->observed),
                                        "threshold", num_or_null(true, r->threshold), "samples",
                                        (json_int_t)r->samples, "reason", r->reason));
    }
    /* reason: why the verdict is not simply the engine's (the live clock
     * holds it while a partition is behind); null when it is */
    return json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "verdict", cd_verdict_kind_name(s->verdict),
                     "release", s->release, "since", time_json(s->since_ms), "reason",
                     s->held ? json_string(s->held_reason) : json_null(), "judged_until",
                     time_json(s->judged_ms), "lag_seconds",
                     num_or_null(s->lag_known, (double)s->lag_ms / 1000.0), "rules", rules);
}

/* The answer for ?release=X when X is not the release being judged:
 * ANALYZING, with the reason, and none of the judged release's rules. */
static json_t *other_release_json(const cd_snapshot_t *s, const char *want)
{
    char why[512];
    if (!want[0])
        snprintf(why, sizeof(why), "the release parameter is empty; the release being judged is "
                                   "%s%s%s",
                 s->release[0] ? "\"" : "", s->release[0] ? s->release : "not known yet",
                 s->release[0] ? "\"" : "");
    else if (!s->release[0])
        snprintf(why, sizeof(why),
                 "release \"%.127s\" is not being judged: no release is known yet (no canary "
                 "event since the agent started or since the last new judgement, none declared)",
                 want);
    else
        snprintf(why, sizeof(why),
                 "release \"%.127s\" is not being judged: the agent judges \"%s\" (declare the "
                 "new release with POST /api/v1/release)",
                 want, s->release);
    return json_pack("{s:s,s:s,s:n,s:s,s:o,s:o,s:[]}", "verdict",
                     cd_verdict_kind_name(CD_VERDICT_ANALYZING), "release", s->release, "since",
                     "reason", why, "judged_until", time_json(s->judged_ms), "lag_seconds",
                     num_or_null(s->lag_known, (double)s->lag_ms / 1000.0), "rules");
}

/* ---- handlers ------------------------------------------------------------ */

typedef enum MHD_Result (*handler_fn)(cd_http_t *h, struct MHD_Connection *c, const req_t *r);

static enum MHD_Result get_healthz(cd_http_t *h, struct MHD_Connection *c, const req_t *r)
{
    (void)r;
    return reply_json(h, c, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

static enum MHD_Result get_readyz(cd_http_t *h, struct MHD_Connection *c, const req_t *r)
{
    (void)r;
    char why[512] = "";
    const cd_kafka_source_t *k = h->src.kafka;
    pthread_mutex_lock(&h->mu);
    bool started = h->seq > 0;
    /* the first second judged: before it, the live clock waits for every
     * partition's watermark (live.c) */
    char held[400];
    bool judged = h->snap->stats.evaluations > 0;
    bool catchup = h->snap->catchup;
    snprintf(held, sizeof(held), "%s", h->snap->held_reason);
    pthread_mutex_unlock(&h->mu);
    cd_kafka_stats_t ks = {0};
    if (k) cd_kafka_source_stats(k, &ks);
    if (!started) {
        snprintf(why, sizeof(why), "the analysis has not started");
    } else if (k && ks.assigned <= 0) {
        snprintf(why, sizeof(why), "no Kafka partition is assigned yet");
    } else if (k && !ks.covered) {
        /* part of the topic: judged as none of it (kafka_source.c, "Coverage") */
        snprintf(why, sizeof(why), "%s", ks.coverage);
    } else if (catchup) {
        /* rebuilding after the start (live.c, "Catch-up"): how far, in time
         * (the reason) and in messages (the consumers' lag) */
        enum { MAXP = 256 };
        long long behind = 0;
        cd_kafka_lag_t *lag = k ? malloc(MAXP * sizeof(*lag)) : NULL;
        int n = lag ? cd_kafka_source_lag(k, lag, MAXP) : 0;
        for (int i = 0; i < n && i < MAXP; i++)
            if (lag[i].lag > 0) behind += lag[i].lag;
        free(lag);
        snprintf(why, sizeof(why), "%.380s; %lld messages behind", held, behind);
    } else if (!judged) {
        snprintf(why, sizeof(why), "no second has been judged yet%s%s", held[0] ? ": " : "", held);
    } else if (k) {
        enum { MAXP = 256 };
        cd_kafka_lag_t *lag = malloc(MAXP * sizeof(*lag));
        if (!lag) return reply_error(h, c, 500, "out of memory", NULL);
        int n = cd_kafka_source_lag(k, lag, MAXP);
        for (int i = 0; i < n && i < MAXP; i++)
            if (lag[i].lag > h->conf.max_lag) {
                snprintf(why, sizeof(why),
                         "partition %.200s[%d] is %lld messages behind (max_lag %lld)",
                         lag[i].topic, (int)lag[i].partition, (long long)lag[i].lag,
                         (long long)h->conf.max_lag);
                break;
            }
        free(lag);
    }
    if (why[0])
        return reply_json(h, c, 503, json_pack("{s:b,s:s}", "ready", 0, "reason", why), NULL);
    return reply_json(h, c, 200, json_pack("{s:b}", "ready", 1), NULL);
}

static enum MHD_Result get_metrics(cd_http_t *h, struct MHD_Connection *c, const req_t *r)
{
    (void)r;
    uint64_t codes[CD_HTTP_NCODES];
    for (int i = 0; i < CD_HTTP_NCODES; i++)
        codes[i] = atomic_load_explicit(&h->codes[i], memory_order_relaxed);
    cd_snapshot_t *s = snapshot_copy(h);
    size_t len = 0;
    char *text = s ? cd_http_metrics_render(s, h->src.kafka, h->src.disp, codes, &len) : NULL;
    free(s);
    return reply(h, c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
}

static enum MHD_Result get_verdict(cd_http_t *h, struct MHD_Connection *c, const req_t *r)
{
    (void)r;
    /* ?release=X (Argo passes the rollout's release): only X's verdict */
    const char *want = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "release");
    cd_snapshot_t *s = snapshot_copy(h);
    if (!s) return reply_error(h, c, 500, "out of memory", NULL);
    json_t *j = want && (!want[0] || strcmp(want, s->release) != 0) ? other_release_json(s, want)
                                                                     : verdict_json(s);
    free(s);
    /* Always 200: Argo Rollouts reads any other status as an Error. */
    return reply_json(h, c, 200, j, NULL);
}

/* ---- the status page (agent/http/http_page.c) ---- */

static enum MHD_Result get_page(cd_http_t *h, struct MHD_Connection *c, const req_t *r)
{
    (void)r;
    size_t len = 0;
    char *text = cd_http_page_render(&len);
    return reply(h, c, 200, "text/html; charset=utf-8", text, len, NULL);
}

static enum MHD_Result get_dashboard(cd_http_t *h, struct MHD_Connection *c, const req_t *r)
{
    (void)r;
    if (!h->src.cfg) return reply_error(h, c, 404, "no status page in this server", NULL);
    cd_snapshot_t *s = snapshot_copy(h);
    if (!s) return reply_error(h, c, 500, "out of memory", NULL);
    size_t len = 0;
    char *text = cd_http_dashboard_render(s, h->src.history, h->src.cfg, h->src.kafka, h->src.disp,
                                          cd_wall_ms(), &len);
    free(s);
    return reply(h, c, 200, "application/json", text, len, NULL);
}

static enum MHD_Result get_history(cd_http_t *h, struct MHD_Connection *c, const req_t *r)
{
    (void)r;
    if (!h->src.history) return reply_error(h, c, 404, "no history in this server", NULL);
    const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
    int64_t since = INT64_MIN;
    if (q) {
        char *end;
        long long ms = strtoll(q, &end, 10);
        if (*q && *end == '\0' && ms >= 0)
            since = ms;
        else if (!cd_time_parse_rfc3339(q, strlen(q), &since))
            return reply_error(h, c, 400,
                               "since: accepted: milliseconds since the epoch (e.g. the last "
                               "reply's next_since) or an RFC 3339 time",
                               NULL);
    }
    size_t len = 0;
    char *text = cd_http_history_render(h->src.history, since, &len);
    return reply(h, c, 200, "application/json", text, len, NULL);
}

static enum MHD_Result get_windows(cd_http_t *h, struct MHD_Connection *c, const req_t *r)
{
    (void)r;
    if (!h->src.window || !h->src.cfg)
        return reply_error(h, c, 404, "no window counts in this server", NULL);
    const char *at = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "at");
    cd_snapshot_t *s = snapshot_copy(h);
    if (!s) return reply_error(h, c, 500, "out of memory", NULL);
    int64_t judged = s->judged_ms;
    free(s);
    int status = 500;
    json_t *j = cd_http_windows_json(h->src.cfg, h->src.window, judged, at, &status);
    return reply_json(h, c, status, j, NULL);
}

/* Parses a JSON object body into *out (NULL for an empty body when
 * allow_empty). Replies 400 itself and returns false on a bad body. */
static bool body_object(cd_http_t *h, struct MHD_Connection *c, const req_t *r, bool allow_empty,
                        json_t **out, enum MHD_Result *ret)
{
    *out = NULL;
    if (r->len == 0 && allow_empty) return true;
    json_error_t e;
    json_t *j = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES, &e);
    char msg[320];
    if (!j) {
        snprintf(msg, sizeof(msg), "malformed JSON body at line %d, column %d: %s", e.line,
                 e.column, e.text);
    } else if (!json_is_object(j)) {
        snprintf(msg, sizeof(msg), "the body is not a JSON object");
        json_decref(j);
        j = NULL;
    }
    if (!j) {
        *ret = reply_error(h, c, 400, msg, NULL);
        return false;
    }
    *out = j;
    return true;
}

/* A field of Flagger's body for the log: JSON-quoted (control bytes escaped),
 * cut to 80 bytes. */
static void field(const json_t *b, const char *key, char *out, size_t size)
{
    json_t *v = b ? json_object_get(b, key) : NULL;
    char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    snprintf(out, size, "%.80s%s", s ? s : "-", s && strlen(s) > 80 ? "..." : "");
    free(s);
}

/* Under mu: asks the evaluating thread for a new judgement (release "":
 * the same release, cd_pipeline_new_judgement; else declare it) and
 * returns the generation to wait for. A pending request is already a new
 * judgement: an empty one joins it instead of replacing its release. */
static uint64_t ask_reset(cd_http_t *h, const char *release)
{
    bool pending = h->req_gen > h->taken_gen;
    if (!release[0] && pending) return h->req_gen;
    snprintf(h->req_release, sizeof(h->req_release), "%s", release);
    uint64_t gen = ++h->req_gen;
    /* release: pairs with the acquire load in cd_http_take_release */
    atomic_store_explicit(&h->req_pending, true, memory_order_release);
    return gen;
}

/* Under mu: waits (at most RELEASE_WAIT_MS) until the evaluating thread has
 * applied generation gen; true when it has. */
static bool wait_reset(cd_http_t *h, uint64_t gen)
{
    int64_t deadline = cd_mono_ms() + RELEASE_WAIT_MS;
    struct timespec at = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000L};
    while (h->done_gen < gen)
        if (pthread_cond_timedwait(&h->cv, &h->mu, &at) == ETIMEDOUT) break;
    return h->done_gen >= gen;
}

/* Under mu: records Flagger's checksum for canary key and returns the
 * generation of the reset this hook must wait for (0: none). A changed
 * checksum asks for a new judgement. */
static uint64_t flagger_run(cd_http_t *h, const char *key, const char *checksum, bool *changed)
{
    struct canary_run *run = NULL;
    *changed = false;
    for (int i = 0; i < h->nruns; i++)
        if (strcmp(h->runs[i].key, key) == 0) run = &h->runs[i];
    if (!run) {
        /* First hook seen for this canary: whatever is judged now is its run. */
        if (h->nruns < MAX_CANARIES) {
            run = &h->runs[h->nruns++];
        } else {
            run = &h->runs[0];
            for (int i = 1; i < h->nruns; i++)
                if (h->runs[i].used < run->used) run = &h->runs[i];
        }
        memset(run, 0, sizeof(*run));
        snprintf(run->key, sizeof(run->key), "%s", key);
        snprintf(run->checksum, sizeof(run->checksum), "%s", checksum);
    } else if (strcmp(run->checksum, checksum) != 0) {
        snprintf(run->checksum, sizeof(run->checksum), "%s", checksum);
        run->gen = ask_reset(h, "");
        *changed = true;
    }
    run->used = ++h->runs_clock;
    return run->gen > h->done_gen ? run->gen : 0;
}

static enum MHD_Result flagger(cd_http_t *h, struct MHD_Connection *c, const req_t *r,
                               const char *hook, cd_verdict_kind_t yes)
{
    json_t *b;
    enum MHD_Result ret;
    if (!body_object(h, c, r, true, &b, &ret)) return ret;
    char name[100], ns[100], phase[100], sum[100], key[200];
    field(b, "name", name, sizeof(name));
    field(b, "namespace", ns, sizeof(ns));
    field(b, "phase", phase, sizeof(phase));
    field(b, "checksum", sum, sizeof(sum));
    /* the canary run: a string checksum, per namespace/name (both as logged:
     * quoted, cut to 80 bytes) */
    const char *checksum = b ? json_string_value(json_object_get(b, "checksum")) : NULL;
    bool changed = false, done = true;
    if (checksum && checksum[0]) {
        snprintf(key, sizeof(key), "%s/%s", ns, name);
        pthread_mutex_lock(&h->mu);
        uint64_t gen = flagger_run(h, key, checksum, &changed);
        if (gen) done = wait_reset(h, gen);
        pthread_mutex_unlock(&h->mu);
        /* remembered across restarts (the ledger writes only a change) */
        if (h->run_hook) h->run_hook(key, checksum, h->run_hook_opaque);
    }
    json_decref(b);
    if (changed)
        cd_log(CD_LOG_INFO,
               "flagger %s hook: canary %s/%s has a new checksum %s: a new run, a new judgement "
               "(the previous run's verdict is not replayed)",
               hook, ns, name, sum);
    if (!done)
        return reply_error(h, c, 503,
                           "a new canary run (checksum changed): the evaluating thread did not "
                           "start its judgement within 2 s",
                           NULL);
    cd_snapshot_t *s = snapshot_copy(h);
    if (!s) return reply_error(h, c, 500, "out of memory", NULL);
    bool ok = s->verdict == yes;
    cd_log_ratelimited(hook, CD_LOG_INFO,
                       "flagger %s hook: name %s namespace %s phase %s checksum %s: verdict %s, "
                       "answering %d",
                       hook, name, ns, phase, sum, cd_verdict_kind_name(s->verdict),
                       ok ? 200 : 409);
    /* Flagger acts on a status <= 202 and retries 5xx: "no" is a 409. */
    json_t *j = json_pack("{s:s,s:s,s:o,s:b}", "verdict", cd_verdict_kind_name(s->verdict),
                          "release", s->release, "since", time_json(s->since_ms),
                          hook[0] == 'r' ? "rollback" : "promote", ok);
    free(s);
    return reply_json(h, c, ok ? 200 : 409, j, NULL);
}

static enum MHD_Result post_rollback(cd_http_t *h, struct MHD_Connection *c, const req_t *r)
{
    return flagger(h, c, r, "rollback", CD_VERDICT_ROLLBACK);
}

static enum MHD_Result post_promotion(cd_http_t *h, struct MHD_Connection *c, const req_t *r)
{
    return flagger(h, c, r, "confirm-promotion", CD_VERDICT_PROMOTE);
}

/* Write endpoints: bearer token when configured (compared in constant
 * time), else only on a loopback bind. Replies itself when refused. */
static bool authorized(cd_http_t *h, struct MHD_Connection *c, enum MHD_Result *ret)
{
    if (!h->conf.token[0]) {
        if (h->conf.loopback) return true;
        *ret = reply_error(h, c, 403,
                           "write endpoints need http.token (or http.token_file) when the API "
                           "is bound to a non-loopback address",
                           NULL);
        return false;
    }
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    size_t tl = strlen(h->conf.token);
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ')
            a++;
        if (strlen(a) == tl && CRYPTO_memcmp(a, h->conf.token, tl) == 0) return true;
    }
    *ret = reply_error(h, c, 401,
                       a ? "the bearer token is not accepted"
                         : "missing \"Authorization: Bearer <token>\" header",
                       NULL);
    return false;
}

static bool release_ok(const char *s, size_t n)
{
    if (n == 0 || n > 127) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] > '~') return false;
    return true;
}

static enum MHD_Result post_release(cd_http_t *h, struct MHD_Connection *c, const req_t *r)
{
    enum MHD_Result ret;
    json_t *b;
    if (!authorized(h, c, &ret)) return ret;
    if (!body_object(h, c, r, false, &b, &ret)) return ret;
    json_t *v = json_object_get(b, "release");
    const char *rel = json_string_value(v);
    const char *key;
    json_t *val;
    json_object_foreach(b, key, val)
    {
        if (strcmp(key, "release") != 0) {
            json_decref(b);
            return reply_error(h, c, 400, "unknown key in the body; known keys: release", NULL);
        }
    }
    if (!rel || !release_ok(rel, json_string_length(v))) {
        json_decref(b);
        return reply_error(h, c, 400,
                           "release: accepted: a string of 1 to 127 visible ASCII characters, "
                           "e.g. {\"release\": \"2.6.0\"}",
                           NULL);
    }
    pthread_mutex_lock(&h->mu);
    bool done = wait_reset(h, ask_reset(h, rel));
    pthread_mutex_unlock(&h->mu);
    if (done) cd_log(CD_LOG_INFO, "http: new release declared: %s", rel);
    json_decref(b); /* rel dies with it */
    if (!done)
        return reply_error(h, c, 503, "the evaluating thread did not take the release within 2 s",
                           NULL);
    cd_snapshot_t *s = snapshot_copy(h);
    if (!s) return reply_error(h, c, 500, "out of memory", NULL);
    json_t *j = json_pack("{s:s,s:s,s:o}", "release", s->release, "verdict",
                          cd_verdict_kind_name(s->verdict), "since", time_json(s->since_ms));
    free(s);
    return reply_json(h, c, 200, j, NULL);
}

static const struct route {
    const char *path, *method;
    handler_fn fn;
} ROUTES[] = {
    {"/healthz", "GET", get_healthz},
    {"/readyz", "GET", get_readyz},
    {"/metrics", "GET", get_metrics},
    {"/api/v1/verdict", "GET", get_verdict},
    {"/api/v1/flagger/rollback", "POST", post_rollback},
    {"/api/v1/flagger/confirm-promotion", "POST", post_promotion},
    {"/api/v1/release", "POST", post_release},
    {"/", "GET", get_page},
    {"/api/v1/dashboard", "GET", get_dashboard},
    {"/api/v1/history", "GET", get_history},
    {"/api/v1/windows", "GET", get_windows},
};

static enum MHD_Result route(cd_http_t *h, struct MHD_Connection *c, const char *url,
                             const char *method, const req_t *r)
{
    const struct route *found = NULL;
    for (size_t i = 0; i < sizeof(ROUTES) / sizeof(ROUTES[0]); i++)
        if (strcmp(ROUTES[i].path, url) == 0) {
            found = &ROUTES[i];
            if (strcmp(ROUTES[i].method, method) == 0) {
                if (r->too_large) break;
                return ROUTES[i].fn(h, c, r);
            }
        }
    if (!found) return reply_error(h, c, 404, "no such endpoint; see docs/http-api.md", NULL);
    if (r->too_large) return reply_error(h, c, 413, "request body over 64 KB", NULL);
    char msg[96];
    snprintf(msg, sizeof(msg), "method not allowed; allowed: %s", found->method);
    return reply_error(h, c, 405, msg, found->method);
}

/* ---- libmicrohttpd callbacks ---------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    cd_http_t *h = cls;
    req_t *r = *con_cls;
    if (!r) { /* first call: headers only */
        r = calloc(1, sizeof(*r));
        if (!r) return MHD_NO;
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > CD_HTTP_MAX_BODY) {
            /* Refused before reading it; MHD closes the connection after. */
            return reply_error(h, c, 413, "request body over 64 KB", NULL);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_large || r->len + n > CD_HTTP_MAX_BODY) {
            r->too_large = true; /* discard the rest as it arrives */
            free(r->body);
            r->body = NULL;
            r->len = 0;
            return MHD_YES;
        }
        char *nb = realloc(r->body, r->len + n + 1);
        if (!nb) return MHD_NO;
        memcpy(nb + r->len, upload, n);
        r->body = nb;
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    return route(h, c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    req_t *r = *con_cls;
    if (!r) return;
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

cd_http_t *cd_http_new(const cd_http_conf_t *conf, const cd_http_sources_t *src, char *errbuf,
                       size_t errsize)
{
    cd_http_t *h = calloc(1, sizeof(*h));
    pthread_condattr_t ca;
    if (!h) goto oom;
    h->snap = calloc(1, sizeof(*h->snap));
    if (!h->snap) goto oom;
    h->conf = *conf;
    if (src) h->src = *src;
    atomic_init(&h->port, 0);
    atomic_init(&h->req_pending, false);
    for (int i = 0; i < CD_HTTP_NCODES; i++)
        atomic_init(&h->codes[i], 0);
    h->snap->verdict = CD_VERDICT_ANALYZING;
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    return h;
oom:
    snprintf(errbuf, errsize, "http: out of memory");
    if (h) free(h->snap);
    free(h);
    return NULL;
}

void cd_http_restore_run(cd_http_t *h, const char *key, const char *checksum)
{
    pthread_mutex_lock(&h->mu);
    bool changed;
    flagger_run(h, key, checksum, &changed); /* first sight of key: no reset */
    pthread_mutex_unlock(&h->mu);
}

void cd_http_set_run_hook(cd_http_t *h,
                          void (*cb)(const char *key, const char *checksum, void *opaque),
                          void *opaque)
{
    h->run_hook = cb;
    h->run_hook_opaque = opaque;
}

int cd_http_start(cd_http_t *h, char *errbuf, size_t errsize)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)h->conf.port);
    if (inet_pton(AF_INET, h->conf.host, &sa.sin_addr) != 1) {
        snprintf(errbuf, errsize, "http.bind: \"%s\" is not an IPv4 address", h->conf.host);
        return -1;
    }
    errno = 0;
    h->d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, (uint16_t)h->conf.port, NULL, NULL,
                            on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)POOL_THREADS,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512, MHD_OPTION_END);
    if (!h->d) {
        snprintf(errbuf, errsize, "http: cannot listen on %s:%d: %s", h->conf.host, h->conf.port,
                 errno ? strerror(errno) : "libmicrohttpd refused to start");
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : h->conf.port;
    atomic_store_explicit(&h->port, port, memory_order_relaxed);
    cd_log(CD_LOG_INFO, "http: listening on %s:%d", h->conf.host, port);
    /* Tests and scripts find the port here whatever the log level. */
    fprintf(stderr, "http: listening on %s:%d\n", h->conf.host, port);
    fflush(stderr);
    return 0;
}

int cd_http_port(const cd_http_t *h)
{
    return atomic_load_explicit(&((cd_http_t *)h)->port, memory_order_relaxed);
}

void cd_http_publish(cd_http_t *h, const cd_snapshot_t *s)
{
    pthread_mutex_lock(&h->mu);
    memcpy(h->snap, s, sizeof(*s));
    h->snap->seq = ++h->seq;
    pthread_mutex_unlock(&h->mu);
}

bool cd_http_take_release(cd_http_t *h, char *buf, size_t size)
{
    /* acquire: pairs with post_release's release store (the mutex below
     * orders the data anyway; the flag only spares a lock per tick) */
    if (!atomic_load_explicit(&h->req_pending, memory_order_acquire)) return false;
    pthread_mutex_lock(&h->mu);
    snprintf(buf, size, "%s", h->req_release);
    h->taken_gen = h->req_gen;
    atomic_store_explicit(&h->req_pending, false, memory_order_relaxed);
    pthread_mutex_unlock(&h->mu);
    return true;
}

void cd_http_release_done(cd_http_t *h)
{
    pthread_mutex_lock(&h->mu);
    h->done_gen = h->taken_gen;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

void cd_http_stop(cd_http_t *h)
{
    if (!h || !h->d) return;
    MHD_stop_daemon(h->d);
    h->d = NULL;
}

void cd_http_destroy(cd_http_t *h)
{
    if (!h) return;
    cd_http_stop(h);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h->snap);
    free(h);
}
