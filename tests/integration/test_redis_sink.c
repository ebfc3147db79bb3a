/*
 * test_redis_sink.c - the redis sink against a real redis-server that each
 * test starts on a free loopback port (no persistence) and kills after.
 *
 * The sink is driven through its ops directly (init from a JSON config,
 * deliver, destroy), as the dispatcher would on its thread; a second hiredis
 * connection reads back what was written: the key, the pub/sub message
 * (subscribed before delivering) and the stream entry, byte for byte. Then
 * the failure paths: Redis killed mid-run (RETRY within a measured bound,
 * delivered again once it is back on the same port), the reconnect backoff,
 * a server that accepts but never answers (command timeout), error replies
 * (DROP), AUTH and SELECT, a unix socket, and config errors by key path.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "canaryd/config.h"
#include "canaryd/dispatcher.h"
#include "canaryd/log.h"
#include "canaryd/sink.h"
#include "canaryd/verdict_fmt.h"
#include "live_helpers.h"
#include "redis_server.h"
#include "sink_test.h"

extern const struct cd_sink_ops cd_sink_redis;

static pid_t redis_pid = -1;
static int redis_port;
static char sock_dir[64];

static redisContext *client(void)
{
    return redis_server_client(redis_port);
}

/* Starts redis-server (extra args appended) and waits until it answers. */
static void redis_start_args(const char *const *extra)
{
    redis_pid = redis_server_start(redis_port, NULL, extra);
}

static void redis_start(void)
{
    redis_start_args(NULL);
}

static void redis_kill(void)
{
    redis_server_kill(&redis_pid);
}

static void setup(void)
{
    redis_port = free_port();
    sock_dir[0] = '\0';
    cd_log_set_stream(NULL);
}

static void teardown(void)
{
    redis_kill();
    cd_log_set_stream(NULL);
    if (sock_dir[0]) {
        char p[128];
        snprintf(p, sizeof(p), "%s/redis.sock", sock_dir);
        unlink(p);
        rmdir(sock_dir);
    }
}

TestSuite(redis_sink, .init = setup, .fini = teardown, .timeout = 60);

/* --- records --------------------------------------------------------------- */

typedef st_rec_t rec_t;

/* sink_test.h's error-rate ROLLBACK as a kind record (a state record goes
 * pending -> firing) of service, with quotes in its reason. */
static void make_rec(rec_t *r, cd_record_kind_t kind, const char *release, const char *service)
{
    st_rec_fill(r, release);
    r->v.record = kind;
    r->v.from = CD_STATE_PENDING;
    r->v.to = CD_STATE_FIRING;
    r->v.service = service;
    snprintf(r->v.reason, sizeof(r->v.reason), "canary error-rate 2.39%% > 1.96%% \"quoted\"");
    st_rec_seal(r, 1, service);
}

#define sink_new(...) st_sink_new(&cd_sink_redis, "sinks.outputs[0]", __VA_ARGS__)

static cd_sink_result_t deliver(void *s, rec_t *r)
{
    int64_t ra = -1;
    cd_sink_result_t res = cd_sink_redis.deliver(s, &r->m, &ra);
    cr_assert_eq(ra, -1, "redis never asks for a delay");
    return res;
}

static char *get_string(redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    cr_assert_not_null(r);
    char *out = r->type == REDIS_REPLY_STRING ? strndup(r->str, r->len) : NULL;
    freeReplyObject(r);
    return out;
}

