/*
 * ledger.c - the decision ledger (see ledger.h): a JSON-lines file read
 * whole at open and appended to with one write and one fsync per line.
 *
 * Data: three small arrays under one mutex, rebuilt from the file by the
 * same apply() that every append goes through, so what a restarted agent
 * knows is exactly what the running one knew when it last wrote:
 *   - per (decision identity, sink): the latest event time delivered and
 *     queued (0 for a once-per-release decision; INT64_MIN: none);
 *   - the current judgement's decisions (identity, time, wall time, JSON);
 *   - Flagger's canary runs (namespace/name -> checksum).
 * Linear searches: a release has a handful of decisions and a few sinks.
 *
 * Durability: fsync per line, like the verdict log. A "delivered" line is
 * written after the sink's acknowledgement, so a crash between the two
 * delivers that decision once more after the restart (at least once; the
 * window is one fsync long). A "decided" line is written before any sink is
 * handed the record, so a decision the dispatcher took is never lost to a
 * crash; one still in the submit queue at the crash is the rebuild's to
 * make again (docs/operations.md).
 *
 * Trade-off: appends only while running (a few lines per release, a few
 * hundred bytes each), so no crash can leave it half-rewritten; at open, a
 * file past COMPACT_LINES is rewritten as the current judgement alone
 * (compact(): a new file renamed over the old one).
 */
#include "canaryd/clock.h"
#include "canaryd/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/coord.h"
#include "canaryd/log.h"
#include "canaryd/verdict_fmt.h"

#define SINK_MAX 64
/* The Redis mirror: lines kept in the list, I/O timeouts, the pause after
 * a failure (a dead Redis costs a decision at most one timeout). */
#define MIRROR_KEEP 10000
#define MIRROR_TIMEOUT_MS 1000
#define MIRROR_PAUSE_MS 10000
/* A file longer than this is rewritten as its current meaning at open. */
#define COMPACT_LINES 1000

typedef struct sink_rec {
    char id[CD_DECISION_ID_MAX];
    char sink[SINK_MAX];
    int64_t delivered, queued; /* event time (0: once-per-release); INT64_MIN: none */
} sink_rec_t;

typedef struct decided {
    char id[CD_DECISION_ID_MAX];
    bool once, dry;
    cd_verdict_kind_t verdict;
    int64_t time_ms, at_ms;
    char release[128], service[CD_NAME_MAX], rule[CD_NAME_MAX];
    char *json;
} decided_t;

typedef struct frun {
    char key[200];
    char checksum[128];
} frun_t;

struct cd_ledger {
    pthread_mutex_t mu;
    int fd;
    char *path;
    uint64_t skipped;
    sink_rec_t *recs;
    size_t nrecs, caprecs;
    decided_t *dec; /* the current judgement's, oldest first */
    size_t ndec, capdec;
    char cur_release[128];
    frun_t *runs;
    size_t nruns, capruns;
    uint64_t file_lines; /* lines the file held at open */
    /* the Redis mirror (cd_ledger_attach_redis); rc NULL while disconnected */
    bool mirror;
    cd_coord_conf_t cc;
    char key[160];
    redisContext *rc;
    int64_t retry_at; /* monotonic ms: no connect before */
};

static bool grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return true;
    size_t c = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, c * elem);
    if (!p) return false;
    *arr = p;
    *cap = c;
    return true;
}

bool cd_decision_id(const cd_verdict_t *v, char *buf, size_t size, bool *once)
{
    if (v->record != CD_RECORD_VERDICT ||
        (v->verdict != CD_VERDICT_ROLLBACK && v->verdict != CD_VERDICT_PROMOTE &&
         v->verdict != CD_VERDICT_ALERT))
        return false;
    snprintf(buf, size, "%s:%s:%s:%s%s", v->service && *v->service ? v->service : "-",
             v->release && *v->release ? v->release : "-", cd_verdict_kind_name(v->verdict),
             v->rule && *v->rule ? v->rule : "-", v->dry_run ? ":dry" : "");
    *once = v->verdict != CD_VERDICT_ALERT && !v->dry_run;
    return true;
}

