/*
 * test_http_api.c - the HTTP API of `canaryd run` (CANARYD_BIN, a child
 * process) against librdkafka's mock cluster started in this process, with
 * "http": {"bind": "127.0.0.1:0"}: the agent prints "http: listening on
 * 127.0.0.1:PORT" on stderr and every endpoint is called with libcurl.
 *
 * Covered: probes (readyz 503 before the assignment, 200 after), the
 * verdict JSON and the Flagger endpoints through ANALYZING -> ROLLBACK and
 * ANALYZING -> HEALTHY -> PROMOTE, POST /api/v1/release resetting a
 * ROLLBACK (and the canary side of the windows), /metrics parsed line by
 * line and its series checked against known counts, 4 threads x 1000
 * requests while events flow, bearer-token enforcement, the non-loopback
 * rule, hostile requests, and check-config's messages for the section.
 * Each test works in its own folder under /tmp, removed afterwards; every
 * child is waited for. curl never uses a proxy (CURLOPT_NOPROXY "*").
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../agent/config/config_internal.h"
#include "kafka_mock.h"
#include "live_helpers.h"

#define TOPIC "events"
#define PARTS 4
#define TOKEN "t0k3n-for-tests"

static pid_t kid; /* the agent, 0 when reaped */
static int port;  /* its HTTP port */

static void setup(void)
{
    scratch_make("cd_http_");
    mock_start(TOPIC, PARTS);
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void teardown(void)
{
    /* An agent that died under a test shows only as refused or failed
     * requests: say how it ended, with its stderr (where an assertion or a
     * sanitizer names the cause), before the folder holding it goes. */
    int st;
    if (kid && waitpid(kid, &st, WNOHANG) == kid) {
        char *err = read_file("err");
        fprintf(stderr, "canaryd (pid %d) ended during the test, status 0x%x; its stderr:\n%s\n",
                (int)kid, st, err);
        free(err);
        reaped(kid);
    }
    kill_children();
    kid = 0;
    mock_stop();
    curl_global_cleanup();
    scratch_remove();
}

/* One rule: canary ERROR_OCCURRED / REQUEST_COMPLETED > 0.2 over 10 s with
 * at least 50 canary requests, firing at once; PROMOTE after promote_after
 * healthy (2s unless a test needs longer). The canary-evidence check is off
 * (min_canary_events 0): the rule's own minimum is what these tests drive.
 * http: the http section's body. */
static void write_config_promote(const char *http, const char *promote_after)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"events\": {\"types\": [\"REQUEST_COMPLETED\", \"ERROR_OCCURRED\"]},\n"
             " \"windows\": {\"max_future_skew\": \"1m\", \"slack\": \"10s\"},\n"
             " \"verdicts\": {\"promote_after\": \"%s\", \"min_canary_events\": 0},\n"
             " \"rules\": [{\"name\": \"error-rate\", \"kind\": \"threshold\",\n"
             "   \"description\": \"Roll back on canary errors.\",\n"
             "   \"numerator\": [\"ERROR_OCCURRED\"], \"denominator\": [\"REQUEST_COMPLETED\"],\n"
             "   \"scope\": \"canary\", \"op\": \">\", \"threshold\": 0.2, \"window\": \"10s\",\n"
             "   \"for\": \"0s\", \"resolve_for\": \"10s\", \"min_samples\": {\"canary\": 50},\n"
             "   \"action\": \"rollback\"}],\n"
             " \"kafka\": {\"topics\": [\"" TOPIC "\"], \"group\": \"g\",\n"
             "   \"properties\": {\"session.timeout.ms\": 6000, \"heartbeat.interval.ms\": 500}},\n"
             " \"http\": %s}\n",
             promote_after, http);
    write_text("c.json", text);
}

static void write_config(const char *http)
{
    write_config_promote(http, "2s");
}

/* Starts canaryd run with c.json; waits for its HTTP port. */
static void start_agent(void)
{
    /* forked with PR_SET_PDEATHSIG (live_helpers.h): a test that times out
     * (Criterion kills it before teardown runs) leaves no agent behind */
    kid = start("out", "err", ARGS("--config", path_of("c.json"), "--threads", "2"));
    port = 0;
    for (int64_t end = mono_ms() + 10000; mono_ms() < end && !port;) {
        char *s = read_file("err");
        const char *p = strstr(s, "\nhttp: listening on 127.0.0.1:");
        if (!p && strncmp(s, "http: listening on ", 19) == 0) p = s - 1;
        if (!p) p = strstr(s, "\nhttp: listening on 0.0.0.0:");
        if (p) {
            const char *colon = strchr(p + 20, ':');
            port = atoi(colon + 1);
        }
        free(s);
        if (!port) {
            int st;
            cr_assert_eq(waitpid(kid, &st, WNOHANG), 0, "canaryd exited early:\n%s",
                         read_file("err"));
            sleep_ms(10);
        }
    }
    cr_assert_gt(port, 0, "no \"http: listening on\" line:\n%s", read_file("err"));
}

/* SIGTERM, then expects exit status 0 within 10 s. */
static void stop_agent(void)
{
    bool late = false;
    int st = finish(kid, true, 10000, &late);
    kid = 0;
    cr_assert(!late, "canaryd did not stop within 10 s");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "canaryd exit status 0x%x", st);
}

/* ---- HTTP --------------------------------------------------------------- */

typedef struct resp {
    long status;
    char *body;
    size_t len;
    char allow[64];
} resp_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    char *nb = realloc(r->body, r->len + sz * n + 1);
    if (!nb) return 0;
    memcpy(nb + r->len, p, sz * n);
    r->body = nb;
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    if (sz * n > 7 && strncasecmp(p, "Allow: ", 7) == 0)
        snprintf(r->allow, sizeof(r->allow), "%.*s", (int)strcspn(p + 7, "\r\n"), p + 7);
    return sz * n;
}

/* One request on handle c (NULL: a fresh one). auth: the Authorization
 * header's value or NULL; chunked: send the body chunked. Returns the
 * status (-1 on a transport error); r->body is malloc'd. */
static long request_on(CURL *c, const char *method, const char *path, const char *body, size_t blen,
                       const char *auth, bool chunked, resp_t *r)
{
    bool own = !c;
    if (own) c = curl_easy_init();
    char url[256], h[512];
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *hs = NULL;
    if (auth) {
        snprintf(h, sizeof(h), "Authorization: %s", auth);
        hs = curl_slist_append(hs, h);
    }
    if (body) hs = curl_slist_append(hs, "Content-Type: application/json");
    if (chunked) hs = curl_slist_append(hs, "Transfer-Encoding: chunked");
    hs = curl_slist_append(hs, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                         chunked ? (curl_off_t)-1 : (curl_off_t)blen);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    } else {
        /* no body: a GET under the method's name (setting POSTFIELDS, even
         * to NULL, would make curl read the body from stdin) */
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    CURLcode e = curl_easy_perform(c);
    r->status = e == CURLE_OK ? 0 : -1;
    if (e == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body) r->body = strdup("");
    curl_slist_free_all(hs);
    if (own) curl_easy_cleanup(c);
    return r->status;
}