static long long llen_stream(redisContext *c, const char *stream)
{
    redisReply *r = redisCommand(c, "XLEN %s", stream);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* Checks the stream's only (or index-th) entry: exact field list. */
static void expect_stream_entry(redisContext *c, const char *stream, size_t index,
                                const char *verdict, const char *rule, const char *release,
                                const char *json)
{
    redisReply *r = redisCommand(c, "XRANGE %s - +", stream);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY);
    cr_assert_gt(r->elements, index);
    redisReply *e = r->element[index];
    cr_assert_eq(e->elements, 2);
    redisReply *f = e->element[1];
    const char *want[8] = {"verdict", verdict, "rule", rule, "release", release, "json", json};
    cr_assert_eq(f->elements, 8);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(f->element[i]->type, REDIS_REPLY_STRING);
        cr_assert_eq(f->element[i]->len, strlen(want[i]), "field %d", i);
        cr_assert(memcmp(f->element[i]->str, want[i], strlen(want[i])) == 0, "field %d: %s", i,
                  f->element[i]->str);
    }
    freeReplyObject(r);
}

static redisContext *subscriber(const char *channel)
{
    redisContext *c = client();
    redisReply *r = redisCommand(c, "SUBSCRIBE %s", channel);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 3);
    cr_assert_str_eq(r->element[0]->str, "subscribe");
    freeReplyObject(r);
    return c;
}

static void expect_message(redisContext *sub, const char *channel, const char *json)
{
    void *rv = NULL;
    cr_assert_eq(redisGetReply(sub, &rv), REDIS_OK, "no message within 2 s");
    redisReply *r = rv;
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
    cr_assert_str_eq(r->element[0]->str, "message");
    cr_assert_str_eq(r->element[1]->str, channel);
    cr_assert_eq(r->element[2]->len, strlen(json));
    cr_assert_str_eq(r->element[2]->str, json);
    freeReplyObject(r);
}

/* --- delivery ---------------------------------------------------------------- */

Test(redis_sink, writes_key_message_and_stream_entry)
{
    redis_start();
    redisContext *sub = subscriber("canaryd:verdicts");
    redisContext *c = client();
    void *s = sink_new("{\"type\": \"redis\", \"address\": \"127.0.0.1:%d\"}", redis_port);
    rec_t r;
    make_rec(&r, CD_RECORD_VERDICT, "2.5.0", "checkout");

    cr_assert_eq(deliver(s, &r), CD_SINK_OK);

    char *val = get_string(c, "canaryd:checkout:2.5.0:verdict");
    cr_assert_not_null(val);
    cr_assert_str_eq(val, r.json);
    free(val);
    expect_message(sub, "canaryd:verdicts", r.json);
    cr_assert_eq(llen_stream(c, "canaryd:verdicts:stream"), 1);
    expect_stream_entry(c, "canaryd:verdicts:stream", 0, "ROLLBACK", "error-rate", "2.5.0", r.json);

    /* A second verdict for the same release replaces the key and appends. */
    rec_t r2;
    make_rec(&r2, CD_RECORD_VERDICT, "2.5.0", "checkout");
    r2.v.verdict = CD_VERDICT_ALERT;
    r2.v.rule = "audit-log-failures";
    r2.m.json_len = (size_t)cd_verdict_to_json(&r2.v, r2.json, sizeof(r2.json));
    cr_assert_eq(deliver(s, &r2), CD_SINK_OK);
    val = get_string(c, "canaryd:checkout:2.5.0:verdict");
    cr_assert_str_eq(val, r2.json);
    free(val);
    expect_message(sub, "canaryd:verdicts", r2.json);
    cr_assert_eq(llen_stream(c, "canaryd:verdicts:stream"), 2);
    expect_stream_entry(c, "canaryd:verdicts:stream", 1, "ALERT", "audit-log-failures", "2.5.0",
                        r2.json);

    cd_sink_redis.destroy(s);
    redisFree(sub);
    redisFree(c);
}