/* ---- state (under mu) ---- */

static sink_rec_t *rec_find(cd_ledger_t *l, const char *id, const char *sink, bool add)
{
    for (size_t i = 0; i < l->nrecs; i++)
        if (strcmp(l->recs[i].id, id) == 0 && strcmp(l->recs[i].sink, sink) == 0)
            return &l->recs[i];
    if (!add || !grow((void **)&l->recs, &l->caprecs, l->nrecs, sizeof(*l->recs))) return NULL;
    sink_rec_t *r = &l->recs[l->nrecs++];
    snprintf(r->id, sizeof(r->id), "%s", id);
    snprintf(r->sink, sizeof(r->sink), "%s", sink);
    r->delivered = r->queued = INT64_MIN;
    return r;
}

static decided_t *dec_find(cd_ledger_t *l, const char *id)
{
    for (size_t i = 0; i < l->ndec; i++)
        if (strcmp(l->dec[i].id, id) == 0) return &l->dec[i];
    return NULL;
}

static void dec_clear(cd_ledger_t *l)
{
    for (size_t i = 0; i < l->ndec; i++)
        free(l->dec[i].json);
    l->ndec = 0;
}

/* A decided record: the current judgement's when of the current release,
 * else it starts the list of a new release. */
static bool apply_decided(cd_ledger_t *l, const json_t *rec, int64_t at)
{
    char *json = json_dumps(rec, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(15));
    cd_verdict_parsed_t p;
    char err[128], id[CD_DECISION_ID_MAX];
    bool once;
    if (!json || !cd_verdict_from_json(json, strlen(json), &p, err, sizeof(err)) ||
        !cd_decision_id(&p.v, id, sizeof(id), &once)) {
        free(json);
        return false;
    }
    if (strcmp(p.release, l->cur_release) != 0) {
        dec_clear(l);
        snprintf(l->cur_release, sizeof(l->cur_release), "%s", p.release);
    }
    decided_t *d = dec_find(l, id);
    if (!d) {
        if (!grow((void **)&l->dec, &l->capdec, l->ndec, sizeof(*l->dec))) {
            free(json);
            return false;
        }
        d = &l->dec[l->ndec++];
        memset(d, 0, sizeof(*d));
    } else {
        free(d->json);
    }
    snprintf(d->id, sizeof(d->id), "%s", id);
    d->once = once;
    d->dry = p.v.dry_run;
    d->verdict = p.v.verdict;
    d->time_ms = p.v.time_ms;
    d->at_ms = at;
    snprintf(d->release, sizeof(d->release), "%s", p.release);
    snprintf(d->service, sizeof(d->service), "%s", p.service);
    snprintf(d->rule, sizeof(d->rule), "%s", p.rule);
    d->json = json;
    return true;
}

/* One ledger line, read at open or just appended. false: not understood. */
static bool apply(cd_ledger_t *l, const json_t *j)
{
    const char *t = json_string_value(json_object_get(j, "t"));
    if (!t) return false;
    if (strcmp(t, "decided") == 0) {
        const json_t *rec = json_object_get(j, "record");
        return json_is_object(rec) &&
               apply_decided(l, rec, json_integer_value(json_object_get(j, "at")));
    }
    if (strcmp(t, "delivered") == 0) {
        const char *id = json_string_value(json_object_get(j, "id"));
        const char *sink = json_string_value(json_object_get(j, "sink"));
        const json_t *tm = json_object_get(j, "time");
        if (!id || !sink || !json_is_integer(tm)) return false;
        sink_rec_t *r = rec_find(l, id, sink, true);
        if (!r) return false;
        int64_t when = json_integer_value(tm);
        if (when > r->delivered) r->delivered = when;
        if (r->delivered > r->queued) r->queued = r->delivered;
        return true;
    }
    if (strcmp(t, "judgement") == 0) {
        const char *rel = json_string_value(json_object_get(j, "release"));
        if (!rel) return false;
        dec_clear(l);
        l->nrecs = 0; /* a new judgement is notified afresh, even of the same release */
        snprintf(l->cur_release, sizeof(l->cur_release), "%s", rel);
        return true;
    }
    if (strcmp(t, "flagger") == 0) {
        const char *key = json_string_value(json_object_get(j, "key"));
        const char *sum = json_string_value(json_object_get(j, "checksum"));
        if (!key || !sum) return false;
        frun_t *r = NULL;
        for (size_t i = 0; i < l->nruns && !r; i++)
            if (strcmp(l->runs[i].key, key) == 0) r = &l->runs[i];
        if (!r) {
            if (!grow((void **)&l->runs, &l->capruns, l->nruns, sizeof(*l->runs))) return false;
            r = &l->runs[l->nruns++];
            snprintf(r->key, sizeof(r->key), "%s", key);
        }
        snprintf(r->checksum, sizeof(r->checksum), "%s", sum);
        return true;
    }
    return false;
}

