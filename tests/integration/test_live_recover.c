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
 *
 * The helpers (spawn, wait_for, GET) carry the names of h15tidy's shared
 * tests/integration/live_helpers.h, to be replaced by it once it is merged.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http_receiver.c"

#define TOPIC "events"
#define PARTS 4

static char dir[64];
static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char bootstraps[256];
/* children not yet reaped: killed by teardown when a test fails early */
static pid_t kids[8];
static int nkids;
static rx_t *rx;
static pid_t redis_pid = -1;
static int redis_port;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void setup(void)
{
    char e[256];
    snprintf(dir, sizeof(dir), "/tmp/cd_recover_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
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
    for (int i = 0; i < nkids; i++) {
        int st;
        if (kids[i] > 0 && waitpid(kids[i], &st, WNOHANG) == 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], &st, 0);
        }
    }
    nkids = 0;
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        redis_pid = -1;
    }
    rx_stop(rx);
    rx = NULL;
    if (mock) rd_kafka_mock_cluster_destroy(mock);
    if (mock_rk) rd_kafka_destroy(mock_rk);
    mock = NULL;
    mock_rk = NULL;
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static const char *path_of(const char *name)
{
    static char buf[64][160];
    static int i;
    char *p = buf[i++ % 64];
    snprintf(p, 160, "%s/%s", dir, name);
    return p;
}

static char *read_file(const char *name)
{
    FILE *f = fopen(path_of(name), "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}


static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts canaryd run with the mock's brokers; stdout/stderr into out/err. */
static pid_t start(const char *out, const char *err, const char *const *args)
{
    const char *bin = getenv("CANARYD_BIN");
    cr_assert_not_null(bin, "CANARYD_BIN is not set");
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = "run";
    argv[n++] = "--brokers";
    argv[n++] = bootstraps;
    for (int i = 0; args[i] && n < 39; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, path_of(out), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, path_of(err), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "spawn %s: %s", bin, strerror(rc));
    if (nkids < 8) kids[nkids++] = pid;
    return pid;
}

static void reaped(pid_t pid)
{
    for (int i = 0; i < nkids; i++)
        if (kids[i] == pid) kids[i] = 0;
}

/* Waits up to limit_ms for the child; kills it (and fails) after that. */
static int wait_exit(pid_t pid, long limit_ms)
{
    int st;
    for (long t = 0; t < limit_ms; t += 10) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            reaped(pid);
            cr_assert(WIFEXITED(st), "canaryd did not exit normally (status 0x%x)", st);
            return WEXITSTATUS(st);
        }
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    reaped(pid);
    cr_assert_fail("canaryd did not exit within %ld ms", limit_ms);
    return -1;
}

/* Waits up to limit_ms for file name to contain needle. */
static bool wait_for(const char *name, const char *needle, long limit_ms)
{
    for (long t = 0; t < limit_ms; t += 20) {
        char *s = read_file(name);
        bool found = strstr(s, needle) != NULL;
        free(s);
        if (found) return true;
        sleep_ms(20);
    }
    return false;
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

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

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

static size_t gather(char *p, size_t size, size_t n, void *f)
{
    return fwrite(p, size, n, f);
}

/* A request to the HTTP API of the agent whose stderr is file err (the
 * port it printed); body NULL: GET, else POST of that JSON. Returns the
 * answer (malloc'ed) and the status in *code. */
static char *request(const char *err, const char *path, const char *body, long *code)
{
    cr_assert(wait_for(err, "http: listening on 127.0.0.1:", 20000), "no HTTP API in %s", err);
    char *e = read_file(err);
    int port = atoi(strstr(e, "http: listening on 127.0.0.1:") + 29);
    free(e);
    char url[160], *out = NULL;
    size_t len = 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    FILE *f = open_memstream(&out, &len);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gather);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    fclose(f);
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

/* Starts redis-server on a free loopback port; waits until it answers. */
static void redis_start(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    redis_port = ntohs(a.sin_port);
    char port[16];
    snprintf(port, sizeof(port), "%d", redis_port);
    const char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--loglevel", "warning", "--dir", "/tmp", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&redis_pid, "redis-server", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0);
    for (long t = 0;; t += 10, sleep_ms(10)) {
        struct timeval tv = {0, 200000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
        bool up = false;
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            up = r && r->type == REDIS_REPLY_STATUS;
            if (r) freeReplyObject(r);
        }
        if (c) redisFree(c);
        if (up) return;
        cr_assert(t < 5000, "redis-server did not come up");
    }
}

/* The state of a claim hash in the test's Redis ("" when absent). */
static const char *claim_state(const char *key)
{
    static char out[32];
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    cr_assert(c && !c->err);
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
    waitpid(pid, NULL, 0);
    reaped(pid);
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
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
    for (long t = 0;; t += 20) {
        char *v = request("err0", "/api/v1/verdict", NULL, &code);
        bool rb = strcmp(verdict_of(v), "ROLLBACK") == 0;
        free(v);
        if (rb) break;
        cr_assert(t < 10000, "the API never answered ROLLBACK");
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
    cr_expect_eq(count(log, RB), 1, "%s", log);
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
    cr_expect_eq(count(led, "\"sink\":\"hook\""), 0, "%s", led);
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
    cr_expect_eq(count(log, RB), 1, "%s", log);
    free(log);
    led = read_file("v.log.ledger");
    cr_expect_eq(count(led, "\"sink\":\"hook\""), 1, "%s", led);
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
    redis_start();
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
    for (long t = 0; strcmp(claim_state(key), "done") != 0 && t < 10000; t += 20)
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