Test(redis_sink, state_records_and_release_wide_verdicts)
{
    redis_start();
    redisContext *sub = subscriber("ch");
    redisContext *c = client();
    void *s = sink_new("{\"type\": \"redis\", \"address\": \"127.0.0.1:%d\", \"key_prefix\": "
                       "\"cd\", \"channel\": \"ch\", \"stream\": \"st\", \"stream_maxlen\": 5}",
                       redis_port);

    /* A state record: published and streamed with an empty verdict, no key. */
    rec_t st;
    make_rec(&st, CD_RECORD_STATE, "2.5.0", "checkout");
    cr_assert_eq(deliver(s, &st), CD_SINK_OK);
    expect_message(sub, "ch", st.json);
    expect_stream_entry(c, "st", 0, "", "error-rate", "2.5.0", st.json);
    redisReply *k = redisCommand(c, "DBSIZE");
    cr_assert_eq(k->integer, 1, "only the stream exists");
    freeReplyObject(k);

    /* Release-wide, no service and no release known: "unknown" in the key. */
    rec_t hv;
    make_rec(&hv, CD_RECORD_VERDICT, "", "");
    hv.v.verdict = CD_VERDICT_HEALTHY;
    hv.v.rule = NULL;
    hv.m.json_len = (size_t)cd_verdict_to_json(&hv.v, hv.json, sizeof(hv.json));
    cr_assert_eq(deliver(s, &hv), CD_SINK_OK);
    char *val = get_string(c, "cd:unknown:unknown:verdict");
    cr_assert_not_null(val);
    cr_assert_str_eq(val, hv.json);
    free(val);
    expect_message(sub, "ch", hv.json);
    expect_stream_entry(c, "st", 1, "HEALTHY", "", "", hv.json);

    /* MAXLEN ~ 5 caps the stream (approximately: whole nodes are trimmed, so
     * it is bounded by the node size, 100 entries, above the cap). */
    for (int i = 0; i < 300; i++)
        cr_assert_eq(deliver(s, &hv), CD_SINK_OK);
    long long len = llen_stream(c, "st");
    cr_assert(len >= 5 && len <= 105, "stream length %lld", len);

    cd_sink_redis.destroy(s);
    redisFree(sub);
    redisFree(c);
}

Test(redis_sink, auth_and_db)
{
    const char *extra[] = {"--requirepass", "s3cret-pw", NULL};
    redis_start_args(extra);
    void *s = sink_new("{\"type\": \"redis\", \"address\": \"127.0.0.1:%d\", \"password\": "
                       "\"s3cret-pw\", \"db\": 3, \"channel\": \"\", \"stream\": \"\"}",
                       redis_port);
    rec_t r;
    make_rec(&r, CD_RECORD_VERDICT, "2.5.0", "checkout");
    cr_assert_eq(deliver(s, &r), CD_SINK_OK);
    cd_sink_redis.destroy(s);

    redisContext *c = client();
    redisReply *x = redisCommand(c, "AUTH s3cret-pw");
    freeReplyObject(x);
    x = redisCommand(c, "SELECT 3");
    freeReplyObject(x);
    char *val = get_string(c, "canaryd:checkout:2.5.0:verdict");
    cr_assert_not_null(val, "key in db 3");
    cr_assert_str_eq(val, r.json);
    free(val);
    x = redisCommand(c, "DBSIZE");
    cr_assert_eq(x->integer, 1, "channel and stream are off");
    freeReplyObject(x);
    x = redisCommand(c, "SELECT 0");
    freeReplyObject(x);
    x = redisCommand(c, "DBSIZE");
    cr_assert_eq(x->integer, 0);
    freeReplyObject(x);
    redisFree(c);
}

Test(redis_sink, acl_user)
{
    redis_start();
    redisContext *c = client();
    redisReply *x = redisCommand(c, "ACL SETUSER canaryd on >user-pw ~canaryd:* &* +@all");
    cr_assert(x && x->type == REDIS_REPLY_STATUS, "%s", x ? x->str : "no reply");
    freeReplyObject(x);
    void *s = sink_new("{\"type\": \"redis\", \"address\": \"127.0.0.1:%d\", \"username\": "
                       "\"canaryd\", \"password\": \"user-pw\"}",
                       redis_port);
    rec_t r;
    make_rec(&r, CD_RECORD_VERDICT, "2.5.0", "checkout");
    cr_assert_eq(deliver(s, &r), CD_SINK_OK);
    char *val = get_string(c, "canaryd:checkout:2.5.0:verdict");
    cr_assert_not_null(val);
    cr_assert_str_eq(val, r.json);
    free(val);
    cd_sink_redis.destroy(s);
    redisFree(c);
}

