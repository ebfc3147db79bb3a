/*
 * test_live_recover.c - issue 11's "Decision recovery" and "a crash between
 * decide and deliver", live: `canaryd run` with --verdict-log (so a decision
 * ledger <log>.ledger) on librdkafka's mock cluster, a webhook receiver
 * (http_receiver.c), and SIGKILL.
 *
 *  - restart after ROLLBACK: the first /api/v1/verdict answer (with and
 *    without ?release=) is ROLLBACK, Flagger's rollback hook answers 200 for
 *    the same canary run as before, and the receiver and the verdict log
 *    hold exactly one ROLLBACK across both runs; a new checksum after the
 *    restart still starts a new judgement (409);
 *  - the receiver down when the agent decides, the agent SIGKILLed with the
 *    ROLLBACK undelivered, restarted with the receiver up: delivered, once.
 *
 * The helpers (scratch folder, spawn, wait_for, ...) are live_helpers.h's.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_receiver.c"
#include "live_helpers.h"

#define TOPIC "events"
#define PARTS 4

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static rx_t *rx;

static void setup(void)
{
    char e[256];
    scratch_make("cd_recover_");
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "0", e, sizeof(e));
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    cr_assert_not_null(mock_rk, "%s", e);
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    cr_assert_not_null(mock);
    cr_assert_eq(rd_kafka_mock_topic_create(mock, TOPIC, PARTS, 1), 0);
    snprintf(bootstraps, sizeof(bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(mock));
    rx = rx_start(0);
    cr_assert_not_null(rx);
}

static void teardown(void)
{
    kill_children();
    rx_stop(rx);
    rx = NULL;
    if (mock) rd_kafka_mock_cluster_destroy(mock);
    if (mock_rk) rd_kafka_destroy(mock_rk);
    mock = NULL;
    mock_rk = NULL;
    scratch_remove();
}

/* ---- producing -------------------------------------------------------------- */

static rd_kafka_t *producer(void)
{
    char e[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, e, sizeof(e)), 0);
    rd_kafka_conf_set(c, "log_level", "0", e, sizeof(e));
    /* no duplicates from producer retries when the broker goes down */
    cr_assert_eq(rd_kafka_conf_set(c, "enable.idempotence", "true", e, sizeof(e)), 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    cr_assert_not_null(rk, "%s", e);
    return rk;
}

/* n events of type/cohort (cohort NULL: none in the payload) with the
 * current time, round-robin over the partitions; header: cohort header
 * value or NULL. */
static void produce(rd_kafka_t *rk, int n, const char *type, const char *cohort,
                    const char *header, int *seq)
{
    for (int i = 0; i < n; i++) {
        char payload[256];
        if (cohort)
            snprintf(payload, sizeof(payload),
                     "{\"event_type\":\"%s\",\"timestamp\":%lld,\"cohort\":\"%s\","
                     "\"version\":\"%s\"}",
                     type, (long long)now_ms(), cohort,
                     strcmp(cohort, "canary") == 0 ? "2.5.0" : "2.4.0");
        else
            snprintf(payload, sizeof(payload),
                     "{\"event_type\":\"%s\",\"timestamp\":%lld,\"version\":\"2.5.0\"}", type,
                     (long long)now_ms());
        rd_kafka_resp_err_t e;
        int part = (*seq)++ % PARTS;
        if (header)
            e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(part),
                                  RD_KAFKA_V_VALUE(payload, strlen(payload)),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_HEADER("cohort", header, -1), RD_KAFKA_V_END);
        else
            e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(part),
                                  RD_KAFKA_V_VALUE(payload, strlen(payload)),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        cr_assert_eq(e, 0, "produce: %s", rd_kafka_err2str(e));
    }
}

static void flush_all(rd_kafka_t *rk)
{
    cr_assert_eq(rd_kafka_flush(rk, 20000), 0, "flush timed out");
}

/* ---- tests ------------------------------------------------------------------ */