/* ---- the Redis mirror (under mu) ---- */

static void mirror_failed(cd_ledger_t *l, const char *what)
{
    cd_log_ratelimited("ledger-redis", CD_LOG_WARN,
                       "ledger %s: Redis %s:%d: %s (decisions are kept in the file; a new pod "
                       "cannot recover what is missing there); next try in %d s",
                       l->path, l->cc.host, l->cc.port, what, MIRROR_PAUSE_MS / 1000);
    if (l->rc) redisFree(l->rc);
    l->rc = NULL;
    l->retry_at = cd_mono_ms() + MIRROR_PAUSE_MS;
}

static bool mirror_connect(cd_ledger_t *l)
{
    if (l->rc) return true;
    if (cd_mono_ms() < l->retry_at) return false;
    struct timeval tv = {MIRROR_TIMEOUT_MS / 1000, (MIRROR_TIMEOUT_MS % 1000) * 1000};
    l->rc = redisConnectWithTimeout(l->cc.host, l->cc.port, tv);
    if (!l->rc || l->rc->err) {
        mirror_failed(l, l->rc ? l->rc->errstr : "out of memory");
        return false;
    }
    redisSetTimeout(l->rc, tv);
    if (l->cc.password[0]) {
        redisReply *r = redisCommand(l->rc, "AUTH %s", l->cc.password);
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
        if (!ok) {
            mirror_failed(l, "AUTH refused");
            return false;
        }
    }
    return true;
}

/* Appends one line to the list, keeping the newest MIRROR_KEEP. */
static void mirror_push(cd_ledger_t *l, const char *line, size_t len)
{
    if (!mirror_connect(l)) return;
    redisAppendCommand(l->rc, "RPUSH %s %b", l->key, line, len);
    redisAppendCommand(l->rc, "LTRIM %s %d -1", l->key, -MIRROR_KEEP);
    for (int i = 0; i < 2; i++) {
        redisReply *r = NULL;
        if (redisGetReply(l->rc, (void **)&r) != REDIS_OK || !r || r->type == REDIS_REPLY_ERROR) {
            if (r) freeReplyObject(r);
            mirror_failed(l, l->rc->err ? l->rc->errstr : "error reply");
            return;
        }
        freeReplyObject(r);
    }
}

/* Under mu: applies j and appends it to the file (one write, one fsync).
 * Steals j. */
static int append(cd_ledger_t *l, json_t *j)
{
    int rc = -1;
    char *line = j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(15))
                   : NULL;
    if (!line || !apply(l, j)) {
        cd_log_ratelimited("ledger-write", CD_LOG_ERROR, "ledger %s: out of memory", l->path);
        goto out;
    }
    size_t n = strlen(line);
    line[n] = '\n'; /* json_dumps' NUL becomes the newline: one write */
    size_t done = l->fd < 0 ? n + 1 : 0; /* no file: Redis alone */
    while (done < n + 1) {
        ssize_t w = write(l->fd, line + done, n + 1 - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            cd_log_ratelimited("ledger-write", CD_LOG_ERROR,
                               "ledger %s: write: %s (this decision's delivery is not remembered "
                               "across a restart)",
                               l->path, w < 0 ? strerror(errno) : "no progress");
            goto out;
        }
        done += (size_t)w;
    }
    if (l->fd >= 0 && fsync(l->fd) != 0) {
        cd_log_ratelimited("ledger-write", CD_LOG_ERROR, "ledger %s: fsync: %s", l->path,
                           strerror(errno));
        goto out;
    }
    rc = 0;
    const char *t = json_string_value(json_object_get(j, "t"));
    if (l->mirror && t && strcmp(t, "delivered") != 0) mirror_push(l, line, n);
