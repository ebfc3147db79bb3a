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
 *    ROLLBACK undelivered, restarted with the receiver up: delivered, once;
 *  - coordinated through a real redis-server, no verdict log: the ledger
 *    lives in Redis, and the restarted agent's first answer is ROLLBACK.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_receiver.c"
#include "kafka_mock.h"
#include "live_helpers.h"
#include "redis_server.h"

#define TOPIC "events"
#define PARTS 4

static rx_t *rx;
static pid_t redis_pid = -1;
static int redis_port;

static void setup(void)
{
    scratch_make("cd_recover_");
    mock_start(TOPIC, PARTS);
    rx = rx_start(0);
    cr_assert_not_null(rx);
}

static void teardown(void)
{
    kill_children();
    redis_server_kill(&redis_pid);
    rx_stop(rx);
    rx = NULL;
    mock_stop();
    scratch_remove();
}

/* The canary's errors over the threshold: a ROLLBACK. */
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
    cr_assert_not_null(out, "no answer from %s", url);
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
static void write_config_coord(const char *coordination)
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
            " \"http\": {\"bind\": \"127.0.0.1:0\"}%s}\n",
            (unsigned)rx_port(rx), coordination);
    fclose(f);
}

static void write_config(void)
{
    write_config_coord("");
}

/* The state of a claim hash in the test's Redis ("" when absent). */
static const char *claim_state(const char *key)
{
    static char out[32];
    redisContext *c = redis_server_client(redis_port);
    redisReply *r = redisCommand(c, "HGET %s state", key);
    snprintf(out, sizeof(out), "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    if (r) freeReplyObject(r);
    redisFree(c);
    return out;
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
    finish(pid, false, 10000, NULL);
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
    /* the API's snapshot follows the evaluation within 100 ms */
    for (int64_t end = mono_ms() + 10000;;) {
        char *v = request("err0", "/api/v1/verdict", NULL, &code);
        bool rb = strcmp(verdict_of(v), "ROLLBACK") == 0;
        free(v);
        if (rb) break;
        cr_assert(mono_ms() < end, "the API never answered ROLLBACK");
        sleep_ms(20);
    }
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

    int64_t t0 = mono_ms();
    a = agent(1);
    /* the first answers, before anything else was asked */
    r = request("err1", "/api/v1/verdict", NULL, &code);
    cr_log_info("restart to the first /api/v1/verdict answer: %lld ms", (long long)(mono_ms() - t0));
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
    int64_t t0 = mono_ms();
    a = agent(1);
    cr_assert(rx_wait(rx, 1, 20000), "the ROLLBACK was not delivered after the restart");
    rx_request_t q = rx_get(rx, 0);
    cr_log_info("restart to the undelivered ROLLBACK's arrival: %lld ms", (long long)(q.at_ms - t0));
    rx_request_free(&q);
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

/* A pod of a new release (the config names 2.6.0) over the ledger of 2.5.0,
 * whose ROLLBACK was decided while the receiver was down: a new judgement,
 * so 2.5.0's ROLLBACK is neither restored nor delivered late (a hook would
 * act on the new release); the receiver hears no ROLLBACK of 2.5.0. */
Test(live_recover, new_release_config_inherits_nothing)
{
    write_config();
    rx_pause(rx);
    pid_t a = agent(0);
    long code = 0;
    free(request("err0", "/healthz", NULL, &code));
    decide();
    cr_assert(wait_for("v.log.ledger", "\"sink\":\"--verdict-log\"", 20000));
    sigkill(a);
    cr_assert(rx_resume(rx));
    char *c = read_file("c.json");
    FILE *f = fopen(path_of("c.json"), "w");
    fprintf(f, "{\"events\": {\"canary_version\": \"2.6.0\", %s", strstr(c, "\"events\": {") + 11);
    fclose(f);
    free(c);
    a = agent(1);
    free(request("err1", "/healthz", NULL, &code));
    char *e = read_file("err1");
    cr_expect(strstr(e, "the ROLLBACK of release 2.5.0 is not restored: the config judges release "
                        "2.6.0") != NULL,
              "%s", e);
    cr_expect(strstr(e, "offered again") == NULL, "%s", e);
    free(e);
    kill(a, SIGTERM);
    cr_assert_eq(wait_exit(a, 15000), 0);
    char *led = read_file("v.log.ledger");
    cr_expect(strstr(led, "{\"t\":\"judgement\",\"release\":\"2.6.0\"") != NULL, "%s", led);
    free(led);
    for (int i = 0; i < rx_count(rx); i++) {
        rx_request_t q = rx_get(rx, i);
        cr_expect(!strstr(q.body, RB) || strstr(q.body, "\"release\":\"2.6.0\""), "%s", q.body);
        rx_request_free(&q);
    }
}

/* Coordinated, no verdict log: the ledger lives in the shared Redis (and
 * the delivery in the claim). The agent is SIGKILLed once its ROLLBACK is
 * delivered and the claim done; the restarted one recovers the decision
 * from Redis: its first answer is ROLLBACK, and the receiver hears it once. */
Test(live_recover, coordinated_restart_recovers_from_redis)
{
    redis_port = free_port();
    redis_pid = redis_server_start(redis_port, NULL, NULL);
    char coord[256];
    snprintf(coord, sizeof(coord),
             ",\n \"coordination\": {\"redis\": \"127.0.0.1:%d\", \"prefix\": \"cdtest\", "
             "\"lease\": \"2s\"}",
             redis_port);
    write_config_coord(coord);
    pid_t a = start("out0", "err0", ARGS("--config", path_of("c.json"), "--group", "g"));
    cr_assert(wait_for("err0", "holds the lease", 20000));
    decide();
    cr_assert(rx_wait(rx, 1, 20000), "no ROLLBACK delivered");
    const char *key = "cdtest:claim:-:2.5.0:ROLLBACK:errors";
    for (int64_t end = mono_ms() + 10000; strcmp(claim_state(key), "done") != 0 && mono_ms() < end;)
        sleep_ms(20);
    cr_assert_str_eq(claim_state(key), "done");
    sigkill(a);

    a = start("out1", "err1", ARGS("--config", path_of("c.json"), "--group", "g"));
    long code = 0;
    char *r = request("err1", "/api/v1/verdict", NULL, &code);
    cr_expect_eq(code, 200);
    cr_expect_str_eq(verdict_of(r), "ROLLBACK", "%s", r);
    free(r);
    char *e = read_file("err1");
    cr_expect(strstr(e, "recovered from Redis (cdtest:ledger)") != NULL, "%s", e);
    free(e);
    /* leader again once the dead one's lease expired: nothing owed is sent */
    cr_assert(wait_for("err1", "holds the lease", 20000));
    kill(a, SIGTERM);
    cr_assert_eq(wait_exit(a, 15000), 0);
    cr_expect_eq(rollbacks(NULL), 1, "the receiver got %d ROLLBACKs", rollbacks(NULL));
}