static void decide(void)
{
    int seq = 0;
    rd_kafka_t *pr = producer();
    produce(pr, 30, "REQUEST_COMPLETED", "canary", NULL, &seq);
    produce(pr, 30, "REQUEST_COMPLETED", "stable", NULL, &seq);
    produce(pr, 20, "ERROR_OCCURRED", "canary", NULL, &seq);
    flush_all(pr);
    rd_kafka_destroy(pr);
}

/* Requests holding a ROLLBACK record so far; *first: the first's index. */
static int rollbacks(int *first)
{
    int n = 0, k = rx_count(rx);
    for (int i = 0; i < k; i++) {
        rx_request_t q = rx_get(rx, i);
        if (strstr(q.body, "\"verdict\":\"ROLLBACK\"")) {
            if (n++ == 0 && first) *first = i;
        }
        rx_request_free(&q);
    }
    return n;
}

/* A request to the HTTP API of the agent whose stderr is file err (the
 * port it printed); body NULL: GET, else POST of that JSON. Returns the
 * answer (malloc'ed) and the status in *code. */
static char *request(const char *err, const char *path, const char *body, long *code)
{
    char url[160];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", http_port(err, 20000), path);
    char *out = http_request(url, body, code);
    cr_assert_not_null(out, "%s %s: no answer", body ? "POST" : "GET", url);
    return out;
}

/* The "verdict" of an answer ("" when none). */
static const char *verdict_of(const char *body)
{
    static char v[32];
    json_t *j = json_loads(body, 0, NULL);
    snprintf(v, sizeof(v), "%s", j ? json_string_value(json_object_get(j, "verdict")) ?: "" : "");
    json_decref(j);
    return v;
}

/* One error rule that fires as soon as the canary has more than 5 errors
 * in 10 s; a webhook sink (generic: the record's JSON) to the receiver,
 * retried for long enough to outlive a receiver that is down; the HTTP API
 * on a free port. */
static void write_config(void)
{
    FILE *f = fopen(path_of("c.json"), "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},\n"
            " \"windows\": {\"max_future_skew\": \"1m\", \"slack\": \"2m\"},\n"
            " \"rules\": [{\"name\": \"errors\", \"kind\": \"threshold\",\n"
            "   \"numerator\": [\"ERROR_OCCURRED\"], \"scope\": \"canary\", \"op\": \">\",\n"
            "   \"threshold\": 5, \"window\": \"10s\", \"for\": \"0s\", \"resolve_for\": \"10s\",\n"
            "   \"action\": \"rollback\"}],\n"
            " \"kafka\": {\"topics\": [\"" TOPIC "\"],\n"
            "   \"properties\": {\"session.timeout.ms\": 6000, \"heartbeat.interval.ms\": 500}},\n"
            " \"sinks\": {\"outputs\": [{\"type\": \"webhook\", \"name\": \"hook\", \"format\": "
            "\"generic\",\n"
            "   \"url\": \"http://127.0.0.1:%u/hook\", \"retry\": {\"base\": \"50ms\", \"cap\": "
            "\"200ms\", \"max_attempts\": 1000}}]},\n"
            " \"http\": {\"bind\": \"127.0.0.1:0\"}}\n",
            (unsigned)rx_port(rx));
    fclose(f);
}

/* canaryd run, stdout/stderr into outN/errN, the verdict log v.log. */
static pid_t agent(int run)
{
    char out[16], err[16];
    snprintf(out, sizeof(out), "out%d", run);
    snprintf(err, sizeof(err), "err%d", run);
    return start(out, err,
                 ARGS("--config", path_of("c.json"), "--group", "g", "--verdict-log",
                      path_of("v.log")));
}

static void sigkill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    reaped(pid);
}

TestSuite(live_recover, .init = setup, .fini = teardown, .timeout = 120);

#define RB "\"verdict\":\"ROLLBACK\""
#define HOOK "{\"name\":\"checkout\",\"namespace\":\"prod\",\"phase\":\"Progressing\"," \
             "\"checksum\":\"%s\"}"