out:
    free(line);
    json_decref(j);
    return rc;
}

/* ---- open / close ---- */

static bool load(cd_ledger_t *l, char *errbuf, size_t errsize)
{
    FILE *f = fopen(l->path, "r");
    if (!f) {
        if (errno == ENOENT) return true;
        snprintf(errbuf, errsize, "ledger %s: %s", l->path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        l->file_lines++;
        bool whole = n > 0 && line[n - 1] == '\n';
        json_t *j = whole ? json_loadb(line, (size_t)n - 1, 0, NULL) : NULL;
        if (!j || !apply(l, j)) {
            l->skipped++;
            cd_log(CD_LOG_WARN, "ledger %s: line %llu skipped (%s)", l->path,
                   (unsigned long long)lineno,
                   !whole ? "cut short, by a crash while it was written" : "not a ledger line");
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    return true;
}

/* One line of the compacted file (steals j). false: out of memory. */
static bool put_line(FILE *f, json_t *j)
{
    char *line = j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(15))
                   : NULL;
    json_decref(j);
    if (!line) return false;
    bool ok = fputs(line, f) >= 0 && fputc('\n', f) != EOF;
    free(line);
    return ok;
}

/*
 * Rewrites the file as what it means now, when it has grown past
 * COMPACT_LINES: the current judgement (its release, its decisions and
 * their deliveries) and the Flagger runs; older releases' lines go. Written
 * to PATH.tmp, fsync'ed and renamed over PATH, then the folder fsync'ed: a
 * crash leaves the old file or the new one, never half of either. A failure
 * is logged and keeps the old file.
 */
static void compact(cd_ledger_t *l)
{
    char tmp[4096], dir[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", l->path);
    FILE *f = fopen(tmp, "w");
    bool ok = f != NULL;
    if (ok)
        ok = put_line(f, json_pack("{s:s,s:s,s:I}", "t", "judgement", "release", l->cur_release,
                                   "at", (json_int_t)0));
    for (size_t i = 0; ok && i < l->nruns; i++)
        ok = put_line(f, json_pack("{s:s,s:s,s:s}", "t", "flagger", "key", l->runs[i].key,
                                   "checksum", l->runs[i].checksum));
    for (size_t i = 0; ok && i < l->ndec; i++) {
        const decided_t *d = &l->dec[i];
        json_t *rec = json_loads(d->json, 0, NULL);
        ok = rec && put_line(f, json_pack("{s:s,s:s,s:I,s:o}", "t", "decided", "id", d->id, "at",
                                          (json_int_t)d->at_ms, "record", rec));
        for (size_t k = 0; ok && k < l->nrecs; k++)
            if (strcmp(l->recs[k].id, d->id) == 0 && l->recs[k].delivered != INT64_MIN)
                ok = put_line(f, json_pack("{s:s,s:s,s:s,s:I}", "t", "delivered", "id", d->id,
                                           "sink", l->recs[k].sink, "time",
                                           (json_int_t)l->recs[k].delivered));
    }
    if (ok) ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f && fclose(f) != 0) ok = false;
    if (ok) ok = rename(tmp, l->path) == 0;
    if (!ok) {
        cd_log(CD_LOG_WARN, "ledger %s: not compacted (%s); kept as it is", l->path,
               strerror(errno));
        unlink(tmp);
        return;
    }
    snprintf(dir, sizeof(dir), "%s", l->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the rename itself is durable */
        close(dfd);
    }
    /* what this process knows is what the next one will read */
    size_t kept = 0;
    for (size_t k = 0; k < l->nrecs; k++)
        if (dec_find(l, l->recs[k].id) && l->recs[k].delivered != INT64_MIN)
            l->recs[kept++] = l->recs[k];
    l->nrecs = kept;
    cd_log(CD_LOG_INFO, "ledger %s: compacted from %llu lines to the current judgement's", l->path,
           (unsigned long long)l->file_lines);
}

cd_ledger_t *cd_ledger_open(const char *path, char *errbuf, size_t errsize)
{
    cd_ledger_t *l = calloc(1, sizeof(*l));
    if (!l || !(l->path = strdup(path ? path : "(in Redis)"))) {
        snprintf(errbuf, errsize, "ledger %s: out of memory", path ? path : "");
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->fd = -1;
    if (!path) return l; /* memory (and the Redis mirror) only */
    if (!load(l, errbuf, errsize)) goto err;
    if (l->file_lines > COMPACT_LINES) compact(l);
    l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (l->fd < 0) {
        snprintf(errbuf, errsize, "ledger %s: %s", path, strerror(errno));
        goto err;
    }
    return l;
err:
    cd_ledger_close(l);
    return NULL;
}

int cd_ledger_attach_redis(cd_ledger_t *l, const cd_coord_conf_t *cc)
{
    int n = 0;
    pthread_mutex_lock(&l->mu);
    l->mirror = true;
    l->cc = *cc;
    snprintf(l->key, sizeof(l->key), "%s:ledger", cc->prefix);
    if (l->file_lines > 0) goto out; /* this agent's own record is complete */
    if (!mirror_connect(l)) {
        n = -1;
        goto out;
    }
    redisReply *r = redisCommand(l->rc, "LRANGE %s 0 -1", l->key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        mirror_failed(l, l->rc->err ? l->rc->errstr : "LRANGE did not answer a list");
        n = -1;
        goto out;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        json_t *j = e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, 0, NULL) : NULL;
        if (j && apply(l, j))
            n++;
        else
            l->skipped++;
        json_decref(j);
    }
    freeReplyObject(r);
out:
    pthread_mutex_unlock(&l->mu);
    return n;
}

void cd_ledger_close(cd_ledger_t *l)
{
    if (!l) return;
    if (l->rc) redisFree(l->rc);
    if (l->fd >= 0) close(l->fd);
    dec_clear(l);
    free(l->dec);
    free(l->recs);
    free(l->runs);
    free(l->path);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

const char *cd_ledger_path(const cd_ledger_t *l)
{
    return l->path;
}

uint64_t cd_ledger_skipped(const cd_ledger_t *l)
{
    return l->skipped; /* written at open only */
}

/* ---- recovery ---- */

bool cd_ledger_decision(cd_ledger_t *l, cd_ledger_decision_t *out)
{
    const decided_t *best = NULL;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->ndec; i++) {
        const decided_t *d = &l->dec[i];
        if (d->dry || (d->verdict != CD_VERDICT_ROLLBACK && d->verdict != CD_VERDICT_PROMOTE))
            continue;
        /* ROLLBACK supersedes PROMOTE (engine.h) */
        if (!best || (best->verdict == CD_VERDICT_PROMOTE && d->verdict == CD_VERDICT_ROLLBACK))
            best = d;
    }
    if (best) {
        memset(out, 0, sizeof(*out));
        out->verdict = best->verdict;
        snprintf(out->release, sizeof(out->release), "%s", best->release);
        snprintf(out->service, sizeof(out->service), "%s", best->service);
        snprintf(out->rule, sizeof(out->rule), "%s", best->rule);
        out->time_ms = best->time_ms;
        out->at_ms = best->at_ms;
    }
    pthread_mutex_unlock(&l->mu);
    return best != NULL;
}

int cd_ledger_each_decided(cd_ledger_t *l, void (*cb)(const char *json, void *opaque),
                           void *opaque)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->ndec;
    char **copies = calloc(n ? n : 1, sizeof(*copies));
    for (size_t i = 0; copies && i < n; i++)
        copies[i] = strdup(l->dec[i].json);
    pthread_mutex_unlock(&l->mu);
    if (!copies) return 0;
    /* cb may call back into the ledger: outside the lock */
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (copies[i]) {
            cb(copies[i], opaque);
            count++;
        }
        free(copies[i]);
    }
    free(copies);
    return count;
}

