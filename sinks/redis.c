/*
 * redis.c - the redis sink: each record is written to Redis three ways, in
 * one MULTI/EXEC transaction on one connection (hiredis):
 *   SET     <key_prefix>:<service>:<release>:verdict  <verdict JSON>   (verdict records only)
 *   PUBLISH <channel>  <record JSON>
 *   XADD    <stream> MAXLEN ~ <stream_maxlen> * verdict V rule R release REL json JSON
 * so a dashboard reads the latest verdict per release, a subscriber is told at
 * once and a late consumer replays the capped stream. The transaction makes a
 * record land in all three places or in none (a reply lost after EXEC ran can
 * still cause a retry to write it twice: delivery is at least once).
 *
 * Threading and blocking: every op but init runs on the dispatcher thread,
 * and the state is touched by no other thread, so there is no lock. The
 * context is a blocking hiredis context whose connect is bounded by
 * connect_timeout (hiredis connects non-blocking and polls) and whose socket
 * reads and writes are bounded by command_timeout (SO_RCVTIMEO/SO_SNDTIMEO),
 * so one delivery blocks the dispatcher for at most about
 * connect_timeout + 3 x command_timeout (connect, AUTH/SELECT, the
 * transaction) and usually for one loopback round trip. Names are resolved
 * with getaddrinfo, which no timeout bounds: give an IP address or a name
 * the resolver answers from /etc/hosts when that matters.
 *
 * Redis down: a failed connect or a broken connection makes deliver return
 * RETRY, and further connects are gated by an exponential backoff
 * (reconnect_backoff base, doubling up to cap); while gated, deliver returns
 * RETRY at once without touching the network, so a queue of records meets a
 * dead Redis at most once per backoff step. The dispatcher owns when a
 * record is retried; this file owns only how often a connect is tried. A
 * connection the server closed while idle (Redis `timeout`, a proxy) is
 * noticed before sending, by a zero-timeout poll, and replaced at once
 * without counting as a failure.
 *
 * Redis errors: an error reply that names a passing condition (LOADING, BUSY,
 * MASTERDOWN, READONLY, OOM, NOAUTH, TRYAGAIN, CLUSTERDOWN, NOREPLICAS) is a
 * RETRY; any other (WRONGTYPE: the key holds something else; ERR ...) is a
 * DROP, logged with Redis's message. The password is never logged: messages
 * name the sink by its config path and address only.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canaryd/log.h"
#include "canaryd/sink.h"
#include "sink_util.h"

#define RS_STR_MAX 256
/* A sink must never hold the dispatcher for long: timeouts are capped. */
#define RS_TIMEOUT_MAX_MS 10000 /* 10s */
#define RS_BACKOFF_MAX_MS (10 * 60 * 1000)
#define RS_MAXLEN_MAX 1000000000LL

typedef struct redis_sink {
    char where[RS_STR_MAX + 64]; /* "sinks[2] (127.0.0.1:6379)": names it in logs */
    char address[RS_STR_MAX];
    char host[RS_STR_MAX]; /* host, or the socket path when unix_socket */
    int port;
    bool unix_socket;
    char username[RS_STR_MAX];
    char *password; /* secret: never logged, wiped on destroy; NULL if none */
    long long db;
    char prefix[RS_STR_MAX], channel[RS_STR_MAX], stream[RS_STR_MAX];
    long long stream_maxlen;
    int64_t connect_timeout_ms, command_timeout_ms;
    int64_t backoff_base_ms, backoff_cap_ms;

    redisContext *c;         /* NULL while disconnected */
    int failures;            /* consecutive failures (connects or I/O) since the last success */
    int64_t next_connect_ms; /* monotonic: no connect attempt before this */
    bool down_logged;        /* "unreachable" was said; say "reconnected" when it is back */
} redis_sink_t;

extern const struct cd_sink_ops cd_sink_redis;