static char *slurp_stream(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    char *buf = calloc(1, (size_t)n + 1);
    rewind(f);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    return buf;
}

Test(redis_sink, wrong_password_retries_and_is_never_logged)
{
    const char *extra[] = {"--requirepass", "the-right-one", NULL};
    redis_start_args(extra);
    FILE *log = tmpfile();
    cd_log_set_stream(log);
    void *s = sink_new("{\"type\": \"redis\", \"address\": \"127.0.0.1:%d\", \"password\": "
                       "\"hunter2-wrong\", \"reconnect_backoff\": {\"base\": 0, \"cap\": 0}}",
                       redis_port);
    rec_t r;
    make_rec(&r, CD_RECORD_VERDICT, "2.5.0", "checkout");
    cr_assert_eq(deliver(s, &r), CD_SINK_RETRY);
    cd_sink_redis.destroy(s);
    cd_log_set_stream(NULL);
    char *text = slurp_stream(log);
    fclose(log);
    cr_assert_not_null(strstr(text, "redis sink sinks.outputs[0] (127.0.0.1:"), "%s", text);
    cr_assert_not_null(strstr(text, ": AUTH: WRONGPASS"), "%s", text);
    cr_assert_null(strstr(text, "hunter2"), "%s", text);
    free(text);
}

Test(redis_sink, error_reply_drops_and_logs)
{
    redis_start();
    redisContext *c = client();
    redisReply *x = redisCommand(c, "SET canaryd:verdicts:stream not-a-stream");
    freeReplyObject(x);
    FILE *log = tmpfile();
    cd_log_set_stream(log);
    void *s = sink_new("{\"type\": \"redis\", \"address\": \"127.0.0.1:%d\"}", redis_port);
    rec_t r;
    make_rec(&r, CD_RECORD_VERDICT, "2.5.0", "checkout");
    cr_assert_eq(deliver(s, &r), CD_SINK_DROP);
    /* The connection stays usable: the next record (stream fixed) is written. */
    x = redisCommand(c, "DEL canaryd:verdicts:stream");
    freeReplyObject(x);
    cr_assert_eq(deliver(s, &r), CD_SINK_OK);
    cr_assert_eq(llen_stream(c, "canaryd:verdicts:stream"), 1);
    cd_sink_redis.destroy(s);
    cd_log_set_stream(NULL);
    char *text = slurp_stream(log);
    fclose(log);
    cr_assert_not_null(strstr(text, "[error]: redis sink sinks.outputs[0] (127.0.0.1:"), "%s",
                       text);
    cr_assert_not_null(strstr(text, "XADD failed: WRONGTYPE"), "%s", text);
    cr_assert_not_null(strstr(text, "(record dropped)"), "%s", text);
    free(text);
    redisFree(c);
}