void cd_ledger_each_flagger(cd_ledger_t *l,
                            void (*cb)(const char *key, const char *checksum, void *opaque),
                            void *opaque)
{
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->nruns; i++)
        cb(l->runs[i].key, l->runs[i].checksum, opaque);
    pthread_mutex_unlock(&l->mu);
}

/* ---- the dispatcher's questions and notes ---- */

cd_ledger_state_t cd_ledger_sink_state(cd_ledger_t *l, const char *id, bool once, int64_t time_ms,
                                       const char *sink)
{
    int64_t t = once ? 0 : time_ms;
    cd_ledger_state_t st = CD_LEDGER_NEW;
    pthread_mutex_lock(&l->mu);
    const sink_rec_t *r = rec_find(l, id, sink, false);
    if (r && r->delivered >= t)
        st = CD_LEDGER_DELIVERED;
    else if (r && r->queued >= t)
        st = CD_LEDGER_QUEUED;
    pthread_mutex_unlock(&l->mu);
    return st;
}

void cd_ledger_sink_queued(cd_ledger_t *l, const char *id, bool once, int64_t time_ms,
                           const char *sink)
{
    int64_t t = once ? 0 : time_ms;
    pthread_mutex_lock(&l->mu);
    sink_rec_t *r = rec_find(l, id, sink, true);
    if (r && t > r->queued) r->queued = t;
    pthread_mutex_unlock(&l->mu);
}