static struct timeval tv_of(int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* --- config --------------------------------------------------------------- */

static const char *const known_keys[] = {"address",
                                         "username",
                                         "password",
                                         "db",
                                         "key_prefix",
                                         "channel",
                                         "stream",
                                         "stream_maxlen",
                                         "connect_timeout",
                                         "command_timeout",
                                         "reconnect_backoff",
                                         NULL};

/* A name that may be "" (that write is then off), copied into dst. */
static bool opt_name(cd_diag_t *d, const char *path, const json_t *conf, const char *key, char *dst,
                     size_t size)
{
    char p[RS_STR_MAX];
    const json_t *v = json_object_get(conf, key);
    if (!v) return true;
    cd_sconf_path(p, sizeof(p), path, key);
    size_t n = json_is_string(v) ? json_string_length(v) : 0;
    if (!json_is_string(v) || n >= size || strlen(json_string_value(v)) != n) {
        cd_sconf_bad(d, p, v, false, "is not accepted",
                     "a string of up to 255 bytes without NUL (\"\" turns this write off)");
        return false;
    }
    memcpy(dst, json_string_value(v), n + 1);
    return true;
}

static bool opt_integer(cd_diag_t *d, const char *path, const json_t *conf, const char *key,
                        long long lo, long long hi, long long *out)
{
    char p[RS_STR_MAX], acc[96];
    const json_t *v = json_object_get(conf, key);
    if (!v) return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        cd_sconf_path(p, sizeof(p), path, key);
        snprintf(acc, sizeof(acc), "an integer from %lld to %lld", lo, hi);
        cd_sconf_bad(d, p, v, false, json_is_integer(v) ? "is out of range" : "is not an integer",
                     acc);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* s->address: "host:port", "[v6]:port" or "/path/to/redis.sock". */
static bool parse_address(redis_sink_t *s, cd_diag_t *d, const char *path, const json_t *conf)
{
    const char *a = s->address;
    if (a[0] == '/') {
        s->unix_socket = true;
        snprintf(s->host, sizeof(s->host), "%s", a);
        return true;
    }
    const char *colon = strrchr(a, ':');
    const char *h = a;
    size_t hlen = colon ? (size_t)(colon - a) : 0;
    if (colon && a[0] == '[') { /* [v6]:port */
        if (hlen < 3 || a[hlen - 1] != ']') colon = NULL;
        h = a + 1;
        hlen -= 2;
    } else if (colon && memchr(a, ':', hlen)) {
        colon = NULL; /* a bare IPv6 address: where the port starts is ambiguous */
    }
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || hlen == 0 || !end || end == colon + 1 || *end || port < 1 || port > 65535) {
        char p[RS_STR_MAX];
        cd_sconf_path(p, sizeof(p), path, "address");
        cd_sconf_bad(d, p, json_object_get(conf, "address"), false, "is not an address",
                     "\"host:port\" (\"127.0.0.1:6379\", \"[::1]:6379\") or the absolute path "
                     "of a unix socket");
        return false;
    }
    memcpy(s->host, h, hlen);
    s->host[hlen] = '\0';
    s->port = (int)port;
    return true;
}

static bool parse_backoff(redis_sink_t *s, cd_diag_t *d, const char *path, const json_t *conf)
{
    static const char *const keys[] = {"base", "cap", NULL};
    const json_t *b = json_object_get(conf, "reconnect_backoff");
    char p[RS_STR_MAX];
    if (!b) return true;
    cd_sconf_path(p, sizeof(p), path, "reconnect_backoff");
    if (!json_is_object(b)) {
        cd_sconf_bad(d, p, b, false, "is not an object", "{\"base\": DURATION, \"cap\": DURATION}");
        return false;
    }
    bool ok = cd_sconf_keys(d, p, b, keys, false);
    ok &= cd_sconf_duration(d, p, b, "base", 0, RS_BACKOFF_MAX_MS, &s->backoff_base_ms);
    ok &= cd_sconf_duration(d, p, b, "cap", 0, RS_BACKOFF_MAX_MS, &s->backoff_cap_ms);
    if (ok && s->backoff_cap_ms < s->backoff_base_ms) {
        char c[RS_STR_MAX];
        cd_sconf_path(c, sizeof(c), p, "cap");
        cd_sconf_bad(d, c, json_object_get(b, "cap"), false, "is below base",
                     "a duration >= base (default base 100ms, cap 5s)");
        ok = false;
    }
    return ok;
}

static void redis_destroy(void *state);

static void *redis_init(const void *conf_, const char *path, cd_diag_t *diag)
{
    const json_t *conf = conf_;
    char *address = NULL, *username = NULL;
    redis_sink_t *s = calloc(1, sizeof(*s));
    if (!s) {
        cd_diag_add(diag, "%s: out of memory", path);
        return NULL;
    }
    snprintf(s->address, sizeof(s->address), "127.0.0.1:6379");
    snprintf(s->prefix, sizeof(s->prefix), "canaryd");
    snprintf(s->channel, sizeof(s->channel), "canaryd:verdicts");
    snprintf(s->stream, sizeof(s->stream), "canaryd:verdicts:stream");
    s->stream_maxlen = 10000;
    s->connect_timeout_ms = 500;
    s->command_timeout_ms = 500;
    s->backoff_base_ms = 100;
    s->backoff_cap_ms = 5000;

    if (!json_is_object(conf)) {
        cd_sconf_bad(diag, path, conf, false, "is not an object", "{\"type\": \"redis\", ...}");
        goto err;
    }
    bool ok = cd_sconf_keys(diag, path, conf, known_keys, true);
    if (!cd_sconf_string(diag, path, conf, "address", false, false, &address)) {
        ok = false;
    } else {
        if (address && strlen(address) < sizeof(s->address))
            memcpy(s->address, address, strlen(address) + 1);
        else if (address)
            s->address[0] = '\0'; /* too long: parse_address reports it */
        ok &= parse_address(s, diag, path, conf);
    }
    ok &= cd_sconf_string(diag, path, conf, "username", false, false, &username);
    if (username && strlen(username) >= sizeof(s->username)) {
        char p[RS_STR_MAX];
        cd_sconf_path(p, sizeof(p), path, "username");
        cd_sconf_bad(diag, p, json_object_get(conf, "username"), false, "is too long",
                     "a string of 1 to 255 bytes");
        ok = false;
    } else if (username) {
        memcpy(s->username, username, strlen(username) + 1);
    }
    ok &= cd_sconf_string(diag, path, conf, "password", false, true, &s->password);
    ok &= opt_integer(diag, path, conf, "db", 0, INT_MAX, &s->db);
    ok &= opt_name(diag, path, conf, "key_prefix", s->prefix, sizeof(s->prefix));
    ok &= opt_name(diag, path, conf, "channel", s->channel, sizeof(s->channel));
    ok &= opt_name(diag, path, conf, "stream", s->stream, sizeof(s->stream));
    ok &= opt_integer(diag, path, conf, "stream_maxlen", 1, RS_MAXLEN_MAX, &s->stream_maxlen);
    ok &= cd_sconf_duration(diag, path, conf, "connect_timeout", 1, RS_TIMEOUT_MAX_MS,
                            &s->connect_timeout_ms);
    ok &= cd_sconf_duration(diag, path, conf, "command_timeout", 1, RS_TIMEOUT_MAX_MS,
                            &s->command_timeout_ms);
    ok &= parse_backoff(s, diag, path, conf);
    if (ok && s->username[0] && !s->password) {
        char p[RS_STR_MAX];
        cd_sconf_path(p, sizeof(p), path, "username");
        cd_sconf_bad(diag, p, json_object_get(conf, "username"), false,
                     "is given without a password",
                     "a username together with \"password\" (AUTH username password)");
        ok = false;
    }
    if (!ok) goto err;
    if (!s->prefix[0] && !s->channel[0] && !s->stream[0]) {
        cd_diag_add(diag,
                    "%s: key_prefix, channel and stream are all \"\", so nothing would be "
                    "written; accepted: at least one of them non-empty",
                    path);
        goto err;
    }
    snprintf(s->where, sizeof(s->where), "%s (%s)", path, s->address);
    free(address);
    free(username);
    return s;
err:
    free(address);
    free(username);
    redis_destroy(s);
    return NULL;
}

/* --- connection ------------------------------------------------------------ */

/*
 * hiredis writes with write(2): a peer that has gone away raises SIGPIPE,
 * whose default action kills the agent. SIGPIPE is blocked in this thread
 * for the duration of the I/O and one that became pending is consumed, so
 * the effect stays local without changing the process's signal dispositions
 * (libpq does the same).
 */
typedef struct sigpipe_guard {
    sigset_t old;
    bool was_pending;
} sigpipe_guard_t;

static void sigpipe_block(sigpipe_guard_t *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_restore(sigpipe_guard_t *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    if (!g->was_pending && sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static void disconnect(redis_sink_t *s)
{
    if (s->c) redisFree(s->c);
    s->c = NULL;
}

/* A failure: drop the connection and gate the next connect. */
static void failed(redis_sink_t *s, const char *what, const char *detail)
{
    disconnect(s);
    if (s->failures < 30) s->failures++;
    int64_t delay = s->backoff_base_ms;
    for (int i = 1; i < s->failures && delay < s->backoff_cap_ms; i++)
        delay *= 2;
    if (delay > s->backoff_cap_ms) delay = s->backoff_cap_ms;
    s->next_connect_ms = cd_sink_now_ms() + delay;
    char key[RS_STR_MAX + 96];
    snprintf(key, sizeof(key), "redis sink %s down", s->where);
    cd_log_ratelimited(key, CD_LOG_WARN,
                       "redis sink %s: %s: %s; records are retried (next connect in %lld ms)",
                       s->where, what, detail, (long long)delay);
    s->down_logged = true;
}

/* Runs one command at connect time (AUTH, SELECT); false if it failed. */
static bool setup_command(redis_sink_t *s, int argc, const char **argv, const char *what)
{
    redisReply *r = redisCommandArgv(s->c, argc, argv, NULL);
    if (!r) {
        char detail[160]; /* copied: failed() frees the context holding errstr */
        snprintf(detail, sizeof(detail), "%s", s->c->errstr[0] ? s->c->errstr : "no reply");
        failed(s, what, detail);
        return false;
    }
    bool ok = r->type != REDIS_REPLY_ERROR;
    if (!ok) {
        char detail[300];
        /* Redis's own message (WRONGPASS ..., ERR DB index is out of range):
         * it never echoes the password. */
        snprintf(detail, sizeof(detail), "%.*s", (int)(r->len < 256 ? r->len : 256), r->str);
        freeReplyObject(r);
        failed(s, what, detail);
        return false;
    }
    freeReplyObject(r);
    return true;
}

static bool connect_now(redis_sink_t *s)
{
    struct timeval ct = tv_of(s->connect_timeout_ms);
    s->c = s->unix_socket ? redisConnectUnixWithTimeout(s->host, ct)
                          : redisConnectWithTimeout(s->host, s->port, ct);
    if (!s->c) {
        failed(s, "connect", "out of memory");
        return false;
    }
    if (s->c->err) {
        char detail[160];
        snprintf(detail, sizeof(detail), "%s", s->c->errstr);
        failed(s, "connect", detail);
        return false;
    }
    if (redisSetTimeout(s->c, tv_of(s->command_timeout_ms)) != REDIS_OK) {
        failed(s, "connect", "cannot set the command timeout");
        return false;
    }
    if (s->password) {
        const char *argv[3] = {"AUTH", s->username[0] ? s->username : s->password, s->password};
        if (!setup_command(s, s->username[0] ? 3 : 2, argv, "AUTH")) return false;
    }
    if (s->db != 0) {
        char db[24];
        snprintf(db, sizeof(db), "%lld", s->db);
        const char *argv[2] = {"SELECT", db};
        if (!setup_command(s, 2, argv, "SELECT")) return false;
    }
    return true;
}

/* Whether an idle connection was closed by the other end (EOF, reset, or
 * bytes nobody asked for): then it is replaced before use. */
static bool stale(const redisContext *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) != 0;
}

/* Error replies that name a passing condition of the server. */
static bool transient_error(const redisReply *r)
{
    static const char *const prefixes[] = {"LOADING",    "BUSY",   "MASTERDOWN", "READONLY",
                                           "OOM",        "NOAUTH", "TRYAGAIN",   "CLUSTERDOWN",
                                           "NOREPLICAS", NULL};
    for (int i = 0; prefixes[i]; i++) {
        size_t n = strlen(prefixes[i]);
        if (r->len >= n && strncmp(r->str, prefixes[i], n) == 0) return true;
    }
    return false;
}

/* --- delivery --------------------------------------------------------------- */

enum { MAX_CMDS = 3 };

typedef struct command {
    const char *name; /* for messages */
    int argc;
    const char *argv[16];
    size_t lens[16];
} command_t;

static void arg(command_t *c, const char *s, size_t n)
{
    c->argv[c->argc] = s;
    c->lens[c->argc++] = n;
}

static void args(command_t *c, const char *s)
{
    arg(c, s, strlen(s));
}

/* Reads one reply; NULL after marking the connection failed. */
static redisReply *read_reply(redis_sink_t *s)
{
    void *r = NULL;
    if (redisGetReply(s->c, &r) != REDIS_OK || !r) {
        char detail[160];
        snprintf(detail, sizeof(detail), "%s",
                 s->c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
                     ? "no reply within command_timeout"
                 : s->c->errstr[0] ? s->c->errstr
                                   : "connection lost");
        failed(s, "command", detail);
        return NULL;
    }
    return r;
}

/* Logs an error reply of command c; returns its class. */
static cd_sink_result_t reply_error(redis_sink_t *s, const command_t *c, const redisReply *r)
{
    bool retry = transient_error(r);
    char key[RS_STR_MAX + 96];
    snprintf(key, sizeof(key), "redis sink %s error", s->where);
    cd_log_ratelimited(key, retry ? CD_LOG_WARN : CD_LOG_ERROR, "redis sink %s: %s failed: %.*s%s",
                       s->where, c->name, (int)(r->len < 256 ? r->len : 256), r->str,
                       retry ? " (retried)" : " (record dropped)");
    return retry ? CD_SINK_RETRY : CD_SINK_DROP;
}

static cd_sink_result_t transact(redis_sink_t *s, command_t *cmds, int n)
{
    const char *multi = "MULTI", *exec = "EXEC";
    bool queued = redisAppendCommandArgv(s->c, 1, &multi, NULL) == REDIS_OK;
    for (int i = 0; i < n && queued; i++)
        queued = redisAppendCommandArgv(s->c, cmds[i].argc, cmds[i].argv, cmds[i].lens) == REDIS_OK;
    if (!queued || redisAppendCommandArgv(s->c, 1, &exec, NULL) != REDIS_OK) {
        /* Out of memory part way: the pipeline is not in step any more. */
        failed(s, "command", "out of memory");
        return CD_SINK_RETRY;
    }

    /* Every reply is read even after an error, to keep the pipeline in step. */
    cd_sink_result_t res = CD_SINK_OK;
    redisReply *r = read_reply(s);
    if (!r) return CD_SINK_RETRY;
    freeReplyObject(r);
    for (int i = 0; i < n; i++) {
        if (!(r = read_reply(s))) return CD_SINK_RETRY;
        if (r->type == REDIS_REPLY_ERROR) { /* refused at queue time: EXEC will abort */
            cd_sink_result_t e = reply_error(s, &cmds[i], r);
            if (res != CD_SINK_DROP) res = e;
        }
        freeReplyObject(r);
    }
    if (!(r = read_reply(s))) return CD_SINK_RETRY;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)n) {
        for (int i = 0; i < n; i++) {
            if (r->element[i]->type != REDIS_REPLY_ERROR) continue;
            cd_sink_result_t e = reply_error(s, &cmds[i], r->element[i]);
            if (res != CD_SINK_DROP) res = e;
        }
    } else if (res == CD_SINK_OK) { /* EXECABORT without a queued error, or nil */
        command_t ex = {.name = "EXEC"};
        res = r->type == REDIS_REPLY_ERROR ? reply_error(s, &ex, r) : CD_SINK_RETRY;
    }
    freeReplyObject(r);
    return res;
}

static cd_sink_result_t redis_deliver(void *state, const cd_sink_msg_t *m, int64_t *retry_after_ms)
{
    redis_sink_t *s = state;
    (void)retry_after_ms; /* the dispatcher's backoff applies; Redis has no Retry-After */

    if (s->c && stale(s->c)) disconnect(s); /* closed while idle: not a failure */
    if (!s->c) {
        if (cd_sink_now_ms() < s->next_connect_ms)
            return CD_SINK_RETRY; /* backing off: fail fast */
    }

    const cd_verdict_t *v = m->v;
    const char *service = m->service && m->service[0] ? m->service : "unknown";
    const char *release = v->release && v->release[0] ? v->release : "unknown";
    bool is_verdict = v->record == CD_RECORD_VERDICT;
    const char *verdict = is_verdict ? cd_verdict_kind_name(v->verdict) : "";
    char maxlen[24];
    snprintf(maxlen, sizeof(maxlen), "%lld", s->stream_maxlen);

    size_t klen = strlen(s->prefix) + strlen(service) + strlen(release) + 16;
    char *key = malloc(klen);
    if (!key) return CD_SINK_RETRY;
    snprintf(key, klen, "%s:%s:%s:verdict", s->prefix, service, release);

    command_t cmds[MAX_CMDS];
    int n = 0;
    memset(cmds, 0, sizeof(cmds));
    if (s->prefix[0] && is_verdict) {
        command_t *c = &cmds[n++];
        c->name = "SET";
        args(c, "SET"), args(c, key), arg(c, m->json, m->json_len);
    }
    if (s->channel[0]) {
        command_t *c = &cmds[n++];
        c->name = "PUBLISH";
        args(c, "PUBLISH"), args(c, s->channel), arg(c, m->json, m->json_len);
    }
    if (s->stream[0]) {
        command_t *c = &cmds[n++];
        c->name = "XADD";
        args(c, "XADD"), args(c, s->stream), args(c, "MAXLEN"), args(c, "~"), args(c, maxlen);
        args(c, "*"), args(c, "verdict"), args(c, verdict), args(c, "rule");
        args(c, v->rule ? v->rule : ""), args(c, "release"), args(c, v->release ? v->release : "");
        args(c, "json"), arg(c, m->json, m->json_len);
    }
    if (n == 0) { /* a state record and only SET configured */
        free(key);
        return CD_SINK_OK;
    }

    sigpipe_guard_t g;
    sigpipe_block(&g);
    cd_sink_result_t res = CD_SINK_RETRY;
    if (s->c || connect_now(s)) res = transact(s, cmds, n);
    sigpipe_restore(&g);
    free(key);

    if (s->c && res != CD_SINK_RETRY) { /* the server answered: it is up */
        if (s->down_logged) cd_log(CD_LOG_INFO, "redis sink %s: connected again", s->where);
        s->down_logged = false;
        s->failures = 0;
    }
    return res;
}

static void redis_destroy(void *state)
{
    redis_sink_t *s = state;
    if (!s) return;
    disconnect(s);
    if (s->password) {
        explicit_bzero(s->password, strlen(s->password));
        free(s->password);
    }
    free(s);
}

const struct cd_sink_ops cd_sink_redis = {
    .name = "redis",
    .init = redis_init,
    .deliver = redis_deliver,
    .poll = NULL,
    .flush = NULL,
    .reopen = NULL,
    .destroy = redis_destroy,
};