Test(live_recover, restart_after_rollback_answers_rollback_first)
{
    write_config();
    pid_t a = agent(0);
    long code = 0;
    free(request("err0", "/healthz", NULL, &code));
    decide();
    cr_assert(wait_for("v.log", RB, 20000), "no ROLLBACK decided");
    cr_assert(rx_wait(rx, 1, 20000));
    char body[256];
    snprintf(body, sizeof(body), HOOK, "run-1");
    char *r = request("err0", "/api/v1/flagger/rollback", body, &code);
    cr_expect_eq(code, 200, "%s", r);
    free(r);
    /* both acknowledgements are in the ledger (a SIGKILL between a sink's
     * OK and its ledger line would deliver once more: at least once) */
    cr_assert(wait_for("v.log.ledger", "\"sink\":\"hook\"", 5000));
    cr_assert(wait_for("v.log.ledger", "\"sink\":\"--verdict-log\"", 5000));
    sigkill(a);

    a = agent(1);
    /* the first answers, before anything else was asked */
    r = request("err1", "/api/v1/verdict", NULL, &code);
    cr_expect_eq(code, 200);
    cr_expect_str_eq(verdict_of(r), "ROLLBACK", "%s", r);
    free(r);
    r = request("err1", "/api/v1/verdict?release=2.5.0", NULL, &code);
    cr_expect_str_eq(verdict_of(r), "ROLLBACK", "%s", r);
    free(r);
    r = request("err1", "/api/v1/flagger/rollback", body, &code);
    cr_expect_eq(code, 200, "%s", r);
    free(r);
    char *e = read_file("err1");
    cr_expect(strstr(e, "restored ROLLBACK of release 2.5.0 (rule errors") != NULL, "%s", e);
    free(e);
    /* a new canary run after the restart is a new judgement, not the old verdict */
    snprintf(body, sizeof(body), HOOK, "run-2");
    r = request("err1", "/api/v1/flagger/rollback", body, &code);
    cr_expect_eq(code, 409, "%s", r);
    cr_expect_str_eq(verdict_of(r), "ANALYZING", "%s", r);
    free(r);
    kill(a, SIGTERM); /* drains the sinks: anything owed is sent now */
    cr_assert_eq(wait_exit(a, 15000), 0);
    cr_expect_eq(rollbacks(NULL), 1, "the receiver got %d ROLLBACKs", rollbacks(NULL));
    char *log = read_file("v.log");
    cr_expect_eq(count_of(log, RB), 1, "%s", log);
    free(log);
}

Test(live_recover, crash_between_decide_and_deliver_delivers_once)
{
    write_config();
    rx_pause(rx); /* the receiver is down when the decision is made */
    pid_t a = agent(0);
    long code = 0;
    free(request("err0", "/healthz", NULL, &code));
    decide();
    cr_assert(wait_for("v.log", RB, 20000), "no ROLLBACK decided");
    /* the verdict log's acknowledgement is in the ledger: a SIGKILL before
     * it would write the line again after the restart (at least once) */
    cr_assert(wait_for("v.log.ledger", "\"sink\":\"--verdict-log\"", 5000));
    sigkill(a); /* decided, in the verdict log, not delivered to the webhook */
    cr_expect_eq(rx_count(rx), 0);
    char *led = read_file("v.log.ledger");
    cr_expect_eq(count_of(led, "\"sink\":\"hook\""), 0, "%s", led);
    free(led);

    cr_assert(rx_resume(rx));
    a = agent(1);
    cr_assert(rx_wait(rx, 1, 20000), "the ROLLBACK was not delivered after the restart");
    long c2 = 0;
    char *r = request("err1", "/api/v1/verdict", NULL, &c2);
    cr_expect_str_eq(verdict_of(r), "ROLLBACK", "%s", r);
    free(r);
    kill(a, SIGTERM);
    cr_assert_eq(wait_exit(a, 15000), 0);
    cr_expect_eq(rollbacks(NULL), 1, "the receiver got %d ROLLBACKs", rollbacks(NULL));
    char *log = read_file("v.log");
    cr_expect_eq(count_of(log, RB), 1, "%s", log);
    free(log);
    led = read_file("v.log.ledger");
    cr_expect_eq(count_of(led, "\"sink\":\"hook\""), 1, "%s", led);
    free(led);
    char *e = read_file("err1");
    cr_expect(strstr(e, "1 decision of the current judgement offered again") != NULL, "%s", e);
    free(e);
}