static long request(const char *method, const char *path, const char *body, const char *auth,
                    resp_t *r)
{
    return request_on(NULL, method, path, body, body ? strlen(body) : 0, auth, false, r);
}

/* GET path: expects status, returns the JSON body (new reference). */
static json_t *get_json(const char *path, long status)
{
    resp_t r;
    request("GET", path, NULL, NULL, &r);
    cr_assert_eq(r.status, status, "GET %s: %ld %s", path, r.status, r.body);
    json_error_t je;
    json_t *j = json_loads(r.body, 0, &je);
    cr_assert_not_null(j, "GET %s: not JSON (%s): %s", path, je.text, r.body);
    free(r.body);
    return j;
}

static const char *jstr(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    cr_assert_not_null(s, "no string \"%s\"", key);
    return s;
}

/* Polls /api/v1/verdict until its verdict is v (limit ms); returns it. */
static json_t *wait_verdict(const char *v, long limit_ms)
{
    for (int64_t end = mono_ms() + limit_ms;;) {
        json_t *j = get_json("/api/v1/verdict", 200);
        if (strcmp(jstr(j, "verdict"), v) == 0) return j;
        if (mono_ms() >= end) cr_assert_fail("verdict still %s, not %s", jstr(j, "verdict"), v);
        json_decref(j);
        sleep_ms(20);
    }
}

/* Polls /api/v1/verdict until the rule's samples reach n (the verdict may
 * change as soon as min_samples are counted, before the last events are);
 * returns it. */
static json_t *wait_samples(long long n, long limit_ms)
{
    for (int64_t end = mono_ms() + limit_ms;;) {
        json_t *j = get_json("/api/v1/verdict", 200);
        json_t *rule = json_array_get(json_object_get(j, "rules"), 0);
        long long got = json_integer_value(json_object_get(rule, "samples"));
        if (got == n) return j;
        if (mono_ms() >= end) cr_assert_fail("samples still %lld, not %lld", got, n);
        json_decref(j);
        sleep_ms(20);
    }
}

/* Both workers (--threads 2) have logged an assignment. The first worker
 * can be assigned, and /readyz say 200, before the second one joins the
 * group; its joining then revokes everything for a moment and /readyz says
 * 503 "no Kafka partition is assigned yet" again. After both lines, that
 * rebalance is behind us. */
static bool both_workers_assigned(void)
{
    char *e = read_file("err");
    bool yes = strstr(e, "worker 0 assigned") && strstr(e, "worker 1 assigned");
    free(e);
    return yes;
}

/* Ready, with the group settled (both workers assigned, see above). */
static void wait_ready(void)
{
    resp_t r;
    for (int64_t end = mono_ms() + 30000; mono_ms() < end;) {
        request("GET", "/readyz", NULL, NULL, &r);
        free(r.body);
        if (r.status == 200 && both_workers_assigned()) return;
        cr_assert(r.status == 200 || r.status == 503, "/readyz: %ld", r.status);
        sleep_ms(20);
    }
    cr_assert_fail("/readyz not 200 with both workers assigned within 30 s:\n%s",
                   read_file("err"));
}

/* ---- /metrics --------------------------------------------------------------- */

/* The value of the sample line "series value" (series with its labels,
 * exactly as written); NAN when absent. Checks every line's shape. */
static double metric(const char *text, const char *series)
{
    double v = NAN;
    char *copy = strdup(text);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') {
            cr_assert(strncmp(line, "# HELP canaryd_", 15) == 0 ||
                          strncmp(line, "# TYPE canaryd_", 15) == 0 ||
                          strncmp(line, "# HELP process_", 15) == 0 ||
                          strncmp(line, "# TYPE process_", 15) == 0,
                      "comment line: %s", line);
            continue;
        }
        cr_assert(strncmp(line, "canaryd_", 8) == 0 || strncmp(line, "process_", 8) == 0,
                  "sample line: %s", line);
        char *sp = strrchr(line, ' ');
        cr_assert_not_null(sp, "sample line: %s", line);
        *sp = '\0';
        char *end;
        double x = strtod(sp + 1, &end);
        cr_assert(*end == '\0', "value of %s: %s", line, sp + 1);
        if (strcmp(line, series) == 0) v = x;
    }
    free(copy);
    return v;
}

