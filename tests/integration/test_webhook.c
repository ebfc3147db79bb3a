/*
 * test_webhook.c - the webhook sink over real HTTP: a libmicrohttpd receiver
 * on a free loopback port (http_receiver.c) records what arrives and answers
 * scripted statuses. Exact bodies per format, the HMAC signature, retries
 * (500 then 200, 429 with Retry-After, receiver down then up), a 400 dropped
 * and logged, the per-destination rate limit, and the webhook URL's secret
 * never appearing in the log.
 */
#include "sink_test.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>

#include "canaryd/webhook.h"
#include "http_receiver.c"

/* A path and query that stand for a Slack-style token. */
#define SECRET_PATH "/services/T000/B000/XSECRETTOKEN"
#define SECRET_QUERY "?token=QSECRET"

static rx_t *rx;

static void setup(void)
{
    st_setup();
    rx = rx_start(0);
    cr_assert_not_null(rx);
}

static void teardown(void)
{
    rx_stop(rx);
    rx = NULL;
    st_teardown();
}

TestSuite(webhook, .init = setup, .fini = teardown, .timeout = 60);

/* One webhook sink; extra: more keys of the entry (",\"k\":v" or ""). */
static cd_dispatcher_t *webhook(const char *format, const char *extra, ...)
{
    char ex[2048], json[4096];
    va_list ap;
    va_start(ap, extra);
    vsnprintf(ex, sizeof(ex), extra, ap);
    va_end(ap);
    snprintf(json, sizeof(json),
             "{\"outputs\":[{\"type\":\"webhook\",\"name\":\"chat\",\"format\":\"%s\","
             "\"url\":\"http://user:PASSWORD@127.0.0.1:%u" SECRET_PATH SECRET_QUERY
             "\",\"rate_limit\":0%s}]}",
             format, rx_port(rx), ex);
    return st_dispatcher(json, true);
}

static void expect_has(const char *text, const char *want)
{
    cr_expect(strstr(text, want) != NULL, "missing:\n  %s\nin:\n%s", want, text);
}

/* The secret parts of the URL appear in no log line; the destination is
 * named as scheme://host:port/… */
static void expect_log_redacted(void)
{
    char *log = st_log_text();
    cr_expect_null(strstr(log, "XSECRETTOKEN"), "%s", log);
    cr_expect_null(strstr(log, "QSECRET"), "%s", log);
    cr_expect_null(strstr(log, "PASSWORD"), "%s", log);
    cr_expect_null(strstr(log, "hmac-key"), "%s", log);
    free(log);
}

/* Each format arrives byte for byte as cd_webhook_render makes it, POSTed
 * as JSON to the configured path and query. */
Test(webhook, every_format_exact_body)
{
    for (int f = 0; cd_webhook_format_names[f]; f++) {
        cd_dispatcher_t *d = webhook(cd_webhook_format_names[f], ",\"username\":\"canaryd\"");
        cd_verdict_t v = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, f);
        cr_assert(cd_dispatcher_submit(d, &v));
        cr_assert(rx_wait(rx, f + 1, 5000), "format %s not delivered", cd_webhook_format_names[f]);
        cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
        cr_expect_eq(st_stats(d, 0).delivered, 1);
        cd_dispatcher_destroy(d);

        char json[4096];
        int n = cd_verdict_to_json(&v, json, sizeof(json));
        cd_sink_msg_t m = {.id = 1, .v = &v, .json = json, .json_len = (size_t)n, .service = ""};
        cd_webhook_opts_t o = {.username = "canaryd"};
        size_t len;
        char *want = cd_webhook_render((cd_webhook_format_t)f, &m, &o, &len);
        rx_request_t q = rx_get(rx, f);
        char ct[64] = "";
        cr_expect_str_eq(q.method, "POST");
        cr_expect_str_eq(q.path, SECRET_PATH);
        cr_expect(rx_header(&q, "Content-Type", ct, sizeof(ct)));
        cr_expect_str_eq(ct, "application/json");
        cr_expect_eq(q.body_len, len);
        cr_expect_str_eq(q.body, want, "format %s", cd_webhook_format_names[f]);
        cr_expect_null(strstr(q.headers, "X-Canaryd-Signature"));
        rx_request_free(&q);
        free(want);
    }
    cr_expect_eq(rx_count(rx), 7);
    expect_log_redacted();
}