void cd_ledger_sink_failed(cd_ledger_t *l, const char *id, bool once, const char *sink)
{
    (void)once;
    pthread_mutex_lock(&l->mu);
    sink_rec_t *r = rec_find(l, id, sink, false);
    if (r) r->queued = r->delivered;
    pthread_mutex_unlock(&l->mu);
}

int cd_ledger_decided(cd_ledger_t *l, const cd_verdict_t *v, const char *json, int64_t at_ms)
{
    char id[CD_DECISION_ID_MAX];
    bool once;
    if (!cd_decision_id(v, id, sizeof(id), &once)) return 0;
    json_t *rec = json_loads(json, 0, NULL);
    if (!rec) return -1;
    pthread_mutex_lock(&l->mu);
    const decided_t *d = strcmp(v->release ? v->release : "", l->cur_release) == 0
                             ? dec_find(l, id)
                             : NULL;
    int rc = 0;
    if (d && (once || d->time_ms >= v->time_ms))
        json_decref(rec); /* already recorded */
    else
        rc = append(l, json_pack("{s:s,s:s,s:I,s:o}", "t", "decided", "id", id, "at",
                                 (json_int_t)at_ms, "record", rec));
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int cd_ledger_delivered(cd_ledger_t *l, const char *id, bool once, int64_t time_ms,
                        const char *sink)
{
    pthread_mutex_lock(&l->mu);
    int rc = append(l, json_pack("{s:s,s:s,s:s,s:I}", "t", "delivered", "id", id, "sink", sink,
                                 "time", (json_int_t)(once ? 0 : time_ms)));
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int cd_ledger_judgement(cd_ledger_t *l, const char *release, int64_t at_ms)
{
    pthread_mutex_lock(&l->mu);
    int rc = append(l, json_pack("{s:s,s:s,s:I}", "t", "judgement", "release", release, "at",
                                 (json_int_t)at_ms));
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int cd_ledger_flagger(cd_ledger_t *l, const char *key, const char *checksum)
{
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    bool same = false;
    for (size_t i = 0; i < l->nruns; i++)
        if (strcmp(l->runs[i].key, key) == 0) same = strcmp(l->runs[i].checksum, checksum) == 0;
    if (!same)
        rc = append(l, json_pack("{s:s,s:s,s:s}", "t", "flagger", "key", key, "checksum",
                                 checksum));
    pthread_mutex_unlock(&l->mu);
    return rc;
}