static char *get_metrics(void)
{
    resp_t r;
    request("GET", "/metrics", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    return r.body;
}

/* Polls /metrics until series == want (limit ms). */
static void wait_metric(const char *series, double want, long limit_ms)
{
    double v = NAN;
    for (int64_t end = mono_ms() + limit_ms; mono_ms() < end;) {
        char *m = get_metrics();
        v = metric(m, series);
        free(m);
        if (v == want) return;
        sleep_ms(20);
    }
    cr_assert_fail("%s = %g, not %g", series, v, want);
}

static void expect_flagger(const char *hook, long status, const char *verdict)
{
    resp_t r;
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/flagger/%s", hook);
    request("POST", path,
            "{\"name\":\"podinfo\",\"namespace\":\"test\",\"phase\":\"Progressing\","
            "\"checksum\":\"6d4f8c\",\"metadata\":{\"k\":\"v\"}}",
            NULL, &r);
    cr_assert_eq(r.status, status, "%s: %ld %s", hook, r.status, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    cr_assert_not_null(j, "%s", r.body);
    cr_assert_str_eq(jstr(j, "verdict"), verdict);
    json_decref(j);
    free(r.body);
}

/* A Flagger hook with checksum sum; expects status and verdict, returns the
 * reply's release (static buffer). */
static const char *hook_run(const char *hook, const char *sum, long status, const char *verdict)
{
    static char rel[128];
    resp_t r;
    char path[96], body[256];
    snprintf(path, sizeof(path), "/api/v1/flagger/%s", hook);
    snprintf(body, sizeof(body),
             "{\"name\":\"checkout\",\"namespace\":\"prod\",\"phase\":\"Progressing\","
             "\"checksum\":\"%s\"}",
             sum);
    request("POST", path, body, NULL, &r);
    cr_assert_eq(r.status, status, "%s checksum %s: %ld %s", hook, sum, r.status, r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    cr_assert_not_null(j, "%s", r.body);
    cr_assert_str_eq(jstr(j, "verdict"), verdict, "%s checksum %s: %s", hook, sum, r.body);
    snprintf(rel, sizeof(rel), "%s", jstr(j, "release"));
    json_decref(j);
    free(r.body);
    return rel;
}

/* ---- tests ------------------------------------------------------------------ */

TestSuite(http_api, .init = setup, .fini = teardown, .timeout = 60);

Test(http_api, analyzing_rollback_release_reset_and_metrics)
{
    int seq = 0;
    write_config("{\"bind\": \"127.0.0.1:0\", \"token\": \"" TOKEN "\", \"max_lag\": 0}");
    start_agent();

    /* Before the group assigned anything: alive, not ready. */
    json_t *h = get_json("/healthz", 200);
    cr_assert_str_eq(jstr(h, "status"), "ok");
    json_decref(h);
    json_t *ry = get_json("/readyz", 503);
    cr_assert(json_is_false(json_object_get(ry, "ready")));
    cr_assert_str_eq(jstr(ry, "reason"), "no Kafka partition is assigned yet");
    json_decref(ry);
    wait_ready();

    json_t *v = get_json("/api/v1/verdict", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ANALYZING");
    cr_assert_str_eq(jstr(v, "release"), "");
    json_t *rule = json_array_get(json_object_get(v, "rules"), 0);
    cr_assert_eq(json_array_size(json_object_get(v, "rules")), 1);
    cr_assert_str_eq(jstr(rule, "name"), "error-rate");
    cr_assert_str_eq(jstr(rule, "state"), "inactive");
    cr_assert_str_eq(jstr(rule, "action"), "rollback");
    cr_assert_eq(json_integer_value(json_object_get(rule, "samples")), 0);
    cr_assert(json_is_null(json_object_get(rule, "observed")));
    cr_assert_not_null(strstr(jstr(rule, "reason"), "insufficient data"), "%s",
                       jstr(rule, "reason"));
    json_decref(v);
    expect_flagger("rollback", 409, "ANALYZING");
    expect_flagger("confirm-promotion", 409, "ANALYZING");

    /* 60 canary requests, 30 canary errors (ratio 0.5 > 0.2), 100 stable
     * requests, two bad payloads. */
    rd_kafka_t *pr = producer();
    produce(pr, 60, "REQUEST_COMPLETED", "canary", NULL, &seq);
    produce(pr, 30, "ERROR_OCCURRED", "canary", NULL, &seq);
    produce(pr, 100, "REQUEST_COMPLETED", "stable", NULL, &seq);
    produce_raw(pr, "not json", &seq);
    produce_raw(pr, "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":1}", &seq);
    flush_all(pr);

    v = wait_verdict("ROLLBACK", 10000);
    json_decref(v);
    v = wait_samples(60, 5000);
    cr_assert_str_eq(jstr(v, "verdict"), "ROLLBACK");
    cr_assert_str_eq(jstr(v, "release"), "2.5.0");
    cr_assert_not_null(json_string_value(json_object_get(v, "since")));
    rule = json_array_get(json_object_get(v, "rules"), 0);
    cr_assert_str_eq(jstr(rule, "state"), "firing");
    cr_assert_eq(json_integer_value(json_object_get(rule, "samples")), 60);
    cr_assert_float_eq(json_real_value(json_object_get(rule, "observed")), 0.5, 1e-12);
    cr_assert_float_eq(json_real_value(json_object_get(rule, "threshold")), 0.2, 1e-12);
    cr_assert_not_null(strstr(jstr(rule, "reason"), "30/60"), "%s", jstr(rule, "reason"));
    json_decref(v);
    expect_flagger("rollback", 200, "ROLLBACK");
    expect_flagger("confirm-promotion", 409, "ROLLBACK");

    /* /metrics: the known counts, once everything is consumed. */
    wait_metric("canaryd_kafka_messages_total", 192, 10000);
    for (int p = 0; p < PARTS; p++) {
        char s[96];
        snprintf(s, sizeof(s), "canaryd_consumer_lag{topic=\"events\",partition=\"%d\"}", p);
        wait_metric(s, 0, 10000);
    }
    wait_metric("canaryd_events_total{type=\"REQUEST_COMPLETED\",cohort=\"canary\"}", 60, 2000);
    char *m = get_metrics();
    cr_assert_eq(metric(m, "canaryd_events_total{type=\"REQUEST_COMPLETED\",cohort=\"canary\"}"),
                 60);
    cr_assert_eq(metric(m, "canaryd_events_total{type=\"REQUEST_COMPLETED\",cohort=\"stable\"}"),
                 100);
    cr_assert_eq(metric(m, "canaryd_events_total{type=\"ERROR_OCCURRED\",cohort=\"canary\"}"), 30);
    cr_assert_eq(metric(m, "canaryd_events_total{type=\"ERROR_OCCURRED\",cohort=\"stable\"}"), 0);
    cr_assert_eq(metric(m, "canaryd_events_total{type=\"other\",cohort=\"stable\"}"), 0);
    cr_assert_eq(metric(m, "canaryd_bad_input_total{reason=\"invalid_json\"}"), 1);
    cr_assert_eq(metric(m, "canaryd_bad_input_total{reason=\"missing_cohort\"}"), 1);
    cr_assert_eq(metric(m, "canaryd_bad_input_total{reason=\"nul_byte\"}"), 0);
    cr_assert_eq(metric(m, "canaryd_late_events_total"), 0);
    cr_assert_eq(metric(m, "canaryd_future_events_total"), 0);
    cr_assert_eq(metric(m, "canaryd_kafka_assigned_partitions"), PARTS);
    cr_assert_eq(metric(m, "canaryd_rule_state{rule=\"error-rate\",state=\"firing\"}"), 1);
    cr_assert_eq(metric(m, "canaryd_rule_state{rule=\"error-rate\",state=\"inactive\"}"), 0);
    cr_assert_float_eq(metric(m, "canaryd_rule_value{rule=\"error-rate\"}"), 0.5, 1e-12);
    cr_assert_float_eq(metric(m, "canaryd_rule_threshold{rule=\"error-rate\"}"), 0.2, 1e-12);
    cr_assert_eq(metric(m, "canaryd_rule_samples{rule=\"error-rate\"}"), 60);
    cr_assert_eq(metric(m, "canaryd_verdict{verdict=\"ROLLBACK\",release=\"2.5.0\"}"), 1);
    cr_assert_eq(metric(m, "canaryd_verdict{verdict=\"ANALYZING\",release=\"2.5.0\"}"), 0);
    cr_assert_eq(metric(m, "canaryd_sink_failures_total{sink=\"stdout\",type=\"log\"}"), 0);
    cr_assert_eq(metric(m, "canaryd_sink_retries_total{sink=\"stdout\",type=\"log\"}"), 0);
    cr_assert_gt(metric(m, "canaryd_resident_memory_bytes"), 1e6);
    cr_assert_gt(metric(m, "canaryd_evaluations_total"), 0);
    static const char *const series[] = {
        "events_total",          "bad_input_total",     "late_events_total",  "future_events_total",
        "consumer_lag",          "rule_state",          "rule_value",         "verdict",
        "sink_deliveries_total", "sink_failures_total", "sink_retries_total", "sink_queue_depth",
        "resident_memory_bytes", "kafka_messages_total"};
    for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++) {
        char help[96], type[96];
        snprintf(help, sizeof(help), "# HELP canaryd_%s ", series[i]);
        snprintf(type, sizeof(type), "# TYPE canaryd_%s %s\n", series[i],
                 strstr(series[i], "_total") ? "counter" : "gauge");
        cr_assert_not_null(strstr(m, help), "no HELP for %s", series[i]);
        cr_assert_not_null(strstr(m, type), "no TYPE for %s", series[i]);
    }
    double records = metric(m, "canaryd_records_total");
    cr_assert_geq(records, 3); /* ANALYZING, the state change, ROLLBACK */
    free(m);
    /* Every record reaches the stdout sink. */
    char series_deliv[] = "canaryd_sink_deliveries_total{sink=\"stdout\",type=\"log\"}";
    wait_metric(series_deliv, records, 5000);

    /* A new release: token enforced, then the ROLLBACK is reset. */
    resp_t r;
    request("POST", "/api/v1/release", "{\"release\": \"2.6.0\"}", NULL, &r);
    cr_assert_eq(r.status, 401, "%s", r.body);
    free(r.body);
    request("POST", "/api/v1/release", "{\"release\": \"2.6.0\"}", "Bearer wrong", &r);
    cr_assert_eq(r.status, 401, "%s", r.body);
    cr_assert_not_null(strstr(r.body, "not accepted"));
    free(r.body);
    v = get_json("/api/v1/verdict", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ROLLBACK");
    json_decref(v);
    request("POST", "/api/v1/release", "{\"release\": \"2.6.0\"}", "Bearer " TOKEN, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    cr_assert_str_eq(jstr(j, "release"), "2.6.0");
    cr_assert_str_eq(jstr(j, "verdict"), "ANALYZING");
    json_decref(j);
    free(r.body);
    v = get_json("/api/v1/verdict", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ANALYZING");
    cr_assert_str_eq(jstr(v, "release"), "2.6.0");
    cr_assert_str_eq(jstr(json_array_get(json_object_get(v, "rules"), 0), "state"), "inactive");
    json_decref(v);
    expect_flagger("rollback", 409, "ANALYZING");
    /* The old canary events no longer count: still ANALYZING after the
     * next evaluations (the engine re-evaluates every 10 ms). */
    wait_metric("canaryd_rule_samples{rule=\"error-rate\"}", 0, 2000);
    v = get_json("/api/v1/verdict", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ANALYZING");
    json_decref(v);

    /* The new release's own healthy traffic (stamped in the next second, the
     * first bucket wholly after the reset): HEALTHY, then PROMOTE. */
    produce_events(pr, 60, "REQUEST_COMPLETED", "canary", NULL, 1100, NULL, &seq);
    flush_all(pr);
    rd_kafka_destroy(pr);
    v = wait_verdict("PROMOTE", 10000);
    cr_assert_str_eq(jstr(v, "release"), "2.6.0");
    json_decref(v);
    expect_flagger("confirm-promotion", 200, "PROMOTE");
    expect_flagger("rollback", 409, "PROMOTE");
    stop_agent();
    char *out = read_file("out");
    cr_assert_not_null(strstr(out, "\"verdict\":\"ROLLBACK\",\"rule\":\"error-rate\""), "%s", out);
    cr_assert_not_null(strstr(out, "\"verdict\":\"PROMOTE\""), "%s", out);
    cr_assert_not_null(strstr(out, "\"release\":\"2.6.0\""), "%s", out);
    free(out);
    char *err = read_file("err");
    cr_assert_not_null(strstr(err, "flagger rollback hook: name \"podinfo\" namespace \"test\" "
                                   "phase \"Progressing\" checksum \"6d4f8c\""),
                       "%s", err);
    cr_assert_null(strstr(err, TOKEN), "the token was logged");
    free(err);
}

Test(http_api, analyzing_healthy_promote)
{
    int seq = 0;
    write_config_promote("{\"bind\": \"127.0.0.1:0\"}", "3s");
    start_agent();
    wait_ready();
    json_t *v = get_json("/api/v1/verdict", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ANALYZING");
    json_decref(v);
    rd_kafka_t *pr = producer();
    produce(pr, 80, "REQUEST_COMPLETED", "canary", NULL, &seq);
    produce(pr, 4, "ERROR_OCCURRED", "canary", NULL, &seq);
    flush_all(pr);
    rd_kafka_destroy(pr);
    v = wait_verdict("HEALTHY", 10000);
    json_decref(v);
    v = wait_samples(80, 5000);
    cr_assert_str_eq(jstr(v, "verdict"), "HEALTHY"); /* PROMOTE comes 3 s later */
    json_t *rule = json_array_get(json_object_get(v, "rules"), 0);
    cr_assert_float_eq(json_real_value(json_object_get(rule, "observed")), 0.05, 1e-12);
    cr_assert_str_eq(jstr(rule, "state"), "inactive");
    json_decref(v);
    expect_flagger("confirm-promotion", 409, "HEALTHY");
    v = wait_verdict("PROMOTE", 6000);
    cr_assert_str_eq(jstr(v, "release"), "2.5.0");
    json_decref(v);
    expect_flagger("confirm-promotion", 200, "PROMOTE");
    expect_flagger("rollback", 409, "PROMOTE");
    char *m = get_metrics();
    cr_assert_eq(metric(m, "canaryd_verdict{verdict=\"PROMOTE\",release=\"2.5.0\"}"), 1);
    cr_assert_eq(metric(m, "canaryd_verdict{verdict=\"HEALTHY\",release=\"2.5.0\"}"), 0);
    free(m);
    /* No token configured, loopback bind: the write endpoint works. */
    resp_t r;
    request("POST", "/api/v1/release", "{\"release\": \"2.7.0\"}", NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    free(r.body);
    v = get_json("/api/v1/verdict", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ANALYZING");
    cr_assert_str_eq(jstr(v, "release"), "2.7.0");
    json_decref(v);
    stop_agent();
}

/* ---- 4 threads x 1000 requests while events flow ------------------------------ */

typedef struct worker {
    int id;
    int errors;
    char first_error[256];
} worker_t;

static void *hammer(void *arg)
{
    worker_t *w = arg;
    static const char *const paths[] = {"/healthz", "/readyz", "/api/v1/verdict", "/metrics"};
    CURL *c = curl_easy_init();
    for (int i = 0; i < 1000; i++) {
        resp_t r;
        const char *p = paths[(i + w->id) % 4];
        request_on(c, "GET", p, NULL, 0, NULL, false, &r);
        bool ok = r.status == 200;
        if (ok && p[1] == 'a') {
            json_t *j = json_loads(r.body, 0, NULL);
            ok = j && json_is_string(json_object_get(j, "verdict")) &&
                 json_is_array(json_object_get(j, "rules"));
            json_decref(j);
        } else if (ok && p[1] == 'm') {
            ok = strstr(r.body, "canaryd_http_requests_total{code=\"other\"}") != NULL;
        }
        if (!ok && w->errors++ == 0)
            snprintf(w->first_error, sizeof(w->first_error), "%s: %ld %.200s", p, r.status, r.body);
        free(r.body);
    }
    curl_easy_cleanup(c);
    return NULL;
}

Test(http_api, four_threads_thousand_requests_while_events_flow)
{
    int seq = 0;
    write_config("{\"bind\": \"127.0.0.1:0\"}");
    start_agent();
    wait_ready();
    /* every partition held: the clients must not start inside a rebalance */
    wait_metric("canaryd_kafka_assigned_partitions", PARTS, 15000);
    rd_kafka_t *pr = producer();
    pthread_t th[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){.id = i};
        cr_assert_eq(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
    }
    /* Events flow meanwhile: 20 every 5 ms until the clients are done. */
    int produced = 0;
    bool joined[4] = {false};
    for (int done = 0; !done;) {
        produce(pr, 10, "REQUEST_COMPLETED", "stable", NULL, &seq);
        produce(pr, 10, "REQUEST_COMPLETED", "canary", NULL, &seq);
        produced += 20;
        rd_kafka_poll(pr, 0);
        sleep_ms(5);
        done = 1;
        for (int i = 0; i < 4; i++) {
            if (!joined[i]) joined[i] = pthread_tryjoin_np(th[i], NULL) == 0;
            if (!joined[i]) done = 0;
        }
    }
    flush_all(pr);
    rd_kafka_destroy(pr);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(w[i].errors, 0, "thread %d: %d errors; first: %s", i, w[i].errors,
                     w[i].first_error);
    char series[64];
    snprintf(series, sizeof(series), "canaryd_kafka_messages_total");
    wait_metric(series, produced, 10000);
    /* (events come from the evaluating thread's snapshot: up to 100 ms later) */
    wait_metric("canaryd_events_total{type=\"REQUEST_COMPLETED\",cohort=\"canary\"}", produced / 2,
                2000);
    wait_metric("canaryd_events_total{type=\"REQUEST_COMPLETED\",cohort=\"stable\"}", produced / 2,
                2000);
    char *m = get_metrics();
    cr_assert_geq(metric(m, "canaryd_http_requests_total{code=\"200\"}"), 4000);
    cr_assert_eq(metric(m, "canaryd_http_requests_total{code=\"500\"}"), 0);
    free(m);
    stop_agent();
}

/* ---- hostile requests, tokens, binds, config ---------------------------------- */

static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Sends raw bytes, returns what came back until the server closed or 5 s. */
static char *raw_exchange(const char *data, size_t len)
{
    int fd = raw_connect();
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        ssize_t n = recv(fd, buf + got, cap - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
        if (got == cap) break;
    }
    buf[got] = '\0';
    close(fd);
    return buf;
}

Test(http_api, hostile_requests_and_tokens)
{
    write_text("token", TOKEN "\n");
    char http[256];
    snprintf(http, sizeof(http), "{\"bind\": \"127.0.0.1:0\", \"token_file\": \"%s\"}",
             path_of("token"));
    write_config(http);
    start_agent();
    resp_t r;

    request("GET", "/nope", NULL, NULL, &r);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(r.body, "{\"error\":\"no such endpoint; see docs/http-api.md\"}\n");
    free(r.body);
    request("GET", "/api/v1/verdict/../../etc/passwd", NULL, NULL, &r);
    cr_assert_eq(r.status, 404);
    free(r.body);
    request("DELETE", "/api/v1/verdict", NULL, NULL, &r);
    cr_assert_eq(r.status, 405);
    cr_assert_str_eq(r.allow, "GET");
    cr_assert_str_eq(r.body, "{\"error\":\"method not allowed; allowed: GET\"}\n");
    free(r.body);
    request("GET", "/api/v1/flagger/rollback", NULL, NULL, &r);
    cr_assert_eq(r.status, 405);
    cr_assert_str_eq(r.allow, "POST");
    free(r.body);
    request("POST", "/metrics", "{}", NULL, &r);
    cr_assert_eq(r.status, 405);
    free(r.body);

    /* Bodies over 64 KB: declared, and chunked. */
    size_t big = 64 * 1024 + 1;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    body[big] = '\0';
    request_on(NULL, "POST", "/api/v1/flagger/rollback", body, big, NULL, false, &r);
    cr_assert_eq(r.status, 413, "%ld %s", r.status, r.body);
    cr_assert_str_eq(r.body, "{\"error\":\"request body over 64 KB\"}\n");
    free(r.body);
    request_on(NULL, "POST", "/api/v1/flagger/rollback", body, big, NULL, true, &r);
    cr_assert_eq(r.status, 413, "%ld %s", r.status, r.body);
    free(r.body);
    /* Exactly 64 KB of whitespace is not too large: it is not JSON. */
    request_on(NULL, "POST", "/api/v1/flagger/rollback", body, big - 1, NULL, false, &r);
    cr_assert_eq(r.status, 400, "%ld %s", r.status, r.body);
    free(r.body);
    free(body);

    /* Malformed JSON, wrong shapes. */
    request("POST", "/api/v1/flagger/rollback", "{\"name\": ", NULL, &r);
    cr_assert_eq(r.status, 400);
    cr_assert_not_null(strstr(r.body, "malformed JSON body at line 1"), "%s", r.body);
    free(r.body);
    request("POST", "/api/v1/flagger/confirm-promotion", "[1,2]", NULL, &r);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(r.body, "{\"error\":\"the body is not a JSON object\"}\n");
    free(r.body);
    request("POST", "/api/v1/release", "{\"release\": \"2.6.0\", \"x\": 1}", "Bearer " TOKEN, &r);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(r.body, "{\"error\":\"unknown key in the body; known keys: release\"}\n");
    free(r.body);
    request("POST", "/api/v1/release", "{\"release\": \"\"}", "Bearer " TOKEN, &r);
    cr_assert_eq(r.status, 400);
    free(r.body);
    request("POST", "/api/v1/release", "{\"release\": 7}", "Bearer " TOKEN, &r);
    cr_assert_eq(r.status, 400);
    free(r.body);
    request("POST", "/api/v1/release", "not json", "Bearer " TOKEN, &r);
    cr_assert_eq(r.status, 400);
    free(r.body);

    /* Token from token_file (newline dropped): enforced before the body. */
    request("POST", "/api/v1/release", "{\"release\": \"3.0.0\"}", NULL, &r);
    cr_assert_eq(r.status, 401);
    free(r.body);
    request("POST", "/api/v1/release", "{\"release\": \"3.0.0\"}", "Bearer " TOKEN "x", &r);
    cr_assert_eq(r.status, 401);
    free(r.body);
    request("POST", "/api/v1/release", "{\"release\": \"3.0.0\"}", "Basic " TOKEN, &r);
    cr_assert_eq(r.status, 401);
    free(r.body);
    request("POST", "/api/v1/release", "{bad", "Bearer wrong", &r);
    cr_assert_eq(r.status, 401, "authorization comes before parsing");
    free(r.body);
    request("POST", "/api/v1/release", "{\"release\": \"3.0.0\"}", "bearer " TOKEN, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    free(r.body);
    json_t *v = get_json("/api/v1/verdict", 200);
    cr_assert_str_eq(jstr(v, "release"), "3.0.0");
    json_decref(v);

    /* Raw garbage on the socket: an HTTP error or a close, never a crash. */
    char *g = raw_exchange("GARBAGE\r\n\r\n", 11);
    cr_assert(g[0] == '\0' || strncmp(g, "HTTP/1.", 7) == 0, "%s", g);
    free(g);
    static const char bin[] = "\x00\x01\x02\xff\xfe\r\n\r\n";
    g = raw_exchange(bin, sizeof(bin) - 1);
    free(g);
    char line[9000];
    memset(line, 'a', sizeof(line));
    memcpy(line, "GET /", 5);
    memcpy(line + sizeof(line) - 15, " HTTP/1.1\r\n\r\n", 13);
    line[sizeof(line) - 2] = '\0';
    g = raw_exchange(line, strlen(line));
    cr_assert(g[0] == '\0' || strncmp(g, "HTTP/1.1 4", 10) == 0, "%.100s", g);
    free(g);
    g = raw_exchange("POST /api/v1/flagger/rollback HTTP/1.1\r\nHost: x\r\nContent-Length: "
                     "99999999999999999999\r\n\r\n",
                     strlen("POST /api/v1/flagger/rollback HTTP/1.1\r\nHost: x\r\nContent-Length: "
                            "99999999999999999999\r\n\r\n"));
    cr_assert(g[0] == '\0' || strncmp(g, "HTTP/1.1 4", 10) == 0, "%.100s", g);
    free(g);

    json_t *h = get_json("/healthz", 200);
    json_decref(h);
    stop_agent();
    char *err = read_file("err");
    cr_assert_null(strstr(err, TOKEN), "the token was logged:\n%s", err);
    free(err);
}

Test(http_api, non_loopback_bind_without_token_refuses_writes)
{
    write_config("{\"bind\": \"0.0.0.0:0\"}");
    start_agent();
    resp_t r;
    request("POST", "/api/v1/release", "{\"release\": \"2.6.0\"}", NULL, &r);
    cr_assert_eq(r.status, 403, "%s", r.body);
    cr_assert_str_eq(r.body, "{\"error\":\"write endpoints need http.token (or http.token_file) "
                             "when the API is bound to a non-loopback address\"}\n");
    free(r.body);
    /* Reads stay open. */
    json_t *v = get_json("/api/v1/verdict", 200);
    cr_assert_str_eq(jstr(v, "release"), "");
    json_decref(v);
    stop_agent();
}

/* check-config explains problems in the http section with key paths, and
 * never shows the token. */
Test(http_api, check_config_messages)
{
    const char *bin = getenv("CANARYD_BIN");
    cr_assert_not_null(bin);
    write_config("{\"bind\": \"localhost:80\", \"token\": \"has space secretvalue\", \"port\": 1,"
                 " \"max_lag\": -1}");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s check-config %s > %s 2> %s", bin, path_of("c.json"),
             path_of("co"), path_of("ce"));
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x", st);
    char *e = read_file("ce");
    cr_assert_not_null(strstr(e, "http: unknown key \"port\"; known keys: bind, token, "
                                 "token_file, max_lag"),
                       "%s", e);
    cr_assert_not_null(strstr(e, "http.bind: \"localhost:80\" is not HOST:PORT; accepted:"), "%s",
                       e);
    cr_assert_not_null(strstr(e, "http.token: (value hidden) is not accepted; accepted: 1 to 255 "
                                 "visible ASCII characters (no spaces)"),
                       "%s", e);
    cr_assert_not_null(strstr(e, "http.max_lag: -1"), "%s", e);
    cr_assert_null(strstr(e, "secretvalue"), "%s", e);
    free(e);
    write_config("{\"bind\": \"127.0.0.1:9\", \"token_file\": \"/nonexistent/tok\"}");
    st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x", st);
    e = read_file("ce");
    cr_assert_not_null(strstr(e, "http.token_file: \"/nonexistent/tok\": "), "%s", e);
    free(e);
    write_config("{\"bind\": \"0.0.0.0:8686\", \"token\": \"abc\", \"max_lag\": 5}");
    st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x: %s", st, read_file("ce"));
}

/* ---- monitoring: promtool on a real scrape, the rules and the dashboard ---------- */

/* Runs argv with stdin from in_path (or /dev/null) and stdout+stderr to
 * out_path; its exit status. */
static int run_tool(char *const argv[], const char *in_path, const char *out_path)
{
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in_path ? in_path : "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "spawn %s: %s", argv[0], strerror(rc));
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Every series name (canaryd_*, process_*) an expression uses must have a
 * TYPE line in the scrape; `up` is Prometheus's own. Returns how many. */
static int check_series(const char *expr, const char *scrape, const char *where)
{
    regex_t re;
    regmatch_t m[1];
    int n = 0;
    cr_assert_eq(regcomp(&re, "(canaryd|process)_[a-z_]+", REG_EXTENDED), 0);
    for (const char *p = expr; regexec(&re, p, 1, m, 0) == 0; p += m[0].rm_eo) {
        char name[128], type[160];
        snprintf(name, sizeof(name), "%.*s", (int)(m[0].rm_eo - m[0].rm_so), p + m[0].rm_so);
        snprintf(type, sizeof(type), "# TYPE %s ", name);
        cr_assert_not_null(strstr(scrape, type), "%s uses %s, which /metrics does not expose",
                           where, name);
        n++;
    }
    regfree(&re);
    return n;
}

static void collect_exprs(json_t *j, const char *scrape, int *exprs, int *names)
{
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            if (strcmp(k, "expr") == 0 && json_is_string(v)) {
                *names += check_series(json_string_value(v), scrape, json_string_value(v));
                (*exprs)++;
            } else {
                collect_exprs(v, scrape, exprs, names);
            }
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) collect_exprs(v, scrape, exprs, names);
    }
}

Test(http_api, metrics_pass_promtool_and_feed_the_dashboard)
{
    int seq = 0;
    write_config("{\"bind\": \"127.0.0.1:0\"}");
    start_agent();
    wait_ready();
    rd_kafka_t *pr = producer();
    produce(pr, 20, "REQUEST_COMPLETED", "canary", NULL, &seq);
    flush_all(pr);
    rd_kafka_destroy(pr);
    wait_metric("canaryd_events_total{type=\"REQUEST_COMPLETED\",cohort=\"canary\"}", 20, 10000);
    char *m = get_metrics();
    /* The standard process series and the build info, with sane values. */
    cr_assert_eq(metric(m, "canaryd_build_info{version=\"" CANARYD_VERSION "\"}"), 1);
    cr_assert_gt(metric(m, "process_resident_memory_bytes"), 1e6);
    cr_assert_gt(metric(m, "process_virtual_memory_bytes"),
                 metric(m, "process_resident_memory_bytes"));
    cr_assert_geq(metric(m, "process_cpu_seconds_total"), 0);
    cr_assert_gt(metric(m, "process_open_fds"), 3);
    cr_assert_geq(metric(m, "process_max_fds"), metric(m, "process_open_fds"));
    double start = metric(m, "process_start_time_seconds"), now = (double)now_ms() / 1000;
    cr_assert(start > now - 120 && start <= now + 1, "process_start_time_seconds %f, now %f", start,
              now);
    /* The ratio rule's value is in rule_value, nothing in rule_quantile. */
    cr_assert_null(strstr(m, "canaryd_rule_quantile{rule=\"error-rate\"}"));
    cr_assert_not_null(strstr(m, "canaryd_rule_value{rule=\"error-rate\"}"));
    write_text("metrics.txt", m);
    stop_agent();

    char *promtool[] = {"promtool", "--version", NULL};
    pid_t probe;
    if (posix_spawnp(&probe, "promtool", NULL, NULL, promtool, environ) != 0)
        cr_skip_test("promtool is not installed (tools/setup installs Debian's prometheus)");
    int st;
    waitpid(probe, &st, 0);

    /* promtool's exposition-format lint on the real scrape. */
    char *check_metrics[] = {"promtool", "check", "metrics", NULL};
    int rc = run_tool(check_metrics, path_of("metrics.txt"), path_of("promtool.out"));
    cr_assert_eq(rc, 0, "promtool check metrics:\n%s", read_file("promtool.out"));

    /* The PrometheusRule's rules, as a plain rule file. */
    char *yaml = NULL;
    {
        FILE *f = fopen(CANARYD_SOURCE_DIR "/docker/monitoring/prometheusrule.yaml", "r");
        cr_assert_not_null(f);
        size_t cap = 1 << 16, len = fread(yaml = malloc(cap), 1, cap - 1, f);
        yaml[len] = '\0';
        fclose(f);
    }
    cd_diag_t *dg = malloc(sizeof(*dg));
    json_t *pos = NULL;
    cd_diag_init(dg);
    json_t *pr_doc = cd_cfg_yaml_load(yaml, strlen(yaml), &pos, dg);
    cr_assert_not_null(pr_doc, "%s", dg->text);
    cr_assert_str_eq(json_string_value(json_object_get(pr_doc, "kind")), "PrometheusRule");
    json_t *spec = json_object_get(pr_doc, "spec");
    char *rules_json = json_dumps(spec, JSON_INDENT(1));
    write_text("rules.json", rules_json); /* JSON is YAML: promtool reads it */
    char *check_rules[] = {"promtool", "check", "rules", (char *)path_of("rules.json"), NULL};
    rc = run_tool(check_rules, NULL, path_of("promtool.out"));
    char *out = read_file("promtool.out");
    cr_assert_eq(rc, 0, "promtool check rules:\n%s", out);
    cr_assert_not_null(strstr(out, "SUCCESS: 5 rules found"), "%s", out);
    free(out);
    int exprs = 0, names = 0;
    collect_exprs(spec, m, &exprs, &names);
    cr_assert_eq(exprs, 5);
    cr_assert_eq(names, 4, "every rule but CanarydDown (up) names a canaryd series");

    /* The Grafana dashboard's queries use only exposed series. */
    json_error_t je;
    json_t *dash =
        json_load_file(CANARYD_SOURCE_DIR "/docker/monitoring/grafana-dashboard.json", 0, &je);
    cr_assert_not_null(dash, "dashboard: %s", je.text);
    exprs = names = 0;
    collect_exprs(json_object_get(dash, "panels"), m, &exprs, &names);
    cr_assert_geq(exprs, 14, "verdict, rules, events, lag, sinks, process panels");
    cr_assert_geq(names, exprs);
    json_decref(dash);
    free(rules_json);
    json_decref(pr_doc);
    json_decref(pos);
    free(dg);
    free(yaml);
    free(m);
}

/* Issue 10, item 6: ?release=X answers X's verdict only while X is the
 * release judged; any other release reads ANALYZING with a reason, so a new
 * rollout never inherits the previous release's sticky ROLLBACK (nor its
 * PROMOTE). */
Test(http_api, verdict_for_another_release_is_analyzing)
{
    int seq = 0;
    write_config("{\"bind\": \"127.0.0.1:0\"}");
    start_agent();
    wait_ready();
    /* nothing learnt yet */
    json_t *v = get_json("/api/v1/verdict?release=2.5.0", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ANALYZING");
    cr_assert_str_eq(jstr(v, "release"), "");
    cr_assert_not_null(strstr(jstr(v, "reason"), "release \"2.5.0\" is not being judged: no "
                                                 "release is known yet"),
                       "%s", jstr(v, "reason"));
    json_decref(v);

    rd_kafka_t *pr = producer();
    produce(pr, 60, "REQUEST_COMPLETED", "canary", NULL, &seq);
    produce(pr, 30, "ERROR_OCCURRED", "canary", NULL, &seq);
    flush_all(pr);
    v = wait_verdict("ROLLBACK", 10000);
    cr_assert_str_eq(jstr(v, "release"), "2.5.0");
    cr_assert(json_is_null(json_object_get(v, "reason")), "engine's own verdict: reason null");
    json_decref(v);
    /* the judged release: its verdict */
    v = get_json("/api/v1/verdict?release=2.5.0", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ROLLBACK");
    cr_assert_str_eq(jstr(v, "release"), "2.5.0");
    cr_assert_eq(json_array_size(json_object_get(v, "rules")), 1);
    json_decref(v);
    /* the next rollout asks for its own release: not the sticky ROLLBACK */
    v = get_json("/api/v1/verdict?release=2.6.0", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ANALYZING");
    cr_assert_str_eq(jstr(v, "release"), "2.5.0");
    cr_assert_str_eq(jstr(v, "reason"), "release \"2.6.0\" is not being judged: the agent judges "
                                        "\"2.5.0\" (declare the new release with POST "
                                        "/api/v1/release)");
    cr_assert_eq(json_array_size(json_object_get(v, "rules")), 0);
    cr_assert(json_is_null(json_object_get(v, "since")));
    json_decref(v);
    v = get_json("/api/v1/verdict?release=", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ANALYZING");
    cr_assert_not_null(strstr(jstr(v, "reason"), "the release parameter is empty"));
    json_decref(v);
    /* a percent-encoded parameter is decoded before it is compared */
    v = get_json("/api/v1/verdict?release=2%2E5%2E0", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ROLLBACK");
    json_decref(v);

    /* 2.6.0 declared: its own judgement, healthy, then PROMOTE; now 2.5.0 is
     * the other release. */
    resp_t r;
    request("POST", "/api/v1/release", "{\"release\": \"2.6.0\"}", NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    free(r.body);
    v = get_json("/api/v1/verdict?release=2.6.0", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ANALYZING");
    cr_assert(json_is_null(json_object_get(v, "reason")));
    json_decref(v);
    produce_events(pr, 60, "REQUEST_COMPLETED", "canary", "2.6.0", 1100, NULL, &seq);
    flush_all(pr);
    rd_kafka_destroy(pr);
    for (int64_t end = mono_ms() + 10000;;) {
        v = get_json("/api/v1/verdict?release=2.6.0", 200);
        if (strcmp(jstr(v, "verdict"), "PROMOTE") == 0) break;
        cr_assert_lt(mono_ms(), end, "2.6.0 still %s", jstr(v, "verdict"));
        json_decref(v);
        sleep_ms(20);
    }
    cr_assert_str_eq(jstr(v, "release"), "2.6.0");
    json_decref(v);
    v = get_json("/api/v1/verdict?release=2.5.0", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ANALYZING");
    cr_assert_str_eq(jstr(v, "release"), "2.6.0");
    json_decref(v);
    stop_agent();
}

/* Issue 10, item 6: Flagger's checksum changes with every canary run; a
 * changed checksum starts a new judgement before the hook answers, so the
 * previous run's ROLLBACK is not replayed to the new run. A learnt release
 * is learnt again from the new run's canary events (not from the previous
 * run's, even when they arrive after the change); a declared release keeps
 * its name. */
Test(http_api, flagger_new_checksum_starts_a_new_judgement)
{
    int seq = 0;
    write_config("{\"bind\": \"127.0.0.1:0\"}");
    start_agent();
    wait_ready();
    rd_kafka_t *pr = producer();
    produce(pr, 60, "REQUEST_COMPLETED", "canary", NULL, &seq);
    produce(pr, 30, "ERROR_OCCURRED", "canary", NULL, &seq);
    flush_all(pr);
    json_t *v = wait_verdict("ROLLBACK", 10000);
    json_decref(v);
    /* the run that went bad: the first checksum seen is that run's */
    cr_assert_str_eq(hook_run("rollback", "run-1", 200, "ROLLBACK"), "2.5.0");
    cr_assert_str_eq(hook_run("rollback", "run-1", 200, "ROLLBACK"), "2.5.0");
    cr_assert_str_eq(hook_run("confirm-promotion", "run-1", 409, "ROLLBACK"), "2.5.0");
    /* a new run: no stale ROLLBACK; the release is learnt again */
    cr_assert_str_eq(hook_run("rollback", "run-2", 409, "ANALYZING"), "");
    cr_assert_str_eq(hook_run("confirm-promotion", "run-2", 409, "ANALYZING"), "");
    v = get_json("/api/v1/verdict", 200);
    cr_assert_str_eq(jstr(v, "verdict"), "ANALYZING");
    cr_assert_str_eq(jstr(json_array_get(json_object_get(v, "rules"), 0), "state"), "inactive");
    json_decref(v);
    /* a straggler of the old run, stamped before the new run began, is
     * counted but names nothing; the new run's canary (2.6.0) is healthy */
    produce_events(pr, 1, "REQUEST_COMPLETED", "canary", "2.5.0", -3000, NULL, &seq);
    flush_all(pr);
    wait_metric("canaryd_events_total{type=\"REQUEST_COMPLETED\",cohort=\"canary\"}", 61, 10000);
    produce_events(pr, 60, "REQUEST_COMPLETED", "canary", "2.6.0", 1100, NULL, &seq);
    flush_all(pr);
    v = wait_verdict("PROMOTE", 10000);
    cr_assert_str_eq(jstr(v, "release"), "2.6.0");
    json_decref(v);
    cr_assert_str_eq(hook_run("confirm-promotion", "run-2", 200, "PROMOTE"), "2.6.0");
    cr_assert_str_eq(hook_run("rollback", "run-2", 409, "PROMOTE"), "2.6.0");

    /* A declared release keeps its name across a new run. */
    resp_t r;
    request("POST", "/api/v1/release", "{\"release\": \"2.7.0\"}", NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    free(r.body);
    produce_events(pr, 60, "REQUEST_COMPLETED", "canary", "2.7.0", 1100, NULL, &seq);
    flush_all(pr);
    rd_kafka_destroy(pr);
    v = wait_verdict("PROMOTE", 10000);
    cr_assert_str_eq(jstr(v, "release"), "2.7.0");
    json_decref(v);
    cr_assert_str_eq(hook_run("confirm-promotion", "run-2", 200, "PROMOTE"), "2.7.0");
    cr_assert_str_eq(hook_run("confirm-promotion", "run-3", 409, "ANALYZING"), "2.7.0");
    /* another canary's hooks (its first checksum) reset nothing */
    resp_t o;
    request("POST", "/api/v1/flagger/rollback",
            "{\"name\":\"payments\",\"namespace\":\"prod\",\"checksum\":\"zzz\"}", NULL, &o);
    cr_assert_eq(o.status, 409, "%s", o.body);
    free(o.body);
    stop_agent();
    char *err = read_file("err");
    cr_assert_not_null(strstr(err, "flagger rollback hook: canary \"prod\"/\"checkout\" has a new "
                                   "checksum \"run-2\": a new run, a new judgement"),
                       "%s", err);
    cr_assert_not_null(strstr(err, "new canary run: verdict, rule states and canary windows "
                                   "reset; release learnt again from the next canary event"),
                       "%s", err);
    cr_assert_not_null(strstr(err, "release 2.7.0 (kept)"), "%s", err);
    free(err);
    char *out = read_file("out");
    /* the records of the relearnt run name 2.6.0, none names the straggler's 2.5.0 after it */
    cr_assert_not_null(strstr(out, "\"verdict\":\"PROMOTE\""), "%s", out);
    cr_assert_not_null(strstr(out, "\"release\":\"2.6.0\""), "%s", out);
    free(out);
}