/* X-Canaryd-Signature: sha256=hex(HMAC-SHA256(secret, "<timestamp>.<body>")) */
Test(webhook, hmac_signature_verifies)
{
    cd_dispatcher_t *d = webhook("generic", ",\"secret\":\"hmac-key\"");
    cd_verdict_t v = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 0);
    time_t before = time(NULL);
    cr_assert(cd_dispatcher_submit(d, &v));
    cr_assert(rx_wait(rx, 1, 5000));
    cd_dispatcher_destroy(d);
    rx_request_t q = rx_get(rx, 0);
    char ts[64], sig[200];
    cr_assert(rx_header(&q, "X-Canaryd-Timestamp", ts, sizeof(ts)));
    cr_assert(rx_header(&q, "X-Canaryd-Signature", sig, sizeof(sig)));
    long long t = atoll(ts);
    cr_expect(t >= before && t <= time(NULL) + 1, "timestamp %s", ts);

    char *msg = NULL;
    cr_assert(asprintf(&msg, "%s.%s", ts, q.body) > 0);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    HMAC(EVP_sha256(), "hmac-key", 8, (unsigned char *)msg, strlen(msg), mac, &maclen);
    char want[200] = "sha256=";
    for (unsigned i = 0; i < maclen; i++)
        snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
    cr_expect_eq(maclen, 32);
    cr_expect_str_eq(sig, want);
    /* a different body does not verify */
    msg[strlen(msg) - 1] = 'X';
    HMAC(EVP_sha256(), "hmac-key", 8, (unsigned char *)msg, strlen(msg), mac, &maclen);
    char other[200] = "sha256=";
    for (unsigned i = 0; i < maclen; i++)
        snprintf(other + 7 + 2 * i, 3, "%02x", mac[i]);
    cr_expect_str_neq(sig, other);
    free(msg);
    rx_request_free(&q);
    expect_log_redacted();
}

/* 500 then 200: two requests, the record delivered exactly once. */
Test(webhook, error_500_then_200_delivers_once)
{
    rx_answer_t a[] = {{500, NULL, "boom", 0}, {200, NULL, "ok", 0}};
    rx_script(rx, a, 2);
    cd_dispatcher_t *d =
        webhook("slack", ",\"retry\":{\"base\":\"50ms\",\"cap\":\"100ms\",\"max_attempts\":5}");
    cd_verdict_t v = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 0);
    cr_assert(cd_dispatcher_submit(d, &v));
    cr_assert(rx_wait(rx, 2, 5000));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cd_sink_stats_t s = st_stats(d, 0);
    cr_expect_eq(s.delivered, 1);
    cr_expect_eq(s.retries, 1);
    cr_expect_eq(s.failed, 0);
    cd_dispatcher_destroy(d);
    cr_expect_eq(rx_count(rx), 2);
    rx_request_t q0 = rx_get(rx, 0), q1 = rx_get(rx, 1);
    cr_expect_str_eq(q0.body, q1.body); /* the same message, sent again */
    cr_expect_eq(q1.status, 200);
    rx_request_free(&q0);
    rx_request_free(&q1);
    char *log = st_log_text();
    char want[200];
    snprintf(want, sizeof(want), "webhook chat (http://127.0.0.1:%u/…): HTTP 500: boom",
             rx_port(rx));
    expect_has(log, want);
    free(log);
    expect_log_redacted();
}

/* 429 with Retry-After: 2 is retried no sooner than 2 s later, although
 * the backoff alone would retry within 20 ms. */