Test(redis_sink, unix_socket)
{
    snprintf(sock_dir, sizeof(sock_dir), "/tmp/cd_redis_XXXXXX");
    cr_assert_not_null(mkdtemp(sock_dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/redis.sock", sock_dir);
    const char *extra[] = {"--unixsocket", path, NULL};
    redis_start_args(extra);
    void *s = sink_new("{\"type\": \"redis\", \"address\": \"%s\"}", path);
    rec_t r;
    make_rec(&r, CD_RECORD_VERDICT, "2.5.0", "checkout");
    cr_assert_eq(deliver(s, &r), CD_SINK_OK);
    redisContext *c = client();
    char *val = get_string(c, "canaryd:checkout:2.5.0:verdict");
    cr_assert_not_null(val);
    cr_assert_str_eq(val, r.json);
    free(val);
    redisFree(c);
    cd_sink_redis.destroy(s);
}

/* --- Redis going away ----------------------------------------------------------- */

Test(redis_sink, killed_mid_run_retries_fast_then_recovers)
{
    redis_start();
    /* timeouts of 5 s: a deliver that waited for one instead of failing
     * fast on the refused connection takes 5 s, not the 2 s bound */
    void *s = sink_new("{\"type\": \"redis\", \"address\": \"127.0.0.1:%d\", \"connect_timeout\": "
                       "\"5s\", \"command_timeout\": \"5s\", \"reconnect_backoff\": "
                       "{\"base\": 0, \"cap\": 0}}",
                       redis_port);
    rec_t r;
    make_rec(&r, CD_RECORD_VERDICT, "2.5.0", "checkout");
    cr_assert_eq(deliver(s, &r), CD_SINK_OK);

    redis_kill();
    for (int i = 0; i < 3; i++) {
        int64_t t0 = mono_ms();
        cr_assert_eq(deliver(s, &r), CD_SINK_RETRY);
        int64_t took = mono_ms() - t0;
        cr_assert_lt(took, 2000, "deliver took %lld ms while redis was down", (long long)took);
    }

    redis_start(); /* same port */
    cr_assert_eq(deliver(s, &r), CD_SINK_OK, "the first delivery after the restart succeeds");
    redisContext *c = client();
    char *val = get_string(c, "canaryd:checkout:2.5.0:verdict");
    cr_assert_not_null(val);
    cr_assert_str_eq(val, r.json);
    free(val);
    cr_assert_eq(llen_stream(c, "canaryd:verdicts:stream"), 1);
    redisFree(c);
    cd_sink_redis.destroy(s);
}

Test(redis_sink, reconnects_are_gated_by_backoff)
{
    redis_start();
    void *s = sink_new("{\"type\": \"redis\", \"address\": \"127.0.0.1:%d\", "
                       "\"reconnect_backoff\": {\"base\": \"4s\", \"cap\": \"4s\"}}",
                       redis_port);
    rec_t r;
    make_rec(&r, CD_RECORD_VERDICT, "2.5.0", "checkout");
    cr_assert_eq(deliver(s, &r), CD_SINK_OK);
    redis_kill();
    int64_t failed_at = mono_ms();
    cr_assert_eq(deliver(s, &r), CD_SINK_RETRY);
    redis_start();
    /* Redis is back, but the next connect is not due yet (4 s backoff):
     * RETRY, without connecting (it would succeed). */
    int64_t t0 = mono_ms();
    if (t0 - failed_at < 3000) {
        cr_assert_eq(deliver(s, &r), CD_SINK_RETRY);
        cr_assert_lt(mono_ms() - t0, 1000);
    }
    int64_t deadline = mono_ms() + 20000;
    cd_sink_result_t res;
    while ((res = deliver(s, &r)) == CD_SINK_RETRY && mono_ms() < deadline)
        sleep_ms(20);
    cr_assert_eq(res, CD_SINK_OK);
    int64_t after = mono_ms() - failed_at;
    cr_assert_geq(after, 4000, "reconnected %lld ms after the failure", (long long)after);
    /* once due, the next deliver reconnects (20 ms polls; loaded CI) */
    cr_assert_lt(after, 8000, "reconnected %lld ms after the failure", (long long)after);
    cd_sink_redis.destroy(s);
}

Test(redis_sink, silent_server_times_out)
{
    /* A listening socket nobody accepts from: the kernel completes the
     * handshake, so connect succeeds, and no reply ever comes. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)redis_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(listen(lfd, 8) == 0);
    void *s = sink_new("{\"type\": \"redis\", \"address\": \"127.0.0.1:%d\", \"command_timeout\": "
                       "\"1s\", \"reconnect_backoff\": {\"base\": \"10s\", \"cap\": \"10s\"}}",
                       redis_port);
    rec_t r;
    make_rec(&r, CD_RECORD_VERDICT, "2.5.0", "checkout");
    int64_t t0 = mono_ms();
    cr_assert_eq(deliver(s, &r), CD_SINK_RETRY);
    int64_t took = mono_ms() - t0;
    cr_assert_geq(took, 990, "gave up after %lld ms", (long long)took);
    cr_assert_lt(took, 5000, "blocked %lld ms", (long long)took);
    /* Backing off now: the next attempt does not wait the 1 s again. */
    t0 = mono_ms();
    cr_assert_eq(deliver(s, &r), CD_SINK_RETRY);
    cr_assert_lt(mono_ms() - t0, 500);
    cd_sink_redis.destroy(s);
    close(lfd);
}

/* --- config ------------------------------------------------------------------------ */

/* The problems for which the entry conf_text (no printf format) is refused. */
static const char *init_error(const char *conf_text)
{
    return st_sink_refused(&cd_sink_redis, "sinks.outputs[2]", "%s", conf_text);
}

Test(redis_sink, config_errors_name_the_key_path)
{
    cr_assert_str_eq(init_error("{\"type\": \"redis\", \"adress\": \"x:1\"}"),
                     "sinks.outputs[2].adress: unknown key; accepted: address, username, "
                     "password, db, key_prefix, channel, stream, stream_maxlen, connect_timeout, "
                     "command_timeout, reconnect_backoff, type, name, filter, retry, rate_limit, "
                     "send_resolved\n");
    cr_assert_str_eq(init_error("{\"type\": \"redis\", \"address\": \"localhost\"}"),
                     "sinks.outputs[2].address: \"localhost\" is not an address; accepted: "
                     "\"host:port\" (\"127.0.0.1:6379\", \"[::1]:6379\") or the absolute path of "
                     "a unix socket\n");
    cr_assert_str_eq(init_error("{\"type\": \"redis\", \"address\": \"h:70000\"}"),
                     "sinks.outputs[2].address: \"h:70000\" is not an address; accepted: "
                     "\"host:port\" (\"127.0.0.1:6379\", \"[::1]:6379\") or the absolute path of "
                     "a unix socket\n");
    cr_assert_str_eq(init_error("{\"type\": \"redis\", \"connect_timeout\": \"1h\"}"),
                     "sinks.outputs[2].connect_timeout: \"1h\" is out of range; accepted: a "
                     "duration from 1ms to 10s, such as \"500ms\", \"10s\" or \"2m\"\n");
    cr_assert_str_eq(init_error("{\"type\": \"redis\", \"db\": -1}"),
                     "sinks.outputs[2].db: -1 is out of range; accepted: an integer from 0 to "
                     "2147483647\n");
    cr_assert_str_eq(init_error("{\"type\": \"redis\", \"stream_maxlen\": \"many\"}"),
                     "sinks.outputs[2].stream_maxlen: \"many\" is not an integer; accepted: an "
                     "integer from 1 to 1000000000\n");
    cr_assert_str_eq(init_error("{\"type\": \"redis\", \"password\": 12345}"),
                     "sinks.outputs[2].password: (secret) is not a non-empty string; accepted: a "
                     "non-empty string\n");
    cr_assert_str_eq(
        init_error("{\"type\": \"redis\", \"reconnect_backoff\": {\"base\": \"2s\", \"cap\": "
                   "\"1s\"}}"),
        "sinks.outputs[2].reconnect_backoff.cap: \"1s\" is below base; accepted: a duration >= "
        "base (default base 100ms, cap 5s)\n");
    cr_assert_str_eq(init_error("{\"type\": \"redis\", \"key_prefix\": \"\", \"channel\": \"\", "
                                "\"stream\": \"\"}"),
                     "sinks.outputs[2]: key_prefix, channel and stream are all \"\", so nothing "
                     "would be written; accepted: at least one of them non-empty\n");
    cr_assert_str_eq(init_error("{\"type\": \"redis\", \"username\": \"canaryd\"}"),
                     "sinks.outputs[2].username: \"canaryd\" is given without a password; "
                     "accepted: a username together with \"password\" (AUTH username password)\n");
    /* Several problems: each reported. */
    const char *t = init_error("{\"type\": \"redis\", \"db\": \"x\", \"channel\": 5}");
    cr_assert_not_null(strstr(t, "sinks.outputs[2].db: \"x\" is not an integer"), "%s", t);
    cr_assert_not_null(strstr(t, "sinks.outputs[2].channel: 5 is not accepted"), "%s", t);
}

/* --- end to end through the dispatcher -------------------------------------------- */

/* sink_test.h's dispatcher (started) with the "sinks" section printf'ed
 * from sinks_fmt. */
static cd_dispatcher_t *dispatcher_new(const char *sinks_fmt, ...)
{
    char sinks[1024];
    va_list ap;
    va_start(ap, sinks_fmt);
    vsnprintf(sinks, sizeof(sinks), sinks_fmt, ap);
    va_end(ap);
    return st_dispatcher(sinks, true);
}

static void verdict_at(rec_t *r, cd_verdict_kind_t k, int64_t t_s)
{
    make_rec(r, CD_RECORD_VERDICT, "2.5.0", "checkout");
    r->v.verdict = k;
    r->v.rule = "fatal";
    r->v.time_ms += t_s * 1000;
    r->m.json_len = (size_t)cd_verdict_to_json(&r->v, r->json, sizeof(r->json));
}

/* The acceptance path: records submitted to the dispatcher land in
 * Redis; Redis killed mid-run, the agent keeps going (submit never waits),
 * and the record submitted meanwhile arrives once Redis is back. */
Test(redis_sink, through_the_dispatcher_survives_a_restart)
{
    redis_start();
    cd_dispatcher_t *d = dispatcher_new(
        "{\"outputs\":[{\"type\":\"redis\",\"address\":\"127.0.0.1:%d\",\"connect_timeout\":"
        "\"5s\",\"reconnect_backoff\":{\"base\":\"20ms\",\"cap\":\"50ms\"},"
        "\"retry\":{\"base\":\"20ms\",\"cap\":\"50ms\",\"max_attempts\":1000}}]}",
        redis_port);
    rec_t a, b;
    verdict_at(&a, CD_VERDICT_ALERT, 0);
    verdict_at(&b, CD_VERDICT_ROLLBACK, 60);
    cr_assert(cd_dispatcher_submit(d, &a.v));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    redisContext *c = client();
    char *val = get_string(c, "canaryd:checkout:2.5.0:verdict");
    cr_assert_not_null(val);
    cr_assert_str_eq(val, a.json);
    free(val);
    redisFree(c);

    redis_kill();
    int64_t t0 = mono_ms();
    cr_assert(cd_dispatcher_submit(d, &b.v));
    /* a submit waiting for the sink would take its 5 s connect timeout */
    cr_assert_lt(mono_ms() - t0, 1000, "submit does not wait for a dead sink");
    cr_assert_eq(cd_dispatcher_drain(d, 300), 1, "still pending while redis is down");
    redis_start();
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    c = client();
    val = get_string(c, "canaryd:checkout:2.5.0:verdict");
    cr_assert_not_null(val);
    cr_assert_str_eq(val, b.json);
    free(val);
    cr_assert_eq(llen_stream(c, "canaryd:verdicts:stream"), 1, "only b reached the new redis");
    expect_stream_entry(c, "canaryd:verdicts:stream", 0, "ROLLBACK", "fatal", "2.5.0", b.json);
    redisFree(c);
    cd_sink_stats_t st;
    cr_assert_eq(cd_dispatcher_stats(d, &st, 1), 1);
    cr_assert_eq(st.delivered, 2);
    cr_assert_eq(st.failed, 0);
    cr_assert_gt(st.retries, 0);
    cd_dispatcher_destroy(d);
}