Test(webhook, retry_after_429_honoured)
{
    rx_answer_t a[] = {{429, "Retry-After: 2", "rate limited", 0}};
    rx_script(rx, a, 1);
    cd_dispatcher_t *d =
        webhook("slack", ",\"retry\":{\"base\":\"10ms\",\"cap\":\"20ms\",\"max_attempts\":5}");
    cd_verdict_t v = st_verdict(CD_VERDICT_ALERT, "errors", CD_ACTION_ALERT, 0);
    cr_assert(cd_dispatcher_submit(d, &v));
    cr_assert(rx_wait(rx, 2, 8000));
    rx_request_t q0 = rx_get(rx, 0), q1 = rx_get(rx, 1);
    cr_expect_eq(q0.status, 429);
    cr_expect_eq(q1.status, 200);
    cr_expect_geq(q1.at_ms - q0.at_ms, 2000, "retried after %lld ms",
                  (long long)(q1.at_ms - q0.at_ms));
    cr_expect_lt(q1.at_ms - q0.at_ms, 3500);
    rx_request_free(&q0);
    rx_request_free(&q1);
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cr_expect_eq(st_stats(d, 0).delivered, 1);
    cd_dispatcher_destroy(d);
}

/* The receiver is down (connection refused) for 10 s, then back on the same
 * port: the record is delivered once it is up. */
Test(webhook, receiver_down_10s_then_up)
{
    rx_pause(rx);
    cd_dispatcher_t *d = webhook(
        "alertmanager", ",\"retry\":{\"base\":\"200ms\",\"cap\":\"1s\",\"max_attempts\":100}");
    cd_verdict_t v = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 0);
    int64_t t0 = st_now_ms();
    cr_assert(cd_dispatcher_submit(d, &v));
    /* wait 10 s with the port closed; the sink keeps retrying */
    while (st_now_ms() - t0 < 10000)
        usleep(100 * 1000);
    cd_sink_stats_t s = st_stats(d, 0);
    cr_expect_eq(s.delivered, 0);
    cr_expect_geq(s.retries, 5, "only %llu retries in 10 s", (unsigned long long)s.retries);
    cr_expect_eq(s.pending, 1);
    cr_assert(rx_resume(rx));
    cr_assert(rx_wait(rx, 1, 5000));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cr_expect_eq(st_stats(d, 0).delivered, 1);
    cr_expect_eq(rx_count(rx), 1);
    cd_dispatcher_destroy(d);
    char *log = st_log_text();
    char want[200];
    snprintf(want, sizeof(want), "webhook chat (http://127.0.0.1:%u/…): Couldn't connect to server",
             rx_port(rx));
    expect_has(log, want);
    free(log);
    expect_log_redacted();
}

/* 400 is permanent: dropped (not retried) and logged with the status, the
 * answer and the destination, secret redacted. */
Test(webhook, error_400_dropped_and_logged)
{
    rx_answer_t a[] = {{400, NULL, "invalid_payload", 0}};
    rx_script(rx, a, 1);
    cd_dispatcher_t *d =
        webhook("slack", ",\"retry\":{\"base\":\"10ms\",\"cap\":\"20ms\",\"max_attempts\":5}");
    cd_verdict_t v = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 0);
    cr_assert(cd_dispatcher_submit(d, &v));
    cr_assert_eq(cd_dispatcher_drain(d, 5000), 0);
    cd_sink_stats_t s = st_stats(d, 0);
    cr_expect_eq(s.delivered, 0);
    cr_expect_eq(s.failed, 1);
    cr_expect_eq(s.retries, 0);
    cd_dispatcher_destroy(d);
    cr_expect_eq(rx_count(rx), 1);
    char *log = st_log_text();
    char want[300];
    snprintf(want, sizeof(want),
             "canaryd[error]: webhook chat (http://127.0.0.1:%u/…): HTTP 400, record dropped "
             "(not retried): invalid_payload",
             rx_port(rx));
    expect_has(log, want);
    expect_has(log, "sink chat: record 1 (ROLLBACK fatal) dropped: the destination refused it");
    free(log);
    expect_log_redacted();
}

/* Slack-style destinations get one message per second by default: three
 * records arrive at least ~1 s apart. */
Test(webhook, default_rate_limit_for_chat)
{
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"outputs\":[{\"type\":\"webhook\",\"format\":\"slack\",\"url\":"
             "\"http://127.0.0.1:%u/hook\"}]}",
             rx_port(rx));
    cd_dispatcher_t *d = st_dispatcher(json, true);
    for (int i = 0; i < 3; i++) {
        cd_verdict_t v = st_verdict(CD_VERDICT_HEALTHY, NULL, CD_ACTION_ROLLBACK, i);
        cr_assert(cd_dispatcher_submit(d, &v));
    }
    cr_assert(rx_wait(rx, 3, 8000));
    cd_dispatcher_destroy(d);
    rx_request_t q[3];
    for (int i = 0; i < 3; i++)
        q[i] = rx_get(rx, i);
    for (int i = 1; i < 3; i++)
        cr_expect_geq(q[i].at_ms - q[i - 1].at_ms, 950, "request %d came %lld ms after the last", i,
                      (long long)(q[i].at_ms - q[i - 1].at_ms));
    for (int i = 0; i < 3; i++)
        rx_request_free(&q[i]);
}

/* ---- `canaryd replay` routes its records through the sinks ---- */

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static int replay(const char *config_text, int64_t *took_ms)
{
    st_write("cfg.json", config_text, 0644);
    st_write("ev.jsonl",
             "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:00.100Z\","
             "\"cohort\":\"stable\"}\n"
             "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:00.200Z\","
             "\"cohort\":\"canary\",\"version\":\"2.5.0\"}\n"
             "{\"event_type\":\"ERROR_OCCURRED\",\"timestamp\":\"2026-11-27T12:00:02.500Z\","
             "\"cohort\":\"canary\",\"version\":\"2.5.0\"}\n"
             "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":\"2026-11-27T12:00:05.000Z\","
             "\"cohort\":\"stable\"}\n",
             0644);
    const char *bin = getenv("CANARYD_BIN");
    cr_assert_not_null(bin, "CANARYD_BIN is not set");
    char *argv[] = {
        (char *)bin, "replay", "--config", (char *)st_path("cfg.json"), (char *)st_path("ev.jsonl"),
        NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, st_path("out"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, st_path("err"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int64_t t0 = st_now_ms();
    cr_assert_eq(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    *took_ms = st_now_ms() - t0;
    cr_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

#define REPLAY_CONFIG                                                                              \
    "{\"events\":{\"types\":[\"REQUEST_COMPLETED\",\"ERROR_OCCURRED\"]},"                          \
    "\"windows\":{\"allowed_lateness\":\"2s\",\"slack\":\"10s\"},"                                 \
    "\"rules\":[{\"name\":\"errors\",\"kind\":\"threshold\",\"description\":\"Roll back.\","       \
    "\"numerator\":[\"ERROR_OCCURRED\"],\"scope\":\"canary\",\"op\":\">\",\"threshold\":0,"        \
    "\"window\":\"10s\",\"action\":\"rollback\"}],"                                                \
    "\"sinks\":{\"drain_timeout\":\"%s\",\"outputs\":[{\"type\":\"webhook\",\"name\":"             \
    "\"rollbacks\","                                                                               \
    "\"format\":\"generic\",\"url\":\"http://127.0.0.1:%u/hook\",\"filter\":{\"verdicts\":"        \
    "[\"ROLLBACK\"]}}]}}"

Test(webhook, replay_delivers_through_config_sinks)
{
    char cfg[2048];
    snprintf(cfg, sizeof(cfg), REPLAY_CONFIG, "10s", rx_port(rx));
    int64_t took;
    cr_expect_eq(replay(cfg, &took), 20);
    cr_assert_eq(rx_count(rx), 1);
    rx_request_t q = rx_get(rx, 0);
    char *out = st_read(st_path("out")), *err = st_read(st_path("err"));
    /* stdout keeps every record; the webhook got the ROLLBACK line as is */
    cr_expect_eq(st_count_lines(out), 3, "%s", out); /* HEALTHY, inactive -> firing, ROLLBACK */
    char line[4200];
    snprintf(line, sizeof(line), "%s\n", q.body);
    expect_has(out, line);
    expect_has(q.body, "\"verdict\":\"ROLLBACK\",\"rule\":\"errors\"");
    expect_has(err,
               "  sinks (queue overflows: 0):\n"
               "    rollbacks            webhook  delivered 1, failed 0, retries 0, dropped 0, "
               "pending 0\n");
    expect_has(err, "  final verdict: ROLLBACK (firing: errors), exit 20\n");
    free(out);
    free(err);
    rx_request_free(&q);
}

/* With the receiver down, replay waits at most drain_timeout at the end,
 * says what was abandoned, and still exits with the verdict's status. */
Test(webhook, replay_drain_is_bounded)
{
    rx_pause(rx);
    char cfg[2048];
    snprintf(cfg, sizeof(cfg), REPLAY_CONFIG, "1s", rx_port(rx));
    int64_t took;
    cr_expect_eq(replay(cfg, &took), 20);
    cr_expect_lt(took, 4000, "replay took %lld ms", (long long)took);
    cr_expect_geq(took, 1000);
    char *err = st_read(st_path("err"));
    expect_has(err, "  sinks: 1 deliveries still pending after the drain timeout; abandoned\n");
    expect_has(err, "delivered 0, failed 0, retries ");
    expect_has(err, "  final verdict: ROLLBACK (firing: errors), exit 20\n");
    free(err);
}

/*
 * Queue under pressure (issue 11): the receiver is down, a flood of 400
 * state records arrives with a ROLLBACK among them, in a sink FIFO of 8.
 * State records give way (dropped, counted); the ROLLBACK never does: once
 * the receiver is back it arrives, exactly once, after the 7 state records
 * that kept their place.
 */
Test(webhook, queue_under_pressure_rollback_delivered_once)
{
    rx_pause(rx);
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"queue_size\":8,\"outputs\":[{\"type\":\"webhook\",\"name\":\"chat\","
             "\"format\":\"generic\",\"url\":\"http://127.0.0.1:%u/hook\",\"rate_limit\":0,"
             "\"filter\":{\"kinds\":[\"verdict\",\"state\"]},"
             "\"retry\":{\"base\":\"50ms\",\"cap\":\"200ms\",\"max_attempts\":1000}}]}",
             rx_port(rx));
    cd_dispatcher_t *d = st_dispatcher(json, true);
    cd_verdict_t rb = st_verdict(CD_VERDICT_ROLLBACK, "fatal", CD_ACTION_ROLLBACK, 500);
    int refused = 0;
    for (int i = 0; i < 400; i++) {
        cd_verdict_t s = st_state("errors", CD_ACTION_ALERT, i % 2 ? CD_STATE_PENDING
                                                                   : CD_STATE_INACTIVE,
                                  i % 2 ? CD_STATE_INACTIVE : CD_STATE_PENDING, i);
        refused += !cd_dispatcher_submit(d, &s);
        if (i == 200) cr_assert(cd_dispatcher_submit(d, &rb));
    }
    /* the receiver stays down while the sink retries its head */
    int64_t t0 = st_now_ms();
    while (st_stats(d, 0).retries < 3 && st_now_ms() - t0 < 30000)
        usleep(20 * 1000);
    cr_assert_geq(st_stats(d, 0).retries, 3);
    cr_expect_eq(rx_count(rx), 0);
    cr_assert(rx_resume(rx));
    cr_assert_eq(cd_dispatcher_drain(d, 30000), 0);
    cd_sink_stats_t s = st_stats(d, 0);
    cr_expect_eq(s.delivered, 8);
    cr_expect_eq(s.failed, 0);
    /* every record not delivered was refused by the submit queue or the FIFO */
    cr_expect_eq(s.dropped + cd_dispatcher_overflows(d), 401 - 8, "dropped %llu, overflows %llu",
                 (unsigned long long)s.dropped, (unsigned long long)cd_dispatcher_overflows(d));
    cr_expect_leq((uint64_t)refused, cd_dispatcher_overflows(d));
    cr_assert_eq(rx_count(rx), 8);
    int rollbacks = 0;
    for (int i = 0; i < 8; i++) {
        rx_request_t q = rx_get(rx, i);
        bool is_rb = strstr(q.body, "\"verdict\":\"ROLLBACK\"") != NULL;
        rollbacks += is_rb;
        if (i == 7) cr_expect(is_rb, "the last delivery is not the ROLLBACK: %s", q.body);
        rx_request_free(&q);
    }
    cr_expect_eq(rollbacks, 1);
    cd_dispatcher_destroy(d);
}
